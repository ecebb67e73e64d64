//! The calls payloop makes to Google: redirectPaymentCompleteNotification
//! when a redirect payment is final, refundResultNotification when its
//! refund is, and a remittance statement's details and acceptance
//! ([`super::remittance`]).
//!
//! Every call is a [`Job`] on the `google` queue, made by its consumer,
//! retried with backoff ([`backoff`]) until Google answers 200, and a dead
//! letter on `google-dlq` after [`GOOGLE_MAX_RECEIVES`] attempts. A job is
//! queued after the state change it reports, by the consumer that applied
//! it; a crash between the two redelivers the event, which queues the job
//! again. Duplicate jobs are harmless: a notification's body is built once
//! and kept ([`keys::gsp_outbound`]), so every attempt sends the same
//! request under the same requestId (only `requestTimestamp` changes), and
//! a result never changes once sent.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::clock::Day;
use crate::domain::deposits::payment::Payment;
use crate::domain::refunds::RefundStatus;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::{PaymentId, PspId};
use crate::psp::event::{PspEvent, RefundEvent};
use crate::queue::QueueName;
use crate::schema::keys;
use crate::schema::recon_index::{Kind, Record};
use crate::schema::status::PaymentStatus;
use crate::store::{item, Attr, Cond, Item, ItemExt, StoreError, UpdateOp, Write};

pub use crate::queue::GOOGLE_MAX_RECEIVES;

use super::redirect;

/// The methods Google hosts that payloop calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosted {
    RedirectPaymentCompleteNotification,
    RefundResultNotification,
    RemittanceStatementDetails,
    AcceptRemittanceStatement,
}

impl Hosted {
    pub const ALL: [Hosted; 4] = [
        Hosted::RedirectPaymentCompleteNotification,
        Hosted::RefundResultNotification,
        Hosted::RemittanceStatementDetails,
        Hosted::AcceptRemittanceStatement,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hosted::RedirectPaymentCompleteNotification => "redirectPaymentCompleteNotification",
            Hosted::RefundResultNotification => "refundResultNotification",
            Hosted::RemittanceStatementDetails => "remittanceStatementDetails",
            Hosted::AcceptRemittanceStatement => "acceptRemittanceStatement",
        }
    }

    pub fn parse(s: &str) -> Option<Hosted> {
        Hosted::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Why a call to Google did not get its 200.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Google answered, not 200 (its error code when it gave one).
    #[error("Google answered {status} {}", code.as_deref().unwrap_or("without a code"))]
    Refused { status: u16, code: Option<String> },
    /// No answer (connection, timeout, TLS).
    #[error("Google could not be reached: {0}")]
    Unreachable(String),
    /// A 200 payloop could not read (codec or JSON).
    #[error("Google's answer could not be read: {0}")]
    Unreadable(String),
}

/// The port to Google's hosted methods (the HTTP adapter is in the
/// google-facade function; tests and the sandbox have their own).
#[async_trait]
pub trait GoogleApi: Send + Sync {
    /// POST `request` to `method` for the integrator `account`; the JSON of
    /// Google's 200 answer.
    async fn call(
        &self,
        method: Hosted,
        account: &str,
        request: &Value,
    ) -> Result<Value, CallError>;
}

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

/// How long a failed call waits before its next attempt (after `attempts`
/// attempts): `base` doubling, at most an hour.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// The counterparty Google's statements are reconciled as (its cases are
/// listed under this name beside the PSPs').
pub fn counterparty() -> Result<PspId, Error> {
    PspId::parse(COUNTERPARTY).map_err(|e| Error::Internal(e.to_string()))
}
pub const COUNTERPARTY: &str = "google";

