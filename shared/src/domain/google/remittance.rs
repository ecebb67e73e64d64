//! Remittance statements (the money between Google and the integrator for
//! a billing period):
//! - `remittanceStatementNotification` keeps the statement, once per
//!   statement id (the request id), queues its settlement and answers
//!   `accepted`;
//! - [`settle`] (the `google` queue's consumer) pages through
//!   `remittanceStatementDetails`, reconciles every event against payloop's
//!   records of what it told Google (the index written with each success
//!   notification, [`super::outbound`]) with the reconciliation matcher,
//!   opens a reconciliation case for each mismatch (counterparty `google`,
//!   on the period's first day), then calls `acceptRemittanceStatement`.
//!
//! The event shape of a redirect-FOP statement is not published; this
//! reads the card FOP's: `captureEvents` and `refundEvents`, each
//! `{eventRequestId, paymentIntegratorEventId?, eventCharge, eventFee?}`,
//! `eventRequestId` being the requestId of the redirect payment (or of the
//! asynchronousRefund), a refund's charge negative.

use serde_json::{json, Value};

use sha2::{Digest, Sha256};

use crate::clock::Day;
use crate::domain::recon::cases::{self as recon_cases, LineCase};
use crate::domain::recon::matcher::{BucketMatcher, Class, Theirs};
use crate::domain::recon::run::load_bucket;
use crate::domain::Ctx;
use crate::money::{Currency, MICROS_PER_UNIT};
use crate::schema::keys;
use crate::schema::recon_index::{Kind, Record, BUCKETS};
use crate::store::{item, Attr, Cond, ItemExt, StoreError, UpdateOp, Write};

use super::outbound::{self, CallError, GoogleApi, Hosted, Job, JobError};
use super::wire::{self, GspCode, GspError, RequestHeader};
use super::Refusal;

/// Events asked for per details page: Google allows 1 000; 100 keeps a
/// page (about 17 KB of JSON, 31 KB sealed) well inside the codec's 64 KiB.
pub const PAGE_EVENTS: i64 = 100;
/// The most events one statement may hold here (pages are read into memory).
pub const MAX_EVENTS: usize = 20_000;
/// The longest billing period reconciled, in days.
pub const MAX_PERIOD_DAYS: i64 = 62;

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
    // Queued on every attempt (the settlement skips a statement accepted).
    let job = Job::Statement {
        account: h.account_id.clone(),
        statement_id: h.request_id.clone(),
    };
    outbound::enqueue(ctx, &job)
        .await
        .map_err(Refusal::Unavailable)?;
    Ok(json!({"responseHeader": wire::response_header(ctx.now_ms()), "result": {"accepted": {}}}))
}

/// A short stable name for a statement in the request ids payloop makes
/// for it (a statement id may be 100 characters itself).
fn short(statement_id: &str) -> String {
    hex::encode(&Sha256::digest(statement_id.as_bytes())[..8])
}

/// What a statement's reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub events: usize,
    pub matched: usize,
    /// Lines and records with a case (mismatches both ways).
    pub mismatched: usize,
}

