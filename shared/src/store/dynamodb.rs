//! The DynamoDB adapter: translates the port to aws-sdk-dynamodb calls and
//! holds no business logic. Single writes are PutItem / UpdateItem /
//! DeleteItem (1 WCU per KB), several are one TransactWriteItems (2×). Every
//! condition asks for `ReturnValuesOnConditionCheckFailure=ALL_OLD`, so a
//! failed condition reports the item as it stood without an extra read.
//!
//! Reads are strongly consistent. A query asks for `limit + 1` items so that
//! `Page::next` is set only when more items exist, as in the embedded adapter;
//! when DynamoDB stops a page early (its 1 MB page cap), `next` is set from
//! `LastEvaluatedKey` and the page may hold fewer than `limit` items.
//!
//! Updates are checked with [`check_update`] before sending, as in the
//! embedded adapter: DynamoDB refuses an update touching `pk`/`sk` or naming
//! one attribute twice, and TransactWriteItems requires an update expression.
//!
//! Unlike the embedded adapter, DynamoDB refuses a query cursor (`after`)
//! that lies outside the query's sort-key range; cursors taken from
//! `Page::next` always lie inside.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete,
    KeySchemaElement, KeyType, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use super::{
    check_transaction, check_update, Attr, Cond, Item, Key, Page, Query, SkRange, Store,
    StoreError, UpdateOp, Write, MAX_QUERY_LIMIT, PK, SK, TTL,
};

type AvMap = HashMap<String, AttributeValue>;

/// How long `create_table_if_missing` waits for the table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const TABLE_POLL_STEP: Duration = Duration::from_millis(500);

/// Error codes (top-level or in cancellation reasons) that are safe to retry.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded",
    "ThrottlingException",
    "ThrottlingError",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionConflict",
    "TransactionInProgressException",
    "ReplicatedWriteConflictException",
];
/// Error codes that mean the request itself is wrong (a bug or a limit).
const INVALID_CODES: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "SerializationException",
    "ItemCollectionSizeLimitExceededException",
    "ItemCollectionSizeLimitExceeded",
    "IdempotentParameterMismatchException",
];

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Build from the standard AWS environment (region, credentials,
    /// `AWS_ENDPOINT_URL` for a local endpoint such as moto).
    pub async fn from_env(table: String) -> DynamoStore {
        let conf = aws_config::load_defaults(BehaviorVersion::latest()).await;
        DynamoStore::new(Client::new(&conf), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table (pk S HASH, sk S RANGE, on-demand) if it does not
    /// exist, wait until it is ACTIVE, and enable TTL on `ttl`.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table = %self.table, "created DynamoDB table"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk_err("CreateTable", e)),
        }
        self.wait_active().await?;
        self.enable_ttl().await
    }

    async fn wait_active(&self) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| sdk_err("DescribeTable", e))?;
            let status = out.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "table {} is not ACTIVE",
                    self.table
                )));
            }
            tokio::time::sleep(TABLE_POLL_STEP).await;
        }
    }

    async fn enable_ttl(&self) -> Result<(), StoreError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeTimeToLive", e))?;
        let desc = current.time_to_live_description();
        let enabled = desc
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        if enabled && desc.and_then(|d| d.attribute_name()) == Some(TTL) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TTL)
            .enabled(true)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateTimeToLive", e))?;
        Ok(())
    }

    async fn put_item(
        &self,
        item: AvMap,
        ex: Expr,
        cond: Option<String>,
    ) -> Result<(), StoreError> {
        let (names, values) = ex.finish();
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    Err(condition_failed(0, c.item()))
                }
                other => Err(service_err("PutItem", &other)),
            },
            Err(e) => Err(sdk_err("PutItem", e)),
        }
    }

    async fn update_item(&self, p: Prepared) -> Result<(), StoreError> {
        let (names, values) = p.ex.finish();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(p.key))
            .set_update_expression(p.update)
            .set_condition_expression(p.cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    Err(condition_failed(0, c.item()))
                }
                other => Err(service_err("UpdateItem", &other)),
            },
            Err(e) => Err(sdk_err("UpdateItem", e)),
        }
    }

    async fn delete_item(&self, p: Prepared) -> Result<(), StoreError> {
        let (names, values) = p.ex.finish();
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(p.key))
            .set_condition_expression(p.cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                DeleteItemError::ConditionalCheckFailedException(c) => {
                    Err(condition_failed(0, c.item()))
                }
                other => Err(service_err("DeleteItem", &other)),
            },
            Err(e) => Err(sdk_err("DeleteItem", e)),
        }
    }

    /// One `TransactWriteItem` for a prepared write.
    fn transact_item(&self, p: Prepared) -> Result<TransactWriteItem, StoreError> {
        let (names, values) = p.ex.finish();
        let all_old = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        let built = match p.kind {
            Kind::Put(item) => Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(p.cond)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(all_old)
                .build()
                .map(|x| TransactWriteItem::builder().put(x).build()),
            Kind::Update => Update::builder()
                .table_name(&self.table)
                .set_key(Some(p.key))
                .set_update_expression(p.update)
                .set_condition_expression(p.cond)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(all_old)
                .build()
                .map(|x| TransactWriteItem::builder().update(x).build()),
            Kind::Delete => Delete::builder()
                .table_name(&self.table)
                .set_key(Some(p.key))
                .set_condition_expression(p.cond)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(all_old)
                .build()
                .map(|x| TransactWriteItem::builder().delete(x).build()),
            Kind::Check => ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(p.key))
                .set_condition_expression(p.cond)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(all_old)
                .build()
                .map(|x| TransactWriteItem::builder().condition_check(x).build()),
        };
        built.map_err(|e| StoreError::Invalid(e.to_string()))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_av(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        out.item().map(from_av_map).transpose()
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let limit = q.limit.clamp(1, MAX_QUERY_LIMIT);
        let mut ex = Expr::default();
        let Some(key_cond) = key_condition(&mut ex, q) else {
            return Ok(Page::default());
        };
        let start = q
            .after
            .as_ref()
            .map(|sk| key_av(&Key::new(q.pk.clone(), sk.clone())));
        let (names, values) = ex.finish();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_exclusive_start_key(start)
            .scan_index_forward(!q.descending)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("Query", e))?;
        let mut items = out
            .items()
            .iter()
            .map(from_av_map)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().and_then(Key::of).map(|k| k.sk)
        } else {
            let lek = out.last_evaluated_key();
            lek.and_then(|k| k.get(SK))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        Ok(Page { items, next })
    }

    async fn write(&self, write: Write) -> Result<(), StoreError> {
        let p = prepare(&write)?;
        match p.kind {
            Kind::Put(item) => self.put_item(item, p.ex, p.cond).await,
            Kind::Update => {
                self.update_item(Prepared {
                    kind: Kind::Update,
                    ..p
                })
                .await
            }
            Kind::Delete => {
                self.delete_item(Prepared {
                    kind: Kind::Delete,
                    ..p
                })
                .await
            }
            Kind::Check => Err(StoreError::Invalid(
                "a check is only valid in a transaction".into(),
            )),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        let mut items = Vec::with_capacity(writes.len());
        for w in &writes {
            items.push(self.transact_item(prepare(w)?)?);
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    Err(cancelled(c.cancellation_reasons()))
                }
                other => Err(service_err("TransactWriteItems", &other)),
            },
            Err(e) => Err(sdk_err("TransactWriteItems", e)),
        }
    }
}

