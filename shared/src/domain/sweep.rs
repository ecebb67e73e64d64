//! The sweep: the scheduled pass over every money flow waiting on a PSP —
//! payouts deferred or past their outcome timeout, refunds the PSP has not
//! taken (or not answered) yet, outbox messages never sent, and deposit
//! limit reservations of intents that never finished. Each flow keeps its own due-work items, written in the same
//! transaction as the state that needs them, so nothing waits unseen.

use crate::error::Error;

use crate::domain::{limits, outbox, payouts, refunds, Ctx};

/// One run at `now`: every flow is swept even if another fails; the first
/// error is reported (the next run retries). Returns the due items handled.
pub async fn run(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let payouts = payouts::sweep(ctx, now).await;
    let refunds = refunds::sweep(ctx, now).await;
    let messages = outbox::sweep(ctx, now).await;
    let reservations = limits::reserve::sweep(ctx, now).await;
    Ok(payouts? + refunds? + messages? + reservations?)
}
