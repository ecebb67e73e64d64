//! Reserving a deposit intent's amount against its player's limits, and
//! releasing it once when the payment fails or is canceled.
//!
//! The reservation is ONE transaction: the reservation item (conditional
//! on not existing: a retried intent of the same payment reserves nothing
//! more), one `ADD used` per limit in force, conditional on the headroom
//! (`used < limit − amount + 1`), a check that the limits are still the
//! version read and that no self-exclusion began meanwhile, and a due item
//! for its expiry. Two concurrent intents can never together pass a limit;
//! no limit in force, no write.
//!
//! A reservation ends `released` (the payment failed or was canceled, in
//! that move's transaction), stays `reserved` once the payment is captured
//! (gross: it counts for good), or `expired` when its intent neither paid
//! nor failed in `reservation_ttl_ms` (the sweep frees it). A capture that
//! arrives after the expiry counts its amount again, in the capture's own
//! transaction (`capture_writes`), so the counters never miss a deposit;
//! a capture racing the sweep fails its check on the reservation and is
//! retried, never lost.

use serde_json::json;

use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, PlayerId};
use crate::money::{format_minor, Currency, Money};
use crate::schema::keys;
use crate::store::{item, Attr, Cond, ItemExt, Key, StoreError, UpdateOp, Write};

use super::{exclusion, load, Period};
use crate::clock::Day;
use crate::domain::Ctx;
use crate::schema::status::PaymentStatus;

