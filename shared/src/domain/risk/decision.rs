//! One risk decision per deposit intent and per payout, taken before money
//! moves or a PSP is called: the request's signals and the store's facts
//! (velocity windows, identifier links, account age, recent deposits and
//! wagering, AML alerts) through the configured rules.
//!
//! The decision is stored once, keyed by its subject (the payment or payout
//! id), in ONE transaction with the subject's velocity items: a retried
//! request finds the earlier attempt's decision and keeps it, and never
//! counts twice. It is stored even when no rule took part: the decisions
//! are also the player's index of payments and payouts (the console's
//! search by player). Reads: one query per velocity window, one per link
//! rule, and the player's ledger (the AML movements) only when a payout
//! rule needs it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, ErrorCode};
use crate::ids::PlayerId;
use crate::schema::keys;
use crate::store::{item, Attr, Cond, Item, ItemExt, Key, Query, SkRange, StoreError, Write};

use crate::domain::players::{self, KycLevel};
use crate::domain::risk::aml;
use crate::domain::risk::rules::{
    Check, Decision, Dimension, Facts, Flow, Hit, Outcome, RuleResult, Signals,
};
use crate::domain::risk::velocity::{self, Movement};
use crate::domain::Ctx;

/// Decisions listed at most.
pub const MAX_LISTED: usize = 100;
/// How long a decision is kept for audit (13 months).
const KEEP_DECISION_MS: i64 = 396 * 24 * 3_600_000;

/// A decision as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDecision {
    /// The payment or payout id it decided.
    pub decision_id: String,
    pub flow: Flow,
    pub player_id: String,
    pub decided_at_ms: i64,
    pub outcome: Outcome,
    pub score: i64,
    pub version: String,
    pub step_up_kyc: Option<KycLevel>,
    pub rules: Vec<RuleResult>,
}

impl StoredDecision {
    /// `amount_minor`: what the movement moves (the player's velocity
    /// windows sum it: the decisions are the player's velocity items).
    fn to_item(&self, player: &PlayerId, amount_minor: i64) -> Item {
        let mut it = item(
            &keys::risk_decision(player, self.decided_at_ms, &self.decision_id),
            [
                ("decision_id", Attr::from(self.decision_id.as_str())),
                ("flow", Attr::from(self.flow.as_str())),
                ("player", Attr::from(player.as_str())),
                ("at_ms", Attr::N(self.decided_at_ms)),
                ("outcome", Attr::from(outcome_str(self.outcome))),
                ("score", Attr::N(self.score)),
                ("amount", Attr::N(amount_minor)),
                ("version", Attr::from(self.version.as_str())),
                (
                    "rules_json",
                    Attr::from(serde_json::to_string(&self.rules).unwrap_or_default()),
                ),
                (
                    crate::store::TTL,
                    Attr::N(self.decided_at_ms.saturating_add(KEEP_DECISION_MS) / 1000),
                ),
            ],
        );
        if let Some(k) = self.step_up_kyc {
            it.insert("step_up_kyc".into(), Attr::from(k.as_str()));
        }
        it
    }

    fn from_item(it: &Item) -> Result<StoredDecision, Error> {
        let bad = |what: &str| Error::Internal(format!("stored risk decision lacks {what}"));
        Ok(StoredDecision {
            decision_id: it
                .str_attr("decision_id")
                .ok_or_else(|| bad("id"))?
                .to_owned(),
            flow: it
                .str_attr("flow")
                .and_then(Flow::parse)
                .ok_or_else(|| bad("flow"))?,
            player_id: it.str_attr("player").unwrap_or_default().to_owned(),
            decided_at_ms: it.int_attr("at_ms").unwrap_or(0),
            outcome: it
                .str_attr("outcome")
                .and_then(parse_outcome)
                .ok_or_else(|| bad("outcome"))?,
            score: it.int_attr("score").unwrap_or(0),
            version: it.str_attr("version").unwrap_or_default().to_owned(),
            step_up_kyc: it.str_attr("step_up_kyc").and_then(KycLevel::parse),
            rules: it
                .str_attr("rules_json")
                .and_then(|r| serde_json::from_str::<Vec<RuleRecord>>(r).ok())
                .map(|v| v.into_iter().map(RuleRecord::into_result).collect())
                .unwrap_or_default(),
        })
    }

