//! Responsible gambling: deposit limits per player and currency over a
//! calendar day, ISO week and calendar month (UTC), and self-exclusion.
//!
//! - A decrease (or a first limit) applies at once; an increase or a
//!   removal waits for the jurisdiction's cooling-off and is shown pending
//!   with its effective time (Sweden: also not before the current period
//!   ends). Which value is in force is computed from the stored item and
//!   the clock, so a pending change takes effect without a write.
//! - Limits are GROSS: a deposit intent holds its amount against every
//!   limit in force, in one conditional write of the limits item that also
//!   carries the usage (`reserve`), so two concurrent intents can never
//!   together pass a limit; a captured payment's hold counts for good, a
//!   failed or canceled one's is freed, once; payouts and refunds free
//!   nothing.
//! - Self-exclusion refuses deposits and bets until its end (or for good);
//!   it can be lengthened, never shortened (`exclusion`).
//!
//! | item                                  | pk                | sk             |
//! |---------------------------------------|-------------------|----------------|
//! | limits of a currency, with its usage and its open intents' holds | `PLAYER#<player>` | `LIMITS#<ccy>` |
//! | self-exclusion                        | `PLAYER#<player>` | `SELFEXCL`     |

use serde::Serialize;

use crate::clock::Day;
#[cfg(test)]
use crate::domain::policy::HOUR_MS;
use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::{Currency, Money};
use crate::schema::keys;
use crate::store::{Cond, Item, ItemExt, StoreError, UpdateOp, Write};

pub use crate::domain::policy::RgPolicy;
use crate::domain::request::Body;
use crate::domain::Ctx;

pub mod exclusion;
pub mod reserve;

/// Lost races on a limits item retried before answering 503.
const MAX_RACES: usize = 32;

/// A limit's period: calendar day, ISO week (from Monday), calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn as_str(&self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The period holding `day`: its first day and the day after it.
    pub fn span(&self, day: Day) -> (Day, Day) {
        match self {
            Period::Day => (day, day.next()),
            Period::Week => (day.week_start(), day.week_start().plus_days(7)),
            Period::Month => (day.month_start(), day.next_month_start()),
        }
    }
}

/// One period's stored limit: the value in force before any pending change,
/// and the change waiting for its time (`None` inside = a removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stored {
    active: Option<i64>,
    pending: Option<(Option<i64>, i64)>,
}

impl Stored {
    fn read(it: Option<&Item>, p: Period) -> Stored {
        let n = |suffix: &str| it.and_then(|i| i.int_attr(&format!("{}{suffix}", p.as_str())));
        let pending = n("_from_ms").map(|from| (n("_next").filter(|v| *v >= 0), from));
        Stored {
            active: n(""),
            pending,
        }
    }

    /// The limit in force at `now_ms`.
    fn in_force(&self, now_ms: i64) -> Option<i64> {
        match self.pending {
            Some((next, from)) if from <= now_ms => next,
            _ => self.active,
        }
    }
}

/// A player's limits in one currency, as stored (with its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub currency: Currency,
    version: i64,
    periods: [Stored; 3],
    usage: reserve::Usage,
}

impl Limits {
    fn from_item(currency: Currency, it: Option<&Item>) -> Limits {
        Limits {
            currency,
            version: it.and_then(|i| i.int_attr("version")).unwrap_or(0),
            periods: Period::ALL.map(|p| Stored::read(it, p)),
            usage: reserve::Usage::from_item(it),
        }
    }

    fn stored(&self, p: Period) -> Stored {
        self.periods[p as usize]
    }

    /// The limit in force for `p` (minor units), with the preset's default.
    pub fn in_force(&self, p: Period, now_ms: i64, policy: &RgPolicy) -> Option<i64> {
        let set = self.stored(p).in_force(now_ms);
        let cap = match (p, policy.default_month_cap) {
            (Period::Month, Some(cap)) if cap.currency() == self.currency => Some(cap.minor()),
            _ => None,
        };
        set.or(cap)
    }

