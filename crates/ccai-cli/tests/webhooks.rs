//! `ccai webhooks …` against a local stand-in for the CloudContactAI API.

mod common;

use axum::http::StatusCode;
use common::{closed_port, recorder, run, stderr, stdout, Recorded, Recorder, Sandbox};
use serde_json::{json, Value};

const KEY: &str = "sk-test-very-secret-key";

fn integration(id: Value, secret: Option<&str>) -> Value {
    let mut v = json!({"id": id, "url": "https://example.com/hook", "method": "POST", "integrationType": "ALL"});
    if let Some(s) = secret {
        v["secretKey"] = json!(s);
    }
    v
}

/// A fake API answering like CloudContactAI's integrations endpoints.
async fn fake_api() -> Recorder {
    recorder(|r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/client/1231/integration") => (
            StatusCode::OK,
            json!([
                integration(json!(42), Some("whsec-listed")),
                integration(json!("43"), None)
            ])
            .to_string(),
        ),
        ("GET", "/api/v1/client/1231/integration/44") => {
            let mut put = integration(json!(44), None);
            put["method"] = json!("PUT");
            (StatusCode::OK, put.to_string())
        }
        ("GET", "/api/v1/client/1231/integration/42") => (
            StatusCode::OK,
            integration(json!(42), Some("whsec-listed")).to_string(),
        ),
        ("GET", _) => (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
        ("POST", "/api/v1/client/1231/integration") => {
            let sent = r.json();
            let item = &sent[0];
            let mut answer = integration(
                item.get("id").cloned().unwrap_or(json!(77)),
                Some("whsec-generated-once"),
            );
            answer["url"] = item["url"].clone();
            answer["method"] = item["method"].clone();
            (StatusCode::OK, json!([answer]).to_string())
        }
        ("DELETE", "/api/v1/client/1231/integration/42") => (
            StatusCode::OK,
            json!({"success": true, "message": "deleted"}).to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "{}".into()),
    })
    .await
}

fn ccai(sandbox: &Sandbox, api: &Recorder, args: &[&str]) -> std::process::Command {
    let mut cmd = sandbox.ccai();
    cmd.args([
        "--base-url",
        &format!("{}/api", api.url),
        "--client-id",
        "1231",
    ])
    .env("CCAI_API_KEY", KEY)
    .args(args);
    cmd
}

fn last(api: &Recorder) -> Recorded {
    api.requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a request")
}

fn assert_auth(r: &Recorded) {
    assert_eq!(
        r.header("authorization").as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
}

#[tokio::test]
async fn list_as_table_and_json() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let out = run(ccai(&sandbox, &api, &["webhooks", "list"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("URL") && lines[0].contains("SECRET"));
    assert!(
        lines[1].starts_with("42 ")
            && lines[1].contains("https://example.com/hook")
            && lines[1].contains("set")
    );
    assert!(lines[2].starts_with("43 ") && lines[2].trim_end().ends_with('-'));
    assert!(
        !text.contains("whsec-listed"),
        "a table never shows secrets"
    );
    let r = last(&api);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/api/v1/client/1231/integration")
    );
    assert_auth(&r);

    let out = run(ccai(&sandbox, &api, &["webhooks", "list", "--json"])).await;
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(listed[0]["id"], json!(42));
    assert_eq!(listed[1]["id"], json!(43));
    assert_eq!(listed[0]["url"], "https://example.com/hook");
    assert!(
        listed[0].get("secretKey").is_none(),
        "list --json leaves secrets out"
    );
}

/// The API options are listed only in the help of `ccai` and `ccai webhooks …`, yet still read
/// wherever they were: before `webhooks`, after it, after its subcommand, and from the
/// environment and `.env`.
#[tokio::test]
async fn the_api_options_are_read_wherever_they_are_given() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let base = format!("{}/api", api.url);
    let flags = ["--api-key", KEY, "--base-url", &base, "--client-id", "1231"];
    let list = ["webhooks", "list"];
    let placements = [
        [&flags[..], &list].concat(),
        [&list[..1], &flags, &list[1..]].concat(),
        [&list[..], &flags].concat(),
    ];
    let sent = |cmd, what: String| {
        let api = &api;
        async move {
            let before = api.requests.lock().unwrap().len();
            let out = run(cmd).await;
            assert!(out.status.success(), "{what}: {}", stderr(&out));
            assert_eq!(api.requests.lock().unwrap().len(), before + 1, "{what}");
            let r = last(api);
            assert_eq!(r.path, "/api/v1/client/1231/integration", "{what}");
            assert_auth(&r);
        }
    };
    for args in &placements {
        let mut cmd = sandbox.ccai();
        cmd.args(args);
        sent(cmd, format!("{args:?}")).await;
    }
    let mut cmd = sandbox.ccai();
    cmd.args(list)
        .env("CCAI_API_KEY", KEY)
        .env("CCAI_BASE_URL", &base)
        .env("CCAI_CLIENT_ID", "1231");
    sent(cmd, "the environment".into()).await;
    let dotenv = sandbox.path().join(".env");
    std::fs::write(
        &dotenv,
        format!("CCAI_API_KEY={KEY}\nCCAI_BASE_URL={base}\nCCAI_CLIENT_ID=1231\n"),
    )
    .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(list);
    sent(cmd, ".env".into()).await;
    std::fs::remove_file(&dotenv).unwrap();

    // `--test-env` too: wherever it is given, it meets `--base-url`.
    for args in [
        vec!["--test-env", "webhooks", "list"],
        vec!["webhooks", "--test-env", "list"],
        vec!["webhooks", "list", "--test-env"],
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(&args).args(flags);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&out),
            "error: --test-env and --base-url both choose the API: pass only one\n",
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn get_one() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let out = run(ccai(&sandbox, &api, &["webhooks", "get", "42", "--json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["id"], 42);
    assert_eq!(last(&api).path, "/api/v1/client/1231/integration/42");

    let out = run(ccai(&sandbox, &api, &["webhooks", "get", "42"])).await;
    assert!(stdout(&out).lines().nth(1).unwrap().starts_with("42 "));

    let out = run(ccai(&sandbox, &api, &["webhooks", "get", "999"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("404"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test]
async fn register_shows_the_generated_secret_once() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let out = run(ccai(
        &sandbox,
        &api,
        &["webhooks", "register", "--url", "https://example.com/new"],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("whsec-generated-once"), "{text}");
    assert!(text.contains("store it"), "{text}");
    let r = last(&api);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/client/1231/integration")
    );
    assert_auth(&r);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        r.json(),
        json!([{"url": "https://example.com/new", "method": "POST", "integrationType": "ALL"}]),
        "no secretKey when none is given"
    );

    // --print-secret prints only the secret.
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/new",
            "--print-secret",
            "--method",
            "PUT",
        ],
    ))
    .await;
    assert_eq!(stdout(&out), "whsec-generated-once\n");
    assert_eq!(last(&api).json()[0]["method"], "PUT");

    // With a secret, it is sent and not echoed back as "generated".
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/new",
            "--secret",
            "mine",
            "--json",
        ],
    ))
    .await;
    assert!(out.status.success());
    assert_eq!(last(&api).json()[0]["secretKey"], "mine");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], 77);
    assert_eq!(shown["url"], "https://example.com/new");
    assert_eq!(shown["method"], "POST");
    assert!(
        shown.get("secretKey").is_none(),
        "a secret the user chose is not echoed"
    );

    // A generated secret is part of the JSON answer (shown once).
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/new",
            "--json",
        ],
    ))
    .await;
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["secretKey"], "whsec-generated-once");
}

