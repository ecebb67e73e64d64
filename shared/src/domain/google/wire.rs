//! Google Standard Payments' JSON conventions, parsed at the edge into
//! types: the request header, timestamps (`{"epochMillis": "…"}`, a string,
//! a bare number accepted), amounts (`{"amountMicros": "…",
//! "currencyCode": "…"}`), and the error answer with Google's codes.
//! See ../shared/specs/google-redirect-fop.md.

use serde_json::{json, Value};

use crate::money::{Currency, Money};

/// Google's error codes with the HTTP status each is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GspCode {
    InvalidApiVersion,
    InvalidPayloadSignature,
    InvalidPayloadEncryption,
    RequestTimestampOutOfRange,
    InvalidIdentifier,
    IdempotencyViolation,
    InvalidFieldValue,
    MissingRequiredField,
    PreconditionViolation,
    UserActionInProgress,
    InvalidDecryptedRequest,
    Forbidden,
}

impl GspCode {
    pub fn as_str(self) -> &'static str {
        match self {
            GspCode::InvalidApiVersion => "INVALID_API_VERSION",
            GspCode::InvalidPayloadSignature => "INVALID_PAYLOAD_SIGNATURE",
            GspCode::InvalidPayloadEncryption => "INVALID_PAYLOAD_ENCRYPTION",
            GspCode::RequestTimestampOutOfRange => "REQUEST_TIMESTAMP_OUT_OF_RANGE",
            GspCode::InvalidIdentifier => "INVALID_IDENTIFIER",
            GspCode::IdempotencyViolation => "IDEMPOTENCY_VIOLATION",
            GspCode::InvalidFieldValue => "INVALID_FIELD_VALUE",
            GspCode::MissingRequiredField => "MISSING_REQUIRED_FIELD",
            GspCode::PreconditionViolation => "PRECONDITION_VIOLATION",
            GspCode::UserActionInProgress => "USER_ACTION_IN_PROGRESS",
            GspCode::InvalidDecryptedRequest => "INVALID_DECRYPTED_REQUEST",
            GspCode::Forbidden => "FORBIDDEN",
        }
    }

    /// The HTTP status Standard Payments advises for the code.
    pub fn status(self) -> u16 {
        match self {
            GspCode::InvalidPayloadSignature => 401,
            GspCode::InvalidIdentifier => 404,
            GspCode::IdempotencyViolation => 412,
            GspCode::UserActionInProgress => 423,
            GspCode::Forbidden => 403,
            GspCode::InvalidApiVersion
            | GspCode::InvalidPayloadEncryption
            | GspCode::RequestTimestampOutOfRange
            | GspCode::InvalidFieldValue
            | GspCode::MissingRequiredField
            | GspCode::PreconditionViolation
            | GspCode::InvalidDecryptedRequest => 400,
        }
    }
}

/// A refusal in Google's terms: the code and a description naming the
/// field (never a secret, never a PSP's reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GspError {
    pub code: GspCode,
    pub description: String,
}

impl GspError {
    pub fn new(code: GspCode, description: impl Into<String>) -> GspError {
        GspError {
            code,
            description: description.into(),
        }
    }

    fn missing(field: &str) -> GspError {
        GspError::new(
            GspCode::MissingRequiredField,
            format!("{field} is required"),
        )
    }

    fn invalid(field: &str, why: &str) -> GspError {
        GspError::new(GspCode::InvalidFieldValue, format!("{field} {why}"))
    }

    /// The `ErrorResponse` body.
    pub fn body(&self, now_ms: i64) -> Value {
        json!({
            "responseHeader": response_header(now_ms),
            "errorResponseCode": self.code.as_str(),
            "errorDescription": self.description,
        })
    }
}

/// `{"responseTimestamp": {"epochMillis": "…"}}`.
pub fn response_header(now_ms: i64) -> Value {
    json!({ "responseTimestamp": epoch_millis(now_ms) })
}

/// A timestamp as Google sends it: int64 milliseconds as a string.
pub fn epoch_millis(ms: i64) -> Value {
    json!({ "epochMillis": ms.to_string() })
}

/// Google's requests carry their request id as the idempotency key, within
/// the payment integrator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub request_id: String,
    pub request_timestamp_ms: i64,
    pub protocol_major: i64,
    pub account_id: String,
}

