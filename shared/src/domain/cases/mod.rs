//! Cases: what must not move money (or could not be matched) becomes a case
//! for an operator, with the evidence of both sides. There is ONE way to open
//! one, [`open`]: a conditional put under a key derived from what happened
//! (the event, or the reconciliation line), so a repeat never opens a second.
//!
//! Every capability describes its evidence with the typed pieces below; this
//! module knows nothing of payments, payouts or settlement files.

use crate::error::Error;
use crate::ids::{EventId, PspId};
use crate::money::{format_minor, Currency, Money};
use crate::store::{item, Attr, Cond, Key, StoreError, Write};

use crate::domain::Ctx;

/// Why something became a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    /// Amount, currency or PSP of an event differ from our record.
    WebhookMismatch,
    /// A signed final status refused as stale while the payment says otherwise.
    StaleFinalEvent,
    /// A final status contradicting our final status (e.g. `captured` after
    /// `failed`): money may sit at the PSP, not in the wallet.
    ConflictingFinalStatus,
    /// The player's bank took a captured payment back: the wallet was
    /// debited (maybe below zero); an operator follows up.
    Chargeback,
    /// A refund outcome for a refund we never asked for.
    UnknownRefund,
    /// A refund outcome whose amount or currency differ from the refund's.
    RefundMismatch,
    /// A settlement line and our books disagree (the class says how).
    Reconciliation,
    /// The PSP reports a change payloop does not apply by itself (a
    /// reversed or second chargeback, a failed capture, a reversed refund).
    PspAdjustment,
}

impl CaseKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseKind::WebhookMismatch => "webhook_mismatch",
            CaseKind::ConflictingFinalStatus => "conflicting_final_status",
            CaseKind::StaleFinalEvent => "stale_final_event",
            CaseKind::Chargeback => "chargeback",
            CaseKind::UnknownRefund => "unknown_refund",
            CaseKind::RefundMismatch => "refund_mismatch",
            CaseKind::Reconciliation => "reconciliation",
            CaseKind::PspAdjustment => "psp_adjustment",
        }
    }
}

/// Open, healed by reconciliation itself, or resolved by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Healed,
    Resolved,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::Healed, CaseStatus::Resolved];

    pub fn as_str(&self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Healed => "healed",
            CaseStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One side of an event case: what a record or an event says.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// `payment`, `payout` or `event`: the prefix of the stored attributes.
    pub label: &'static str,
    pub status: &'static str,
    pub amount_minor: i64,
    pub currency: Currency,
    pub psp: PspId,
}

impl Side {
    /// Our record's side (`payment`, `payout`): its status, amount and PSP.
    pub fn record(label: &'static str, status: &'static str, amount: Money, psp: &PspId) -> Side {
        Side {
            label,
            status,
            amount_minor: amount.minor(),
            currency: amount.currency(),
            psp: psp.clone(),
        }
    }

    /// The PSP event's side.
    pub fn event(status: &'static str, amount_minor: i64, currency: Currency, psp: &PspId) -> Side {
        Side {
            label: "event",
            status,
            amount_minor,
            currency,
            psp: psp.clone(),
        }
    }

    fn attrs(&self, out: &mut Vec<(String, Attr)>) {
        let l = self.label;
        out.push((format!("{l}_status"), Attr::from(self.status)));
        out.push((format!("{l}_amount"), Attr::N(self.amount_minor)));
        out.push((format!("{l}_currency"), Attr::from(self.currency.code())));
        out.push((format!("{l}_psp"), Attr::from(self.psp.as_str())));
    }
}

/// A settlement report's line, as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct LineEvidence {
    pub line: u64,
    pub kind: &'static str,
    pub reference: String,
    pub payment_id: String,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub currency: Currency,
}

impl LineEvidence {
    fn attr(&self) -> Attr {
        let c = self.currency;
        map([
            (
                "line",
                Attr::N(i64::try_from(self.line).unwrap_or(i64::MAX)),
            ),
            ("type", Attr::from(self.kind)),
            ("reference", Attr::from(self.reference.as_str())),
            ("payment_id", Attr::from(self.payment_id.as_str())),
            ("gross", Attr::from(format_minor(self.gross_minor, c))),
            ("fee", Attr::from(format_minor(self.fee_minor, c))),
            (
                "net",
                Attr::from(format_minor(
                    self.gross_minor.saturating_sub(self.fee_minor),
                    c,
                )),
            ),
            ("currency", Attr::from(c.code())),
        ])
    }
}

