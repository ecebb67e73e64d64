//! payloop as a Google Standard Payments redirect-FOP integrator: the wire
//! conventions ([`wire`]), message security behind one interface
//! ([`codec`]: plaintext, [`jose`]), Google's idempotency rule over
//! payloop's idempotency engine ([`once`]), the methods Google calls
//! ([`redirect`], [`remittance`]) and the calls payloop makes to Google
//! ([`outbound`]).

use std::future::Future;

use serde_json::Value;

use crate::domain::idempotency::{self, Begin, IdemRequest};
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::IdempotencyKey;

pub mod codec;
pub mod jose;
pub mod outbound;
pub mod redirect;
pub mod remittance;
pub mod wire;

use wire::{GspCode, GspError, RequestHeader};

/// Why a Google request got no 200.
#[derive(Debug)]
pub enum Refusal {
    /// Google's own error code (its HTTP status from the code).
    Gsp(GspError),
    /// payloop could not answer now (store or queue down): 503, an
    /// ErrorResponse without a code; Google retries, and it is never stored.
    Unavailable(Error),
}

impl From<GspError> for Refusal {
    fn from(e: GspError) -> Self {
        Refusal::Gsp(e)
    }
}

/// Write `it` unless its key exists (a retry of the request that wrote it
/// finds it there). `true`: written now.
pub(crate) async fn keep_once(ctx: &Ctx, it: crate::store::Item) -> Result<bool, Refusal> {
    let put = crate::store::Write::Put {
        item: it,
        cond: Some(crate::store::Cond::NotExists),
    };
    match ctx.store.write(put).await {
        Ok(()) => Ok(true),
        Err(crate::store::StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(Refusal::Unavailable(e.into())),
    }
}

/// What identifies a request's content: its body without
/// `requestHeader.requestTimestamp`, which each retry changes.
pub fn fingerprint(method: &str, body: &Value) -> String {
    let mut content = body.clone();
    if let Some(h) = content
        .get_mut("requestHeader")
        .and_then(Value::as_object_mut)
    {
        h.remove("requestTimestamp");
    }
    let bytes = serde_json::to_vec(&content).unwrap_or_default();
    idempotency::fingerprint("POST", method, &bytes)
}

/// Run `work` at most once per request id within the integrator account:
/// - the same request again gets the stored 200 answer;
/// - the same request id with other content is `IDEMPOTENCY_VIOLATION` (412);
/// - one still being answered is `USER_ACTION_IN_PROGRESS` (423);
/// - a refusal is never stored, so a retry is evaluated afresh.
///
/// `work` gets the id reserved for what it creates, the same on every
/// attempt of this request (a retry after a crash finds its work again).
pub async fn once<F, Fut>(
    ctx: &Ctx,
    method: &str,
    header: &RequestHeader,
    body: &Value,
    work: F,
) -> Result<Value, Refusal>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Value, Refusal>>,
{
    let key = IdempotencyKey::parse(&header.request_id).map_err(|_| {
        GspError::new(
            GspCode::InvalidFieldValue,
            "requestHeader.requestId is not a request id",
        )
    })?;
    let scope = format!("gsp:{}", header.account_id);
    let req = IdemRequest {
        scope: &scope,
        key: &key,
        fingerprint: fingerprint(method, body),
        now_ms: ctx.now_ms(),
    };
    let claim = match idempotency::begin(ctx.store.as_ref(), &ctx.config, &req).await {
        Ok(Begin::Fresh(claim)) => claim,
        Ok(Begin::Replay(stored)) => {
            return serde_json::from_str(&stored.body)
                .map_err(|e| Refusal::Unavailable(Error::Internal(e.to_string())));
        }
        Err(Error::IdempotencyKeyReused) => {
            return Err(GspError::new(
                GspCode::IdempotencyViolation,
                "requestHeader.requestId was used before for another request",
            )
            .into())
        }
        // `begin` resolves an in-flight key itself; both mean busy.
        Ok(Begin::InFlight(_)) | Err(Error::RequestInProgress) => {
            return Err(GspError::new(
                GspCode::UserActionInProgress,
                "a request with this requestId is still being answered",
            )
            .into())
        }
        Err(e) => return Err(Refusal::Unavailable(e)),
    };
    let answer = work(claim.resource().to_owned()).await;
    let (status, text) = match &answer {
        Ok(v) => (200, v.to_string()),
        Err(Refusal::Gsp(e)) => (e.code.status(), String::new()),
        Err(Refusal::Unavailable(_)) => (503, String::new()),
    };
    if let Err(e) = idempotency::finish(ctx.store.as_ref(), claim, status, &text).await {
        // Not recorded: a retry finds the same reserved id and its work.
        tracing::warn!(method, error = %e, "could not record a Google request's answer");
    }
    answer
}