const RESERVED: &str = "reserved";
const RELEASED: &str = "released";
const EXPIRED: &str = "expired";
/// Due reservations looked at per sweep run.
const SWEEP_BATCH: usize = 100;

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
    let due_sk = keys::due_sk(
        now.saturating_add(policy.reservation_ttl_ms),
        payment.as_str(),
    );
    let due = item(
        &keys::limit_due(due_sk.clone()),
        [
            ("payment_id", Attr::from(payment.as_str())),
            ("player_id", Attr::from(player.as_str())),
        ],
    );
    let reservation = item(
        &keys::limit_reservation(player, payment),
        [
            ("status", Attr::from(RESERVED)),
            ("due_sk", Attr::from(due_sk.as_str())),
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
    writes.push(Write::Put {
        item: due,
        cond: None,
    });
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
pub async fn release_writes(
    ctx: &Ctx,
    player: &PlayerId,
    payment: &PaymentId,
) -> Result<Option<Vec<Write>>, Error> {
    let key = keys::limit_reservation(player, payment);
    match ctx.store.get(&key).await? {
        Some(r) if r.str_attr("status") == Some(RESERVED) => {
            release_of(key, &r, Some(RELEASED)).map(Some)
        }
        _ => Ok(None),
    }
}

/// The writes a capture adds to its own transaction so that its deposit
/// counts exactly once: a held reservation must still be held (the expiry
/// sweep may not free it meanwhile: then the capture fails that check and
/// is retried), an expired one counts again. Empty without a reservation.
/// Every write is conditional on the status read, so a failure means only
/// "read again".
pub async fn capture_writes(
    ctx: &Ctx,
    player: &PlayerId,
    payment: &PaymentId,
) -> Result<Vec<Write>, Error> {
    let key = keys::limit_reservation(player, payment);
    let Some(r) = ctx.store.get(&key).await? else {
        return Ok(Vec::new());
    };
    match r.str_attr("status") {
        Some(RESERVED) => Ok(vec![Write::Check {
            key,
            cond: Cond::eq("status", RESERVED),
        }]),
        Some(EXPIRED) => {
            let amount = r.int_attr("amount").unwrap_or(0);
            let mut writes = vec![Write::Update {
                key,
                ops: vec![UpdateOp::set("status", RESERVED)],
                cond: Some(Cond::eq("status", EXPIRED)),
            }];
            writes.extend(usage_adds(&r, amount)?);
            Ok(writes)
        }
        // Released: the payment failed or was canceled; a capture after that
        // is a conflict the payment's own condition refuses.
        _ => Ok(Vec::new()),
    }
}

/// The counters of a reservation, each moved by `delta`.
fn usage_adds(r: &crate::store::Item, delta: i64) -> Result<Vec<Write>, Error> {
    let Some(player) = r.str_attr("player") else {
        return Err(Error::Internal(
            "a limit reservation lacks its player".into(),
        ));
    };
    let pk = format!("PLAYER#{player}");
    let usage = match r.get("usage") {
        Some(Attr::L(list)) => list.iter().filter_map(Attr::as_str).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    Ok(usage
        .into_iter()
        .map(|sk| Write::Update {
            key: Key::new(pk.clone(), sk),
            ops: vec![UpdateOp::Add("used".into(), delta)],
            cond: None,
        })
        .collect())
}

/// The writes that free a reserved reservation: marked `to` (released or
/// expired), or deleted (`None`: the intent never opened, so its retry may
/// reserve again), and its counters given back.
fn release_of(key: Key, r: &crate::store::Item, to: Option<&str>) -> Result<Vec<Write>, Error> {
    let Some(amount) = r.int_attr("amount") else {
        return Err(Error::Internal(
            "a limit reservation lacks its amount".into(),
        ));
    };
    let cond = Some(Cond::eq("status", RESERVED));
    let mut writes = vec![match to {
        None => Write::Delete { key, cond },
        Some(status) => Write::Update {
            key,
            ops: vec![UpdateOp::set("status", status)],
            cond,
        },
    }];
    writes.extend(usage_adds(r, -amount)?);
    Ok(writes)
}

/// Release `payment`'s reservation on its own (its PSP session never
/// opened); once, however often called.
pub async fn release(ctx: &Ctx, player: &PlayerId, payment: &PaymentId) -> Result<(), Error> {
    let key = keys::limit_reservation(player, payment);
    let Some(r) = ctx.store.get(&key).await? else {
        return Ok(());
    };
    if r.str_attr("status") != Some(RESERVED) {
        return Ok(());
    }
    let due = r.str_attr("due_sk").map(|sk| Write::Delete {
        key: keys::limit_due(sk),
        cond: None,
    });
    // One transaction: a crash leaves the reservation held with its expiry
    // still scheduled, or everything released; never a held one unscheduled.
    let mut writes = release_of(key, &r, None)?;
    writes.extend(due);
    match ctx.store.transact(writes).await {
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The sweep: reservations past their time whose intent neither paid nor
/// failed are freed (`expired`); the rest leave the schedule. Returns how
/// many due items it handled.
pub async fn sweep(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let q = crate::store::Query::new(keys::LIMIT_DUE_PK, keys::due_until(now), SWEEP_BATCH);
    let due = ctx.store.query(&q).await?.items;
    for d in &due {
        let sk = d.str_attr("sk").unwrap_or_default().to_owned();
        let payment = d
            .str_attr("payment_id")
            .and_then(|p| PaymentId::parse(p).ok());
        let player = d
            .str_attr("player_id")
            .and_then(|p| PlayerId::parse(p).ok());
        if let (Some(payment), Some(player)) = (payment, player) {
            expire(ctx, &player, &payment, &sk).await?;
        }
        ctx.store
            .write(Write::Delete {
                key: keys::limit_due(sk),
                cond: None,
            })
            .await?;
    }
    Ok(due.len())
}

/// Expire `payment`'s reservation unless its payment has moved on.
async fn expire(
    ctx: &Ctx,
    player: &PlayerId,
    payment: &PaymentId,
    due_sk: &str,
) -> Result<(), Error> {
    let key = keys::limit_reservation(player, payment);
    let Some(r) = ctx.store.get(&key).await? else {
        return Ok(());
    };
    if r.str_attr("status") != Some(RESERVED) || r.str_attr("due_sk") != Some(due_sk) {
        return Ok(());
    }
    let status = ctx
        .store
        .get(&keys::payment(payment))
        .await?
        .and_then(|p| p.str_attr("status").map(str::to_owned));
    // Captured (or beyond) counts for good; pending or never stored expires.
    let open_states = [
        PaymentStatus::Pending.as_str(),
        PaymentStatus::Authorized.as_str(),
    ];
    let open = status.as_deref().is_none_or(|s| open_states.contains(&s));
    if !open {
        return Ok(());
    }
    let mut writes = release_of(key, &r, Some(EXPIRED))?;
    if status.is_some() {
        // Only while the payment is still open: a capture racing the expiry
        // then recounts (it reads `expired`) or fails this condition.
        writes.push(Write::Check {
            key: keys::payment(payment),
            cond: Cond::In("status".into(), open_states.map(Attr::from).to_vec()),
        });
    }
    match ctx.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(payment_id = %payment, "limit reservation of an unfinished intent expired");
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
