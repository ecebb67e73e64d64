//! The simulator's PSP: an in-process model behind the same connector port
//! as the HTTP sandbox (sessions, payouts, refunds, status APIs, settlement
//! report, signed webhooks). It keeps the truth the invariants are checked
//! against: what it captured, paid out, refunded and charged back. Its
//! webhooks wait in an outbox; the scenario delivers them late, twice and
//! out of order, re-signed (t=…,v1=… scheme) on every attempt.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use payloop::clock::{Clock, Day, ManualClock};
use payloop::config::Secret;
use payloop::ids::PspId;
use payloop::money::Money;
use payloop::psp::event::Inbound;
use payloop::psp::signature::{Rejection, Scheme, Verified, Window};
use payloop::psp::wire::{SettlementLine, SETTLEMENT_HEADER};
use payloop::psp::{
    Operation, OperationStatus, PayoutRequest, PspConnector, PspError, RefundRequest, RemoteStatus,
    ReportChunks, Session, SessionRequest, WebhookKeys,
};
use payloop::schema::status::PaymentStatus;
use serde_json::json;

use super::faults::OneChunk;

pub const SIM_PSP: &str = "sandbox";
pub const WEBHOOK_SECRET: &str = "sim-webhook-secret-0123456789";
/// Every text this PSP puts in its refusals: none may reach an API client.
pub const REPLY_TEXTS: [&str; 4] = [REFUSED_TEXT, REJECTED_TEXT, POISONED_TEXT, FAILED_TEXT];
const FAILED_TEXT: &str = "sim-psp: beneficiary account closed";
const REFUSED_TEXT: &str = "sim-psp: destination refused";
const REJECTED_TEXT: &str = "sim-psp: not refundable";
const POISONED_TEXT: &str = "sim-psp: book poisoned";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Open,
    Captured,
    Failed,
    Canceled,
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub reference: String,
    pub payment_id: String,
    pub amount: Money,
    pub status: ChargeStatus,
    pub charged_back: bool,
    pub refunded_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Payout,
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    Pending,
    Succeeded,
    Failed,
}

impl OpStatus {
    fn as_str(&self) -> &'static str {
        match self {
            OpStatus::Pending => "pending",
            OpStatus::Succeeded => "succeeded",
            OpStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub reference: String,
    /// Our payout id or refund id.
    pub client_id: String,
    pub amount: Money,
    pub status: OpStatus,
    /// Refunds: the charge refunded.
    pub charge: Option<String>,
}

/// A webhook waiting in the PSP's outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: u64,
    pub body: String,
    pub attempts: u32,
    /// Delivered with a 2xx at least once.
    pub acknowledged: bool,
}

#[derive(Default)]
pub struct Book {
    pub charges: BTreeMap<String, Charge>,
    pub by_payment: BTreeMap<String, String>,
    pub ops: BTreeMap<String, Op>,
    pub by_client: BTreeMap<String, String>,
    /// Requests the PSP refused outright (client ids).
    pub refused: Vec<String>,
    pub outbox: Vec<Outgoing>,
    pub lines: Vec<SettlementLine>,
    next: u64,
}

impl Book {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

pub struct SimPsp {
    id: PspId,
    clock: Arc<ManualClock>,
    keys: WebhookKeys,
    book: Mutex<Book>,
}

fn gone(_: impl std::fmt::Debug) -> PspError {
    PspError::Unavailable(POISONED_TEXT.into())
}

impl SimPsp {
    pub fn new(clock: Arc<ManualClock>) -> Result<SimPsp, payloop::ids::IdError> {
        Ok(SimPsp {
            id: PspId::parse(SIM_PSP)?,
            clock,
            keys: WebhookKeys {
                scheme: Scheme::Timestamped,
                secrets: vec![Secret::new(WEBHOOK_SECRET)],
            },
            book: Mutex::new(Book::default()),
        })
    }

    pub fn book(&self) -> Option<MutexGuard<'_, Book>> {
        self.book.lock().ok()
    }

    fn day(&self) -> String {
        Day::of_ms(self.clock.now_ms()).to_string()
    }

    fn emit(&self, b: &mut Book, body: serde_json::Value) {
        let id = b.next();
        b.outbox.push(Outgoing {
            id,
            body: body.to_string(),
            attempts: 0,
            acknowledged: false,
        });
    }

