//! Every metric payloop emits: name, kind, unit, meaning and the breakdowns
//! (each a bounded set of label values) it is kept by. The Lambdas write
//! them as CloudWatch EMF; `payloop serve` keeps them in memory and serves
//! them at `GET /v1/ops/metrics`. One list, so both show the same numbers.

/// How a metric accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count of events since start (serve) or in the invocation (EMF).
    Counter,
    /// A duration per event; percentiles are read from it.
    Timer,
    /// A level read now (queue depth, open reviews).
    Gauge,
}

/// What one unit of a metric is (CloudWatch's unit names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// Minor units of the currency named by the series' `currency` label.
    MinorUnits,
}

impl Unit {
    pub fn cloudwatch(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::MinorUnits => "None",
        }
    }
}

/// A label a series is broken down by. Every value is bounded: see
/// [`crate::metrics::bound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Method,
    Bank,
    Country,
    Device,
    Currency,
    Psp,
    Outcome,
    To,
    Class,
    Queue,
    Flow,
}

impl Dim {
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Method => "method",
            Dim::Bank => "bank",
            Dim::Country => "country",
            Dim::Device => "device",
            Dim::Currency => "currency",
            Dim::Psp => "psp",
            Dim::Outcome => "outcome",
            Dim::To => "to",
            Dim::Class => "class",
            Dim::Queue => "queue",
            Dim::Flow => "flow",
        }
    }
}

/// One metric's definition.
#[derive(Debug, PartialEq, Eq)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub help: &'static str,
    /// The series kept: each a set of labels (`[]` is the total).
    pub breakdowns: &'static [&'static [Dim]],
}

use Dim::*;

const BY_DEPOSIT: &[&[Dim]] = &[&[], &[Method], &[Bank], &[Country], &[Device]];
const BY_METHOD: &[&[Dim]] = &[&[], &[Method]];
const BY_ROUTE: &[&[Dim]] = &[&[], &[Psp], &[Psp, Method]];
const TOTAL: &[&[Dim]] = &[&[]];

macro_rules! def {
    ($id:ident, $name:literal, $kind:ident, $unit:ident, $by:expr, $help:literal) => {
        pub const $id: Def = Def {
            name: $name,
            kind: Kind::$kind,
            unit: Unit::$unit,
            help: $help,
            breakdowns: $by,
        };
    };
}

def!(
    DEPOSITS_STARTED,
    "deposits_started",
    Counter,
    Count,
    BY_DEPOSIT,
    "Deposit intents created (held for review included)."
);
def!(
    DEPOSITS_SUCCEEDED,
    "deposits_succeeded",
    Counter,
    Count,
    &[
        &[],
        &[Method],
        &[Bank],
        &[Country],
        &[Device],
        &[Method, Currency]
    ],
    "Deposits credited to the wallet (a verified final capture)."
);
def!(
    DEPOSITS_FAILED,
    "deposits_failed",
    Counter,
    Count,
    BY_METHOD,
    "Deposits the PSP reported failed (declined, 3-D Secure failed, expired)."
);
def!(
    DEPOSITS_CANCELLED,
    "deposits_cancelled",
    Counter,
    Count,
    BY_METHOD,
    "Deposits cancelled (by the player or the PSP) before capture."
);
def!(
    DEPOSITS_3DS_FAILED,
    "deposits_3ds_failed",
    Counter,
    Count,
    BY_METHOD,
    "Card deposits refused because 3-D Secure authentication failed."
);
def!(
    DEPOSIT_TIME_MS,
    "deposit_time_ms",
    Timer,
    Milliseconds,
    BY_METHOD,
    "Intent created to wallet credited."
);
def!(DEPOSIT_FEES_MINOR, "deposit_fees_minor", Counter, MinorUnits, &[&[Method, Currency]],
    "PSP fees of credited deposits by the fee schedule (reconciliation checks them against the PSP's report).");