#[tokio::test]
async fn update_sends_an_integer_id_and_refuses_others() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "42",
            "--url",
            "https://example.com/moved",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = last(&api);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/client/1231/integration")
    );
    assert_eq!(
        r.json(),
        json!([{"id": 42, "url": "https://example.com/moved", "method": "POST", "integrationType": "ALL"}])
    );
    assert!(stdout(&out).contains("https://example.com/moved"));

    // An integration delivered with PUT stays PUT unless --method says otherwise; --json output.
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "44",
            "--url",
            "https://example.com/put",
            "--json",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last(&api).json()[0]["method"], "PUT");
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(shown["id"], 44);
    assert_eq!(shown["url"], "https://example.com/put");
    assert!(shown.get("secretKey").is_none());
    run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "44",
            "--url",
            "https://example.com/put",
            "--method",
            "POST",
        ],
    ))
    .await;
    assert_eq!(last(&api).json()[0]["method"], "POST");

    let before = api.requests.lock().unwrap().len();
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "abc",
            "--url",
            "https://example.com/x",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("abc"), "{}", stderr(&out));
    assert_eq!(
        api.requests.lock().unwrap().len(),
        before,
        "nothing sent for a bad id"
    );
}

#[tokio::test]
async fn delete_in_both_forms() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    let out = run(ccai(&sandbox, &api, &["webhooks", "delete", "42"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Deleted webhook 42.");
    let r = last(&api);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("DELETE", "/api/v1/client/1231/integration/42")
    );
    assert_auth(&r);

    let out = run(ccai(
        &sandbox,
        &api,
        &["webhooks", "delete", "42", "--json"],
    ))
    .await;
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown,
        json!({"id": 42, "success": true, "message": "deleted", "notFoundOnRetry": false}),
        "the id printed as list --json prints it: a number"
    );
}

/// A delete whose first attempt got a 502 (it may have deleted the integration) is retried; a
/// 404 to the retry is a delete done, said so, exit code 0.
#[tokio::test]
async fn a_delete_retried_into_a_404_is_gone_in_both_forms() {
    let sandbox = Sandbox::new();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = seen.clone();
    let api = recorder(move |_| {
        // Each run: a 502, then a 404.
        if counted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .is_multiple_of(2)
        {
            (StatusCode::BAD_GATEWAY, "upstream timed out".into())
        } else {
            (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#.into())
        }
    })
    .await;
    let text = run(ccai(&sandbox, &api, &["webhooks", "delete", "42"])).await;
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    assert_eq!(
        stdout(&text).trim(),
        "Webhook 42 is gone: an earlier attempt got no clear answer and the retry found no \
         such webhook (404), so that attempt most likely deleted it."
    );
    let json_out = run(ccai(
        &sandbox,
        &api,
        &["webhooks", "delete", "42", "--json"],
    ))
    .await;
    assert_eq!(json_out.status.code(), Some(0), "{}", stderr(&json_out));
    let shown: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(
        (&shown["id"], &shown["success"], &shown["notFoundOnRetry"]),
        (&json!(42), &json!(true), &json!(true))
    );
    assert!(
        shown["message"].as_str().unwrap().contains("most likely"),
        "{shown}"
    );
    let requests = api.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4, "each run: the attempt and one retry");
    assert!(requests
        .iter()
        .all(|r| r.method == "DELETE" && r.path == "/api/v1/client/1231/integration/42"));
}

