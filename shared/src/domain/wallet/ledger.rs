//! The ledger: the only way a wallet balance changes. Every movement is ONE
//! transaction of (balance item, ledger entry, whatever the caller adds):
//!
//! - the entry is put under its txn id with `attribute_not_exists`: a txn
//!   id moves money once, ever; a repeat finds the first entry and returns it;
//! - the balance is rewritten under optimistic concurrency (`version` must
//!   be what was read), so the entry can record the balances after it and
//!   limits (available ≥ 0, held ≥ 0) are checked against the real values;
//!   a lost race re-reads and retries, bounded.
//!
//! Balances are never edited any other way, so balance = sum of entries.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::ids::{PlayerId, TxnId};
use crate::money::{format_minor, Currency};
use crate::store::{Attr, Cond, Item, ItemExt, Query, SkRange, StoreError, UpdateOp, Write};

use crate::domain::Ctx;
use crate::schema::keys;

/// Lost optimistic races retried before answering 503 (retry-safe).
const MAX_RACES: usize = 64;
/// Ledger entries read per page when auditing a wallet.
const AUDIT_PAGE: usize = 500;
/// Pages one audit reads at most (a million entries).
const MAX_AUDIT_PAGES: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Credit,
    Debit,
    Hold,
    HoldSettled,
    HoldReleased,
    Refund,
    Chargeback,
    Adjustment,
}

impl EntryKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Credit => "credit",
            EntryKind::Debit => "debit",
            EntryKind::Hold => "hold",
            EntryKind::HoldSettled => "hold_settled",
            EntryKind::HoldReleased => "hold_released",
            EntryKind::Refund => "refund",
            EntryKind::Chargeback => "chargeback",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

/// One movement of a player's wallet in one currency.
#[derive(Debug, Clone)]
pub struct Movement {
    pub player: PlayerId,
    pub currency: Currency,
    pub txn: TxnId,
    pub kind: EntryKind,
    /// Change of the available balance (minor units, signed).
    pub available_delta: i64,
    /// Change of the held amount (minor units, signed).
    pub held_delta: i64,
    /// Change of the amount wagered / still to wager (wagering requirement).
    pub wagered_delta: i64,
    pub wager_required_delta: i64,
    pub reason: String,
    /// Related ids recorded on the entry: payment_id, payout_id, round_id…
    pub related: Vec<(&'static str, String)>,
    /// Refunds and chargebacks may take available below zero (then flagged).
    pub may_go_negative: bool,
    /// Refused unless the balance it is written over has nothing left to
    /// wager (withdrawals): checked under the same optimistic condition as
    /// the balance itself, so no bet or deposit can slip in between.
    pub requires_wagering_done: bool,
}

impl Movement {
    pub fn new(player: &PlayerId, currency: Currency, txn: TxnId, kind: EntryKind) -> Movement {
        Movement {
            player: player.clone(),
            currency,
            txn,
            kind,
            available_delta: 0,
            held_delta: 0,
            wagered_delta: 0,
            wager_required_delta: 0,
            reason: kind.as_str().to_owned(),
            related: Vec::new(),
            may_go_negative: false,
            requires_wagering_done: false,
        }
    }
}

/// A wallet balance as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub available: i64,
    pub held: i64,
    pub wagered: i64,
    pub wager_required: i64,
    /// 0 = never written under versioning.
    pub version: i64,
}

impl Balance {
    pub fn from_item(it: Option<&Item>) -> Balance {
        let n = |name: &str| it.and_then(|i| i.int_attr(name)).unwrap_or(0);
        Balance {
            available: n("available"),
            held: n("held"),
            wagered: n("wagered"),
            wager_required: n("wager_required"),
            version: n("version"),
        }
    }

    /// Still to wager before a withdrawal (never negative).
    pub fn to_wager(&self) -> i64 {
        (self.wager_required - self.wagered).max(0)
    }
}

/// The ledger entry a movement wrote (or found, for a repeat).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub item: Item,
    /// False when the txn id had already been applied.
    pub fresh: bool,
}

impl Entry {
    pub fn available_after(&self) -> i64 {
        self.item.int_attr("available_after").unwrap_or(0)
    }
    pub fn kind(&self) -> &str {
        self.item.str_attr("kind").unwrap_or_default()
    }
}

/// Why a movement was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Available would go below zero (and the movement may not).
    InsufficientFunds { available: i64 },
    /// Held would go below zero: a settle/release without its hold.
    NoHold,
    /// Deposits still to wager before money may leave.
    WageringIncomplete { to_wager: i64 },
    /// A condition of the caller's extra writes failed (index among them).
    Extra { index: usize, old: Option<Item> },
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Moved(Entry),
    Refused(Refusal),
}