    /// The condition that the limits item is still as read.
    fn unchanged(&self) -> Cond {
        if self.version == 0 {
            Cond::Or(vec![Cond::NotExists, Cond::AttrNotExists("version".into())])
        } else {
            Cond::eq("version", self.version)
        }
    }
}

/// Read a player's limits in `currency` (one read).
pub async fn load(ctx: &Ctx, player: &PlayerId, currency: Currency) -> Result<Limits, Error> {
    let it = ctx
        .store
        .get(&keys::player_limits(player, currency))
        .await?;
    Ok(Limits::from_item(currency, it.as_ref()))
}

/// `PUT /v1/players/{id}/limits`: any of day / week / month, each a decimal
/// string, or `null` to remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsChange {
    pub currency: Currency,
    /// `Some(None)` removes the period's limit.
    pub periods: Vec<(Period, Option<Money>)>,
}

impl LimitsChange {
    pub fn parse(b: &Body) -> Result<LimitsChange, Error> {
        b.only(&["currency", "day", "week", "month"])?;
        let currency = Currency::parse(b.str("currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let mut periods = Vec::new();
        for p in Period::ALL {
            let name = p.as_str();
            if !b.has(name) {
                continue;
            }
            let value = match b.opt_str(name)? {
                None => None,
                Some(text) => Some(
                    Money::parse_decimal(text, currency)
                        .map_err(|e| Error::validation(name, e.to_string()))?,
                ),
            };
            periods.push((p, value));
        }
        if periods.is_empty() {
            return Err(Error::validation(
                "day",
                "give at least one of day, week, month",
            ));
        }
        Ok(LimitsChange { currency, periods })
    }
}

/// When a change of `p` from `current` to `next` takes effect.
fn effective_from(
    p: Period,
    current: Option<i64>,
    next: Option<i64>,
    now_ms: i64,
    policy: &RgPolicy,
) -> i64 {
    let tighter = match (current, next) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(c), Some(n)) => n <= c,
    };
    if tighter {
        return now_ms;
    }
    let cooled = now_ms.saturating_add(policy.cooling_off_ms);
    if policy.wait_period_end {
        let (_, end) = p.span(Day::of_ms(now_ms));
        cooled.max(end.start_ms())
    } else {
        cooled
    }
}