/// Our booked record of a money movement, as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct BookedEvidence {
    pub kind: &'static str,
    pub payment_id: String,
    pub gross_minor: i64,
    pub currency: Currency,
    pub method: String,
    pub event_id: String,
}

impl BookedEvidence {
    fn attr(&self) -> Attr {
        map([
            ("type", Attr::from(self.kind)),
            ("payment_id", Attr::from(self.payment_id.as_str())),
            (
                "gross",
                Attr::from(format_minor(self.gross_minor, self.currency)),
            ),
            ("currency", Attr::from(self.currency.code())),
            ("method", Attr::from(self.method.as_str())),
            ("event_id", Attr::from(self.event_id.as_str())),
        ])
    }
}

/// What a case holds besides its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A PSP event against the record it names.
    Event {
        event_id: EventId,
        /// The operation the event names beside its record (`refund_id`, …).
        reference: Option<(&'static str, String)>,
        ours: Side,
        theirs: Side,
    },
    /// A reconciliation line (or record) of one PSP and day.
    Settlement {
        case_id: String,
        psp: PspId,
        date: String,
        class: &'static str,
        match_key: String,
        theirs: Option<LineEvidence>,
        ours: Option<BookedEvidence>,
        /// What we found beyond the two sides (our status, the expected fee…).
        detail: Option<String>,
    },
}

impl Evidence {
    fn attrs(&self) -> Vec<(String, Attr)> {
        let mut out = Vec::new();
        match self {
            Evidence::Event {
                reference,
                ours,
                theirs,
                ..
            } => {
                if let Some((name, id)) = reference {
                    out.push(((*name).to_owned(), Attr::from(id.as_str())));
                }
                ours.attrs(&mut out);
                theirs.attrs(&mut out);
            }
            Evidence::Settlement {
                case_id,
                psp,
                date,
                class,
                match_key,
                theirs,
                ours,
                detail,
            } => {
                out.push(("case_id".into(), Attr::from(case_id.as_str())));
                out.push(("psp".into(), Attr::from(psp.as_str())));
                out.push(("date".into(), Attr::from(date.as_str())));
                out.push(("class".into(), Attr::from(*class)));
                out.push(("key".into(), Attr::from(match_key.as_str())));
                if let Some(t) = theirs {
                    let line = i64::try_from(t.line).unwrap_or(i64::MAX);
                    out.push(("line".into(), Attr::N(line)));
                    out.push(("psp_side".into(), t.attr()));
                }
                if let Some(r) = ours {
                    out.push(("our_side".into(), r.attr()));
                }
                if let Some(d) = detail {
                    out.push(("detail".into(), Attr::from(d.as_str())));
                }
            }
        }
        out
    }
}

/// A case to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    /// Derived from what happened, so a repeat finds the first case.
    pub key: Key,
    pub kind: CaseKind,
    pub status: CaseStatus,
    pub evidence: Evidence,
}

impl NewCase {
    /// An open case of a PSP event against our record, keyed by the event.
    pub fn of_event(
        key: Key,
        kind: CaseKind,
        event_id: &EventId,
        reference: Option<(&'static str, String)>,
        ours: Side,
        theirs: Side,
    ) -> NewCase {
        NewCase {
            key,
            kind,
            status: CaseStatus::Open,
            evidence: Evidence::Event {
                event_id: event_id.clone(),
                reference,
                ours,
                theirs,
            },
        }
    }
}

fn map<const N: usize>(fields: [(&str, Attr); N]) -> Attr {
    Attr::M(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Open the case unless it exists; `true` when it is new.
pub async fn open(ctx: &Ctx, c: NewCase) -> Result<bool, Error> {
    let mut attrs = c.evidence.attrs();
    attrs.push(("kind".into(), Attr::from(c.kind.as_str())));
    attrs.push(("status".into(), Attr::from(c.status.as_str())));
    attrs.push(("opened_ms".into(), Attr::N(ctx.now_ms())));
    let mut record = item(&c.key, []);
    record.extend(attrs);
    let put = Write::Put {
        item: record,
        cond: Some(Cond::NotExists),
    };
    match ctx.store.write(put).await {
        Ok(()) => {
            if let Evidence::Event { event_id, .. } = &c.evidence {
                tracing::warn!(pk = %c.key.pk, event_id = %event_id, kind = c.kind.as_str(), "case opened");
            }
            Ok(true)
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
