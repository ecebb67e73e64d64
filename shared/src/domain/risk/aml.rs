//! AML monitoring: every completed money movement (a credited deposit, a
//! held payout) is already a ledger entry, which carries what the scenarios
//! need (instrument, country, wagering after it) under a key ordered by the
//! movement's time (`dep_<ulid>`, `poh_<ulid>`): the player's ledger is the
//! movement log, read by time range, and nothing is written apart. After a
//! movement the scenarios run over it; a hit opens an alert with its
//! evidence for the compliance officer.
//!
//! Scenarios (parameters in [`AmlPolicy`], per jurisdiction preset):
//! - `cdd_threshold`: linked movements of one kind reach the customer-due-
//!   diligence threshold inside the linked window (the movement that crosses
//!   it opens the alert);
//! - `structuring`: several movements just under the threshold inside a window;
//! - `pass_through`: a payout while the window's deposits were barely wagered;
//! - `unusual_route`: a payout to an instrument or country no deposit came from.
//!
//! Exactly once, crash or not: the movement is in the ledger once (its txn
//! id), and every alert is a conditional put keyed by the movement's id, so
//! running a movement's step again (a redelivered capture, a retried
//! payout) alerts nothing twice.
//! Alerts of `structuring` and `pass_through` hold the player's payouts for
//! review while open (`hold_payouts`).

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::{format_minor, Currency, Money};
use crate::schema::keys;
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, StoreError, UpdateOp, Write};

use crate::domain::policy::AmlPolicy;
use crate::domain::Ctx;

/// Movements read per scenario window at most.
const MAX_LOG: usize = 500;
/// Alerts listed at most.
pub const MAX_ALERTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    Deposit,
    Payout,
}

impl MoveKind {
    fn as_str(&self) -> &'static str {
        match self {
            MoveKind::Deposit => "deposit",
            MoveKind::Payout => "payout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    CddThreshold,
    Structuring,
    PassThrough,
    UnusualRoute,
}

impl Scenario {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scenario::CddThreshold => "cdd_threshold",
            Scenario::Structuring => "structuring",
            Scenario::PassThrough => "pass_through",
            Scenario::UnusualRoute => "unusual_route",
        }
    }
    fn short(&self) -> &'static str {
        match self {
            Scenario::CddThreshold => "cdd",
            Scenario::Structuring => "str",
            Scenario::PassThrough => "pt",
            Scenario::UnusualRoute => "route",
        }
    }
    fn parse(s: &str) -> Option<Scenario> {
        [
            Scenario::CddThreshold,
            Scenario::Structuring,
            Scenario::PassThrough,
            Scenario::UnusualRoute,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    /// Whether an open alert of this scenario holds the player's payouts.
    pub fn holds_payouts(&self) -> bool {
        matches!(self, Scenario::Structuring | Scenario::PassThrough)
    }
}

/// One completed movement as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub id: String,
    pub kind: MoveKind,
    pub amount: Money,
    pub at_ms: i64,
    pub instrument: Option<String>,
    pub country: Option<String>,
    /// The player's lifetime wagering (minor units) when it was logged.
    pub wagered_total: i64,
}

impl Logged {
    /// A ledger entry as a movement: a deposit's credit or a payout's hold.
    fn from_entry(it: &Item) -> Option<Logged> {
        let txn = it.str_attr("txn_id")?;
        let (kind, id) = match txn.split_once('_')? {
            (DEPOSIT_TXN, tail) => (
                MoveKind::Deposit,
                it.str_attr("payment_id")
                    .map_or_else(|| format!("pay_{tail}"), str::to_owned),
            ),
            (PAYOUT_HOLD_TXN, tail) => (
                MoveKind::Payout,
                it.str_attr("payout_id")
                    .map_or_else(|| format!("po_{tail}"), str::to_owned),
            ),
            _ => return None,
        };
        let currency = Currency::parse(it.str_attr("currency")?).ok()?;
        Some(Logged {
            id,
            kind,
            amount: Money::from_minor(it.int_attr("amount")?, currency).ok()?,
            at_ms: crate::ids::ulid_time_ms(txn)?,
            instrument: it.str_attr("instrument").map(str::to_owned),
            country: it.str_attr("country").map(str::to_owned),
            wagered_total: it.int_attr("wagered_after").unwrap_or(0),
        })
    }

