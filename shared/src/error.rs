//! The one error enum of the domain and the one table mapping it to HTTP.

use serde_json::{json, Value};

use crate::queue::QueueError;
use crate::store::StoreError;

/// The stable codes a domain decision answers with (the fixed-meaning
/// variants of [`Error`] carry their own). One place for each code's text and
/// whether a retry of the same request can ever succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    PspRefused,
    InsufficientFunds,
    WageringIncomplete,
    KycRequired,
    DailyLimitReached,
    PayoutLimit,
    RefundExceedsCaptured,
    PaymentNotRefundable,
    PaymentNotFinal,
    TxnIdReused,
    RoundConflict,
    CaseResolved,
    DepositLimitReached,
    DepositLimitRequired,
    SelfExclusionActive,
    ReviewDecided,
    StatementNotHeld,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::PspRefused => "psp_refused",
            ErrorCode::InsufficientFunds => "insufficient_funds",
            ErrorCode::WageringIncomplete => "wagering_incomplete",
            ErrorCode::KycRequired => "kyc_required",
            ErrorCode::DailyLimitReached => "daily_limit_reached",
            ErrorCode::PayoutLimit => "payout_limit",
            ErrorCode::RefundExceedsCaptured => "refund_exceeds_captured",
            ErrorCode::PaymentNotRefundable => "payment_not_refundable",
            ErrorCode::PaymentNotFinal => "payment_not_final",
            ErrorCode::TxnIdReused => "txn_id_reused",
            ErrorCode::RoundConflict => "round_conflict",
            ErrorCode::CaseResolved => "case_resolved",
            ErrorCode::DepositLimitReached => "deposit_limit_reached",
            ErrorCode::DepositLimitRequired => "deposit_limit_required",
            ErrorCode::SelfExclusionActive => "self_exclusion_active",
            ErrorCode::ReviewDecided => "review_already_decided",
            ErrorCode::StatementNotHeld => "statement_not_held",
        }
    }

    /// Whether the same request, retried later unchanged, may succeed: only
    /// while the payment is still moving. Funds, KYC or limits change only
    /// through another request (and a 402 is evaluated afresh on a retry
    /// anyway), and a reused id or a resolved case never changes.
    pub fn retryable(&self) -> bool {
        matches!(self, ErrorCode::PaymentNotFinal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("the Idempotency-Key header is required on this request")]
    IdempotencyKeyRequired,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in progress; retry later")]
    RequestInProgress,
    #[error(
        "a value that looks like a card number was found in {field}; send a PSP token instead"
    )]
    PanDetected { field: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key may not call this endpoint")]
    Forbidden,
    /// The player excluded themselves from deposits and play.
    #[error("the player is self-excluded")]
    SelfExcluded { until_ms: Option<i64> },
    /// The risk check declined the deposit or payout (its rules stay ours).
    #[error("the payment was declined by the risk check")]
    RiskDeclined { decision_id: String },
    #[error("webhook signature missing or invalid")]
    BadSignature,
    #[error("webhook timestamp outside the tolerance window")]
    StaleEvent,
    #[error("no payment route takes this country, currency, method and amount")]
    NoRoute,
    #[error("{method} payments are switched off during a degradation; use one of: {}", available.join(", "))]
    MethodUnavailable {
        method: String,
        available: Vec<String>,
    },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("unknown payment")]
    UnknownPayment,
    #[error("{reason}")]
    PaymentRequired { code: ErrorCode, reason: String },
    #[error("{reason}")]
    Conflict { code: ErrorCode, reason: String },
    /// A 402 whose details say what is missing (amount to wager, KYC level…).
    #[error("{reason}")]
    PaymentRequiredWith {
        code: ErrorCode,
        reason: String,
        details: Value,
    },
    /// A limit (per payout, refundable amount…) the request is above.
    #[error("{field}: {reason}")]
    Limit {
        code: ErrorCode,
        field: String,
        reason: String,
    },
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests")]
    RateLimited,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The PSP answered that it cannot take this request (not a refusal of
    /// the payment, not an outage). Its own text stays in our logs.
    #[error("the payment service provider could not take this request")]
    PspRejected,
    #[error("internal error")]
    Internal(String),
}

/// A row of the error table.
pub struct ErrorRow {
    pub status: u16,
    pub code: &'static str,
    /// Whether the same request may succeed if retried later unchanged.
    pub retryable: bool,
}

