//! Reading the management API's answers, in all the shapes the API is known to send.

use serde::Deserialize;
use serde_json::Value;

use super::error::ClientError;
use super::types::WebhookResponse;
use super::webhook_list::{why_unreadable, WebhookList};
use crate::event::json_type as kind;
use http::Method;

/// The request an answer belongs to, for error messages.
#[derive(Clone)]
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) path: &'a str,
}

impl Request<'_> {
    fn error(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Decode {
            method: self.method.clone(),
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }

    /// One integration; what is wrong with it said in our words (serde's quote the value).
    fn integration(&self, value: Value) -> Result<WebhookResponse, ClientError> {
        WebhookResponse::deserialize(&value)
            .map_err(|_| self.error(format!("not an integration: {}", why_unreadable(&value))))
    }
}

/// One integration: the first element of an array, or a bare object.
pub(crate) fn one_integration(
    request: Request<'_>,
    answer: Option<Value>,
) -> Result<WebhookResponse, ClientError> {
    let value = match answer {
        Some(Value::Array(items)) => items.into_iter().next().ok_or_else(|| {
            request.error("the API answered an empty array instead of the integration")
        })?,
        Some(value @ Value::Object(_)) => value,
        Some(other) => {
            return Err(request.error(format!(
                "expected an integration object or an array of them, got {}",
                kind(&other)
            )))
        }
        None => {
            return Err(
                request.error("the API answered with an empty body instead of the integration")
            )
        }
    };
    request.integration(value)
}

/// A list of integrations: an array, each element read on its own (a bare object counts as a
/// list of one; no body as none). A bare object that is not an integration is an error, not a
/// list of one unreadable entry: it is more likely some other answer than a list.
pub(crate) fn integrations(
    request: Request<'_>,
    answer: Option<Value>,
) -> Result<WebhookList, ClientError> {
    match answer {
        None | Some(Value::Null) => Ok(WebhookList::default()),
        Some(Value::Array(entries)) => Ok(WebhookList::read(entries)),
        Some(value @ Value::Object(_)) => Ok(WebhookList {
            webhooks: vec![request.integration(value)?],
            unreadable: Vec::new(),
        }),
        Some(other) => Err(request.error(format!(
            "expected an array of integrations, got {}",
            kind(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const REQ: Request<'static> = Request {
        method: Method::POST,
        path: "/p",
    };

    #[test]
    fn one_integration_from_array_or_object() {
        let from_array = one_integration(REQ, Some(json!([{"id": 1, "url": "u"}, {"id": 2}])));
        assert_eq!(from_array.unwrap().id.as_str(), "1");
        let bare = one_integration(REQ, Some(json!({"id": "9", "url": "u"})));
        assert_eq!(bare.unwrap().id.as_str(), "9");
        for bad in [
            None,
            Some(json!([])),
            Some(json!("x")),
            Some(json!({"url": "no id"})),
        ] {
            let err = one_integration(REQ, bad).unwrap_err();
            assert!(matches!(err, ClientError::Decode { .. }));
            assert!(err.to_string().contains("POST /p"), "{err}");
        }
    }

    #[test]
    fn integrations_in_any_shape() {
        assert_eq!(integrations(REQ, None).unwrap(), WebhookList::default());
        let list = integrations(REQ, Some(json!([{"id": 1}, {"id": "2"}, {"id": []}]))).unwrap();
        assert_eq!((list.webhooks.len(), list.unreadable.len()), (2, 1));
        let one = integrations(REQ, Some(json!({"id": 1}))).unwrap();
        assert_eq!((one.webhooks.len(), one.unreadable.len()), (1, 0));
        assert!(integrations(REQ, Some(json!({"message": "no id"}))).is_err());
        assert!(integrations(REQ, Some(json!(3))).is_err());
    }
}