    fn evidence(&self) -> Value {
        json!({"id": self.id, "kind": self.kind.as_str(), "amount": self.amount.to_decimal(),
               "currency": self.amount.currency().code(), "at_ms": self.at_ms})
    }
}

/// The txn-id kinds of the movements: a deposit's credit, a payout's hold.
const DEPOSIT_TXN: &str = "dep";
const PAYOUT_HOLD_TXN: &str = "poh";

/// What a movement's ledger entry carries for the scenarios (besides its
/// amount, currency and the wagering after it), as `related` ids.
pub fn entry_facts(instrument: Option<&str>, country: Option<&str>) -> Vec<(&'static str, String)> {
    [("instrument", instrument), ("country", country)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.to_owned())))
        .collect()
}

/// Which of the player's movements a read of the log takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movements {
    /// Deposits' credits only: what every scenario of a deposit and the
    /// risk checks compare with (one query, not two).
    Deposits,
    /// Deposits and payouts' holds.
    All,
}

impl Movements {
    fn txn_kinds(self) -> &'static [&'static str] {
        match self {
            Movements::Deposits => &[DEPOSIT_TXN],
            Movements::All => &[DEPOSIT_TXN, PAYOUT_HOLD_TXN],
        }
    }
}

/// The player's logged movements of `which` kinds in `[from_ms, to_ms]`,
/// oldest first (at most [`MAX_LOG`], the newest kept).
pub async fn recent(
    ctx: &Ctx,
    player: &PlayerId,
    which: Movements,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Logged>, Error> {
    let mut log = Vec::new();
    for kind in which.txn_kinds() {
        let mut q = Query::new(
            keys::wallet_pk(player),
            SkRange::Between(
                keys::ledger_time_sk(kind, from_ms, false),
                keys::ledger_time_sk(kind, to_ms, true),
            ),
            MAX_LOG,
        );
        q.descending = true;
        let page = ctx.store.query(&q).await?;
        log.extend(page.items.iter().filter_map(Logged::from_entry));
    }
    // The newest MAX_LOG of the kinds read, oldest first.
    log.sort_by_key(|l| std::cmp::Reverse(l.at_ms));
    log.truncate(MAX_LOG);
    log.reverse();
    Ok(log)
}

/// A scenario's hit: what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub scenario: Scenario,
    pub evidence: Value,
}

/// The movements of `m`'s kind and currency within `window_ms` of it, on
/// either side: a deposit credited late may have been made before others
/// already logged.
fn near<'a>(log: &'a [Logged], m: &Logged, window_ms: i64) -> Vec<&'a Logged> {
    log.iter()
        .filter(|l| {
            l.id != m.id
                && l.kind == m.kind
                && l.amount.currency() == m.amount.currency()
                && (l.at_ms - m.at_ms).abs() < window_ms
        })
        .collect()
}

/// A window of `window_ms` holding `m` in which `m` tips `reached` from
/// false to true, with its movements by time; whatever order the movements
/// were logged in, the one that completes a window is the one found.
fn tipped<'a>(
    others: &[&'a Logged],
    m: &'a Logged,
    window_ms: i64,
    reached: impl Fn(&[&Logged]) -> bool,
) -> Option<Vec<&'a Logged>> {
    let starts = others
        .iter()
        .map(|l| l.at_ms)
        .chain([m.at_ms])
        .filter(|s| *s <= m.at_ms && *s > m.at_ms - window_ms);
    for start in starts {
        let mut inside: Vec<&Logged> = others
            .iter()
            .filter(|l| l.at_ms >= start && l.at_ms < start + window_ms)
            .copied()
            .collect();
        if reached(&inside) {
            continue;
        }
        inside.push(m);
        if reached(&inside) {
            inside.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
            return Some(inside);
        }
    }
    None
}

