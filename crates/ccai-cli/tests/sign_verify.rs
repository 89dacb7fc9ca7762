//! `ccai sign` and `ccai verify` against the official SDKs' signature vectors.

mod common;

use common::{run, stderr, stdout, Sandbox};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!(
        "../../ccai/tests/fixtures/signature-vectors.json"
    ))
    .expect("fixture")
}

#[tokio::test]
async fn sign_reproduces_every_valid_vector() {
    let sandbox = Sandbox::new();
    for case in vectors()["valid"].as_array().unwrap() {
        let mut cmd = sandbox.ccai();
        cmd.args(["sign", "--event-hash", case["eventHash"].as_str().unwrap()])
            .args(["--client-id", case["clientId"].as_str().unwrap()])
            .env("CCAI_WEBHOOK_SECRET", case["secret"].as_str().unwrap());
        let out = run(cmd).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), case["signature"].as_str().unwrap());
    }
}

#[tokio::test]
async fn verify_accepts_valid_and_rejects_invalid_vectors() {
    let sandbox = Sandbox::new();
    let all = vectors();
    for (section, expect_ok) in [("valid", true), ("invalid", false)] {
        for case in all[section].as_array().unwrap() {
            let (client_id, secret) = (
                case["clientId"].as_str().unwrap(),
                case["secret"].as_str().unwrap(),
            );
            let mut cmd = sandbox.ccai();
            cmd.args(["verify", "--signature", case["signature"].as_str().unwrap()])
                .args(["--event-hash", case["eventHash"].as_str().unwrap()])
                .args(["--client-id", client_id, "--secret", secret]);
            let out = run(cmd).await;
            let what = format!("{section} {case}: {}{}", stdout(&out), stderr(&out));
            if expect_ok {
                assert_eq!(out.status.code(), Some(0), "{what}");
                assert!(stdout(&out).starts_with("verified"), "{what}");
            } else if client_id.is_empty() || secret.is_empty() || case["eventHash"] == "" {
                // Empty settings: refused with an error (exit 2), or a reason (exit 1); never 0.
                assert_ne!(out.status.code(), Some(0), "{what}");
            } else {
                assert_eq!(out.status.code(), Some(1), "{what}");
                assert!(stdout(&out).starts_with("not verified: "), "{what}");
            }
            // The secret is never echoed.
            if secret.len() > 3 {
                assert!(
                    !stdout(&out).contains(secret) && !stderr(&out).contains(secret),
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn verify_a_body_file() {
    let sandbox = Sandbox::new();
    let body =
        br#"{"eventType":"message.sent","data":{"To":"+1"},"eventHash":"event-hash-abc123"}"#;
    let file = sandbox.path().join("delivery.json");
    // `ccai verify --body FILE` with the first Go SDK vector's signature and settings.
    let verify_file = |contents: &[u8]| {
        std::fs::write(&file, contents).unwrap();
        let mut cmd = sandbox.ccai();
        cmd.args([
            "verify",
            "--signature",
            "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
        ])
        .arg("--body")
        .arg(&file)
        .args(["--client-id", "client-123", "--secret", "test-secret"]);
        run(cmd)
    };
    let out = verify_file(body).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "verified: message.sent event-hash-abc123"
    );

    // A legacy body cannot verify, and says why.
    let out = verify_file(br#"{"smsSid":1,"to":"+1","messageStatus":"SENT"}"#).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("legacy"), "{}", stdout(&out));

    // A body that is not a delivery is an error (exit 2, saying what is wrong), not a "no":
    // exit 1 told a script the signature was wrong when the file was.
    for (contents, problem) in [
        (&b"junk"[..], "body is not valid JSON"),
        (b"[1]", "body must be a JSON object, found an array"),
        (
            br#"{"eventType":"message.sent","data":{}}"#,
            "missing required field `eventHash`",
        ),
    ] {
        let out = verify_file(contents).await;
        let what = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{what}");
        let said = stderr(&out);
        assert!(
            said.contains(&format!(
                "error: body file {} is not a CCAI delivery: {problem}",
                file.display()
            )) && said.contains("pass the raw body of one")
                && said.trim().lines().count() == 1,
            "{what}"
        );
        assert!(stdout(&out).is_empty(), "{what}");
    }
    // Even with a signature that could never verify: the body is what is wrong.
    std::fs::write(&file, "junk").unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["verify", "--signature", "x", "--body"])
        .arg(&file)
        .args(["--client-id", "client-123", "--secret", "test-secret"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // A missing file (or a folder) is an error, not a "no", and says what to pass instead.
    for path in ["nope.json", "."] {
        let mut cmd = sandbox.ccai();
        cmd.args(["verify", "--signature", "x", "--body", path])
            .args(["--client-id", "client-123", "--secret", "test-secret"]);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cannot read body file {path}: ")),
            "{err}"
        );
        assert!(
            err.trim_end().ends_with(
                "; pass --body the path of a file holding the delivery's raw body, exactly as received"
            ),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[tokio::test]
async fn settings_come_from_a_dotenv_file_below_the_environment() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join(".env"),
        "CCAI_CLIENT_ID=client-123\nCCAI_WEBHOOK_SECRET=test-secret\n",
    )
    .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"]);
    let out = run(cmd).await;
    assert_eq!(
        stdout(&out).trim(),
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
        "{}",
        stderr(&out)
    );

    // The environment wins over .env, and a flag over both.
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .env("CCAI_CLIENT_ID", "test-client-id");
    let out = run(cmd).await;
    assert_eq!(
        stdout(&out).trim(),
        "uruPvatdCMhXXFpN/N7XTxXCjNfrqRLlK+UrQgyCURQ="
    );
    let mut cmd = sandbox.ccai();
    cmd.args([
        "sign",
        "--event-hash",
        "event-hash-abc123",
        "--client-id",
        "client-123",
    ])
    .env("CCAI_CLIENT_ID", "test-client-id");
    let out = run(cmd).await;
    assert_eq!(
        stdout(&out).trim(),
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y="
    );
}

#[tokio::test]
async fn sign_without_a_secret_says_what_to_do() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "h"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: no webhook secret"), "{err}");
    assert!(err.contains("CCAI_WEBHOOK_SECRET"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `ccai verify` without what to check named `--event-hash` alone as missing, in its error and its
/// usage line: a user holding a body file was not told that `--body FILE` does as well.
#[tokio::test]
async fn verify_without_a_hash_or_body_names_both() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args([
        "verify",
        "--signature",
        "s",
        "--client-id",
        "c",
        "--secret",
        "k",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--event-hash"), "{err}");
    assert!(err.contains("--body"), "{err}");
    let mut cmd = sandbox.ccai();
    cmd.args(["verify", "--help"]);
    let help = stdout(&run(cmd).await);
    let usage = help.lines().find(|line| line.starts_with("Usage:"));
    assert!(
        usage.is_some_and(|usage| usage.contains("--event-hash") && usage.contains("--body")),
        "{help}"
    );
}

/// With development credentials on disk, a configured secret without a client id (or the other
/// way round) was silently paired with the development value: `verify` of a real delivery said
/// "signature does not match", `sign` printed a signature nobody sends, and neither said why.
/// Both now say which value came from the development credentials and what to set.
#[tokio::test]
async fn sign_and_verify_say_when_they_mix_in_a_development_value() {
    let sandbox = with_development_credentials();
    // The first Go SDK vector: client-123, test-secret, event-hash-abc123.
    let signature = "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=";
    let cases: [(&[&str], &str); 4] = [
        (&["--secret", "test-secret"], "client id"),
        (&["--client-id", "client-123"], "secret"),
        (&["--secret", "test-secret"], "client id"),
        (&["--client-id", "client-123"], "secret"),
    ];
    for (i, (settings, development)) in cases.into_iter().enumerate() {
        let mut cmd = sandbox.ccai();
        if i < 2 {
            cmd.args(["sign", "--event-hash", "event-hash-abc123"]);
        } else {
            cmd.args(["verify", "--signature", signature])
                .args(["--event-hash", "event-hash-abc123"]);
        }
        cmd.args(settings);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert!(
            err.contains(&format!("the development {development}")),
            "{settings:?}: {err}"
        );
        assert!(
            err.contains("CCAI_CLIENT_ID") && err.contains("CCAI_WEBHOOK_SECRET"),
            "{err}"
        );
        // Neither secret is printed.
        assert!(
            !err.contains("whsec_dev_0123") && !err.contains("test-secret"),
            "{err}"
        );
    }

    // Both configured, or both from the development file: nothing to say.
    for settings in [
        &["--client-id", "client-123", "--secret", "test-secret"][..],
        &[],
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["sign", "--event-hash", "event-hash-abc123"])
            .args(settings);
        let out = run(cmd).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    }
}

/// `--secret ''` (a blank shell variable, say) was read as no secret, so every command that
/// signs or verifies silently used the development secret; so did `--client-id ''`. An empty
/// flag is now an error; an empty environment variable still counts as unset.
#[tokio::test]
async fn an_empty_secret_or_client_id_flag_is_refused() {
    let sandbox = with_development_credentials();
    let commands: [&[&str]; 4] = [
        &["sign", "--event-hash", "event-hash-abc123"],
        &["verify", "--signature", "c2lnbmF0dXJl", "--event-hash", "h"],
        &[
            "trigger",
            "message.sent",
            "--to",
            "http://127.0.0.1:9/webhook",
        ],
        &["listen", "--port", "0", "--no-store"],
    ];
    for command in commands {
        for (flag, other) in [
            ("--secret", ["--client-id", "client-123"]),
            ("--client-id", ["--secret", "test-secret"]),
        ] {
            let mut cmd = sandbox.ccai();
            cmd.args(command).args([flag, ""]).args(other);
            let out = run(cmd).await;
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command:?} {flag}: {err}");
            assert_eq!(
                err,
                format!("error: {flag} is empty: give {}", empty_flag_rest(flag)),
                "{command:?}"
            );
            assert!(stdout(&out).is_empty(), "{command:?} {flag}");
        }
    }

    // Empty in the environment: unset, so the development values sign.
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .env("CCAI_WEBHOOK_SECRET", "")
        .env("CCAI_CLIENT_ID", "");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
}

/// The rest of the error line for an empty `flag`.
fn empty_flag_rest(flag: &str) -> &'static str {
    if flag == "--secret" {
        "the secret, or leave --secret out to use CCAI_WEBHOOK_SECRET or the development secret\n"
    } else {
        "your CloudContactAI client id, or leave --client-id out to use CCAI_CLIENT_ID or the development one\n"
    }
}

/// A sandbox whose config folder holds development credentials (`ccai-dev`, a `whsec_dev_…`
/// secret), as a first `ccai listen` leaves them.
fn with_development_credentials() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.config_dir()).unwrap();
    std::fs::write(
        sandbox.config_dir().join("dev-credentials.json"),
        r#"{"client_id":"ccai-dev","secret":"whsec_dev_0123456789abcdef"}"#,
    )
    .unwrap();
    sandbox
}

/// `ccai verify --body BODY` with the first Go SDK vector's signature and settings.
fn verify_vector_body(sandbox: &Sandbox, body: &str) -> std::process::Command {
    let mut cmd = sandbox.ccai();
    cmd.args([
        "verify",
        "--signature",
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
        "--body",
        body,
        "--client-id",
        "client-123",
        "--secret",
        "test-secret",
    ]);
    cmd
}

/// `ccai verify --body -` on `input` piped to standard input, with the first Go SDK vector's
/// signature and settings.
async fn verify_stdin(sandbox: &Sandbox, input: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    let mut cmd = verify_vector_body(sandbox, "-");
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ccai");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::task::spawn_blocking(move || {
        // A process that stops reading (past the limit) closes the pipe: not a failure here.
        let _ = stdin.write_all(&input);
        drop(stdin);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join")
}

/// `--body -` reads the body from standard input: verified, not verified, not a delivery, and
/// past the limit, as for a file.
#[tokio::test]
async fn verify_a_body_on_standard_input() {
    let sandbox = Sandbox::new();
    let body =
        br#"{"eventType":"message.sent","data":{"To":"+1"},"eventHash":"event-hash-abc123"}"#;
    let out = verify_stdin(&sandbox, body.to_vec()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "verified: message.sent event-hash-abc123"
    );
    // Piped: no hint to type the body.
    assert_eq!(stderr(&out), "");

    // Tampered (another eventHash under the same signature): the usual "no", exit 1.
    let tampered =
        br#"{"eventType":"message.sent","data":{"To":"+1"},"eventHash":"event-hash-abc124"}"#;
    let out = verify_stdin(&sandbox, tampered.to_vec()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("not verified: "),
        "{}",
        stdout(&out)
    );

    // Not a delivery: exit 2, naming standard input.
    let out = verify_stdin(&sandbox, b"junk".to_vec()).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "error: body file - (standard input) is not a CCAI delivery: body is not valid JSON"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // Nothing at all is not a delivery either.
    let out = verify_stdin(&sandbox, Vec::new()).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // Past the 16 MiB a flag's file may hold: refused, not read to the end.
    let out = verify_stdin(&sandbox, vec![b' '; (16 << 20) + 1]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot read body file - (standard input): it is larger than 16 MiB; pass --body"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // A file named `-` is still read as `./-`.
    std::fs::write(sandbox.path().join("-"), body).expect("write ./-");
    let out = run(verify_vector_body(&sandbox, "./-")).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// At a terminal, `--body -` says once on standard error that it reads standard input and how to
/// end it (through `script`, which gives the command a terminal; skipped where it is missing).
#[tokio::test]
async fn verify_body_from_a_terminal_says_how_to_end_it() {
    use std::io::Write;
    if !common::runs("script", &["--version"]) {
        println!("skipped: script (util-linux) not installed");
        return;
    }
    let sandbox = Sandbox::new();
    let command = format!(
        "{} verify --signature Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y= --body - \
         --client-id client-123 --secret test-secret",
        env!("CARGO_BIN_EXE_ccai")
    );
    // `script -q -e -c COMMAND /dev/null`, with the sandbox's environment and folder.
    let ccai = sandbox.ccai();
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &command, "/dev/null"]);
    for (key, value) in ccai.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.current_dir(sandbox.path());
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().expect("stdin");
    let out = tokio::task::spawn_blocking(move || {
        // The body, a newline, and Ctrl-D: the end of typed input.
        let body =
            br#"{"eventType":"message.sent","data":{"To":"+1"},"eventHash":"event-hash-abc123"}"#;
        let _ = stdin.write_all(body);
        let _ = stdin.write_all(b"\n\x04");
        let _ = stdin.flush();
        let out = common::wait_or_kill(child);
        drop(stdin);
        out
    })
    .await
    .expect("join");
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("Reading standard input; end it with Ctrl-D."),
        "{said}"
    );
    assert!(
        said.contains("verified: message.sent event-hash-abc123"),
        "{said}"
    );
}
