//! The command line itself: completions, help text, and where settings are read from.

mod common;

use common::{closed_port, exits, run, stderr, stdout, Sandbox};

const SUBCOMMANDS: [&str; 6] = [
    "webhooks",
    "sign",
    "verify",
    "trigger",
    "listen",
    "completions",
];

#[tokio::test]
async fn completions_for_every_shell() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let mut cmd = sandbox.ccai();
        cmd.args(["completions", shell]);
        let out = run(cmd).await;
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{shell}");
        let script = stdout(&out);
        for name in SUBCOMMANDS.iter().chain(&["register", "forward-to"]) {
            assert!(script.contains(name), "{shell}: no {name} in\n{script}");
        }
    }

    let mut cmd = sandbox.ccai();
    cmd.args(["completions", "--help"]);
    let out = run(cmd).await;
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("ccai completions bash >"),
        "{}",
        stdout(&out)
    );

    let mut cmd = sandbox.ccai();
    cmd.args(["completions", "tcsh"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
}

/// `ccai trigger <TAB>` offers the six event types (bash and zsh complete a positional's values;
/// clap's fish and PowerShell scripts do not), while an unknown type still gets trigger's own
/// one-line error naming them.
#[tokio::test]
async fn completions_offer_the_event_types_to_trigger() {
    let sandbox = Sandbox::new();
    let types = [
        "message.sent",
        "message.incoming",
        "message.received",
        "message.excluded",
        "message.error.carrier",
        "message.error.cloudcontact",
    ];
    for shell in ["bash", "zsh"] {
        let mut cmd = sandbox.ccai();
        cmd.args(["completions", shell]);
        let out = run(cmd).await;
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        // All six on one line: the list of the argument's values, not the help text.
        let listed = stdout(&out).lines().any(|line| {
            types.iter().all(|t| {
                line.contains(&format!("{t} "))
                    || line.contains(&format!("{t})"))
                    || line.contains(&format!("{t}\""))
            })
        });
        assert!(listed, "{shell}: no line lists the event types");
    }

    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "message.bogus"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: unknown event type \"message.bogus\": use one of message.sent,"),
        "{err}"
    );
}

#[tokio::test]
async fn help_names_environment_variables_but_never_shows_their_values() {
    let sandbox = Sandbox::new();
    let values = [
        ("CCAI_CLIENT_ID", "client-value-1231"),
        ("CCAI_API_KEY", "api-key-value-secret"),
        ("CCAI_BASE_URL", "http://base-url-value.example/api"),
        ("CCAI_WEBHOOK_SECRET", "webhook-secret-value"),
    ];
    let commands: [&[&str]; 6] = [
        &["--help"],
        &["webhooks", "list", "--help"],
        &["sign", "--help"],
        &["verify", "--help"],
        &["trigger", "--help"],
        &["listen", "--help"],
    ];
    for args in commands {
        let mut cmd = sandbox.ccai();
        // Wide enough that no `[env: …]` is wrapped.
        cmd.args(args).envs(values).env("COLUMNS", "300");
        let out = run(cmd).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(help.contains("[env: CCAI_CLIENT_ID]"), "{args:?}:\n{help}");
        // The API's settings are listed for `ccai` and `ccai webhooks` only.
        let api = args[0] == "--help" || args[0] == "webhooks";
        assert_eq!(
            help.contains("[env: CCAI_BASE_URL]"),
            api,
            "{args:?}:\n{help}"
        );
        assert_eq!(
            help.contains("[env: CCAI_API_KEY]"),
            api,
            "{args:?}:\n{help}"
        );
        assert!(!help.contains("=]"), "{args:?}:\n{help}");
        for (name, value) in values {
            assert!(!help.contains(value), "{args:?} shows {name}:\n{help}");
        }
        if args[0] != "--help" && args[0] != "webhooks" {
            assert!(
                help.contains("[env: CCAI_WEBHOOK_SECRET]"),
                "{args:?}:\n{help}"
            );
        }
    }

    let mut cmd = sandbox.ccai();
    cmd.arg("--help").env("COLUMNS", "300");
    let out = run(cmd).await;
    assert!(
        stdout(&out).contains("Only ./.env is read"),
        "{}",
        stdout(&out)
    );
}