fn evidence(window_ms: i64, threshold: i64, c: Currency, txns: &[&Logged], extra: Value) -> Value {
    let sum: i64 = txns.iter().map(|t| t.amount.minor()).sum();
    let mut e = json!({"window_ms": window_ms, "threshold": format_minor(threshold, c),
        "currency": c.code(), "sum": format_minor(sum, c), "count": txns.len(),
        "transactions": txns.iter().map(|t| t.evidence()).collect::<Vec<_>>()});
    if let (Some(e), Value::Object(more)) = (e.as_object_mut(), extra) {
        e.extend(more);
    }
    e
}

/// The scenarios for movement `m` against the player's log (which may or
/// may not hold `m` itself) and the player's lifetime wagering now (read by
/// a payout's scenarios only). Pure.
pub fn scenarios(p: &AmlPolicy, m: &Logged, log: &[Logged], wagered_now: i64) -> Vec<Finding> {
    let c = m.amount.currency();
    let Some(&threshold) = p.cdd_threshold.get(&c) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    // Linked movements crossing the threshold: this one tips a window over.
    let sum = |set: &[&Logged]| set.iter().map(|l| l.amount.minor()).sum::<i64>();
    let linked = near(log, m, p.linked_window_ms);
    if let Some(txns) = tipped(&linked, m, p.linked_window_ms, |set| sum(set) >= threshold) {
        found.push(Finding {
            scenario: Scenario::CddThreshold,
            evidence: evidence(p.linked_window_ms, threshold, c, &txns, json!({})),
        });
    }
    // Structuring: the Nth movement just under the threshold in a window.
    let band_from = threshold * i64::from(p.structuring_band_pct) / 100;
    let just_under = |l: &Logged| (band_from..threshold).contains(&l.amount.minor());
    if just_under(m) {
        let under: Vec<&Logged> = near(log, m, p.structuring_window_ms)
            .into_iter()
            .filter(|l| just_under(l))
            .collect();
        let enough = |set: &[&Logged]| set.len() >= p.structuring_count as usize;
        if let Some(txns) = tipped(&under, m, p.structuring_window_ms, enough) {
            found.push(Finding {
                scenario: Scenario::Structuring,
                evidence: evidence(
                    p.structuring_window_ms,
                    threshold,
                    c,
                    &txns,
                    json!({"band_from": format_minor(band_from, c)}),
                ),
            });
        }
    }
    if m.kind == MoveKind::Payout {
        found.extend(pass_through(p, m, log, wagered_now, threshold));
        found.extend(unusual_route(p, m, log));
    }
    found
}

fn deposits_before<'a>(log: &'a [Logged], m: &'a Logged) -> impl Iterator<Item = &'a Logged> + 'a {
    log.iter()
        .filter(move |l| l.kind == MoveKind::Deposit && l.at_ms <= m.at_ms)
}

fn pass_through(
    p: &AmlPolicy,
    m: &Logged,
    log: &[Logged],
    wagered_now: i64,
    threshold: i64,
) -> Option<Finding> {
    let c = m.amount.currency();
    if m.amount.minor() < threshold * i64::from(p.pass_through_min_pct) / 100 {
        return None;
    }
    let deposits: Vec<&Logged> = deposits_before(log, m)
        .filter(|l| l.amount.currency() == c && l.at_ms > m.at_ms - p.pass_through_window_ms)
        .collect();
    let first = deposits.first()?;
    let deposited: i64 = deposits.iter().map(|l| l.amount.minor()).sum();
    let wagered = (wagered_now - first.wagered_total).max(0);
    let low = i128::from(wagered) * 100
        < i128::from(deposited) * i128::from(p.pass_through_min_wager_pct);
    let mut txns = deposits.clone();
    txns.push(m);
    low.then(|| Finding {
        scenario: Scenario::PassThrough,
        evidence: evidence(
            p.pass_through_window_ms,
            threshold,
            c,
            &txns,
            json!({"deposited": format_minor(deposited, c), "wagered_since": format_minor(wagered, c),
                   "min_wager_pct": p.pass_through_min_wager_pct}),
        ),
    })
}