/// `pk = :pk` plus the sort-key part; `None` when the range is empty.
fn key_condition(ex: &mut Expr, q: &Query) -> Option<String> {
    let pk = ex.name(PK);
    let pkv = ex.value(AttributeValue::S(q.pk.clone()));
    let mut out = format!("{pk} = {pkv}");
    match &q.range {
        SkRange::All => {}
        SkRange::Prefix(p) if p.is_empty() => {}
        SkRange::Prefix(p) => {
            let sk = ex.name(SK);
            let v = ex.value(AttributeValue::S(p.clone()));
            out.push_str(&format!(" AND begins_with({sk}, {v})"));
        }
        SkRange::Between(a, b) if a > b => return None,
        // DynamoDB refuses an empty string as a key value: "" is the lowest
        // bound anyway.
        SkRange::Between(a, b) if a.is_empty() => {
            let sk = ex.name(SK);
            let v = ex.value(AttributeValue::S(b.clone()));
            out.push_str(&format!(" AND {sk} <= {v}"));
        }
        SkRange::Between(a, b) => {
            let sk = ex.name(SK);
            let va = ex.value(AttributeValue::S(a.clone()));
            let vb = ex.value(AttributeValue::S(b.clone()));
            out.push_str(&format!(" AND {sk} BETWEEN {va} AND {vb}"));
        }
    }
    Some(out)
}

/// What one write becomes on the wire.
enum Kind {
    Put(AvMap),
    Update,
    Delete,
    Check,
}

struct Prepared {
    kind: Kind,
    key: AvMap,
    update: Option<String>,
    cond: Option<String>,
    ex: Expr,
}

fn prepare(w: &Write) -> Result<Prepared, StoreError> {
    let key = w.key()?;
    let mut ex = Expr::default();
    let (kind, update) = match w {
        Write::Put { item, .. } => (Kind::Put(to_av_map(item)), None),
        Write::Update { ops, .. } => (Kind::Update, Some(ex.update(ops)?)),
        Write::Delete { .. } => (Kind::Delete, None),
        Write::Check { .. } => (Kind::Check, None),
    };
    let cond = w.cond().map(|c| ex.cond(c));
    Ok(Prepared {
        kind,
        key: key_av(&key),
        update,
        cond,
        ex,
    })
}

