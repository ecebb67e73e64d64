//! The sweep: the scheduled pass over every money flow waiting on a PSP —
//! payouts deferred or past their outcome timeout, refunds the PSP has not
//! taken (or not answered) yet, and outbox messages never sent. Each flow
//! keeps its own due-work items, written in the same transaction as the
//! state that needs them, so nothing waits unseen. (A deposit limit's hold
//! of an intent that never finished needs no sweep: it stops counting when
//! it expires.)

use crate::error::Error;

use crate::domain::{outbox, payouts, refunds, Ctx};

/// One run at `now`: every flow is swept even if another fails; the first
/// error is reported (the next run retries). Returns the due items handled.
pub async fn run(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let payouts = payouts::sweep(ctx, now).await;
    let refunds = refunds::sweep(ctx, now).await;
    let messages = outbox::sweep(ctx, now).await;
    Ok(payouts? + refunds? + messages?)
}
