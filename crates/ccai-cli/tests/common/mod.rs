//! Running the real `ccai` binary in an isolated environment, and small local servers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// A scratch folder for one test: the working directory (no stray `.env`) and the config dir.
pub(crate) struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ccai` with no inherited CCAI_* settings, running in the sandbox.
    pub(crate) fn ccai(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccai"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CCAI_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("CCAI_CONFIG_DIR", self.config_dir())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        cmd
    }
}

/// Runs a command to completion off the async runtime.
pub(crate) async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("runs ccai"))
        .await
        .expect("join")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One request a recording server received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A server on 127.0.0.1 that records every request and answers with `reply`.
pub(crate) struct Recorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

type Reply = Arc<dyn Fn(&Recorded) -> (StatusCode, String) + Send + Sync>;

pub(crate) async fn recorder(
    reply: impl Fn(&Recorded) -> (StatusCode, String) + Send + Sync + 'static,
) -> Recorder {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let state = (requests.clone(), Arc::new(reply) as Reply);
    let app = Router::new().fallback(record).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Recorder {
        url: format!("http://{addr}"),
        requests,
    }
}

async fn record(
    State((requests, reply)): State<(Arc<Mutex<Vec<Recorded>>>, Reply)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let (status, text) = reply(&recorded);
    requests.lock().expect("lock").push(recorded);
    (status, [("content-type", "application/json")], text).into_response()
}

/// A local port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// The lines of a child's output, read on a thread.
pub(crate) fn lines(
    stream: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
