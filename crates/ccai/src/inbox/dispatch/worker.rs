//! The dispatcher's loop (claim due deliveries while workers are free) and one attempt
//! (hand on, heartbeat, decide what next, record).

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use super::consumer::{Accepted, Consumer, ConsumerFuture, Failure, InboxEvent};
use super::report::{AttemptReport, AttemptResult};
use super::{Settings, ShutdownReport};
use crate::inbox::transient::Retries;
use crate::inbox::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, Finish, Lease, LeaseRequest, Store,
};
use crate::telemetry::{self, Dead, Forwarded};

/// Leases of the attempts running now, to release those abandoned at shutdown, by claim token:
/// one delivery can have two attempts here (one whose lease lapsed, and the claim that took it
/// over), and the first to end must not take the other's entry with it.
type InFlight = Arc<Mutex<HashMap<String, Lease>>>;

fn lock(in_flight: &InFlight) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
    in_flight.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) async fn run(
    store: Arc<dyn Store>,
    consumer: Arc<dyn Consumer>,
    settings: Settings,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> ShutdownReport {
    let settings = Arc::new(settings);
    // Beside the loop, not before it: the look may read every delivery.
    let destination_check = tokio::spawn(check_destination(
        Arc::clone(&store),
        settings.destination.clone(),
    ));
    let workers = Arc::new(Semaphore::new(settings.concurrency));
    let in_flight: InFlight = Arc::default();
    let mut attempts = JoinSet::new();
    let mut finished = 0;
    loop {
        // Reaped so the set does not grow: each attempt says itself whether it ended after the
        // stop (an idle loop reaps nothing, so what is left here at the stop may have ended long
        // before it), and one that did while the loop awaited a claim is counted here.
        while let Some(ended) = attempts.try_join_next() {
            if matches!(ended, Ok(true)) {
                finished += 1;
            }
        }
        // Wait for a free worker, unless stopping.
        let first = tokio::select! {
            biased;
            _ = stop.changed() => break,
            permit = Arc::clone(&workers).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let mut permits = vec![first];
        while let Ok(permit) = Arc::clone(&workers).try_acquire_owned() {
            permits.push(permit);
        }
        let wanted = permits.len();
        let lease = LeaseRequest::new(settings.owner.clone(), settings.lease);
        let claimed = match store
            .claim(&settings.destination, lease, wanted, SystemTime::now())
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(target: "ccai::inbox", %error, "claiming due deliveries failed; trying again");
                Vec::new()
            }
        };
        let got = claimed.len();
        // Claimed as the stop came: given back below with the unfinished ones, not started.
        let stopping = stop.borrow().is_some();
        for delivery in claimed {
            let Some(permit) = permits.pop() else { break };
            lock(&in_flight).insert(delivery.lease.token.clone(), delivery.lease.clone());
            if stopping {
                continue;
            }
            let (store, consumer, settings, in_flight, stopping) = (
                Arc::clone(&store),
                Arc::clone(&consumer),
                Arc::clone(&settings),
                Arc::clone(&in_flight),
                stop.clone(),
            );
            attempts.spawn(async move {
                let token = delivery.lease.token.clone();
                attempt(&*store, &*consumer, &settings, delivery).await;
                lock(&in_flight).remove(&token);
                drop(permit);
                // Whether it ended during the shutdown's grace period, for the report.
                let ended_in_grace = stopping.borrow().is_some();
                ended_in_grace
            });
        }
        drop(permits);
        if got < wanted {
            // Nothing more is due: wait for a wake-up, the poll interval, or a stop.
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(settings.poll_interval) => {}
            }
        }
    }
    let grace = stop.borrow().unwrap_or(Duration::ZERO);
    let _ = tokio::time::timeout(grace, async {
        while let Some(ended) = attempts.join_next().await {
            if matches!(ended, Ok(true)) {
                finished += 1;
            }
        }
    })
    .await;
    attempts.abort_all();
    while attempts.join_next().await.is_some() {}
    let abandoned: Vec<Lease> = lock(&in_flight).drain().map(|(_, lease)| lease).collect();
    let mut released = 0;
    // One budget for all: a store down for good holds the shutdown a second or so, not that
    // much per delivery.
    let mut retries = Retries::new();
    for lease in abandoned {
        match retries.run(|| store.release(&lease)).await {
            Ok(true) => released += 1,
            Ok(false) => {}
            Err(error) => tracing::warn!(
                target: "ccai::inbox", %error, delivery = lease.delivery_id,
                "could not release a delivery at shutdown; it is due again when its lease lapses"
            ),
        }
    }
    destination_check.abort();
    ShutdownReport { finished, released }
}

