//! Reserving a deposit intent's amount against its player's limits, and
//! settling the reservation once.
//!
//! The usage lives on the limits item itself (`LIMITS#<ccy>`), so every
//! step is ONE conditional update of one item, under the limits' version:
//! read, decide, write if the item is still the version read; a lost race
//! reads again (bounded). The item carries
//!
//! - per period, what is counted in it: `used_<period>` from the period's
//!   first day `used_<period>_start` (a later period starts from zero);
//! - per open intent, its hold: `hold#<payment>` = `<amount>:<reserved ms>`.
//!
//! What a period's limit sees is what is counted in it plus the holds
//! reserved in it that are still live (younger than `reservation_ttl_ms`):
//! an intent that neither paid nor failed stops counting by itself, with no
//! sweep and no write. Two concurrent intents can never together pass a
//! limit: both write the same item under its version, and the second reads
//! the first's hold before it may write.
//!
//! A capture commits its hold: the hold leaves and its amount is counted in
//! the periods it was reserved in (gross: also when the hold had expired, so
//! the counters never miss a deposit that moved money), unless those
//! periods are over. A failure or cancel releases it: the hold leaves. Both
//! are steps the payment's move owes, run on every delivery of its event;
//! the hold's presence makes each happen once. A hold whose periods are all
//! over is pruned by the next write; a player has at most [`MAX_HOLDS`].
//! A self-exclusion bumps the version of every limits item of its player,
//! so no reservation written after it can pass its check.

use std::collections::BTreeMap;

use serde_json::json;

use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, PlayerId};
use crate::money::{format_minor, Currency, Money};
use crate::schema::keys;
use crate::store::{Item, ItemExt, StoreError, UpdateOp, Write};

use super::{exclusion, load, Limits, Period, MAX_RACES};
use crate::clock::Day;
use crate::domain::Ctx;

/// Open intents' holds one player may have per currency (the item stays
/// small: ~60 bytes a hold). A reservation beyond them first drops expired
/// holds, oldest first; if every hold is live it is refused (429).
pub const MAX_HOLDS: usize = 12;
const HOLD_PREFIX: &str = "hold#";

/// One open intent's hold: its amount and when it was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    amount: i64,
    at_ms: i64,
}

impl Hold {
    fn parse(text: &str) -> Option<Hold> {
        let (amount, at) = text.split_once(':')?;
        Some(Hold {
            amount: amount.parse().ok()?,
            at_ms: at.parse().ok()?,
        })
    }

    fn encode(&self) -> String {
        format!("{}:{}", self.amount, self.at_ms)
    }

    /// The first day of the period `p` it was reserved in.
    fn start(&self, p: Period) -> Day {
        p.span(Day::of_ms(self.at_ms)).0
    }

    fn live(&self, now_ms: i64, ttl_ms: i64) -> bool {
        now_ms.saturating_sub(self.at_ms) < ttl_ms
    }

    /// Every period it was reserved in is over: it can count nowhere.
    fn spent(&self, now_ms: i64) -> bool {
        let day = Day::of_ms(self.at_ms);
        let end = Period::ALL
            .iter()
            .map(|p| p.span(day).1.start_ms())
            .max()
            .unwrap_or(i64::MAX);
        now_ms >= end
    }
}

/// The usage half of a limits item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    /// Per period (in [`Period::ALL`] order): its first day and the amount
    /// counted in it.
    counted: [Option<(Day, i64)>; 3],
    holds: BTreeMap<String, Hold>,
}

impl Usage {
    pub fn from_item(it: Option<&Item>) -> Usage {
        let Some(it) = it else {
            return Usage::default();
        };
        let counted = Period::ALL.map(|p| {
            let start = it.str_attr(&start_attr(p)).and_then(Day::parse)?;
            Some((start, it.int_attr(&used_attr(p)).unwrap_or(0)))
        });
        let holds = it
            .iter()
            .filter_map(|(name, v)| {
                let payment = name.strip_prefix(HOLD_PREFIX)?;
                Some((payment.to_owned(), Hold::parse(v.as_str()?)?))
            })
            .collect();
        Usage { counted, holds }
    }

    /// What is counted in `p`'s latest period: its first day and amount.
    pub fn counted(&self, p: Period) -> Option<(Day, i64)> {
        self.counted[p as usize]
    }

    /// The open intents' holds: payment id and amount.
    pub fn holds(&self) -> impl Iterator<Item = (&str, i64)> {
        self.holds.iter().map(|(id, h)| (id.as_str(), h.amount))
    }

    /// What counts against `p`'s limit at `now_ms`: what is counted in the
    /// running period and the live holds reserved in it.
    pub(super) fn used(&self, p: Period, now_ms: i64, ttl_ms: i64) -> i64 {
        let current = p.span(Day::of_ms(now_ms)).0;
        let counted = match self.counted[p as usize] {
            Some((start, used)) if start == current => used,
            _ => 0,
        };
        self.holds
            .values()
            .filter(|h| h.start(p) == current && h.live(now_ms, ttl_ms))
            .fold(counted, |sum, h| sum.saturating_add(h.amount))
    }

