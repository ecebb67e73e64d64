//! `remittanceStatementNotification`: Google raised a remittance statement
//! (the money between Google and the integrator for a billing period). It
//! is kept, once per statement id (the request id), and answered
//! `accepted`; paging through its details, reconciling them and accepting
//! the statement follow (issue 14, still to come).

use serde_json::{json, Value};

use crate::domain::Ctx;
use crate::money::{Currency, MICROS_PER_UNIT};
use crate::schema::keys;
use crate::store::{item, Attr};

use super::wire::{self, GspCode, GspError, RequestHeader};
use super::Refusal;

/// A statement's summary, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub statement_date_ms: i64,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub due_ms: i64,
    /// Minor units; negative when Google owes the integrator.
    pub total_due_minor: i64,
    pub currency: Currency,
    pub total_events: i64,
}

fn get<'a>(v: &'a Value, path: &str, name: &str) -> Result<&'a Value, GspError> {
    v.get(name).filter(|x| !x.is_null()).ok_or_else(|| {
        GspError::new(
            GspCode::MissingRequiredField,
            format!("{path}.{name} is required"),
        )
    })
}

/// A signed amount in micros that falls on a minor unit (a statement's
/// total may be owed either way).
fn signed_amount(v: &Value, path: &str) -> Result<(i64, Currency), GspError> {
    let code = get(v, path, "currencyCode")?.as_str().ok_or_else(|| {
        GspError::new(
            GspCode::InvalidFieldValue,
            format!("{path}.currencyCode must be a string"),
        )
    })?;
    let currency = Currency::parse(code).map_err(|_| {
        GspError::new(
            GspCode::InvalidFieldValue,
            format!("{path}.currencyCode must be an ISO 4217 code"),
        )
    })?;
    let micros = wire::int64(
        get(v, path, "amountMicros")?,
        &format!("{path}.amountMicros"),
    )?;
    let per_minor = MICROS_PER_UNIT / 10_i64.pow(u32::from(currency.minor_digits()));
    if per_minor == 0 || micros % per_minor != 0 {
        return Err(GspError::new(
            GspCode::InvalidFieldValue,
            format!("{path}.amountMicros must fall on a minor unit of {code}"),
        ));
    }
    Ok((micros / per_minor, currency))
}

impl Summary {
    pub fn parse(body: &Value) -> Result<Summary, GspError> {
        let p = "remittanceStatementSummary";
        let s = body.get(p).filter(|v| v.is_object()).ok_or_else(|| {
            GspError::new(GspCode::MissingRequiredField, format!("{p} is required"))
        })?;
        let period = get(s, p, "billingPeriod")?;
        let bp = format!("{p}.billingPeriod");
        let (total, currency) = signed_amount(
            get(s, p, "totalDueByIntegrator")?,
            &format!("{p}.totalDueByIntegrator"),
        )?;
        let events = wire::int64(get(s, p, "totalEvents")?, &format!("{p}.totalEvents"))?;
        if events < 0 {
            return Err(GspError::new(
                GspCode::InvalidFieldValue,
                format!("{p}.totalEvents must not be negative"),
            ));
        }
        let summary = Summary {
            statement_date_ms: wire::timestamp(
                get(s, p, "statementDate")?,
                &format!("{p}.statementDate"),
            )?,
            period_start_ms: wire::timestamp(
                get(period, &bp, "startDate")?,
                &format!("{bp}.startDate"),
            )?,
            period_end_ms: wire::timestamp(get(period, &bp, "endDate")?, &format!("{bp}.endDate"))?,
            due_ms: wire::timestamp(get(s, p, "dateDue")?, &format!("{p}.dateDue"))?,
            total_due_minor: total,
            currency,
            total_events: events,
        };
        if summary.period_end_ms < summary.period_start_ms {
            return Err(GspError::new(
                GspCode::InvalidFieldValue,
                format!("{bp}.endDate is before its startDate"),
            ));
        }
        Ok(summary)
    }
}

/// Keep the statement (once; the request id is the statement id) and
/// answer `accepted`.
pub async fn notified(ctx: &Ctx, h: &RequestHeader, body: &Value) -> Result<Value, Refusal> {
    let s = Summary::parse(body)?;
    let it = item(
        &keys::gsp_statement(&h.account_id, &h.request_id),
        [
            ("status", Attr::from("notified")),
            ("statement_date_ms", Attr::N(s.statement_date_ms)),
            ("period_start_ms", Attr::N(s.period_start_ms)),
            ("period_end_ms", Attr::N(s.period_end_ms)),
            ("due_ms", Attr::N(s.due_ms)),
            ("total_due_minor", Attr::N(s.total_due_minor)),
            ("currency", Attr::from(s.currency.code())),
            ("total_events", Attr::N(s.total_events)),
            ("notified_ms", Attr::N(ctx.now_ms())),
        ],
    );
    if super::keep_once(ctx, it).await? {
        tracing::info!(account = %h.account_id, statement = %h.request_id, events = s.total_events, "remittance statement notified");
    }
    Ok(json!({"responseHeader": wire::response_header(ctx.now_ms()), "result": {"accepted": {}}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Value {
        json!({"epochMillis": ms.to_string()})
    }

    #[test]
    fn a_summary_is_read_with_a_signed_total() {
        let body = json!({"remittanceStatementSummary": {
            "statementDate": ts(1_700_086_400_000),
            "billingPeriod": {"startDate": ts(1_700_000_000_000), "endDate": ts(1_700_086_399_999)},
            "dateDue": ts(1_700_600_000_000),
            "totalDueByIntegrator": {"amountMicros": "-1250000", "currencyCode": "EUR"},
            "totalEvents": "3"}});
        let s = Summary::parse(&body).unwrap();
        assert_eq!(
            (s.total_due_minor, s.currency.code(), s.total_events),
            (-125, "EUR", 3)
        );
        let mut odd = body.clone();
        odd["remittanceStatementSummary"]["totalDueByIntegrator"]["amountMicros"] = json!("1");
        assert!(Summary::parse(&odd)
            .unwrap_err()
            .description
            .contains("totalDueByIntegrator.amountMicros"));
        let mut gone = body.clone();
        gone["remittanceStatementSummary"]["billingPeriod"]
            .as_object_mut()
            .unwrap()
            .remove("endDate");
        let e = Summary::parse(&gone).unwrap_err();
        assert_eq!(e.code, GspCode::MissingRequiredField);
        assert!(e.description.contains("billingPeriod.endDate"));
    }
}