impl Error {
    pub fn validation(field: &str, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// THE table: variant → status, stable code, retry safety.
    pub fn row(&self) -> ErrorRow {
        let (status, code, retryable) = match self {
            Error::Validation { .. } => (422, "validation_failed", false),
            Error::IdempotencyKeyRequired => (422, "idempotency_key_required", false),
            Error::PanDetected { .. } => (422, "pan_detected", false),
            Error::NoRoute => (422, "no_route", false),
            Error::IdempotencyKeyReused => (409, "idempotency_key_reused", false),
            Error::RequestInProgress => (409, "request_in_progress", true),
            Error::Conflict { code, .. } => (409, code.as_str(), code.retryable()),
            Error::Unauthorized => (401, "unauthorized", false),
            Error::Forbidden => (403, "forbidden", false),
            Error::SelfExcluded { .. } => (403, "self_excluded", false),
            Error::RiskDeclined { .. } => (403, "risk_declined", false),
            Error::BadSignature => (401, "bad_signature", false),
            Error::StaleEvent => (401, "stale_event", false),
            Error::NotFound { .. } => (404, "not_found", false),
            Error::UnknownPayment => (404, "unknown_payment", false),
            Error::PaymentRequired { code, .. } => (402, code.as_str(), code.retryable()),
            Error::PaymentRequiredWith { code, .. } => (402, code.as_str(), code.retryable()),
            Error::Limit { code, .. } => (422, code.as_str(), code.retryable()),
            Error::PayloadTooLarge { .. } => (413, "payload_too_large", false),
            Error::RateLimited => (429, "rate_limited", true),
            Error::Unavailable(_) => (503, "service_unavailable", true),
            Error::MethodUnavailable { .. } => (503, "method_unavailable", true),
            Error::PspRejected => (502, "psp_rejected", false),
            Error::Internal(_) => (500, "internal_error", true),
        };
        ErrorRow {
            status,
            code,
            retryable,
        }
    }

    /// The human message shown to clients: never internals, never a PSP's
    /// own text.
    pub fn public_message(&self) -> String {
        match self {
            Error::Unavailable(_) => "temporarily unavailable, retry with backoff".to_owned(),
            Error::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn details(&self) -> Value {
        let row = self.row();
        let mut d = match self {
            Error::Validation { field, reason } => json!({"field": field, "reason": reason}),
            Error::PanDetected { field } => json!({"field": field}),
            Error::RiskDeclined { decision_id } => json!({"decision_id": decision_id}),
            Error::PayloadTooLarge { limit } => json!({"limit_bytes": limit}),
            Error::SelfExcluded { until_ms } => match until_ms {
                Some(u) => json!({"until_ms": u}),
                None => json!({"indefinite": true}),
            },
            Error::PaymentRequiredWith { details, .. } => details.clone(),
            Error::Limit { field, .. } => json!({"field": field}),
            Error::MethodUnavailable { available, .. } => {
                json!({"field": "method", "available_methods": available})
            }
            _ => json!({}),
        };
        d["retryable"] = Value::Bool(row.retryable);
        d
    }

    /// The error body `{error, message, trace_id, details}`.
    pub fn body(&self, trace_id: &str) -> Value {
        json!({
            "error": self.row().code,
            "message": self.public_message(),
            "trace_id": trace_id,
            "details": self.details(),
        })
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Retryable(m) | StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::ConditionFailed { index, .. } => {
                Error::Internal(format!("unhandled condition failure on write {index}"))
            }
            StoreError::Invalid(m) => Error::Internal(m),
        }
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => Error::Unavailable(m),
            QueueError::Invalid(m) => Error::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape_and_no_internals() {
        let e = Error::Internal("db password=hunter2 at 10.0.0.1".into());
        let body = e.body("t-1");
        assert_eq!(body["error"], "internal_error");
        assert_eq!(body["trace_id"], "t-1");
        assert!(!body.to_string().contains("hunter2"));
        let v = Error::validation("amount", "bad").body("t");
        assert_eq!(v["details"]["field"], "amount");
        assert_eq!(Error::validation("a", "b").row().status, 422);
        assert_eq!(Error::RequestInProgress.row().status, 409);
        assert!(Error::RequestInProgress.row().retryable);
        assert_eq!(Error::StaleEvent.row().code, "stale_event");
    }

    #[test]
    fn only_conflicts_that_time_resolves_are_retryable() {
        let c = |code| Error::Conflict {
            code,
            reason: "r".into(),
        };
        for never in [
            ErrorCode::TxnIdReused,
            ErrorCode::RoundConflict,
            ErrorCode::CaseResolved,
            ErrorCode::PaymentNotRefundable,
        ] {
            assert!(!c(never).row().retryable, "{never}");
            assert_eq!(c(never).details()["retryable"], false);
        }
        assert!(c(ErrorCode::PaymentNotFinal).row().retryable);
        assert_eq!(c(ErrorCode::TxnIdReused).row().code, "txn_id_reused");
        let psp = Error::PspRejected;
        assert_eq!((psp.row().status, psp.row().code), (502, "psp_rejected"));
        assert!(!psp.row().retryable);
    }
}