/// Warns when the store has deliveries, none of them for `destination`: a mistyped name
/// dispatched nothing, without a word.
async fn check_destination(store: Arc<dyn Store>, destination: String) {
    match store.destinations().await {
        Ok(known) => {
            if let Some(others) = others_only(&destination, &known) {
                tracing::warn!(
                    target: "ccai::inbox", destination = %crate::event::Escaped(&destination),
                    others = %crate::event::Escaped(&others),
                    "the store has deliveries only for other destinations: this dispatcher hands on \
                     nothing until one is stored for its destination; check its name (and the \
                     destinations the store is opened with)"
                );
            }
        }
        Err(error) => tracing::debug!(
            target: "ccai::inbox", %error,
            "could not read the store's destinations to check the dispatcher's"
        ),
    }
}

/// The other destinations (comma-separated) when the store's deliveries are all for them;
/// `None` when some are for `destination`, or there are none (an empty store, or one that
/// cannot tell).
pub(super) fn others_only(destination: &str, known: &[String]) -> Option<String> {
    (!known.is_empty() && !known.iter().any(|d| d == destination)).then(|| known.join(", "))
}

/// How an attempt ended, before it is recorded.
enum Ended {
    Done(Result<super::Accepted, Failure>),
    /// The lease was lost (lapsed and claimed by someone else): the result is not ours to record.
    LeaseLost,
}

