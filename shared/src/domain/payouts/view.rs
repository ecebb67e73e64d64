//! How a payout is shown (`GET /v1/payouts/{id}`, and the answer to its init).

use serde::Serialize;

use super::*;
use crate::store::Doc;

/// A payout: status, route, history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayoutView {
    pub payout_id: Option<String>,
    pub player_id: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub method: Option<String>,
    pub psp: Option<String>,
    pub route_reason: Option<String>,
    pub status: Option<PayoutStatus>,
    pub psp_reference: Option<String>,
    pub final_reason: Option<String>,
    pub flagged: bool,
    pub created_at_ms: Option<i64>,
    pub history: Option<Doc>,
    /// The risk decision's outcome, score, rules version and id.
    pub risk: Option<Doc>,
}

pub async fn view(ctx: &Ctx, id: &str) -> Result<PayoutView, Error> {
    let it = ctx
        .store
        .get(&keys::payout(id))
        .await?
        .ok_or(Error::NotFound { what: "payout" })?;
    Ok(view_of(&it))
}

pub(super) fn view_of(it: &Item) -> PayoutView {
    let text = |name: &str| it.str_attr(name).map(str::to_owned);
    let currency = it
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok());
    let amount = match (it.int_attr("amount"), currency) {
        (Some(a), Some(c)) => Some(crate::money::format_minor(a, c)),
        _ => None,
    };
    PayoutView {
        payout_id: text("payout_id"),
        player_id: text("player"),
        amount,
        currency: text("currency"),
        method: text("method"),
        psp: text("psp"),
        route_reason: text("route_reason"),
        status: it.str_attr("status").and_then(PayoutStatus::parse),
        psp_reference: text("psp_reference"),
        final_reason: text("final_reason"),
        flagged: it.get("flagged").and_then(Attr::as_bool).unwrap_or(false),
        created_at_ms: it.int_attr("created_ms"),
        history: it.get("history").cloned().map(Doc),
        risk: it.get("risk").cloned().map(Doc),
    }
}
