//! The handler's inbox mode (feature `inbox`): verify, store durably, then answer 200.
//!
//! The answer waits for the store's commit, so a 200 means the delivery survives a crash of this
//! process; a store that cannot take it (queue full, disk full, database down) is answered 503
//! with `Retry-After`, so that the sender tries again later. Nothing is processed here: a
//! [`Dispatcher`](crate::inbox::Dispatcher) hands stored events on.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::Notify;

use super::{Rejection, WebhookDelivery};
use crate::event::WebhookEvent;
use crate::inbox::{Inserted, NewDelivery, Store};

/// Called after each delivery is stored, with the event and what the store made of it.
pub(crate) type OnStored = Arc<dyn Fn(&WebhookEvent, Inserted) + Send + Sync>;

/// Where the handler puts verified deliveries in inbox mode.
#[derive(Clone)]
pub(crate) struct StoreSink {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) on_stored: Option<OnStored>,
    /// Each notified after each new event (`HandlerOptions::wake_on`): the wake-up signals of
    /// the dispatchers, one for each destination.
    pub(crate) wake: Vec<Arc<Notify>>,
}

impl StoreSink {
    /// Inserts the delivery; `Ok` (with what the store made of it) only once the store has
    /// committed it.
    pub(crate) async fn store(
        &self,
        client_id: &str,
        delivery: WebhookDelivery,
    ) -> Result<Inserted, Rejection> {
        let WebhookDelivery {
            event,
            body,
            signature,
            content_type,
            method,
            ..
        } = delivery;
        let mut new = NewDelivery::new(
            client_id,
            event.event_hash.as_str(),
            event.event_type.as_str(),
            body,
        );
        if let Some(signature) = signature {
            new = new.signature(signature);
        }
        if let Some(content_type) = content_type {
            new = new.content_type(content_type);
        }
        new = new.method(method);
        let inserted = self
            .store
            .insert(new)
            .await
            .map_err(|e| Rejection::Unavailable(Box::new(e)))?;
        // Only a new event gives a dispatcher something to hand on; a repeat adds nothing.
        if inserted == Inserted::New {
            for wake in &self.wake {
                wake.notify_one();
            }
        }
        if let Some(hook) = &self.on_stored {
            // The delivery is stored: a panicking hook must not turn that into an error.
            if catch_unwind(AssertUnwindSafe(|| hook(&event, inserted))).is_err() {
                tracing::warn!(target: "ccai::webhook", "the on_stored hook panicked");
            }
        }
        Ok(inserted)
    }
}

impl fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSink")
            .field("store", &self.store)
            .field("on_stored", &self.on_stored.is_some())
            .field("wake", &self.wake.len())
            .finish()
    }
}
