//! Reading the management API's answers, in all the shapes the API is known to send.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ClientError;
use super::types::WebhookResponse;
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

    fn parse<T: DeserializeOwned>(&self, value: Value, what: &str) -> Result<T, ClientError> {
        serde_json::from_value(value).map_err(|e| self.error(format!("{what}: {e}")))
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
    request.parse(value, "not an integration")
}

/// A list of integrations: an array (a bare object counts as a list of one; no body as none).
pub(crate) fn integrations(
    request: Request<'_>,
    answer: Option<Value>,
) -> Result<Vec<WebhookResponse>, ClientError> {
    match answer {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value @ Value::Array(_)) => request.parse(value, "not a list of integrations"),
        Some(value @ Value::Object(_)) => Ok(vec![request.parse(value, "not an integration")?]),
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
        assert!(integrations(REQ, None).unwrap().is_empty());
        assert_eq!(
            integrations(REQ, Some(json!([{"id": 1}, {"id": "2"}])))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(integrations(REQ, Some(json!({"id": 1}))).unwrap().len(), 1);
        assert!(integrations(REQ, Some(json!(3))).is_err());
    }
}
