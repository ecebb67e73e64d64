//! The refund and chargeback reports: per method and currency, count,
//! amount, and rate against the day's captured deposits. Derived when a
//! report is asked for, from the reconciliation index (every capture,
//! refund and chargeback has exactly one record there, under the day the
//! PSP dates it): no counter is written on a deposit's hot path. The price
//! is paid here: one query page per 1 000 records of the day, over
//! [`BUCKETS`] partitions per PSP.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Day;
use crate::error::Error;
use crate::money::{format_minor, Currency};
use crate::schema::recon_index::{Kind, BUCKETS};

use crate::domain::recon::run::load_bucket;
use crate::domain::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Deposits,
    Refunds,
    Chargebacks,
}

impl ReportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportKind::Deposits => "deposits",
            ReportKind::Refunds => "refunds",
            ReportKind::Chargebacks => "chargebacks",
        }
    }
    pub fn parse(s: &str) -> Option<ReportKind> {
        [
            ReportKind::Deposits,
            ReportKind::Refunds,
            ReportKind::Chargebacks,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    fn of(kind: Kind) -> Option<ReportKind> {
        match kind {
            Kind::Payment => Some(ReportKind::Deposits),
            Kind::Refund => Some(ReportKind::Refunds),
            Kind::Chargeback => Some(ReportKind::Chargebacks),
            Kind::Fee | Kind::Payout => None,
        }
    }
}

/// Count and amount (minor units, unsigned) per kind, method and currency.
type Tally = BTreeMap<(&'static str, String, Currency), (i64, i64)>;

/// The day's records of every PSP, counted.
async fn tally(ctx: &Ctx, day: Day) -> Result<Tally, Error> {
    let mut out = Tally::new();
    for psp in ctx.psps.ids() {
        for b in 0..BUCKETS {
            for r in load_bucket(ctx, psp, day, b).await? {
                let Some(kind) = ReportKind::of(r.kind) else {
                    continue;
                };
                let row = out
                    .entry((kind.as_str(), r.method, r.currency))
                    .or_insert((0, 0));
                row.0 += 1;
                row.1 = row.1.saturating_add(r.gross_minor.saturating_abs());
            }
        }
    }
    Ok(out)
}

/// One method × currency row of a refund or chargeback report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub method: String,
    pub currency: Currency,
    pub count: i64,
    pub amount: String,
    /// Captured deposits of the same method and currency that day.
    pub deposits: i64,
    pub rate_bps: Option<i64>,
    pub rate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub kind: &'static str,
    pub date: String,
    pub rows: Vec<ReportRow>,
}

/// `GET /v1/reports/{refunds|chargebacks}?date=`: per method and currency,
/// count, amount, and rate = count / captured deposits of that day, in
/// basis points and as a percentage string.
pub async fn report(ctx: &Ctx, kind: ReportKind, day: Day) -> Result<Report, Error> {
    if kind == ReportKind::Deposits {
        return Err(Error::validation("kind", "must be refunds or chargebacks"));
    }
    let counted = tally(ctx, day).await?;
    let mut out = Vec::new();
    for ((k, method, currency), (n, amount)) in &counted {
        if *k != kind.as_str() {
            continue;
        }
        let base = counted
            .get(&(ReportKind::Deposits.as_str(), method.clone(), *currency))
            .map_or(0, |(c, _)| *c);
        let rate_bps = n.checked_mul(10_000).and_then(|x| x.checked_div(base));
        out.push(ReportRow {
            method: method.clone(),
            currency: *currency,
            count: *n,
            amount: format_minor(*amount, *currency),
            deposits: base,
            rate_bps,
            rate: rate_bps.map(|b| format!("{}.{:02}%", b / 100, b % 100)),
        });
    }
    Ok(Report {
        kind: kind.as_str(),
        date: day.to_string(),
        rows: out,
    })
}