    /// The short form kept on the payment or payout it decided.
    pub fn summary(&self) -> Attr {
        let mut m = BTreeMap::new();
        m.insert(
            "decision_id".to_owned(),
            Attr::from(self.decision_id.as_str()),
        );
        m.insert("outcome".to_owned(), Attr::from(outcome_str(self.outcome)));
        m.insert("score".to_owned(), Attr::N(self.score));
        m.insert("version".to_owned(), Attr::from(self.version.as_str()));
        Attr::M(m)
    }

    /// 402 `kyc_required` when a hit rule asks for more KYC than the player has.
    pub fn step_up(&self, has: KycLevel) -> Result<(), Error> {
        match self.step_up_kyc {
            Some(needed) if has < needed => Err(Error::PaymentRequiredWith {
                code: ErrorCode::KycRequired,
                reason: format!("the risk check asks for {} KYC (step-up)", needed.as_str()),
                details: serde_json::json!({"kyc_level": has.as_str(), "required_level": needed.as_str(),
                    "decision_id": self.decision_id}),
            }),
            _ => Ok(()),
        }
    }
}

/// A rule result as stored (owned strings, for reading back).
#[derive(serde::Deserialize)]
struct RuleRecord {
    id: String,
    hit: String,
    score: i64,
    reason: String,
}

impl RuleRecord {
    fn into_result(self) -> RuleResult {
        RuleResult {
            id: self.id,
            hit: match self.hit.as_str() {
                "hit" => Hit::Hit,
                "no_hit" => Hit::NoHit,
                _ => Hit::NoData,
            },
            score: self.score,
            reason: self.reason,
        }
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Approve => "approve",
        Outcome::Review => "review",
        Outcome::Decline => "decline",
    }
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "approve" => Some(Outcome::Approve),
        "review" => Some(Outcome::Review),
        "decline" => Some(Outcome::Decline),
        _ => None,
    }
}

fn dim_value(s: &Signals, d: Dimension) -> Option<&str> {
    match d {
        Dimension::Player => Some(s.player.as_str()),
        Dimension::Device => s.device.as_deref(),
        Dimension::Instrument => s.instrument.as_deref(),
        Dimension::Ip => s.ip.as_deref(),
    }
}

/// The link kinds: which identifiers of one kind share one of another.
const PLAYER_INSTRUMENTS: &str = "player-instr";
const DEVICE_PLAYERS: &str = "device-player";
const INSTRUMENT_PLAYERS: &str = "instr-player";

/// How many `kind` links `value` has, counting `other` if it is new; and
/// the link to write when it is.
async fn links(
    ctx: &Ctx,
    kind: &str,
    value: &str,
    other: Option<&str>,
    max: u32,
) -> Result<(u32, Option<Key>), Error> {
    let q = Query::new(
        keys::risk_link_pk(kind, value),
        SkRange::All,
        max as usize + 2,
    );
    let page = ctx.store.query(&q).await?;
    let known = page
        .items
        .iter()
        .any(|it| other.is_some_and(|o| it.str_attr(crate::store::SK) == Some(o)));
    let new = other.filter(|_| !known);
    let count = u32::try_from(page.items.len()).unwrap_or(u32::MAX) + u32::from(new.is_some());
    Ok((count, new.map(|o| keys::risk_link(kind, value, o))))
}