    fn payment_event(&self, b: &mut Book, c: &Charge, status: &str) -> serde_json::Value {
        let n = b.next();
        json!({
            "event_id": format!("evt_{n}"),
            "payment_id": c.payment_id,
            "reference": c.reference,
            "status": status,
            "amount": c.amount.to_decimal(),
            "currency": c.amount.currency().code(),
            "timestamp": self.clock.now_s(),
        })
    }

    /// The references of the charges that `keep` picks.
    pub fn charges_where(&self, keep: impl Fn(&Charge) -> bool) -> Vec<String> {
        self.book()
            .map(|b| {
                b.charges
                    .values()
                    .filter(|c| keep(c))
                    .map(|c| c.reference.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The references of the payouts and refunds still pending.
    pub fn pending_ops(&self) -> Vec<String> {
        self.book()
            .map(|b| {
                b.ops
                    .values()
                    .filter(|o| o.status == OpStatus::Pending)
                    .map(|o| o.reference.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The player finishes the checkout of an open charge. `lose_capture`:
    /// the capture's webhooks never leave the PSP (reconciliation heals).
    pub fn checkout(&self, reference: &str, outcome: ChargeStatus, lose_capture: bool) {
        let Some(mut b) = self.book() else { return };
        let Some(c) = b.charges.get(reference).cloned() else {
            return;
        };
        if c.status != ChargeStatus::Open || outcome == ChargeStatus::Open {
            return;
        }
        let mut c = c;
        c.status = outcome;
        b.charges.insert(reference.to_owned(), c.clone());
        match outcome {
            ChargeStatus::Captured => {
                let line = self.line(&c.reference, &c.payment_id, "payment", c.amount.minor(), &c);
                b.lines.push(line);
                if !lose_capture {
                    let auth = self.payment_event(&mut b, &c, "authorized");
                    self.emit(&mut b, auth);
                    let cap = self.payment_event(&mut b, &c, "captured");
                    self.emit(&mut b, cap);
                }
            }
            ChargeStatus::Failed => {
                let ev = self.payment_event(&mut b, &c, "failed");
                self.emit(&mut b, ev);
            }
            ChargeStatus::Canceled => {
                let ev = self.payment_event(&mut b, &c, "canceled");
                self.emit(&mut b, ev);
            }
            ChargeStatus::Open => {}
        }
    }

    fn line(
        &self,
        reference: &str,
        id: &str,
        kind: &'static str,
        gross: i64,
        c: &Charge,
    ) -> SettlementLine {
        SettlementLine {
            reference: reference.to_owned(),
            payment_id: id.to_owned(),
            kind,
            gross_minor: gross,
            fee_minor: 0,
            currency: c.amount.currency(),
            settled_date: self.day(),
        }
    }

    /// The cardholder's bank takes a captured, unrefunded charge back.
    pub fn charge_back(&self, reference: &str) -> bool {
        let Some(mut b) = self.book() else {
            return false;
        };
        let Some(c) = b.charges.get_mut(reference) else {
            return false;
        };
        if c.status != ChargeStatus::Captured || c.charged_back || c.refunded_minor > 0 {
            return false;
        }
        c.charged_back = true;
        let c = c.clone();
        let line = self.line(
            &c.reference,
            &c.payment_id,
            "chargeback",
            -c.amount.minor(),
            &c,
        );
        b.lines.push(line);
        let mut ev = self.payment_event(&mut b, &c, "charged_back");
        ev["type"] = json!("chargeback");
        self.emit(&mut b, ev);
        true
    }

    /// The PSP settles a pending payout or refund. `lose_webhook`: its
    /// outcome is only learnt from the status API (payouts).
    pub fn settle_op(&self, reference: &str, succeed: bool, lose_webhook: bool) {
        let Some(mut b) = self.book() else { return };
        let Some(op) = b.ops.get(reference).cloned() else {
            return;
        };
        if op.status != OpStatus::Pending {
            return;
        }
        let status = if succeed {
            OpStatus::Succeeded
        } else {
            OpStatus::Failed
        };
        let mut done = op.clone();
        done.status = status;
        b.ops.insert(reference.to_owned(), done);
        let n = b.next();
        let event_id = format!("evt_{n}");
        let body = match op.kind {
            OpKind::Payout => self.payout_settled(&mut b, &op, status, &event_id),
            OpKind::Refund => self.refund_settled(&mut b, &op, status, &event_id),
        };
        if !lose_webhook {
            self.emit(&mut b, body);
        }
    }

    /// A payout paid (on the day's report) or failed; its webhook's body.
    fn payout_settled(
        &self,
        b: &mut Book,
        op: &Op,
        status: OpStatus,
        event_id: &str,
    ) -> serde_json::Value {
        if status == OpStatus::Succeeded {
            b.lines.push(self.op_line(op, &op.client_id, "payout"));
        }
        let mut body = json!({
            "event_id": event_id, "type": "payout", "payout_id": op.client_id,
            "reference": op.reference, "status": status.as_str(),
            "amount": op.amount.to_decimal(), "currency": op.amount.currency().code(),
            "timestamp": self.clock.now_s(),
        });
        if status == OpStatus::Failed {
            body["reason"] = json!(FAILED_TEXT);
        }
        body
    }

    /// A refund paid back (on the day's report) or failed (the charge's
    /// room given back); its webhook's body.
    fn refund_settled(
        &self,
        b: &mut Book,
        op: &Op,
        status: OpStatus,
        event_id: &str,
    ) -> serde_json::Value {
        let charge = op.charge.clone().unwrap_or_default();
        let payment_id = b
            .charges
            .get(&charge)
            .map(|c| c.payment_id.clone())
            .unwrap_or_default();
        if status == OpStatus::Succeeded {
            b.lines.push(self.op_line(op, &payment_id, "refund"));
        } else if let Some(c) = b.charges.get_mut(&charge) {
            c.refunded_minor -= op.amount.minor();
        }
        json!({
            "event_id": event_id, "type": "refund", "refund_id": op.client_id,
            "reference": op.reference, "payment_id": payment_id,
            "payment_reference": charge, "status": status.as_str(),
            "amount": op.amount.to_decimal(), "currency": op.amount.currency().code(),
            "timestamp": self.clock.now_s(),
        })
    }

    fn op_line(&self, op: &Op, id: &str, kind: &'static str) -> SettlementLine {
        SettlementLine {
            reference: op.reference.clone(),
            payment_id: id.to_owned(),
            kind,
            gross_minor: -op.amount.minor(),
            fee_minor: 0,
            currency: op.amount.currency(),
            settled_date: self.day(),
        }
    }

    /// The headers of one delivery attempt, signed now.
    pub fn sign(&self, body: &str, attempt_id: u64) -> Vec<(&'static str, String)> {
        payloop::psp::signature::sign(
            Scheme::Timestamped,
            WEBHOOK_SECRET,
            body.as_bytes(),
            self.clock.now_s(),
            &format!("msg_{attempt_id}"),
        )
    }

    fn report(&self, day: Day) -> String {
        let mut csv = format!("{SETTLEMENT_HEADER}\n");
        if let Some(b) = self.book() {
            let day = day.to_string();
            for l in b.lines.iter().filter(|l| l.settled_date == day) {
                if let Some(text) = l.to_csv() {
                    csv.push_str(&text);
                    csv.push('\n');
                }
            }
        }
        csv
    }
}

#[async_trait]
impl PspConnector for SimPsp {
    fn id(&self) -> &PspId {
        &self.id
    }

    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError> {
        let mut b = self.book.lock().map_err(gone)?;
        let pid = req.payment_id.to_string();
        let reference = match b.by_payment.get(&pid) {
            Some(r) => r.clone(),
            None => {
                let reference = format!("simp_{}", b.next());
                b.by_payment.insert(pid.clone(), reference.clone());
                b.charges.insert(
                    reference.clone(),
                    Charge {
                        reference: reference.clone(),
                        payment_id: pid,
                        amount: req.amount,
                        status: ChargeStatus::Open,
                        charged_back: false,
                        refunded_minor: 0,
                    },
                );
                reference
            }
        };
        Ok(Session {
            redirect_url: format!("https://psp.sim/checkout/{reference}"),
            reference,
        })
    }

    async fn start_payout(&self, req: &PayoutRequest<'_>) -> Result<Operation, PspError> {
        let mut b = self.book.lock().map_err(gone)?;
        if let Some(r) = b.by_client.get(req.payout_id).cloned() {
            return op_reply(&b, &r);
        }
        if req.destination_token == Some("tok_refuse") {
            b.refused.push(req.payout_id.to_owned());
            return Err(PspError::Refused(REFUSED_TEXT.into()));
        }
        let reference = format!("simo_{}", b.next());
        b.by_client
            .insert(req.payout_id.to_owned(), reference.clone());
        b.ops.insert(
            reference.clone(),
            Op {
                kind: OpKind::Payout,
                reference: reference.clone(),
                client_id: req.payout_id.to_owned(),
                amount: req.amount,
                status: OpStatus::Pending,
                charge: None,
            },
        );
        op_reply(&b, &reference)
    }

    async fn start_refund(&self, req: &RefundRequest<'_>) -> Result<Operation, PspError> {
        let mut b = self.book.lock().map_err(gone)?;
        if let Some(r) = b.by_client.get(req.refund_id).cloned() {
            return op_reply(&b, &r);
        }
        let room = b.charges.get(req.payment_reference).map(|c| {
            c.status == ChargeStatus::Captured
                && !c.charged_back
                && c.amount.currency() == req.amount.currency()
                && c.amount.minor() - c.refunded_minor >= req.amount.minor()
        });
        if room != Some(true) {
            b.refused.push(req.refund_id.to_owned());
            return Err(PspError::Rejected(REJECTED_TEXT.into()));
        }
        if let Some(c) = b.charges.get_mut(req.payment_reference) {
            c.refunded_minor += req.amount.minor();
        }
        let reference = format!("simr_{}", b.next());
        b.by_client
            .insert(req.refund_id.to_owned(), reference.clone());
        b.ops.insert(
            reference.clone(),
            Op {
                kind: OpKind::Refund,
                reference: reference.clone(),
                client_id: req.refund_id.to_owned(),
                amount: req.amount,
                status: OpStatus::Pending,
                charge: Some(req.payment_reference.to_owned()),
            },
        );
        op_reply(&b, &reference)
    }

    async fn payout_status(&self, reference: &str) -> Result<Operation, PspError> {
        let b = self.book.lock().map_err(gone)?;
        op_reply(&b, reference)
    }

    async fn refund_status(&self, reference: &str) -> Result<Operation, PspError> {
        let b = self.book.lock().map_err(gone)?;
        op_reply(&b, reference)
    }

    async fn payment_status(&self, reference: &str) -> Result<RemoteStatus, PspError> {
        let b = self.book.lock().map_err(gone)?;
        let c = b
            .charges
            .get(reference)
            .ok_or_else(|| PspError::NotFound(reference.to_owned()))?;
        let status = match c.status {
            ChargeStatus::Open => PaymentStatus::Pending,
            ChargeStatus::Captured if c.charged_back => PaymentStatus::ChargedBack,
            ChargeStatus::Captured => PaymentStatus::Captured,
            ChargeStatus::Failed => PaymentStatus::Failed,
            ChargeStatus::Canceled => PaymentStatus::Canceled,
        };
        Ok(RemoteStatus {
            reference: c.reference.clone(),
            payment_id: c.payment_id.clone(),
            status,
            amount: c.amount,
        })
    }

    async fn settlement_report(&self, day: Day) -> Result<Box<dyn ReportChunks>, PspError> {
        Ok(Box::new(OneChunk(Some(Bytes::from(self.report(day))))))
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw: &[u8],
        window: Window,
    ) -> Result<Verified, Rejection> {
        self.keys.verify(headers, raw, window)
    }

    fn normalise_webhook(
        &self,
        raw: &[u8],
        signed_at_s: Option<i64>,
    ) -> Result<Inbound, payloop::Error> {
        payloop::psp::wire::parse_inbound(&self.id, raw, signed_at_s)
    }
}

fn op_reply(b: &Book, reference: &str) -> Result<Operation, PspError> {
    let op = b
        .ops
        .get(reference)
        .ok_or_else(|| PspError::NotFound(reference.to_owned()))?;
    Ok(Operation {
        reference: op.reference.clone(),
        status: OperationStatus::parse(op.status.as_str()),
    })
}