/// A 404 to the first attempt is the id naming nothing: an error, whatever the form.
#[tokio::test]
async fn a_delete_of_an_unknown_id_fails_in_both_forms() {
    let sandbox = Sandbox::new();
    let api = recorder(|_| (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#.into())).await;
    for args in [
        &["webhooks", "delete", "42"][..],
        &["webhooks", "delete", "42", "--json"][..],
    ] {
        let out = run(ccai(&sandbox, &api, args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        let error = stderr(&out);
        assert!(
            error.contains("not found (404 Not Found) on DELETE /v1/client/1231/integration/42"),
            "{args:?}: {error}"
        );
        assert!(error.contains("check the webhook id"), "{args:?}: {error}");
    }
    assert_eq!(api.requests.lock().unwrap().len(), 2, "never retried");
}

/// Any 2xx is a delete done: plain text, a `success` flag written as a string, an HTML page. The
/// API's text is the message, without the API key even when the API echoes it.
#[tokio::test]
async fn a_delete_answered_2xx_in_any_shape_succeeds() {
    let sandbox = Sandbox::new();
    for (body, message) in [
        ("OK".to_owned(), "OK".to_owned()),
        (
            r#"{"success":"true","message":"Integration deleted"}"#.to_owned(),
            "Integration deleted".to_owned(),
        ),
        (
            "<!DOCTYPE html><html><body>Deleted</body></html>".to_owned(),
            "integration 42 deleted (the API answered an HTML page rather than JSON: if it is \
             still listed, check the base URL)"
                .to_owned(),
        ),
        (
            format!("deleted by {KEY}"),
            "deleted by [REDACTED]".to_owned(),
        ),
    ] {
        let answer = body.clone();
        let api = recorder(move |_| (StatusCode::OK, answer.clone())).await;
        let text = run(ccai(&sandbox, &api, &["webhooks", "delete", "42"])).await;
        assert_eq!(text.status.code(), Some(0), "{body}: {}", stderr(&text));
        assert_eq!(stdout(&text).trim(), "Deleted webhook 42.", "{body}");
        let json_out = run(ccai(
            &sandbox,
            &api,
            &["webhooks", "delete", "42", "--json"],
        ))
        .await;
        assert_eq!(
            json_out.status.code(),
            Some(0),
            "{body}: {}",
            stderr(&json_out)
        );
        let shown: Value = serde_json::from_slice(&json_out.stdout).unwrap();
        assert_eq!(
            shown,
            json!({"id": 42, "success": true, "message": message, "notFoundOnRetry": false}),
            "{body}"
        );
        for out in [&text, &json_out] {
            assert!(
                !stdout(out).contains(KEY) && !stderr(out).contains(KEY),
                "{body}"
            );
        }
        assert_eq!(
            api.requests.lock().unwrap().len(),
            2,
            "{body}: never retried"
        );
    }
}

/// A delete the API refuses (`"success": false`) fails with exit code 2 in both forms: scripts
/// using `--json` read the exit code too. The API's message reaches the terminal escaped.
#[tokio::test]
async fn a_refused_delete_fails_in_both_forms() {
    let sandbox = Sandbox::new();
    let api = recorder(|_| {
        (
            StatusCode::OK,
            json!({"success": false, "message": "in use\u{1b}[2J"}).to_string(),
        )
    })
    .await;
    let text = run(ccai(&sandbox, &api, &["webhooks", "delete", "42"])).await;
    assert_eq!(text.status.code(), Some(2), "{}", stdout(&text));
    assert!(
        stdout(&text).contains("did not delete webhook 42"),
        "{}",
        stdout(&text)
    );
    assert!(!stdout(&text).contains('\u{1b}'), "{:?}", stdout(&text));
    let json_out = run(ccai(
        &sandbox,
        &api,
        &["webhooks", "delete", "42", "--json"],
    ))
    .await;
    assert_eq!(json_out.status.code(), Some(2), "{}", stdout(&json_out));
    let shown: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(shown["success"], false);
}

#[tokio::test]
async fn errors_are_one_clear_line_without_the_key() {
    let sandbox = Sandbox::new();
    let unauthorized = recorder(|_| {
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid token"}"#.into(),
        )
    })
    .await;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["webhooks".into(), "list".into()], "401"),
        (
            vec![
                "--base-url".into(),
                format!("http://127.0.0.1:{}/api", closed_port()),
                "webhooks".into(),
                "list".into(),
            ],
            "connect",
        ),
        // The flag the user gave is the one to check, not only the environment variable; the
        // cause follows without reqwest's and hyper's wrapper texts ("error sending request:
        // client error (Connect)").
        (
            vec![
                "--base-url".into(),
                format!("http://127.0.0.1:{}/api", closed_port()),
                "webhooks".into(),
                "list".into(),
            ],
            "check the base URL given with --base-url and the network: tcp connect error: \
             connection refused",
        ),
        (
            vec![
                "--base-url".into(),
                "api.example.com".into(),
                "webhooks".into(),
                "list".into(),
            ],
            "invalid base URL \"api.example.com\" given with --base-url",
        ),
        (
            vec![
                "webhooks".into(),
                "register".into(),
                "--url".into(),
                "not a url".into(),
            ],
            "invalid --url",
        ),
        (
            vec![
                "webhooks".into(),
                "register".into(),
                "--url".into(),
                "https://x.example".into(),
                "--method".into(),
                "GET".into(),
            ],
            "POST or PUT",
        ),
    ];
    for (args, expect) in cases {
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_BASE_URL", format!("{}/api", unauthorized.url))
            .args(["--client-id", "1231"])
            .env("CCAI_API_KEY", KEY)
            .args(&args);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.to_lowercase().contains(&expect.to_lowercase()),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains(KEY) && !stdout(&out).contains(KEY));
        assert!(!err.contains("panicked") && !err.contains("backtrace"));
    }

    // Missing credentials say which and how to set them.
    for (env, missing) in [
        (vec![], "client id"),
        (vec![("CCAI_CLIENT_ID", "1231")], "API key"),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["webhooks", "list"]).envs(env);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(missing), "{}", stderr(&out));
    }
}