    /// Count `h` in the periods it was reserved in that are still counted.
    fn count(&mut self, h: Hold) -> Result<(), Error> {
        for p in Period::ALL {
            let start = h.start(p);
            let slot = &mut self.counted[p as usize];
            *slot = match *slot {
                Some((s, used)) if s == start => Some((
                    s,
                    used.checked_add(h.amount)
                        .ok_or_else(|| Error::Internal("limit usage overflow".into()))?,
                )),
                // A later period is already counted: h's is over.
                Some((s, used)) if s > start => Some((s, used)),
                _ => Some((start, h.amount)),
            };
        }
        Ok(())
    }

    fn prune(&mut self, now_ms: i64) {
        self.holds.retain(|_, h| !h.spent(now_ms));
    }

    /// Room for one more hold: expired ones go first, oldest first.
    fn make_room(&mut self, now_ms: i64, ttl_ms: i64) -> Result<(), Error> {
        while self.holds.len() >= MAX_HOLDS {
            let oldest_expired = self
                .holds
                .iter()
                .filter(|(_, h)| !h.live(now_ms, ttl_ms))
                .min_by_key(|(_, h)| h.at_ms)
                .map(|(id, _)| id.clone());
            match oldest_expired {
                Some(id) => self.holds.remove(&id),
                None => return Err(Error::RateLimited),
            };
        }
        Ok(())
    }

    /// The update turning `self` (as read) into `next`.
    fn ops_to(&self, next: &Usage) -> Vec<UpdateOp> {
        let mut ops = Vec::new();
        for p in Period::ALL {
            let i = p as usize;
            if let (Some((start, used)), true) =
                (next.counted[i], next.counted[i] != self.counted[i])
            {
                ops.push(UpdateOp::set(&start_attr(p), start.to_string().as_str()));
                ops.push(UpdateOp::set(&used_attr(p), used));
            }
        }
        for (id, h) in &next.holds {
            if self.holds.get(id) != Some(h) {
                ops.push(UpdateOp::set(&hold_attr(id), h.encode().as_str()));
            }
        }
        for id in self.holds.keys() {
            if !next.holds.contains_key(id) {
                ops.push(UpdateOp::Remove(hold_attr(id)));
            }
        }
        ops
    }
}

