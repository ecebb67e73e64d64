//! Fault-injecting decorators of the store and queue ports.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use payloop::queue::{Message, Queue, QueueError, QueueName};
use payloop::store::{Item, Key, Page, Query, Store, StoreError, Write};

/// Fails transactions while `fail_transacts` is set; counts item creations
/// of payments (to prove "exactly one intent").
pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub fail_transacts: AtomicBool,
    pub failed_transacts: AtomicUsize,
    pub payment_puts: AtomicUsize,
    /// Fail the next write that marks an idempotency record completed (the
    /// work is done, remembering its response fails).
    pub fail_idem_completion: AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            fail_transacts: AtomicBool::new(false),
            failed_transacts: AtomicUsize::new(0),
            payment_puts: AtomicUsize::new(0),
            fail_idem_completion: AtomicBool::new(false),
        }
    }
}

fn is_idem_completion(w: &Write) -> bool {
    use payloop::store::{Attr, UpdateOp};
    matches!(w, Write::Update { key, ops, .. }
        if key.pk.starts_with("IDEM#")
        && ops.iter().any(|op| matches!(op, UpdateOp::Set(n, Attr::S(v)) if n == "state" && v == "completed")))
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
    async fn write(&self, write: Write) -> Result<(), StoreError> {
        if is_idem_completion(&write) && self.fail_idem_completion.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "injected failure storing the response".into(),
            ));
        }
        let is_payment = matches!(&write, Write::Put { item, .. }
            if item.get("pk").and_then(|a| a.as_str()).is_some_and(|pk| pk.starts_with("PAY#"))
            && item.get("sk").and_then(|a| a.as_str()) == Some("A"));
        let r = self.inner.write(write).await;
        if is_payment && r.is_ok() {
            self.payment_puts.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if self.fail_transacts.load(Ordering::SeqCst) {
            self.failed_transacts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("injected store outage".into()));
        }
        self.inner.transact(writes).await
    }
}

/// Loses the first `lose_deletes` deletes of the events queue (a consumer
/// that crashed after its commit, before its delete) and fails sends while
/// `fail_sends` is set.
pub struct FaultyQueue {
    pub inner: Arc<dyn Queue>,
    pub lose_deletes: AtomicUsize,
    pub deletes_seen: AtomicUsize,
    pub fail_sends: AtomicBool,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn Queue>) -> Self {
        Self {
            inner,
            lose_deletes: AtomicUsize::new(0),
            deletes_seen: AtomicUsize::new(0),
            fail_sends: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        self.inner.depth(queue).await
    }
    async fn send(&self, queue: QueueName, body: &str) -> Result<String, QueueError> {
        if self.fail_sends.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("injected queue outage".into()));
        }
        self.inner.send(queue, body).await
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        self.inner.receive(queue, max, visibility, wait).await
    }
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.deletes_seen.fetch_add(1, Ordering::SeqCst);
        let lose = self
            .lose_deletes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            return Err(QueueError::Unavailable(
                "injected crash before delete".into(),
            ));
        }
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.inner
            .change_visibility(queue, receipt, visibility)
            .await
    }
}
