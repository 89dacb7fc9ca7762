//! `ccai events …` on an inbox two accounts share, where both stored an event under the same
//! hash: `--client-id` picks the account, and without it such a hash is an error naming both,
//! never a silent pick. Each test runs on a real SQLite file and, when `CCAI_TEST_POSTGRES_URL`
//! is set, on a real PostgreSQL schema of its own (without it, the PostgreSQL half prints that it
//! was skipped).

mod common;

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, NewDelivery,
    PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, DEFAULT_DESTINATION,
};
use common::postgres::{database, Schema};
use common::{recorder, run, stderr, stdout, Sandbox};
use serde_json::Value;

const ACCOUNT_A: &str = "1231";
const ACCOUNT_B: &str = "4567";
/// Stored by both accounts, each with a body of its own.
const SHARED: &str = "5a5a5a5a5a5a5a5a-shared";
const ONLY_A: &str = "a0a0a0a0a0a0a0a0-only-a";
const ONLY_B: &str = "b0b0b0b0b0b0b0b0-only-b";
/// The destination `ccai events` opens a PostgreSQL store with (`ccai listen`'s).
const PG_DESTINATION: &str = "forward";

fn body(client: &str, hash: &str) -> Vec<u8> {
    format!(
        r#"{{"eventType":"message.sent","data":{{"account":"{client}"}},"eventHash":"{hash}"}}"#
    )
    .into_bytes()
}

/// A sandbox and an inbox holding, all delivered: A's and B's event under [`SHARED`], A's
/// [`ONLY_A`] and B's [`ONLY_B`].
struct Inbox {
    sandbox: Sandbox,
    store: Arc<dyn Store>,
    /// What `--store` names it by.
    arg: String,
    /// Dropped after the store: its schema, on PostgreSQL.
    _schema: Option<Schema>,
}

impl Inbox {
    async fn sqlite() -> Self {
        let sandbox = Sandbox::new();
        let path = sandbox.path().join("inbox.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open store");
        let store: Arc<dyn Store> = Arc::new(store);
        fill(store.as_ref(), DEFAULT_DESTINATION).await;
        Self {
            sandbox,
            store,
            arg: path.to_str().expect("UTF-8 path").to_owned(),
            _schema: None,
        }
    }

    /// `None` when `CCAI_TEST_POSTGRES_URL` is not set.
    async fn postgres() -> Option<Self> {
        let schema = Schema::new(&database()?);
        let url = schema.url();
        let options = PostgresOptions::new()
            .destinations([PG_DESTINATION])
            .listen(false);
        let store = PostgresStore::connect(&url, options)
            .await
            .expect("connect to the test database");
        let store: Arc<dyn Store> = Arc::new(store);
        fill(store.as_ref(), PG_DESTINATION).await;
        Some(Self {
            sandbox: Sandbox::new(),
            store,
            arg: url,
            _schema: Some(schema),
        })
    }

    /// `ccai events ARGS --store STORE`.
    async fn ccai(&self, args: &[&str]) -> Output {
        let mut cmd = self.sandbox.ccai();
        cmd.arg("events")
            .args(args)
            .args(["--store", self.arg.as_str()]);
        run(cmd).await
    }

    async fn status(&self, client: &str, hash: &str) -> DeliveryStatus {
        let event = self.store.get_for(client, hash).await.expect("get_for");
        event.expect("stored").summary.deliveries[0].status
    }
}

