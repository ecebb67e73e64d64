//! Velocity, exact: one item per decided movement (deposit intent or
//! payout) under each dimension's value (player, device, instrument, IP),
//! keyed by the movement's flow, its time and its id, written with a
//! `NotExists` condition in the transaction that stores its risk decision,
//! so a retried request never counts twice. The time is the one inside the
//! movement's id (when its request was first reserved), so a retry writes
//! the very same key. A window is one query over the
//! sort-key range `[now − window, now]`: items older than the window are
//! never read, whether or not TTL has deleted them yet (TTL only cleans).
//!
//! | item            | pk                      | sk                              |
//! |-----------------|-------------------------|---------------------------------|
//! | one movement    | `VEL#<flow>#<dim>#<value>` | `T#<at ms, 15 digits>#<id>`  |
//!
//! The player dimension has no items of its own: the player's risk
//! decisions (`RISKDEC#<player>`, the same time-ordered sort key, the
//! movement's flow and amount on it, put with `NotExists` by the very same
//! transaction) are counted instead, so a player window costs no write.

use crate::error::Error;
use crate::store::{item, Attr, Cond, ItemExt, Query, SkRange, Write, TTL};

use crate::domain::risk::rules::{Dimension, Flow};
use crate::domain::Ctx;
use crate::schema::keys;

/// Items read per page of a window.
const PAGE: usize = 1_000;
/// Pages read at most per window (a value that busy is declined anyway).
const MAX_PAGES: usize = 10;

impl Dimension {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dimension::Player => "player",
            Dimension::Device => "device",
            Dimension::Instrument => "instrument",
            Dimension::Ip => "ip",
        }
    }
}

fn pk(flow: Flow, dim: Dimension, value: &str) -> String {
    keys::velocity_pk(flow.as_str(), dim.as_str(), value)
}

fn sk(at_ms: i64, id: &str) -> String {
    keys::timed_sk(at_ms, id)
}

/// One movement to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement<'a> {
    /// The movement's own id (payment or payout): the idempotency of the count.
    pub id: &'a str,
    pub at_ms: i64,
    pub amount_minor: i64,
    /// Kept this long (the longest window of the rules), then TTL cleans it.
    pub keep_ms: i64,
}

/// The writes that count `m` under each `(dimension, value)`, for the
/// movement's own transaction. A value longer than 128 bytes or empty is
/// not counted (it is not an identifier).
pub fn record_writes(flow: Flow, m: &Movement<'_>, values: &[(Dimension, &str)]) -> Vec<Write> {
    values
        .iter()
        .filter(|(dim, v)| *dim != Dimension::Player && !v.is_empty() && v.len() <= 128)
        .map(|(dim, value)| {
            let key = keys::velocity(flow.as_str(), dim.as_str(), value, m.at_ms, m.id);
            let expires_s = m.at_ms.saturating_add(m.keep_ms) / 1000;
            Write::Put {
                item: item(
                    &key,
                    [
                        ("amount", Attr::N(m.amount_minor)),
                        (TTL, Attr::N(expires_s)),
                    ],
                ),
                cond: Some(Cond::NotExists),
            }
        })
        .collect()
}

/// Movements and their sum for `(dim, value)` in `[now − window, now]`.
pub async fn window(
    ctx: &Ctx,
    flow: Flow,
    dim: Dimension,
    value: &str,
    window_ms: i64,
    now_ms: i64,
) -> Result<(u32, i64), Error> {
    let from = sk(now_ms.saturating_sub(window_ms), "");
    let to = sk(now_ms, "~");
    // The player's decisions are its movements (of every flow: filtered).
    let (partition, only_flow) = match dim {
        Dimension::Player => (keys::risk_decision_value_pk(value), Some(flow.as_str())),
        _ => (pk(flow, dim, value), None),
    };
    let mut q = Query::new(partition, SkRange::Between(from, to), PAGE);
    let (mut count, mut sum) = (0u32, 0i64);
    for _ in 0..MAX_PAGES {
        let page = ctx.store.query(&q).await?;
        let counted = page
            .items
            .iter()
            .filter(|it| only_flow.is_none_or(|f| it.str_attr("flow") == Some(f)));
        for it in counted {
            count = count.saturating_add(1);
            sum = sum.saturating_add(it.int_attr("amount").unwrap_or(0));
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok((count, sum)),
        }
    }
    // Bounded: more than MAX_PAGES × PAGE movements in one window.
    Ok((count, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_time_and_skip_non_identifiers() {
        assert!(sk(1_000, "pay_b") < sk(2_000, "pay_a"));
        let m = Movement {
            id: "pay_1",
            at_ms: 5_000,
            amount_minor: 100,
            keep_ms: 86_400_000,
        };
        let long = "x".repeat(129);
        let writes = record_writes(
            Flow::Deposit,
            &m,
            &[
                (Dimension::Instrument, "tok"),
                (Dimension::Device, ""),
                (Dimension::Ip, long.as_str()),
            ],
        );
        assert_eq!(writes.len(), 1);
        // The player's decisions are its velocity items: none apart.
        assert!(record_writes(Flow::Deposit, &m, &[(Dimension::Player, "ann")]).is_empty());
    }
}
