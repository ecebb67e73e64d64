//! What the cashier may offer one player now (`GET /v1/cashier/options`):
//! the methods the routing rules give this country, currency and risk
//! level, each marked available or not (route health, degradation mode,
//! the amount asked), with the amounts the routes take; the player's
//! balance, remaining deposit limits and stored PSP tokens; and for
//! withdrawals each method's fee and time to arrive.

use serde::Serialize;

use crate::domain::limits;
use crate::domain::players;
use crate::domain::wallet::balance::balances;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::{PaymentId, PlayerId, PspId};
use crate::money::{format_minor, Currency, Money};
use crate::psp::health::Circuit;
use crate::psp::routing::{MethodOffer, RouteRequest};
use crate::schema::keys;
use crate::schema::status::PaymentStatus;
use crate::store::{ItemExt, Query, SkRange};

use super::session::Session;

/// Captured deposits looked at for stored tokens (newest first).
pub const STORED_LOOKBACK: usize = 10;
/// Preset amounts, in whole units of the currency.
const PRESET_UNITS: [i64; 4] = [10, 25, 50, 100];

/// Hours a withdrawal by each method takes to arrive at most (what the
/// PSPs promise; shown before the player confirms).
const WITHDRAWAL_ETA_HOURS: [(&str, u32); 5] = [
    ("card", 72),
    ("bank_transfer", 48),
    ("ewallet", 1),
    ("pay_by_bank", 1),
    ("p2p", 1),
];

/// What a player pays to withdraw `amount_minor` by `method`: payloop
/// holds and sends the whole amount, and a PSP's own payout fee is the
/// operator's cost (reconciliation books it), so zero for every method.
/// This is the one place a player fee would be decided; the withdrawal
/// endpoint answers with the same figure.
pub fn withdrawal_fee_minor(_method: &str, _amount_minor: i64) -> i64 {
    0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deposit,
    Withdrawal,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "deposit" => Some(Kind::Deposit),
            "withdrawal" => Some(Kind::Withdrawal),
            _ => None,
        }
    }
}

