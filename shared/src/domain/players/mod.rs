//! Players as the payment loop knows them: a KYC level and a risk level,
//! kept on the player's profile item and set by operators.

use serde::Serialize;

use crate::error::Error;
use crate::ids::PlayerId;
pub use crate::psp::routing::RiskLevel;
use crate::schema::keys;
use crate::store::{Attr, Cond, ItemExt, StoreError, UpdateOp, Write};

use crate::domain::request::Body;

use crate::domain::Ctx;

pub use crate::schema::status::KycLevel;

/// What the payment loop knows of a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Profile {
    pub kyc: KycLevel,
    pub risk: RiskLevel,
}

/// The player's profile (KYC none and risk low when none is recorded).
pub async fn profile(ctx: &Ctx, player: &PlayerId) -> Result<Profile, Error> {
    let p = ctx.store.get(&keys::player_profile(player)).await?;
    let attr = |name: &str| p.as_ref().and_then(|p| p.str_attr(name));
    Ok(Profile {
        kyc: attr("kyc_level")
            .and_then(KycLevel::parse)
            .unwrap_or_default(),
        risk: attr("risk_level")
            .and_then(RiskLevel::parse)
            .unwrap_or_default(),
    })
}

/// When the payment loop first saw the player (its first risk decision):
/// the account's age for the rules. Written once (`NotExists`); a race
/// keeps the first.
pub async fn first_seen(ctx: &Ctx, player: &PlayerId, now_ms: i64) -> Result<i64, Error> {
    let key = keys::player_first_seen(player);
    if let Some(at) = ctx
        .store
        .get(&key)
        .await?
        .and_then(|it| it.int_attr("at_ms"))
    {
        return Ok(at);
    }
    let write = Write::Put {
        item: crate::store::item(&key, [("at_ms", Attr::N(now_ms))]),
        cond: Some(crate::store::Cond::NotExists),
    };
    match ctx.store.write(write).await {
        Ok(()) => Ok(now_ms),
        Err(crate::store::StoreError::ConditionFailed { old, .. }) => {
            Ok(old.and_then(|o| o.int_attr("at_ms")).unwrap_or(now_ms))
        }
        Err(e) => Err(e.into()),
    }
}

/// `{"risk_level": "low|medium|high"}` or `{"kyc_level": "none|basic|full"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    Risk(RiskLevel),
    Kyc(KycLevel),
}

impl LevelChange {
    pub fn parse_risk(body: &Body) -> Result<LevelChange, Error> {
        let level = one_field(body, "risk_level")?;
        RiskLevel::parse(level)
            .map(LevelChange::Risk)
            .ok_or_else(|| Error::validation("risk_level", "must be low, medium or high"))
    }

    pub fn parse_kyc(body: &Body) -> Result<LevelChange, Error> {
        let level = one_field(body, "kyc_level")?;
        KycLevel::parse(level)
            .map(LevelChange::Kyc)
            .ok_or_else(|| Error::validation("kyc_level", "must be none, basic or full"))
    }

    fn field(&self) -> (&'static str, &'static str) {
        match self {
            LevelChange::Risk(r) => ("risk_level", r.as_str()),
            LevelChange::Kyc(k) => ("kyc_level", k.as_str()),
        }
    }
}

fn one_field<'a>(body: &'a Body, name: &'static str) -> Result<&'a str, Error> {
    body.only(&[name])?;
    body.str(name)
}

/// The answer to a level change: the player and the level now recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelView {
    pub player_id: PlayerId,
    #[serde(flatten)]
    pub level: std::collections::BTreeMap<&'static str, &'static str>,
}

/// `PUT /v1/admin/players/{player_id}/risk|kyc`: set one level on the
/// player's profile (creating the profile).
pub async fn set_level(
    ctx: &Ctx,
    player: &PlayerId,
    change: LevelChange,
) -> Result<LevelView, Error> {
    let (name, value) = change.field();
    let mut ops = vec![
        UpdateOp::set(name, value),
        UpdateOp::set("changed_ms", Attr::N(ctx.now_ms())),
    ];
    // A KYC change answers an open step-up: measured once (the condition
    // on the ask's time), then the ask is cleared.
    let asked = match change {
        LevelChange::Kyc(_) => kyc_asked_ms(ctx, player).await?,
        LevelChange::Risk(_) => None,
    };
    let mut cond = None;
    if let Some(at) = asked {
        ops.push(UpdateOp::Remove(KYC_ASKED.into()));
        cond = Some(Cond::eq(KYC_ASKED, Attr::N(at)));
    }
    let write = Write::Update {
        key: keys::player_profile(player),
        ops,
        cond,
    };
    match ctx.store.write(write).await {
        Ok(()) => {
            if let Some(at) = asked {
                crate::domain::observe::kyc_raised(ctx, ctx.now_ms().saturating_sub(at));
            }
        }
        // Another change answered the ask first: set the level alone.
        Err(StoreError::ConditionFailed { .. }) => {
            let ops = vec![
                UpdateOp::set(name, value),
                UpdateOp::set("changed_ms", Attr::N(ctx.now_ms())),
            ];
            let key = keys::player_profile(player);
            ctx.store
                .write(Write::Update {
                    key,
                    ops,
                    cond: None,
                })
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(LevelView {
        player_id: player.clone(),
        level: [(name, value)].into_iter().collect(),
    })
}

/// When a risk step-up first asked this player for more KYC (cleared when
/// an operator changes the level): the start of the KYC time metric.
const KYC_ASKED: &str = "kyc_asked_ms";

async fn kyc_asked_ms(ctx: &Ctx, player: &PlayerId) -> Result<Option<i64>, Error> {
    let found = ctx.store.get(&keys::player_profile(player)).await?;
    Ok(found.and_then(|it| it.int_attr(KYC_ASKED)))
}

/// A step-up asked this player for more KYC: remember when (the first ask
/// only) and count it. Best effort: the answer (402) does not depend on it.
pub async fn kyc_step_up_asked(ctx: &Ctx, player: &PlayerId) {
    let write = Write::Update {
        key: keys::player_profile(player),
        ops: vec![UpdateOp::set(KYC_ASKED, Attr::N(ctx.now_ms()))],
        cond: Some(Cond::AttrNotExists(KYC_ASKED.into())),
    };
    match ctx.store.write(write).await {
        Ok(()) => crate::domain::observe::kyc_required(ctx),
        Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "could not record a KYC step-up"),
    }
}