/// Settle a statement: read its details, reconcile, accept (see the module
/// doc). A statement with a mismatch, or whose events do not add up to its
/// summary, is `held` instead: an operator releases it
/// ([`release`]) and only then is it accepted. Each step may be repeated:
/// cases open once, acceptance is once by its requestId, an accepted or held
/// statement is left alone.
pub async fn settle(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    account: &str,
    statement_id: &str,
) -> Result<(), JobError> {
    let key = keys::gsp_statement(account, statement_id);
    let Some(st) = ctx.store.get(&key).await? else {
        return Err(JobError::Permanent(format!(
            "statement {statement_id} was never notified"
        )));
    };
    match st.str_attr("status") {
        Some("accepted" | "held") => return Ok(()),
        Some("released") => return accept(ctx, api, account, statement_id).await,
        _ => {}
    }
    let (Some(start), Some(end), Some(total_due), Some(total_events)) = (
        st.int_attr("period_start_ms"),
        st.int_attr("period_end_ms"),
        st.int_attr("total_due_minor"),
        st.int_attr("total_events"),
    ) else {
        return Err(JobError::Permanent("a kept statement is incomplete".into()));
    };
    let period = (Day::of_ms(start), Day::of_ms(end));
    if period_days(period) > MAX_PERIOD_DAYS {
        return Err(JobError::Permanent(format!(
            "the billing period is longer than {MAX_PERIOD_DAYS} days"
        )));
    }
    let events = details(ctx, api, account, statement_id).await?;
    let outcome = reconcile(ctx, account, statement_id, period, &events).await?;
    let sum = net_total(&events)
        .ok_or_else(|| JobError::Permanent("the events' total overflows".into()))?;
    let hold = if usize::try_from(total_events).ok() != Some(events.len()) {
        Some(format!(
            "{} events read, the summary says {total_events}",
            events.len()
        ))
    } else if sum != total_due {
        Some(format!(
            "the events add up to {sum}, the summary's total due is {total_due} (minor units)"
        ))
    } else if outcome.mismatched > 0 {
        Some(format!(
            "{} mismatches (reconciliation cases)",
            outcome.mismatched
        ))
    } else {
        None
    };
    let status = if hold.is_some() { "held" } else { "reconciled" };
    let mut ops = vec![
        UpdateOp::Set("status".into(), Attr::from(status)),
        UpdateOp::Set("events_read".into(), Attr::N(count(events.len()))),
        UpdateOp::Set("matched".into(), Attr::N(count(outcome.matched))),
        UpdateOp::Set("mismatched".into(), Attr::N(count(outcome.mismatched))),
    ];
    if let Some(why) = &hold {
        ops.push(UpdateOp::Set(
            "hold_reason".into(),
            Attr::from(why.as_str()),
        ));
    }
    // Never back from a later state (a duplicate job may run alongside).
    let still_open = Cond::In(
        "status".into(),
        vec![Attr::from("notified"), Attr::from("reconciled")],
    );
    match ctx
        .store
        .write(Write::Update {
            key,
            ops,
            cond: Some(still_open),
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if let Some(why) = hold {
        tracing::warn!(account, statement = statement_id, reason = %why, "remittance statement held for an operator");
        return Ok(());
    }
    accept(ctx, api, account, statement_id).await
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Days the period touches, first and last included.
fn period_days((first, last): (Day, Day)) -> i64 {
    (last.start_ms() - first.start_ms()) / 86_400_000 + 1
}

/// What the events say is due: charges less fees (checked).
fn net_total(events: &[Theirs]) -> Option<i64> {
    events.iter().try_fold(0i64, |sum, t| {
        sum.checked_add(t.gross_minor.checked_sub(t.fee_minor)?)
    })
}

/// `acceptRemittanceStatement`, then the statement is `accepted`.
async fn accept(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    account: &str,
    statement_id: &str,
) -> Result<(), JobError> {
    let accept = json!({
        "requestHeader": outbound::header(ctx, account, &format!("accept:{}", short(statement_id))),
        "statementId": statement_id,
    });
    let answer = api
        .call(Hosted::AcceptRemittanceStatement, account, &accept)
        .await?;
    if answer.pointer("/result/success").is_none() {
        return Err(CallError::Unreadable("the statement was not accepted".into()).into());
    }
    ctx.store
        .write(Write::Update {
            key: keys::gsp_statement(account, statement_id),
            ops: vec![
                UpdateOp::Set("status".into(), Attr::from("accepted")),
                UpdateOp::Set("accepted_ms".into(), Attr::N(ctx.now_ms())),
            ],
            cond: None,
        })
        .await?;
    tracing::info!(
        account,
        statement = statement_id,
        "remittance statement accepted"
    );
    Ok(())
}

/// A statement as operators see it.
pub fn view(it: &crate::store::Item, account: &str, statement_id: &str) -> Value {
    json!({
        "account": account,
        "statement_id": statement_id,
        "status": it.str_attr("status"),
        "hold_reason": it.str_attr("hold_reason"),
        "events_read": it.int_attr("events_read"),
        "matched": it.int_attr("matched"),
        "mismatched": it.int_attr("mismatched"),
        "released_by": it.str_attr("released_by"),
    })
}

/// An operator releases a held statement (after looking at its cases): it
/// is accepted at Google next. Releasing again is a no-op; a statement not
/// held is 409.
pub async fn release(
    ctx: &Ctx,
    account: &str,
    statement_id: &str,
    by: &str,
    note: &str,
) -> Result<Value, crate::error::Error> {
    use crate::error::{Error, ErrorCode};
    let key = keys::gsp_statement(account, statement_id);
    let Some(st) = ctx.store.get(&key).await? else {
        return Err(Error::NotFound { what: "statement" });
    };
    match st.str_attr("status") {
        Some("released" | "accepted") => return Ok(view(&st, account, statement_id)),
        Some("held") => {}
        other => {
            return Err(Error::Conflict {
                code: ErrorCode::StatementNotHeld,
                reason: format!(
                    "the statement is {}; only a held statement is released",
                    other.unwrap_or("unknown")
                ),
            })
        }
    }
    let released = Write::Update {
        key: key.clone(),
        ops: vec![
            UpdateOp::Set("status".into(), Attr::from("released")),
            UpdateOp::Set("released_by".into(), Attr::from(by)),
            UpdateOp::Set("release_note".into(), Attr::from(note)),
            UpdateOp::Set("released_ms".into(), Attr::N(ctx.now_ms())),
        ],
        cond: Some(Cond::eq("status", "held")),
    };
    match ctx.store.write(released).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        audit = true,
        account,
        statement = statement_id,
        by,
        "remittance statement released"
    );
    let job = Job::Statement {
        account: account.to_owned(),
        statement_id: statement_id.to_owned(),
    };
    outbound::enqueue(ctx, &job).await?;
    let now = ctx
        .store
        .get(&key)
        .await?
        .ok_or(Error::NotFound { what: "statement" })?;
    Ok(view(&now, account, statement_id))
}

/// Every event of the statement, page by page.
async fn details(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    account: &str,
    statement_id: &str,
) -> Result<Vec<Theirs>, JobError> {
    let mut out = Vec::new();
    let mut offset: i64 = 0;
    for _ in 0..=(MAX_EVENTS / PAGE_EVENTS as usize) {
        let request_id = format!("details:{}:{offset}", short(statement_id));
        let ask = json!({
            "requestHeader": outbound::header(ctx, account, &request_id),
            "statementId": statement_id,
            "eventOffset": offset.to_string(),
            "numberOfEvents": PAGE_EVENTS.to_string(),
        });
        let page = api
            .call(Hosted::RemittanceStatementDetails, account, &ask)
            .await?;
        read_events(&page, account, &mut out).map_err(|e| CallError::Unreadable(e.description))?;
        if out.len() > MAX_EVENTS {
            return Err(JobError::Permanent(format!(
                "the statement holds more than {MAX_EVENTS} events"
            )));
        }
        match page.get("nextEventOffset").filter(|v| !v.is_null()) {
            None => return Ok(out),
            Some(next) => {
                let next = wire::int64(next, "nextEventOffset")
                    .map_err(|e| CallError::Unreadable(e.description))?;
                if next <= offset {
                    return Err(
                        CallError::Unreadable("nextEventOffset does not advance".into()).into(),
                    );
                }
                offset = next;
            }
        }
    }
    Err(JobError::Permanent(format!(
        "the statement holds more than {MAX_EVENTS} events"
    )))
}

/// The events of one details page, as reconciliation lines.
fn read_events(page: &Value, account: &str, out: &mut Vec<Theirs>) -> Result<(), GspError> {
    for (list, kind) in [
        ("captureEvents", Kind::Payment),
        ("refundEvents", Kind::Refund),
    ] {
        let Some(events) = page.get(list).filter(|v| !v.is_null()) else {
            continue;
        };
        let events = events.as_array().ok_or_else(|| {
            GspError::new(GspCode::InvalidFieldValue, format!("{list} must be a list"))
        })?;
        for (i, e) in events.iter().enumerate() {
            let path = format!("{list}[{i}]");
            let request = get(e, &path, "eventRequestId")?
                .as_str()
                .filter(|s| wire::is_request_id(s))
                .ok_or_else(|| {
                    GspError::new(
                        GspCode::InvalidFieldValue,
                        format!("{path}.eventRequestId is not a request id"),
                    )
                })?;
            let (gross, currency) = signed_amount(
                get(e, &path, "eventCharge")?,
                &format!("{path}.eventCharge"),
            )?;
            let fee = match e.get("eventFee").filter(|v| !v.is_null()) {
                Some(f) => signed_amount(f, &format!("{path}.eventFee"))?.0,
                None => 0,
            };
            out.push(Theirs {
                line: out.len() as u64 + 1,
                kind,
                key: outbound::statement_key(kind, account, request),
                reference: request.to_owned(),
                payment_id: e
                    .get("paymentIntegratorEventId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(100)
                    .collect(),
                gross_minor: gross,
                fee_minor: fee,
                currency,
            });
        }
    }
    Ok(())
}

/// Match the events against our records of the period; a case per mismatch.
pub async fn reconcile(
    ctx: &Ctx,
    account: &str,
    statement_id: &str,
    (first, last): (Day, Day),
    events: &[Theirs],
) -> Result<Outcome, JobError> {
    let google = outbound::counterparty()?;
    let mut records: Vec<Record> = Vec::new();
    let mut day = first;
    for _ in 0..MAX_PERIOD_DAYS {
        if day > last {
            break;
        }
        for b in 0..BUCKETS {
            let bucket = load_bucket(ctx, &google, day, b).await?;
            // The index holds every account's records: this statement's only.
            records.extend(
                bucket
                    .into_iter()
                    .filter(|r| outbound::key_account(&r.key) == Some(account)),
            );
        }
        day = day.next();
    }
    if day <= last {
        return Err(JobError::Permanent(format!(
            "the billing period is longer than {MAX_PERIOD_DAYS} days"
        )));
    }
    let mut m = BucketMatcher::new(&records, None, 0);
    let mut outcome = Outcome {
        events: events.len(),
        ..Outcome::default()
    };
    let mut cases: Vec<(Class, String, Option<Theirs>, Option<Record>)> = Vec::new();
    for t in events {
        let f = m.line(t);
        if f.class.opens_case() {
            cases.push((
                f.class,
                t.key.clone(),
                Some(t.clone()),
                f.ours.map(|o| o.into_owned()),
            ));
        } else {
            outcome.matched += 1;
        }
    }
    for r in m.unsettled() {
        cases.push((Class::MissingAtPsp, r.key.clone(), None, Some(r.clone())));
    }
    outcome.mismatched = cases.len();
    for (class, key, theirs, ours) in &cases {
        let c = LineCase {
            psp: &google,
            day: first,
            class: *class,
            key,
            theirs: theirs.as_ref(),
            ours: ours.as_ref(),
            detail: Some(format!("remittance statement {statement_id}")),
            healed: false,
        };
        recon_cases::open(ctx, &c).await?;
    }
    Ok(outcome)
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