/// Why a listed method cannot take this payment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// Degradation mode: only the fast methods are on.
    Degraded,
    /// Every PSP of the method has its circuit open.
    RouteUnhealthy,
    /// The amount is outside what the method's routes take.
    AmountOutOfRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodView {
    pub method: &'static str,
    pub available: bool,
    pub unavailable_reason: Option<Unavailable>,
    pub min_amount: Option<String>,
    pub max_amount: Option<String>,
    /// Withdrawals: the player's fee, what arrives and when.
    pub fee: Option<String>,
    pub you_receive: Option<String>,
    pub eta_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitLeft {
    pub period: &'static str,
    pub limit: String,
    pub remaining: String,
}

/// A PSP token from one of the player's captured deposits (never a card
/// number: payloop accepts none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMethod {
    pub token: String,
    pub method: String,
    pub psp: String,
    pub last_used_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionsView {
    pub kind: Kind,
    pub player_id: PlayerId,
    pub currency: Currency,
    pub country: Option<String>,
    pub degraded: bool,
    pub balance_available: String,
    pub methods: Vec<MethodView>,
    /// Deposits: each deposit limit in force with what is left of it.
    pub limits: Vec<LimitLeft>,
    pub stored_methods: Vec<StoredMethod>,
    pub presets: Vec<String>,
}

pub struct OptionsQuery {
    pub kind: Kind,
    pub currency: Currency,
    pub amount: Option<Money>,
    /// The browser's country, used when the session names none.
    pub country: Option<String>,
}

pub async fn options(ctx: &Ctx, s: &Session, q: &OptionsQuery) -> Result<OptionsView, Error> {
    let now = ctx.now_ms();
    ctx.psps
        .health
        .maybe_sync(ctx.store.as_ref(), ctx.psps.ids(), now)
        .await;
    let degraded = ctx
        .psps
        .modes
        .current(ctx.store.as_ref(), now)
        .await?
        .degraded;
    let risk = players::profile(ctx, &s.player).await?.risk;
    // Payouts route without a country (see payouts' routing).
    let player_country = s.country.clone().or_else(|| q.country.clone());
    let country = match q.kind {
        Kind::Deposit => player_country.as_deref(),
        Kind::Withdrawal => None,
    };
    let offers = ctx.psps.router.offers(country, q.currency, risk);
    let methods = offers
        .iter()
        .map(|o| method_view(ctx, o, q, degraded, country, risk))
        .collect();
    let limits = match q.kind {
        Kind::Deposit => limits_left(ctx, &s.player, q.currency).await?,
        Kind::Withdrawal => Vec::new(),
    };
    let available = balances(ctx, &s.player)
        .await?
        .into_iter()
        .find(|b| b.currency == q.currency)
        .map_or(0, |b| b.available);
    Ok(OptionsView {
        kind: q.kind,
        player_id: s.player.clone(),
        currency: q.currency,
        country: player_country.clone(),
        degraded: degraded && q.kind == Kind::Deposit,
        balance_available: format_minor(available, q.currency),
        presets: presets(&offers, q.currency),
        methods,
        limits,
        stored_methods: stored_methods(ctx, &s.player, q.currency).await?,
    })
}

fn method_view(
    ctx: &Ctx,
    o: &MethodOffer,
    q: &OptionsQuery,
    degraded: bool,
    country: Option<&str>,
    risk: crate::psp::routing::RiskLevel,
) -> MethodView {
    let healthy = o.psps.iter().any(|p| is_healthy(ctx, p));
    let in_range = q.amount.is_none_or(|amount| {
        !ctx.psps
            .router
            .candidates(&RouteRequest {
                country,
                amount,
                method: o.method,
                risk,
                seed: 0,
            })
            .is_empty()
    });
    let reason = if q.kind == Kind::Deposit && degraded && !ctx.psps.router.is_fast_method(o.method)
    {
        Some(Unavailable::Degraded)
    } else if !healthy {
        Some(Unavailable::RouteUnhealthy)
    } else if !in_range {
        Some(Unavailable::AmountOutOfRange)
    } else {
        None
    };
    let fmt = |m: Option<i64>| m.map(|v| format_minor(v, q.currency));
    let withdrawal = q.kind == Kind::Withdrawal;
    let amount = q.amount.map(|a| a.minor());
    let fee = amount.unwrap_or(0);
    let fee = withdrawal.then(|| withdrawal_fee_minor(o.method, fee));
    MethodView {
        method: o.method,
        available: reason.is_none(),
        unavailable_reason: reason,
        min_amount: fmt(o.min_minor),
        max_amount: fmt(o.max_minor),
        fee: fmt(fee),
        you_receive: fmt(amount.zip(fee).and_then(|(a, f)| a.checked_sub(f))),
        eta_hours: withdrawal
            .then(|| {
                WITHDRAWAL_ETA_HOURS
                    .iter()
                    .find(|(m, _)| *m == o.method)
                    .map(|(_, h)| *h)
            })
            .flatten(),
    }
}

/// A PSP is usable when its circuit is closed and payloop has its connector.
fn is_healthy(ctx: &Ctx, psp: &PspId) -> bool {
    ctx.psps.get(psp).is_some() && ctx.psps.health.state(psp).circuit == Circuit::Closed
}

/// The preset amounts some route takes.
fn presets(offers: &[MethodOffer], currency: Currency) -> Vec<String> {
    let unit = 10i64.pow(u32::from(currency.minor_digits()));
    let lo = offers.iter().map(|o| o.min_minor.unwrap_or(0)).min();
    let hi = offers.iter().map(|o| o.max_minor.unwrap_or(i64::MAX)).max();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Vec::new();
    };
    PRESET_UNITS
        .iter()
        .filter_map(|u| u.checked_mul(unit))
        .filter(|m| (lo..=hi).contains(m))
        .map(|m| format_minor(m, currency))
        .collect()
}

async fn limits_left(ctx: &Ctx, player: &PlayerId, c: Currency) -> Result<Vec<LimitLeft>, Error> {
    let view = limits::view(ctx, player, c).await?;
    Ok(view
        .periods
        .into_iter()
        .filter_map(|p| {
            Some(LimitLeft {
                period: p.period,
                limit: p.limit?,
                remaining: p.remaining?,
            })
        })
        .collect())
}

/// The distinct PSP tokens of the player's latest captured deposits in
/// this currency, newest first.
pub async fn stored_methods(
    ctx: &Ctx,
    player: &PlayerId,
    currency: Currency,
) -> Result<Vec<StoredMethod>, Error> {
    let mut q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(format!("{}dep_", keys::LEDGER_PREFIX)),
        STORED_LOOKBACK,
    );
    q.descending = true;
    let mut out: Vec<StoredMethod> = Vec::new();
    for entry in ctx.store.query(&q).await?.items {
        let Some(id) = entry
            .str_attr("payment_id")
            .and_then(|p| PaymentId::parse(p).ok())
        else {
            continue;
        };
        let Some(p) = ctx.store.get(&keys::payment(&id)).await? else {
            continue;
        };
        let captured = p.str_attr("status") == Some(PaymentStatus::Captured.as_str());
        let same_currency = p.str_attr("currency") == Some(currency.code());
        let (Some(token), Some(method), Some(psp)) = (
            p.str_attr("instrument"),
            p.str_attr("method"),
            p.str_attr("psp"),
        ) else {
            continue;
        };
        if captured && same_currency && !out.iter().any(|s| s.token == token) {
            out.push(StoredMethod {
                token: token.to_owned(),
                method: method.to_owned(),
                psp: psp.to_owned(),
                last_used_at_ms: entry.int_attr("at_ms").unwrap_or(0),
            });
        }
    }
    Ok(out)
}
