//! A stand-in for the CloudContactAI API: a real HTTP server on 127.0.0.1 that records every
//! request it receives and answers canned replies, in order (the last one repeats).

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, extra headers and a body (sent as `application/json` when not empty).
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answers.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::Answer {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self::text(status, "")
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Self {
        match self {
            Self::Answer {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_owned()));
                Self::Answer {
                    status,
                    headers,
                    body,
                }
            }
            Self::Hang => Self::Hang,
        }
    }
}

#[derive(Clone)]
struct Shared {
    replies: Arc<Vec<Reply>>,
    received: Arc<Mutex<Vec<Recorded>>>,
}

/// The running server.
#[derive(Debug)]
pub struct FakeApi {
    /// `http://127.0.0.1:{port}/api`
    pub base_url: String,
    received: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    /// Starts a server that answers `replies` in order, repeating the last.
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "give the fake API at least one reply");
        let shared = Shared {
            replies: Arc::new(replies),
            received: Arc::default(),
        };
        let received = shared.received.clone();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake API server");
        });
        Self {
            base_url: format!("http://{address}/api"),
            received,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.received.lock().expect("lock").clone()
    }

    /// The only request received (fails when there were more or none).
    pub fn only_request(&self) -> Recorded {
        let mut requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request: {requests:?}"
        );
        requests.remove(0)
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut received = shared.received.lock().expect("lock");
        received.push(Recorded {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
        });
        received.len() - 1
    };
    let reply = shared
        .replies
        .get(index)
        .or(shared.replies.last())
        .cloned()
        .expect("at least one reply");
    match reply {
        Reply::Hang => std::future::pending().await,
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut response =
                Response::builder().status(StatusCode::from_u16(status).expect("valid status"));
            if !body.is_empty() {
                response = response.header("content-type", "application/json");
            }
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).expect("valid response")
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub(crate) fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}/api")
}
