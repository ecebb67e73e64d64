//! Operator controls of routing: the health picture and the degradation
//! switch. Platform key only (checked at the edge). A player's levels are
//! set in [`crate::domain::players`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;

use crate::domain::request::Body;
use crate::domain::Ctx;

/// One PSP's circuit and window.
#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    pub circuit: &'static str,
    pub since_ms: i64,
    pub reason: String,
    pub samples: u64,
    pub error_pct: u64,
    pub p95_ms: u64,
}

/// `GET /v1/admin/routing`.
#[derive(Debug, Clone, Serialize)]
pub struct RoutingView {
    pub routes: BTreeMap<String, RouteView>,
    pub degraded: bool,
    pub degraded_forced: bool,
    pub degradation_note: String,
    pub fast_methods: Vec<String>,
}

/// `GET /v1/admin/routing`: every PSP's circuit and window, and the mode.
pub async fn routing_view(ctx: &Ctx) -> Result<RoutingView, Error> {
    let now = ctx.now_ms();
    ctx.psps
        .health
        .sync(ctx.store.as_ref(), ctx.psps.ids(), now)
        .await?;
    let modes = ctx.psps.modes.current(ctx.store.as_ref(), now).await?;
    let routes = ctx
        .psps
        .health
        .snapshot()
        .into_iter()
        .map(|(psp, h)| {
            let v = RouteView {
                circuit: h.circuit.as_str(),
                since_ms: h.changed_ms,
                reason: h.reason,
                samples: h.samples,
                error_pct: h.error_pct,
                p95_ms: h.p95_ms,
            };
            (psp.to_string(), v)
        })
        .collect();
    Ok(RoutingView {
        routes,
        degraded: modes.degraded,
        degraded_forced: modes.forced,
        degradation_note: modes.note,
        fast_methods: ctx.psps.router.fast_methods().map(str::to_owned).collect(),
    })
}

/// `PUT /v1/admin/degradation` `{"degraded": bool, "note": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegradationRequest {
    pub on: bool,
    pub note: String,
}

/// The longest degradation note kept.
pub const MAX_NOTE: usize = 500;

impl DegradationRequest {
    pub fn parse(body: &Body) -> Result<DegradationRequest, Error> {
        body.only(&["degraded", "note"])?;
        let on = body
            .opt_bool("degraded")?
            .ok_or_else(|| Error::validation("degraded", "must be true or false"))?;
        let note = match body.opt_str("note") {
            Ok(n) if n.is_none_or(|n| n.len() <= MAX_NOTE) => n.unwrap_or_default(),
            _ => {
                return Err(Error::validation(
                    "note",
                    "must be a string of at most 500 bytes",
                ))
            }
        };
        Ok(DegradationRequest {
            on,
            note: note.to_owned(),
        })
    }
}

/// The mode after a switch.
#[derive(Debug, Clone, Serialize)]
pub struct DegradationView {
    pub degraded: bool,
    pub degraded_forced: bool,
    pub note: String,
}

pub async fn set_degradation(ctx: &Ctx, r: &DegradationRequest) -> Result<DegradationView, Error> {
    let (on, note) = (r.on, r.note.as_str());
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
    Ok(DegradationView {
        degraded: view.degraded,
        degraded_forced: view.forced,
        note: view.note,
    })
}