def!(
    REFUNDS_SETTLED,
    "refunds_settled",
    Counter,
    Count,
    BY_METHOD,
    "Refunds the PSP confirmed."
);
def!(
    CHARGEBACKS,
    "chargebacks",
    Counter,
    Count,
    BY_METHOD,
    "Credited deposits charged back."
);
def!(
    PAYOUTS_REQUESTED,
    "payouts_requested",
    Counter,
    Count,
    BY_METHOD,
    "Withdrawals accepted and held."
);
def!(
    PAYOUTS_PAID,
    "payouts_paid",
    Counter,
    Count,
    BY_METHOD,
    "Withdrawals the PSP confirmed paid."
);
def!(
    PAYOUTS_FAILED,
    "payouts_failed",
    Counter,
    Count,
    BY_METHOD,
    "Withdrawals that failed or were declined (funds released)."
);
def!(
    PAYOUT_TIME_MS,
    "payout_time_ms",
    Timer,
    Milliseconds,
    BY_METHOD,
    "Withdrawal requested to paid."
);
def!(
    RISK_DECISIONS,
    "risk_decisions",
    Counter,
    Count,
    &[&[], &[Flow]],
    "Risk decisions taken (deposits and payouts)."
);
def!(
    RISK_REVIEWS_OPENED,
    "risk_reviews_opened",
    Counter,
    Count,
    &[&[], &[Flow]],
    "Decisions that sent the money movement to manual review."
);
def!(
    RISK_DECLINES,
    "risk_declines",
    Counter,
    Count,
    &[&[], &[Flow]],
    "Decisions that declined."
);
def!(
    KYC_REQUIRED,
    "kyc_required",
    Counter,
    Count,
    TOTAL,
    "Players asked to raise their KYC level (step-up)."
);
def!(
    KYC_TIME_MS,
    "kyc_time_ms",
    Timer,
    Milliseconds,
    TOTAL,
    "Step-up asked for to KYC level raised by an operator."
);
def!(
    PSP_CALLS,
    "psp_calls",
    Counter,
    Count,
    BY_ROUTE,
    "Deposit session calls to a PSP."
);
def!(
    PSP_CALLS_OK,
    "psp_calls_ok",
    Counter,
    Count,
    BY_ROUTE,
    "PSP calls that opened a session."
);
def!(
    PSP_CALLS_UNAVAILABLE,
    "psp_calls_unavailable",
    Counter,
    Count,
    BY_ROUTE,
    "PSP calls that failed for the PSP's availability (timeout, 5xx, connection)."
);
def!(
    PSP_CALLS_REFUSED,
    "psp_calls_refused",
    Counter,
    Count,
    BY_ROUTE,
    "PSP calls the PSP refused with its own (native) error."
);
def!(
    WEBHOOKS_ACCEPTED,
    "webhooks_accepted",
    Counter,
    Count,
    &[&[], &[Psp]],
    "Webhook events verified and queued for the first time."
);
def!(
    WEBHOOKS_DUPLICATE,
    "webhooks_duplicate",
    Counter,
    Count,
    &[&[], &[Psp]],
    "Webhook events already seen (answered 200, nothing done)."
);
def!(
    WEBHOOKS_REJECTED,
    "webhooks_rejected",
    Counter,
    Count,
    &[&[], &[Psp], &[Psp, Outcome]],
    "Webhooks refused (bad signature, stale, malformed, unknown PSP)."
);
def!(
    CIRCUIT_CHANGES,
    "circuit_changes",
    Counter,
    Count,
    &[&[], &[Psp, To]],
    "PSP circuit state changes (to open, half_open or closed)."
);
def!(
    CIRCUIT_OPENED,
    "circuit_opened",
    Counter,
    Count,
    &[&[], &[Psp]],
    "PSP circuits that opened."
);
def!(
    RECON_LINES,
    "recon_lines",
    Counter,
    Count,
    &[&[], &[Class]],
    "Reconciliation lines by class."
);
def!(
    RECON_MISMATCHES,
    "recon_mismatches",
    Counter,
    Count,
    &[&[], &[Psp]],
    "Reconciliation lines that opened a case."
);
def!(
    DLQ_DEPTH,
    "dlq_depth",
    Gauge,
    Count,
    &[&[], &[Queue]],
    "Messages waiting in a dead-letter queue."
);
def!(
    PAYOUTS_IN_REVIEW,
    "payouts_in_review",
    Gauge,
    Count,
    TOTAL,
    "Withdrawals on hold for manual review."
);
def!(
    REVIEWS_OPEN,
    "reviews_open",
    Gauge,
    Count,
    TOTAL,
    "Manual reviews waiting for an operator (deposits and payouts)."
);
def!(
    ALERTS_OPEN,
    "aml_alerts_open",
    Gauge,
    Count,
    TOTAL,
    "AML alerts not yet closed."
);