async fn attempt(
    store: &dyn Store,
    consumer: &dyn Consumer,
    settings: &Settings,
    delivery: ClaimedDelivery,
) {
    let event = InboxEvent::from(&delivery);
    let lease = delivery.lease;
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let max_attempts = settings.schedule.max_attempts();
    if event.attempt > max_attempts {
        give_up(store, settings, &event, &lease, started_at).await;
        return;
    }
    let work = async {
        let delivery = CatchPanic::start(|| consumer.deliver(&event));
        match tokio::time::timeout(settings.attempt_timeout, delivery).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(format!(
                "the consumer did not finish within {:?}",
                settings.attempt_timeout
            ))),
        }
    };
    let ended = if settings.heartbeat {
        tokio::select! {
            result = work => Ended::Done(result),
            () = heartbeat(store, &lease, settings.lease) => Ended::LeaseLost,
        }
    } else {
        Ended::Done(work.await)
    };
    let result = match ended {
        Ended::Done(result) => result,
        Ended::LeaseLost => {
            telemetry::lease_lost();
            tracing::warn!(
                target: "ccai::inbox", delivery = lease.delivery_id, event_hash = %crate::event::Escaped(&event.event_hash),
                "lost the lease of a running attempt (another worker has it); abandoning it"
            );
            return;
        }
    };
    let duration = clock.elapsed();
    let mut retry_in = None;
    let (finish, record) = match result {
        Ok(accepted) => {
            let mut record = AttemptRecord::new(started_at, duration, AttemptOutcome::Success);
            record.http_status = accepted.http_status;
            (Finish::Delivered, record)
        }
        Err(failure) => {
            let mut record = AttemptRecord::new(started_at, duration, AttemptOutcome::Failure)
                .error(failure.message.clone());
            record.http_status = failure.http_status;
            let next = if failure.permanent {
                None
            } else {
                settings.schedule.delay_after(event.attempt).map(|delay| {
                    let asked = failure
                        .retry_after
                        .map(|wait| wait.min(settings.retry_after_cap))
                        .unwrap_or(Duration::ZERO);
                    let wait = delay.max(asked);
                    retry_in = Some(wait);
                    crate::inbox::time::after(SystemTime::now(), wait)
                })
            };
            tracing::info!(
                target: "ccai::inbox", delivery = lease.delivery_id, event_hash = %crate::event::Escaped(&event.event_hash),
                attempt = event.attempt, dead = next.is_none(), error = %crate::event::Escaped(record.error.as_deref().unwrap_or("")),
                "an attempt failed"
            );
            (next.map_or(Finish::Dead, Finish::RetryAt), record)
        }
    };
    let report = settings.on_attempt.as_ref().map(|_| AttemptReport {
        event_hash: event.event_hash.clone(),
        event_type: event.event_type.clone(),
        attempt: event.attempt,
        max_attempts: settings.schedule.max_attempts(),
        result: match finish {
            Finish::Delivered => AttemptResult::Delivered,
            Finish::RetryAt(at) => AttemptResult::RetryAt(at),
            _ => AttemptResult::Dead,
        },
        http_status: record.http_status,
        error: record.error.clone(),
        duration,
        retry_in,
    });
    telemetry::forward_attempted(
        match finish {
            Finish::Delivered => Forwarded::Delivered,
            Finish::RetryAt(_) => Forwarded::Retry,
            _ => Forwarded::Dead,
        },
        duration,
    );
    let dead = matches!(finish, Finish::Dead);
    match finish_patiently(store, &lease, finish, record, settings.lease).await {
        Ok(true) => {
            if dead {
                telemetry::delivery_dead(Dead::Failed);
            }
            if let (Some(hook), Some(report)) = (&settings.on_attempt, report) {
                // The outcome is recorded: a panicking hook must not undo anything.
                if catch_unwind(AssertUnwindSafe(|| (hook.0)(&report))).is_err() {
                    tracing::warn!(target: "ccai::inbox", "the on_attempt hook panicked");
                }
            }
        }
        Ok(false) => {
            telemetry::lease_lost();
            tracing::warn!(
                target: "ccai::inbox", delivery = lease.delivery_id, event_hash = %crate::event::Escaped(&event.event_hash),
                "an attempt finished after its lease was taken over; its result is dropped"
            );
        }
        Err(error) => tracing::error!(
            target: "ccai::inbox", %error, delivery = lease.delivery_id,
            "could not record an attempt; the delivery is due again when its lease lapses"
        ),
    }
}

/// The schedule's attempts are used up without one recording a last failure: some ended with
/// their worker (a crash, a kill, a hang past the lease; each counted), or the schedule was
/// shortened since. The delivery goes to the dead letter rather than loop forever, without an
/// attempt: none is made, so none is counted or added to its history (one with no request
/// behind it read as a real failure), and the report says how many were made.
async fn give_up(
    store: &dyn Store,
    settings: &Settings,
    event: &InboxEvent,
    lease: &Lease,
    now: SystemTime,
) {
    let made = event.attempt.saturating_sub(1);
    let max_attempts = settings.schedule.max_attempts();
    // Which of the earlier attempts ended how is in the attempt history, not known here.
    let made_text = match made {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let reason = format!(
        "no attempt left: {made_text} made, the retry schedule allows {max_attempts} \
         (shortened since, or an attempt whose worker died or hung, which counts too); not sent again"
    );
    let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure).error(reason);
    tracing::info!(
        target: "ccai::inbox", delivery = lease.delivery_id, event_hash = %crate::event::Escaped(&event.event_hash),
        attempts = made, max_attempts, "no attempt left: dead without another attempt"
    );
    match finish_patiently(
        store,
        lease,
        Finish::DeadUnsent,
        record.clone(),
        settings.lease,
    )
    .await
    {
        Ok(true) => {
            telemetry::delivery_dead(Dead::NoAttemptLeft);
            if let Some(hook) = &settings.on_attempt {
                let report = AttemptReport {
                    event_hash: event.event_hash.clone(),
                    event_type: event.event_type.clone(),
                    attempt: made,
                    max_attempts,
                    result: AttemptResult::Dead,
                    http_status: None,
                    error: record.error,
                    duration: Duration::ZERO,
                    retry_in: None,
                };
                if catch_unwind(AssertUnwindSafe(|| (hook.0)(&report))).is_err() {
                    tracing::warn!(target: "ccai::inbox", "the on_attempt hook panicked");
                }
            }
        }
        Ok(false) => tracing::warn!(
            target: "ccai::inbox", delivery = lease.delivery_id,
            "a delivery with no attempt left was taken over before it was marked dead"
        ),
        Err(error) => tracing::error!(
            target: "ccai::inbox", %error, delivery = lease.delivery_id,
            "could not mark a delivery with no attempt left dead; it is due again when its lease lapses"
        ),
    }
}

