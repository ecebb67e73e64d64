//! Operator controls of routing: the health picture, the degradation
//! switch, a player's risk level. Platform key only (checked at the edge).

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::ids::PlayerId;
use crate::psp::routing::RiskLevel;
use crate::store::{Attr, UpdateOp, Write};

use super::keys;
use super::payout::KycLevel;
use super::Ctx;

/// `GET /v1/admin/routing`: every PSP's circuit and window, and the mode.
pub async fn routing_view(ctx: &Ctx) -> Result<Value, Error> {
    let now = ctx.now_ms();
    ctx.psps
        .health
        .sync(ctx.store.as_ref(), ctx.psps.ids(), now)
        .await?;
    let modes = ctx.psps.modes.current(ctx.store.as_ref(), now).await?;
    let routes: Map<String, Value> = ctx
        .psps
        .health
        .snapshot()
        .into_iter()
        .map(|(psp, h)| {
            let v = json!({
                "circuit": h.circuit.as_str(),
                "since_ms": h.changed_ms,
                "reason": h.reason,
                "samples": h.samples,
                "error_pct": h.error_pct,
                "p95_ms": h.p95_ms,
            });
            (psp.to_string(), v)
        })
        .collect();
    Ok(json!({
        "routes": routes,
        "degraded": modes.degraded,
        "degraded_forced": modes.forced,
        "degradation_note": modes.note,
        "fast_methods": ctx.psps.router.fast_methods().collect::<Vec<_>>(),
    }))
}

fn object(body: &Value) -> Result<&Map<String, Value>, Error> {
    body.as_object()
        .ok_or_else(|| Error::validation("body", "must be a JSON object"))
}

fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::validation(k, "unknown field")),
        None => Ok(()),
    }
}

/// `PUT /v1/admin/degradation` `{"degraded": bool, "note": "..."}`.
pub async fn set_degradation(ctx: &Ctx, body: &Value) -> Result<Value, Error> {
    let obj = object(body)?;
    only_fields(obj, &["degraded", "note"])?;
    let on = obj
        .get("degraded")
        .and_then(Value::as_bool)
        .ok_or_else(|| Error::validation("degraded", "must be true or false"))?;
    let note = match obj.get("note") {
        None => "",
        Some(Value::String(n)) if n.len() <= 500 => n,
        Some(_) => {
            return Err(Error::validation(
                "note",
                "must be a string of at most 500 bytes",
            ))
        }
    };
    let view = ctx
        .psps
        .modes
        .set_degraded(ctx.store.as_ref(), on, note, ctx.now_ms())
        .await?;
    tracing::warn!(
        degraded = on,
        forced = view.forced,
        "degradation mode switched"
    );
    Ok(json!({"degraded": view.degraded, "degraded_forced": view.forced, "note": view.note}))
}

/// `PUT /v1/admin/players/{player_id}/risk` `{"risk_level": "low|medium|high"}`.
pub async fn set_player_risk(ctx: &Ctx, player: &str, body: &Value) -> Result<Value, Error> {
    let parse = |v: &str| RiskLevel::parse(v).map(|l| l.as_str());
    set_profile_field(
        ctx,
        player,
        body,
        "risk_level",
        parse,
        "must be low, medium or high",
    )
    .await
}

/// `{"<field>": "<level>"}` on a player's profile: the one field, checked.
async fn set_profile_field(
    ctx: &Ctx,
    player: &str,
    body: &Value,
    field: &'static str,
    parse: impl Fn(&str) -> Option<&'static str>,
    expected: &str,
) -> Result<Value, Error> {
    let player =
        PlayerId::parse(player).map_err(|e| Error::validation("player_id", e.to_string()))?;
    let obj = object(body)?;
    only_fields(obj, &[field])?;
    let level = obj
        .get(field)
        .and_then(Value::as_str)
        .and_then(parse)
        .ok_or_else(|| Error::validation(field, expected))?;
    set_profile(ctx, &player, field, level).await?;
    Ok(json!({"player_id": player, field: level}))
}

/// Set one attribute of a player's profile (creating the profile).
async fn set_profile(ctx: &Ctx, player: &PlayerId, name: &str, value: &str) -> Result<(), Error> {
    let write = Write::Update {
        key: keys::player_profile(player),
        ops: vec![
            UpdateOp::set(name, value),
            UpdateOp::set("changed_ms", Attr::N(ctx.now_ms())),
        ],
        cond: None,
    };
    ctx.store.write(write).await?;
    Ok(())
}

/// `PUT /v1/admin/players/{player_id}/kyc` `{"kyc_level": "none|basic|full"}`.
pub async fn set_player_kyc(ctx: &Ctx, player: &str, body: &Value) -> Result<Value, Error> {
    let parse = |v: &str| KycLevel::parse(v).map(|l| l.as_str());
    set_profile_field(
        ctx,
        player,
        body,
        "kyc_level",
        parse,
        "must be none, basic or full",
    )
    .await
}
