//! The delivery log: every delivery we did not accept, kept for operators
//! (verified ones under the payment, the others under the id they claim).

use super::*;

/// The payment id a delivery claims, for logging deliveries we reject.
pub(super) fn claimed_payment_id(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    PaymentId::parse(v.get("payment_id")?.as_str()?)
        .ok()
        .map(|p| p.as_str().to_owned())
}

pub(super) fn delivery_attrs(
    ev: &PspEvent,
    outcome: Outcome,
    at_ms: i64,
) -> Vec<(&'static str, Attr)> {
    vec![
        ("outcome", Attr::from(outcome.as_str())),
        ("psp", Attr::from(ev.psp.as_str())),
        ("event_id", Attr::from(ev.event_id.as_str())),
        ("status", Attr::from(ev.status.as_str())),
        ("amount", Attr::N(ev.amount_minor)),
        ("currency", Attr::from(ev.currency.code())),
        ("at_ms", Attr::N(at_ms)),
    ]
}

/// Record a non-accepted delivery. Logging must not change the answer, so a
/// failure here is only reported.
pub(super) async fn log_delivery(ctx: &Ctx, ev: &PspEvent, outcome: Outcome) {
    tracing::info!(event_id = %ev.event_id, payment_id = %ev.payment_id, psp = %ev.psp, outcome = outcome.as_str(), "webhook delivery");
    let key = keys::delivery(ev.payment_id.as_str(), &new_ulid("dlv"));
    let put = Write::Put {
        item: item(&key, delivery_attrs(ev, outcome, ctx.now_ms())),
        cond: None,
    };
    if let Err(e) = ctx.store.write(put).await {
        tracing::warn!(error = %e, "could not log webhook delivery");
    }
}

pub(super) async fn log_rejected(ctx: &Ctx, d: &Delivery<'_>, outcome: Outcome) {
    log_by_claim(ctx, d.psp, claimed_payment_id(d.raw), outcome, false).await;
}

/// Record a delivery (or batch item) that reached no event under the
/// payment it claims, or under `unknown#<psp>`.
pub(super) async fn log_by_claim(
    ctx: &Ctx,
    psp: &PspId,
    claimed: Option<String>,
    outcome: Outcome,
    verified: bool,
) {
    let payment = claimed.unwrap_or_else(|| format!("unknown#{psp}"));
    tracing::info!(payment_id = %payment, psp = %psp, outcome = outcome.as_str(), "webhook delivery");
    let key = keys::unverified_delivery(&payment, &new_ulid("dlv"));
    let attrs = [
        ("outcome", Attr::from(outcome.as_str())),
        ("psp", Attr::from(psp.as_str())),
        ("at_ms", Attr::N(ctx.now_ms())),
        ("verified", Attr::B(verified)),
    ];
    if let Err(e) = ctx
        .store
        .write(Write::Put {
            item: item(&key, attrs),
            cond: None,
        })
        .await
    {
        tracing::warn!(error = %e, "could not log webhook delivery");
    }
}
