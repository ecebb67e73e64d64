//! Webhook delivery, as a PSP does it: sign each attempt afresh, retry on
//! anything but 2xx on a schedule, give up after the last step. Chaos knobs
//! duplicate, reorder, delay, drop and mis-sign deliveries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payloop::clock::now_s;
use payloop::ids::new_ulid;
use payloop::psp::signature;
use serde::Serialize;

use super::chaos::{jitter_ms, roll, Chaos};
use super::SandboxState;

/// Deliveries remembered for the admin view.
const MAX_LOG: usize = 10_000;
/// A PSP waits this long for our answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The production-like retry schedule (waits after each failed attempt);
/// tests compress it.
pub fn default_schedule() -> Vec<Duration> {
    [5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub kind: String,
    pub status: String,
    /// HTTP status of each attempt; 0 = lost in transit or no answer.
    pub attempts: Vec<u16>,
    pub outcome: &'static str,
    pub duplicate: bool,
}

#[derive(Default)]
pub struct DeliveryLog {
    records: Mutex<VecDeque<DeliveryRecord>>,
    /// Deliveries scheduled, and those over (delivered or given up): a
    /// delivery is in flight between the two (tests wait for none).
    scheduled: AtomicU64,
    finished: AtomicU64,
}

impl DeliveryLog {
    fn scheduled(&self, n: usize) {
        self.scheduled
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// (deliveries scheduled so far, of which still in flight).
    pub fn in_flight(&self) -> (u64, u64) {
        let finished = self.finished.load(Ordering::SeqCst);
        let scheduled = self.scheduled.load(Ordering::SeqCst);
        (scheduled, scheduled.saturating_sub(finished))
    }

    fn push(&self, r: DeliveryRecord) {
        self.finished.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut q) = self.records.lock() {
            if q.len() >= MAX_LOG {
                q.pop_front();
            }
            q.push_back(r);
        }
    }
    pub fn recent(&self, limit: usize) -> Vec<DeliveryRecord> {
        self.records
            .lock()
            .map(|q| q.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }
}

/// One webhook event: its id, what it is about, and the JSON body.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: String,
    pub kind: &'static str,
    pub status: String,
    pub body: String,
}

/// Deliver a batch of related events (e.g. authorized, captured) in order;
/// chaos may reverse it, delay it, or send an event twice.
pub fn spawn_batch(state: Arc<SandboxState>, mut events: Vec<Event>) {
    let chaos = state.chaos();
    if events.len() > 1 && roll(chaos.reorder_pct) {
        events.reverse();
    }
    state.deliveries.scheduled(events.len());
    tokio::spawn(async move {
        let wait = chaos.delay_ms
            + if chaos.reorder_pct > 0 {
                jitter_ms(chaos.delay_ms)
            } else {
                0
            };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        for ev in events {
            if roll(chaos.duplicate_pct) {
                state.deliveries.scheduled(1);
                let (st, dup) = (Arc::clone(&state), ev.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(jitter_ms(chaos.delay_ms.max(5))))
                        .await;
                    deliver(st, dup, true).await;
                });
            }
            deliver(Arc::clone(&state), ev, false).await;
        }
    });
}

/// The first attempt inline (so a batch keeps its order); if it fails, the
/// retries run on their own, never holding up the events after it.
async fn deliver(state: Arc<SandboxState>, ev: Event, duplicate: bool) {
    let first = attempt(&state, &ev, &state.chaos()).await;
    if (200..300).contains(&first) {
        state
            .deliveries
            .push(record(ev, vec![first], "delivered", duplicate));
        return;
    }
    tokio::spawn(retry(state, ev, first, duplicate));
}

async fn retry(state: Arc<SandboxState>, ev: Event, first: u16, duplicate: bool) {
    let mut attempts = vec![first];
    let mut outcome = "gave_up";
    for wait in state.opts.retry_schedule.clone() {
        tokio::time::sleep(wait).await;
        let code = attempt(&state, &ev, &state.chaos()).await;
        attempts.push(code);
        if (200..300).contains(&code) {
            outcome = "delivered";
            break;
        }
    }
    if outcome == "gave_up" {
        tracing::warn!(psp = %state.opts.name, event_id = %ev.event_id, attempts = attempts.len(), "sandbox gave up delivering a webhook");
    }
    state
        .deliveries
        .push(record(ev, attempts, outcome, duplicate));
}

fn record(ev: Event, attempts: Vec<u16>, outcome: &'static str, duplicate: bool) -> DeliveryRecord {
    DeliveryRecord {
        event_id: ev.event_id,
        kind: ev.kind.to_owned(),
        status: ev.status,
        attempts,
        outcome,
        duplicate,
    }
}

/// One signed POST; returns the HTTP status, 0 when lost or unanswered.
async fn attempt(state: &SandboxState, ev: &Event, chaos: &Chaos) -> u16 {
    if roll(chaos.drop_pct) {
        return 0;
    }
    let secret = if roll(chaos.wrong_signature_pct) {
        "whsec_d3JvbmctY2hhb3Mtc2VjcmV0LWZvci10ZXN0cw==".to_owned()
    } else {
        state.opts.webhook_secret.expose().to_owned()
    };
    let headers = signature::sign(
        state.opts.scheme,
        &secret,
        ev.body.as_bytes(),
        now_s(),
        &new_ulid("msg"),
    );
    let mut req = state
        .http
        .post(&state.opts.webhook_url)
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    match req.body(ev.body.clone()).send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}
