//! The DynamoDB-shaped store port. All money rules are written once, in the
//! domain, against this trait; the adapters (`embedded`, `dynamodb`) only
//! translate and hold no business logic.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod dynamodb;
pub mod embedded;
pub mod metered;
mod partitions;
mod record;
mod wal;

/// Partition-key attribute name.
pub const PK: &str = "pk";
/// Sort-key attribute name.
pub const SK: &str = "sk";
/// TTL attribute (epoch seconds), as configured on the DynamoDB table.
pub const TTL: &str = "ttl";
/// DynamoDB's limit on one TransactWriteItems call.
pub const MAX_TRANSACT_WRITES: usize = 100;
/// Upper bound on one query page.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An attribute value: the subset of DynamoDB types we use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attr {
    S(String),
    N(i64),
    B(bool),
    M(BTreeMap<String, Attr>),
    L(Vec<Attr>),
}

pub type Item = BTreeMap<String, Attr>;

impl Attr {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Attr::N(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Attr::B(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Attr]> {
        match self {
            Attr::L(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&BTreeMap<String, Attr>> {
        match self {
            Attr::M(m) => Some(m),
            _ => None,
        }
    }
    /// Approximate encoded size, DynamoDB-style (names + values).
    pub fn size(&self) -> usize {
        match self {
            Attr::S(s) => s.len(),
            Attr::N(_) => 8,
            Attr::B(_) => 1,
            Attr::M(m) => 3 + m.iter().map(|(k, v)| k.len() + 1 + v.size()).sum::<usize>(),
            Attr::L(l) => 3 + l.iter().map(|v| 1 + v.size()).sum::<usize>(),
        }
    }
}

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Attr::S(s.to_owned())
    }
}
impl From<String> for Attr {
    fn from(s: String) -> Self {
        Attr::S(s)
    }
}
impl From<i64> for Attr {
    fn from(n: i64) -> Self {
        Attr::N(n)
    }
}
impl From<bool> for Attr {
    fn from(b: bool) -> Self {
        Attr::B(b)
    }
}

/// Size of a whole item in bytes (for write-unit accounting and limits).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

impl Attr {
    /// The attribute as plain JSON (for API views of stored documents).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Attr::S(s) => serde_json::Value::from(s.as_str()),
            Attr::N(n) => serde_json::Value::from(*n),
            Attr::B(b) => serde_json::Value::from(*b),
            Attr::M(m) => m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            Attr::L(l) => l.iter().map(Attr::to_json).collect(),
        }
    }
}

/// A stored attribute shown as the plain JSON it holds (strings, integers,
/// booleans, lists, maps), so views can carry stored documents as they are.
/// (`Attr`'s own serde form is the tagged one the write-ahead log keeps.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc(pub Attr);

struct PlainRef<'a>(&'a Attr);

impl serde::Serialize for PlainRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Attr::S(v) => s.serialize_str(v),
            Attr::N(n) => s.serialize_i64(*n),
            Attr::B(b) => s.serialize_bool(*b),
            Attr::L(l) => s.collect_seq(l.iter().map(PlainRef)),
            Attr::M(m) => s.collect_map(m.iter().map(|(k, v)| (k, PlainRef(v)))),
        }
    }
}

impl serde::Serialize for Doc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PlainRef(&self.0).serialize(s)
    }
}

/// An item as a JSON object.
pub fn to_json(it: &Item) -> serde_json::Value {
    it.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()
}

/// Read helpers so domain code reads items without matching on `Attr`.
pub trait ItemExt {
    fn str_attr(&self, name: &str) -> Option<&str>;
    fn int_attr(&self, name: &str) -> Option<i64>;
}

impl ItemExt for Item {
    fn str_attr(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Attr::as_str)
    }
    fn int_attr(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Attr::as_i64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key::new(item.str_attr(PK)?, item.str_attr(SK)?))
    }
}

