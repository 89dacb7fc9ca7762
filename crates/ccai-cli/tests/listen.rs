//! `ccai listen` with `ccai trigger`, end to end: the real binary, real HTTP on 127.0.0.1.

mod common;

use axum::http::StatusCode;
use common::{closed_port, recorder, run, stderr, stdout, Listening, Sandbox, Spawned, WAIT};
use serde_json::Value;

impl Listening {
    fn start(sandbox: &Sandbox, args: &[&str]) -> Self {
        Self::start_with(sandbox.ccai(), args)
    }

    fn start_with(cmd: std::process::Command, args: &[&str]) -> Self {
        Self::announced(Self::spawn(cmd, args))
    }

    /// Starts `ccai listen --no-store` (the in-memory receiver these tests describe; the store is
    /// tested in listen_store.rs) on a free port, without waiting for it.
    fn spawn(cmd: std::process::Command, args: &[&str]) -> Spawned {
        let mut all = vec!["--port", "0", "--no-store"];
        all.extend_from_slice(args);
        Self::launch(cmd, &all)
    }
}

/// Sends SIGINT (Ctrl-C) to process `pid`.
#[cfg(unix)]
fn interrupt(pid: u32) {
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
}

/// How `child` exited, failing the test if it still runs after `limit` (`what` says why it
/// should have stopped).
#[cfg(unix)]
fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running {limit:?} after {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A connection that sent half a request: it holds a graceful stop for the whole grace.
#[cfg(unix)]
fn half_request(listen: &Listening) -> std::net::TcpStream {
    use std::io::Write;
    let mut half = std::net::TcpStream::connect(listen.address()).expect("connect");
    half.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .expect("write");
    std::thread::sleep(std::time::Duration::from_millis(200));
    half
}

fn trigger(sandbox: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut cmd = sandbox.ccai();
    cmd.arg("trigger").args(args);
    cmd
}

const TYPES: [&str; 6] = [
    "message.sent",
    "message.incoming",
    "message.received",
    "message.excluded",
    "message.error.carrier",
    "message.error.cloudcontact",
];

#[tokio::test]
async fn zero_configuration_listen_and_trigger_for_every_event_type() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &[]);
    let banner = listen.banner.join("\n");
    assert!(banner.contains("Created a development secret"), "{banner}");
    assert!(
        banner.contains("Development secret:    whsec_dev_"),
        "{banner}"
    );

    // The development credentials are stored privately.
    let file = sandbox.config_dir().join("dev-credentials.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["client_id"], "ccai-dev");
    assert!(stored["secret"].as_str().unwrap().starts_with("whsec_dev_"));
    assert_eq!(stored["listen_url"], listen.url.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    for event_type in TYPES {
        let out = run(trigger(&sandbox, &[event_type])).await;
        assert!(
            out.status.success(),
            "{event_type}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains(" -> 200 {\"success\":true}"),
            "{}",
            stdout(&out)
        );
        let line = listen.next_line();
        assert!(line.contains(event_type), "{line}");
    }
    // Key fields per type show up.
    let out = run(trigger(
        &sandbox,
        &["message.incoming", "--set", "Message=See you at 5"],
    ))
    .await;
    assert!(out.status.success());
    let line = listen.next_line();
    assert!(
        line.contains("from=+14155550100") && line.contains("message=\"See you at 5\""),
        "{line}"
    );
}

#[tokio::test]
async fn a_second_listen_reuses_the_stored_secret() {
    let sandbox = Sandbox::new();
    let first = Listening::start(&sandbox, &[]);
    let secret_line = |l: &Listening| {
        l.banner
            .iter()
            .find(|b| b.starts_with("Development secret:"))
            .cloned()
            .unwrap()
    };
    let secret = secret_line(&first);
    drop(first);
    let second = Listening::start(&sandbox, &[]);
    assert_eq!(secret_line(&second), secret);
    assert!(!second.banner.join("\n").contains("Created"));
}

#[tokio::test]
async fn bad_and_missing_signatures_are_rejected_and_reported() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &[]);

    let out = run(trigger(
        &sandbox,
        &["message.sent", "--secret", "not-the-dev-secret"],
    ))
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a rejected delivery is a failed trigger"
    );
    assert!(stdout(&out).contains(" -> 401 "), "{}", stdout(&out));
    let line = listen.next_line();
    assert!(line.contains("REJECTED 401"), "{line}");
    assert!(line.contains("signature does not match"), "{line}");
    assert!(!line.contains("not-the-dev-secret"));

    let response = reqwest::Client::new()
        .post(&listen.url)
        .header("content-type", "application/json")
        .body(r#"{"eventType":"message.sent","data":{},"eventHash":"abc"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let line = listen.next_line();
    assert!(
        line.contains("REJECTED 400") && line.contains("X-CCAI-Signature"),
        "{line}"
    );

    let response = reqwest::Client::new()
        .get(&listen.url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(listen.next_line().contains("REJECTED 405"));
}

/// `ccai listen` answers a path it does not serve with a bare 404 (not telling a stranger its
/// path), and a PUT without --accept-put with a 405: `trigger` printed "-> 404 " and nothing
/// more. It now says what to check, once whatever --repeat.
#[tokio::test]
async fn a_trigger_to_a_path_or_method_listen_does_not_serve_says_what_to_check() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &[]);
    let elsewhere = format!("{}/", listen.url);
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--to", &elsewhere, "--repeat", "2"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let said = stdout(&out);
    assert!(said.lines().all(|l| l.ends_with(" -> 404")), "{said:?}");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("note: a 404 means nothing receives deliveries at this path"),
        "{err}"
    );

    let out = run(trigger(
        &sandbox,
        &["message.sent", "--to", &listen.url, "--method", "PUT"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains(" -> 405 "), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--accept-put"), "{err}");
    drop(listen);

    let listen = Listening::start(&sandbox, &["--accept-put"]);
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--to", &listen.url, "--method", "PUT"],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[tokio::test]
async fn the_banner_says_a_trigger_needs_the_configured_credentials() {
    let sandbox = Sandbox::new();
    // The line after "Listening on …".
    let try_it = |l: &Listening| l.err.recv_timeout(WAIT).expect("the Try it line");
    // Development credentials: a bare trigger signs with them.
    let dev = Listening::start(&sandbox, &[]);
    let line = try_it(&dev);
    assert!(
        line.starts_with("Try it: ccai trigger message.sent    ("),
        "{line}"
    );
    drop(dev);
    // Configured ones: a bare trigger would be answered 401, so the banner says what to pass.
    let configured = Listening::start(
        &sandbox,
        &["--client-id", "acct-1", "--secret", "listen-secret-123"],
    );
    let line = try_it(&configured);
    assert!(line.starts_with("Try it: "), "{line}");
    assert!(line.contains("--client-id and --secret"), "{line}");
    assert!(!line.contains("listen-secret-123"));
}

/// A target whose answer does not end (or is huge) is read only as far as trigger shows it: the
/// whole answer was read into memory (gigabytes within the 30 s timeout, on this machine), and
/// the trigger then said "-> 200" with no text after half a minute.
#[tokio::test]
async fn a_trigger_reads_an_endless_answer_only_as_far_as_it_shows_it() {
    use std::io::{Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", server.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = server.accept() else {
            return;
        };
        let mut request = [0u8; 65536];
        let _ = conn.read(&mut request);
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(b"5\r\nhello\r\n");
        let chunk = [b'A'; 65536];
        // Until trigger hangs up.
        while conn.write_all(b"10000\r\n").is_ok()
            && conn.write_all(&chunk).is_ok()
            && conn.write_all(b"\r\n").is_ok()
        {}
    });
    let sandbox = Sandbox::new();
    let started = std::time::Instant::now();
    let out = run(trigger(
        &sandbox,
        &[
            "message.sent",
            "--to",
            &url,
            "--client-id",
            "1",
            "--secret",
            "s",
        ],
    ))
    .await;
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(" -> 200 helloAAA"),
        "{}",
        stdout(&out)
    );
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
}