fn unusual_route(p: &AmlPolicy, m: &Logged, log: &[Logged]) -> Option<Finding> {
    let deposits: Vec<&Logged> = deposits_before(log, m).collect();
    let recent = &deposits[deposits.len().saturating_sub(p.route_lookback)..];
    let seen = |f: fn(&Logged) -> Option<&String>| -> Vec<&String> {
        recent.iter().filter_map(|l| f(l)).collect()
    };
    let (instruments, countries) = (
        seen(|l| l.instrument.as_ref()),
        seen(|l| l.country.as_ref()),
    );
    let other_instrument = m
        .instrument
        .as_ref()
        .is_some_and(|i| !instruments.is_empty() && !instruments.contains(&i));
    let other_country = m
        .country
        .as_ref()
        .is_some_and(|c| !countries.is_empty() && !countries.contains(&c));
    (other_instrument || other_country).then(|| Finding {
        scenario: Scenario::UnusualRoute,
        evidence: json!({"payout": m.evidence(), "payout_instrument": m.instrument, "payout_country": m.country,
            "deposit_instruments": instruments, "deposit_countries": countries,
            "deposits_compared": recent.len()}),
    })
}

/// Run the scenarios after `m` (in the ledger already); returns the
/// alerts opened now.
pub async fn after_movement(
    ctx: &Ctx,
    player: &PlayerId,
    m: &Logged,
) -> Result<Vec<String>, Error> {
    let p = &ctx.policies.aml;
    // Both sides of the movement: one made earlier may be credited later.
    // A deposit's scenarios (linked, structuring) compare it with deposits
    // in their windows only and read no wagering; a payout's read both
    // kinds, all of its past, and the wagering now.
    let (log, wagered_now) = match m.kind {
        MoveKind::Payout => {
            let window = p
                .linked_window_ms
                .max(p.structuring_window_ms)
                .max(p.pass_through_window_ms);
            let to_ms = m.at_ms.saturating_add(window);
            (
                recent(ctx, player, Movements::All, 0, to_ms).await?,
                wagered_total(ctx, player, m.amount.currency()).await?,
            )
        }
        MoveKind::Deposit => {
            let window = p.linked_window_ms.max(p.structuring_window_ms);
            let (from_ms, to_ms) = (
                m.at_ms.saturating_sub(window),
                m.at_ms.saturating_add(window),
            );
            let deposits = recent(ctx, player, Movements::Deposits, from_ms, to_ms).await?;
            (deposits, 0)
        }
    };
    let mut opened = Vec::new();
    for f in scenarios(p, m, &log, wagered_now) {
        let id = format!("al_{}_{}", f.scenario.short(), m.id);
        if open(ctx, player, &id, &f, m.at_ms).await? {
            tracing::warn!(alert_id = %id, player_id = %player, scenario = f.scenario.as_str(), "AML alert opened");
            opened.push(id);
        }
    }
    Ok(opened)
}

/// The player's lifetime wagering in `currency` (minor units).
pub async fn wagered_total(ctx: &Ctx, player: &PlayerId, currency: Currency) -> Result<i64, Error> {
    let b = ctx.store.get(&keys::balance(player, currency)).await?;
    Ok(crate::domain::wallet::ledger::Balance::from_item(b.as_ref()).wagered)
}