/// Apply a change: decreases at once, increases and removals pending. One
/// conditional write on the version read; a deposit's hold written
/// meanwhile makes it read again (bounded), then 503 to retry.
pub async fn set(ctx: &Ctx, player: &PlayerId, change: &LimitsChange) -> Result<LimitsView, Error> {
    for _ in 0..MAX_RACES {
        let limits = load(ctx, player, change.currency).await?;
        let w = Write::Update {
            key: keys::player_limits(player, change.currency),
            ops: change_ops(&limits, change, ctx.now_ms(), &ctx.policies.rg),
            cond: Some(limits.unchanged()),
        };
        match ctx.store.write(w).await {
            Ok(()) => {
                tracing::info!(player = %player, currency = change.currency.code(), "deposit limits changed");
                return view(ctx, player, change.currency).await;
            }
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable("the limits changed meanwhile".into()))
}

fn change_ops(
    limits: &Limits,
    change: &LimitsChange,
    now: i64,
    policy: &RgPolicy,
) -> Vec<UpdateOp> {
    let mut ops = vec![
        UpdateOp::set("version", limits.version + 1),
        UpdateOp::set("currency", change.currency.code()),
    ];
    for (p, next) in &change.periods {
        let name = p.as_str();
        let next = next.map(|m| m.minor());
        let current = limits.stored(*p).in_force(now);
        let from = effective_from(*p, current, next, now, policy);
        if from <= now {
            match next {
                Some(v) => ops.push(UpdateOp::set(name, v)),
                None => ops.push(UpdateOp::Remove(name.to_owned())),
            }
            ops.push(UpdateOp::Remove(format!("{name}_next")));
            ops.push(UpdateOp::Remove(format!("{name}_from_ms")));
        } else {
            if let Some(v) = current {
                ops.push(UpdateOp::set(name, v));
            }
            ops.push(UpdateOp::set(&format!("{name}_next"), next.unwrap_or(-1)));
            ops.push(UpdateOp::set(&format!("{name}_from_ms"), from));
        }
    }
    ops
}

/// One period's limit as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodView {
    pub period: &'static str,
    /// The limit in force (`null`: none).
    pub limit: Option<String>,
    pub used: String,
    pub remaining: Option<String>,
    pub period_start: String,
    pub period_end: String,
    pub pending: Option<PendingView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingView {
    /// The limit it will be (`null`: removed).
    pub limit: Option<String>,
    pub effective_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitsView {
    pub player_id: PlayerId,
    pub currency: Currency,
    pub preset: &'static str,
    pub periods: Vec<PeriodView>,
}

/// `GET /v1/players/{id}/limits?currency=`: limits in force, what is used
/// of them, and pending changes.
pub async fn view(ctx: &Ctx, player: &PlayerId, currency: Currency) -> Result<LimitsView, Error> {
    let now = ctx.now_ms();
    let policy = &ctx.policies.rg;
    let limits = load(ctx, player, currency).await?;
    let fmt = |minor: i64| crate::money::format_minor(minor, currency);
    let mut periods = Vec::new();
    for p in Period::ALL {
        let (start, end) = p.span(Day::of_ms(now));
        let used = limits.usage.used(p, now, policy.reservation_ttl_ms);
        let limit = limits.in_force(p, now, policy);
        let pending = match limits.stored(p).pending {
            Some((next, from)) if from > now => Some(PendingView {
                limit: next.map(fmt),
                effective_ms: from,
            }),
            _ => None,
        };
        periods.push(PeriodView {
            period: p.as_str(),
            limit: limit.map(fmt),
            used: fmt(used),
            remaining: limit.map(|l| fmt(l.saturating_sub(used).max(0))),
            period_start: start.to_string(),
            period_end: end.to_string(),
            pending,
        });
    }
    Ok(LimitsView {
        player_id: player.clone(),
        currency,
        preset: policy.preset,
        periods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighter_applies_at_once_looser_waits() {
        let uk = RgPolicy::preset("uk").unwrap();
        let now = Day::parse("2026-12-02").unwrap().start_ms() + 10 * HOUR_MS;
        assert_eq!(effective_from(Period::Day, None, Some(100), now, &uk), now);
        assert_eq!(
            effective_from(Period::Day, Some(100), Some(50), now, &uk),
            now
        );
        assert_eq!(
            effective_from(Period::Day, Some(100), Some(150), now, &uk),
            now + 24 * HOUR_MS
        );
        assert_eq!(
            effective_from(Period::Day, Some(100), None, now, &uk),
            now + 24 * HOUR_MS
        );
        let se = RgPolicy::preset("se").unwrap();
        // 72 h, and not before the month ends.
        let month_end = Day::parse("2027-01-01").unwrap().start_ms();
        assert_eq!(
            effective_from(Period::Month, Some(100), Some(150), now, &se),
            month_end
        );
        assert_eq!(
            effective_from(Period::Day, Some(100), Some(150), now, &se),
            now + 72 * HOUR_MS
        );
        assert!(RgPolicy::preset("xx").is_none());
    }

    #[test]
    fn a_pending_change_is_in_force_from_its_time() {
        let s = Stored {
            active: Some(100),
            pending: Some((Some(300), 1_000)),
        };
        assert_eq!(s.in_force(999), Some(100));
        assert_eq!(s.in_force(1_000), Some(300));
        let removal = Stored {
            active: Some(100),
            pending: Some((None, 1_000)),
        };
        assert_eq!(removal.in_force(2_000), None);
    }

    #[test]
    fn the_german_preset_caps_a_month_by_default() {
        let de = RgPolicy::preset("de").unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let none = Limits::from_item(eur, None);
        assert_eq!(none.in_force(Period::Month, 0, &de), Some(100_000));
        assert_eq!(none.in_force(Period::Day, 0, &de), None);
        let sek = Limits::from_item(Currency::parse("SEK").unwrap(), None);
        assert_eq!(sek.in_force(Period::Month, 0, &de), None);
    }
}
