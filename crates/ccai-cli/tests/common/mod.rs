//! Running the real `ccai` binary in an isolated environment, and small local servers.
#![allow(dead_code)]

pub(crate) mod drop_schema;
pub(crate) mod postgres;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// A scratch folder for one test: the working directory (no stray `.env`), the config dir and the
/// data dir.
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

    /// Where `ccai listen` keeps its store by default (`CCAI_DATA_DIR`).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
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
            .env("CCAI_DATA_DIR", self.data_dir())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        cmd
    }

    /// Whether `ccai events list` shows no event of `store` pending or being forwarded.
    pub(crate) fn nothing_pending(&self, store: &str) -> bool {
        ["pending", "in_progress"].iter().all(|status| {
            let out = self
                .ccai()
                .args([
                    "events", "list", "--json", "--status", status, "--store", store,
                ])
                .output()
                .expect("run ccai events list");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout.is_empty()
        })
    }
}

/// Runs a command to completion off the async runtime.
pub(crate) async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("runs ccai"))
        .await
        .expect("join")
}

/// Waits for `child` to exit, for at most [`WAIT`], then kills it; blocking (call it off the
/// runtime, with `spawn_blocking`). The caller checks the exit code: a killed child has none.
pub(crate) fn wait_or_kill(mut child: std::process::Child) -> Output {
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs `cmd`, which must exit by itself: one that runs on (a listener that took a bad flag)
/// is killed and fails the test instead of hanging it.
pub(crate) async fn exits(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ccai");
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "ccai did not exit; it said: {}{}",
                stdout(&out),
                stderr(&out)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.wait_with_output().expect("output")
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
    /// Reads a request a test server received (a body that cannot be read counts as empty).
    pub(crate) async fn read(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        Self {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

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
    recorder_on(SocketAddr::from(([127, 0, 0, 1], 0)), reply).await
}

/// A recording server on `addr` (e.g. a port that was closed until now).
pub(crate) async fn recorder_on(
    addr: SocketAddr,
    reply: impl Fn(&Recorded) -> (StatusCode, String) + Send + Sync + 'static,
) -> Recorder {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let state = (requests.clone(), Arc::new(reply) as Reply);
    let app = Router::new().fallback(record).with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
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
    let recorded = Recorded::read(request).await;
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

/// Generous: the machine may be busy; nothing here measures time.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// An HTTP client for senders that go on sending while a listener is killed. Each request has a
/// deadline: once, a request in flight at a SIGKILL hung for good inside the client (no socket
/// and no timer left), and the whole test with it. A timeout turns that into a failed send,
/// which the sender sends again, as CloudContactAI would.
pub(crate) fn sender_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// A running `ccai listen` that announced its address.
pub(crate) struct Listening {
    pub child: Child,
    pub url: String,
    pub out: mpsc::Receiver<String>,
    pub err: mpsc::Receiver<String>,
    pub banner: Vec<String>,
}

impl Listening {
    /// Starts `ccai listen` with exactly `args`, without waiting for it.
    pub(crate) fn launch(mut cmd: Command, args: &[&str]) -> Spawned {
        cmd.arg("listen")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ccai listen");
        let out = lines(child.stdout.take().expect("stdout"));
        let err = lines(child.stderr.take().expect("stderr"));
        Spawned { child, out, err }
    }

    /// Waits until a spawned listener announces its address.
    pub(crate) fn announced(spawned: Spawned) -> Self {
        let Spawned { child, out, err } = spawned;
        let mut banner = Vec::new();
        let url = loop {
            let line = err.recv_timeout(WAIT).unwrap_or_else(|_| {
                panic!("listen did not announce its address; it said: {banner:?}")
            });
            banner.push(line.clone());
            if let Some(url) = line.strip_prefix("Listening on ") {
                break url.trim().to_owned();
            }
        };
        Self {
            child,
            url,
            out,
            err,
            banner,
        }
    }

    pub(crate) fn next_line(&self) -> String {
        self.out.recv_timeout(WAIT).expect("a line from listen")
    }

    /// `host:port` of its URL, for a raw TCP client.
    pub(crate) fn address(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host:port")
            .to_owned()
    }
}

/// A `ccai listen` started, not yet announced.
pub(crate) struct Spawned {
    pub child: Child,
    pub out: mpsc::Receiver<String>,
    pub err: mpsc::Receiver<String>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a child's output, read on a thread.
pub(crate) fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Whether `program ARGS…` runs and succeeds here (a tool a test needs, and what it may do).
pub(crate) fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Where Debian's `libfaketime` package puts the library (`.ci/run` installs it): preloaded into
/// `ccai` itself to run it on another clock.
pub(crate) const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Whether the tests run as root (who may write any file).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// `cmd` run as the user `nobody` through `setpriv`, with the same environment and folder; `None`
/// without `setpriv`.
pub(crate) fn as_nobody(cmd: &Command) -> Option<Command> {
    if !runs("setpriv", &["--version"]) {
        return None;
    }
    Some(wrapped(
        cmd,
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups", "--"],
    ))
}

/// `cmd` as a user that file permissions bind: as it is, or as `nobody` (through `setpriv`) when
/// the tests run as root; `None`, saying why the test skips, as root without `setpriv`.
pub(crate) fn unprivileged(cmd: Command) -> Option<Command> {
    if !is_root() {
        return Some(cmd);
    }
    let as_nobody = as_nobody(&cmd);
    if as_nobody.is_none() {
        eprintln!("skipped: running as root, and setpriv (util-linux) is not available to run ccai as nobody");
    }
    as_nobody
}

/// `cmd` in a mount namespace of its own (`unshare`) with a 2 MiB tmpfs at `<sandbox>/small`: a
/// disk that fills up. The command and that folder; `None`, having said why, where `unshare`
/// cannot make the namespaces (some containers).
pub(crate) fn on_small_disk(sandbox: &Sandbox, cmd: &Command) -> Option<(Command, String)> {
    if !runs("unshare", &["-rm", "true"]) {
        eprintln!("skipped: `unshare -rm` (util-linux, user and mount namespaces) is not available here, so no small filesystem can be mounted");
        return None;
    }
    let small = sandbox.path().join("small");
    std::fs::create_dir(&small).expect("mkdir");
    let small = small.to_str().expect("utf-8 path").to_owned();
    let cmd = wrapped(
        cmd,
        "unshare",
        &[
            "-rm",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@""#,
            &small,
        ],
    );
    Some((cmd, small))
}

/// `program WRAPPER_ARGS… cmd`, with `cmd`'s environment and folder.
pub(crate) fn wrapped(cmd: &Command, program: &str, wrapper_args: &[&str]) -> Command {
    let mut wrapped = Command::new(program);
    wrapped
        .args(wrapper_args)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}
