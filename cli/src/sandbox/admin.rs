//! The sandbox PSP's admin API: chaos knobs, its own delivery log,
//! chargebacks and account fees.

use super::*;

pub(super) async fn chaos_view(State(st): St, headers: HeaderMap) -> Answer {
    admin_gate(&st, &headers)?;
    Ok(Json(st.chaos()).into_response())
}

pub(super) async fn chaos_set(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    admin_gate(&st, &headers)?;
    let patch: ChaosPatch = parse_body(&raw)?;
    let mut chaos = st.chaos.write().map_err(|_| {
        api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "chaos poisoned",
        )
    })?;
    let next = chaos
        .patched(patch)
        .map_err(|(field, why)| invalid(field, why))?;
    *chaos = next.clone();
    tracing::warn!(psp = %st.opts.name, chaos = ?next, "sandbox chaos knobs set");
    Ok(Json(next).into_response())
}

#[derive(Deserialize)]
pub(super) struct LimitQuery {
    limit: Option<usize>,
}

pub(super) async fn deliveries(
    State(st): St,
    headers: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Answer {
    admin_gate(&st, &headers)?;
    let limit = q.limit.unwrap_or(100).min(MAX_DELIVERIES_SHOWN);
    Ok(Json(json!({"deliveries": st.deliveries.recent(limit)})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargebackBody {
    reference: String,
}

/// A chargeback on a captured payment: a settlement line and a webhook.
pub(super) async fn chargeback(
    State(st): St,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    admin_gate(&st, &headers)?;
    let body: ChargebackBody = parse_body(&raw)?;
    let today = Day::today();
    let c = st
        .with_book(|b| {
            let c = b
                .charges
                .get(&body.reference)
                .filter(|c| c.status == ChargeStatus::Captured)?
                .clone();
            let line = SettlementLine {
                reference: format!("cb_{}", c.reference),
                payment_id: c.payment_id.clone(),
                kind: "chargeback",
                gross_minor: -c.amount.minor(),
                fee_minor: st.opts.fixed_fee_minor,
                currency: c.amount.currency(),
                settled_date: today.to_string(),
            };
            b.settle(line, today);
            Some(c)
        })?
        .ok_or_else(|| invalid("reference", "no captured payment with this reference"))?;
    let mut ev = payment_event(&c, "charged_back");
    ev["type"] = json!("chargeback");
    send_events(&st, "chargeback", vec![("charged_back".to_owned(), ev)]);
    let reply = json!({"reference": c.reference, "status": "charged_back"});
    Ok((StatusCode::ACCEPTED, Json(reply)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeBody {
    amount: String,
    currency: String,
}

/// An account fee line (type `fee`) on today's settlement report.
pub(super) async fn account_fee(
    State(st): St,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    admin_gate(&st, &headers)?;
    let body: FeeBody = parse_body(&raw)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let today = Day::today();
    let reference = new_ulid("fee").to_ascii_lowercase();
    let line = SettlementLine {
        reference: reference.clone(),
        payment_id: String::new(),
        kind: "fee",
        gross_minor: 0,
        fee_minor: amount.minor(),
        currency: amount.currency(),
        settled_date: today.to_string(),
    };
    st.with_book(|b| b.settle(line, today))?;
    Ok((StatusCode::CREATED, Json(json!({"reference": reference}))).into_response())
}
