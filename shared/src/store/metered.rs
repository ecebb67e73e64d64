//! A decorator that counts DynamoDB-style write units: 1 per KB for a plain
//! write, 2 per KB per item in a transaction (checks count as writes, as in
//! DynamoDB's TransactWriteItems billing).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::{item_size, Item, Key, Page, Query, Store, StoreError, Write};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    units: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            units: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }
    /// Write units consumed so far.
    pub fn write_units(&self) -> u64 {
        self.units.load(Ordering::Relaxed)
    }
    /// Read requests (gets + query pages) so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    /// Write requests (single writes + transactions) so far.
    pub fn write_requests(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

fn kb_units(w: &Write) -> u64 {
    let bytes = match w {
        Write::Put { item, .. } => item_size(item),
        Write::Update { key, ops, .. } => key.pk.len() + key.sk.len() + 64 * ops.len(),
        Write::Delete { key, .. } | Write::Check { key, .. } => key.pk.len() + key.sk.len(),
    };
    (bytes as u64).div_ceil(1024).max(1)
}

#[async_trait]
impl Store for MeteredStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.query(q).await
    }
    async fn write(&self, write: Write) -> Result<(), StoreError> {
        self.units.fetch_add(kb_units(&write), Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(write).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let units: u64 = writes.iter().map(|w| 2 * kb_units(w)).sum();
        self.units.fetch_add(units, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.transact(writes).await
    }
}