/// Placeholder names (#n0 …) and values (:v0 …) of one request. Only what an
/// expression uses is registered: DynamoDB refuses unused placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    placeholder_of: HashMap<String, String>,
    values: AvMap,
}

impl Expr {
    fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.placeholder_of.get(n) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), n.to_owned());
        self.placeholder_of.insert(n.to_owned(), p.clone());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    fn finish(self) -> (Option<HashMap<String, String>>, Option<AvMap>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }

    /// DynamoDB has no literal true/false: tautologies on the key attribute.
    fn always(&mut self, truth: bool) -> String {
        let pk = self.name(PK);
        let op = if truth { "OR" } else { "AND" };
        format!("(attribute_exists({pk}) {op} attribute_not_exists({pk}))")
    }

    fn cond(&mut self, c: &Cond) -> String {
        match c {
            Cond::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Cond::Exists => format!("attribute_exists({})", self.name(PK)),
            Cond::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => self.compare(a, "=", v),
            Cond::Ge(a, v) => self.compare(a, ">=", v),
            Cond::Lt(a, v) => self.compare(a, "<", v),
            Cond::In(_, vs) if vs.is_empty() => self.always(false),
            Cond::In(a, vs) => {
                let n = self.name(a);
                let list: Vec<String> = vs.iter().map(|v| self.value(to_av(v))).collect();
                format!("{n} IN ({})", list.join(", "))
            }
            Cond::And(cs) if cs.is_empty() => self.always(true),
            Cond::Or(cs) if cs.is_empty() => self.always(false),
            Cond::And(cs) => self.join(cs, " AND "),
            Cond::Or(cs) => self.join(cs, " OR "),
        }
    }

    fn compare(&mut self, a: &str, op: &str, v: &Attr) -> String {
        let n = self.name(a);
        let v = self.value(to_av(v));
        format!("{n} {op} {v}")
    }

    fn join(&mut self, cs: &[Cond], sep: &str) -> String {
        let parts: Vec<String> = cs.iter().map(|c| self.cond(c)).collect();
        format!("({})", parts.join(sep))
    }

    /// The update expression (`SET … ADD … REMOVE …`).
    fn update(&mut self, ops: &[UpdateOp]) -> Result<String, StoreError> {
        check_update(ops)?;
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            let (UpdateOp::Set(attr, _)
            | UpdateOp::Add(attr, _)
            | UpdateOp::Append(attr, _)
            | UpdateOp::Remove(attr)) = op;
            let n = self.name(attr);
            match op {
                UpdateOp::Set(_, v) => set.push(format!("{n} = {}", self.value(to_av(v)))),
                UpdateOp::Add(_, d) => add.push(format!(
                    "{n} {}",
                    self.value(AttributeValue::N(d.to_string()))
                )),
                UpdateOp::Append(_, vs) => {
                    let empty = self.value(AttributeValue::L(Vec::new()));
                    let v = self.value(AttributeValue::L(vs.iter().map(to_av).collect()));
                    set.push(format!(
                        "{n} = list_append(if_not_exists({n}, {empty}), {v})"
                    ));
                }
                UpdateOp::Remove(_) => remove.push(n),
            }
        }
        let sections: Vec<String> = [("SET", set), ("ADD", add), ("REMOVE", remove)]
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(kw, parts)| format!("{kw} {}", parts.join(", ")))
            .collect();
        Ok(sections.join(" "))
    }
}

fn to_av(a: &Attr) -> AttributeValue {
    match a {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.to_string()),
        Attr::B(b) => AttributeValue::Bool(*b),
        Attr::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
        Attr::L(l) => AttributeValue::L(l.iter().map(to_av).collect()),
    }
}

fn from_av(v: &AttributeValue) -> Result<Attr, StoreError> {
    Ok(match v {
        AttributeValue::S(s) => Attr::S(s.clone()),
        AttributeValue::N(n) => Attr::N(
            n.parse()
                .map_err(|_| StoreError::Invalid(format!("number {n} is not a 64-bit integer")))?,
        ),
        AttributeValue::Bool(b) => Attr::B(*b),
        AttributeValue::M(m) => Attr::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
                .collect::<Result<BTreeMap<_, _>, StoreError>>()?,
        ),
        AttributeValue::L(l) => Attr::L(l.iter().map(from_av).collect::<Result<Vec<_>, _>>()?),
        _ => {
            return Err(StoreError::Invalid(
                "unsupported DynamoDB attribute type".into(),
            ))
        }
    })
}

fn to_av_map(item: &Item) -> AvMap {
    item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()
}