/// The paragraph of `flag` in a `--help` text: its line and the description under it.
fn flag_help<'a>(help: &'a str, flag: &str) -> &'a str {
    let start = help
        .find(&format!("      {flag} "))
        .unwrap_or_else(|| panic!("no {flag} in\n{help}"));
    let rest = &help[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[tokio::test]
async fn webhooks_update_help_says_the_secret_is_kept_without_secret() {
    let sandbox = Sandbox::new();
    for (command, says) in [("register", "server generates"), ("update", "unchanged")] {
        let mut cmd = sandbox.ccai();
        cmd.args(["webhooks", command, "--help"])
            .env("COLUMNS", "300");
        let out = run(cmd).await;
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        let help = stdout(&out);
        let secret = flag_help(&help, "--secret");
        assert!(secret.contains(says), "{command}:\n{secret}");
    }
}

/// The help says what a flag takes and what a command does where the docs do: `trigger --method`
/// named no value (PATCH is refused with "use POST or PUT"), and `ccai --help` summed up `listen`
/// without the durable store it keeps by default.
#[tokio::test]
async fn help_names_trigger_methods_and_that_listen_stores() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["trigger", "--help"]).env("COLUMNS", "300");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    let method = flag_help(&help, "--method");
    assert!(
        method.contains("POST or PUT") && method.contains("--accept-put"),
        "{method}"
    );

    let mut cmd = sandbox.ccai();
    cmd.arg("--help").env("COLUMNS", "300");
    let out = run(cmd).await;
    let help = stdout(&out);
    let listen = help
        .lines()
        .find(|line| line.trim_start().starts_with("listen "))
        .unwrap_or_else(|| panic!("no listen in\n{help}"));
    assert!(listen.contains("store"), "{listen}");
}

/// `ccai sign` run in `dir`, printing the signature of "event-hash-abc123" or an error.
async fn sign_in(sandbox: &Sandbox, dir: &std::path::Path) -> std::process::Output {
    let mut cmd = sandbox.ccai();
    cmd.current_dir(dir)
        .args(["sign", "--event-hash", "event-hash-abc123"]);
    run(cmd).await
}

#[tokio::test]
async fn dotenv_is_read_from_the_current_directory_only() {
    let sandbox = Sandbox::new();
    let work = sandbox.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let settings = "CCAI_CLIENT_ID=client-123\nCCAI_WEBHOOK_SECRET=test-secret\n";

    // A .env in a parent directory is not read.
    std::fs::write(sandbox.path().join(".env"), settings).unwrap();
    let out = sign_in(&sandbox, &work).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("error: no webhook secret"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    // One in the current directory is.
    std::fs::write(work.join(".env"), settings).unwrap();
    let out = sign_in(&sandbox, &work).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y="
    );
    assert_eq!(stderr(&out), "");
}

/// A `CCAI_*` variable set to nothing (`export CCAI_WEBHOOK_SECRET=` in a profile) counts as
/// unset, so `.env` fills it: dotenvy alone kept the empty value and the command signed with
/// the development secret instead. A variable set to a value still wins over `.env`.
#[tokio::test]
async fn dotenv_fills_ccai_variables_set_to_nothing() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join(".env"),
        "CCAI_CLIENT_ID=client-123\nCCAI_WEBHOOK_SECRET=test-secret\n",
    )
    .unwrap();
    // The signature of the same hash with the same pair given by flag.
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .args(["--client-id", "client-123", "--secret", "test-secret"]);
    let by_flag = run(cmd).await;
    assert!(by_flag.status.success(), "{}", stderr(&by_flag));
    let expected = stdout(&by_flag);
    assert_eq!(
        expected.trim(),
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y="
    );

    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .env("CCAI_WEBHOOK_SECRET", "")
        .env("CCAI_CLIENT_ID", "");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), expected, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");

    // A value set in the environment is not replaced.
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .env("CCAI_WEBHOOK_SECRET", "other-secret");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(stdout(&out), expected);
}

#[tokio::test]
async fn an_unreadable_dotenv_is_reported_and_ignored() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path().join(".env")).unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["sign", "--event-hash", "event-hash-abc123"])
        .args(["--client-id", "client-123", "--secret", "test-secret"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y="
    );
    assert!(
        stderr(&out).starts_with("warning: ignoring .env: "),
        "{}",
        stderr(&out)
    );
}

/// A `.env` with a line that does not parse is ignored whole, as the warning says: the lines
/// before the bad one used to be applied (here a secret that then signed).
#[tokio::test]
async fn a_dotenv_with_a_bad_line_is_not_half_applied() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join(".env"),
        "CCAI_WEBHOOK_SECRET=test-secret\nBAD=\"unterminated\n",
    )
    .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args([
        "sign",
        "--event-hash",
        "event-hash-abc123",
        "--client-id",
        "client-123",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).is_empty(), "signed with a secret from .env");
    let err = stderr(&out);
    assert!(
        err.contains("nothing from the file was used") && err.contains("no webhook secret"),
        "{err}"
    );
}