/// The store's facts the rules of `flow` need, and the links to remember.
async fn gather(
    ctx: &Ctx,
    flow: Flow,
    player: &PlayerId,
    s: &Signals,
    now: i64,
) -> Result<(Facts, Vec<Key>), Error> {
    let mut facts = Facts::default();
    let mut new_links = Vec::new();
    let amount = s.amount.map(|a| a.minor()).unwrap_or(0);
    for rule in ctx.policies.risk.rules_for(flow) {
        match &rule.check {
            Check::Velocity {
                dimension,
                window_minutes,
                ..
            } => {
                if let Some(v) = dim_value(s, *dimension) {
                    let w = i64::from(*window_minutes) * 60_000;
                    let (n, sum) = velocity::window(ctx, flow, *dimension, v, w, now).await?;
                    // This movement included.
                    facts.velocity.insert(
                        rule.id.clone(),
                        (n.saturating_add(1), sum.saturating_add(amount)),
                    );
                }
            }
            Check::InstrumentsPerPlayer { max } => {
                let (n, link) = links(
                    ctx,
                    PLAYER_INSTRUMENTS,
                    player.as_str(),
                    s.instrument.as_deref(),
                    *max,
                )
                .await?;
                facts.instruments_per_player = Some(n);
                new_links.extend(link);
            }
            Check::PlayersPerDevice { max } => {
                if let Some(d) = &s.device {
                    let (n, link) =
                        links(ctx, DEVICE_PLAYERS, d, Some(player.as_str()), *max).await?;
                    facts.players_per_device = Some(n);
                    new_links.extend(link);
                }
            }
            Check::PlayersPerInstrument { max } => {
                if let Some(i) = &s.instrument {
                    let (n, link) =
                        links(ctx, INSTRUMENT_PLAYERS, i, Some(player.as_str()), *max).await?;
                    facts.players_per_instrument = Some(n);
                    new_links.extend(link);
                }
            }
            Check::NewAccount { .. } => {
                facts.account_age_ms = Some(now - players::first_seen(ctx, player, now).await?);
            }
            Check::QuickCashOut { within_hours, .. } => {
                let from = now - i64::from(*within_hours) * 3_600_000;
                let deposits =
                    aml::recent(ctx, player, aml::Movements::Deposits, from, now).await?;
                let currency = s.amount.map(|a| a.currency());
                let same = |l: &&aml::Logged| Some(l.amount.currency()) == currency;
                facts.recent_deposits_minor =
                    Some(deposits.iter().filter(same).map(|l| l.amount.minor()).sum());
                facts.recent_wagered_minor = Some(match (deposits.iter().find(same), currency) {
                    (Some(first), Some(c)) => {
                        (aml::wagered_total(ctx, player, c).await? - first.wagered_total).max(0)
                    }
                    _ => 0,
                });
            }
            Check::RouteChange => {
                let deposits = aml::recent(ctx, player, aml::Movements::Deposits, 0, now).await?;
                let (mut instruments, mut countries) = (
                    std::collections::BTreeSet::new(),
                    std::collections::BTreeSet::new(),
                );
                for l in deposits {
                    instruments.extend(l.instrument);
                    countries.extend(l.country);
                }
                facts.deposit_instruments = (!instruments.is_empty()).then_some(instruments);
                facts.deposit_countries = (!countries.is_empty()).then_some(countries);
            }
            _ => {}
        }
    }
    Ok((facts, new_links))
}

