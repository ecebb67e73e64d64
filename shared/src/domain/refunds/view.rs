//! How a refund is shown.

use super::*;

/// A refund as the operator who asked for it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundView {
    pub refund_id: Option<String>,
    pub payment_id: PaymentId,
    pub amount: Option<String>,
    pub currency: Currency,
    pub status: Option<RefundStatus>,
    pub reason: Option<String>,
    pub psp_reference: Option<String>,
    pub flagged: bool,
}

pub(super) fn view(p: &Payment, it: &crate::store::Item) -> RefundView {
    let c = p.amount.currency();
    let text = |name: &str| it.str_attr(name).map(str::to_owned);
    RefundView {
        refund_id: text("refund_id"),
        payment_id: p.id.clone(),
        amount: it
            .int_attr("amount")
            .map(|a| crate::money::format_minor(a, c)),
        currency: c,
        status: it.str_attr("status").and_then(RefundStatus::parse),
        reason: text("reason"),
        psp_reference: text("psp_reference"),
        flagged: it
            .get("flagged")
            .and_then(crate::store::Attr::as_bool)
            .unwrap_or(false),
    }
}
