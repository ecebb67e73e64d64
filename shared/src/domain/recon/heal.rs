//! A settled payment we have no settled record of, looked at closer: unknown,
//! ours failed, another amount, or still pending, which is healed through the
//! webhook's own path.

use crate::error::Error;
use crate::ids::{EventId, PaymentId};

use crate::domain::deposits::payment::{Payment, PaymentStatus};
use crate::domain::deposits::{self, Applied};
use crate::domain::recon::matcher::{Class, Finding, Theirs, HEAL_PREFIX};
use crate::domain::Ctx;
use crate::psp::event::PspEvent;
use crate::schema::keys;
use crate::schema::recon_index::{Kind, Record};

use crate::domain::recon::run::*;

/// A settled capture we still hold pending: apply it through the webhook's
/// own path, so a late webhook finds it captured and credits nothing.
pub(crate) async fn heal(
    ctx: &Ctx,
    run: &DayRun,
    p: &Payment,
    t: &Theirs,
    ours: Record,
) -> Result<(Finding<'static>, Option<String>), Error> {
    let event_id = ours.event_id.clone();
    let ev = PspEvent {
        psp: run.psp.clone(),
        event_id: EventId::parse(&event_id).map_err(|e| Error::Internal(e.to_string()))?,
        payment_id: p.id.clone(),
        status: PaymentStatus::Captured,
        amount_minor: t.gross_minor,
        currency: t.currency,
        occurred_ms: run.day.start_ms(),
        psp_reference: None,
        three_ds_failed: false,
    };
    match deposits::apply_event(ctx, &ev).await {
        Ok(Applied::Moved(_)) => {
            tracing::info!(payment_id = %p.id, psp = %run.psp, day = %run.day, "reconciliation applied a capture the webhook never brought");
            let mut f = finding(Class::MissingInWallet, Some(ours));
            f.healed = true;
            Ok((
                f,
                Some("healed: the capture was applied from the settlement line".into()),
            ))
        }
        // The webhook won the race: the capture is in, once.
        Ok(_) => Ok((finding(Class::Matched, Some(ours)), None)),
        Err(e) => Err(if e.retryable {
            Error::Unavailable(e.reason)
        } else {
            Error::Internal(e.reason)
        }),
    }
}

/// A settled payment with no record of ours: what does our payment say?
/// A capture we never heard of is applied through the wallet's own event
/// path (idempotent: a late webhook then finds it captured).
pub(crate) async fn look_closer(
    ctx: &Ctx,
    run: &DayRun,
    t: &Theirs,
) -> Result<(Finding<'static>, Option<String>), Error> {
    let missing = |why: &str| Ok((finding(Class::MissingInWallet, None), Some(why.to_owned())));
    let Ok(pid) = PaymentId::parse(&t.payment_id) else {
        return missing("no payment with this id");
    };
    let Some(it) = ctx.store.get(&keys::payment(&pid)).await? else {
        return missing("no payment with this id");
    };
    let p = Payment::from_item(&it)?;
    let event_id = format!("{HEAL_PREFIX}{}:{}", run.day, p.id);
    let ours = Record {
        key: t.key.clone(),
        kind: Kind::Payment,
        payment_id: p.id.to_string(),
        gross_minor: p.amount.minor(),
        currency: p.amount.currency(),
        method: p.method.clone(),
        event_id: event_id.clone(),
    };
    if p.psp != run.psp {
        return missing(&format!("the payment went through {}", p.psp));
    }
    if p.amount.currency() != t.currency {
        return Ok((finding(Class::CurrencyMismatch, Some(ours)), None));
    }
    if p.amount.minor() != t.gross_minor {
        return Ok((finding(Class::AmountMismatch, Some(ours)), None));
    }
    let status = p.status;
    if status.is_final() {
        let credited = matches!(status, PaymentStatus::Captured | PaymentStatus::ChargedBack);
        let class = if credited {
            Class::Matched
        } else {
            Class::StatusMismatch
        };
        return Ok((
            finding(class, Some(ours)),
            Some(format!("our status is {}", status.as_str())),
        ));
    }
    heal(ctx, run, &p, t, ours).await
}