/// Text the API sends reaches the terminal escaped in `list` and `get`: no escape sequence acts on
/// it, and a line break in a URL does not forge a row. `--json` stays exact JSON.
#[tokio::test]
async fn list_and_get_escape_what_the_api_sends() {
    let sandbox = Sandbox::new();
    let hostile = json!({
        "id": "7\u{1b}[8m",
        "url": "\u{1b}[31mRED\u{1b}]0;title\u{7}\n99  https://forged  POST  ALL  set",
        "integrationType": "\u{1b}[2J\u{9b}1m\u{202e}",
    });
    let answer = hostile.clone();
    let api = recorder(move |r: &Recorded| match r.path.as_str() {
        "/api/v1/client/1231/integration" => (StatusCode::OK, json!([answer]).to_string()),
        _ => (StatusCode::OK, answer.to_string()),
    })
    .await;
    for args in [&["webhooks", "list"][..], &["webhooks", "get", "7"][..]] {
        let out = run(ccai(&sandbox, &api, args)).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}'),
            "{args:?}: {text:?}"
        );
        assert!(!text.contains('\u{202e}'), "{args:?}: {text:?}");
        assert_eq!(text.lines().count(), 2, "{args:?}: one row: {text:?}");
        assert!(
            text.contains(r"\u{1b}[31mRED\u{1b}]0;title\u{7}\n99  https://forged"),
            "{args:?}: {text:?}"
        );
        assert!(text.contains(r"\u{1b}[2J"), "{args:?}: {text:?}");
        assert!(text
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(r"7\u{1b}[8m ")));
    }
    for args in [
        &["webhooks", "list", "--json"][..],
        &["webhooks", "get", "7", "--json"][..],
    ] {
        let out = run(ccai(&sandbox, &api, args)).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        let shown = if shown.is_array() {
            shown[0].clone()
        } else {
            shown
        };
        assert_eq!(shown["url"], hostile["url"], "{args:?}");
        assert_eq!(shown["integrationType"], hostile["integrationType"]);
        assert_eq!(shown["id"], hostile["id"]);
    }
}

/// A fake API whose list holds `entries`.
async fn listing(entries: Value) -> Recorder {
    recorder(move |_: &Recorded| (StatusCode::OK, entries.to_string())).await
}

/// One integration the client cannot read (a `method` that is a number, no `id`) used to fail the
/// whole list. Now the readable ones are shown (table or `--json`, which stays JSON), each
/// unreadable one is named on standard error with the reason, its secret never shown, and the
/// command fails (exit 2, with a last line saying how many are missing): a script must not take
/// the list for complete. It exited 0.
#[tokio::test]
async fn list_shows_what_it_can_read_and_says_what_it_cannot() {
    let sandbox = Sandbox::new();
    let api = listing(json!([
        integration(json!(42), Some("whsec-listed")),
        {"id": 43, "url": "https://example.com/odd", "method": 5, "secretKey": "whsec-unread-43"},
        {"url": "https://example.com/no-id", "method": "POST", "secret": "whsec-unread-no-id"},
        {"id": "7\u{1b}[8m", "url": {"href": "https://example.com/x"}},
    ]))
    .await;

    for json_output in [false, true] {
        let mut args = vec!["webhooks", "list"];
        if json_output {
            args.push("--json");
        }
        let out = run(ccai(&sandbox, &api, &args)).await;
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        if json_output {
            let listed: Value = serde_json::from_str(&text).expect("JSON output");
            assert_eq!(
                listed,
                json!([{"id": 42, "url": "https://example.com/hook",
                                       "method": "POST", "integrationType": "ALL"}])
            );
        } else {
            assert_eq!(text.lines().count(), 2, "{text}");
            assert!(
                text.lines().nth(1).is_some_and(|l| l.starts_with("42 ")),
                "{text}"
            );
        }
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{args:?}: {err}");
        assert!(
            lines[..3].iter().all(|l| l.starts_with("warning: ")),
            "{err}"
        );
        assert!(
            lines[0].contains("webhook 43 (entry 2 of 4)")
                && lines[0].contains("`method` is a number"),
            "{err}"
        );
        assert!(
            lines[1].contains("entry 3 of 4") && lines[1].contains("no `id`"),
            "{err}"
        );
        assert!(
            lines[2].contains(r"webhook 7\u{1b}[8m (entry 4 of 4)")
                && lines[2].contains("`url` is an object"),
            "{err}"
        );
        assert!(
            lines[3].starts_with("error: the list printed misses 3 of the 4 webhooks"),
            "{err}"
        );
        for secret in ["whsec-listed", "whsec-unread-43", "whsec-unread-no-id", KEY] {
            assert!(
                !text.contains(secret) && !err.contains(secret),
                "{secret}: {text}{err}"
            );
        }
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
}

/// When nothing the API listed can be read, "No webhooks registered" (or `[]`) would be untrue:
/// an error (exit 2) after the reasons, and nothing on standard output.
#[tokio::test]
async fn list_with_nothing_readable_is_an_error() {
    let sandbox = Sandbox::new();
    let api = listing(json!([
        {"id": 43, "url": "https://example.com/odd", "method": null, "integrationType": 1,
         "secretKey": "whsec-unread-43"},
    ]))
    .await;
    for args in [
        &["webhooks", "list"][..],
        &["webhooks", "list", "--json"][..],
    ] {
        let out = run(ccai(&sandbox, &api, args)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with("warning: webhook 43 (entry 1 of 1)")
                && lines[0].contains("`integrationType` is a number"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("error: the one webhook the API listed could not be read"),
            "{err}"
        );
        assert!(!err.contains("whsec-unread-43"), "{err}");
    }
}

/// `register` and `update` refuse an empty secret or one with whitespace around it (`ccai listen`
/// and the library's `Verifier` would never verify with it): exit 2, one line, the secret not
/// echoed, nothing sent.
#[tokio::test]
async fn register_and_update_refuse_an_empty_or_padded_secret() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    for secret in ["", " padded-secret-value ", "padded-secret-value\n", "\t"] {
        for command in [&["register"][..], &["update", "42"][..]] {
            let mut args = vec!["webhooks"];
            args.extend_from_slice(command);
            args.extend_from_slice(&["--url", "https://example.com/hook", "--secret", secret]);
            let out = run(ccai(&sandbox, &api, &args)).await;
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains("--secret"), "{args:?}: {err}");
            assert!(!err.contains("padded-secret-value"), "{args:?}: {err}");
            assert!(stdout(&out).is_empty(), "{args:?}");
            assert!(api.requests.lock().unwrap().is_empty(), "{args:?}: sent");
        }
    }
    // A secret with nothing around it is sent as given.
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "42",
            "--url",
            "https://example.com/hook",
            "--secret",
            "in ner",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last(&api).json()[0]["secretKey"], "in ner");
}