/// Decide `flow` for `subject` (a payment or payout id) and store it with
/// its velocity items; a decision already stored for `subject` (an earlier
/// attempt of the same request) is returned as it was.
pub async fn decide(
    ctx: &Ctx,
    flow: Flow,
    subject: &str,
    player: &PlayerId,
    s: &Signals,
) -> Result<StoredDecision, Error> {
    let config = &ctx.policies.risk;
    let now = ctx.now_ms();
    let at = crate::ids::ulid_time_ms(subject).unwrap_or(now);
    let (facts, new_links) = gather(ctx, flow, player, s, now).await?;
    let mut d: Decision = config.decide(flow, s, &facts);
    if flow == Flow::Payout {
        if let Some(alert) = aml::holding_alert(ctx, player).await? {
            d.rules.push(RuleResult {
                id: "aml_open_alert".into(),
                hit: Hit::Hit,
                score: 0,
                reason: format!("open AML alert {alert} holds the player's payouts"),
            });
            d.outcome = d.outcome.max(Outcome::Review);
        }
    }
    let stored = StoredDecision {
        decision_id: subject.to_owned(),
        flow,
        player_id: player.as_str().to_owned(),
        decided_at_ms: at,
        outcome: d.outcome,
        score: d.score,
        version: d.version,
        step_up_kyc: d.step_up_kyc,
        rules: d.rules,
    };
    let (dims, keep_ms) = config.velocity_needs(flow);
    let values: Vec<(Dimension, &str)> = dims
        .iter()
        .filter_map(|d| dim_value(s, *d).map(|v| (*d, v)))
        .collect();
    let movement = Movement {
        id: subject,
        at_ms: at,
        amount_minor: s.amount.map(|a| a.minor()).unwrap_or(0),
        keep_ms,
    };
    let mut writes = vec![Write::Put {
        item: stored.to_item(player, movement.amount_minor),
        cond: Some(Cond::NotExists),
    }];
    writes.extend(velocity::record_writes(flow, &movement, &values));
    let outcome = if writes.len() == 1 {
        ctx.store.write(writes.remove(0)).await
    } else {
        ctx.store.transact(writes).await
    };
    let stored = match outcome {
        Ok(()) => {
            crate::domain::observe::risk_decided(ctx, flow.as_str(), outcome_str(stored.outcome));
            stored
        }
        Err(StoreError::ConditionFailed {
            index: 0,
            old: Some(old),
        }) => StoredDecision::from_item(&old)?,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: None,
        }) => {
            // The adapter did not return the old item: read it.
            let key = keys::risk_decision(player, at, subject);
            let old = ctx
                .store
                .get(&key)
                .await?
                .ok_or(Error::Internal("decision vanished".into()))?;
            StoredDecision::from_item(&old)?
        }
        Err(e) => return Err(e.into()),
    };
    remember_links(ctx, new_links).await;
    tracing::info!(subject, flow = flow.as_str(), outcome = outcome_str(stored.outcome), score = stored.score, version = %stored.version, "risk decision");
    Ok(stored)
}

/// Links are facts for later decisions, not money: a lost one is logged.
async fn remember_links(ctx: &Ctx, links: Vec<Key>) {
    for key in links {
        let write = Write::Put {
            item: item(&key, []),
            cond: None,
        };
        if let Err(e) = ctx.store.write(write).await {
            tracing::warn!(error = %e, "could not remember a risk link");
        }
    }
}

/// The stored decision of `subject`, if any.
pub async fn find(
    ctx: &Ctx,
    player: &PlayerId,
    subject: &str,
) -> Result<Option<StoredDecision>, Error> {
    let Some(at) = crate::ids::ulid_time_ms(subject) else {
        return Ok(None);
    };
    match ctx
        .store
        .get(&keys::risk_decision(player, at, subject))
        .await?
    {
        Some(it) => StoredDecision::from_item(&it).map(Some),
        None => Ok(None),
    }
}

/// `GET /v1/risk/decisions?player_id=&limit=`: newest first.
pub async fn list(
    ctx: &Ctx,
    player: &PlayerId,
    limit: usize,
) -> Result<Vec<StoredDecision>, Error> {
    let mut q = Query::new(
        keys::risk_decision_pk(player),
        SkRange::All,
        limit.clamp(1, MAX_LISTED),
    );
    q.descending = true;
    let page = ctx.store.query(&q).await?;
    page.items.iter().map(StoredDecision::from_item).collect()
}

/// The decline a client sees: the decision id, never the rules.
pub fn declined(d: &StoredDecision) -> Error {
    Error::RiskDeclined {
        decision_id: d.decision_id.clone(),
    }
}