fn checked(a: i64, b: i64) -> Result<i64, Error> {
    a.checked_add(b)
        .ok_or_else(|| Error::Internal("balance overflow".into()))
}

/// Apply one movement, with `extra` writes in the same transaction (their
/// conditions are the caller's: e.g. the payment's status). Exactly once per
/// txn id; a repeat returns the first entry with `fresh: false`.
pub async fn apply(ctx: &Ctx, m: &Movement, extra: &[Write]) -> Result<Outcome, Error> {
    let entry_key = keys::ledger(&m.player, &m.txn);
    for _ in 0..MAX_RACES {
        if let Some(old) = ctx.store.get(&entry_key).await? {
            return Ok(Outcome::Moved(Entry {
                item: old,
                fresh: false,
            }));
        }
        let bal_key = keys::balance(&m.player, m.currency);
        let before = Balance::from_item(ctx.store.get(&bal_key).await?.as_ref());
        let after = Balance {
            available: checked(before.available, m.available_delta)?,
            held: checked(before.held, m.held_delta)?,
            wagered: checked(before.wagered, m.wagered_delta)?.max(0),
            wager_required: checked(before.wager_required, m.wager_required_delta)?,
            version: before.version + 1,
        };
        if after.held < 0 {
            return Ok(Outcome::Refused(Refusal::NoHold));
        }
        if m.requires_wagering_done && before.to_wager() > 0 {
            return Ok(Outcome::Refused(Refusal::WageringIncomplete {
                to_wager: before.to_wager(),
            }));
        }
        if after.available < 0 && m.available_delta < 0 && !m.may_go_negative {
            return Ok(Outcome::Refused(Refusal::InsufficientFunds {
                available: before.available,
            }));
        }
        let entry = entry_item(m, &after, ctx.now_ms());
        let mut writes = vec![
            balance_write(m, &before, &after),
            Write::Put {
                item: entry.clone(),
                cond: Some(Cond::NotExists),
            },
        ];
        writes.extend_from_slice(extra);
        match ctx.store.transact(writes).await {
            Ok(()) => {
                if after.available < 0 {
                    tracing::warn!(player_id = %m.player, txn_id = %m.txn, kind = m.kind.as_str(), "wallet went negative (flagged)");
                }
                return Ok(Outcome::Moved(Entry {
                    item: entry,
                    fresh: true,
                }));
            }
            // The balance changed since it was read, or the entry appeared:
            // read again (a repeat then returns the entry).
            Err(StoreError::ConditionFailed { index: 0 | 1, .. }) => continue,
            Err(StoreError::ConditionFailed { index, old }) => {
                return Ok(Outcome::Refused(Refusal::Extra {
                    index: index - 2,
                    old,
                }))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable(format!(
        "wallet of {} too contended; retry",
        m.player
    )))
}

fn balance_write(m: &Movement, before: &Balance, after: &Balance) -> Write {
    let unchanged = if before.version == 0 {
        Cond::AttrNotExists("version".into())
    } else {
        Cond::eq("version", before.version)
    };
    let mut ops = vec![
        UpdateOp::set("available", after.available),
        UpdateOp::set("held", after.held),
        UpdateOp::set("wagered", after.wagered),
        UpdateOp::set("wager_required", after.wager_required),
        UpdateOp::set("version", after.version),
    ];
    if after.available < 0 {
        ops.push(UpdateOp::set("flagged_negative", true));
    }
    Write::Update {
        key: keys::balance(&m.player, m.currency),
        ops,
        cond: Some(unchanged),
    }
}

fn entry_item(m: &Movement, after: &Balance, at_ms: i64) -> Item {
    let mut it: Item = BTreeMap::new();
    let key = keys::ledger(&m.player, &m.txn);
    it.insert("pk".into(), Attr::S(key.pk));
    it.insert("sk".into(), Attr::S(key.sk));
    let amount = m
        .available_delta
        .unsigned_abs()
        .max(m.held_delta.unsigned_abs());
    let attrs: [(&str, Attr); 13] = [
        ("txn_id", Attr::from(m.txn.as_str())),
        ("kind", Attr::from(m.kind.as_str())),
        ("reason", Attr::from(m.reason.as_str())),
        ("amount", Attr::N(i64::try_from(amount).unwrap_or(i64::MAX))),
        ("available_delta", Attr::N(m.available_delta)),
        ("held_delta", Attr::N(m.held_delta)),
        ("available_after", Attr::N(after.available)),
        ("held_after", Attr::N(after.held)),
        // The wagering after it (AML's pass-through scenario reads it).
        ("wagered_after", Attr::N(after.wagered)),
        ("currency", Attr::from(m.currency.code())),
        ("at_ms", Attr::N(at_ms)),
        ("flagged", Attr::B(after.available < 0)),
        ("version", Attr::N(after.version)),
    ];
    for (k, v) in attrs {
        it.insert(k.into(), v);
    }
    for (k, v) in &m.related {
        it.insert((*k).into(), Attr::from(v.as_str()));
    }
    it
}

/// A wallet's stored balances against the sum of all its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub balances: BTreeMap<Currency, Balance>,
    /// Per currency: (sum of available deltas, sum of held deltas, entries).
    pub sums: BTreeMap<Currency, (i64, i64, usize)>,
    /// Entries whose recorded balances-after disagree with the running sum.
    pub broken_chain: Vec<String>,
}

impl Audit {
    /// Balance = sum of entries, held ≥ 0, available ≥ 0 unless flagged.
    pub fn holds(&self) -> bool {
        let sums_match = self.balances.iter().all(|(c, b)| {
            let (a, h, _) = self.sums.get(c).copied().unwrap_or_default();
            (a, h) == (b.available, b.held)
        });
        let no_orphans = self.sums.keys().all(|c| self.balances.contains_key(c));
        let bounds = self.balances.values().all(|b| b.held >= 0);
        sums_match && no_orphans && bounds && self.broken_chain.is_empty()
    }
}

/// Read a whole wallet (paged) and check it. For tests and operators.
/// Movements may commit while it reads: it reads the balances before and
/// after the entries and retries until both reads agree (a snapshot).
pub async fn audit(ctx: &Ctx, player: &PlayerId) -> Result<Audit, Error> {
    for _ in 0..MAX_RACES {
        let before = read_balances(ctx, player).await?;
        let entries = read_entries(ctx, player).await?;
        if read_balances(ctx, player).await? == before {
            return Ok(check(before, entries));
        }
    }
    Err(Error::Unavailable(format!(
        "wallet of {player} kept moving during the audit"
    )))
}

async fn read_balances(ctx: &Ctx, player: &PlayerId) -> Result<BTreeMap<Currency, Balance>, Error> {
    let q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::BALANCE_PREFIX.into()),
        AUDIT_PAGE,
    );
    Ok(ctx
        .store
        .query(&q)
        .await?
        .items
        .iter()
        .filter_map(|it| {
            let c = it.str_attr("sk").and_then(keys::balance_currency)?;
            Some((c, Balance::from_item(Some(it))))
        })
        .collect())
}