/// A `.env` value with a NUL byte cannot be set in the environment: `std::env::set_var`
/// panicked (exit 101) with the value, a secret, in the panic message. It is now refused like a
/// line that does not parse, whole and unquoted, whether the variable was unset or set empty.
#[tokio::test]
async fn a_dotenv_value_with_a_nul_byte_is_refused_not_a_panic() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join(".env"),
        "CCAI_CLIENT_ID=client-123\nCCAI_WEBHOOK_SECRET=top\0secret-value\n",
    )
    .unwrap();
    for empty in [false, true] {
        let mut cmd = sandbox.ccai();
        cmd.args(["sign", "--event-hash", "event-hash-abc123"]);
        if empty {
            cmd.env("CCAI_WEBHOOK_SECRET", "");
        }
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(stdout(&out).is_empty(), "signed: {}", stdout(&out));
        assert!(
            err.contains("warning: ignoring .env: \"CCAI_WEBHOOK_SECRET\" cannot be set")
                && err.contains("nothing from the file was used"),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("secret-value"),
            "{err}"
        );
        // No secret came from the file, so there is none to sign with.
        assert!(err.contains("error: no webhook secret"), "{err}");
    }
}

/// A `TOKIO_WORKER_THREADS` tokio cannot use is a one-line error (exit 2), not tokio's panic
/// (exit 101), for every command; so is one beyond `--http-workers`' range (1 to 1024), which
/// spent many seconds starting threads before saying anything.
#[tokio::test]
async fn a_bad_tokio_worker_threads_is_an_error_not_a_panic() {
    let sandbox = Sandbox::new();
    for value in ["abc", "0", "-1", "1025", "99999"] {
        let mut cmd = sandbox.ccai();
        cmd.args([
            "sign",
            "--event-hash",
            "h",
            "--client-id",
            "c",
            "--secret",
            "s",
        ])
        .env("TOKIO_WORKER_THREADS", value);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("TOKIO_WORKER_THREADS must be a whole number")
                && stderr(&out).contains("from 1 to 1024"),
            "{value}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().count(), 1, "{value}: {}", stderr(&out));
    }
    let mut cmd = sandbox.ccai();
    cmd.args([
        "sign",
        "--event-hash",
        "h",
        "--client-id",
        "c",
        "--secret",
        "s",
    ])
    .env("TOKIO_WORKER_THREADS", "3");
    assert!(run(cmd).await.status.success());
}

#[tokio::test]
async fn environment_variables_set_to_nothing_count_as_unset() {
    // `export CCAI_STORE=` (or a blank line in a deployment's environment) must not become an
    // empty --store or --log-format that fails every command over a flag nobody gave.
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_STORE", "")
        .env("CCAI_LOG_FORMAT", "")
        .args(["events", "stats"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let default_store = sandbox.data_dir().join("ccai").join("inbox.db");
    assert!(
        stderr(&out).contains(&format!("no inbox at {}", default_store.display())),
        "{}",
        stderr(&out)
    );

    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_LOG_FORMAT", "").args([
        "sign",
        "--event-hash",
        "h1",
        "--client-id",
        "1231",
        "--secret",
        "s3cret",
    ]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim().len(), 44, "{}", stdout(&out));
}

/// A bad `CCAI_LOG_FORMAT` was refused as an invalid `--log-format`, a flag nobody typed; the
/// error now names the variable. `JSON` (environment values are often upper case) is json, as
/// `--log-format JSON` is; the flag wins over the variable.
#[tokio::test]
async fn ccai_log_format_is_named_when_wrong_and_read_in_any_case() {
    let sandbox = Sandbox::new();
    let sign = |env: &str, flag: Option<&str>| {
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_LOG_FORMAT", env);
        if let Some(flag) = flag {
            cmd.args(["--log-format", flag]);
        }
        cmd.args([
            "sign",
            "--event-hash",
            "h1",
            "--client-id",
            "1231",
            "--secret",
            "s3cret",
        ]);
        cmd
    };
    let out = run(sign("xml", None)).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: CCAI_LOG_FORMAT=\"xml\" is not a log format: set it to text or json, or unset it"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    // The flag given wins over the variable, as for every setting.
    let out = run(sign("xml", Some("text"))).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // A bad flag is still clap's usage error about the flag.
    let out = run(sign("json", Some("xml"))).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'--log-format"), "{}", stderr(&out));

    // Upper case is json, from the variable or the flag: each log line is a JSON object.
    for (env, flag) in [("JSON", None), ("", Some("Json"))] {
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_LOG_FORMAT", env).env("CCAI_LOG", "debug");
        if let Some(flag) = flag {
            cmd.args(["--log-format", flag]);
        }
        let to = format!("http://127.0.0.1:{}/hook", common::closed_port());
        cmd.args(["trigger", "message.sent", "--to", &to]).args([
            "--client-id",
            "1231",
            "--secret",
            "s3cret",
        ]);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let logs: Vec<&str> = err.lines().filter(|l| !l.starts_with("error: ")).collect();
        assert!(!logs.is_empty(), "{env:?} {flag:?}: no log line in {err}");
        for line in logs {
            let log: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{env:?} {flag:?}: {e}: {line}"));
            assert!(log.get("level").is_some(), "{line}");
        }
    }
}

