//! What the real binary prints never holds a secret it was given (a `.env` line, a URL's
//! password or token, the view's token) nor a terminal escape from someone else's text; flag
//! values that would quietly lose data or turn a feature off are refused with a clear error.

mod common;

use std::process::Stdio;

use axum::http::StatusCode;
use ccai::inbox::{SqliteOptions, SqliteStore};
use common::{closed_port, exits, lines, recorder, stderr, stdout, Sandbox, WAIT};

const CLIENT_ID: &str = "1231";
const SECRET: &str = "input-test-secret";

/// Everything a finished command wrote.
fn all_output(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

#[tokio::test]
async fn a_dotenv_line_that_does_not_parse_is_never_shown() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join(".env"),
        "CCAI_WEBHOOK_SECRET=DOTENV-HUNTER2 \"unterminated\n",
    )
    .expect("write .env");
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "x", "--client-id", CLIENT_ID]);
    let out = exits(cmd).await;
    let text = all_output(&out);
    assert!(!text.contains("DOTENV-HUNTER2"), "{text}");
    assert!(
        stderr(&out).contains("ignoring .env: a line does not parse"),
        "{text}"
    );
}

#[tokio::test]
async fn trigger_never_shows_the_password_or_token_of_its_url() {
    let sandbox = Sandbox::new();
    // Answered: the line on stdout shows the target without them.
    let target = recorder(|_| (StatusCode::OK, "ok".into())).await;
    let with_secrets =
        target.url.replace("http://", "http://user:TRIG-PASS@") + "/hook?token=TRIG-TOKEN";
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.sent", "--to", &with_secrets])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(target.requests.lock().expect("lock").len(), 1);
    let text = all_output(&out);
    assert!(
        !text.contains("TRIG-PASS") && !text.contains("TRIG-TOKEN"),
        "{text}"
    );
    assert!(text.contains("/hook?…"), "{text}");

    // Not answered: neither does the error.
    let unreachable = format!(
        "http://user:TRIG-PASS@127.0.0.1:{}/hook?token=TRIG-TOKEN",
        closed_port()
    );
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.sent", "--to", &unreachable])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(text.contains("cannot connect to"), "{text}");
    assert!(
        !text.contains("TRIG-PASS") && !text.contains("TRIG-TOKEN"),
        "{text}"
    );

    // Connected, then closed without an answer: reqwest's own text repeats the URL whole.
    let closer = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closer.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in closer.incoming().flatten() {
            let mut stream = stream;
            let _ = std::io::Read::read(&mut stream, &mut [0u8; 65536]);
            drop(stream);
        }
    });
    let closing = format!("http://user:TRIG-PASS@127.0.0.1:{port}/hook?token=TRIG-TOKEN");
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.sent", "--to", &closing])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let text = all_output(&out);
    assert!(text.contains("/hook?…"), "{text}");
    assert!(
        !text.contains("TRIG-PASS") && !text.contains("TRIG-TOKEN"),
        "{text}"
    );
}