async fn fill(store: &dyn Store, destination: &str) {
    let start = SystemTime::now() - Duration::from_secs(3600);
    let events = [
        (ACCOUNT_A, SHARED),
        (ACCOUNT_A, ONLY_A),
        (ACCOUNT_B, ONLY_B),
        (ACCOUNT_B, SHARED),
    ];
    for (i, (client, hash)) in (0u64..).zip(events) {
        let delivery = NewDelivery::new(client, hash, "message.sent", body(client, hash))
            .signature(ccai::signature::sign(client, hash, "secret"))
            .content_type("application/json")
            .received_at(start + Duration::from_secs(60 * i));
        store.insert(delivery).await.expect("insert");
    }
    let now = SystemTime::now();
    let claimed = store
        .claim(
            destination,
            LeaseRequest::new("fixture", Duration::from_secs(60)),
            10,
            now,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), events.len());
    for delivery in claimed {
        let attempt = AttemptRecord::new(now, Duration::from_millis(5), AttemptOutcome::Success)
            .http_status(200);
        let finished = store
            .finish(&delivery.lease, Finish::Delivered, attempt)
            .await
            .expect("finish");
        assert!(finished, "lease held");
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// The one-line error of a command that failed with exit 2 and printed nothing.
fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(out));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// Each JSON line's `(clientId, eventHash)`.
fn keys(out: &Output) -> Vec<(String, String)> {
    ok(out)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON object per line");
            let field = |name: &str| value[name].as_str().expect(name).to_owned();
            (field("clientId"), field("eventHash"))
        })
        .collect()
}

/// Runs a test on SQLite, then on PostgreSQL when the test database is configured.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$test(&super::Inbox::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(inbox) = super::Inbox::postgres().await {
                    super::$test(&inbox).await;
                }
            }
        }
    )*};
}

on_both_stores!(
    show_picks_the_account,
    a_hash_of_another_account_names_it,
    replay_picks_the_account,
    list_shows_and_narrows_to_accounts,
    whole_inbox_commands_refuse_a_client_id,
    a_start_more_accounts_share_than_a_page_holds,
);

/// `show` of a hash both accounts hold: an error naming both without `--client-id`, whole or
/// as the lists and `ccai listen` show it; each account's own event with it, the flag before
/// or after the command.
async fn show_picks_the_account(inbox: &Inbox) {
    let short = &SHARED[..12];
    for hash in [SHARED, short, &format!("#{short}")] {
        let err = failed(&inbox.ccai(&["show", hash]).await);
        assert!(err.contains("more than one account"), "{err}");
        assert!(
            err.contains(&format!("client ids {ACCOUNT_A}, {ACCOUNT_B}")),
            "{err}"
        );
        assert!(err.contains("--client-id"), "{err}");
        assert!(err.contains(SHARED), "the full hash: {err}");
    }
    // CCAI_CLIENT_ID configures signing and the API, not which of the inbox's accounts to show.
    let mut cmd = inbox.sandbox.ccai();
    cmd.args(["events", "show", SHARED, "--store", &inbox.arg])
        .env("CCAI_CLIENT_ID", ACCOUNT_A);
    let err = failed(&run(cmd).await);
    assert!(err.contains("more than one account"), "{err}");

    for (client, hash) in [(ACCOUNT_A, SHARED), (ACCOUNT_B, short)] {
        let out = ok(&inbox
            .ccai(&["show", hash, "--client-id", client, "--json"])
            .await);
        let value: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(value["clientId"], client);
        assert_eq!(value["eventHash"], SHARED);
        assert_eq!(
            value["body"].as_str().map(str::as_bytes),
            Some(body(client, SHARED).as_slice())
        );
    }
    let mut cmd = inbox.sandbox.ccai();
    cmd.args([
        "--client-id",
        ACCOUNT_B,
        "events",
        "show",
        &format!("#{short}"),
    ])
    .args(["--store", &inbox.arg]);
    let out = ok(&run(cmd).await);
    assert!(out.contains(&format!("client id     {ACCOUNT_B}")), "{out}");

    // A hash one account holds needs no client id.
    let out = ok(&inbox.ccai(&["show", &ONLY_B[..12]]).await);
    assert!(out.contains(&format!("client id     {ACCOUNT_B}")), "{out}");
}