/// Every metric, in the order the views list them.
pub const ALL: &[&Def] = &[
    &DEPOSITS_STARTED,
    &DEPOSITS_SUCCEEDED,
    &DEPOSITS_FAILED,
    &DEPOSITS_CANCELLED,
    &DEPOSITS_3DS_FAILED,
    &DEPOSIT_TIME_MS,
    &DEPOSIT_FEES_MINOR,
    &REFUNDS_SETTLED,
    &CHARGEBACKS,
    &PAYOUTS_REQUESTED,
    &PAYOUTS_PAID,
    &PAYOUTS_FAILED,
    &PAYOUT_TIME_MS,
    &RISK_DECISIONS,
    &RISK_REVIEWS_OPENED,
    &RISK_DECLINES,
    &KYC_REQUIRED,
    &KYC_TIME_MS,
    &PSP_CALLS,
    &PSP_CALLS_OK,
    &PSP_CALLS_UNAVAILABLE,
    &PSP_CALLS_REFUSED,
    &WEBHOOKS_ACCEPTED,
    &WEBHOOKS_DUPLICATE,
    &WEBHOOKS_REJECTED,
    &CIRCUIT_CHANGES,
    &CIRCUIT_OPENED,
    &RECON_LINES,
    &RECON_MISMATCHES,
    &DLQ_DEPTH,
    &PAYOUTS_IN_REVIEW,
    &REVIEWS_OPEN,
    &ALERTS_OPEN,
];

/// A figure computed from two metrics' series with the same labels.
#[derive(Debug)]
pub struct Derived {
    pub name: &'static str,
    pub help: &'static str,
    pub numerator: &'static [&'static Def],
    pub denominator: &'static Def,
    /// `1 - numerator/denominator` instead of the ratio.
    pub complement: bool,
    /// The series it is computed for (each kept by both inputs).
    pub breakdowns: &'static [&'static [Dim]],
}

const fn share(
    name: &'static str,
    numerator: &'static [&'static Def],
    denominator: &'static Def,
    breakdowns: &'static [&'static [Dim]],
    help: &'static str,
) -> Derived {
    Derived {
        name,
        help,
        numerator,
        denominator,
        complement: false,
        breakdowns,
    }
}

/// The seed's figures (SPEC §10), derived so no ratio is ever stored.
pub const DERIVED: &[Derived] = &[
    share(
        "deposit_conversion",
        &[&DEPOSITS_SUCCEEDED],
        &DEPOSITS_STARTED,
        BY_DEPOSIT,
        "Deposits credited per deposit started, by method, bank, country and device.",
    ),
    share(
        "three_ds_failure_share",
        &[&DEPOSITS_3DS_FAILED],
        &DEPOSITS_STARTED,
        BY_METHOD,
        "Deposits lost to 3-D Secure per deposit started.",
    ),
    share(
        "cancellation_share",
        &[&DEPOSITS_CANCELLED],
        &DEPOSITS_STARTED,
        BY_METHOD,
        "Deposits cancelled per deposit started.",
    ),
    share(
        "refund_share",
        &[&REFUNDS_SETTLED],
        &DEPOSITS_SUCCEEDED,
        BY_METHOD,
        "Refunds per credited deposit.",
    ),
    share(
        "chargeback_rate",
        &[&CHARGEBACKS],
        &DEPOSITS_SUCCEEDED,
        BY_METHOD,
        "Chargebacks per credited deposit.",
    ),
    share(
        "manual_review_share",
        &[&RISK_REVIEWS_OPENED],
        &RISK_DECISIONS,
        &[&[], &[Flow]],
        "Risk decisions sent to manual review per decision.",
    ),
    Derived {
        name: "psp_uptime",
        help: "PSP calls not failed for availability per call, by route.",
        numerator: &[&PSP_CALLS_UNAVAILABLE],
        denominator: &PSP_CALLS,
        complement: true,
        breakdowns: BY_ROUTE,
    },
    share(
        "psp_native_error_rate",
        &[&PSP_CALLS_REFUSED],
        &PSP_CALLS,
        BY_ROUTE,
        "PSP calls refused with the PSP's own error per call, by route.",
    ),
    share(
        "cost_per_success_minor",
        &[&DEPOSIT_FEES_MINOR],
        &DEPOSITS_SUCCEEDED,
        &[&[Method, Currency]],
        "PSP fees (minor units) per credited deposit, by method and currency.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_breakdowns_small() {
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        names.extend(DERIVED.iter().map(|d| d.name));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a metric name is used twice");
        for d in ALL {
            assert!(!d.breakdowns.is_empty(), "{} keeps no series", d.name);
            assert!(d.breakdowns.iter().all(|b| b.len() <= 2), "{}", d.name);
        }
    }

    #[test]
    fn derived_figures_read_series_their_inputs_keep() {
        for f in DERIVED {
            for b in f.breakdowns {
                assert!(f.denominator.breakdowns.contains(b), "{} / {:?}", f.name, b);
                for n in f.numerator {
                    assert!(n.breakdowns.contains(b), "{} {} {:?}", f.name, n.name, b);
                }
            }
        }
    }
}
