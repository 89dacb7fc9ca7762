//! What the store logs (through `tracing`): a conflicting repeat is a warning that names the
//! event and both digests, never a body. A global subscriber records every log line of this test
//! binary (the store logs from its writer thread, which a thread-local subscriber would miss).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use ccai::inbox::{Inserted, NewDelivery, SqliteOptions, Store};
use sha2::{Digest, Sha256};

use crate::support::temp_store;

/// Everything logged so far by this test binary.
pub(crate) fn captured() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    }))
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_conflicting_repeat_is_a_warning_with_both_digests_and_no_body() {
    let logs = captured();
    let t = temp_store(SqliteOptions::default());
    let first = br#"{"eventHash":"log-conflict-1","note":"first-body-marker"}"#.to_vec();
    let second = br#"{"eventHash":"log-conflict-1","note":"second-body-marker"}"#.to_vec();
    for (body, expected) in [(&first, Inserted::New), (&second, Inserted::Conflict)] {
        let delivery = NewDelivery::new("1231", "log-conflict-1", "message.sent", body.clone());
        assert_eq!(t.store.insert(delivery).await, Ok(expected));
    }
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    let line = text
        .lines()
        .find(|line| line.contains("log-conflict-1") && line.contains("different body"))
        .unwrap_or_else(|| panic!("no conflict warning in:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&hex_sha256(&first)), "{line}");
    assert!(line.contains(&hex_sha256(&second)), "{line}");
    assert!(
        !text.contains("body-marker"),
        "a body reached the log:\n{text}"
    );
}

/// A dispatcher started for a destination no delivery has, when the store has deliveries for
/// others (a mistyped name), warns saying so; it dispatched nothing without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_for_a_destination_with_no_delivery_warns() {
    use std::time::Duration;

    use ccai::inbox::{CallbackConsumer, Dispatcher, InboxEvent};

    let logs = captured();
    let t = temp_store(SqliteOptions::default().destinations(["crm-log-check"]));
    let delivery = NewDelivery::new("1231", "typo-1", "message.sent", b"{}".to_vec());
    t.store.insert(delivery).await.expect("insert");
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let dispatcher = Dispatcher::builder(
        Arc::clone(&store),
        CallbackConsumer::new(|_event: InboxEvent| async { Ok::<(), std::io::Error>(()) }),
    )
    .destination("crm-log-chekc")
    .start();
    let line = crate::support::wait_for(
        "the warning of a destination with no delivery",
        Duration::from_secs(15),
        || {
            let logs = Arc::clone(&logs);
            async move {
                let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
                text.lines()
                    .find(|line| line.contains("crm-log-chekc"))
                    .map(str::to_owned)
            }
        },
    )
    .await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("only for other destinations") && line.contains("others=crm-log-check"),
        "{line}"
    );
}
