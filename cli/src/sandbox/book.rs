//! A sandbox PSP's own books: its payments (charges), payouts, refunds and
//! settlement lines. In memory and bounded: a sandbox forgets on restart,
//! like a PSP test account reset.

use std::collections::{BTreeMap, HashMap};

use payloop::clock::Day;
use payloop::money::{Currency, Money};
use payloop::psp::wire::SettlementLine;

/// Records of each kind a sandbox keeps before refusing new ones.
pub const MAX_RECORDS: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Created,
    Challenged,
    Captured,
    Failed,
    Canceled,
}

impl ChargeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChargeStatus::Created => "pending",
            ChargeStatus::Challenged => "pending",
            ChargeStatus::Captured => "captured",
            ChargeStatus::Failed => "failed",
            ChargeStatus::Canceled => "canceled",
        }
    }
    pub fn is_open(&self) -> bool {
        matches!(self, ChargeStatus::Created | ChargeStatus::Challenged)
    }
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub reference: String,
    pub payment_id: String,
    pub amount: Money,
    pub method: String,
    pub return_url: String,
    pub status: ChargeStatus,
    pub refunded_minor: i64,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub reference: String,
    /// Our client's id (payout id / refund id): the idempotency key.
    pub client_id: String,
    pub amount: Money,
    pub status: &'static str,
    /// For refunds: the charge refunded.
    pub payment_reference: Option<String>,
}

#[derive(Debug, Default)]
pub struct Book {
    pub charges: HashMap<String, Charge>,
    /// Payouts and refunds by their reference.
    pub operations: HashMap<String, Operation>,
    /// Client id → reference (idempotent retries).
    pub by_client_id: HashMap<String, String>,
    pub settlements: BTreeMap<Day, Vec<SettlementLine>>,
    settlement_lines: usize,
}

/// Fee on a gross amount: `bps` basis points rounded half up, plus `fixed`.
pub fn fee_minor(gross_minor: i64, bps: u32, fixed_minor: i64) -> Option<i64> {
    let pct = (i128::from(gross_minor) * i128::from(bps) + 5_000) / 10_000;
    i64::try_from(pct).ok()?.checked_add(fixed_minor)
}

impl Book {
    pub fn full(&self) -> bool {
        self.charges.len() >= MAX_RECORDS
            || self.operations.len() >= MAX_RECORDS
            || self.settlement_lines >= MAX_RECORDS
    }

    pub fn settle(&mut self, line: SettlementLine, day: Day) {
        self.settlement_lines += 1;
        self.settlements.entry(day).or_default().push(line);
    }

    /// Amount still refundable on a captured charge.
    pub fn refundable(&self, reference: &str, currency: Currency) -> Option<i64> {
        let c = self.charges.get(reference)?;
        (c.status == ChargeStatus::Captured && c.amount.currency() == currency)
            .then(|| c.amount.minor() - c.refunded_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_up_and_add_the_fixed_part() {
        assert_eq!(fee_minor(10_000, 150, 0), Some(150));
        assert_eq!(fee_minor(333, 150, 0), Some(5), "4.995 rounds to 5");
        assert_eq!(fee_minor(100, 150, 25), Some(27));
        assert_eq!(fee_minor(i64::MAX, 10_000, 1), None);
    }
}