/// A saved listen URL that cannot be read (here a folder in the file's place) is said to be one,
/// naming it: the trigger went to the default (or to the development credentials' older URL),
/// saying that no `ccai listen` had announced an address.
#[tokio::test]
async fn a_trigger_says_the_saved_listen_url_cannot_be_read() {
    let sandbox = Sandbox::new();
    let file = sandbox.config_dir().join("listen-url");
    std::fs::create_dir_all(&file).unwrap();
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--client-id", "1", "--secret", "s"],
    ))
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: cannot read the listen URL saved in {} (",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("pass --to URL, or remove it"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

/// A sandbox whose saved listen URL's file holds `saved` of a receiver's URL, and `trigger`'s
/// outcome with it: the sandbox (to trigger again), the file, the receiver and the output.
async fn trigger_with_saved(
    saved: impl Fn(&str) -> String,
) -> (
    Sandbox,
    std::path::PathBuf,
    common::Recorder,
    std::process::Output,
) {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("listen-url");
    let receiver = recorder(|_| (StatusCode::OK, "{}".into())).await;
    std::fs::write(&file, saved(&receiver.url)).unwrap();
    let out = run(trigger(&sandbox, &SIGNED)).await;
    (sandbox, file, receiver, out)
}

/// `trigger`'s arguments in these tests: a type and credentials.
const SIGNED: [&str; 5] = ["message.sent", "--client-id", "1", "--secret", "s"];

/// That `out` is `trigger`'s refusal of the saved URL in `file`: exit 2, one line starting with
/// `error: {says} {file}` and `then`, nothing on stdout.
fn assert_refused(out: &std::process::Output, says: &str, file: &std::path::Path, then: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: {says} {}{then}", file.display())),
        "{err}"
    );
    assert!(stdout(out).is_empty(), "{}", stdout(out));
}

