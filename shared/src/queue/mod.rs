//! The SQS-shaped queue port: send, receive with a visibility timeout, delete,
//! receive count → dead-letter queue after N. Adapters: `embedded` (on the
//! embedded store's log) and `sqs`.

use std::time::Duration;

use async_trait::async_trait;

pub mod embedded;
pub mod sqs;

/// SQS's batch limit for one receive.
pub const MAX_RECEIVE_BATCH: usize = 10;
/// SQS's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A received message. `receipt` identifies this receive (for delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("invalid queue request: {0}")]
    Invalid(String),
}

/// Logical queue names; adapters map them to real queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// Verified PSP events waiting to be applied (wallet-credit consumes it).
    Events,
    /// Dead letters of `Events`.
    EventsDlq,
    /// Player notifications (payout failed…), for the platform to deliver.
    Notifications,
    /// Reconciliation shards of a PSP-day, fanned out to the reconciliation
    /// function (its dead letters are the infrastructure's redrive).
    Recon,
    /// Calls payloop makes to Google (notifications, remittance), each
    /// retried with backoff until it succeeds or reaches `GoogleDlq`.
    Google,
    /// Dead letters of `Google`.
    GoogleDlq,
}

impl QueueName {
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueName::Events => "events",
            QueueName::EventsDlq => "events-dlq",
            QueueName::Notifications => "notifications",
            QueueName::Recon => "recon",
            QueueName::Google => "google",
            QueueName::GoogleDlq => "google-dlq",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "events" => Some(QueueName::Events),
            "events-dlq" => Some(QueueName::EventsDlq),
            "notifications" => Some(QueueName::Notifications),
            "recon" => Some(QueueName::Recon),
            "google" => Some(QueueName::Google),
            "google-dlq" => Some(QueueName::GoogleDlq),
            _ => None,
        }
    }
    /// Where messages go after too many receives, and after how many.
    pub fn dead_letter(&self) -> Option<(QueueName, u32)> {
        match self {
            QueueName::Events => Some((QueueName::EventsDlq, DEFAULT_MAX_RECEIVES)),
            QueueName::Google => Some((QueueName::GoogleDlq, GOOGLE_MAX_RECEIVES)),
            QueueName::EventsDlq
            | QueueName::Notifications
            | QueueName::Recon
            | QueueName::GoogleDlq => None,
        }
    }
}

/// Receives before a message moves to its DLQ (SQS `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;
/// Attempts of one call to Google before it is a dead letter (with the
/// backoff between them, 30 s doubling to an hour: about 5 hours).
pub const GOOGLE_MAX_RECEIVES: u32 = 12;

#[async_trait]
pub trait Queue: Send + Sync {
    /// Durably enqueue; returns the message id.
    async fn send(&self, queue: QueueName, body: &str) -> Result<String, QueueError>;
    /// Up to `max` (≤ 10) visible messages, hidden for `visibility` afterwards;
    /// waits up to `wait` for one to arrive (long polling).
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError>;
    /// Delete a received message. Deleting with a stale receipt is not an error.
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError>;
    /// Delete up to [`MAX_RECEIVE_BATCH`] received messages in one request
    /// (SQS DeleteMessageBatch); one outcome per receipt, in order. The
    /// default deletes them one by one.
    async fn delete_batch(
        &self,
        queue: QueueName,
        receipts: &[String],
    ) -> Vec<Result<(), QueueError>> {
        let mut out = Vec::with_capacity(receipts.len());
        for r in receipts {
            out.push(self.delete(queue, r).await);
        }
        out
    }
    /// Make a received message visible again after `visibility`.
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError>;
    /// Messages in the queue, visible or in flight (approximate on SQS;
    /// the embedded queue counts up to [`MAX_DEPTH_COUNTED`]).
    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError>;
}

/// The embedded queue's depth count stops here (a bounded read).
pub const MAX_DEPTH_COUNTED: usize = 10_000;

/// Move up to `max` messages from a dead-letter queue back to its source
/// (receive, send, delete: works on SQS and moto alike, no
/// StartMessageMoveTask). A message is deleted from the DLQ only after it was
/// sent, so a crash replays it twice at worst, which consumers tolerate.
pub async fn redrive(
    q: &dyn Queue,
    dlq: QueueName,
    source: QueueName,
    max: usize,
) -> Result<usize, QueueError> {
    let mut moved = 0;
    while moved < max {
        let batch_max = (max - moved).min(MAX_RECEIVE_BATCH);
        let batch = q
            .receive(dlq, batch_max, Duration::from_secs(60), Duration::ZERO)
            .await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            q.send(source, &m.body).await?;
            q.delete(dlq, &m.receipt).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Look at up to `max` messages of a queue without taking them: each is
/// received (hidden for a moment) and made visible again at once. For
/// operators (the dead-letter list); on SQS a message being looked at by
/// another reader at the same time may be missing from the list.
pub async fn peek(q: &dyn Queue, queue: QueueName, max: usize) -> Result<Vec<Message>, QueueError> {
    let seen = peek_hidden(q, queue, max).await?;
    for m in &seen {
        q.change_visibility(queue, &m.receipt, Duration::ZERO)
            .await?;
    }
    Ok(seen)
}

/// How long a looked-at message stays hidden while the look lasts.
const PEEK_HIDE: Duration = Duration::from_secs(30);

/// Move the one message `id` from a dead-letter queue back to its source.
/// Looks through at most `scan` messages; the others are made visible again.
/// `Ok(false)`: not found (already replayed, or beyond the scan).
pub async fn redrive_one(
    q: &dyn Queue,
    dlq: QueueName,
    source: QueueName,
    id: &str,
    scan: usize,
) -> Result<bool, QueueError> {
    let looked = peek_hidden(q, dlq, scan).await?;
    let mut found = false;
    for m in &looked {
        if m.id == id && !found {
            q.send(source, &m.body).await?;
            q.delete(dlq, &m.receipt).await?;
            found = true;
        } else {
            q.change_visibility(dlq, &m.receipt, Duration::ZERO).await?;
        }
    }
    Ok(found)
}

/// Receive up to `max` messages, leaving them hidden (the caller decides).
async fn peek_hidden(
    q: &dyn Queue,
    queue: QueueName,
    max: usize,
) -> Result<Vec<Message>, QueueError> {
    let mut seen: Vec<Message> = Vec::new();
    while seen.len() < max {
        let want = (max - seen.len()).min(MAX_RECEIVE_BATCH);
        let batch = q.receive(queue, want, PEEK_HIDE, Duration::ZERO).await?;
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    Ok(seen)
}
