//! Self-exclusion and time-out: deposits and bets are refused (403
//! `self_excluded`) until the end the player chose, or for good; a payout
//! of what is left stays possible. It can be lengthened, never shortened
//! or lifted early: the write is conditional on the stored end being no
//! later than the new one.

use serde::Serialize;

use crate::error::{Error, ErrorCode};
use crate::ids::PlayerId;
use crate::schema::keys;
use crate::store::{item, Attr, Cond, ItemExt, Key, Query, SkRange, StoreError, UpdateOp, Write};

use crate::domain::request::Body;
use crate::domain::Ctx;

/// The end of an indefinite exclusion.
const INDEFINITE: i64 = i64::MAX;

/// `POST /v1/players/{id}/self-exclusion`: `{"until_ms": <epoch ms>}` or
/// `{"indefinite": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exclusion {
    pub until_ms: i64,
}

impl Exclusion {
    pub fn parse(b: &Body, now_ms: i64) -> Result<Exclusion, Error> {
        b.only(&["until_ms", "indefinite"])?;
        match (b.opt_i64("until_ms")?, b.opt_bool("indefinite")?) {
            (None, Some(true)) => Ok(Exclusion {
                until_ms: INDEFINITE,
            }),
            (Some(until), None | Some(false)) if until > now_ms => {
                Ok(Exclusion { until_ms: until })
            }
            (Some(_), None | Some(false)) => {
                Err(Error::validation("until_ms", "must be in the future"))
            }
            (Some(_), Some(true)) => Err(Error::validation(
                "indefinite",
                "give until_ms or indefinite, not both",
            )),
            (None, _) => Err(Error::validation(
                "until_ms",
                "give until_ms (epoch ms) or indefinite: true",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExclusionView {
    pub player_id: PlayerId,
    pub active: bool,
    pub indefinite: bool,
    /// The end (epoch ms), absent when indefinite or none.
    pub until_ms: Option<i64>,
}

fn view(player: &PlayerId, until: Option<i64>, now_ms: i64) -> ExclusionView {
    let active = until.is_some_and(|u| u > now_ms);
    ExclusionView {
        player_id: player.clone(),
        active,
        indefinite: until == Some(INDEFINITE),
        until_ms: until.filter(|u| *u != INDEFINITE),
    }
}

/// Limits items of one player an exclusion bumps (one per currency).
const MAX_CURRENCIES: usize = 90;

/// Exclude `player` until `e.until_ms` (never earlier than already set).
/// One transaction with a version bump of each of the player's limits
/// items, so a deposit that read no exclusion before it cannot then write
/// its hold.
pub async fn set(ctx: &Ctx, player: &PlayerId, e: Exclusion) -> Result<ExclusionView, Error> {
    let key = keys::self_exclusion(player);
    let mut writes = vec![Write::Put {
        item: item(&key, [("until_ms", Attr::N(e.until_ms))]),
        cond: Some(Cond::Or(vec![
            Cond::NotExists,
            Cond::Lt("until_ms".into(), Attr::N(e.until_ms.saturating_add(1))),
        ])),
    }];
    let q = Query::new(
        keys::player_pk(player),
        SkRange::Prefix(keys::LIMITS_PREFIX.into()),
        MAX_CURRENCIES,
    );
    for limits in ctx.store.query(&q).await?.items {
        let Some(sk) = limits.str_attr("sk") else {
            continue;
        };
        writes.push(Write::Update {
            key: Key::new(keys::player_pk(player), sk),
            ops: vec![UpdateOp::Add("version".into(), 1)],
            cond: Some(Cond::Exists),
        });
    }
    let result = match writes.len() {
        1 => ctx.store.write(writes.remove(0)).await,
        _ => ctx.store.transact(writes).await,
    };
    match result {
        Ok(()) => {
            tracing::info!(player = %player, "self-exclusion set");
            Ok(view(player, Some(e.until_ms), ctx.now_ms()))
        }
        Err(StoreError::ConditionFailed { index: 0, .. }) => Err(Error::Conflict {
            code: ErrorCode::SelfExclusionActive,
            reason: "a self-exclusion cannot be shortened or lifted early".into(),
        }),
        Err(StoreError::ConditionFailed { .. }) => Err(Error::Unavailable(
            "the player's limits moved meanwhile; retry".into(),
        )),
        Err(err) => Err(err.into()),
    }
}

async fn until(ctx: &Ctx, player: &PlayerId) -> Result<Option<i64>, Error> {
    let it = ctx.store.get(&keys::self_exclusion(player)).await?;
    Ok(it.and_then(|i| i.int_attr("until_ms")))
}

/// `GET /v1/players/{id}/self-exclusion`.
pub async fn get(ctx: &Ctx, player: &PlayerId) -> Result<ExclusionView, Error> {
    Ok(view(player, until(ctx, player).await?, ctx.now_ms()))
}

/// Refuse a deposit or a bet of an excluded player (one read).
pub async fn check(ctx: &Ctx, player: &PlayerId, now_ms: i64) -> Result<(), Error> {
    match until(ctx, player).await? {
        Some(u) if u > now_ms => Err(Error::SelfExcluded {
            until_ms: (u != INDEFINITE).then_some(u),
        }),
        _ => Ok(()),
    }
}

/// The transaction check that no exclusion is in force at `now_ms` (a bet
/// carries it in its own transaction).
pub fn still_clear(player: &PlayerId, now_ms: i64) -> Write {
    Write::Check {
        key: keys::self_exclusion(player),
        cond: Cond::Or(vec![
            Cond::NotExists,
            Cond::Lt("until_ms".into(), Attr::N(now_ms.saturating_add(1))),
        ]),
    }
}
