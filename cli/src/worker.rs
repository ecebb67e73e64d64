//! Delivers queue batches to wallet-credit exactly as the Lambda SQS event
//! source mapping does: receive up to 10 with a visibility timeout, hand the
//! batch to the consumer, delete the messages that succeeded, leave the
//! `batchItemFailures` to reappear after the timeout (and reach the DLQ after
//! the receive limit).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use payloop::domain::Ctx;
use payloop::queue::{Message, QueueName, DEFAULT_MAX_RECEIVES, MAX_RECEIVE_BATCH};
use tokio::sync::{broadcast, watch, Notify};

/// Long-poll wait of one receive.
const RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// Pause after a queue error before polling again.
const ERROR_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct WorkerOptions {
    pub pollers: usize,
    pub visibility: Duration,
    /// How often the sweep runs (the scheduled Lambda in AWS).
    pub sweep_every: Duration,
}

/// What the pollers are doing, for a barrier that waits until the queue is
/// drained and the consumer idle (tests, bench): every poller's last receive
/// came back empty, started after the wait began and after the last batch
/// ended, and no failed message is waiting to be redelivered.
#[derive(Default)]
pub struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

#[derive(Default)]
struct ActivityState {
    /// Receives started so far (a receive's ticket is the count before it).
    receives: u64,
    /// Batches started or finished so far.
    batches: u64,
    /// Per poller: (ticket, `batches` then) of its last receive, when it
    /// came back empty.
    last_empty: Vec<Option<(u64, u64)>>,
    /// Messages that failed and will be delivered again (not yet at the
    /// receive limit that sends them to the dead-letter queue).
    retrying: HashSet<String>,
}

impl Activity {
    fn new(pollers: usize) -> Self {
        let state = ActivityState {
            last_empty: vec![None; pollers],
            ..ActivityState::default()
        };
        Activity {
            state: Mutex::new(state),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn receive_started(&self) -> (u64, u64) {
        let mut s = self.lock();
        s.receives += 1;
        (s.receives - 1, s.batches)
    }

    fn received(&self, poller: usize, ticket: (u64, u64), batch: &[Message]) {
        let mut s = self.lock();
        if batch.is_empty() {
            if let Some(slot) = s.last_empty.get_mut(poller) {
                *slot = Some(ticket);
            }
        } else {
            s.batches += 1;
        }
        drop(s);
        self.changed.notify_waiters();
    }

    fn receive_failed(&self, poller: usize) {
        if let Some(slot) = self.lock().last_empty.get_mut(poller) {
            *slot = None;
        }
    }

    /// A batch is over: `done` were deleted, the others come back unless
    /// this was their last receive.
    fn batch_done(&self, batch: &[Message], done: &HashSet<String>) {
        let last_receive = QueueName::Events
            .dead_letter()
            .map_or(DEFAULT_MAX_RECEIVES, |(_, n)| n);
        let mut s = self.lock();
        s.batches += 1;
        for m in batch {
            if done.contains(&m.id) || m.receive_count >= last_receive {
                s.retrying.remove(&m.id);
            } else {
                s.retrying.insert(m.id.clone());
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    fn quiet_since(&self, ticket: u64) -> bool {
        let s = self.lock();
        s.retrying.is_empty()
            && s.last_empty
                .iter()
                .all(|e| matches!(e, Some((t, b)) if *t >= ticket && *b == s.batches))
    }

    /// Wait until every message sent before this call has been applied (or
    /// has reached the dead-letter queue) and the consumer is idle; `false`
    /// if that did not happen within `limit`.
    pub async fn drained(&self, limit: Duration) -> bool {
        let ticket = self.lock().receives;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if self.quiet_since(ticket) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.quiet_since(ticket);
            }
        }
    }
}

/// Start `pollers` tasks; each stops when `stop` turns true. Every message
/// applied successfully is announced on `applied` (its body); what the
/// pollers do is tracked in the returned [`Activity`].
pub fn spawn(
    ctx: Ctx,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
    applied: broadcast::Sender<Arc<str>>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<Activity>) {
    let pollers = opts.pollers.max(1);
    let activity = Arc::new(Activity::new(pollers));
    let mut tasks: Vec<_> = (0..pollers)
        .map(|poller| {
            tokio::spawn(poll_loop(
                ctx.clone(),
                opts.clone(),
                stop.clone(),
                applied.clone(),
                (poller, Arc::clone(&activity)),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(sweep_loop(ctx, opts.sweep_every, stop)));
    (tasks, activity)
}

/// The sweep (payouts, refunds) on a timer, like its EventBridge schedule in AWS.
async fn sweep_loop(ctx: Ctx, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = ctx.now_ms();
        if let Err(e) = payloop::domain::sweep::run(&ctx, now).await {
            tracing::warn!(error = %e, "sweep failed; next run retries");
        }
    }
}

async fn poll_loop(
    ctx: Ctx,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
    applied: broadcast::Sender<Arc<str>>,
    (poller, activity): (usize, Arc<Activity>),
) {
    // `stop` is checked between receives, never raced against one: a receive
    // cancelled after it took messages would hide them and count a receive
    // towards the DLQ without processing them.
    while !*stop.borrow() {
        let ticket = activity.receive_started();
        let batch = match ctx
            .queue
            .receive(
                QueueName::Events,
                MAX_RECEIVE_BATCH,
                opts.visibility,
                RECEIVE_WAIT,
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                activity.receive_failed(poller);
                tracing::warn!(error = %e, "queue receive failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        activity.received(poller, ticket, &batch);
        if batch.is_empty() {
            continue;
        }
        let pairs: Vec<(String, String)> = batch
            .iter()
            .map(|m| (m.id.clone(), m.body.clone()))
            .collect();
        // Like a Lambda timeout: a batch that overruns deletes nothing and is redelivered.
        let Ok(failed) =
            tokio::time::timeout(opts.visibility, wallet_credit::process_batch(&ctx, &pairs)).await
        else {
            tracing::error!(
                messages = pairs.len(),
                "batch timed out; it will be redelivered"
            );
            activity.batch_done(&batch, &HashSet::new());
            continue;
        };
        let succeeded: Vec<&Message> = batch.iter().filter(|m| !failed.contains(&m.id)).collect();
        let receipts: Vec<String> = succeeded.iter().map(|m| m.receipt.clone()).collect();
        let outcomes = ctx.queue.delete_batch(QueueName::Events, &receipts).await;
        let mut done = HashSet::new();
        for (m, outcome) in succeeded.into_iter().zip(outcomes) {
            if let Err(e) = outcome {
                // Redelivered later; the consumer makes that harmless.
                tracing::warn!(message_id = %m.id, error = %e, "delete failed");
                continue;
            }
            done.insert(m.id.clone());
            let _ = applied.send(Arc::from(m.body.as_str()));
        }
        activity.batch_done(&batch, &done);
    }
}
