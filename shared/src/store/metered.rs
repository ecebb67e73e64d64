//! A decorator that counts DynamoDB-style write units as DynamoDB bills
//! them: 1 per KB of the larger of the item before and after a write (an
//! update pays for the whole item, not for what it changes; a failed
//! condition pays too), 2 per KB per item in a transaction (checks count as
//! writes of the item they check, as in TransactWriteItems billing). It
//! sizes the items before and after through the inner store
//! (`Store::item_bytes`), unmetered: it is for benches, not for production.

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

fn kb(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(1024).max(1)
}

impl MeteredStore {
    /// The stored size of what `w` writes over (0: nothing there).
    async fn size_before(&self, w: &Write) -> usize {
        let Ok(key) = w.key() else {
            return 0;
        };
        self.inner
            .item_bytes(&key)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// The bytes `w` will be billed for, given the size before it: known
    /// now for a put, read back after an update (see [`Bill::settle`]).
    fn bill(w: &Write, before: usize) -> Bill {
        match w {
            Write::Put { item, .. } => Bill::Bytes(before.max(item_size(item))),
            Write::Update { key, .. } => Bill::AfterUpdate(key.clone(), before),
            Write::Delete { .. } | Write::Check { .. } => Bill::Bytes(before),
        }
    }
}

/// What one write is billed for, planned before the write is handed on
/// (so the write itself is moved, never copied).
enum Bill {
    Bytes(usize),
    /// The larger of `before` and the item as the update left it.
    AfterUpdate(Key, usize),
}

impl Bill {
    async fn settle(self, inner: &dyn Store) -> usize {
        match self {
            Bill::Bytes(n) => n,
            Bill::AfterUpdate(key, before) => {
                let after = inner.item_bytes(&key).await.ok().flatten();
                before.max(after.unwrap_or(0))
            }
        }
    }
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
    async fn item_bytes(&self, key: &Key) -> Result<Option<usize>, StoreError> {
        self.inner.item_bytes(key).await
    }
    async fn write(&self, write: Write) -> Result<(), StoreError> {
        let bill = Self::bill(&write, self.size_before(&write).await);
        let result = self.inner.write(write).await;
        let units = kb(bill.settle(self.inner.as_ref()).await);
        self.units.fetch_add(units, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        result
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut bills = Vec::with_capacity(writes.len());
        for w in &writes {
            bills.push(Self::bill(w, self.size_before(w).await));
        }
        let result = self.inner.transact(writes).await;
        let mut units = 0;
        for bill in bills {
            units += 2 * kb(bill.settle(self.inner.as_ref()).await);
        }
        self.units.fetch_add(units, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::{item, Attr, Cond, UpdateOp};

    fn meter() -> MeteredStore {
        MeteredStore::new(Arc::new(EmbeddedStore::in_memory()))
    }

    #[tokio::test]
    async fn an_update_pays_for_the_whole_item_and_a_failed_condition_pays_too() {
        let m = meter();
        let key = Key::new("P", "S");
        let big = item(&key, [("blob", Attr::from("x".repeat(2_500).as_str()))]);
        m.write(Write::Put {
            item: big.clone(),
            cond: None,
        })
        .await
        .unwrap();
        assert_eq!(m.write_units(), 3, "a 2.5 KB put");
        m.write(Write::Update {
            key: key.clone(),
            ops: vec![UpdateOp::Add("n".into(), 1)],
            cond: None,
        })
        .await
        .unwrap();
        assert_eq!(m.write_units(), 6, "a one-number update of a 2.5 KB item");
        let refused = m
            .write(Write::Put {
                item: big,
                cond: Some(Cond::NotExists),
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(m.write_units(), 9, "a failed condition is billed");
        assert_eq!(m.write_requests(), 3);
    }

    #[tokio::test]
    async fn a_transaction_pays_twice_per_item_checks_included() {
        let m = meter();
        let a = Key::new("P", "A");
        let b = Key::new("P", "B");
        m.transact(vec![
            Write::Put {
                item: item(&a, [("v", Attr::N(1))]),
                cond: None,
            },
            Write::Check {
                key: b.clone(),
                cond: Cond::NotExists,
            },
        ])
        .await
        .unwrap();
        assert_eq!(m.write_units(), 4);
        assert_eq!(m.write_requests(), 1);
    }
}