/// Open an alert (once); `false` when it was already open.
async fn open(
    ctx: &Ctx,
    player: &PlayerId,
    id: &str,
    f: &Finding,
    at_ms: i64,
) -> Result<bool, Error> {
    let status = [
        ("status", Attr::from("open")),
        ("scenario", Attr::from(f.scenario.as_str())),
    ];
    let main = item(
        &keys::aml_alert(id),
        [
            ("alert_id", Attr::from(id)),
            ("player", Attr::from(player.as_str())),
            ("opened_ms", Attr::N(at_ms)),
            ("evidence_json", Attr::from(f.evidence.to_string())),
        ]
        .into_iter()
        .chain(status.clone()),
    );
    let writes = vec![
        Write::Put {
            item: main,
            cond: Some(Cond::NotExists),
        },
        Write::Put {
            item: item(&keys::player_alert(player, id), status),
            cond: None,
        },
        Write::Put {
            item: item(
                &keys::open_alert(id),
                [("player", Attr::from(player.as_str()))],
            ),
            cond: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The open alert that holds this player's payouts, if any.
pub async fn holding_alert(ctx: &Ctx, player: &PlayerId) -> Result<Option<String>, Error> {
    if !ctx.policies.aml.hold_payouts {
        return Ok(None);
    }
    let q = Query::new(
        keys::player_pk(player),
        SkRange::Prefix(keys::PLAYER_ALERT_PREFIX.into()),
        MAX_ALERTS,
    );
    let page = ctx.store.query(&q).await?;
    Ok(page.items.iter().find_map(|it| {
        let holds = it.str_attr("status") == Some("open")
            && it
                .str_attr("scenario")
                .and_then(Scenario::parse)
                .is_some_and(|s| s.holds_payouts());
        let sk = it.str_attr(crate::store::SK)?;
        holds.then(|| sk.trim_start_matches(keys::PLAYER_ALERT_PREFIX).to_owned())
    }))
}

/// An alert as shown and exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub alert_id: String,
    pub player_id: String,
    pub scenario: String,
    pub status: String,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub closed_by: Option<String>,
    pub note: Option<String>,
    pub evidence: Value,
}

fn view_of(it: &Item) -> AlertView {
    let text = |n: &str| it.str_attr(n).unwrap_or_default().to_owned();
    AlertView {
        alert_id: text("alert_id"),
        player_id: text("player"),
        scenario: text("scenario"),
        status: text("status"),
        opened_at_ms: it.int_attr("opened_ms").unwrap_or(0),
        closed_at_ms: it.int_attr("closed_ms"),
        closed_by: it.str_attr("closed_by").map(str::to_owned),
        note: it.str_attr("note").map(str::to_owned),
        evidence: it
            .str_attr("evidence_json")
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or(Value::Null),
    }
}

pub fn check_alert_id(id: &str) -> Result<(), Error> {
    let ok = id.starts_with("al_")
        && id.len() <= 100
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation("alert_id", "must be an alert id (al_…)"))
    }
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<AlertView, Error> {
    check_alert_id(id)?;
    let it = ctx
        .store
        .get(&keys::aml_alert(id))
        .await?
        .ok_or(Error::NotFound { what: "alert" })?;
    Ok(view_of(&it))
}

/// `GET /v1/risk/alerts?player_id=&status=`: a player's alerts, or every
/// open alert when no player is given (newest first, at most [`MAX_ALERTS`]).
pub async fn list(
    ctx: &Ctx,
    player: Option<&PlayerId>,
    status: Option<&str>,
) -> Result<Vec<AlertView>, Error> {
    if let Some(s) = status {
        if s != "open" && s != "closed" {
            return Err(Error::validation("status", "must be open or closed"));
        }
    }
    let ids: Vec<String> = match player {
        Some(p) => {
            let q = Query::new(
                keys::player_pk(p),
                SkRange::Prefix(keys::PLAYER_ALERT_PREFIX.into()),
                MAX_ALERTS,
            );
            ctx.store
                .query(&q)
                .await?
                .items
                .iter()
                .filter_map(|it| it.str_attr(crate::store::SK))
                .map(|sk| sk.trim_start_matches(keys::PLAYER_ALERT_PREFIX).to_owned())
                .collect()
        }
        None if status == Some("closed") => {
            return Err(Error::validation(
                "player_id",
                "is required to list closed alerts",
            ))
        }
        None => {
            let q = Query::new(keys::ALERT_QUEUE_PK, SkRange::All, MAX_ALERTS);
            ctx.store
                .query(&q)
                .await?
                .items
                .iter()
                .filter_map(|it| it.str_attr(crate::store::SK).map(str::to_owned))
                .collect()
        }
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(it) = ctx.store.get(&keys::aml_alert(&id)).await? {
            let v = view_of(&it);
            if status.is_none_or(|s| v.status == s) {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| {
        b.opened_at_ms
            .cmp(&a.opened_at_ms)
            .then(b.alert_id.cmp(&a.alert_id))
    });
    Ok(out)
}

/// The body of `POST /v1/risk/alerts/{id}/close`: `{"note": "..."}`.
pub fn parse_close_note(b: &crate::domain::request::Body) -> Result<String, Error> {
    b.only(&["note"])?;
    let note = b.opt_str("note")?.unwrap_or_default();
    let max = crate::domain::risk::review::MAX_NOTE;
    if note.len() > max || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::validation(
            "note",
            format!("must be at most {max} characters of text"),
        ));
    }
    Ok(note.to_owned())
}

/// `POST /v1/risk/alerts/{id}/close {"note"}`: closed once (a repeat
/// answers the closed alert); it stops holding the player's payouts.
pub async fn close(ctx: &Ctx, id: &str, note: &str, actor: &str) -> Result<AlertView, Error> {
    let alert = get(ctx, id).await?;
    if alert.status == "closed" {
        return Ok(alert);
    }
    let player = PlayerId::parse(&alert.player_id).map_err(|e| Error::Internal(e.to_string()))?;
    let now = ctx.now_ms();
    let writes = vec![
        Write::Update {
            key: keys::aml_alert(id),
            ops: vec![
                UpdateOp::set("status", "closed"),
                UpdateOp::set("closed_ms", Attr::N(now)),
                UpdateOp::set("note", note),
                UpdateOp::set("closed_by", actor),
            ],
            cond: Some(Cond::eq("status", "open")),
        },
        Write::Update {
            key: keys::player_alert(&player, id),
            ops: vec![UpdateOp::set("status", "closed")],
            cond: None,
        },
        Write::Delete {
            key: keys::open_alert(id),
            cond: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(alert_id = %id, actor, audit = "alert_closed", "AML alert closed by an operator");
    get(ctx, id).await
}

/// The suspicious-activity report of an alert, as JSON.
pub fn sar_json(a: &AlertView, generated_ms: i64) -> Value {
    json!({
        "report": "suspicious_activity",
        "generated_at_ms": generated_ms,
        "alert_id": a.alert_id,
        "subject": {"player_id": a.player_id},
        "scenario": a.scenario,
        "status": a.status,
        "opened_at_ms": a.opened_at_ms,
        "closed_at_ms": a.closed_at_ms,
        "note": a.note,
        "evidence": a.evidence,
    })
}

fn csv_field(s: &str) -> String {
    // Quote every field; a leading formula character is neutralised.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The same report as CSV: one row per transaction of the evidence.
pub fn sar_csv(a: &AlertView) -> String {
    let mut out = String::from(
        "alert_id,player_id,scenario,status,transaction_id,kind,amount,currency,at_ms\n",
    );
    let txns = a.evidence["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| {
            a.evidence
                .get("payout")
                .cloned()
                .map(|p| vec![p])
                .unwrap_or_default()
        });
    for t in txns {
        let f = |n: &str| match &t[n] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            v => v.to_string(),
        };
        let row = [
            a.alert_id.clone(),
            a.player_id.clone(),
            a.scenario.clone(),
            a.status.clone(),
            f("id"),
            f("kind"),
            f("amount"),
            f("currency"),
            f("at_ms"),
        ];
        out.push_str(
            &row.iter()
                .map(|v| csv_field(v))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR).unwrap()
    }

    fn mv(id: &str, kind: MoveKind, minor: i64, at_ms: i64, wagered: i64) -> Logged {
        Logged {
            id: id.into(),
            kind,
            amount: eur(minor),
            at_ms,
            instrument: Some("tok_a".into()),
            country: Some("FI".into()),
            wagered_total: wagered,
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn linked_deposits_cross_the_threshold_once() {
        let p = AmlPolicy::default();
        let a = mv("pay_a", MoveKind::Deposit, 120_000, 0, 0);
        let b = mv("pay_b", MoveKind::Deposit, 90_000, H, 0);
        let found = scenarios(&p, &b, std::slice::from_ref(&a), 0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].scenario, Scenario::CddThreshold);
        assert_eq!(found[0].evidence["sum"], "2100.00");
        assert_eq!(
            found[0].evidence["transactions"].as_array().unwrap().len(),
            2
        );
        // A third one over the threshold already reached opens nothing new;
        // outside the window they are not linked.
        let c = mv("pay_c", MoveKind::Deposit, 10_000, 2 * H, 0);
        assert!(scenarios(&p, &c, &[a.clone(), b.clone()], 0).is_empty());
        let late = mv("pay_d", MoveKind::Deposit, 90_000, 25 * H, 0);
        assert!(scenarios(&p, &late, &[a.clone(), b.clone()], 0)
            .iter()
            .all(|f| f.scenario != Scenario::CddThreshold));
        // Credited out of order: the earlier deposit, logged last, tips it.
        let found = scenarios(&p, &a, std::slice::from_ref(&b), 0);
        assert_eq!(found.len(), 1);
        let ids: Vec<&str> = found[0].evidence["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["pay_a", "pay_b"]);
    }

    #[test]
    fn structuring_pass_through_and_routes() {
        let p = AmlPolicy::default();
        let log: Vec<Logged> = (0..2)
            .map(|i| {
                mv(
                    &format!("pay_{i}"),
                    MoveKind::Deposit,
                    190_000,
                    i * 30 * H,
                    0,
                )
            })
            .collect();
        let third = mv("pay_2", MoveKind::Deposit, 185_000, 70 * H, 0);
        let found = scenarios(&p, &third, &log, 0);
        assert!(found.iter().any(|f| f.scenario == Scenario::Structuring));
        // A payout of barely wagered deposits, to another instrument.
        let mut payout = mv("po_1", MoveKind::Payout, 100_000, 71 * H, 0);
        payout.instrument = Some("tok_other".into());
        let mut all = log.clone();
        all.push(third);
        let found: Vec<Scenario> = scenarios(&p, &payout, &all, 1_000)
            .into_iter()
            .map(|f| f.scenario)
            .collect();
        assert!(found.contains(&Scenario::PassThrough), "{found:?}");
        assert!(found.contains(&Scenario::UnusualRoute), "{found:?}");
        // Wagered through, to the same instrument: nothing.
        payout.instrument = Some("tok_a".into());
        assert!(scenarios(&p, &payout, &all, 600_000).is_empty());
    }

    #[test]
    fn the_csv_report_quotes_and_neutralises() {
        let a = AlertView {
            alert_id: "al_cdd_pay_1".into(),
            player_id: "=cmd".into(),
            scenario: "cdd_threshold".into(),
            status: "open".into(),
            opened_at_ms: 1,
            closed_at_ms: None,
            closed_by: None,
            note: None,
            evidence: json!({"transactions": [{"id": "pay_1", "kind": "deposit", "amount": "2000.00", "currency": "EUR", "at_ms": 1}]}),
        };
        let csv = sar_csv(&a);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("\"'=cmd\""), "{csv}");
        assert!(lines[1].contains("\"2000.00\""));
    }
}