/// A saved listen URL's file holding a line after the URL is an error naming the file: the lines
/// were read as one URL (here `…/web` and `hook`: the trigger went to `…/webhook`). The line's
/// CRLF ending and blank lines after it are no second line.
#[tokio::test]
async fn a_saved_listen_url_of_two_lines_is_an_error_naming_its_file() {
    let (sandbox, file, receiver, out) =
        trigger_with_saved(|url| format!("{url}/web\nhook\n")).await;
    let says = "the listen URL saved in";
    assert_refused(&out, says, &file, " has more than one line: ");
    assert!(
        stderr(&out).contains("pass --to URL, delete it, or run `ccai listen` again"),
        "{}",
        stderr(&out)
    );
    assert!(receiver.requests.lock().unwrap().is_empty());

    std::fs::write(&file, format!("{}/webhook \r\n\r\n  \n", receiver.url)).unwrap();
    let out = run(trigger(&sandbox, &SIGNED)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.requests.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/webhook");
}

/// A lone carriage return (an old Mac line ending) ends the URL's line too: read as part of one
/// line, it was dropped by the URL parser and the lines joined (`…/web` and `hook` sent to
/// `…/webhook`), as with a line feed.
#[tokio::test]
async fn a_saved_listen_url_with_a_lone_carriage_return_is_an_error_naming_its_file() {
    let (_sandbox, file, receiver, out) =
        trigger_with_saved(|url| format!("{url}/web\rhook\n")).await;
    let says = "the listen URL saved in";
    assert_refused(&out, says, &file, " has more than one line: ");
    assert!(receiver.requests.lock().unwrap().is_empty());
}

/// A tab inside the saved URL's line is an error naming the file: the URL parser dropped it, so
/// `…/web<TAB>hook` went to `…/webhook`.
#[tokio::test]
async fn a_saved_listen_url_with_a_tab_inside_is_an_error_naming_its_file() {
    let (_sandbox, file, receiver, out) =
        trigger_with_saved(|url| format!("{url}/web\thook\n")).await;
    let says = "the listen URL saved in";
    let then = " has a space, a tab or another control character inside it: ";
    assert_refused(&out, says, &file, then);
    assert!(receiver.requests.lock().unwrap().is_empty());
}

/// A FIFO in the saved URL's place is an error naming it, at once: reading it waited for a
/// writer, and the trigger hung.
#[cfg(unix)]
#[tokio::test]
async fn a_fifo_in_the_saved_listen_urls_place_is_an_error_not_a_hang() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("listen-url");
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let args = ["message.sent", "--client-id", "1", "--secret", "s"];
    let out = common::exits(trigger(&sandbox, &args)).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: cannot read the listen URL saved in {} (not a regular file: a FIFO, a socket or a device): pass --to URL, or remove it",
            file.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_trigger_the_receiver_rejects_says_which_credentials_to_sign_with() {
    let sandbox = Sandbox::new();
    // Credentials given as flags, which a trigger in another terminal does not share.
    let _listen = Listening::start(
        &sandbox,
        &["--client-id", "acct-1", "--secret", "listen-secret-123"],
    );
    let out = run(trigger(
        &sandbox,
        &[
            "message.sent",
            "--repeat",
            "2",
            "--client-id",
            "acct-1",
            "--secret",
            "trigger-secret-456",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains(" -> 401 "), "{}", stdout(&out));
    let err = stderr(&out);
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 1, "told once, not per attempt: {err}");
    assert!(
        notes[0].contains("--client-id and --secret"),
        "says what to do: {err}"
    );
    assert!(!err.contains("secret-123") && !err.contains("secret-456"));

    // An accepted trigger has nothing to be told.
    let out = run(trigger(
        &sandbox,
        &[
            "message.sent",
            "--client-id",
            "acct-1",
            "--secret",
            "listen-secret-123",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("note:"), "{}", stderr(&out));
}

#[tokio::test]
async fn json_lines() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &["--json"]);
    let out = run(trigger(
        &sandbox,
        &["message.excluded", "--set", "ExcludedReason=Landline"],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let line: Value = serde_json::from_str(&listen.next_line()).expect("a JSON line");
    assert_eq!(line["status"], "received");
    assert_eq!(line["eventType"], "message.excluded");
    assert_eq!(line["data"]["ExcludedReason"], "Landline");
    assert_eq!(line["eventHash"].as_str().unwrap().len(), 32);
    assert!(line["time"].as_str().unwrap().ends_with('Z'));

    run(trigger(&sandbox, &["message.sent", "--secret", "wrong"])).await;
    let line: Value = serde_json::from_str(&listen.next_line()).unwrap();
    assert_eq!(line["status"], "rejected");
    assert_eq!(line["code"], 401);
}

#[tokio::test]
async fn forwards_the_exact_bytes_and_signature() {
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let listen = Listening::start(&sandbox, &["--forward-to", &format!("{}/hook", target.url)]);

    // Unusual formatting and key order: forwarding must not re-serialise.
    let body = "{ \"eventHash\" : \"fwd-1\",\n  \"data\": {\"To\": \"+1\", \"A\": 1.50},\n  \"eventType\": \"message.sent\" }";
    let stored: Value = serde_json::from_slice(
        &std::fs::read(sandbox.config_dir().join("dev-credentials.json")).unwrap(),
    )
    .unwrap();
    let signature = ccai::webhook::sign(
        stored["client_id"].as_str().unwrap(),
        "fwd-1",
        stored["secret"].as_str().unwrap(),
    );
    let response = reqwest::Client::new()
        .post(&listen.url)
        .header("content-type", "application/json; charset=UTF-8")
        .header("x-ccai-signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = listen.next_line();
    assert!(line.contains("-> forwarded 200"), "{line}");

    let received = target.requests.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hook");
    assert_eq!(received[0].method, "POST");
    assert_eq!(&received[0].body[..], body.as_bytes());
    assert_eq!(
        received[0].header("x-ccai-signature").as_deref(),
        Some(signature.as_str())
    );
    assert_eq!(
        received[0].header("content-type").as_deref(),
        Some("application/json; charset=UTF-8"),
        "the original content type"
    );
}

#[tokio::test]
async fn a_failed_forward_answers_5xx_so_the_sender_retries() {
    let sandbox = Sandbox::new();
    let down = format!("http://127.0.0.1:{}/hook", closed_port());
    let listen = Listening::start(&sandbox, &["--forward-to", &down]);
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains(" -> 500 "), "{}", stdout(&out));
    let line = listen.next_line();
    assert!(
        line.contains("forward FAILED") && line.contains("cannot connect"),
        "{line}"
    );

    // A target answering 503 is a failure too.
    let busy = recorder(|_| (StatusCode::SERVICE_UNAVAILABLE, "{}".into())).await;
    let listen = Listening::start(&sandbox, &["--forward-to", &busy.url]);
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    assert!(stdout(&out).contains(" -> 500 "), "{}", stdout(&out));
    assert!(listen.next_line().contains("answered 503"));
}

/// A 5xx was printed with the receiver's text and nothing more, while a 401, 404 or 405 came
/// with what to check: it now says the receiver got the delivery but could not process or store
/// it (a 503: that it asks to retry later, and when), and to look at the receiver's output.
#[tokio::test]
async fn a_trigger_answered_5xx_says_the_receiver_could_not_process_it() {
    let sandbox = Sandbox::new();
    let down = format!("http://127.0.0.1:{}/", closed_port());
    let listen = Listening::start(&sandbox, &["--forward-to", &down]);
    let out = run(trigger(&sandbox, &["message.sent", "--repeat", "2"])).await;
    // Exit 2, as for any answer that is not a 2xx.
    assert_eq!(out.status.code(), Some(2));
    let said = stdout(&out);
    assert!(
        said.lines()
            .all(|l| l.contains(" -> 500 ") && l.contains("event callback failed")),
        "{said:?}"
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "once whatever --repeat: {err}");
    assert!(
        err.starts_with(
            "note: a 500 means the receiver received the delivery but could not process or store it: look at the receiver's output"
        ),
        "{err}"
    );
    assert!(listen.next_line().contains("forward FAILED"));
    drop(listen);

    // A 503, with and without Retry-After: the wait it asks for is shown when given.
    for (retry_after, shown) in [(Some("7"), Some("(Retry-After: 7 s)")), (None, None)] {
        let app = axum::Router::new().fallback(move || async move {
            let mut headers = axum::http::HeaderMap::new();
            if let Some(value) = retry_after {
                headers.insert("retry-after", value.parse().unwrap());
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                "{\"error\":\"busy\"}",
            )
        });
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", server.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(server, app).await });
        let out = run(trigger(
            &sandbox,
            &[
                "message.sent",
                "--to",
                &url,
                "--client-id",
                "c-1",
                "--secret",
                "s-1",
            ],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2));
        assert!(stdout(&out).contains(" -> 503 "), "{}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("note: a 503 means the receiver received the delivery but cannot process or store it now, and asks to retry later"),
            "{err}"
        );
        assert!(err.contains("look at the receiver's output"), "{err}");
        match shown {
            Some(shown) => assert!(err.contains(shown), "{err}"),
            None => assert!(!err.contains("Retry-After"), "{err}"),
        }
    }
}

/// A 502 or 504 is a proxy's or gateway's answer for a receiver behind it that it could not
/// reach, or that did not answer in time: the note said that the receiver received the
/// delivery, which it may well not have.
#[tokio::test]
async fn a_trigger_answered_502_or_504_says_a_gateway_could_not_reach_the_receiver() {
    let sandbox = Sandbox::new();
    for (status, said) in [
        (
            StatusCode::BAD_GATEWAY,
            "note: a 502 comes from a proxy or gateway in front of the receiver, which could not \
             reach it or got no valid answer from it: check that the receiver runs and that the \
             proxy forwards to it, and look at the proxy's output and the receiver's",
        ),
        (
            StatusCode::GATEWAY_TIMEOUT,
            "note: a 504 comes from a proxy or gateway in front of the receiver, which got no \
             answer from it in time: the receiver may have got the delivery or not; look at its \
             output and the proxy's",
        ),
    ] {
        let app = axum::Router::new().fallback(move || async move { (status, "bad gateway") });
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", server.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(server, app).await });
        let out = run(trigger(
            &sandbox,
            &[
                "message.sent",
                "--to",
                &url,
                "--client-id",
                "c-1",
                "--secret",
                "s-1",
            ],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err, format!("{said}\n"));
        assert!(!err.contains("received the delivery"), "{err}");
    }
}

/// An https:// URL for a plain HTTP server (`ccai listen` serves no TLS): rustls reads its
/// `HTTP/1.1 400` as a corrupt record. The error said "cannot connect … is `ccai listen`
/// running there?", while it was.
#[tokio::test]
async fn https_to_a_plain_http_server_says_the_tls_handshake_failed_and_to_use_http() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &[]);
    let https = listen.url.replacen("http://", "https://", 1);
    let out = run(trigger(&sandbox, &["message.sent", "--to", &https])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot send to {https}: the TLS handshake failed"))
            && err.contains("does not speak TLS")
            && err.contains("use http:// instead of https://"),
        "{err}"
    );
    assert!(!err.contains("running there?"), "{err}");

    // `--no-store --forward-to` an https:// URL on a plain HTTP server: the line says the same.
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let https_target = format!("{}/hook", target.url.replacen("http://", "https://", 1));
    let forwarding = Listening::start(&sandbox, &["--forward-to", &https_target]);
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--to", &forwarding.url],
    ))
    .await;
    assert!(stdout(&out).contains(" -> 500 "), "{}", stdout(&out));
    let line = forwarding.next_line();
    assert!(
        line.contains("forward FAILED")
            && line.contains("the TLS handshake failed")
            && line.contains("use http:// instead of https://"),
        "{line}"
    );
    assert!(target.requests.lock().unwrap().is_empty());
}

/// A TLS server on 127.0.0.1 whose certificate no public authority signed; its port.
fn tls_server_with_a_self_signed_certificate() -> u16 {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(&include_bytes!("fixtures/self-signed-cert.der")[..]);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        &include_bytes!("fixtures/self-signed-key.der")[..],
    ));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.into_owned()], key.clone_key())
            .expect("certificate"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            // Runs the handshake, which the client ends by refusing the certificate.
            let _ = std::io::Read::read(&mut tls, &mut [0; 1]);
        }
    });
    port
}