/// Where a Google redirect payment came from (kept beside the payment).
pub(super) fn origin_item(id: &PaymentId, account: &str, request_id: &str, fop: &Value) -> Item {
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
pub(super) fn refund_origin_item(
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

/// After a refund event was applied: a Google refund gets its result
/// notification queued.
pub async fn after_refund_event(ctx: &Ctx, ev: &RefundEvent) -> Result<(), Error> {
    let key = keys::gsp_refund(&ev.payment_id, &ev.refund_id);
    let Some((account, request)) = origin(ctx, &key).await? else {
        return Ok(());
    };
    let job = Job::RefundResult {
        account,
        refund_request_id: request,
        payment_id: ev.payment_id.clone(),
        refund_id: ev.refund_id.clone(),
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

/// Make one job's call. `Err(true)`: try again later; `Err(false)`: it can
/// never succeed as it is (it still reaches the DLQ through the receive
/// limit, for an operator to see).
pub async fn process(ctx: &Ctx, api: &dyn GoogleApi, body: &str) -> Result<(), bool> {
    let job = Job::parse(body).map_err(|e| {
        tracing::error!(error = %e, "unreadable Google job");
        false
    })?;
    let made = match &job {
        Job::PaymentComplete {
            account,
            redirect_request_id,
            payment_id,
        } => payment_complete(ctx, api, account, redirect_request_id, payment_id).await,
        Job::RefundResult {
            account,
            refund_request_id,
            payment_id,
            refund_id,
        } => refund_result(ctx, api, account, refund_request_id, payment_id, refund_id).await,
        Job::Statement {
            account,
            statement_id,
        } => super::remittance::settle(ctx, api, account, statement_id).await,
    };
    made.map_err(|e| {
        tracing::warn!(error = %e, retryable = e.retryable(), "Google call not made");
        e.retryable()
    })
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Payloop(#[from] Error),
    /// Something no retry can change.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Payloop(e.into())
    }
}

impl JobError {
    fn retryable(&self) -> bool {
        !matches!(self, JobError::Permanent(_))
    }
}

/// Google's request header for an attempt now.
pub(super) fn header(ctx: &Ctx, account: &str, request_id: &str) -> Value {
    json!({
        "requestId": request_id,
        "requestTimestamp": {"epochMillis": ctx.now_ms().to_string()},
        "protocolVersion": {"major": 1},
        "paymentIntegratorAccountId": account,
    })
}

/// Send the request kept under `request_id` (or, on the first attempt, keep
/// `first` with `index` in one transaction, then send it). A 200 is marked
/// sent on the kept item.
async fn send_kept(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    method: Hosted,
    account: &str,
    request_id: &str,
    first: impl FnOnce() -> Option<(Value, Option<Write>)>,
) -> Result<(), JobError> {
    let key = keys::gsp_outbound(account, request_id);
    let kept = match ctx.store.get(&key).await? {
        Some(it) => it,
        None => {
            let Some((body, index)) = first() else {
                return Ok(());
            };
            let put = Write::Put {
                item: item(
                    &key,
                    [
                        ("method", Attr::from(method.name())),
                        ("body", Attr::from(body.to_string())),
                        ("built_ms", Attr::N(ctx.now_ms())),
                    ],
                ),
                cond: Some(Cond::NotExists),
            };
            let writes: Vec<Write> = std::iter::once(put).chain(index).collect();
            match ctx.store.transact(writes).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(Error::from(e).into()),
            }
            ctx.store
                .get(&key)
                .await?
                .ok_or_else(|| Error::Internal("a kept Google request vanished".into()))?
        }
    };
    let mut request: Value = kept
        .str_attr("body")
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| JobError::Permanent("a kept Google request is unreadable".into()))?;
    request["requestHeader"] = header(ctx, account, request_id);
    let answer = api.call(method, account, &request).await?;
    if answer.pointer("/result/accepted").is_none() {
        return Err(CallError::Unreadable(format!("{} was not accepted", method.name())).into());
    }
    let sent = Write::Update {
        key,
        ops: vec![UpdateOp::Set("sent_ms".into(), Attr::N(ctx.now_ms()))],
        cond: None,
    };
    if let Err(e) = ctx.store.write(sent).await {
        tracing::warn!(error = %e, "could not mark a Google notification sent");
    }
    tracing::info!(method = method.name(), request_id, "Google notified");
    Ok(())
}

/// What a final movement puts into the index Google's statements are
/// reconciled against: the day it became final, by Google's request id.
struct Indexed<'a> {
    kind: Kind,
    request_id: &'a str,
    id: &'a str,
    gross_minor: i64,
    currency: crate::money::Currency,
    method: &'a str,
}

fn index_write(ctx: &Ctx, google: &PspId, r: &Indexed<'_>) -> Write {
    let (kind, request_id) = (r.kind, r.request_id);
    let record = Record {
        key: statement_key(kind, request_id),
        kind,
        payment_id: r.id.to_owned(),
        gross_minor: r.gross_minor,
        currency: r.currency,
        method: r.method.to_owned(),
        event_id: format!("gsp:{request_id}"),
    };
    record.write(google, Day::of_ms(ctx.now_ms()))
}

/// The match key of a statement event and of our record of it.
pub fn statement_key(kind: Kind, request_id: &str) -> String {
    format!("{}:{request_id}", kind.as_str())
}

async fn payment_complete(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    account: &str,
    redirect_request_id: &str,
    payment_id: &PaymentId,
) -> Result<(), JobError> {
    let Some(found) = ctx.store.get(&keys::payment(payment_id)).await? else {
        // Never opened (held for review, or every attempt failed).
        return Ok(());
    };
    let p = Payment::from_item(&found)?;
    if !p.status.is_final() {
        // A later final event queues the notification again.
        return Ok(());
    }
    let origin = ctx.store.get(&keys::gsp_payment(payment_id)).await?;
    let fop: Value = origin
        .as_ref()
        .and_then(|o| o.str_attr("form_of_payment"))
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(json!({"noneChosen": {}}));
    let request_id = format!("complete:{payment_id}");
    let google = counterparty()?;
    send_kept(
        ctx,
        api,
        Hosted::RedirectPaymentCompleteNotification,
        account,
        &request_id,
        || {
            let result = redirect::payment_result(p.status);
            let index = (result.get("success").is_some()).then(|| {
                let r = Indexed {
                    kind: Kind::Payment,
                    request_id: redirect_request_id,
                    id: payment_id.as_str(),
                    gross_minor: p.amount.minor(),
                    currency: p.amount.currency(),
                    method: &p.method,
                };
                index_write(ctx, &google, &r)
            });
            let body = json!({
                "redirectRequestId": redirect_request_id,
                "result": result,
                "formOfPayment": fop,
            });
            Some((body, index))
        },
    )
    .await
}

async fn refund_result(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    account: &str,
    refund_request_id: &str,
    payment_id: &PaymentId,
    refund_id: &str,
) -> Result<(), JobError> {
    let Some(refund) = ctx.store.get(&keys::refund(payment_id, refund_id)).await? else {
        return Err(JobError::Permanent(format!(
            "refund {refund_id} is unknown"
        )));
    };
    let status = refund.str_attr("status").and_then(RefundStatus::parse);
    let (Some(amount), Some(currency)) = (
        refund.int_attr("amount"),
        refund
            .str_attr("currency")
            .and_then(|c| crate::money::Currency::parse(c).ok()),
    ) else {
        return Err(JobError::Permanent(format!(
            "refund {refund_id} is incomplete"
        )));
    };
    let result = match status {
        Some(RefundStatus::Succeeded) => json!({"success": {}}),
        Some(RefundStatus::Failed) => {
            json!({"rawResult": {"scope": "PSP", "rawCode": "REFUND_DECLINED"}})
        }
        // Not final yet: its final event queues the notification again.
        _ => return Ok(()),
    };
    let request_id = format!("refund-result:{refund_id}");
    let google = counterparty()?;
    send_kept(
        ctx,
        api,
        Hosted::RefundResultNotification,
        account,
        &request_id,
        || {
            let index = (status == Some(RefundStatus::Succeeded)).then(|| {
                let r = Indexed {
                    kind: Kind::Refund,
                    request_id: refund_request_id,
                    id: refund_id,
                    gross_minor: -amount,
                    currency,
                    method: "refund",
                };
                index_write(ctx, &google, &r)
            });
            let body = json!({
                "refundRequestId": refund_request_id,
                "paymentIntegratorRefundId": refund_id,
                "result": result,
            });
            Some((body, index))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_and_backoff_doubles_to_an_hour() {
        let jobs = [
            Job::PaymentComplete {
                account: "acct-1".into(),
                redirect_request_id: "req-1".into(),
                payment_id: PaymentId::parse("pay_01J00000000000000000000000").unwrap(),
            },
            Job::RefundResult {
                account: "acct-1".into(),
                refund_request_id: "req-2".into(),
                payment_id: PaymentId::parse("pay_01J00000000000000000000000").unwrap(),
                refund_id: "rf_x".into(),
            },
            Job::Statement {
                account: "acct-1".into(),
                statement_id: "st-1".into(),
            },
        ];
        for j in jobs {
            assert_eq!(Job::parse(&j.to_message()), Ok(j));
        }
        assert!(Job::parse(r#"{"kind":"other"}"#).is_err());
        assert!(Job::parse(r#"{"kind":"statement","account":"a"}"#)
            .unwrap_err()
            .contains("statement_id"));
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 4), base * 8);
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
        assert_eq!(
            Hosted::parse("acceptRemittanceStatement"),
            Some(Hosted::AcceptRemittanceStatement)
        );
        assert_eq!(counterparty().unwrap().as_str(), COUNTERPARTY);
    }
}