/// A refused `--store`, `ccai ui --token`, `ccai listen --ui-token` or `--admin-token` that came
/// from its environment variable (or `.env`) is named by the variable: the errors said
/// `--store`, a flag the user never typed, so they looked in the wrong place. Given as a flag,
/// the flag is named as before.
#[tokio::test]
async fn a_refused_value_from_the_environment_names_its_variable() {
    let sandbox = Sandbox::new();
    let folder = sandbox.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let folder = folder.to_str().unwrap();
    let cases: [(&[&str], (&str, &str), &str); 8] = [
        (
            &["events", "stats"],
            ("CCAI_STORE", "~/inbox.db"),
            "error: CCAI_STORE ~/inbox.db starts with ~",
        ),
        (
            &["listen", "--port", "0"],
            ("CCAI_STORE", "~/inbox.db"),
            "error: CCAI_STORE ~/inbox.db starts with ~",
        ),
        (
            &["listen", "--port", "0"],
            ("CCAI_STORE", folder),
            &format!("error: CCAI_STORE {folder} is a folder"),
        ),
        (
            &["events", "list"],
            ("CCAI_STORE", "Postgres://alice@h/db"),
            "error: CCAI_STORE Postgres://…: a database URL must start with postgres://",
        ),
        (
            &["ui", "--port", "0"],
            ("CCAI_UI_TOKEN", "short"),
            "error: CCAI_UI_TOKEN: the view's token must be 16 to 256",
        ),
        (
            &["listen", "--port", "0", "--ui", "--ui-port", "0"],
            ("CCAI_UI_TOKEN", "short"),
            "error: CCAI_UI_TOKEN: the view's token must be 16 to 256",
        ),
        (
            &["listen", "--port", "0", "--admin-port", "0"],
            ("CCAI_ADMIN_TOKEN", "   "),
            "error: CCAI_ADMIN_TOKEN is empty: give a token of at least 16 characters, or unset CCAI_ADMIN_TOKEN",
        ),
        (
            &["listen", "--port", "0", "--admin-port", "0"],
            ("CCAI_ADMIN_TOKEN", "short"),
            "error: CCAI_ADMIN_TOKEN is too short: give at least 16 characters, or unset CCAI_ADMIN_TOKEN",
        ),
    ];
    for (args, (name, value), says) in cases {
        let mut cmd = sandbox.ccai();
        cmd.args(args).env(name, value);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {name}: {err}");
        assert!(err.starts_with(says), "{args:?} {name}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?} {name}: {err}");
    }
    // The same values given as flags name the flags.
    let flags: [(&[&str], &str); 4] = [
        (
            &["events", "stats", "--store", "~/inbox.db"],
            "error: --store ~/inbox.db starts with ~",
        ),
        (
            &["ui", "--port", "0", "--token", "short"],
            "error: --token: the view's token must be 16 to 256",
        ),
        (
            &["listen", "--port", "0", "--ui", "--ui-token", "short"],
            "error: --ui-token: the view's token must be 16 to 256",
        ),
        (
            &["listen", "--port", "0", "--admin-port", "0", "--admin-token", "short"],
            "error: --admin-token is too short: give at least 16 characters, or leave --admin-token out",
        ),
    ];
    for (args, says) in flags {
        let mut cmd = sandbox.ccai();
        cmd.args(args);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(says), "{args:?}: {err}");
    }
    // Neither given: the default store, not CCAI_STORE (unset, or set to nothing).
    let default = sandbox.data_dir().join("ccai").join("inbox.db");
    std::fs::create_dir_all(&default).unwrap();
    for empty in [false, true] {
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0"]);
        if empty {
            cmd.env("CCAI_STORE", "");
        }
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let says = format!("error: the default store {} is a folder", default.display());
        assert!(err.starts_with(&says), "{err}");
    }
}

