//! Players as the payment loop knows them: a KYC level and a risk level,
//! kept on the player's profile item and set by operators.

use serde::Serialize;

use crate::error::Error;
use crate::ids::PlayerId;
pub use crate::psp::routing::RiskLevel;
use crate::schema::keys;
use crate::store::{Attr, ItemExt, UpdateOp, Write};

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
    let write = Write::Update {
        key: keys::player_profile(player),
        ops: vec![
            UpdateOp::set(name, value),
            UpdateOp::set("changed_ms", Attr::N(ctx.now_ms())),
        ],
        cond: None,
    };
    ctx.store.write(write).await?;
    Ok(LevelView {
        player_id: player.clone(),
        level: [(name, value)].into_iter().collect(),
    })
}