fn from_av_map(m: &AvMap) -> Result<Item, StoreError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
        .collect()
}

fn key_av(key: &Key) -> AvMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn condition_failed(index: usize, old: Option<&AvMap>) -> StoreError {
    match old.map(from_av_map).transpose() {
        Ok(old) => StoreError::ConditionFailed { index, old },
        Err(e) => e,
    }
}

/// A cancelled transaction: the first failed condition wins; otherwise a
/// conflict or throttling is retryable and anything else is refused.
fn cancelled(reasons: &[CancellationReason]) -> StoreError {
    let failed = reasons
        .iter()
        .enumerate()
        .find(|(_, r)| r.code() == Some("ConditionalCheckFailed"));
    if let Some((index, r)) = failed {
        return condition_failed(index, r.item());
    }
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.code())
        .filter(|c| *c != "None")
        .collect();
    let msg = format!("TransactWriteItems cancelled: {}", codes.join(", "));
    if codes.iter().any(|c| RETRYABLE_CODES.contains(c)) {
        StoreError::Retryable(msg)
    } else {
        StoreError::Invalid(msg)
    }
}

/// Map a service error by its code; only the code and AWS's message are kept.
fn service_err(op: &str, e: &impl ProvideErrorMetadata) -> StoreError {
    let code = e.code().unwrap_or("Unknown");
    let msg = format!("{op}: {code}: {}", e.message().unwrap_or(""));
    if RETRYABLE_CODES.contains(&code) {
        StoreError::Retryable(msg)
    } else if INVALID_CODES.contains(&code) {
        StoreError::Invalid(msg)
    } else {
        StoreError::Unavailable(msg)
    }
}

fn sdk_err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: SdkError<E>,
) -> StoreError {
    match e {
        SdkError::ServiceError(se) => service_err(op, se.err()),
        SdkError::ConstructionFailure(_) => {
            StoreError::Invalid(format!("{op}: request could not be built"))
        }
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{op}: timed out")),
        other => StoreError::Unavailable(format!(
            "{op}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip_through_attribute_values() {
        let mut m = BTreeMap::new();
        m.insert(
            "k".to_owned(),
            Attr::L(vec![Attr::N(-1), Attr::B(false), Attr::S(String::new())]),
        );
        let a = Attr::M(m);
        assert_eq!(from_av(&to_av(&a)), Ok(a));
        assert!(from_av(&AttributeValue::N("1.5".into())).is_err());
        assert!(from_av(&AttributeValue::N("1e40".into())).is_err());
    }

    #[test]
    fn expressions_use_placeholders_only() {
        let mut ex = Expr::default();
        let c = Cond::And(vec![
            Cond::Exists,
            Cond::Or(vec![
                Cond::eq("status", "new"),
                Cond::In("n".into(), vec![Attr::N(1), Attr::N(2)]),
            ]),
            Cond::AttrNotExists("x".into()),
        ]);
        let s = ex.cond(&c);
        assert_eq!(
            s,
            "(attribute_exists(#n0) AND (#n1 = :v0 OR #n2 IN (:v1, :v2)) AND attribute_not_exists(#n3))"
        );
        let ops = [
            UpdateOp::set("a", 1),
            UpdateOp::Add("b".into(), 2),
            UpdateOp::Append("c".into(), vec![Attr::B(true)]),
            UpdateOp::Remove("d".into()),
        ];
        let u = ex.update(&ops);
        assert_eq!(
            u,
            Ok("SET #n4 = :v3, #n6 = list_append(if_not_exists(#n6, :v5), :v6) ADD #n5 :v4 REMOVE #n7".into())
        );
        assert!(Expr::default().update(&[UpdateOp::set("pk", "x")]).is_err());
        assert!(Expr::default()
            .update(&[UpdateOp::set("a", 1), UpdateOp::Remove("a".into())])
            .is_err());
        assert!(Expr::default().update(&[]).is_err());
    }

    #[test]
    fn cancellation_reasons_map_to_errors() {
        let none = CancellationReason::builder().code("None").build();
        let ccf = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("pk", AttributeValue::S("p".into()))
            .item("sk", AttributeValue::S("s".into()))
            .build();
        let conflict = CancellationReason::builder()
            .code("TransactionConflict")
            .build();
        let old = Some(Item::from([
            ("pk".to_owned(), Attr::from("p")),
            ("sk".to_owned(), Attr::from("s")),
        ]));
        assert_eq!(
            cancelled(&[none.clone(), ccf]),
            StoreError::ConditionFailed { index: 1, old }
        );
        assert!(matches!(
            cancelled(&[none, conflict]),
            StoreError::Retryable(_)
        ));
        let invalid = CancellationReason::builder()
            .code("ValidationError")
            .build();
        assert!(matches!(cancelled(&[invalid]), StoreError::Invalid(_)));
    }
}