/// Every duration flag refuses a value in one shape, `invalid --FLAG VALUE: what is wrong; how
/// to write one`: they said it three ways ("is not a duration: use a whole number with …",
/// "give a number and a unit …", "expected comma-separated durations …"). A long value is cut.
#[tokio::test]
async fn duration_flags_are_refused_in_one_shape() {
    const ADVICE: &str = "give a number and a unit, like 45s, 10m, 2h or 30d";
    const SCHEDULE: &str = "give a comma-separated list of durations, each a number and a unit (at most 30d), like 5s,5m,30m";
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    let listen = ["listen", "--port", "0", "--store", "d.db"];
    let long = "9".repeat(60);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            [&listen[..], &["--grace", "junk"]].concat(),
            format!("invalid --grace \"junk\": not a duration; {ADVICE}"),
        ),
        (
            [&listen[..], &["--header-timeout", "45"]].concat(),
            format!("invalid --header-timeout \"45\": no unit; {ADVICE}"),
        ),
        (
            [&listen[..], &["--body-timeout", "0s"]].concat(),
            format!("invalid --body-timeout \"0s\": must be longer than 0; {ADVICE}"),
        ),
        (
            vec!["events", "purge", "--older-than", "30days"],
            format!(
                "invalid --older-than \"30days\": unknown unit \"days\" (use ms, s, m, h or d); {ADVICE}"
            ),
        ),
        (
            vec!["webhooks", "--timeout", "1.5s", "list"],
            format!("invalid --timeout \"1.5s\": not a whole number; {ADVICE}"),
        ),
        (
            vec!["webhooks", "--timeout", &long, "list"],
            format!("invalid --timeout \"{}…\": no unit; {ADVICE}", "9".repeat(40)),
        ),
        (
            [&listen[..], &["--forward-to", &forward, "--retry-schedule", "junk"]].concat(),
            format!("invalid --retry-schedule \"junk\": not a duration; {SCHEDULE}"),
        ),
        (
            [&listen[..], &["--forward-to", &forward, "--retry-schedule", "5s, 5 m"]].concat(),
            format!(
                "invalid --retry-schedule \"5s, 5 m\" (item \"5 m\"): a space before the unit; {SCHEDULE}"
            ),
        ),
        (
            [&listen[..], &["--forward-to", &forward, "--retry-schedule", "5s,40d"]].concat(),
            format!(
                "invalid --retry-schedule \"5s,40d\" (item \"40d\"): longer than 30d, the longest retry delay; {SCHEDULE}"
            ),
        ),
    ];
    for (args, said) in cases {
        let mut cmd = sandbox.ccai();
        cmd.args(&args)
            .env("CCAI_CLIENT_ID", "1231")
            .env("CCAI_API_KEY", "key")
            .env("CCAI_WEBHOOK_SECRET", "secret");
        let out = exits(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("error: {said}\n"), "{args:?}");
    }
    assert!(!sandbox.path().join("d.db").exists());
}

/// A negative duration (`--since -5m`, `--grace -5s`) was taken by clap for an unknown flag,
/// "unexpected argument '-5' found", which named neither the flag nor what to give: it is now
/// refused as any other wrong value of that flag.
#[tokio::test]
async fn a_negative_duration_is_refused_as_a_wrong_value_of_its_flag() {
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    let listen = ["listen", "--port", "0", "--store", "d.db"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["events", "list", "--since", "-5m"], "--since \"-5m\""),
        (
            vec!["events", "purge", "--older-than", "-30d"],
            "--older-than \"-30d\"",
        ),
        (
            vec![
                "events",
                "purge",
                "--older-than",
                "30d",
                "--keep-hashes-for",
                "-1d",
            ],
            "--keep-hashes-for \"-1d\"",
        ),
        (
            vec!["webhooks", "--timeout", "-1s", "list"],
            "--timeout \"-1s\"",
        ),
        (
            [&listen[..], &["--grace", "-5s"]].concat(),
            "--grace \"-5s\"",
        ),
        (
            [&listen[..], &["--header-timeout", "-1s"]].concat(),
            "--header-timeout \"-1s\"",
        ),
        (
            [&listen[..], &["--idle-timeout", "-1s"]].concat(),
            "--idle-timeout \"-1s\"",
        ),
        (
            [&listen[..], &["--body-timeout", "-1s"]].concat(),
            "--body-timeout \"-1s\"",
        ),
        (
            [
                &listen[..],
                &["--forward-to", &forward, "--retry-schedule", "-5s"],
            ]
            .concat(),
            "--retry-schedule \"-5s\"",
        ),
    ];
    for (args, flag) in cases {
        let mut cmd = sandbox.ccai();
        cmd.args(&args)
            .env("CCAI_CLIENT_ID", "1231")
            .env("CCAI_API_KEY", "key")
            .env("CCAI_WEBHOOK_SECRET", "secret");
        let out = exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error: invalid {flag}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!sandbox.path().join("d.db").exists());
}

