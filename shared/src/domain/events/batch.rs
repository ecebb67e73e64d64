//! A delivery that batches several events, each signed on its own (Adyen's
//! notifications): every item is taken like a single delivery; the batch
//! is answered once every genuine item is durably queued or recorded.
//!
//! | item                              | what happens                       | batch answer |
//! |-----------------------------------|------------------------------------|--------------|
//! | verified event                    | matched, deduped, queued           | 200          |
//! | verified, unknown record          | logged `unknown_payment`           | 200          |
//! | verified, bad fields              | logged `invalid`                   | 200          |
//! | verified, nothing to apply        | logged `unhandled` / `report_available` | 200     |
//! | bad signature                     | logged `bad_signature`, never applied | 401       |
//! | store or queue down               | —                                  | 503          |
//!
//! A 401 or 503 makes the PSP deliver the batch again: the items already
//! queued are duplicates then (harmless), and an item signed with a key
//! that was missing here goes through once the key is configured.

use super::*;
use crate::domain::cases::{NewCase, Side};
use crate::psp::event::{AdjustmentEvent, Batch, ItemVerdict};

/// What a batch did, item by item (in the batch's order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchIntake {
    pub outcomes: Vec<Outcome>,
}

impl BatchIntake {
    pub fn count(&self, o: Outcome) -> usize {
        self.outcomes.iter().filter(|x| **x == o).count()
    }

    /// How the batch is answered: taken, or 401 when any item's signature
    /// failed (so the PSP delivers it again; see the module's table).
    pub fn answer(&self) -> Result<(), Error> {
        match self.count(Outcome::BadSignature) {
            0 => Ok(()),
            _ => Err(Error::BadSignature),
        }
    }
}

/// The record a batch item is logged under: its merchant reference (a
/// payment id, a payout id, or the payment of `<payment id>.<refund id>`).
fn claimed_payment(claimed: Option<&str>) -> Option<String> {
    let first = claimed?.split('.').next()?;
    PaymentId::parse(first).ok().map(|p| p.as_str().to_owned())
}

/// Take every item of a batch. `Err` only when the store or queue failed:
/// then nothing about the answer is certain and the PSP must retry.
pub async fn intake_batch(ctx: &Ctx, psp: &PspId, batch: Batch) -> Result<BatchIntake, Error> {
    let mut out = BatchIntake::default();
    for item in batch.items {
        let claimed = claimed_payment(item.claimed.as_deref());
        let outcome = match item.verdict {
            ItemVerdict::Event(inbound) => match take_verified(ctx, inbound).await {
                Ok(got) => got.outcome,
                // Logged by intake; a PSP retrying it for days would not help.
                Err(Error::UnknownPayment) => Outcome::UnknownPayment,
                Err(e @ (Error::Validation { .. } | Error::NotFound { .. })) => {
                    tracing::info!(psp = %psp, error = %e, "batch item refused");
                    log_by_claim(ctx, psp, claimed, Outcome::Invalid, true).await;
                    Outcome::Invalid
                }
                Err(e) => return Err(e),
            },
            ItemVerdict::BadSignature => {
                log_by_claim(ctx, psp, claimed, Outcome::BadSignature, false).await;
                Outcome::BadSignature
            }
            ItemVerdict::Invalid(e) => {
                tracing::info!(psp = %psp, reference = %item.reference, error = %e, "batch item invalid");
                log_by_claim(ctx, psp, claimed, Outcome::Invalid, true).await;
                Outcome::Invalid
            }
            ItemVerdict::Adjustment(ev) => adjustment_case(ctx, &ev).await?,
            ItemVerdict::Unhandled { event_code } => {
                tracing::info!(psp = %psp, reference = %item.reference, event_code = %event_code, "batch item kept for an operator");
                log_by_claim(ctx, psp, claimed, Outcome::Unhandled, true).await;
                Outcome::Unhandled
            }
            ItemVerdict::ReportAvailable { url } => {
                let file = url.rsplit('/').next().unwrap_or_default().to_owned();
                tracing::info!(psp = %psp, file = %file, "settlement report available");
                log_by_claim(ctx, psp, None, Outcome::ReportAvailable, true).await;
                Outcome::ReportAvailable
            }
        };
        crate::domain::observe::webhook(ctx, psp.as_str(), outcome.as_str());
        out.outcomes.push(outcome);
    }
    Ok(out)
}

/// A PSP-side change for an operator: a case on its payment (once per
/// event id), logged `unhandled`; no balance moves.
async fn adjustment_case(ctx: &Ctx, ev: &AdjustmentEvent) -> Result<Outcome, Error> {
    let Some(found) = ctx.store.get(&keys::payment(&ev.payment_id)).await? else {
        log_by_claim(ctx, &ev.psp, None, Outcome::UnknownPayment, true).await;
        return Ok(Outcome::UnknownPayment);
    };
    let p = Payment::from_item(&found)?;
    let case = NewCase::of_event(
        keys::case(&ev.payment_id, &ev.psp, &ev.event_id),
        CaseKind::PspAdjustment,
        &ev.event_id,
        None,
        Side::record("payment", p.status.as_str(), p.amount, &p.psp),
        Side::event(ev.what, ev.amount_minor, ev.currency, &ev.psp),
    );
    cases::open(ctx, case).await?;
    tracing::info!(payment_id = %ev.payment_id, psp = %ev.psp, what = ev.what, "PSP adjustment kept for an operator");
    log_by_claim(
        ctx,
        &ev.psp,
        Some(ev.payment_id.to_string()),
        Outcome::Unhandled,
        true,
    )
    .await;
    Ok(Outcome::Unhandled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_item_is_logged_under_the_payment_it_names() {
        let pay = "pay_01JD0000000000000000000000";
        assert_eq!(claimed_payment(Some(pay)).as_deref(), Some(pay));
        let refund = format!("{pay}.rf_01JD0000000000000000000001");
        assert_eq!(claimed_payment(Some(&refund)).as_deref(), Some(pay));
        // A payout's items are kept under the payout id.
        let payout = "po_01JD0000000000000000000000";
        assert_eq!(claimed_payment(Some(payout)).as_deref(), Some(payout));
        assert_eq!(claimed_payment(Some("bad id with spaces")), None);
        assert_eq!(claimed_payment(None), None);
    }
}