/// A real TLS server whose certificate is refused is not told to use http://.
#[tokio::test]
async fn a_refused_certificate_is_told_as_such_without_advising_http() {
    let sandbox = Sandbox::new();
    let url = format!(
        "https://127.0.0.1:{}/hook",
        tls_server_with_a_self_signed_certificate()
    );
    let out = run(trigger(
        &sandbox,
        &[
            "message.sent",
            "--to",
            &url,
            "--client-id",
            "c",
            "--secret",
            "s",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot send to {url}: the TLS handshake failed"))
            && err.contains("its certificate was refused (invalid peer certificate"),
        "{err}"
    );
    assert!(!err.contains("http://"), "{err}");
}

/// A target answering `status` with `Location: location` to every request.
async fn redirector(status: StatusCode, location: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (status, [("location", location)], "moved") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

/// A redirect from the target is a failed forward, not followed: a 307 would send the signed
/// body and its signature to another host, and a 302 would turn it into a bodiless GET whose 200
/// looked like a delivery (and the sender, answered 200, would not retry).
#[tokio::test]
async fn a_redirect_from_the_target_is_a_failed_forward_and_is_not_followed() {
    let sandbox = Sandbox::new();
    let elsewhere = recorder(|_| (StatusCode::OK, "{}".into())).await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::FOUND] {
        let target = redirector(status, format!("{}/elsewhere", elsewhere.url)).await;
        let listen = Listening::start(&sandbox, &["--forward-to", &target]);
        let out = run(trigger(&sandbox, &["message.sent"])).await;
        assert!(stdout(&out).contains(" -> 500 "), "{}", stdout(&out));
        let line = listen.next_line();
        assert!(
            line.contains("forward FAILED")
                && line.contains(&format!("answered {}", status.as_u16()))
                && line.contains("give the final URL"),
            "{line}"
        );
    }
    // `ccai trigger` straight at a redirect: not followed either, and it says what to do.
    let target = redirector(
        StatusCode::MOVED_PERMANENTLY,
        format!("{}/elsewhere", elsewhere.url),
    )
    .await;
    let out = run(trigger(&sandbox, &["message.sent", "--to", &target])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains(" -> 301 "), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("a redirect: not followed")
            && stderr(&out).contains("give the final URL"),
        "{}",
        stderr(&out)
    );
    assert!(
        elsewhere.requests.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn events_filter_acknowledges_but_hides_other_types() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &["--events", "message.sent"]);
    let out = run(trigger(&sandbox, &["message.incoming"])).await;
    assert!(out.status.success(), "other types are still acknowledged");
    run(trigger(&sandbox, &["message.sent"])).await;
    let next = listen.next_line();
    assert!(
        next.contains("message.sent"),
        "a filtered type was printed: {next}"
    );
}

/// `ccai events list --type` with a typo lists the known event types; `ccai listen --events` with
/// one only said it was not known, leaving the user to find which are.
#[tokio::test]
async fn an_unknown_events_type_is_told_with_the_known_ones() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &["--events", "message.snet"]);
    let note = listen
        .banner
        .iter()
        .find(|line| line.contains("not a known event type"))
        .unwrap_or_else(|| panic!("no note in {:?}", listen.banner));
    assert!(
        note.starts_with("note: --events \"message.snet\""),
        "{note}"
    );
    assert!(
        note.contains("message.sent") && note.contains("message.error.cloudcontact"),
        "{note}"
    );
}

#[tokio::test]
async fn repeats_are_acknowledged_once_processed() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &[]);
    let out = run(trigger(&sandbox, &["message.sent", "--repeat", "3"])).await;
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).matches(" -> 200 ").count(),
        3,
        "{}",
        stdout(&out)
    );
    // The callback runs once for the event; repeats are answered from the deduplicator, each
    // with a line saying so (with the store they say "already stored"). A different event sent
    // afterwards is the very next line: no repeat was processed again.
    let first = listen.next_line();
    assert!(first.contains("message.sent"), "{first}");
    let hash = first
        .split_whitespace()
        .find(|w| w.starts_with('#'))
        .expect("a short hash")
        .to_owned();
    for _ in 0..2 {
        let repeat = listen.next_line();
        assert!(
            repeat.contains("message.sent")
                && repeat.ends_with(&format!("duplicate of {hash} (already received)")),
            "{repeat}"
        );
    }
    let out = run(trigger(&sandbox, &["message.excluded"])).await;
    assert!(out.status.success());
    let next = listen.next_line();
    assert!(
        next.contains("message.excluded") && !next.contains("duplicate"),
        "a repeat was processed again: {next}"
    );

    // As JSON lines, in the store's shape.
    let json = Listening::start(&sandbox, &["--json"]);
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--repeat", "2", "--to", &json.url],
    ))
    .await;
    assert!(out.status.success());
    let first: serde_json::Value = serde_json::from_str(&json.next_line()).expect("json");
    let repeat: serde_json::Value = serde_json::from_str(&json.next_line()).expect("json");
    assert_eq!(first["status"], "received");
    assert_eq!(repeat["status"], "duplicate");
    assert_eq!(repeat["eventType"], "message.sent");
    assert_eq!(repeat["eventHash"], first["eventHash"]);
    // --quiet prints none.
    let quiet = Listening::start(&sandbox, &["--quiet"]);
    let out = run(trigger(
        &sandbox,
        &["message.sent", "--repeat", "2", "--to", &quiet.url],
    ))
    .await;
    assert!(out.status.success());
    let printed = quiet
        .out
        .recv_timeout(std::time::Duration::from_millis(500));
    assert!(printed.is_err(), "{printed:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_stops_cleanly() {
    let sandbox = Sandbox::new();
    let mut listen = Listening::start(&sandbox, &[]);
    interrupt(listen.child.id());
    let status = listen.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = Vec::new();
    while let Ok(line) = listen.err.recv_timeout(WAIT) {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l == "Stopped."), "{rest:?}");
}

