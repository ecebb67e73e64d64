//! The jobs the Google facade's outbound consumer runs, and how payloop
//! queues them: a Google payment or refund that became final queues its
//! notification here, from wherever it became final (a webhook applied, a
//! reconciliation heal, the refund sweep). Below the deposits and refunds
//! capabilities so they can call it; the consumer is `google::outbound`.

use serde_json::{json, Value};

use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::PaymentId;
use crate::psp::event::PspEvent;
use crate::queue::QueueName;
use crate::schema::keys;
use crate::schema::status::PaymentStatus;
use crate::store::{item, Attr, Item, ItemExt};

/// One call to make (the `google` queue's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Tell Google how the payment its redirect request opened ended.
    PaymentComplete {
        account: String,
        redirect_request_id: String,
        payment_id: PaymentId,
    },
    /// Tell Google how the refund its asynchronousRefund asked for ended.
    RefundResult {
        account: String,
        refund_request_id: String,
        payment_id: PaymentId,
        refund_id: String,
    },
    /// Page through a statement's details, reconcile them, accept it.
    Statement {
        account: String,
        statement_id: String,
    },
}

impl Job {
    pub fn to_message(&self) -> String {
        match self {
            Job::PaymentComplete {
                account,
                redirect_request_id,
                payment_id,
            } => json!({"kind": "payment_complete", "account": account,
                "redirect_request_id": redirect_request_id, "payment_id": payment_id}),
            Job::RefundResult {
                account,
                refund_request_id,
                payment_id,
                refund_id,
            } => json!({"kind": "refund_result", "account": account,
                "refund_request_id": refund_request_id, "payment_id": payment_id,
                "refund_id": refund_id}),
            Job::Statement {
                account,
                statement_id,
            } => json!({"kind": "statement", "account": account, "statement_id": statement_id}),
        }
        .to_string()
    }

    pub fn parse(body: &str) -> Result<Job, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let text = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{name} is missing"))
        };
        let payment = || PaymentId::parse(&text("payment_id")?).map_err(|e| e.to_string());
        match v.get("kind").and_then(Value::as_str) {
            Some("payment_complete") => Ok(Job::PaymentComplete {
                account: text("account")?,
                redirect_request_id: text("redirect_request_id")?,
                payment_id: payment()?,
            }),
            Some("refund_result") => Ok(Job::RefundResult {
                account: text("account")?,
                refund_request_id: text("refund_request_id")?,
                payment_id: payment()?,
                refund_id: text("refund_id")?,
            }),
            Some("statement") => Ok(Job::Statement {
                account: text("account")?,
                statement_id: text("statement_id")?,
            }),
            other => Err(format!("unknown job kind {other:?}")),
        }
    }
}

/// Put `job` on the `google` queue.
pub async fn enqueue(ctx: &Ctx, job: &Job) -> Result<(), Error> {
    ctx.queue.send(QueueName::Google, &job.to_message()).await?;
    Ok(())
}

/// Where a Google redirect payment came from (kept beside the payment).
pub fn origin_item(id: &PaymentId, account: &str, request_id: &str, fop: &Value) -> Item {
    item(
        &keys::gsp_payment(id),
        [
            ("account", Attr::from(account)),
            ("request_id", Attr::from(request_id)),
            ("form_of_payment", Attr::from(fop.to_string())),
        ],
    )
}

/// Where a Google refund came from (kept beside the refund).
pub fn refund_origin_item(
    payment: &PaymentId,
    refund_id: &str,
    account: &str,
    request_id: &str,
) -> Item {
    item(
        &keys::gsp_refund(payment, refund_id),
        [
            ("account", Attr::from(account)),
            ("request_id", Attr::from(request_id)),
        ],
    )
}

/// After a payment event was applied: a Google payment that is final now
/// gets its completion notification queued (again, on a redelivery).
pub async fn after_payment_event(ctx: &Ctx, ev: &PspEvent) -> Result<(), Error> {
    // A chargeback comes after the outcome Google was told.
    if !ev.status.is_final() || ev.status == PaymentStatus::ChargedBack {
        return Ok(());
    }
    let Some((account, request)) = origin(ctx, &keys::gsp_payment(&ev.payment_id)).await? else {
        return Ok(());
    };
    let job = Job::PaymentComplete {
        account,
        redirect_request_id: request,
        payment_id: ev.payment_id.clone(),
    };
    enqueue(ctx, &job).await
}

/// After a refund's outcome was applied (by its event, or by the sweep
/// when the PSP refused it): a Google refund gets its result notification
/// queued (the consumer sends nothing while it is not final).
pub async fn after_refund(ctx: &Ctx, payment: &PaymentId, refund_id: &str) -> Result<(), Error> {
    let key = keys::gsp_refund(payment, refund_id);
    let Some((account, request)) = origin(ctx, &key).await? else {
        return Ok(());
    };
    let job = Job::RefundResult {
        account,
        refund_request_id: request,
        payment_id: payment.clone(),
        refund_id: refund_id.to_owned(),
    };
    enqueue(ctx, &job).await
}

/// The Google account and request an origin item names (`None`: not a
/// Google movement).
async fn origin(ctx: &Ctx, key: &crate::store::Key) -> Result<Option<(String, String)>, Error> {
    let Some(it) = ctx.store.get(key).await? else {
        return Ok(None);
    };
    match (it.str_attr("account"), it.str_attr("request_id")) {
        (Some(a), Some(r)) => Ok(Some((a.to_owned(), r.to_owned()))),
        _ => Err(Error::Internal(
            "a Google origin record is incomplete".into(),
        )),
    }
}