/// Build an item from its key and attributes.
pub fn item(key: &Key, attrs: impl IntoIterator<Item = (&'static str, Attr)>) -> Item {
    let mut it: Item = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    it.insert(PK.to_owned(), Attr::S(key.pk.clone()));
    it.insert(SK.to_owned(), Attr::S(key.sk.clone()));
    it
}

/// A condition on the item as it stands before the write.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The item does not exist.
    NotExists,
    /// The item exists.
    Exists,
    /// The attribute is absent.
    AttrNotExists(String),
    Eq(String, Attr),
    In(String, Vec<Attr>),
    /// attribute >= value (numbers or strings).
    Ge(String, Attr),
    /// attribute < value (numbers or strings).
    Lt(String, Attr),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    pub fn eq(name: &str, v: impl Into<Attr>) -> Self {
        Cond::Eq(name.to_owned(), v.into())
    }

    /// Evaluate against the current item (`None` = absent). Missing attributes
    /// make comparisons false, as in DynamoDB.
    pub fn eval(&self, item: Option<&Item>) -> bool {
        let attr = |n: &str| item.and_then(|i| i.get(n));
        match self {
            Cond::NotExists => item.is_none(),
            Cond::Exists => item.is_some(),
            Cond::AttrNotExists(n) => attr(n).is_none(),
            Cond::Eq(n, v) => attr(n) == Some(v),
            Cond::In(n, vs) => attr(n).is_some_and(|a| vs.contains(a)),
            Cond::Ge(n, v) => attr(n).is_some_and(|a| compare(a, v).is_some_and(|o| o.is_ge())),
            Cond::Lt(n, v) => attr(n).is_some_and(|a| compare(a, v).is_some_and(|o| o.is_lt())),
            Cond::And(cs) => cs.iter().all(|c| c.eval(item)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(item)),
        }
    }
}

