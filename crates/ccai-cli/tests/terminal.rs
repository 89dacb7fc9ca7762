//! Terminal escape injection: a correctly signed `message.incoming` whose text is an escape
//! sequence (chosen by whoever texts the number) comes out of the real `ccai listen` inert in
//! text mode and exact with `--json`.

mod common;

use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{lines, Sandbox};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const CLIENT_ID: &str = "1231";
const SECRET: &str = "terminal-test-secret";
/// Retitles the terminal, clears the screen, colours what follows; then a C1 CSI, a bidi
/// override and an isolate.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{9b}1m\u{202e}txt.exe\u{2066}";

struct Listener {
    child: Child,
    url: String,
    out: mpsc::Receiver<String>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = (self.child.kill(), self.child.wait());
    }
}

fn listen(sandbox: &Sandbox, args: &[&str]) -> Listener {
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", "0"])
        .args(args)
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ccai listen");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    let url = loop {
        let line = err
            .recv_timeout(WAIT)
            .expect("listen announces its address");
        if let Some(url) = line.strip_prefix("Listening on ") {
            break url.trim().to_owned();
        }
    };
    Listener { child, url, out }
}

async fn deliver(url: &str, event_type: &str, hash: &str) {
    let body = serde_json::json!({
        "eventType": event_type,
        "eventHash": hash,
        "data": {"From": "+14155550100", "To": "+14155550199", "Message": HOSTILE},
    })
    .to_string();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "X-CCAI-Signature",
            ccai::webhook::sign(CLIENT_ID, hash, SECRET),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
}

fn assert_inert(line: &str) {
    for c in line.chars() {
        assert!(
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'),
            "raw {c:?} in {line:?}"
        );
    }
}

#[tokio::test]
async fn an_escape_sequence_in_a_signed_message_is_inert_in_text_mode() {
    let sandbox = Sandbox::new();
    let listener = listen(&sandbox, &[]);
    deliver(&listener.url, "message.incoming", "escape-text-1").await;
    let line = listener.out.recv_timeout(WAIT).expect("a line");
    assert_inert(&line);
    assert!(line.contains(r"\u{1b}]0;owned\u{7}\u{1b}[2J"), "{line}");
    assert!(line.contains(r"\u{202e}"), "{line}");
}

#[tokio::test]
async fn the_same_message_is_exact_with_json() {
    let sandbox = Sandbox::new();
    let listener = listen(&sandbox, &["--json"]);
    deliver(&listener.url, "message.incoming", "escape-json-1").await;
    let line = listener.out.recv_timeout(WAIT).expect("a line");
    // JSON escapes C0 controls itself; the decoded text is exactly what was sent.
    assert!(!line.contains('\u{1b}'), "{line}");
    let value: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(value["data"]["Message"], HOSTILE);
}