/// A target that echoes the request in its answer (a framework's error page, a debugging
/// endpoint): the answer trigger prints has the signature and the URL's path token redacted,
/// as a forward's recorded errors do.
#[tokio::test]
async fn trigger_redacts_what_the_target_echoes_of_the_request() {
    let sandbox = Sandbox::new();
    let target = recorder(|request| {
        let signature = request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-ccai-signature"))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        let echo = format!(
            "no route for {} {} (signed {signature})",
            request.method, request.path
        );
        (StatusCode::NOT_FOUND, echo)
    })
    .await;
    let token = "XsEcReTt0kEn1234567890";
    let to = format!("{}/services/T000/B000/{token}", target.url);
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.sent", "--to", &to])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let requests = target.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("/services/T000/B000/{token}"));
    let signature = requests[0]
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-ccai-signature"))
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .expect("signed");
    let text = all_output(&out);
    assert!(!text.contains(token), "{text}");
    assert!(!text.contains(&signature), "{text}");
    assert!(
        text.contains(
            "-> 404 no route for POST /services/T000/B000/[REDACTED] (signed [REDACTED])"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_url_flag_is_not_echoed() {
    let sandbox = Sandbox::new();
    for url in [
        "ftp://user:FLAG-PASS@example.com/?token=FLAG-TOKEN",
        "user:FLAG-PASS@example.com/?token=FLAG-TOKEN",
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--no-store", "--port", "0", "--forward-to", url])
            .env("CCAI_CLIENT_ID", CLIENT_ID)
            .env("CCAI_WEBHOOK_SECRET", SECRET);
        let out = exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{url}");
        let text = all_output(&out);
        assert!(text.contains("invalid --forward-to"), "{text}");
        assert!(
            !text.contains("FLAG-PASS") && !text.contains("FLAG-TOKEN"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_view_token_the_user_gave_is_never_printed() {
    // The banner names where the token came from (it said "--token or CCAI_UI_TOKEN" whichever
    // was used), never the token.
    let cases = [
        ("environment", ": the one from CCAI_UI_TOKEN (not printed)"),
        ("flag", ": the one given with --token (not printed)"),
        (".env", ": the one from CCAI_UI_TOKEN in .env (not printed)"),
    ];
    for (what, named) in cases {
        let sandbox = Sandbox::new();
        drop(
            SqliteStore::open(sandbox.path().join("view.db"), SqliteOptions::default())
                .expect("create the store"),
        );
        let mut cmd = sandbox.ccai();
        cmd.args([
            "ui", "--host", "0.0.0.0", "--port", "0", "--store", "view.db",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        match what {
            "environment" => {
                cmd.env("CCAI_UI_TOKEN", "UI-TOKEN-FROBOZZ");
            }
            "flag" => {
                cmd.args(["--token", "UI-TOKEN-FROBOZZ"]);
            }
            _ => std::fs::write(
                sandbox.path().join(".env"),
                "CCAI_UI_TOKEN=UI-TOKEN-FROBOZZ\n",
            )
            .expect("write .env"),
        }
        let mut child = cmd.spawn().expect("spawn ccai ui");
        let err = lines(child.stderr.take().expect("stderr"));
        let mut said = Vec::new();
        while !said
            .iter()
            .any(|l: &String| l.starts_with("The view requires"))
        {
            match err.recv_timeout(WAIT) {
                Ok(line) => said.push(line),
                Err(_) => break,
            }
        }
        let _ = (child.kill(), child.wait());
        let text = said.join("\n");
        assert!(text.contains("?token=TOKEN"), "{what}: {text}");
        assert!(text.contains(named), "{what}: {text}");
        assert!(!text.contains("UI-TOKEN-FROBOZZ"), "{what}: {text}");
    }
}

#[tokio::test]
async fn escapes_in_a_servers_answer_or_an_events_text_stay_inert() {
    const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, HOSTILE.into())).await;
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.sent", "--to", &target.url])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(!stdout(&out).contains('\u{1b}'), "{:?}", stdout(&out));
    assert!(stdout(&out).contains("]0;owned"), "{:?}", stdout(&out));

    // `ccai verify --body` of a correctly signed event whose type is an escape sequence.
    let hash = "hostile-type";
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", hash, "--client-id", CLIENT_ID])
        .args(["--secret", SECRET]);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let signature = stdout(&out).trim().to_owned();
    let body = serde_json::json!({"eventType": HOSTILE, "eventHash": hash, "data": {}});
    let file = sandbox.path().join("hostile.json");
    std::fs::write(&file, body.to_string()).expect("write body");
    let mut cmd = sandbox.ccai();
    cmd.args(["verify", "--signature", &signature, "--body"])
        .arg(&file)
        .args(["--client-id", CLIENT_ID, "--secret", SECRET]);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(stdout(&out).starts_with("verified: "), "{:?}", stdout(&out));
    assert!(!stdout(&out).contains('\u{1b}'), "{:?}", stdout(&out));
}

#[tokio::test]
async fn purge_refuses_to_keep_hashes_for_less_than_bodies() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "purge", "--older-than", "30d"]).args([
        "--keep-hashes-for",
        "0s",
        "--store",
        "purge.db",
    ]);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--keep-hashes-for 0s is shorter than --older-than 30d"),
        "{}",
        stderr(&out)
    );
    // Refused before the store was opened.
    assert!(!sandbox.path().join("purge.db").exists());
}

#[tokio::test]
async fn an_empty_retry_schedule_is_refused_not_read_as_no_retries() {
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", "0", "--store", "retry.db"])
        .args(["--forward-to", &forward, "--retry-schedule", " "])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("invalid --retry-schedule \" \": empty;"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_zero_retry_delay_is_refused() {
    // `1s,0s` used to be taken: the second retry came at once after the first failed.
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    for (value, said) in [
        ("0s", "invalid --retry-schedule \"0s\": must be longer than 0 (0 retries at once); give a comma-separated list"),
        ("1s,0ms", "invalid --retry-schedule \"1s,0ms\" (item \"0ms\"): must be longer than 0 (0 retries at once); give a comma-separated list"),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0", "--store", "retry.db"])
            .args(["--forward-to", &forward, "--retry-schedule", value])
            .env("CCAI_CLIENT_ID", CLIENT_ID)
            .env("CCAI_WEBHOOK_SECRET", SECRET);
        let out = exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{value}: {}", all_output(&out));
        assert!(stderr(&out).contains(said), "{value}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn a_retry_delay_past_thirty_days_is_refused() {
    // 100000000000d used to be taken, printing a retry "in about 9×10¹⁵ s", which means never.
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "--port", "0", "--store", "retry.db"])
        .args([
            "--forward-to",
            &forward,
            "--retry-schedule",
            "1s,100000000000d",
        ])
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("invalid --retry-schedule \"1s,100000000000d\" (item \"100000000000d\"): longer than 30d, the longest retry delay"),
        "{}",
        stderr(&out)
    );
    assert!(!sandbox.path().join("retry.db").exists());
}

#[tokio::test]
async fn a_missing_client_id_is_named_as_such() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "x"])
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let out = exits(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no client id"), "{}", stderr(&out));
    assert!(!all_output(&out).contains(SECRET));
}

/// A secret or client id with whitespace around it is refused naming where it came from (the
/// flag, the variable, or the variable in `.env`), so that the user looks there; it named both
/// the flag and the variable whatever the source. The value is never shown.
#[tokio::test]
async fn whitespace_around_a_setting_names_where_it_came_from() {
    let sandbox = Sandbox::new();
    /// Flags, variables, `.env`'s text, and how the error names the value.
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
        &'a str,
    );
    let cases: [Case<'_>; 5] = [
        (
            &["--secret", " padded-s3cret"],
            &[],
            None,
            "the webhook secret given with --secret",
        ),
        (
            &[],
            &[("CCAI_WEBHOOK_SECRET", "padded-s3cret\n")],
            None,
            "the webhook secret from CCAI_WEBHOOK_SECRET",
        ),
        (
            &[],
            &[],
            Some("CCAI_WEBHOOK_SECRET=\"padded-s3cret \"\n"),
            "the webhook secret from CCAI_WEBHOOK_SECRET in .env",
        ),
        (
            &["--client-id", "s3cret-id "],
            &[("CCAI_WEBHOOK_SECRET", SECRET)],
            None,
            "the client id given with --client-id",
        ),
        (
            &[],
            &[
                ("CCAI_WEBHOOK_SECRET", SECRET),
                ("CCAI_CLIENT_ID", " s3cret-id"),
            ],
            None,
            "the client id from CCAI_CLIENT_ID",
        ),
    ];
    for (flags, vars, dotenv, said) in cases {
        let dotenv_file = sandbox.path().join(".env");
        match dotenv {
            Some(text) => std::fs::write(&dotenv_file, text).expect("write .env"),
            None => {
                let _ = std::fs::remove_file(&dotenv_file);
            }
        }
        let mut cmd = sandbox.ccai();
        cmd.args(["sign", "--event-hash", "x"])
            .args(flags)
            .envs(vars.iter().copied());
        let out = exits(cmd).await;
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{said}: {text}");
        assert_eq!(
            text,
            format!(
                "error: {said} starts or ends with whitespace: remove it (often a trailing newline)\n"
            )
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[tokio::test]
async fn listen_refuses_bad_flags_before_creating_anything() {
    for bad in [
        &["--admin-port", "0", "--admin-token", "   "][..],
        // Off the loopback a short token is all that would guard the admin routes.
        &[
            "--admin-port",
            "0",
            "--admin-host",
            "0.0.0.0",
            "--admin-token",
            "x",
        ][..],
        &["--header-timeout", "soon"][..],
        &["--host", "localhost"][..],
    ] {
        let sandbox = Sandbox::new();
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0"]).args(bad);
        let out = exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", all_output(&out));
        // No development secret made and printed, no store created.
        assert!(!stderr(&out).contains("Development secret"), "{bad:?}");
        assert!(!sandbox.config_dir().exists(), "{bad:?}");
        assert!(!sandbox.data_dir().exists(), "{bad:?}");
    }
}

/// Settings checked only once the store was open (the secret, the client id, a forward URL the
/// forwarder refuses) left a new store file, and its folder, behind a start that was refused.
#[tokio::test]
async fn a_refused_start_leaves_no_store_file_behind() {
    let long_client_id = "7".repeat(1025);
    for (bad, said) in [
        (
            &["--secret", " padded-s3cret "][..],
            "the webhook secret given with --secret starts or ends with whitespace",
        ),
        (
            &["--client-id", long_client_id.as_str()][..],
            "is longer than 1024 bytes",
        ),
        // The password is not UTF-8 once percent-decoded: the forwarder cannot send it.
        (
            &["--forward-to", "http://user:%FF-s3cret@127.0.0.1:9/hook"][..],
            "--forward-to: invalid forward URL",
        ),
    ] {
        let sandbox = Sandbox::new();
        let store = sandbox.path().join("fresh").join("inbox.db");
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0", "--store"])
            .arg(&store)
            .args(bad);
        let out = exits(cmd).await;
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {text}");
        assert!(
            text.starts_with("error: ") && text.contains(said) && text.lines().count() == 1,
            "{bad:?}: {text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!store.exists(), "{bad:?}: the store was created");
        assert!(!store.parent().expect("folder").exists(), "{bad:?}");
        assert!(!sandbox.config_dir().exists(), "{bad:?}: credentials made");
    }
}

/// With `--no-store`, a `--forward-to` whose user name or password is not UTF-8 once
/// percent-decoded is refused at start, as the store refuses it: it was accepted, and each
/// forward then went out without any `Authorization`.
#[tokio::test]
async fn no_store_refuses_forward_credentials_that_are_not_utf8() {
    let sandbox = Sandbox::new();
    for target in [
        "http://user:%FF-s3cret@127.0.0.1:9/hook",
        "http://s3cret%C3%28:pw@127.0.0.1:9/hook",
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args([
            "listen",
            "--no-store",
            "--port",
            "0",
            "--forward-to",
            target,
        ]);
        let out = exits(cmd).await;
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {text}");
        assert!(
            text.starts_with("error: --forward-to: invalid forward URL")
                && text.contains("not UTF-8 once percent-decoded")
                && text.lines().count() == 1,
            "{target}: {text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!sandbox.config_dir().exists(), "{target}: credentials made");
    }
}

#[tokio::test]
async fn a_bad_postgres_url_names_the_offending_option_not_its_value() {
    // "invalid connection string" alone left the user to guess which part of the URL was wrong.
    let sandbox = Sandbox::new();
    for (query, named) in [
        (
            "sslmode=sometimes-s3cr3t",
            "invalid value for option `sslmode`",
        ),
        ("sslmod=require", "unknown option `sslmod`"),
    ] {
        let url = format!("postgres://alice:s3cr3t@127.0.0.1:5432/db?{query}");
        let mut cmd = sandbox.ccai();
        cmd.args(["events", "stats", "--store", &url]);
        let out = exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
        let text = all_output(&out);
        assert!(text.contains(named), "{query}: {text}");
        assert!(!text.contains("s3cr3t"), "{query}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    let mut cmd = sandbox.ccai();
    cmd.args([
        "events",
        "stats",
        "--store",
        "postgres://alice:s3cr3t@127.0.0.1:99999/db",
    ]);
    let text = all_output(&exits(cmd).await);
    assert!(text.contains("invalid value for option `port`"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[tokio::test]
async fn a_store_url_of_another_scheme_is_refused_not_made_a_file() {
    // `Postgres://…` or a typo in the scheme was taken as a file path: folders named after
    // the user, password and host, a SQLite file under them, and a banner showing the
    // password as if the URL were the database.
    for url in [
        "Postgres://alice:s3cr3t@127.0.0.1:5432/db",
        "postgress://alice:s3cr3t@127.0.0.1:5432/db",
    ] {
        for args in [
            &["listen", "--port", "0", "--store", url][..],
            &["events", "stats", "--store", url][..],
        ] {
            let sandbox = Sandbox::new();
            let mut cmd = sandbox.ccai();
            cmd.args(args);
            let out = exits(cmd).await;
            let text = all_output(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
            assert!(text.contains("postgres://"), "{args:?}: {text}");
            assert!(!text.contains("s3cr3t"), "{args:?}: {text}");
            let made: Vec<_> = std::fs::read_dir(sandbox.path())
                .expect("read the sandbox")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert!(made.is_empty(), "{args:?}: made {made:?}");
        }
    }
}

#[tokio::test]
async fn a_store_path_with_an_unexpanded_tilde_is_refused() {
    // From .env or quoted, `~/…` is not expanded: the store landed in a folder named `~`
    // in the current directory while the banner said `~/…`.
    for (env, args) in [
        (
            None,
            &["listen", "--port", "0", "--store", "~/ccai/inbox.db"][..],
        ),
        (None, &["events", "stats", "--store", "~/ccai/inbox.db"][..]),
        (
            Some(("CCAI_DATA_DIR", "~/ccai-data")),
            &["listen", "--port", "0"][..],
        ),
        (
            Some(("CCAI_CONFIG_DIR", "~/ccai-config")),
            &["listen", "--port", "0", "--no-store"][..],
        ),
    ] {
        let sandbox = Sandbox::new();
        let mut cmd = sandbox.ccai();
        if let Some((name, dir)) = env {
            cmd.env(name, dir);
        }
        cmd.args(args);
        let out = exits(cmd).await;
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("starts with ~"), "{args:?}: {text}");
        assert!(!sandbox.path().join("~").exists(), "{args:?}: {text}");
    }
}

/// A `--forward-to` URL's password is sent (as `Authorization: Basic`) and goes nowhere else:
/// not into the banner, the retry and dead lines, the debug logs, the store's attempts, nor
/// `ccai events show` and `list`, even when the target echoes the request back in its error
/// page. And that error page's escape sequences come out of `ccai listen` inert, in text lines
/// and `--json` lines alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_urls_password_is_sent_and_never_shown_or_stored() {
    use base64::Engine as _;
    use common::Listening;
    const PASSWORD: &str = "FWD-PASS-7q2";
    const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}evil\u{7f}";
    let sandbox = Sandbox::new();
    let target = recorder(|request| {
        let auth = request.header("authorization").unwrap_or_default();
        let decoded = auth
            .strip_prefix("Basic ")
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let echo = serde_json::json!({"authorization": auth, "credentials": decoded});
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{echo} {HOSTILE}"),
        )
    })
    .await;
    let forward = format!(
        "{}/hook",
        target
            .url
            .replace("http://", &format!("http://forwarder:{PASSWORD}@"))
    );
    let token = base64::engine::general_purpose::STANDARD.encode(format!("forwarder:{PASSWORD}"));
    let leaks = [PASSWORD, token.as_str(), token.trim_end_matches('=')];
    let assert_clean = |text: &str| {
        for leak in leaks {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{7f}']),
            "a raw control character in {text:?}"
        );
    };

    for (run, json) in [("text", false), ("json", true)] {
        let store = sandbox.path().join(format!("{run}.db"));
        let store_arg = store.to_string_lossy().into_owned();
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
            .env("CCAI_WEBHOOK_SECRET", SECRET)
            .env("CCAI_LOG", "debug");
        let mut args = vec![
            "--port",
            "0",
            "--store",
            &store_arg,
            "--forward-to",
            &forward,
            "--retry-schedule",
            "100ms",
        ];
        if json {
            args.push("--json");
        }
        let listen = Listening::announced(Listening::launch(cmd, &args));
        let banner = listen.banner.join("\n");
        assert!(
            banner.contains("Forwarding stored deliveries to http://127.0.0.1:"),
            "{banner}"
        );
        assert_clean(&banner);

        let hash = format!("fwd-secret-{run}");
        let body = serde_json::json!({"eventType": "message.sent", "eventHash": hash, "data": {}});
        let response = reqwest::Client::new()
            .post(&listen.url)
            .header("content-type", "application/json")
            .header(
                "x-ccai-signature",
                ccai::webhook::sign(CLIENT_ID, &hash, SECRET),
            )
            .body(body.to_string())
            .send()
            .await
            .expect("deliver");
        assert_eq!(response.status(), 200);
        let mut said = Vec::new();
        while !said.iter().any(|l: &String| l.contains("DEAD")) {
            said.push(
                listen
                    .err
                    .recv_timeout(WAIT)
                    .unwrap_or_else(|_| panic!("no dead line; listen said {said:?}")),
            );
        }
        let out: Vec<String> = std::iter::from_fn(|| listen.out.try_recv().ok()).collect();
        drop(listen);
        for line in said.iter().chain(&out) {
            assert_clean(line);
        }
        let dead = said
            .iter()
            .find(|l| l.contains("DEAD"))
            .expect("the dead line");
        assert!(dead.contains("Basic [REDACTED]"), "{dead}");
        // The escape sequence is shown, escaped.
        assert!(dead.contains(r"\u{1b}]0;owned\u{7}"), "{dead}");
        let retry = out
            .iter()
            .find(|l| l.contains("retrying") || l.contains("will retry"))
            .unwrap_or_else(|| panic!("no retry line in {out:?}"));
        if json {
            let line: serde_json::Value = serde_json::from_str(retry).expect("a JSON line");
            let error = line["error"].as_str().expect("an error");
            // Exact in JSON once decoded; inert on the terminal.
            assert!(error.ends_with(HOSTILE), "{error}");
            assert!(error.contains(r#""credentials":"[REDACTED]""#), "{error}");
        } else {
            assert!(retry.contains(r#""credentials":"[REDACTED]""#), "{retry}");
        }

        for command in [
            vec!["events", "show", hash.as_str(), "--store", &store_arg],
            vec![
                "events",
                "show",
                hash.as_str(),
                "--json",
                "--store",
                &store_arg,
            ],
            vec!["events", "list", "--store", &store_arg],
            vec!["events", "list", "--json", "--store", &store_arg],
        ] {
            let mut cmd = sandbox.ccai();
            cmd.args(&command);
            let shown = exits(cmd).await;
            assert_eq!(
                shown.status.code(),
                Some(0),
                "{command:?}: {}",
                all_output(&shown)
            );
            let text = all_output(&shown);
            assert_clean(&text);
            // The table shows the first 12 characters of a hash.
            assert!(text.contains(&hash[..12]), "{command:?}: {text}");
            if command[1] == "show" {
                assert!(text.contains("[REDACTED]"), "{command:?}: {text}");
            }
        }
    }
    let requests = target.requests.lock().expect("lock");
    assert_eq!(requests.len(), 4);
    for request in requests.iter() {
        assert_eq!(
            request.header("authorization").as_deref(),
            Some(format!("Basic {token}").as_str())
        );
    }
}

/// Sends a signed `message.sent` delivery of `hash` to a listener at `url`; its status.
async fn deliver_signed(url: &str, hash: &str) -> u16 {
    let body = serde_json::json!({"eventType": "message.sent", "eventHash": hash, "data": {}});
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-ccai-signature",
            ccai::webhook::sign(CLIENT_ID, hash, SECRET),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("deliver")
        .status()
        .as_u16()
}

/// A `--forward-to` URL that carries its token in the path (a Slack-style hook:
/// `/services/T000/B000/XsEc…`) reaches the target whole, but is shown with that segment
/// redacted, and a target that echoes its request line gets it redacted from what is stored and
/// printed: with the store (the banner, the retry and dead lines, the debug logs,
/// `ccai events show`), by `ccai events replay --to`, and with `--no-store` (the banner and the
/// failed forward's line). The words of the path stay, so the user recognises the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_urls_path_token_is_sent_and_never_shown_or_stored() {
    use common::Listening;
    const TOKEN: &str = "XsEcReTt0kEn1234567890";
    const SHOWN: &str = "/webhooks/services/T000/B000/[REDACTED]";
    let sandbox = Sandbox::new();
    let target = recorder(|request| {
        (
            StatusCode::NOT_FOUND,
            format!("Cannot handle {} {} HTTP/1.1", request.method, request.path),
        )
    })
    .await;
    let forward = format!("{}/webhooks/services/T000/B000/{TOKEN}", target.url);
    let assert_clean = |what: &str, text: &str| {
        for leak in [TOKEN, "XsEcReTt", "1234567890"] {
            assert!(!text.contains(leak), "{what}: {leak:?} in {text}");
        }
    };

    // Stored, forwarded by the dispatcher: one attempt and one retry, then dead.
    let store = sandbox.path().join("path-token.db");
    let store_arg = store.to_string_lossy().into_owned();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET)
        .env("CCAI_LOG", "debug");
    let listen = Listening::announced(Listening::launch(
        cmd,
        &[
            "--port",
            "0",
            "--store",
            &store_arg,
            "--forward-to",
            &forward,
            "--retry-schedule",
            "100ms",
        ],
    ));
    let banner = listen.banner.join("\n");
    assert!(
        banner.contains(&format!("Forwarding stored deliveries to {}", target.url))
            && banner.contains(SHOWN),
        "{banner}"
    );
    assert_clean("the banner", &banner);
    let hash = "path-token-stored";
    assert_eq!(deliver_signed(&listen.url, hash).await, 200);
    let mut said = Vec::new();
    while !said.iter().any(|l: &String| l.contains("DEAD")) {
        said.push(
            listen
                .err
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no dead line; listen said {said:?}")),
        );
    }
    let out: Vec<String> = std::iter::from_fn(|| listen.out.try_recv().ok()).collect();
    drop(listen);
    for line in said.iter().chain(&out) {
        assert_clean("listen", line);
    }
    let dead = said
        .iter()
        .find(|l| l.contains("DEAD"))
        .expect("the dead line");
    assert!(
        dead.contains(&format!("Cannot handle POST {SHOWN} HTTP/1.1")),
        "{dead}"
    );
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "show", hash, "--store", &store_arg]);
    let shown = exits(cmd).await;
    let text = all_output(&shown);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    assert_clean("events show", &text);
    assert!(text.contains(SHOWN), "{text}");

    // Sent now by `ccai events replay --to`: the target's 404 fails the replay.
    let mut cmd = sandbox.ccai();
    cmd.args([
        "events", "replay", hash, "--to", &forward, "--store", &store_arg,
    ]);
    let replayed = exits(cmd).await;
    let text = all_output(&replayed);
    assert_ne!(replayed.status.code(), Some(0), "{text}");
    assert_clean("events replay", &text);
    assert!(
        text.contains(&format!("1 of 1 replays to {}{SHOWN} failed", target.url)),
        "{text}"
    );

    // `--no-store`: forwarded before answering.
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET)
        .env("CCAI_LOG", "debug");
    let listen = Listening::announced(Listening::launch(
        cmd,
        &["--port", "0", "--no-store", "--forward-to", &forward],
    ));
    // Its forwarding line comes after the address.
    let forwarding = listen.err.recv_timeout(WAIT).expect("the forwarding line");
    let banner = format!("{}\n{forwarding}", listen.banner.join("\n"));
    assert!(
        banner.contains(&format!("Forwarding verified deliveries to {}", target.url))
            && banner.contains(SHOWN),
        "{banner}"
    );
    assert_clean("the --no-store banner", &banner);
    assert_eq!(
        deliver_signed(&listen.url, "path-token-no-store").await,
        500
    );
    let line = listen.next_line();
    let err: Vec<String> = std::iter::from_fn(|| listen.err.try_recv().ok()).collect();
    drop(listen);
    assert!(
        line.contains("forward FAILED") && line.contains(&format!("{SHOWN} answered 404")),
        "{line}"
    );
    assert_clean("--no-store", &line);
    for line in &err {
        assert_clean("--no-store's stderr", line);
    }

    // The token went where it belongs, every time.
    let requests = target.requests.lock().expect("lock");
    assert_eq!(requests.len(), 4);
    for request in requests.iter() {
        assert_eq!(
            request.path,
            format!("/webhooks/services/T000/B000/{TOKEN}")
        );
    }
}