/// A duration flag whose value was forgotten took the next flag as its value (a negative
/// duration must reach the flag's parser): `--grace --forward-to URL` said "unexpected argument
/// 'URL' found", naming neither `--grace` nor what it needs. It is refused as any flag missing
/// its value, naming it, and nothing runs.
#[tokio::test]
async fn a_duration_flag_without_its_value_is_named() {
    // The value of the flag taken for the duration's was echoed as an unexpected argument.
    const SECRET: &str = "not-to-be-echoed";
    let sandbox = Sandbox::new();
    let forward = format!("http://127.0.0.1:{}/", closed_port());
    let listen = ["listen", "--port", "0"];
    let store = ["--store", "d.db"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&["events", "list", "--since"], &store[..]].concat(),
            "--since",
        ),
        (
            [&["events", "purge", "--older-than"], &store[..]].concat(),
            "--older-than",
        ),
        (
            [
                &[
                    "events",
                    "purge",
                    "--keep-hashes-for",
                    "--older-than",
                    "30d",
                ],
                &store[..],
            ]
            .concat(),
            "--keep-hashes-for",
        ),
        (
            vec!["webhooks", "--timeout", "--api-key", SECRET, "list"],
            "--timeout",
        ),
        (
            [&listen[..], &["--grace", "--secret", SECRET], &store[..]].concat(),
            "--grace",
        ),
        (
            [
                &listen[..],
                &["--grace", "--forward-to", &forward],
                &store[..],
            ]
            .concat(),
            "--grace",
        ),
        (
            [&listen[..], &["--header-timeout"], &store[..]].concat(),
            "--header-timeout",
        ),
        (
            [&listen[..], &["--idle-timeout", "-h"], &store[..]].concat(),
            "--idle-timeout",
        ),
        (
            [&listen[..], &["--body-timeout"], &store[..]].concat(),
            "--body-timeout",
        ),
        (
            [
                &listen[..],
                &["--forward-to", &forward, "--retry-schedule"],
                &store[..],
            ]
            .concat(),
            "--retry-schedule",
        ),
    ];
    for (args, flag) in cases {
        let mut cmd = sandbox.ccai();
        cmd.args(&args)
            .env("CCAI_CLIENT_ID", "1231")
            .env("CCAI_API_KEY", "key")
            .env("CCAI_WEBHOOK_SECRET", "secret");
        let out = exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error: a value is required for '{flag} <")),
            "{args:?}: {err}"
        );
        assert!(!err.contains(SECRET), "{args:?}: {err}");
    }
    assert!(!sandbox.path().join("d.db").exists());
}

/// The management API's options (global, so every command accepts them) are listed only where
/// they matter, `ccai` itself and `ccai webhooks …`, under a heading of their own after a
/// command's own options: in `ccai sign --help` the API key read as if signing needed it.
/// `--client-id` is listed wherever it is used, and the log format everywhere, apart.
#[tokio::test]
async fn the_api_options_are_listed_only_where_they_are_used() {
    const HEADING: &str = "\nManagement API options (ccai webhooks):\n";
    const API: [&str; 3] = ["--api-key", "--base-url", "--test-env"];
    let sandbox = Sandbox::new();
    let help = |args: &'static [&'static str]| {
        let mut cmd = sandbox.ccai();
        cmd.args(args);
        async move {
            let out = run(cmd).await;
            assert!(out.status.success(), "{args:?}");
            stdout(&out)
        }
    };
    for command in [
        &["--help"][..],
        &["webhooks", "--help"],
        &["webhooks", "list", "--help"],
        &["webhooks", "register", "--help"],
        &["help", "webhooks", "delete"],
    ] {
        let help = help(command).await;
        let own = help.split(HEADING).next().unwrap_or_default();
        assert_ne!(own, help, "{command:?}: no heading\n{help}");
        for global in API {
            assert!(
                !own.contains(global),
                "{command:?}: {global} among its own\n{help}"
            );
            assert!(
                help.contains(global),
                "{command:?}: {global} missing\n{help}"
            );
        }
        assert!(own.contains("--client-id"), "{command:?}\n{help}");
        assert!(help.contains("\nLogging:\n"), "{command:?}\n{help}");
    }
    for (command, client_id) in [
        (&["sign", "--help"][..], true),
        (&["sign", "-h"], true),
        (&["help", "sign"], true),
        (&["verify", "--help"], true),
        (&["trigger", "--help"], true),
        (&["listen", "--help"], true),
        (&["ui", "--help"], true),
        (&["events", "--help"], true),
        (&["events", "list", "--help"], true),
        (&["events", "show", "--help"], true),
        (&["events", "replay", "--help"], true),
        // These refuse --client-id, or have no use for it.
        (&["events", "purge", "--help"], false),
        (&["events", "stats", "--help"], false),
        (&["completions", "--help"], false),
    ] {
        let help = help(command).await;
        assert!(!help.contains("Management API"), "{command:?}\n{help}");
        for global in API {
            assert!(
                !help.contains(global),
                "{command:?}: {global} listed\n{help}"
            );
        }
        assert_eq!(
            help.contains("--client-id <CLIENT_ID>"),
            client_id,
            "{command:?}\n{help}"
        );
        assert!(
            help.contains("\nLogging:\n") && help.contains("--log-format"),
            "{command:?}\n{help}"
        );
    }
}