/// An id written `+44` or `044` is integration 44 throughout: the method is read from
/// `…/integration/44` (not `%2B44`), the one the update then replaces.
#[tokio::test]
async fn update_reads_the_integration_it_replaces() {
    for id in ["+44", "044"] {
        let (sandbox, api) = (Sandbox::new(), fake_api().await);
        let out = run(ccai(
            &sandbox,
            &api,
            &["webhooks", "update", id, "--url", "https://example.com/put"],
        ))
        .await;
        assert!(out.status.success(), "{id}: {}", stderr(&out));
        let requests = api.requests.lock().unwrap().clone();
        let seen: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("GET", "/api/v1/client/1231/integration/44"),
                ("POST", "/api/v1/client/1231/integration")
            ],
            "{id}"
        );
        let sent = requests[1].json();
        assert_eq!(sent[0]["id"], 44, "{id}");
        assert_eq!(
            sent[0]["method"], "PUT",
            "{id}: integration 44's method kept"
        );
    }
}

/// A redirect from the API (often http:// where it wants https://) is not followed; the error
/// says so and points at the base URL, instead of "see the response" with no response to see.
#[tokio::test]
async fn a_redirect_points_at_the_base_url() {
    let sandbox = Sandbox::new();
    let api = recorder(|_| (StatusCode::FOUND, String::new())).await;
    let out = run(ccai(&sandbox, &api, &["webhooks", "list"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("302") && err.contains("redirect"), "{err}");
    assert!(err.contains("not followed"), "{err}");
    assert!(err.contains("the base URL given with --base-url"), "{err}");
    assert!(!err.contains("Config::"), "{err}");
    assert!(err.contains("https://"), "{err}");
    assert!(!err.contains("see the response"), "{err}");
    assert!(!err.contains(KEY));
}

/// `ccai` with every proxy setting cleared but `HTTPS_PROXY`: an `https://` API is then reached
/// through `proxy` (a `CONNECT` naming the host), so a test sees which host was chosen without
/// the network.
fn through_proxy(mut cmd: std::process::Command, proxy: &Recorder) -> std::process::Command {
    for key in [
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        cmd.env_remove(key);
    }
    cmd.env("HTTPS_PROXY", &proxy.url);
    cmd
}

/// The test environment's `host:port`, as a `CONNECT` names it.
fn test_env_host() -> String {
    let url = reqwest::Url::parse(ccai::api::TEST_BASE_URL).expect("a URL");
    format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port_or_known_default().expect("a port")
    )
}

/// An explicit `--test-env` wins over `CCAI_BASE_URL`, from the environment or from `.env` (flags
/// come first); with `--base-url` as well it is refused, nothing sent. The test environment is
/// never contacted: its requests go to a local stand-in proxy, which only records the host.
#[tokio::test]
async fn test_env_wins_over_ccai_base_url() {
    let sandbox = Sandbox::new();
    let api = fake_api().await;
    let proxy = recorder(|_| (StatusCode::FORBIDDEN, String::new())).await;
    let base = format!("{}/api", api.url);
    let connects = || {
        proxy
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "CONNECT")
            .map(|r| r.header("host").unwrap_or_default())
            .collect::<Vec<_>>()
    };

    // CCAI_BASE_URL in the environment.
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_BASE_URL", &base)
        .env("CCAI_CLIENT_ID", "1231")
        .env("CCAI_API_KEY", KEY)
        .args(["webhooks", "list", "--test-env"]);
    let out = run(through_proxy(cmd, &proxy)).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        api.requests.lock().unwrap().is_empty(),
        "sent to CCAI_BASE_URL"
    );
    // (The failed tunnel is retried: one CONNECT or more, each to the test environment.)
    let first = connects();
    assert!(!first.is_empty(), "{}", stderr(&out));
    assert!(
        first.iter().all(|host| *host == test_env_host()),
        "{first:?}"
    );
    assert!(!stderr(&out).contains(KEY));

    // CCAI_BASE_URL in .env, --test-env before the subcommand.
    std::fs::write(
        sandbox.path().join(".env"),
        format!("CCAI_BASE_URL={base}\n"),
    )
    .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", "1231")
        .env("CCAI_API_KEY", KEY)
        .args(["--test-env", "webhooks", "list"]);
    let out = run(through_proxy(cmd, &proxy)).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        api.requests.lock().unwrap().is_empty(),
        "sent to .env's URL"
    );
    let second = connects();
    assert!(second.len() > first.len(), "{}", stderr(&out));
    assert!(
        second.iter().all(|host| *host == test_env_host()),
        "{second:?}"
    );

    // Without --test-env, CCAI_BASE_URL (here from .env) is used.
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", "1231")
        .env("CCAI_API_KEY", KEY)
        .args(["webhooks", "list"]);
    let out = run(through_proxy(cmd, &proxy)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(api.requests.lock().unwrap().len(), 1);
    std::fs::remove_file(sandbox.path().join(".env")).unwrap();

    // Both flags: refused, one line, nothing sent; either order, either position.
    for args in [
        &["webhooks", "list", "--test-env", "--base-url", &base][..],
        &["--base-url", &base, "--test-env", "webhooks", "list"][..],
    ] {
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_CLIENT_ID", "1231")
            .env("CCAI_API_KEY", KEY)
            .env("CCAI_BASE_URL", &base)
            .args(args);
        let out = run(through_proxy(cmd, &proxy)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("--test-env") && err.contains("--base-url"),
            "{err}"
        );
        assert_eq!(api.requests.lock().unwrap().len(), 1, "{args:?}");
        assert_eq!(connects().len(), second.len(), "{args:?}");
    }
}

/// A `--url` with whitespace around it or a control character in it passed the URL check (the
/// URL parser strips and drops them) but went to the API as typed, so the integration would
/// deliver to `https://example.com/hook\n`. Refused instead, nothing sent.
#[tokio::test]
async fn register_and_update_refuse_a_url_the_api_would_get_differently() {
    let (sandbox, api) = (Sandbox::new(), fake_api().await);
    for url in [
        "https://example.com/hook\n",
        " https://example.com/hook",
        "https://example.com/ho\tok",
        "https://exam\nple.com/hook",
    ] {
        for command in [&["register"][..], &["update", "42"][..]] {
            let mut args = vec!["webhooks"];
            args.extend_from_slice(command);
            args.extend_from_slice(&["--url", url, "--method", "POST"]);
            let out = run(ccai(&sandbox, &api, &args)).await;
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains("invalid --url"), "{args:?}: {err}");
            assert!(stdout(&out).is_empty(), "{args:?}");
            assert!(api.requests.lock().unwrap().is_empty(), "{args:?}: sent");
        }
    }
    // A URL with nothing around it is sent as given.
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/hook?a=b c",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        last(&api).json()[0]["url"],
        "https://example.com/hook?a=b c"
    );
}