/// A hash the account given does not hold, while another does, is an error naming that one;
/// one nobody holds is unknown for that account; the prefix rules stay.
async fn a_hash_of_another_account_names_it(inbox: &Inbox) {
    for hash in [ONLY_A, &ONLY_A[..12]] {
        let err = failed(&inbox.ccai(&["show", hash, "--client-id", ACCOUNT_B]).await);
        assert!(
            err.contains(&format!(
                "for client id {ACCOUNT_B}: it is stored for client id {ACCOUNT_A} only: pass --client-id {ACCOUNT_A}"
            )),
            "{err}"
        );
    }
    let err = failed(&inbox.ccai(&["show", SHARED, "--client-id", "9999"]).await);
    assert!(
        err.contains(&format!(
            "for client id 9999: it is stored for client ids {ACCOUNT_A}, {ACCOUNT_B}: pass --client-id"
        )),
        "{err}"
    );
    let err = failed(
        &inbox
            .ccai(&["show", "c0c0c0c0c0c0", "--client-id", ACCOUNT_A])
            .await,
    );
    assert!(
        err.contains(&format!(
            "unknown event hash \"c0c0c0c0c0c0\" for client id {ACCOUNT_A}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("ccai events list --client-id {ACCOUNT_A}")),
        "{err}"
    );
    let err = failed(&inbox.ccai(&["show", "5a5a", "--client-id", "9999"]).await);
    assert!(err.contains("at least 6 characters"), "{err}");
    let err = failed(&inbox.ccai(&["show", SHARED, "--client-id", ""]).await);
    assert!(err.contains("--client-id is empty"), "{err}");

    // A prefix two of one account's hashes share is ambiguous within that account only.
    let other = NewDelivery::new(
        ACCOUNT_B,
        "a0a0a0a0a0a0-b",
        "message.sent",
        body(ACCOUNT_B, "x"),
    );
    inbox.store.insert(other).await.expect("insert");
    let out = ok(&inbox
        .ccai(&["show", "a0a0a0a0", "--client-id", ACCOUNT_A, "--json"])
        .await);
    assert!(out.contains(ONLY_A), "{out}");
    let err = failed(&inbox.ccai(&["show", "a0a0a0a0"]).await);
    assert!(err.contains("is ambiguous"), "{err}");
}

/// `replay` of a hash both accounts hold changes nothing without `--client-id`, and only the
/// account's own event with it; a bulk replay with it stays within the account; `--to` sends
/// the account's own body.
async fn replay_picks_the_account(inbox: &Inbox) {
    let err = failed(&inbox.ccai(&["replay", ONLY_A, SHARED]).await);
    assert!(err.contains("more than one account"), "{err}");
    for client in [ACCOUNT_A, ACCOUNT_B] {
        assert_eq!(
            inbox.status(client, SHARED).await,
            DeliveryStatus::Delivered
        );
    }
    assert_eq!(
        inbox.status(ACCOUNT_A, ONLY_A).await,
        DeliveryStatus::Delivered
    );

    let out = ok(&inbox
        .ccai(&["replay", SHARED, "--client-id", ACCOUNT_A, "--json"])
        .await);
    let value: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(value["clientId"], ACCOUNT_A);
    assert_eq!(value["deliveriesDue"], 1);
    assert_eq!(
        inbox.status(ACCOUNT_A, SHARED).await,
        DeliveryStatus::Pending
    );
    assert_eq!(
        inbox.status(ACCOUNT_B, SHARED).await,
        DeliveryStatus::Delivered
    );

    let out = ok(&inbox
        .ccai(&["replay", "--status", "delivered", "--client-id", ACCOUNT_B])
        .await);
    assert!(out.contains("2 deliveries due again"), "{out}");
    assert_eq!(
        inbox.status(ACCOUNT_B, SHARED).await,
        DeliveryStatus::Pending
    );
    assert_eq!(
        inbox.status(ACCOUNT_B, ONLY_B).await,
        DeliveryStatus::Pending
    );
    assert_eq!(
        inbox.status(ACCOUNT_A, ONLY_A).await,
        DeliveryStatus::Delivered
    );
    // An account alone is no filter for a bulk replay.
    let err = failed(&inbox.ccai(&["replay", "--client-id", ACCOUNT_A]).await);
    assert!(err.contains("nothing to replay"), "{err}");
    assert_eq!(
        inbox.status(ACCOUNT_A, ONLY_A).await,
        DeliveryStatus::Delivered
    );

    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let out = ok(&inbox
        .ccai(&[
            "replay",
            &SHARED[..12],
            "--client-id",
            ACCOUNT_B,
            "--to",
            &target.url,
        ])
        .await);
    assert!(out.contains("sent 1 event"), "{out}");
    let got = target.requests.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_ref(), body(ACCOUNT_B, SHARED).as_slice());
    assert_eq!(
        got[0].header("x-ccai-signature"),
        Some(ccai::signature::sign(ACCOUNT_B, SHARED, "secret"))
    );
}

/// `list` shows a client id column when the events listed are several accounts', and
/// `--client-id` lists one account's.
async fn list_shows_and_narrows_to_accounts(inbox: &Inbox) {
    let table = ok(&inbox.ccai(&["list"]).await);
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(header.contains("HASH CLIENT ID ATTEMPTS"), "{table}");
    assert_eq!(lines.len(), 5, "{table}");
    let shared: Vec<&&str> = lines.iter().filter(|l| l.contains(&SHARED[..12])).collect();
    assert_eq!(shared.len(), 2, "{table}");
    assert!(
        shared[0].contains(ACCOUNT_B) && shared[1].contains(ACCOUNT_A),
        "{table}"
    );

    let table = ok(&inbox.ccai(&["list", "--client-id", ACCOUNT_A]).await);
    assert!(
        !table.contains("CLIENT ID"),
        "one account: no column: {table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains(&ONLY_A[..12]) && !table.contains(&ONLY_B[..12]),
        "{table}"
    );

    let listed = keys(
        &inbox
            .ccai(&["list", "--json", "--client-id", ACCOUNT_B])
            .await,
    );
    let expected = [(ACCOUNT_B, SHARED), (ACCOUNT_B, ONLY_B)];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .collect();
    assert_eq!(listed, expected);
    // CCAI_CLIENT_ID narrows nothing.
    let mut cmd = inbox.sandbox.ccai();
    cmd.args(["events", "list", "--json", "--store", &inbox.arg])
        .env("CCAI_CLIENT_ID", ACCOUNT_B);
    assert_eq!(keys(&run(cmd).await).len(), 4);
}

/// `stats` and `purge` work on every account's events: a `--client-id` is refused, not ignored.
async fn whole_inbox_commands_refuse_a_client_id(inbox: &Inbox) {
    let err = failed(&inbox.ccai(&["stats", "--client-id", ACCOUNT_A]).await);
    assert!(err.contains("takes no --client-id"), "{err}");
    let err = failed(
        &inbox
            .ccai(&[
                "purge",
                "--older-than",
                "0s",
                "--keep-hashes-for",
                "0s",
                "--client-id",
                ACCOUNT_A,
            ])
            .await,
    );
    assert!(err.contains("takes no --client-id"), "{err}");
    for (client, hash) in [(ACCOUNT_A, ONLY_A), (ACCOUNT_B, ONLY_B)] {
        let event = inbox.store.get_for(client, hash).await.expect("get_for");
        assert!(event.expect("not deleted").body.is_some(), "not purged");
    }
    let out = ok(&inbox.ccai(&["stats", "--json"]).await);
    let value: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(value["events"], 4);
}

/// A hash's start is looked up a few events at a time: one hash more accounts hold than that is
/// still one hash (an error naming every account), and a second hash stored before them still
/// makes the start ambiguous.
async fn a_start_more_accounts_share_than_a_page_holds(inbox: &Inbox) {
    const ONE: &str = "c1c1c1c1c1c1-many";
    const TWO: &str = "c2c2c2c2c2c2-many";
    const OLDER: &str = "c2c2c2c2c2c2-older";
    let accounts: Vec<String> = (1000..1020).map(|n| n.to_string()).collect();
    let mut events = vec![("2000".to_owned(), OLDER)];
    for client in &accounts {
        events.push((client.clone(), ONE));
        events.push((client.clone(), TWO));
    }
    for (client, hash) in events {
        let delivery = NewDelivery::new(&client, hash, "message.sent", body(&client, hash));
        inbox.store.insert(delivery).await.expect("insert");
    }
    let err = failed(&inbox.ccai(&["show", &ONE[..12]]).await);
    assert!(err.contains("more than one account"), "{err}");
    assert!(err.contains(&accounts.join(", ")), "every account: {err}");
    let err = failed(&inbox.ccai(&["show", &TWO[..12]]).await);
    assert!(err.contains("is ambiguous"), "{err}");
}