/// `ccai events list`, `show` and `replay` and `ccai ui` take `--client-id` as a flag only, yet
/// their help tagged it `[env: CCAI_CLIENT_ID]` (`-h` with nothing else): a user who set the
/// variable to see one account's events saw every account's.
#[tokio::test]
async fn client_id_help_is_not_tagged_with_a_variable_where_it_is_a_flag_only() {
    let sandbox = Sandbox::new();
    for command in [
        &["events"][..],
        &["events", "list"],
        &["events", "show"],
        &["events", "replay"],
        &["ui"],
    ] {
        for help_flag in ["--help", "-h"] {
            let mut cmd = sandbox.ccai();
            cmd.args(command).arg(help_flag).env("COLUMNS", "300");
            let out = run(cmd).await;
            assert!(out.status.success(), "{command:?}: {}", stderr(&out));
            let help = stdout(&out);
            let entry = flag_help(&help, "--client-id");
            let entry = if help_flag == "-h" {
                entry.lines().next().unwrap_or_default()
            } else {
                entry
            };
            assert!(
                !entry.contains("[env: CCAI_CLIENT_ID]"),
                "{command:?} {help_flag}:\n{help}"
            );
            assert!(
                entry.contains("CCAI_CLIENT_ID does not"),
                "{command:?} {help_flag}:\n{help}"
            );
        }
    }
    // Where the variable is read, it is still named.
    let mut cmd = sandbox.ccai();
    cmd.args(["listen", "-h"]).env("COLUMNS", "300");
    let help = stdout(&run(cmd).await);
    assert!(help.contains("[env: CCAI_CLIENT_ID]"), "{help}");
}

/// Where `--client-id` signs or verifies, its help says what falls back when it is not set (the
/// development client id), as `--secret`'s does; `ccai webhooks` says whose endpoints. Both read
/// `ccai`'s own paragraph on `ccai events` and `ccai ui`, which take it as a flag only.
#[tokio::test]
async fn client_id_help_speaks_of_the_command_it_is_in() {
    let sandbox = Sandbox::new();
    for (command, says) in [
        (&["sign"][..], "development client id"),
        (&["verify"], "development client id"),
        (&["trigger"], "development client id"),
        (&["listen"], "development client id"),
        (&["webhooks"], "whose endpoints"),
        (&["webhooks", "list"], "whose endpoints"),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(command).arg("--help").env("COLUMNS", "300");
        let out = run(cmd).await;
        assert!(out.status.success(), "{command:?}: {}", stderr(&out));
        let help = stdout(&out);
        let entry = flag_help(&help, "--client-id");
        assert!(entry.contains(says), "{command:?}:\n{entry}");
        assert!(!entry.contains("ccai events"), "{command:?}:\n{entry}");
        assert!(
            entry.contains("[env: CCAI_CLIENT_ID]"),
            "{command:?}:\n{entry}"
        );
    }
}