#[tokio::test]
async fn listen_errors_are_clear() {
    let sandbox = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", &port]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot listen on 127.0.0.1:{port}: the port is in use (by another program, \
             or another `ccai listen`): pick another with --port\n"
        )
    );

    // The view's port or the admin listener's taken: the hint names the commands that serve
    // there (the view's default 8081 is most often another `ccai ui`), not `ccai listen`.
    let store = sandbox.path().join("taken-port.db");
    let store = store.to_str().unwrap();
    for (args, said) in [
        (
            &["ui", "--store", store, "--port", &port][..],
            format!(
                "cannot serve the view on 127.0.0.1:{port}: the port is in use (by another \
                 program, or another `ccai ui` or `ccai listen --ui`): pick another with --port"
            ),
        ),
        (
            &[
                "listen",
                "--store",
                store,
                "--port",
                "0",
                "--ui",
                "--ui-port",
                &port,
            ],
            format!(
                "cannot serve the view on 127.0.0.1:{port}: the port is in use (by another \
                 program, or another `ccai ui` or `ccai listen --ui`): pick another with \
                 --ui-port"
            ),
        ),
        (
            &[
                "listen",
                "--store",
                store,
                "--port",
                "0",
                "--admin-port",
                &port,
            ],
            format!(
                "cannot serve the admin routes on 127.0.0.1:{port}: the port is in use (by \
                 another program, or another `ccai listen --admin-port`): pick another with \
                 --admin-port"
            ),
        ),
    ] {
        if args[0] == "ui" {
            // `ccai ui` needs an inbox to show.
            let inbox =
                ccai::inbox::SqliteStore::open(store, ccai::inbox::SqliteOptions::new()).unwrap();
            ccai::inbox::Store::close(&inbox).await;
        }
        let mut cmd = sandbox.ccai();
        cmd.args(args);
        let out = common::exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&out), format!("error: {said}\n"), "{args:?}");
    }

    // The view's or the admin listener's port the same as the receiver's, or as each other's:
    // said to be this receiver's own, not another program's.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let store = sandbox.path().join("own-port.db");
    let store = store.to_str().unwrap();
    for (flags, said) in [
        (
            &["--port", &free_port, "--ui", "--ui-port", &free_port][..],
            "--ui-port {p} is this receiver's --port too",
        ),
        (
            &["--port", &free_port, "--admin-port", &free_port],
            "--admin-port {p} is this receiver's --port too",
        ),
        (
            &[
                "--port",
                "0",
                "--ui",
                "--ui-port",
                &free_port,
                "--admin-port",
                &free_port,
            ],
            "--admin-port {p} is this receiver's --ui-port too",
        ),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--store", store]).args(flags);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: {}: give each listener its own port\n",
                said.replace("{p}", &free_port)
            ),
            "{flags:?}"
        );
    }
    // On different addresses, named, one port serves both (127.0.0.2 is a loopback address on
    // Linux only).
    if cfg!(target_os = "linux") {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--store", store, "--port", &free_port])
            .args(["--ui", "--ui-host", "127.0.0.2", "--ui-port", &free_port]);
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let first = std::io::BufRead::lines(std::io::BufReader::new(err))
            .map_while(Result::ok)
            .find(|l| l.starts_with("UI on ") || l.starts_with("error"))
            .unwrap_or_default();
        interrupt(child.id());
        let _ = child.wait();
        assert!(first.starts_with("UI on "), "{first}");
    }

    // An address that is not this machine's (TEST-NET-3): another port would not help.
    let mut cmd = sandbox.ccai();
    cmd.args([
        "listen",
        "--no-store",
        "--port",
        "0",
        "--host",
        "203.0.113.7",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("203.0.113.7 is not an address of this machine")
            && stderr(&out).contains("with --host"),
        "{}",
        stderr(&out)
    );

    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", "0", "--forward-to", "nowhere"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --forward-to"),
        "{}",
        stderr(&out)
    );

    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "sms.sent"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown event type \"sms.sent\""),
        "{}",
        stderr(&out)
    );

    let mut cmd = sandbox.ccai();
    cmd.args([
        "trigger",
        "message.sent",
        "--secret",
        "s",
        "--client-id",
        "c",
        "--to",
    ])
    .arg(format!("http://127.0.0.1:{}/webhook", closed_port()));
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[tokio::test]
async fn a_configured_secret_is_never_printed() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_WEBHOOK_SECRET", "REAL-PROD-SECRET");
    // Only the secret configured: the development client id is used, the secret is not shown.
    let listen = Listening::start_with(cmd, &[]);
    let banner = listen.banner.join("\n");
    assert!(!banner.contains("REAL-PROD-SECRET"), "{banner}");
    assert!(
        banner.contains("Development client id: ccai-dev"),
        "{banner}"
    );
    assert!(
        banner.contains("note: using your configured secret"),
        "{banner}"
    );
}

#[tokio::test]
async fn concurrent_first_runs_agree_on_one_secret() {
    for _ in 0..10 {
        let sandbox = Sandbox::new();
        // Both start before either has written the file.
        let a = Listening::spawn(sandbox.ccai(), &[]);
        let b = Listening::spawn(sandbox.ccai(), &[]);
        let (a, b) = (Listening::announced(a), Listening::announced(b));
        let secret = |l: &Listening| {
            l.banner
                .iter()
                .find(|x| x.starts_with("Development secret:"))
                .cloned()
        };
        assert_eq!(secret(&a), secret(&b));
    }
}

#[tokio::test]
async fn listen_rejects_route_syntax_and_brackets_ipv6() {
    let sandbox = Sandbox::new();
    for path in ["/:id", "/{a", "/*rest", "webhook"] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0", "--path", path]);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("must be a plain path"),
            "{}",
            stderr(&out)
        );
    }
    assert!(
        !sandbox.config_dir().join("dev-credentials.json").exists(),
        "a listener that never ran recorded nothing"
    );
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let listen = Listening::start(&sandbox, &["--host", "::1"]);
        assert!(listen.url.starts_with("http://[::1]:"), "{}", listen.url);
        let out = run(trigger(&sandbox, &["message.sent"])).await;
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(listen.next_line().contains("message.sent"));
    }
}

/// A bind to every address announces where a client on this machine reaches it: 127.0.0.1 for
/// 0.0.0.0, [::1] for `::` (which takes no IPv4 where IPv6 sockets are IPv6-only), and so do the
/// view's and the admin listener's lines; `[::]`, as a URL writes it, is taken as `::`. `::` was
/// announced as 127.0.0.1, and `[::]` refused.
#[tokio::test]
async fn a_bind_to_every_address_announces_the_loopback() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ipv6 {
        eprintln!("skipped `::` and `[::]`: this machine has no IPv6 loopback");
    }
    for (host, shown) in [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("[::]", "[::1]")] {
        if !ipv6 && shown == "[::1]" {
            continue;
        }
        let sandbox = Sandbox::new();
        let listen = Listening::announced(Listening::launch(
            sandbox.ccai(),
            &[
                "--port",
                "0",
                "--host",
                host,
                "--ui",
                "--ui-port",
                "0",
                "--ui-host",
                host,
                "--admin-port",
                "0",
                "--admin-host",
                host,
                "--admin-token",
                "an-admin-token-for-this-test",
            ],
        ));
        let banner = listen.banner.join("\n");
        let expected = format!("http://{shown}:");
        assert!(listen.url.starts_with(&expected), "{host}: {banner}");
        for line in ["UI on ", "Admin listener on "] {
            assert!(
                listen
                    .banner
                    .iter()
                    .any(|l| l.starts_with(&format!("{line}{expected}"))),
                "{host}: {line}: {banner}"
            );
        }
        // The announced URL is the one `trigger` sends to, and it arrives.
        let out = run(trigger(&sandbox, &["message.sent"])).await;
        assert!(
            out.status.success(),
            "{host}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(listen.next_line().contains("message.sent"), "{host}");
    }
}

/// A `.` or `..` segment is resolved away by every client before sending (`ccai trigger` would
/// POST `/a/../b` to `/b`): such a path is refused, while dots inside a segment are plain text.
#[tokio::test]
async fn listen_refuses_dot_segments_no_client_can_reach() {
    let sandbox = Sandbox::new();
    for path in ["/a/../b", "/./webhook", "/webhook/.", "/..", "/.", "/a/./"] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--no-store", "--port", "0", "--path", path]);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains("`.` or `..` segment") && err.contains("write the path without them"),
            "{path}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{path}: {err}");
    }
    let listen = Listening::start(&sandbox, &["--path", "/v1.2/..hook./..."]);
    assert!(listen.url.ends_with("/v1.2/..hook./..."), "{}", listen.url);
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(listen.next_line().contains("message.sent"));
}

