//! Delivers queue batches to wallet-credit exactly as the Lambda SQS event
//! source mapping does: receive up to 10 with a visibility timeout, hand the
//! batch to the consumer, delete the messages that succeeded, leave the
//! `batchItemFailures` to reappear after the timeout (and reach the DLQ after
//! the receive limit).

use std::sync::Arc;
use std::time::Duration;

use payloop::domain::Ctx;
use payloop::queue::{QueueName, MAX_RECEIVE_BATCH};
use tokio::sync::{broadcast, watch};

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

/// Start `pollers` tasks; each stops when `stop` turns true. Every message
/// applied successfully is announced on `applied` (its body).
pub fn spawn(
    ctx: Ctx,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
    applied: broadcast::Sender<Arc<str>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks: Vec<_> = (0..opts.pollers.max(1))
        .map(|_| {
            tokio::spawn(poll_loop(
                ctx.clone(),
                opts.clone(),
                stop.clone(),
                applied.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(sweep_loop(ctx, opts.sweep_every, stop)));
    tasks
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
) {
    // `stop` is checked between receives, never raced against one: a receive
    // cancelled after it took messages would hide them and count a receive
    // towards the DLQ without processing them.
    while !*stop.borrow() {
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
                tracing::warn!(error = %e, "queue receive failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
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
            continue;
        };
        for m in batch.iter().filter(|m| !failed.contains(&m.id)) {
            if let Err(e) = ctx.queue.delete(QueueName::Events, &m.receipt).await {
                // Redelivered later; the consumer makes that harmless.
                tracing::warn!(message_id = %m.id, error = %e, "delete failed");
                continue;
            }
            let _ = applied.send(Arc::from(m.body.as_str()));
        }
    }
}