/// Unlisted is not refused: command lines that ran before still do, and `events purge` still
/// says why it takes no `--client-id` rather than calling the flag unknown.
#[tokio::test]
async fn unlisted_global_options_are_still_accepted() {
    let sandbox = Sandbox::new();
    let sign = [
        "--event-hash",
        "event-hash-abc123",
        "--client-id",
        "1231",
        "--secret",
        "my-secret",
    ];
    let api = [
        "--api-key",
        "k",
        "--base-url",
        "http://127.0.0.1:9",
        "--test-env",
    ];
    let mut signatures = Vec::new();
    for args in [
        [&["sign"][..], &sign].concat(),
        [&["sign"][..], &sign, &api].concat(),
        [&api[..], &["sign"], &sign].concat(),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(&args);
        let out = run(cmd).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        signatures.push(stdout(&out));
    }
    assert!(
        signatures.iter().all(|s| *s == signatures[0]),
        "{signatures:?}"
    );

    let mut cmd = sandbox.ccai();
    cmd.args([
        "events",
        "purge",
        "--older-than",
        "30d",
        "--client-id",
        "1231",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("takes no --client-id: leave it out"),
        "{}",
        stderr(&out)
    );
}

/// The completion scripts offer each command the options it lists: clap_complete offers hidden
/// options too, so `ccai sign --<Tab>` offered --api-key.
#[tokio::test]
async fn completions_offer_the_api_options_only_where_they_are_used() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["completions", "bash"]);
    let out = run(cmd).await;
    assert!(out.status.success());
    let script = stdout(&out);
    // Each command's options are one `opts="…"` line; a command is known by an option of its own.
    let opts = |own: &str| {
        script
            .lines()
            .find(|line| line.trim_start().starts_with("opts=") && line.contains(own))
            .unwrap_or_else(|| panic!("no options with {own}\n{script}"))
            .to_owned()
    };
    for own in ["--event-hash", "--forward-to", "--older-than", "--contains"] {
        let line = opts(own);
        assert!(
            !line.contains("--api-key") && !line.contains("--test-env"),
            "{line}"
        );
        assert!(line.contains("--log-format"), "{line}");
    }
    assert!(opts("--contains").contains("--client-id"));
    assert!(!opts("--older-than").contains("--client-id"));
    for own in ["--print-secret", "--timeout"] {
        let line = opts(own);
        for option in ["--api-key", "--base-url", "--test-env", "--client-id"] {
            assert!(line.contains(option), "{option}: {line}");
        }
    }
    let top = opts("--version webhooks");
    assert!(top.contains("--api-key"), "{top}");

    let mut cmd = sandbox.ccai();
    cmd.args(["completions", "fish"]);
    let fish = stdout(&run(cmd).await);
    let api_key: Vec<&str> = fish.lines().filter(|l| l.contains("-l api-key")).collect();
    assert!(!api_key.is_empty(), "{fish}");
    for line in api_key {
        assert!(
            line.contains("__fish_ccai_needs_command")
                || line.contains("__fish_ccai_using_subcommand webhooks"),
            "{line}"
        );
    }
}

/// Log lines on a terminal are coloured unless `NO_COLOR` is set to something (no-color.org: "present
/// and not an empty string"); an empty `NO_COLOR` turned colour off. The terminal is util-linux's
/// `script`, which gives the command a pseudo-terminal.
#[tokio::test]
async fn log_lines_on_a_terminal_are_coloured_unless_no_color_is_set_to_something() {
    let util_linux = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|out| stdout(&out).contains("util-linux"));
    if !util_linux {
        eprintln!("skipped: util-linux's `script` (for a pseudo-terminal) is not installed");
        return;
    }
    let sandbox = Sandbox::new();
    // A refused connection, which the API client logs (`ccai::api`) as it retries.
    let line = format!(
        "'{}' webhooks list --client-id 1 --api-key k_fake_key_123 --base-url http://127.0.0.1:{}",
        env!("CARGO_BIN_EXE_ccai"),
        closed_port()
    );
    for (no_color, coloured) in [(None, true), (Some(""), true), (Some("1"), false)] {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("CCAI_CONFIG_DIR", sandbox.config_dir())
            .env("CCAI_DATA_DIR", sandbox.data_dir())
            .env("CCAI_LOG", "ccai=debug")
            .current_dir(sandbox.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CCAI_") && key != "CCAI_LOG" {
                cmd.env_remove(&key);
            }
        }
        match no_color {
            Some(value) => cmd.env("NO_COLOR", value),
            None => cmd.env_remove("NO_COLOR"),
        };
        let out = exits(cmd).await;
        let shown = stdout(&out);
        assert!(
            shown.contains("ccai::api"),
            "NO_COLOR={no_color:?}: {shown}"
        );
        assert_eq!(
            shown.contains("\u{1b}["),
            coloured,
            "NO_COLOR={no_color:?}: {shown:?}"
        );
    }
}

/// `trigger --data-file -` checks its settings (the secret, `--to`) before it reads standard
/// input: at a terminal, someone would otherwise type the whole object and only then learn that
/// no secret is set. Standard input is left open and empty here, as a terminal nobody types at:
/// the refusal must come without it ending.
#[tokio::test]
async fn trigger_data_from_standard_input_is_refused_for_its_settings_before_it_is_read() {
    use std::process::Stdio;
    let sandbox = Sandbox::new();
    for (args, says) in [
        (&[][..], "error: no webhook secret"),
        (
            &[
                "--secret",
                "s",
                "--client-id",
                "1231",
                "--to",
                "ftp://127.0.0.1/x",
            ],
            "error: invalid --to",
        ),
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(["trigger", "message.sent", "--data-file", "-"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ccai trigger");
        // Kept open (and unwritten) until the command has exited or been killed.
        let stdin = child.stdin.take().expect("stdin");
        let out = tokio::task::spawn_blocking(move || {
            let out = common::wait_or_kill(child);
            drop(stdin);
            out
        })
        .await
        .expect("join");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: still reading standard input? {}",
            stderr(&out)
        );
        assert!(stderr(&out).starts_with(says), "{args:?}: {}", stderr(&out));
    }
}
