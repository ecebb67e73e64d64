//! Reserving a deposit intent's amount against its player's limits, and
//! releasing it once when the payment fails or is canceled.
//!
//! The reservation is ONE transaction: the reservation item (conditional
//! on not existing: a retried intent of the same payment reserves nothing
//! more), one `ADD used` per limit in force, conditional on the headroom
//! (`used < limit − amount + 1`), a check that the limits are still the
//! version read and that no self-exclusion began meanwhile. Two concurrent
//! intents can never together pass a limit; no limit in force, no write.

use serde_json::json;

use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, PlayerId};
use crate::money::{format_minor, Currency, Money};
use crate::schema::keys;
use crate::store::{item, Attr, Cond, ItemExt, Key, StoreError, UpdateOp, Write};

use super::{exclusion, load, Period};
use crate::clock::Day;
use crate::domain::Ctx;

const RESERVED: &str = "reserved";
const RELEASED: &str = "released";

/// What `player` has used of `p`'s limit in the period from `start`.
pub(super) async fn used(
    ctx: &Ctx,
    player: &PlayerId,
    currency: Currency,
    p: Period,
    start: Day,
) -> Result<i64, Error> {
    let key = usage_key(player, currency, p, start);
    Ok(ctx
        .store
        .get(&key)
        .await?
        .and_then(|it| it.int_attr("used"))
        .unwrap_or(0))
}

fn usage_key(player: &PlayerId, currency: Currency, p: Period, start: Day) -> Key {
    Key::new(
        keys::player_pk(player),
        keys::limit_usage_sk(currency, p.as_str(), &start.to_string()),
    )
}

fn reached(p: Period, limit: i64, used: i64, currency: Currency) -> Error {
    let remaining = limit.saturating_sub(used).max(0);
    Error::PaymentRequiredWith {
        code: ErrorCode::DepositLimitReached,
        reason: format!("the player's {} deposit limit is reached", p.as_str()),
        details: json!({
            "period": p.as_str(),
            "limit": format_minor(limit, currency),
            "remaining": format_minor(remaining, currency),
        }),
    }
}

fn required(p: Period) -> Error {
    Error::PaymentRequiredWith {
        code: ErrorCode::DepositLimitRequired,
        reason: "day, week and month deposit limits must be set before a deposit".into(),
        details: json!({"period": p.as_str()}),
    }
}

/// Reserve `amount` of `payment` against every limit of `player` in force.
pub async fn reserve(
    ctx: &Ctx,
    player: &PlayerId,
    amount: Money,
    payment: &PaymentId,
) -> Result<(), Error> {
    let now = ctx.now_ms();
    let policy = &ctx.policies.rg;
    exclusion::check(ctx, player, now).await?;
    let currency = amount.currency();
    let limits = load(ctx, player, currency).await?;
    let mut live = Vec::new();
    for p in Period::ALL {
        match limits.in_force(p, now, policy) {
            Some(limit) => live.push((p, limit)),
            None if policy.limits_required => return Err(required(p)),
            None => {}
        }
    }
    if live.is_empty() {
        return Ok(());
    }
    let day = Day::of_ms(now);
    let mut sks = Vec::new();
    let mut counters = Vec::new();
    for (p, limit) in &live {
        let (start, _) = p.span(day);
        let key = usage_key(player, currency, *p, start);
        let headroom = limit - amount.minor();
        if headroom < 0 {
            let used = used(ctx, player, currency, *p, start).await?;
            return Err(reached(*p, *limit, used, currency));
        }
        sks.push(Attr::from(key.sk.as_str()));
        counters.push(Write::Update {
            key,
            ops: vec![UpdateOp::Add("used".into(), amount.minor())],
            cond: Some(Cond::Or(vec![
                Cond::AttrNotExists("used".into()),
                Cond::Lt("used".into(), Attr::N(headroom + 1)),
            ])),
        });
    }
    let reservation = item(
        &keys::limit_reservation(payment),
        [
            ("status", Attr::from(RESERVED)),
            ("player", Attr::from(player.as_str())),
            ("currency", Attr::from(currency.code())),
            ("amount", Attr::N(amount.minor())),
            ("usage", Attr::L(sks)),
        ],
    );
    let n = counters.len();
    let mut writes = vec![Write::Put {
        item: reservation,
        cond: Some(Cond::NotExists),
    }];
    writes.extend(counters);
    writes.push(limits.unchanged(player));
    writes.push(exclusion::still_clear(player, now));
    match ctx.store.transact(writes).await {
        // Reserved now, or by an earlier attempt of this same intent.
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(()),
        Err(StoreError::ConditionFailed { index, old }) if index <= n => {
            let (p, limit) = live[index - 1];
            let used = old.and_then(|o| o.int_attr("used")).unwrap_or(0);
            Err(reached(p, limit, used, currency))
        }
        Err(StoreError::ConditionFailed { index, .. }) if index == n + 1 => {
            Err(Error::Unavailable("the limits changed meanwhile".into()))
        }
        Err(StoreError::ConditionFailed { .. }) => {
            exclusion::check(ctx, player, now).await?;
            Err(Error::Unavailable(
                "the self-exclusion changed meanwhile".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The writes that release `payment`'s reservation, for the transaction
/// that fails or cancels the payment; `None` when it has none left.
pub async fn release_writes(ctx: &Ctx, payment: &PaymentId) -> Result<Option<Vec<Write>>, Error> {
    release_with(ctx, payment, false).await
}

/// `forget`: delete the reservation (the intent was never opened, so its
/// retry may reserve again) instead of marking it released.
async fn release_with(
    ctx: &Ctx,
    payment: &PaymentId,
    forget: bool,
) -> Result<Option<Vec<Write>>, Error> {
    let key = keys::limit_reservation(payment);
    let Some(r) = ctx.store.get(&key).await? else {
        return Ok(None);
    };
    if r.str_attr("status") != Some(RESERVED) {
        return Ok(None);
    }
    let (Some(player), Some(amount)) = (r.str_attr("player"), r.int_attr("amount")) else {
        return Err(Error::Internal(
            "a limit reservation lacks its player or amount".into(),
        ));
    };
    let pk = format!("PLAYER#{player}");
    let cond = Some(Cond::eq("status", RESERVED));
    let mut writes = vec![if forget {
        Write::Delete { key, cond }
    } else {
        Write::Update {
            key,
            ops: vec![UpdateOp::set("status", RELEASED)],
            cond,
        }
    }];
    let usage = match r.get("usage") {
        Some(Attr::L(list)) => list.iter().filter_map(Attr::as_str).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    for sk in usage {
        writes.push(Write::Update {
            key: Key::new(pk.clone(), sk),
            ops: vec![UpdateOp::Add("used".into(), -amount)],
            cond: None,
        });
    }
    Ok(Some(writes))
}

/// Release `payment`'s reservation on its own (its PSP session never
/// opened); once, however often called.
pub async fn release(ctx: &Ctx, payment: &PaymentId) -> Result<(), Error> {
    let Some(writes) = release_with(ctx, payment, true).await? else {
        return Ok(());
    };
    match ctx.store.transact(writes).await {
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
