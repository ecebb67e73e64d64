//! What the domain tells the metrics: one function per fact, called where
//! the fact becomes true (after the conditional write that makes it so,
//! so a duplicate or a lost race records nothing). See
//! [`crate::metrics::catalogue`] for what each metric means.

use crate::metrics::catalogue as m;
use crate::metrics::Dim;
use crate::schema::keys;
use crate::store::{Query, SkRange};

use crate::domain::Ctx;
use crate::ids::PspId;
use crate::money::Money;
use crate::schema::recon_index::Kind;
use crate::schema::status::PaymentStatus;

/// A deposit intent was created (or held for review).
pub fn deposit_started(
    ctx: &Ctx,
    method: &str,
    bank: Option<&str>,
    country: Option<&str>,
    device: Option<&str>,
) {
    let facts = [
        (Dim::Method, method),
        (Dim::Bank, bank.unwrap_or_default()),
        (Dim::Country, country.unwrap_or_default()),
        (Dim::Device, device.unwrap_or_default()),
    ];
    ctx.metrics().count(&m::DEPOSITS_STARTED, &facts);
}

/// What the metrics know of a deposit.
pub struct Deposit<'a> {
    pub method: &'a str,
    pub bank: Option<&'a str>,
    pub country: Option<&'a str>,
    pub device: Option<&'a str>,
    pub amount: Money,
    pub psp: &'a PspId,
    pub created_ms: i64,
}

/// A deposit moved to `status` (this caller's write did it).
pub fn deposit_moved(ctx: &Ctx, p: &Deposit<'_>, status: PaymentStatus, three_ds_failed: bool) {
    let metrics = ctx.metrics();
    let method = [(Dim::Method, p.method)];
    match status {
        PaymentStatus::Captured => {
            let currency = p.amount.currency().code();
            let facts = [
                (Dim::Method, p.method),
                (Dim::Bank, p.bank.unwrap_or_default()),
                (Dim::Country, p.country.unwrap_or_default()),
                (Dim::Device, p.device.unwrap_or_default()),
                (Dim::Currency, currency),
            ];
            metrics.count(&m::DEPOSITS_SUCCEEDED, &facts);
            let took = ctx.now_ms().saturating_sub(p.created_ms);
            metrics.time(&m::DEPOSIT_TIME_MS, &method, took);
            let fee = ctx
                .policies
                .recon
                .fees
                .get(p.psp)
                .and_then(|rule| rule.expected(Kind::Payment, p.amount.minor()));
            if let Some(fee) = fee.and_then(|f| u64::try_from(f).ok()) {
                let by = [(Dim::Method, p.method), (Dim::Currency, currency)];
                metrics.add(&m::DEPOSIT_FEES_MINOR, &by, fee);
            }
        }
        PaymentStatus::Failed => {
            metrics.count(&m::DEPOSITS_FAILED, &method);
            if three_ds_failed {
                metrics.count(&m::DEPOSITS_3DS_FAILED, &method);
            }
        }
        PaymentStatus::Canceled => metrics.count(&m::DEPOSITS_CANCELLED, &method),
        PaymentStatus::ChargedBack => metrics.count(&m::CHARGEBACKS, &method),
        PaymentStatus::Pending | PaymentStatus::Authorized => {}
    }
}

/// A refund the PSP confirmed (moved by this caller).
pub fn refund_settled(ctx: &Ctx, method: &str) {
    ctx.metrics()
        .count(&m::REFUNDS_SETTLED, &[(Dim::Method, method)]);
}

/// A withdrawal accepted and held.
pub fn payout_requested(ctx: &Ctx, method: &str) {
    ctx.metrics()
        .count(&m::PAYOUTS_REQUESTED, &[(Dim::Method, method)]);
}

/// A withdrawal's final outcome (moved by this caller).
pub fn payout_finished(ctx: &Ctx, method: &str, paid: bool, requested_ms: i64) {
    let facts = [(Dim::Method, method)];
    if paid {
        ctx.metrics().count(&m::PAYOUTS_PAID, &facts);
        let took = ctx.now_ms().saturating_sub(requested_ms);
        ctx.metrics().time(&m::PAYOUT_TIME_MS, &facts, took);
    } else {
        ctx.metrics().count(&m::PAYOUTS_FAILED, &facts);
    }
}