/// The protocol major version served.
pub const PROTOCOL_MAJOR: i64 = 1;
/// A request whose timestamp is further than this from now is refused.
pub const TIMESTAMP_WINDOW_MS: i64 = 60_000;
const MAX_ID: usize = 100;

fn field<'a>(v: &'a Value, path: &str, name: &str) -> Result<&'a Value, GspError> {
    v.get(name)
        .filter(|x| !x.is_null())
        .ok_or_else(|| GspError::missing(&format!("{path}{name}")))
}

/// `[a-zA-Z0-9:_-]`, 1 to 100 characters (Google's request ids).
pub fn is_request_id(s: &str) -> bool {
    (1..=MAX_ID).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// An int64 sent as a string (or, by older APIs, as a bare number).
pub fn int64(v: &Value, path: &str) -> Result<i64, GspError> {
    match v {
        Value::String(s) => s
            .parse::<i64>()
            .map_err(|_| GspError::invalid(path, "must be an int64 in a string")),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| GspError::invalid(path, "must be an int64")),
        _ => Err(GspError::invalid(path, "must be an int64 in a string")),
    }
}

/// `{"epochMillis": "…"}` at `path`.
pub fn timestamp(v: &Value, path: &str) -> Result<i64, GspError> {
    if !v.is_object() {
        return Err(GspError::invalid(
            path,
            "must be an object with epochMillis",
        ));
    }
    let ms = field(v, &format!("{path}."), "epochMillis")?;
    int64(ms, &format!("{path}.epochMillis"))
}

impl RequestHeader {
    /// Parse `body.requestHeader` and check it against now (±60 s) and the
    /// protocol version.
    pub fn parse(body: &Value, now_ms: i64) -> Result<RequestHeader, GspError> {
        let h = field(body, "", "requestHeader")?;
        if !h.is_object() {
            return Err(GspError::invalid("requestHeader", "must be an object"));
        }
        let id = field(h, "requestHeader.", "requestId")?
            .as_str()
            .filter(|s| is_request_id(s))
            .ok_or_else(|| {
                GspError::invalid(
                    "requestHeader.requestId",
                    "must be 1 to 100 characters [a-zA-Z0-9:_-]",
                )
            })?;
        let account = field(h, "requestHeader.", "paymentIntegratorAccountId")?
            .as_str()
            .filter(|s| is_request_id(s))
            .ok_or_else(|| {
                GspError::invalid(
                    "requestHeader.paymentIntegratorAccountId",
                    "must be 1 to 100 characters [a-zA-Z0-9:_-]",
                )
            })?;
        let version = field(h, "requestHeader.", "protocolVersion")?;
        let major = int64(
            field(version, "requestHeader.protocolVersion.", "major")?,
            "requestHeader.protocolVersion.major",
        )?;
        if major != PROTOCOL_MAJOR {
            return Err(GspError::new(
                GspCode::InvalidApiVersion,
                format!("protocolVersion.major {major} is not served (only {PROTOCOL_MAJOR})"),
            ));
        }
        let at = timestamp(
            field(h, "requestHeader.", "requestTimestamp")?,
            "requestHeader.requestTimestamp",
        )?;
        if at.abs_diff(now_ms) > TIMESTAMP_WINDOW_MS.unsigned_abs() {
            return Err(GspError::new(
                GspCode::RequestTimestampOutOfRange,
                "requestHeader.requestTimestamp is more than 60 s from now",
            ));
        }
        Ok(RequestHeader {
            request_id: id.to_owned(),
            request_timestamp_ms: at,
            protocol_major: major,
            account_id: account.to_owned(),
        })
    }
}

