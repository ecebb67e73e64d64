//! The embedded queue: messages are items of an embedded store, keyed by the
//! time they become visible, so a receive is a range read and a conditional
//! move. Durable, concurrent-safe, no server.
//!
//! A send is acknowledged once it is durable. A receive and a delete are
//! not waited for ([`EmbeddedStore::transact_logged`]): they are durable
//! with the log's next sync, and a crash before it brings the message back,
//! which at-least-once delivery allows (and whatever a consumer did with it
//! was logged after the receive, so it is never durable without it). The
//! one cost: a receive count lost that way is counted again at the next
//! receive, so a message that kills the process within a sync of being
//! received is not dead-lettered by count.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Message, Queue, QueueError, QueueName, MAX_MESSAGE_BYTES, MAX_RECEIVE_BATCH};
use crate::clock::{Clock, SystemClock};
use crate::store::embedded::EmbeddedStore;
use crate::store::{item, Attr, Cond, ItemExt, Key, Query, SkRange, Store, StoreError, Write};

/// How often a long poll re-checks for messages whose visibility expired.
const POLL_STEP: Duration = Duration::from_millis(50);

pub struct EmbeddedQueue {
    store: Arc<EmbeddedStore>,
    /// One per queue: a send wakes one receiver of its own queue.
    arrived: [Notify; QUEUES],
    /// Visibility timeouts run on this clock (virtual in the simulator).
    clock: Arc<dyn Clock>,
}

const QUEUES: usize = 6;

/// The queue's slot in `arrived`.
fn slot(queue: QueueName) -> usize {
    match queue {
        QueueName::Events => 0,
        QueueName::EventsDlq => 1,
        QueueName::Notifications => 2,
        QueueName::Recon => 3,
        QueueName::Google => 4,
        QueueName::GoogleDlq => 5,
    }
}

fn pk(queue: QueueName) -> String {
    format!("Q#{}", queue.as_str())
}

/// Sort key: visible-at time (fixed width, so string order = time order) + id.
fn sk(visible_at_ms: i64, id: &str) -> String {
    format!("{visible_at_ms:015}#{id}")
}

