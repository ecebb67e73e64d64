//! Daily counters per method and currency for deposits, refunds and
//! chargebacks, written in the SAME transaction as the money movement they
//! count (so they are exact), and the refund and chargeback reports built
//! from them: count, amount, and rate against the day's captured deposits.
//!
//! | item          | pk                         | sk                     |
//! |---------------|----------------------------|------------------------|
//! | day counter   | `REPORT#<kind>#<day>`      | `<method>#<currency>`  |

use serde::Serialize;

use crate::clock::Day;
use crate::error::Error;
use crate::money::{format_minor, Currency};
use crate::store::{ItemExt, Query, SkRange, UpdateOp, Write};

use crate::domain::Ctx;
use crate::schema::keys;

/// Method × currency rows read per report.
const MAX_ROWS: usize = 500;

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
}

fn pk(kind: ReportKind, day: Day) -> String {
    keys::report_pk(kind.as_str(), day)
}

/// The counter update to put in a movement's transaction.
pub fn count(
    kind: ReportKind,
    day: Day,
    method: &str,
    currency: Currency,
    amount_minor: i64,
) -> Write {
    Write::Update {
        key: keys::report_counter(kind.as_str(), day, method, currency),
        ops: vec![
            UpdateOp::Add("count".into(), 1),
            UpdateOp::Add("amount".into(), amount_minor),
        ],
        cond: None,
    }
}

async fn rows(ctx: &Ctx, kind: ReportKind, day: Day) -> Result<Vec<(String, i64, i64)>, Error> {
    let q = Query::new(pk(kind, day), SkRange::All, MAX_ROWS);
    Ok(ctx
        .store
        .query(&q)
        .await?
        .items
        .iter()
        .filter_map(|it| {
            Some((
                it.str_attr("sk")?.to_owned(),
                it.int_attr("count").unwrap_or(0),
                it.int_attr("amount").unwrap_or(0),
            ))
        })
        .collect())
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
    let deposits = rows(ctx, ReportKind::Deposits, day).await?;
    let mut out = Vec::new();
    for (sk, n, amount) in rows(ctx, kind, day).await? {
        let Some((method, code)) = sk.split_once('#') else {
            continue;
        };
        let Ok(currency) = Currency::parse(code) else {
            continue;
        };
        let base = deposits
            .iter()
            .find(|(d, _, _)| *d == sk)
            .map_or(0, |(_, c, _)| *c);
        let rate_bps = (n * 10_000).checked_div(base);
        out.push(ReportRow {
            method: method.to_owned(),
            currency,
            count: n,
            amount: format_minor(amount, currency),
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