#[tokio::test]
async fn trigger_with_a_data_file_and_put_delivery() {
    let sandbox = Sandbox::new();
    let listen = Listening::start(&sandbox, &["--accept-put", "--json"]);
    let file = sandbox.path().join("data.json");
    std::fs::write(
        &file,
        r#"{"To": "+15550001111", "CampaignId": 5, "Custom": true}"#,
    )
    .unwrap();
    let out = run(trigger(
        &sandbox,
        &[
            "message.sent",
            "--method",
            "PUT",
            "--data-file",
            file.to_str().unwrap(),
            "--set",
            "CampaignId=6",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("PUT "), "{}", stdout(&out));
    let line: Value = serde_json::from_str(&listen.next_line()).unwrap();
    assert_eq!(
        line["data"],
        serde_json::json!({"To": "+15550001111", "CampaignId": 6, "Custom": true})
    );

    // `--data-file -` reads the object from standard input.
    let mut cmd = trigger(&sandbox, &["message.sent", "--data-file", "-"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ccai trigger");
    let mut input = child.stdin.take().expect("stdin");
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        input
            .write_all(br#"{"To": "+15550002222"}"#)
            .expect("write");
        drop(input);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let line: Value = serde_json::from_str(&listen.next_line()).unwrap();
    assert_eq!(line["data"], serde_json::json!({"To": "+15550002222"}));
    // Nothing on it (not a terminal here: no hint) is not JSON, and says where it came from.
    let out = run(trigger(&sandbox, &["message.sent", "--data-file", "-"])).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("error: --data-file - (standard input): not valid JSON"),
        "{}",
        stderr(&out)
    );

    // Refused before anything is sent: a data file that is not an object, and one with an
    // integer past 64 bits (it would be sent as a float with other digits).
    let refused = [
        ("[1, 2]", "must hold a JSON object"),
        (
            r#"{"ContactId": 123456789012345678901234}"#,
            "too large to send exactly",
        ),
    ];
    for (content, expected) in refused {
        std::fs::write(&file, content).unwrap();
        let args = ["message.sent", "--data-file", file.to_str().unwrap()];
        let out = run(trigger(&sandbox, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{content}");
        assert!(
            stderr(&out).contains(expected),
            "{content}: {}",
            stderr(&out)
        );
    }

    // A file that cannot be read (missing, a folder, not UTF-8) says what to pass instead, on
    // one line, without the OS error number.
    std::fs::write(&file, b"{\"To\": \"\xff\"}").unwrap();
    let not_utf8 = file.to_str().unwrap().to_owned();
    let missing = sandbox.path().join("nope.json");
    let cases = [
        (missing.to_str().unwrap(), "cannot read --data-file"),
        (sandbox.path().to_str().unwrap(), "cannot read --data-file"),
        (not_utf8.as_str(), "not valid JSON (not UTF-8 text)"),
    ];
    for (path, expected) in cases {
        let out = run(trigger(&sandbox, &["message.sent", "--data-file", path])).await;
        assert_eq!(out.status.code(), Some(2), "{path}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{err}");
        if expected.starts_with("cannot read") {
            assert!(
                err.trim_end().ends_with("; pass --data-file the path of a JSON file holding the object to send as data, or leave it out to send the event type's sample data"),
                "{err}"
            );
            assert!(!err.contains("os error"), "{err}");
        }
    }
}

/// `--set Segments=abc` (an integer field) was sent without a word: it is still sent (a receiver's
/// handling of it may be what is tried), with one warning line naming the field, the type and the
/// value. A value of the field's type is sent as before, without a warning.
#[tokio::test]
async fn trigger_warns_of_a_set_value_the_event_type_defines_otherwise() {
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let send = |set: &'static [&'static str]| {
        let mut cmd = trigger(&sandbox, &["message.sent", "--to", &target.url]);
        cmd.args(["--client-id", "1231", "--secret", "my-webhook-secret"]);
        for item in set {
            cmd.args(["--set", item]);
        }
        run(cmd)
    };
    let last_data = || target.requests.lock().unwrap().last().unwrap().json()["data"].clone();

    let out = send(&["Segments=abc"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(last_data()["Segments"], "abc");
    assert_eq!(
        stderr(&out).trim_end(),
        "warning: --set \"Segments=abc\": data field `Segments` must be an integer or a string \
         holding one, found a string that is not a number; sending it anyway (\"abc\"), which a \
         receiver that types message.sent data refuses"
    );

    // Two fields, each named; the last --set of a field is the one told.
    let out = send(&["TotalPrice=1", "TotalPrice=cheap", "Segments=1.5"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(
        lines[0].starts_with(
            "warning: --set \"Segments=1.5\": data field `Segments` must be an integer"
        ) && lines[0].contains("(1.5)"),
        "{said}"
    );
    assert!(
        lines[1].starts_with(
            "warning: --set \"TotalPrice=cheap\": data field `TotalPrice` must be a number"
        ) && lines[1].contains("(\"cheap\")"),
        "{said}"
    );

    // Values of the field's type: sent as before, nothing said.
    let out = send(&["Segments=3", "TotalPrice=0.02", "SmsSid=\"42\"", "Custom=x"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let data = last_data();
    assert_eq!(data["Segments"], 3);
    assert_eq!(data["TotalPrice"], 0.02);
    assert_eq!(data["SmsSid"], "42");
    assert_eq!(data["Custom"], "x");
}

#[tokio::test]
async fn trigger_method_is_post_or_put_in_any_case() {
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let to = format!("{}/hook", target.url);
    let send = |method: &str| {
        run(trigger(
            &sandbox,
            &[
                "message.sent",
                "--method",
                method,
                "--to",
                &to,
                "--client-id",
                "1231",
                "--secret",
                "my-webhook-secret",
            ],
        ))
    };

    let out = send("put").await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("PUT {to} message.sent ")),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).trim_end().ends_with("-> 200 {}"),
        "{}",
        stdout(&out)
    );
    let received = target.requests.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "PUT");
    // The delivery is what CloudContactAI sends: it verifies and parses.
    let verifier = ccai::signature::Verifier::new("1231", "my-webhook-secret").unwrap();
    let event = verifier
        .verify_event(
            received[0].header("x-ccai-signature").as_deref(),
            &received[0].body,
        )
        .unwrap();
    assert_eq!(event.event_type, "message.sent");
    assert_eq!(event.data["To"], "+14155550100");

    let out = send("patch").await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(
        err.trim_end(),
        "error: --method \"patch\": use POST or PUT",
        "{err}"
    );
    assert_eq!(
        target.requests.lock().unwrap().len(),
        1,
        "nothing more was sent"
    );
}

/// Settings meant for other commands do not stop a plain receiver: `CCAI_UI_TOKEN` (for
/// `ccai ui`) without `--ui`, `CCAI_STORE` (for `ccai events`) with `--no-store`. An `--events`
/// that names no type (which would drop every event while answering 200) is refused.
#[tokio::test]
async fn settings_for_other_commands_do_not_stop_listen() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_UI_TOKEN", "abcdefghijklmnopqrstuv")
        .env("CCAI_STORE", sandbox.path().join("events.db"));
    let listen = Listening::start_with(cmd, &[]);
    assert!(
        listen.url.starts_with("http://127.0.0.1:"),
        "{}",
        listen.url
    );
    drop(listen);
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", "0", "--no-store", "--events", " , "]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("names no event type"),
        "{}",
        stderr(&out)
    );
    let mut cmd = sandbox.ccai();
    cmd.args([
        "listen",
        "--port",
        "0",
        "--no-store",
        "--idle-timeout",
        "0s",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid --idle-timeout \"0s\": must be longer than 0"),
        "{}",
        stderr(&out)
    );
}

/// With a configured client id and secret (no development file), `ccai trigger` still sends
/// to where `ccai listen` listens, not to port 8080.
#[tokio::test]
async fn trigger_finds_listen_with_configured_credentials() {
    let sandbox = Sandbox::new();
    let configured = |mut cmd: std::process::Command| {
        cmd.env("CCAI_CLIENT_ID", "1231")
            .env("CCAI_WEBHOOK_SECRET", "a-configured-secret");
        cmd
    };
    let listen = Listening::start_with(configured(sandbox.ccai()), &[]);
    let mut cmd = configured(sandbox.ccai());
    cmd.args(["trigger", "message.sent"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(listen.next_line().contains("message.sent"));
}

/// A closed standard error (`ccai listen 2>&1 | head -3`) does not make the receiver panic
/// on its way out: Ctrl-C still exits 0.
#[cfg(unix)]
#[tokio::test]
async fn a_closed_stderr_does_not_make_listen_panic() {
    use std::io::BufRead;
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .ccai()
        .args(["listen", "--port", "0", "--no-store"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut reader = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.starts_with("Listening on") {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "no banner");
    }
    drop(reader);
    interrupt(child.id());
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

/// Ctrl-C lets requests in progress finish for `--grace`, not for the server's default 30 s:
/// a client that sent half a request does not hold the exit.
#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_waits_for_requests_in_progress_only_for_the_grace() {
    for mode in [&[][..], &["--no-store"]] {
        let sandbox = Sandbox::new();
        let mut args = vec!["--port", "0", "--grace", "1s"];
        args.extend_from_slice(mode);
        let mut listen = Listening::announced(Listening::launch(sandbox.ccai(), &args));
        let half = half_request(&listen);
        interrupt(listen.child.id());
        // Well under the 30 s the server would otherwise wait.
        let status = exit_within(
            &mut listen.child,
            std::time::Duration::from_secs(15),
            &format!("Ctrl-C with --grace 1s {mode:?}"),
        );
        assert_eq!(status.code(), Some(0), "{mode:?}");
        drop(half);
    }
}

/// A second Ctrl-C during the graceful stop ends `listen` at once, with the shell's code for an
/// interrupted process, instead of waiting out `--grace`.
#[cfg(unix)]
#[tokio::test]
async fn a_second_ctrl_c_stops_at_once() {
    for mode in [&[][..], &["--no-store"]] {
        let sandbox = Sandbox::new();
        let mut args = vec!["--port", "0", "--grace", "120s"];
        args.extend_from_slice(mode);
        let mut listen = Listening::announced(Listening::launch(sandbox.ccai(), &args));
        let half = half_request(&listen);
        interrupt(listen.child.id());
        let mut said = Vec::new();
        while !said
            .last()
            .is_some_and(|l: &String| l.contains("Ctrl-C again to stop at once"))
        {
            said.push(
                listen
                    .err
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("{mode:?}: no hint after Ctrl-C: {said:?}")),
            );
        }
        // The same words as after a SIGTERM ("SIGTERM or Ctrl-C again …"), the key first.
        assert_eq!(
            said.last().map(String::as_str),
            Some("Stopping… (Ctrl-C again to stop at once)"),
            "{mode:?}"
        );
        assert!(
            listen.child.try_wait().expect("try_wait").is_none(),
            "{mode:?}: the first Ctrl-C waits for the request in progress"
        );
        interrupt(listen.child.id());
        let status = exit_within(
            &mut listen.child,
            std::time::Duration::from_secs(15),
            &format!("the second Ctrl-C with --grace 120s {mode:?}"),
        );
        assert_eq!(status.code(), Some(130), "{mode:?}");
        let rest: Vec<String> = listen.err.try_iter().collect();
        assert!(
            rest.iter().any(|l| l.starts_with("Stopped at once")),
            "{mode:?}: {rest:?}"
        );
        drop(half);
    }
}

/// With configured credentials `listen` still records its URL for `trigger`, in a config folder
/// it creates owner-only: development credentials (secrets) may later go in the same folder.
#[cfg(unix)]
#[tokio::test]
async fn the_config_folder_listen_creates_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let listen = Listening::start(
        &sandbox,
        &["--client-id", "1231", "--secret", "configured-secret"],
    );
    let dir = sandbox.config_dir();
    let recorded = std::fs::read_to_string(dir.join("listen-url")).unwrap();
    assert_eq!(recorded.trim(), listen.url);
    assert!(!dir.join("dev-credentials.json").exists());
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// `trigger` without `--to` and a saved listen URL that is not usable names the file it came
/// from and says what to do; it does not blame `--to`, which was not given, nor show the URL.
#[tokio::test]
async fn a_bad_saved_listen_url_names_its_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let dev_file = dir.join("dev-credentials.json");
    let listen_file = dir.join("listen-url");
    let dev = |listen_url: &str| {
        serde_json::json!({"client_id": "ccai-dev", "secret": "whsec_dev_stored", "listen_url": listen_url})
            .to_string()
    };
    std::fs::write(&dev_file, dev("http://127.0.0.1:9/webhook")).unwrap();

    // From the listen-url file.
    std::fs::write(&listen_file, "ftp://user:tok3n@x/webhook\n").unwrap();
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&listen_file.display().to_string()), "{err}");
    assert!(!err.contains("invalid --to"), "{err}");
    assert!(
        err.contains("pass --to") && err.contains("ccai listen"),
        "{err}"
    );
    assert!(
        !err.contains("tok3n") && !err.contains("whsec_dev_stored"),
        "{err}"
    );

    // From the development credentials, when there is no listen-url file.
    std::fs::remove_file(&listen_file).unwrap();
    std::fs::write(&dev_file, dev("ftp://user:tok3n@x/webhook")).unwrap();
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&dev_file.display().to_string()), "{err}");
    assert!(!err.contains("invalid --to"), "{err}");
    assert!(
        !err.contains("tok3n") && !err.contains("whsec_dev_stored"),
        "{err}"
    );

    // A bad --to is still --to's fault, and a good one wins over the saved URL.
    let out = run(trigger(&sandbox, &["message.sent", "--to", "ftp://y"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --to"), "{}", stderr(&out));
    let receiver = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let to = format!("{}/webhook", receiver.url);
    let out = run(trigger(&sandbox, &["message.sent", "--to", &to])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(receiver.requests.lock().unwrap().len(), 1);
}

/// `trigger` without `--to` sends to the address the last `listen` announced; once that one has
/// stopped, the error says where the address came from: the user may be looking at another
/// listener, still running, and read "is `ccai listen` running there?" as nonsense.
#[tokio::test]
async fn an_unreachable_saved_listen_url_says_it_is_the_last_listens() {
    let sandbox = Sandbox::new();
    let first = Listening::start(&sandbox, &[]);
    let second = Listening::start(&sandbox, &[]);
    let last = second.url.clone();
    drop(second);
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot connect to {last}")), "{err}");
    assert!(
        err.contains("the address a `ccai listen` saved for trigger; it may have stopped"),
        "{err}"
    );
    assert!(err.contains("Pass --to URL"), "{err}");

    // Given with --to, it is the user's own: nothing more is said of it.
    let to = format!("http://127.0.0.1:{}/webhook", closed_port());
    let out = run(trigger(&sandbox, &["message.sent", "--to", &to])).await;
    let err = stderr(&out);
    assert!(err.contains("cannot connect to"), "{err}");
    assert!(!err.contains("saved for trigger"), "{err}");
    drop(first);
}

/// A `listen` that stops cleanly puts back the address it replaced: `trigger` without `--to`
/// reaches the one started before it, still running (it was sent to the stopped one).
#[cfg(unix)]
#[tokio::test]
async fn a_listen_that_stops_gives_trigger_back_the_one_before() {
    let sandbox = Sandbox::new();
    let first = Listening::start(&sandbox, &[]);
    let mut second = Listening::start(&sandbox, &[]);
    interrupt(second.child.id());
    assert_eq!(second.child.wait().unwrap().code(), Some(0));
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("POST {} ", first.url)),
        "{}",
        stdout(&out)
    );
    assert!(first.next_line().contains("message.sent"));

    // Once another has recorded its own address, a stop leaves that one.
    let mut third = Listening::start(&sandbox, &[]);
    let fourth = Listening::start(&sandbox, &[]);
    interrupt(third.child.id());
    assert_eq!(third.child.wait().unwrap().code(), Some(0));
    let out = run(trigger(&sandbox, &["message.sent"])).await;
    assert!(
        stdout(&out).contains(&format!("POST {} ", fourth.url)),
        "{}",
        stdout(&out)
    );
}

/// A `listen` that stops does not put back the address of one that has gone since (killed, or
/// stopped while the second held the file): `trigger` was sent to that dead address, named as
/// the saved one, though no listener had run there for a while. The file keeps the stopped
/// one's address, as after a lone listener's stop.
#[cfg(unix)]
#[tokio::test]
async fn a_listen_that_stops_does_not_give_trigger_a_dead_one() {
    for kill_first in [true, false] {
        let sandbox = Sandbox::new();
        let mut first = Listening::start(&sandbox, &[]);
        let mut second = Listening::start(&sandbox, &[]);
        if kill_first {
            first.child.kill().unwrap();
        } else {
            interrupt(first.child.id());
        }
        first.child.wait().unwrap();
        interrupt(second.child.id());
        assert_eq!(second.child.wait().unwrap().code(), Some(0));
        let recorded = std::fs::read_to_string(sandbox.config_dir().join("listen-url")).unwrap();
        assert_eq!(recorded.trim(), second.url, "kill_first={kill_first}");
        let out = run(trigger(&sandbox, &["message.sent"])).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("cannot connect to {}", second.url))
                && err.contains("it may have stopped"),
            "kill_first={kill_first}: {err}"
        );
        assert!(!err.contains(&first.url), "kill_first={kill_first}: {err}");
    }
}

/// `--json` prints `data` exactly as it arrived (integers past 64 bits, key order), on one line
/// whatever spacing the sender used: it went through a `Value`, which turned
/// `12345678901234567890123` into `1.2345678901234568e+22` and sorted the keys.
#[tokio::test]
async fn json_lines_keep_data_exactly_and_on_one_line() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", "1231")
        .env("CCAI_WEBHOOK_SECRET", "a-configured-secret");
    let listen = Listening::start_with(cmd, &["--json"]);
    let body = "{\"eventType\":\"message.sent\",\"eventHash\":\"exact-1\",\"data\":{\n  \"Zeta\": 1,\n  \"ContactId\": 12345678901234567890123,\n  \"Note\": \"two  spaces\"\n}}";
    let status = reqwest::Client::new()
        .post(&listen.url)
        .header("content-type", "application/json")
        .header(
            "x-ccai-signature",
            ccai::webhook::sign("1231", "exact-1", "a-configured-secret"),
        )
        .body(body)
        .send()
        .await
        .expect("listen answers")
        .status();
    assert_eq!(status, StatusCode::OK);
    let line = listen.next_line();
    assert!(
        line.contains(
            r#""data":{"Zeta":1,"ContactId":12345678901234567890123,"Note":"two  spaces"}"#
        ),
        "{line}"
    );
    let parsed: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(parsed["eventHash"], "exact-1");
}

/// Standard output that nobody reads (a paused `| less`, a stalled log shipper) does not stop the
/// receiver: deliveries are still answered, `/healthz` answers, a stop is clean, and the lines left
/// out are told on stderr. Once the pipe was full, writing a line blocked the runtime's threads:
/// every delivery hung, `/healthz` went silent, and not even a second SIGTERM stopped it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_nobody_reads_does_not_stop_the_receiver() {
    for mode in [&["--no-store"][..], &[]] {
        let sandbox = Sandbox::new();
        let mut cmd = sandbox.ccai();
        cmd.arg("listen")
            .args(["--port", "0", "--admin-port", "0", "--json"])
            .args(["--client-id", "1231", "--secret", "unread-output-secret"])
            .args(mode)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ccai listen");
        // Held open, never read.
        let _unread = child.stdout.take().expect("stdout");
        let err = common::lines(child.stderr.take().expect("stderr"));
        let (_, out) = std::sync::mpsc::channel();
        let mut listen = Listening::announced(Spawned { child, out, err });
        let admin = listen
            .banner
            .iter()
            .find_map(|l| l.strip_prefix("Admin listener on "))
            .and_then(|l| l.split_whitespace().next())
            .expect("the admin listener's address")
            .to_owned();

        // Lines of 4 KiB or more: the pipe (64 KiB) is full after a few dozen.
        let http = common::sender_client();
        let filler = "x".repeat(4096);
        for i in 0..1500 {
            let hash = format!("unread-{i}");
            let body = format!(
                r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"To":"+1","Message":"{filler}"}}}}"#
            );
            let status = http
                .post(&listen.url)
                .header("content-type", "application/json")
                .header(
                    "x-ccai-signature",
                    ccai::webhook::sign("1231", &hash, "unread-output-secret"),
                )
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{mode:?}: delivery {i} not answered: {e}"))
                .status();
            assert_eq!(status, StatusCode::OK, "{mode:?}: delivery {i}");
        }
        let health = http
            .get(format!("{admin}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: /healthz not answered: {e}"));
        assert_eq!(health.status(), StatusCode::OK, "{mode:?}");

        interrupt(listen.child.id());
        let status = exit_within(&mut listen.child, WAIT, "Ctrl-C with output nobody reads");
        assert_eq!(status.code(), Some(0), "{mode:?}");
        let said: Vec<String> = listen.err.try_iter().collect();
        assert!(
            said.iter()
                .any(|l| l.contains("standard output is not being read")),
            "{mode:?}: {said:?}"
        );
        assert!(said.iter().any(|l| l == "Stopped."), "{mode:?}: {said:?}");
    }
}

