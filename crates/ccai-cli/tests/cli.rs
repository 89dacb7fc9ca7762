//! The command line itself: help text.

mod common;

use common::{run, stderr, stdout, Sandbox};

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
        assert!(help.contains("[env: CCAI_BASE_URL]"), "{args:?}:\n{help}");
        assert!(help.contains("[env: CCAI_API_KEY]"), "{args:?}:\n{help}");
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
}
