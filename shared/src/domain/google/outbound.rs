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
use crate::schema::keys;
use crate::schema::recon_index::{Kind, Record};
use crate::store::{item, Attr, Cond, ItemExt, StoreError, UpdateOp, Write};

pub use crate::domain::google_jobs::{after_payment_event, after_refund, enqueue, Job};
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
    account: &'a str,
    request_id: &'a str,
    id: &'a str,
    gross_minor: i64,
    currency: crate::money::Currency,
    method: &'a str,
}

fn index_write(ctx: &Ctx, google: &PspId, r: &Indexed<'_>) -> Write {
    let (kind, request_id) = (r.kind, r.request_id);
    let record = Record {
        key: statement_key(kind, r.account, request_id),
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
/// The match key of a statement event and of our record of it: the kind,
/// the integrator account, Google's request id.
pub fn statement_key(kind: Kind, account: &str, request_id: &str) -> String {
    format!("{}:{account}/{request_id}", kind.as_str())
}

/// The account a statement match key names.
pub fn key_account(key: &str) -> Option<&str> {
    let (_, rest) = key.split_once(':')?;
    rest.split_once('/').map(|(account, _)| account)
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
                    account,
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
    let negated = amount
        .checked_neg()
        .ok_or_else(|| JobError::Permanent(format!("refund {refund_id} has no amount")))?;
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
                    account,
                    request_id: refund_request_id,
                    id: refund_id,
                    gross_minor: negated,
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