fn compare(a: &Attr, b: &Attr) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Attr::N(x), Attr::N(y)) => Some(x.cmp(y)),
        (Attr::S(x), Attr::S(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One change inside an update.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOp {
    Set(String, Attr),
    /// Numeric add; a missing attribute counts as 0.
    Add(String, i64),
    /// Append to a list; a missing attribute counts as an empty list.
    Append(String, Vec<Attr>),
    Remove(String),
}

impl UpdateOp {
    pub fn set(name: &str, v: impl Into<Attr>) -> Self {
        UpdateOp::Set(name.to_owned(), v.into())
    }
}

/// Refuse what DynamoDB refuses (both adapters use it): an update with no
/// operation, one touching `pk`/`sk`, or one naming an attribute twice.
pub fn check_update(ops: &[UpdateOp]) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Err(StoreError::Invalid("an update with no operations".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for op in ops {
        let (UpdateOp::Set(n, _)
        | UpdateOp::Add(n, _)
        | UpdateOp::Append(n, _)
        | UpdateOp::Remove(n)) = op;
        if n == PK || n == SK {
            return Err(StoreError::Invalid(format!("update of key attribute {n}")));
        }
        if !seen.insert(n.as_str()) {
            return Err(StoreError::Invalid(format!("two updates of attribute {n}")));
        }
    }
    Ok(())
}

/// Apply update operations to an item (creating it if absent, as DynamoDB's
/// UpdateItem does). Shared by the embedded adapter and tests.
pub fn apply_update(
    current: Option<&Item>,
    key: &Key,
    ops: &[UpdateOp],
) -> Result<Item, StoreError> {
    check_update(ops)?;
    let mut it = current.cloned().unwrap_or_else(|| item(key, []));
    for op in ops {
        match op {
            UpdateOp::Set(n, v) => {
                it.insert(n.clone(), v.clone());
            }
            UpdateOp::Add(n, d) => {
                let cur = match it.get(n) {
                    None => 0,
                    Some(Attr::N(x)) => *x,
                    Some(_) => return Err(StoreError::Invalid(format!("ADD on non-number {n}"))),
                };
                let next = cur
                    .checked_add(*d)
                    .ok_or_else(|| StoreError::Invalid(format!("overflow adding to {n}")))?;
                it.insert(n.clone(), Attr::N(next));
            }
            UpdateOp::Append(n, vs) => {
                let mut list = match it.remove(n) {
                    None => Vec::new(),
                    Some(Attr::L(l)) => l,
                    Some(_) => return Err(StoreError::Invalid(format!("append to non-list {n}"))),
                };
                list.extend(vs.iter().cloned());
                it.insert(n.clone(), Attr::L(list));
            }
            UpdateOp::Remove(n) => {
                it.remove(n);
            }
        }
    }
    Ok(it)
}

/// One conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        ops: Vec<UpdateOp>,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    /// A condition on another item, writing nothing (transactions only).
    Check {
        key: Key,
        cond: Cond,
    },
}

impl Write {
    pub fn key(&self) -> Result<Key, StoreError> {
        match self {
            Write::Put { item, .. } => {
                Key::of(item).ok_or_else(|| StoreError::Invalid("put item lacks pk/sk".into()))
            }
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => {
                Ok(key.clone())
            }
        }
    }
    pub fn cond(&self) -> Option<&Cond> {
        match self {
            Write::Put { cond, .. } | Write::Update { cond, .. } | Write::Delete { cond, .. } => {
                cond.as_ref()
            }
            Write::Check { cond, .. } => Some(cond),
        }
    }
}

/// The sort-key part of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum SkRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub pk: String,
    pub range: SkRange,
    pub limit: usize,
    /// The last sort key of the previous page.
    pub after: Option<String>,
    pub descending: bool,
}

impl Query {
    pub fn new(pk: impl Into<String>, range: SkRange, limit: usize) -> Self {
        Self {
            pk: pk.into(),
            range,
            limit: limit.min(MAX_QUERY_LIMIT),
            after: None,
            descending: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when there may be more: pass as `Query::after`.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: which write (index in the transaction, 0 for single
    /// writes) and the item as it stood (ALL_OLD), so no extra read is needed.
    #[error("condition failed on write {index}")]
    ConditionFailed { index: usize, old: Option<Item> },
    /// Transaction conflict or throttling: safe to retry.
    #[error("conflict, retry: {0}")]
    Retryable(String),
    /// The store could not be reached or failed; the outcome may be unknown.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A request the store refuses (bug or limit).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    async fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// One conditional write (PutItem / UpdateItem / DeleteItem).
    async fn write(&self, write: Write) -> Result<(), StoreError>;
    /// Up to [`MAX_TRANSACT_WRITES`] conditional writes, all or nothing.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// The stored size of an item ([`item_size`]), for metering. The default
    /// reads it; a store that holds items can size one without a copy.
    async fn item_bytes(&self, key: &Key) -> Result<Option<usize>, StoreError> {
        Ok(self.get(key).await?.as_ref().map(item_size))
    }
}

/// Validate a transaction's shape before sending (both adapters use it).
pub fn check_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACT_WRITES {
        return Err(StoreError::Invalid(format!(
            "transaction of {} writes",
            writes.len()
        )));
    }
    let mut keys = std::collections::BTreeSet::new();
    for w in writes {
        if !keys.insert(w.key()?) {
            return Err(StoreError::Invalid(
                "two writes on one item in a transaction".into(),
            ));
        }
    }
    Ok(())
}

/// Does a sort key fall in the query range (and after the cursor)?
pub fn sk_matches(q: &Query, sk: &str) -> bool {
    let in_range = match &q.range {
        SkRange::All => true,
        SkRange::Prefix(p) => sk.starts_with(p.as_str()),
        SkRange::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
    };
    let after_cursor = match &q.after {
        None => true,
        Some(c) if q.descending => sk < c.as_str(),
        Some(c) => sk > c.as_str(),
    };
    in_range && after_cursor
}