/// A risk decision stored for the first time.
pub fn risk_decided(ctx: &Ctx, flow: &str, outcome: &str) {
    let facts = [(Dim::Flow, flow)];
    ctx.metrics().count(&m::RISK_DECISIONS, &facts);
    match outcome {
        "review" => ctx.metrics().count(&m::RISK_REVIEWS_OPENED, &facts),
        "decline" => ctx.metrics().count(&m::RISK_DECLINES, &facts),
        _ => {}
    }
}

/// A player was asked to raise their KYC level.
pub fn kyc_required(ctx: &Ctx) {
    ctx.metrics().count(&m::KYC_REQUIRED, &[]);
}

/// A player's KYC level was raised `took_ms` after the step-up asked for it.
pub fn kyc_raised(ctx: &Ctx, took_ms: i64) {
    ctx.metrics().time(&m::KYC_TIME_MS, &[], took_ms);
}

/// How a PSP call ended, for uptime and native error rate per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    Unavailable,
    Refused,
}

pub fn psp_call(ctx: &Ctx, psp: &str, method: &str, outcome: CallOutcome) {
    let facts = [(Dim::Psp, psp), (Dim::Method, method)];
    let metrics = ctx.metrics();
    metrics.count(&m::PSP_CALLS, &facts);
    let def = match outcome {
        CallOutcome::Ok => &m::PSP_CALLS_OK,
        CallOutcome::Unavailable => &m::PSP_CALLS_UNAVAILABLE,
        CallOutcome::Refused => &m::PSP_CALLS_REFUSED,
    };
    metrics.count(def, &facts);
}

/// A webhook event's intake outcome (the delivery log's words): accepted,
/// duplicate, or refused (bad_signature, stale, invalid, unknown_payment,
/// mismatch). Genuine events kept for an operator (unhandled,
/// report_available) are not counted.
pub fn webhook(ctx: &Ctx, psp: &str, outcome: &str) {
    let def = match outcome {
        "accepted" => &m::WEBHOOKS_ACCEPTED,
        "duplicate" => &m::WEBHOOKS_DUPLICATE,
        "unhandled" | "report_available" => return,
        _ => &m::WEBHOOKS_REJECTED,
    };
    ctx.metrics()
        .count(def, &[(Dim::Psp, psp), (Dim::Outcome, outcome)]);
}

/// A reconciliation run's lines by class, and the cases it opened.
pub fn recon_classes(ctx: &Ctx, psp: &str, classes: &[(&str, u64)], mismatches: u64) {
    for (class, n) in classes {
        ctx.metrics()
            .add(&m::RECON_LINES, &[(Dim::Class, class)], *n);
    }
    ctx.metrics()
        .add(&m::RECON_MISMATCHES, &[(Dim::Psp, psp)], mismatches);
}

/// The levels read now: dead letters, reviews, alerts. Bounded reads (a
/// queue attribute and two bounded list queries). Written by the sweep
/// (Lambda: once a minute) and read by `GET /v1/ops/metrics`.
pub async fn gauges(ctx: &Ctx) -> Result<(), crate::Error> {
    use crate::queue::QueueName;
    let metrics = ctx.metrics();
    let mut depths = Vec::new();
    for q in [QueueName::EventsDlq, QueueName::GoogleDlq] {
        let depth = match ctx.queue.depth(q).await {
            Ok(d) => d,
            // A stack without the Google queues configured has no such DLQ.
            Err(crate::queue::QueueError::Invalid(_)) if q == QueueName::GoogleDlq => continue,
            Err(e) => return Err(e.into()),
        };
        depths.push((q.as_str(), i64::try_from(depth).unwrap_or(i64::MAX)));
    }
    metrics.gauge_parts(&m::DLQ_DEPTH, Dim::Queue, &depths);
    let open = ctx
        .store
        .query(&Query::new(keys::REVIEW_QUEUE_PK, SkRange::All, GAUGE_SCAN))
        .await?;
    let payouts = open
        .items
        .iter()
        .filter(|it| it.get("flow").and_then(|f| f.as_str()) == Some("payout"))
        .count();
    metrics.gauge(&m::REVIEWS_OPEN, &[], count(open.items.len()));
    metrics.gauge(&m::PAYOUTS_IN_REVIEW, &[], count(payouts));
    let alerts = ctx
        .store
        .query(&Query::new(keys::ALERT_QUEUE_PK, SkRange::All, GAUGE_SCAN))
        .await?;
    metrics.gauge(&m::ALERTS_OPEN, &[], count(alerts.items.len()));
    Ok(())
}

/// The most items a gauge counts (the console pages beyond it).
pub const GAUGE_SCAN: usize = 1000;

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