/// Records an attempt's outcome ([`Store::finish`]), trying again after a transient error (a
/// lock another process holds past the busy timeout, a database restarting) for up to
/// `patience` (the lease: by then another worker may hold the delivery, and the token decides).
/// Given up at once, the outcome was lost: the delivery stayed in progress until its lease
/// lapsed, was handed on again, and the lapse counted as an attempt. A try that failed but was
/// recorded all the same (a commit whose answer was lost) is answered `true` by the next one,
/// not taken for a lease lost (see [`Store::finish`]).
async fn finish_patiently(
    store: &dyn Store,
    lease: &Lease,
    finish: Finish,
    record: AttemptRecord,
    patience: Duration,
) -> Result<bool, crate::inbox::StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match store.finish(lease, finish, record.clone()).await {
            Err(error) if error.is_transient() && started.elapsed() + pause < patience => {
                tracing::warn!(
                    target: "ccai::inbox", %error, delivery = lease.delivery_id,
                    "could not record an attempt; trying again"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

/// Extends `lease` every third of its duration; returns when it is lost. A failed extension is
/// tried again soon (50 ms, doubling up to the third), not a third later: the failure itself can
/// take the store's busy timeout, and with that longer than a third of the lease (5 s against
/// the 10 s of `ccai listen`), the lease lapsed before the next try and the event was handed on
/// again while this attempt ran.
async fn heartbeat(store: &dyn Store, lease: &Lease, duration: Duration) {
    let interval = duration / 3;
    let mut wait = interval;
    let mut retry = Duration::from_millis(50);
    loop {
        tokio::time::sleep(wait).await;
        match store
            .extend_lease(
                lease,
                crate::inbox::time::after(SystemTime::now(), duration),
            )
            .await
        {
            Ok(true) => {
                wait = interval;
                retry = Duration::from_millis(50);
            }
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(
                    target: "ccai::inbox", %error, delivery = lease.delivery_id,
                    "could not extend a lease; trying again"
                );
                wait = retry.min(interval);
                retry = retry.saturating_mul(2);
            }
        }
    }
}

/// A consumer's future with its panics turned into a failed attempt: a consumer that panics on an
/// event must reach the dead letter like one that fails, not take its worker down every time.
enum CatchPanic<'a> {
    Running(ConsumerFuture<'a>),
    Panicked,
}

impl<'a> CatchPanic<'a> {
    fn start(deliver: impl FnOnce() -> ConsumerFuture<'a>) -> Self {
        match catch_unwind(AssertUnwindSafe(deliver)) {
            Ok(future) => Self::Running(future),
            Err(_) => Self::Panicked,
        }
    }
}

impl Future for CatchPanic<'_> {
    type Output = Result<Accepted, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let panicked = || Poll::Ready(Err(Failure::new("the consumer panicked")));
        match &mut *self {
            Self::Panicked => panicked(),
            Self::Running(future) => {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(poll) => poll,
                    Err(_) => {
                        *self = Self::Panicked;
                        panicked()
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::others_only;

    #[test]
    fn a_dispatcher_is_warned_only_when_every_delivery_is_for_another_destination() {
        let known = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            others_only("froward", &known(&["default", "forward"])),
            Some("default, forward".to_owned())
        );
        assert_eq!(
            others_only("forward", &known(&["default", "forward"])),
            None
        );
        // An empty store, or one that cannot tell: nothing to warn of.
        assert_eq!(others_only("forward", &[]), None);
    }
}