fn used_attr(p: Period) -> String {
    format!("used_{}", p.as_str())
}
fn start_attr(p: Period) -> String {
    format!("used_{}_start", p.as_str())
}
fn hold_attr(payment: &str) -> String {
    format!("{HOLD_PREFIX}{payment}")
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

/// Write `next` over `limits` as read, if it is still that version.
/// `Ok(false)`: it moved meanwhile, read again.
async fn write(ctx: &Ctx, player: &PlayerId, limits: &Limits, next: &Usage) -> Result<bool, Error> {
    let mut ops = limits.usage.ops_to(next);
    ops.push(UpdateOp::set("version", limits.version + 1));
    ops.push(UpdateOp::set("currency", limits.currency.code()));
    let w = Write::Update {
        key: keys::player_limits(player, limits.currency),
        ops,
        cond: Some(limits.unchanged()),
    };
    match ctx.store.write(w).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn contended() -> Error {
    Error::Unavailable("the player's limits moved meanwhile; retry".into())
}

/// Reserve `amount` of `payment` (reserved at `at_ms`) against every limit
/// of `player` in force; nothing is written when none is. A retry of the
/// same intent finds its hold and reserves nothing more.
pub async fn reserve(
    ctx: &Ctx,
    player: &PlayerId,
    amount: Money,
    payment: &PaymentId,
    at_ms: i64,
) -> Result<(), Error> {
    let policy = &ctx.policies.rg;
    let currency = amount.currency();
    for _ in 0..MAX_RACES {
        exclusion::check(ctx, player, at_ms).await?;
        let limits = load(ctx, player, currency).await?;
        let mut live = Vec::new();
        for p in Period::ALL {
            match limits.in_force(p, at_ms, policy) {
                Some(limit) => live.push((p, limit)),
                None if policy.limits_required => return Err(required(p)),
                None => {}
            }
        }
        if live.is_empty() || limits.usage.holds.contains_key(payment.as_str()) {
            return Ok(());
        }
        let ttl = policy.reservation_ttl_ms;
        for (p, limit) in &live {
            let used = limits.usage.used(*p, at_ms, ttl);
            if used.saturating_add(amount.minor()) > *limit {
                return Err(reached(*p, *limit, used, currency));
            }
        }
        let mut next = limits.usage.clone();
        next.prune(at_ms);
        next.make_room(at_ms, ttl)?;
        let hold = Hold {
            amount: amount.minor(),
            at_ms,
        };
        next.holds.insert(payment.as_str().to_owned(), hold);
        if write(ctx, player, &limits, &next).await? {
            return Ok(());
        }
    }
    Err(contended())
}

/// Settle `payment`'s hold, if it still has one: counted (`commit`, its
/// payment was captured) or just gone (its payment failed, was canceled,
/// or its session never opened). Once, however often called.
async fn settle(
    ctx: &Ctx,
    player: &PlayerId,
    currency: Currency,
    payment: &PaymentId,
    commit: bool,
) -> Result<(), Error> {
    for _ in 0..MAX_RACES {
        let limits = load(ctx, player, currency).await?;
        let mut next = limits.usage.clone();
        let Some(hold) = next.holds.remove(payment.as_str()) else {
            return Ok(());
        };
        if commit {
            next.count(hold)?;
        }
        next.prune(ctx.now_ms());
        if write(ctx, player, &limits, &next).await? {
            return Ok(());
        }
    }
    Err(contended())
}

/// A captured deposit's hold counts for good.
pub async fn commit(
    ctx: &Ctx,
    player: &PlayerId,
    currency: Currency,
    payment: &PaymentId,
) -> Result<(), Error> {
    settle(ctx, player, currency, payment, true).await
}

/// A failed or canceled deposit (or one whose session never opened) frees
/// its hold.
pub async fn release(
    ctx: &Ctx,
    player: &PlayerId,
    currency: Currency,
    payment: &PaymentId,
) -> Result<(), Error> {
    settle(ctx, player, currency, payment, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::HOUR_MS;
    use crate::store::Attr;

    fn at(day: &str, hour: i64) -> i64 {
        Day::parse(day).unwrap().start_ms() + hour * HOUR_MS
    }

    #[test]
    fn a_hold_counts_while_live_and_in_its_period() {
        let mut u = Usage::default();
        let t = at("2026-12-07", 10);
        u.holds.insert(
            "pay_a".into(),
            Hold {
                amount: 500,
                at_ms: t,
            },
        );
        let ttl = 25 * HOUR_MS;
        assert_eq!(u.used(Period::Day, t + HOUR_MS, ttl), 500);
        // The next day: not in that day's period, still in the week's.
        assert_eq!(u.used(Period::Day, t + 20 * HOUR_MS, ttl), 0);
        assert_eq!(u.used(Period::Week, t + 20 * HOUR_MS, ttl), 500);
        // Expired: counts nowhere, without a write.
        assert_eq!(u.used(Period::Week, t + 26 * HOUR_MS, ttl), 0);
    }

    #[test]
    fn a_commit_counts_in_the_hold_s_periods_unless_they_are_over() {
        let mut u = Usage::default();
        let monday = at("2026-12-07", 9);
        u.count(Hold {
            amount: 100,
            at_ms: monday,
        })
        .unwrap();
        // Tuesday's capture: a new day, the same week and month.
        let tuesday = at("2026-12-08", 9);
        u.count(Hold {
            amount: 40,
            at_ms: tuesday,
        })
        .unwrap();
        assert_eq!(u.used(Period::Day, tuesday, 1), 40);
        assert_eq!(u.used(Period::Week, tuesday, 1), 140);
        assert_eq!(u.used(Period::Month, tuesday, 1), 140);
        // A late commit of Monday's second hold: its day is over.
        u.count(Hold {
            amount: 7,
            at_ms: monday,
        })
        .unwrap();
        assert_eq!(u.used(Period::Day, tuesday, 1), 40);
        assert_eq!(u.used(Period::Week, tuesday, 1), 147);
    }

    #[test]
    fn room_is_made_from_expired_holds_only() {
        let ttl = HOUR_MS;
        let now = at("2026-12-07", 12);
        let mut u = Usage::default();
        for i in 0..MAX_HOLDS {
            let age = if i == 3 { 2 * HOUR_MS } else { 0 };
            u.holds.insert(
                format!("pay_{i:02}"),
                Hold {
                    amount: 1,
                    at_ms: now - age,
                },
            );
        }
        u.make_room(now, ttl).unwrap();
        assert!(!u.holds.contains_key("pay_03"));
        assert_eq!(u.holds.len(), MAX_HOLDS - 1);
        u.holds.insert(
            "pay_new".into(),
            Hold {
                amount: 1,
                at_ms: now,
            },
        );
        assert!(matches!(u.make_room(now, ttl), Err(Error::RateLimited)));
    }

    #[test]
    fn spent_holds_are_pruned_and_the_update_says_what_changed() {
        let old = Hold {
            amount: 9,
            at_ms: at("2026-10-01", 1),
        };
        let fresh = Hold {
            amount: 5,
            at_ms: at("2026-12-07", 1),
        };
        let before = Usage {
            holds: [("pay_old".to_owned(), old)].into_iter().collect(),
            ..Usage::default()
        };
        let mut next = before.clone();
        next.prune(at("2026-12-07", 2));
        next.holds.insert("pay_new".into(), fresh);
        let ops = before.ops_to(&next);
        assert!(ops.contains(&UpdateOp::Remove("hold#pay_old".into())));
        let encoded = format!("5:{}", fresh.at_ms);
        assert!(ops.contains(&UpdateOp::set("hold#pay_new", encoded.as_str())));
        assert_eq!(ops.len(), 2);
        let item: Item = [("hold#pay_new".to_owned(), Attr::from(encoded.as_str()))]
            .into_iter()
            .collect();
        assert_eq!(Usage::from_item(Some(&item)).holds["pay_new"], fresh);
    }
}