fn store_err(e: StoreError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl EmbeddedQueue {
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }

    pub fn with_clock(store: Arc<EmbeddedStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            arrived: std::array::from_fn(|_| Notify::new()),
            clock,
        }
    }

    async fn put(
        &self,
        queue: QueueName,
        id: &str,
        body: &str,
        count: i64,
        visible_at: i64,
    ) -> Result<Write, QueueError> {
        let key = Key::new(pk(queue), sk(visible_at, id));
        Ok(Write::Put {
            item: item(
                &key,
                [
                    ("id", Attr::from(id)),
                    ("body", Attr::from(body)),
                    ("count", Attr::N(count)),
                ],
            ),
            cond: Some(Cond::NotExists),
        })
    }

    /// The two writes that take one visible message (move it to its new
    /// visibility time, or to the DLQ past the receive limit), and the message
    /// they hand out (`None` when it is dead-lettered).
    async fn plan_take(
        &self,
        queue: QueueName,
        found: &crate::store::Item,
        visibility: Duration,
    ) -> Result<Take, QueueError> {
        let (Some(old_key), Some(id), Some(body)) =
            (Key::of(found), found.str_attr("id"), found.str_attr("body"))
        else {
            return Err(QueueError::Invalid("corrupt queue item".into()));
        };
        let count = found.int_attr("count").unwrap_or(0) + 1;
        let remove = Write::Delete {
            key: old_key,
            cond: Some(Cond::Exists),
        };
        let dead_letter = queue
            .dead_letter()
            .filter(|(_, max)| count > i64::from(*max));
        if let Some((dlq, _)) = dead_letter {
            let add = self.put(dlq, id, body, 0, self.clock.now_ms()).await?;
            return Ok(Take {
                writes: [remove, add],
                message: None,
                id: id.to_owned(),
            });
        }
        let visible_at = self.clock.now_ms() + visibility.as_millis() as i64;
        let message = Message {
            id: id.to_owned(),
            receipt: sk(visible_at, id),
            body: body.to_owned(),
            receive_count: count as u32,
        };
        let add = self.put(queue, id, body, count, visible_at).await?;
        Ok(Take {
            writes: [remove, add],
            message: Some(message),
            id: id.to_owned(),
        })
    }

    /// Commit one take; `false` if another receiver won the message.
    async fn commit_take(&self, queue: QueueName, take: &Take) -> Result<bool, QueueError> {
        match self.store.transact_logged(take.writes.to_vec()) {
            Ok(()) => {
                take.log_dead_letter(queue);
                Ok(true)
            }
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Take up to `max` visible messages: all in one transaction (one log
    /// write), or one by one when another receiver got some of them first.
    async fn receive_once(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let now = self.clock.now_ms();
        let range = SkRange::Between(String::new(), format!("{now:015}~"));
        let page = self
            .store
            .query_shown(&Query::new(pk(queue), range, max))
            .await
            .map_err(store_err)?;
        let mut takes = Vec::with_capacity(page.items.len());
        for found in &page.items {
            takes.push(self.plan_take(queue, found, visibility).await?);
        }
        if takes.is_empty() {
            return Ok(Vec::new());
        }
        let all: Vec<Write> = takes
            .iter()
            .flat_map(|t| t.writes.iter().cloned())
            .collect();
        match self.store.transact_logged(all) {
            Ok(()) => {
                takes.iter().for_each(|t| t.log_dead_letter(queue));
                return Ok(takes.into_iter().filter_map(|t| t.message).collect());
            }
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(store_err(e)),
        }
        let mut out = Vec::new();
        for take in takes {
            if self.commit_take(queue, &take).await? {
                out.extend(take.message);
            }
        }
        Ok(out)
    }
}

struct Take {
    writes: [Write; 2],
    message: Option<Message>,
    id: String,
}

impl Take {
    fn log_dead_letter(&self, queue: QueueName) {
        if self.message.is_none() {
            tracing::warn!(message_id = %self.id, queue = queue.as_str(), "message moved to dead-letter queue");
        }
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let all = Query::new(pk(queue), SkRange::All, super::MAX_DEPTH_COUNTED);
        let page = self.store.query(&all).await.map_err(store_err)?;
        Ok(page.items.len() as u64)
    }
    async fn send(&self, queue: QueueName, body: &str) -> Result<String, QueueError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::Invalid("message larger than 256 KB".into()));
        }
        let id = crate::ids::new_ulid("msg");
        let w = self.put(queue, &id, body, 0, self.clock.now_ms()).await?;
        self.store.write(w).await.map_err(store_err)?;
        // One waiting receiver of this queue per message (a stored permit
        // if none waits): waking every poller for each message only made
        // them race for it.
        self.arrived[slot(queue)].notify_one();
        Ok(id)
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let max = max.clamp(1, MAX_RECEIVE_BATCH);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived[slot(queue)].notified();
            let got = self.receive_once(queue, max, visibility).await?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            let step =
                POLL_STEP.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let _ = tokio::time::timeout(step, notified).await;
        }
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let w = Write::Delete {
            key: Key::new(pk(queue), receipt),
            cond: Some(Cond::Exists),
        };
        match self.store.transact_logged(vec![w]) {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// One transaction (one log write) for the whole batch; a receipt
    /// gone stale (the message was received again, or deleted) is a no-op.
    async fn delete_batch(
        &self,
        queue: QueueName,
        receipts: &[String],
    ) -> Vec<Result<(), QueueError>> {
        if receipts.is_empty() {
            return Vec::new();
        }
        if receipts.len() > MAX_RECEIVE_BATCH {
            let e = QueueError::Invalid(format!("at most {MAX_RECEIVE_BATCH} deletes in a batch"));
            return vec![Err(e); receipts.len()];
        }
        let mut unique: Vec<&String> = receipts.iter().collect();
        unique.sort();
        unique.dedup();
        let writes = unique
            .into_iter()
            .map(|r| Write::Delete {
                key: Key::new(pk(queue), r.as_str()),
                cond: None,
            })
            .collect();
        let outcome = match self.store.transact_logged(writes) {
            Ok(()) => Ok(()),
            Err(e) => Err(store_err(e)),
        };
        vec![outcome; receipts.len()]
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let key = Key::new(pk(queue), receipt);
        let Some(found) = self.store.get(&key).await.map_err(store_err)? else {
            return Ok(());
        };
        let (Some(id), Some(body)) = (found.str_attr("id"), found.str_attr("body")) else {
            return Err(QueueError::Invalid("corrupt queue item".into()));
        };
        let visible_at = self.clock.now_ms() + visibility.as_millis() as i64;
        let count = found.int_attr("count").unwrap_or(0);
        let add = self.put(queue, id, body, count, visible_at).await?;
        let remove = Write::Delete {
            key,
            cond: Some(Cond::Exists),
        };
        match self.store.transact(vec![remove, add]).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// In paused (virtual) time: a send wakes a receiver of its own queue at
    /// once, even when a receiver of another queue started waiting first
    /// (a missed wake would show as the 50 ms re-check).
    #[tokio::test(start_paused = true)]
    async fn a_send_wakes_a_receiver_of_its_own_queue() {
        let q = Arc::new(EmbeddedQueue::new(Arc::new(EmbeddedStore::in_memory())));
        let long = Duration::from_secs(10);
        let waiting_on = |name: QueueName| {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.receive(name, 10, long, long).await })
        };
        let google = waiting_on(QueueName::Google);
        tokio::task::yield_now().await;
        let events = waiting_on(QueueName::Events);
        tokio::task::yield_now().await;
        let sent_at = tokio::time::Instant::now();
        q.send(QueueName::Events, "m").await.unwrap();
        let got = events.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(sent_at.elapsed(), Duration::ZERO, "woken at once");
        assert!(!google.is_finished());
        google.abort();
    }

    /// A receive and a delete return while the log is held back (a send
    /// does not), and a receive lost with the process is a redelivery.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receives_and_deletes_are_not_waited_for_and_a_lost_receive_is_a_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.wal");
        let store = Arc::new(EmbeddedStore::open(&path).unwrap());
        let q = Arc::new(EmbeddedQueue::new(Arc::clone(&store)));
        let (soon, brief) = (Duration::from_secs(5), Duration::from_millis(200));
        let hidden = Duration::from_secs(60);
        q.send(QueueName::Events, "first").await.unwrap();
        q.send(QueueName::Events, "second").await.unwrap();
        store.hold_log(true);
        let got = tokio::time::timeout(soon, q.receive(QueueName::Events, 1, hidden, brief))
            .await
            .expect("a receive waits for no sync")
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].body.as_str(), got[0].receive_count), ("first", 1));
        // What the disk holds now: both messages, neither received.
        let crashed = dir.path().join("crashed.wal");
        std::fs::copy(&path, &crashed).unwrap();
        tokio::time::timeout(soon, q.delete(QueueName::Events, &got[0].receipt))
            .await
            .expect("a delete waits for no sync")
            .unwrap();
        let sender = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.send(QueueName::Events, "third").await })
        };
        tokio::time::sleep(brief).await;
        assert!(!sender.is_finished(), "a send acknowledged before its sync");
        store.hold_log(false);
        sender.await.unwrap().unwrap();

        // The process as the disk had it: the receive never happened, so
        // the message is delivered again, counted once.
        let after = Arc::new(EmbeddedStore::open(&crashed).unwrap());
        let again = EmbeddedQueue::new(after)
            .receive(QueueName::Events, 10, hidden, brief)
            .await
            .unwrap();
        let mut seen: Vec<(&str, u32)> = again
            .iter()
            .map(|m| (m.body.as_str(), m.receive_count))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![("first", 1), ("second", 1)]);
        // Where the log was let go, all of it became durable (SQS promises no
        // order, nor does this queue).
        drop(q);
        drop(store);
        let reopened = EmbeddedQueue::new(Arc::new(EmbeddedStore::open(&path).unwrap()));
        let left = reopened
            .receive(QueueName::Events, 10, hidden, brief)
            .await
            .unwrap();
        let mut bodies: Vec<&str> = left.iter().map(|m| m.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(bodies, vec!["second", "third"]);
    }
}