async fn read_entries(ctx: &Ctx, player: &PlayerId) -> Result<Vec<Item>, Error> {
    let mut q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::LEDGER_PREFIX.into()),
        AUDIT_PAGE,
    );
    let mut entries = Vec::new();
    for _ in 0..MAX_AUDIT_PAGES {
        let page = ctx.store.query(&q).await?;
        entries.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(entries),
        }
    }
    Err(Error::validation(
        "player_id",
        format!(
            "more than {} ledger entries: too many to audit in one call",
            MAX_AUDIT_PAGES * AUDIT_PAGE
        ),
    ))
}

fn check(balances: BTreeMap<Currency, Balance>, mut entries: Vec<Item>) -> Audit {
    let mut audit = Audit {
        balances,
        ..Audit::default()
    };
    // Each entry carries the balance version it produced: in version order
    // the recorded balances-after must be exactly the running sums.
    entries.sort_by_key(|e| e.int_attr("version").unwrap_or(0));
    for e in &entries {
        let Some(c) = e.str_attr("currency").and_then(|c| Currency::parse(c).ok()) else {
            continue;
        };
        let slot = audit.sums.entry(c).or_default();
        slot.0 += e.int_attr("available_delta").unwrap_or(0);
        slot.1 += e.int_attr("held_delta").unwrap_or(0);
        slot.2 += 1;
        let recorded = (e.int_attr("available_after"), e.int_attr("held_after"));
        if recorded != (Some(slot.0), Some(slot.1)) || e.int_attr("version") != Some(slot.2 as i64)
        {
            let txn = e.str_attr("txn_id").unwrap_or_default();
            audit.broken_chain.push(format!(
                "{txn}: recorded {:?} after, running sum {} / {} at entry {}",
                recorded,
                format_minor(slot.0, c),
                format_minor(slot.1, c),
                slot.2
            ));
        }
        // Below zero only through a refund or chargeback, and then flagged.
        let negative = slot.0 < 0;
        let may = matches!(e.str_attr("kind"), Some("refund" | "chargeback"));
        let flagged = e.get("flagged").and_then(Attr::as_bool) == Some(true);
        if negative && (!flagged || (!may && e.int_attr("available_delta").unwrap_or(0) < 0)) {
            let txn = e.str_attr("txn_id").unwrap_or_default();
            audit.broken_chain.push(format!(
                "{txn}: negative balance without a flagged refund/chargeback"
            ));
        }
    }
    audit
}