/// `register --secret S --print-secret` against an API that does not echo `secretKey` (it may be
/// absent): the integration was registered with S, yet the command failed (exit 2) telling the
/// user to set a secret, and a script would register it again. It prints S and succeeds.
#[tokio::test]
async fn print_secret_with_a_chosen_secret_the_api_does_not_echo() {
    let sandbox = Sandbox::new();
    let api = recorder(|_: &Recorded| {
        (
            StatusCode::OK,
            json!([integration(json!(78), None)]).to_string(),
        )
    })
    .await;
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/hook",
            "--secret",
            "my-chosen-secret",
            "--print-secret",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "my-chosen-secret\n");
    assert_eq!(api.requests.lock().unwrap().len(), 1);

    // Without a secret of the user's, no secret returned is still a failure that says what to do.
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/hook",
            "--print-secret",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did not return a secret"),
        "{}",
        stderr(&out)
    );
}

/// A secret `--print-secret` cannot print for a script to store: an empty one (printed as an
/// empty line, exit 0, so `export CCAI_WEBHOOK_SECRET=$(…)` set "") and one with a control
/// character (printed escaped, a value that would never verify). Both fail, printing nothing.
#[tokio::test]
async fn print_secret_refuses_an_empty_or_unprintable_secret() {
    let sandbox = Sandbox::new();
    for (secret, said) in [
        ("", "did not return a secret"),
        ("tab\tsecret", "control characters"),
    ] {
        let api = recorder(move |_: &Recorded| {
            (
                StatusCode::OK,
                json!([integration(json!(79), Some(secret))]).to_string(),
            )
        })
        .await;
        let args = [
            "webhooks",
            "register",
            "--url",
            "https://example.com/hook",
            "--print-secret",
        ];
        let out = run(ccai(&sandbox, &api, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{secret:?}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{secret:?}");
        assert!(stderr(&out).contains(said), "{secret:?}: {}", stderr(&out));
        // Shown to a person, the odd secret is not shown escaped as if it were the secret.
        let out = run(ccai(&sandbox, &api, &args[..4])).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(!stdout(&out).contains("tab\\tsecret"), "{}", stdout(&out));
    }
}

/// An integration whose `method` or `integrationType` the library does not know (`PATCH`, `SMS`)
/// is listed with the others, as the API sent it, in both forms; an update sends both back.
#[tokio::test]
async fn unknown_methods_and_types_are_listed_and_kept() {
    let sandbox = Sandbox::new();
    let odd = json!({"id": 45, "url": "https://example.com/odd", "method": "PATCH",
                     "integrationType": "SMS"});
    let listed = odd.clone();
    let api = recorder(
        move |r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/client/1231/integration") => (
                StatusCode::OK,
                json!([integration(json!(42), None), listed]).to_string(),
            ),
            ("GET", "/api/v1/client/1231/integration/45") => (StatusCode::OK, listed.to_string()),
            // The update's answer is what it was sent.
            ("POST", _) => (
                StatusCode::OK,
                String::from_utf8_lossy(&r.body).into_owned(),
            ),
            _ => (StatusCode::NOT_FOUND, "{}".into()),
        },
    )
    .await;

    let out = run(ccai(&sandbox, &api, &["webhooks", "list"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|line| line.starts_with("45 "))
        .unwrap_or_else(|| panic!("no row for 45: {text}"));
    assert!(row.contains("PATCH") && row.contains("SMS"), "{row}");
    assert!(text.lines().any(|line| line.starts_with("42 ")), "{text}");

    let out = run(ccai(&sandbox, &api, &["webhooks", "list", "--json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(shown[1], odd);

    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "update",
            "45",
            "--url",
            "https://example.com/odd2",
            "--json",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&last(&api).body),
        r#"[{"id":45,"url":"https://example.com/odd2","method":"PATCH","integrationType":"SMS"}]"#
    );
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(
        (&shown["method"], &shown["integrationType"]),
        (&json!("PATCH"), &json!("SMS"))
    );
}

/// `--timeout` bounds each attempt (the library's default is 30 s, three attempts for a read),
/// before or after the subcommand, and a timeout's error names it: it told users to "raise
/// Config::timeout", a library setting the command line had no way to reach.
#[tokio::test]
async fn timeout_bounds_each_attempt_and_its_error_names_the_flag() {
    let sandbox = Sandbox::new();
    // An API that takes the request and never answers.
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        "late"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let webhooks = |args: &[&str]| {
        let mut cmd = sandbox.ccai();
        cmd.args(["--base-url", &base, "--client-id", "1231"])
            .env("CCAI_API_KEY", KEY)
            .args(args);
        cmd
    };
    for args in [
        &["webhooks", "list", "--timeout", "1s"][..],
        &["webhooks", "--timeout", "1s", "get", "3"][..],
    ] {
        let started = std::time::Instant::now();
        // Fails the test if it runs past 30 s, which one attempt alone took by default.
        let out = common::exits(webhooks(args)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("timed out")
                && err.contains("raise --timeout")
                && !err.contains("Config::"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(KEY), "{err}");
        // Three attempts of 1 s and the waits between them.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{args:?}: {:?}",
            started.elapsed()
        );
    }
    for bad in ["0s", "soon"] {
        let out = common::exits(webhooks(&["webhooks", "list", "--timeout", bad])).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--timeout"), "{bad}: {err}");
    }
}

/// An `integrationType` the API left out (or sent as `null`) is left out of `--json` too, in
/// `list`, `get` and a `register` whose generated secret is printed whole: it was shown as `""`,
/// a type no integration has.
#[tokio::test]
async fn an_integration_type_the_api_omitted_is_not_printed_as_empty() {
    let sandbox = Sandbox::new();
    let untyped = json!({"id": 46, "url": "https://example.com/untyped", "method": "POST"});
    let null_typed = json!({"id": 47, "url": "https://example.com/null", "method": "POST",
                            "integrationType": null});
    let (listed, one) = (json!([untyped.clone(), null_typed]), untyped.clone());
    let api = recorder(
        move |r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/client/1231/integration") => (StatusCode::OK, listed.to_string()),
            ("GET", "/api/v1/client/1231/integration/46") => (StatusCode::OK, one.to_string()),
            ("POST", "/api/v1/client/1231/integration") => {
                let mut created = one.clone();
                created["secretKey"] = json!("whsec-generated-untyped");
                (StatusCode::OK, json!([created]).to_string())
            }
            _ => (StatusCode::NOT_FOUND, "{}".into()),
        },
    )
    .await;
    let out = run(ccai(&sandbox, &api, &["webhooks", "list", "--json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(
        shown,
        json!([untyped, {"id": 47, "url": "https://example.com/null", "method": "POST"}])
    );
    let out = run(ccai(&sandbox, &api, &["webhooks", "get", "46", "--json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(shown, untyped);
    let out = run(ccai(
        &sandbox,
        &api,
        &[
            "webhooks",
            "register",
            "--url",
            "https://example.com/untyped",
            "--json",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(shown["secretKey"], "whsec-generated-untyped", "{shown}");
    assert!(shown.get("integrationType").is_none(), "{shown}");
}

/// `delete --json` prints the id as `list --json` does: a JSON number when it is one, otherwise
/// the text given (`042` names another path than `42`, so it is not printed as `42`).
#[tokio::test]
async fn delete_json_prints_the_id_as_list_does() {
    let sandbox = Sandbox::new();
    let api = recorder(|_| {
        (
            StatusCode::OK,
            json!({"success": true, "message": "deleted"}).to_string(),
        )
    })
    .await;
    for (id, shown_id, path) in [
        ("42", json!(42), "/api/v1/client/1231/integration/42"),
        (
            "wh_abc",
            json!("wh_abc"),
            "/api/v1/client/1231/integration/wh_abc",
        ),
        ("042", json!("042"), "/api/v1/client/1231/integration/042"),
    ] {
        let out = run(ccai(&sandbox, &api, &["webhooks", "delete", id, "--json"])).await;
        assert!(out.status.success(), "{id}: {}", stderr(&out));
        let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        assert_eq!(shown["id"], shown_id, "{id}");
        assert_eq!(last(&api).path, path, "{id}");
    }
}

/// An empty `CCAI_LOG` counts as unset, as every empty `CCAI_*` variable does: `RUST_LOG` then
/// sets the level (it used to be hidden, leaving the default, which logs no requests).
#[tokio::test]
async fn an_empty_ccai_log_leaves_the_level_to_rust_log() {
    let sandbox = Sandbox::new();
    let api = fake_api().await;
    for ccai_log in ["", " "] {
        let mut cmd = ccai(&sandbox, &api, &["webhooks", "list"]);
        cmd.env("CCAI_LOG", ccai_log).env("RUST_LOG", "ccai=debug");
        let out = run(cmd).await;
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("sending management API request"),
            "CCAI_LOG={ccai_log:?}: {err}"
        );
        assert!(!err.contains(KEY), "{err}");
    }
    // A CCAI_LOG that says something still wins over RUST_LOG.
    let mut cmd = ccai(&sandbox, &api, &["webhooks", "list"]);
    cmd.env("CCAI_LOG", "error").env("RUST_LOG", "ccai=debug");
    let out = run(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// The management API client's lines are logged under `ccai::api`, a target docs/operations.md
/// lists (they had their module's path, `ccai::api::transport`, listed nowhere).
#[tokio::test]
async fn api_requests_are_logged_under_ccai_api() {
    let sandbox = Sandbox::new();
    let api = fake_api().await;
    let mut cmd = ccai(
        &sandbox,
        &api,
        &["--log-format", "json", "webhooks", "list"],
    );
    cmd.env("CCAI_LOG", "ccai::api=debug");
    let out = run(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let sending: Vec<Value> = err
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "sending management API request")
        .collect();
    assert!(!sending.is_empty(), "{err}");
    for line in sending {
        assert_eq!(line["target"], "ccai::api", "{line}");
    }
}

/// A `ccai` for `webhooks list` against `api` with the API key given only as `key_from` says
/// (`--api-key`, the environment, `.env`), and the client id with `--client-id`.
fn keyed(sandbox: &Sandbox, api: &Recorder, key_from: &str) -> std::process::Command {
    let mut cmd = sandbox.ccai();
    cmd.args(["--base-url", &format!("{}/api", api.url)]);
    cmd.args(["--client-id", "1231"]);
    let dotenv = sandbox.path().join(".env");
    let _ = std::fs::remove_file(&dotenv);
    match key_from {
        "--api-key" => {
            cmd.args(["--api-key", KEY]);
        }
        "CCAI_API_KEY" => {
            cmd.env("CCAI_API_KEY", KEY);
        }
        ".env" => std::fs::write(&dotenv, format!("CCAI_API_KEY={KEY}\n")).expect("write .env"),
        other => panic!("no such source: {other}"),
    }
    cmd.args(["webhooks", "list"]);
    cmd
}

/// A rejected API key (401) or refused access (403) names where the key came from — the flag,
/// the environment variable or `.env` — and says what to do, never the key itself nor a Rust
/// name. It said "check CCAI_API_KEY" to someone who had typed `--api-key`.
#[tokio::test]
async fn a_rejected_api_key_names_where_it_came_from() {
    let sandbox = Sandbox::new();
    let unauthorized = recorder(|_| {
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid token"}"#.into(),
        )
    })
    .await;
    let forbidden = recorder(|_| (StatusCode::FORBIDDEN, String::new())).await;
    for (key_from, named, not_named) in [
        (
            "--api-key",
            "the API key given with --api-key",
            "CCAI_API_KEY",
        ),
        (
            "CCAI_API_KEY",
            "the API key from CCAI_API_KEY",
            "given with --api-key",
        ),
        (
            ".env",
            "the API key from CCAI_API_KEY in .env",
            "given with --api-key",
        ),
    ] {
        let out = run(keyed(&sandbox, &unauthorized, key_from)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{key_from}: {err}");
        assert_eq!(err.lines().count(), 1, "{key_from}: {err}");
        assert!(
            err.contains(&format!("rejected {named} (401 Unauthorized)")),
            "{key_from}: {err}"
        );
        assert!(!err.contains(not_named), "{key_from}: {err}");
        // What to do next, with the setting the user gave.
        assert!(err.contains("a current API key"), "{key_from}: {err}");
        assert!(err.contains("invalid token"), "the API's answer: {err}");
        assert!(
            !err.contains("Config::") && !err.contains("ccai's"),
            "{err}"
        );
        assert!(!err.contains(KEY) && !stdout(&out).contains(KEY), "{err}");

        let out = run(keyed(&sandbox, &forbidden, key_from)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{key_from}: {err}");
        assert!(err.contains("403 Forbidden"), "{key_from}: {err}");
        assert!(
            err.contains(named) && err.contains("the client id given with --client-id"),
            "{key_from}: {err}"
        );
        assert!(!err.contains(not_named), "{key_from}: {err}");
        assert!(!err.contains("Config::") && !err.contains(KEY), "{err}");
    }

    // The flag wins over the environment, and the message names the flag.
    let mut both = keyed(&sandbox, &unauthorized, "--api-key");
    both.env("CCAI_API_KEY", "sk-other-key");
    let err = stderr(&run(both).await);
    assert!(err.contains("the API key given with --api-key"), "{err}");
    assert!(!err.contains("sk-other-key") && !err.contains(KEY), "{err}");

    // A client id from the environment is named as such.
    let mut cmd = sandbox.ccai();
    cmd.args(["--base-url", &format!("{}/api", forbidden.url)])
        .env("CCAI_CLIENT_ID", "1231")
        .env("CCAI_API_KEY", KEY)
        .args(["webhooks", "list"]);
    let err = stderr(&run(cmd).await);
    assert!(err.contains("the client id from CCAI_CLIENT_ID"), "{err}");
}

/// No error of `ccai webhooks` names a Rust item (`Config::base_url`, `Config::timeout`) or
/// speaks of "ccai's --flag": each names the flag or variable the value came from.
#[tokio::test]
async fn api_errors_name_flags_and_variables_not_rust_items() {
    let sandbox = Sandbox::new();
    let html = recorder(|_| (StatusCode::OK, "<html>the web site</html>".into())).await;
    let redirect = recorder(|_| (StatusCode::FOUND, String::new())).await;
    let missing = recorder(|_| (StatusCode::NOT_FOUND, String::new())).await;
    let closed = format!("http://127.0.0.1:{}/api", closed_port());
    // How the base URL is given, the base URL, other arguments, environment, what the error
    // must name.
    type Case<'a> = (
        &'a str,
        String,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "flag",
            closed.clone(),
            vec![],
            vec![],
            "the base URL given with --base-url",
        ),
        (
            "env",
            closed.clone(),
            vec![],
            vec![],
            "the base URL from CCAI_BASE_URL",
        ),
        (
            "flag",
            "api.example.com".into(),
            vec![],
            vec![],
            "given with --base-url",
        ),
        (
            "env",
            "api.example.com".into(),
            vec![],
            vec![],
            "from CCAI_BASE_URL",
        ),
        (
            "flag",
            format!("{}/api", html.url),
            vec![],
            vec![],
            "given with --base-url",
        ),
        (
            "env",
            format!("{}/api", redirect.url),
            vec![],
            vec![],
            "from CCAI_BASE_URL",
        ),
        (
            "flag",
            format!("{}/api", missing.url),
            vec!["--client-id", "1231"],
            vec![],
            "the client id given with --client-id",
        ),
        (
            "flag",
            format!("{}/api", missing.url),
            vec![],
            vec![("CCAI_CLIENT_ID", "1231")],
            "the client id from CCAI_CLIENT_ID",
        ),
        (
            "flag",
            format!("{}/api", missing.url),
            vec!["--client-id", ".."],
            vec![],
            "the client id given with --client-id",
        ),
        (
            "flag",
            format!("{}/api", missing.url),
            vec!["--client-id", "1231", "--api-key", "clé-secrète"],
            vec![],
            "the API key given with --api-key",
        ),
        (
            "flag",
            format!("{}/api", missing.url),
            vec!["--client-id", "1231"],
            vec![("CCAI_API_KEY", "clé-secrète")],
            "the API key from CCAI_API_KEY",
        ),
    ];
    for (how, base, args, env, named) in cases {
        let mut cmd = sandbox.ccai();
        if how == "flag" {
            cmd.args(["--base-url", &base]);
        } else {
            cmd.env("CCAI_BASE_URL", &base);
        }
        if !args.contains(&"--client-id") && env.is_empty() {
            cmd.args(["--client-id", "1231"]);
        }
        if !args.contains(&"--api-key") && !env.iter().any(|(k, _)| *k == "CCAI_API_KEY") {
            cmd.env("CCAI_API_KEY", KEY);
        }
        cmd.args(&args)
            .envs(env.clone())
            .args(["webhooks", "get", "42"]);
        let out = run(cmd).await;
        let err = stderr(&out);
        let case = format!("{how} {base} {args:?} {env:?}");
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert_eq!(err.lines().count(), 1, "{case}: {err}");
        assert!(err.contains(named), "{case}: {err}");
        assert!(
            !err.contains("Config::") && !err.contains("ccai's"),
            "{case}: {err}"
        );
        assert!(
            !err.contains(KEY) && !err.contains("secrète"),
            "{case}: {err}"
        );
    }
}
