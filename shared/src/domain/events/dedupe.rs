//! Enqueue once: a payout's or refund's event id is recorded only after its
//! message is queued, so no event is ever marked seen but never queued; a
//! duplicate is answered from a read. A payment's event needs no record:
//! its payment's status tells a duplicate.

use super::*;
use crate::store::Item;

/// Whether an event was queued by this delivery or seen before.
pub(super) enum Once {
    Queued,
    Seen,
}

/// THE rule of intake: enqueue first, then record the event id with one
/// conditional put (`record` is also the delivery's log entry). An event id
/// is recorded only once its message is durably queued, so no crash,
/// timeout or retried write can leave an event marked "seen" but never
/// queued. The price: a duplicate racing the first delivery may be queued
/// too, which the consumer makes harmless. A duplicate arriving after the
/// record exists is answered from a read, without queueing.
pub(super) async fn send_then_record(
    ctx: &Ctx,
    key: &Key,
    message: &str,
    record: Item,
) -> Result<Once, Error> {
    if ctx.store.get(key).await?.is_some() {
        return Ok(Once::Seen);
    }
    if let Err(e) = ctx.queue.send(QueueName::Events, message).await {
        tracing::error!(pk = %key.pk, error = %e, "enqueue failed");
        return Err(Error::Unavailable("event queue".into()));
    }
    let put = Write::Put {
        item: record,
        cond: Some(Cond::NotExists),
    };
    match ctx.store.write(put).await {
        Ok(()) => Ok(Once::Queued),
        Err(StoreError::ConditionFailed { .. }) => Ok(Once::Seen),
        // Queued but not recorded: the PSP's retry is queued again, harmlessly.
        Err(e) => Err(e.into()),
    }
}

/// A payment outcome: known by the payment's own status, read anyway to
/// match the event to its intent. An event whose status the payment already
/// holds is a duplicate (logged, not queued); any other is queued with no
/// write at all. Two copies racing before the first is applied are both
/// queued; the consumer's conditional move applies one and the other as
/// nothing. The delivery that moved the payment is in its history.
pub(super) async fn accept(ctx: &Ctx, ev: PspEvent, payment: &Payment) -> Result<Intake, Error> {
    if payment.status == ev.status {
        return duplicate(ctx, ev).await;
    }
    if let Err(e) = ctx.queue.send(QueueName::Events, &ev.to_message()?).await {
        tracing::error!(payment_id = %ev.payment_id, error = %e, "enqueue failed");
        return Err(Error::Unavailable("event queue".into()));
    }
    tracing::info!(event_id = %ev.event_id, payment_id = %ev.payment_id, psp = %ev.psp, status = ev.status.as_str(), outcome = "accepted", "webhook delivery");
    Ok(Intake {
        event_id: ev.event_id,
        outcome: Outcome::Accepted,
    })
}

/// A payout outcome: matched against its payout (a mismatch is a case,
/// not queued), then queued once per event id.
pub(super) async fn payout_intake(ctx: &Ctx, ev: PayoutEvent) -> Result<Intake, Error> {
    if !payouts::check_event(ctx, &ev).await? {
        return Ok(Intake {
            event_id: ev.event_id,
            outcome: Outcome::Mismatch,
        });
    }
    let key = keys::payout_event(&ev.payout_id, &ev.psp, &ev.event_id);
    enqueue_once(ctx, key, ev.to_message()?, &ev.event_id, ev.status.as_str()).await
}

/// A refund outcome: queued once per event id (the consumer matches it).
pub(super) async fn refund_intake(ctx: &Ctx, ev: RefundEvent) -> Result<Intake, Error> {
    let key = keys::accepted_event(&ev.payment_id, &ev.psp, &ev.event_id);
    enqueue_once(ctx, key, ev.to_message()?, &ev.event_id, ev.status.as_str()).await
}

/// A payout's or refund's event, once per event id.
pub(super) async fn enqueue_once(
    ctx: &Ctx,
    key: Key,
    message: String,
    event_id: &EventId,
    status: &str,
) -> Result<Intake, Error> {
    let record = item(
        &key,
        [
            ("outcome", Attr::from(Outcome::Accepted.as_str())),
            ("event_id", Attr::from(event_id.as_str())),
            ("status", Attr::from(status)),
            ("at_ms", Attr::N(ctx.now_ms())),
        ],
    );
    let outcome = match send_then_record(ctx, &key, &message, record).await? {
        Once::Seen => Outcome::Duplicate,
        Once::Queued => {
            tracing::info!(event_id = %event_id, status, outcome = "accepted", "webhook delivery");
            Outcome::Accepted
        }
    };
    Ok(Intake {
        event_id: event_id.clone(),
        outcome,
    })
}

pub(super) async fn duplicate(ctx: &Ctx, ev: PspEvent) -> Result<Intake, Error> {
    log_delivery(ctx, &ev, Outcome::Duplicate).await;
    Ok(Intake {
        event_id: ev.event_id,
        outcome: Outcome::Duplicate,
    })
}