/// The same for standard error, where `--quiet` (and `--log-format json` in production) sends
/// its lines: forged deliveries are still refused, `/healthz` answers and a stop is clean while
/// nobody reads it. A rejection's line blocked the runtime's threads once the pipe was full.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_error_nobody_reads_does_not_stop_the_receiver() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.arg("listen")
        .args(["--port", "0", "--admin-port", "0", "--no-store", "--quiet"])
        .args(["--client-id", "1231", "--secret", "unread-errors-secret"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ccai listen");
    let out = common::lines(child.stdout.take().expect("stdout"));
    // The banner is read, then standard error no more (held open).
    let mut unread = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut banner = Vec::new();
    let url = loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut unread, &mut line).expect("read stderr");
        assert!(!line.is_empty(), "no address announced: {banner:?}");
        banner.push(line.trim_end().to_owned());
        if let Some(url) = line.strip_prefix("Listening on ") {
            break url.trim().to_owned();
        }
    };
    let (_, err) = std::sync::mpsc::channel();
    let mut listen = Listening {
        child,
        url,
        out,
        err,
        banner,
    };
    let admin = listen
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("Admin listener on "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the admin listener's address")
        .to_owned();
    // Each REJECTED line is about 90 bytes: a thousand fill the pipe (64 KiB).
    let http = common::sender_client();
    for i in 0..3000 {
        let hash = format!("forged-{i}");
        let status = http
            .post(&listen.url)
            .header("content-type", "application/json")
            .header(
                "x-ccai-signature",
                ccai::webhook::sign("1231", &hash, "not-it"),
            )
            .body(format!(
                r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"To":"+1"}}}}"#
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("delivery {i} not answered: {e}"))
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "delivery {i}");
    }
    let health = http
        .get(format!("{admin}/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz not answered: {e}"));
    assert_eq!(health.status(), StatusCode::OK);
    interrupt(listen.child.id());
    let status = exit_within(&mut listen.child, WAIT, "Ctrl-C with stderr nobody reads");
    assert_eq!(status.code(), Some(0));
    drop(unread);
}