/// `{"amountMicros": "…", "currencyCode": "…"}` at `path`, as integer money
/// in the currency's minor units (micros that do not fall on a minor unit
/// are refused: no rounding of money).
pub fn amount(v: &Value, path: &str) -> Result<Money, GspError> {
    if !v.is_object() {
        return Err(GspError::invalid(
            path,
            "must be an object with amountMicros and currencyCode",
        ));
    }
    let code = field(v, &format!("{path}."), "currencyCode")?
        .as_str()
        .ok_or_else(|| GspError::invalid(&format!("{path}.currencyCode"), "must be a string"))?;
    let currency = Currency::parse(code).map_err(|_| {
        GspError::invalid(&format!("{path}.currencyCode"), "must be an ISO 4217 code")
    })?;
    let micros = int64(
        field(v, &format!("{path}."), "amountMicros")?,
        &format!("{path}.amountMicros"),
    )?;
    Money::from_micros(micros, currency)
        .map_err(|e| GspError::invalid(&format!("{path}.amountMicros"), &e.to_string()))
}

/// An amount as Google reads it (`None` if its micros overflow an int64).
pub fn amount_json(m: Money) -> Option<Value> {
    let micros = m.micros().ok()?;
    Some(json!({
        "amountMicros": micros.to_string(),
        "currencyCode": m.currency().code(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ts: Value) -> Value {
        json!({"requestHeader": {"requestId": "req-1:a_b", "requestTimestamp": ts,
               "protocolVersion": {"major": 1}, "paymentIntegratorAccountId": "piaid-9"}})
    }

    #[test]
    fn the_header_parses_strings_and_numbers_and_checks_the_window() {
        let now = 1_700_000_000_000;
        let h = RequestHeader::parse(&req(json!({"epochMillis": "1700000000500"})), now).unwrap();
        assert_eq!(h.request_id, "req-1:a_b");
        assert_eq!(h.account_id, "piaid-9");
        assert_eq!(h.request_timestamp_ms, 1_700_000_000_500);
        let h =
            RequestHeader::parse(&req(json!({"epochMillis": 1_699_999_950_000i64})), now).unwrap();
        assert_eq!(h.request_timestamp_ms, 1_699_999_950_000);
        let late =
            RequestHeader::parse(&req(json!({"epochMillis": "1700000061000"})), now).unwrap_err();
        assert_eq!(late.code, GspCode::RequestTimestampOutOfRange);
        assert_eq!(late.code.status(), 400);
        let bad = RequestHeader::parse(&req(json!({"epochMillis": "soon"})), now).unwrap_err();
        assert_eq!(bad.code, GspCode::InvalidFieldValue);
        assert!(bad
            .description
            .contains("requestHeader.requestTimestamp.epochMillis"));
        let none = RequestHeader::parse(&json!({}), now).unwrap_err();
        assert_eq!(
            (none.code, none.code.status()),
            (GspCode::MissingRequiredField, 400)
        );
        let mut v2 = req(json!({"epochMillis": "1700000000000"}));
        v2["requestHeader"]["protocolVersion"]["major"] = json!(2);
        assert_eq!(
            RequestHeader::parse(&v2, now).unwrap_err().code,
            GspCode::InvalidApiVersion
        );
        let mut long = req(json!({"epochMillis": "1700000000000"}));
        long["requestHeader"]["requestId"] = json!("x".repeat(101));
        assert!(RequestHeader::parse(&long, now)
            .unwrap_err()
            .description
            .contains("requestId"));
    }

    #[test]
    fn amounts_are_micros_that_fall_on_a_minor_unit() {
        let m = amount(
            &json!({"amountMicros": "1230000", "currencyCode": "EUR"}),
            "a",
        )
        .unwrap();
        assert_eq!(m.minor(), 123);
        assert_eq!(
            amount_json(m),
            Some(json!({"amountMicros": "1230000", "currencyCode": "EUR"}))
        );
        let n = amount(
            &json!({"amountMicros": 50_000_000, "currencyCode": "JPY"}),
            "a",
        )
        .unwrap();
        assert_eq!(n.minor(), 50);
        let e = amount(
            &json!({"amountMicros": "1234567", "currencyCode": "EUR"}),
            "a",
        )
        .unwrap_err();
        assert!(e.description.starts_with("a.amountMicros"), "{e:?}");
        let c = amount(&json!({"amountMicros": "1", "currencyCode": "EURO"}), "a").unwrap_err();
        assert!(c.description.starts_with("a.currencyCode"));
        assert_eq!(GspCode::IdempotencyViolation.status(), 412);
        assert_eq!(GspCode::InvalidPayloadSignature.status(), 401);
    }
}
