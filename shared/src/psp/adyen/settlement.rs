//! Adyen's settlement details report, translated line by line into
//! payloop's settlement lines (`psp::settlement`), so the same streaming
//! matcher reconciles it. Columns are found by header name (newer reports
//! append columns); amounts are decimal MAJOR units; the fee of a line is
//! Commission + Markup + Scheme Fees + Interchange, all in the net currency.
//!
//! | Type          | becomes      | gross             | net               |
//! |---------------|--------------|-------------------|-------------------|
//! | Settled       | `payment`    | Gross Credit      | Net Credit        |
//! | Refunded      | `refund`     | − Gross Debit     | − Net Debit       |
//! | Chargeback    | `chargeback` | − Gross Debit     | − Net Debit       |
//! | ChargebackReversed | `chargeback` | + Gross Credit | + Net Credit     |
//! | Fee           | `fee`        | 0                 | − Net Debit       |
//! | MerchantPayout, Balancetransfer, … | skipped: no player's money moved | | |
//!
//! The reference is the Modification Reference (the capture, refund or
//! chargeback reference; the Psp Reference when blank; for a fee row with
//! neither, the row's own text), the payment id the
//! Merchant Reference; the day is the Creation Date's (in Adyen's zone). A
//! line settled in another currency than it was charged in (an exchange
//! rate) is refused for now, naming the line. A chargeback reversal has no
//! record of ours (payloop never re-credits a won dispute by itself), so
//! it always opens a case for an operator.

use std::collections::BTreeMap;

use crate::clock::Day;
use crate::money::{Currency, Money};
use crate::psp::settlement::{LineFormat, LineRef, ReportError};

/// The columns a translation reads (the report has more).
const COLUMNS: [&str; 15] = [
    "Psp Reference",
    "Merchant Reference",
    "Creation Date",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
];

/// Record types that move no player's money.
const SKIPPED_TYPES: [&str; 14] = [
    "MerchantPayout",
    "Balancetransfer",
    "DepositCorrection",
    "InvoiceDeduction",
    "MatchedStatement",
    "ManualCorrected",
    "BankInstructionReturned",
    "EpaPaid",
    "PaymentCost",
    "PaidOut",
    "PaidOutReversed",
    "MiscCosts",
    "SecondChargeback",
    "RefundedReversed",
];

fn err(line: u64, field: &'static str, reason: impl Into<String>) -> ReportError {
    ReportError::BadField {
        line,
        field,
        reason: reason.into(),
    }
}

/// Where each needed column is in this report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    at: BTreeMap<&'static str, usize>,
    width: usize,
}

impl Columns {
    /// Read the header (line 1); every needed column must be there.
    pub fn parse(header: &str) -> Result<Columns, ReportError> {
        let names: Vec<&str> = header.trim_end_matches(['\r', '\n']).split(',').collect();
        let mut at = BTreeMap::new();
        for col in COLUMNS {
            let i = names
                .iter()
                .position(|n| n.trim() == col)
                .ok_or_else(|| err(1, col, "column missing from the header"))?;
            at.insert(col, i);
        }
        Ok(Columns {
            at,
            width: names.len(),
        })
    }
}

/// One translated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translated<'a> {
    Line(LineRef<'a>),
    /// A record type that moves no player's money.
    Skipped(&'a str),
}

struct Row<'c, 'a> {
    line: u64,
    fields: Vec<&'a str>,
    cols: &'c Columns,
}

impl<'a> Row<'_, 'a> {
    fn get(&self, col: &'static str) -> &'a str {
        self.cols
            .at
            .get(col)
            .and_then(|i| self.fields.get(*i))
            .map_or("", |v| v.trim())
    }

    fn currency(&self, col: &'static str) -> Result<Currency, ReportError> {
        Currency::parse(self.get(col)).map_err(|e| err(self.line, col, e.to_string()))
    }

    /// A decimal in major units, blank = 0, in minor units of `c`.
    fn minor(&self, col: &'static str, c: Currency) -> Result<i64, ReportError> {
        let v = self.get(col);
        if v.is_empty() {
            return Ok(0);
        }
        Money::parse_decimal(v, c)
            .map(|m| m.minor())
            .map_err(|e| err(self.line, col, e.to_string()))
    }

    fn fees(&self, c: Currency) -> Result<i64, ReportError> {
        let mut sum = 0i64;
        for col in [
            "Commission (NC)",
            "Markup (NC)",
            "Scheme Fees (NC)",
            "Interchange (NC)",
        ] {
            sum = sum
                .checked_add(self.minor(col, c)?)
                .ok_or_else(|| err(self.line, col, "fees overflow"))?;
        }
        Ok(sum)
    }

    fn day(&self) -> Result<Day, ReportError> {
        let date = self.get("Creation Date");
        date.get(..10)
            .and_then(Day::parse)
            .ok_or_else(|| err(self.line, "Creation Date", "must be YYYY-MM-DD HH:MM:SS"))
    }
}

/// Translate data line `line` (2-based: the header is line 1).
pub fn translate<'a>(
    cols: &Columns,
    line: u64,
    text: &'a str,
) -> Result<Translated<'a>, ReportError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.contains('"') {
        return Err(err(line, "line", "quoted fields are not supported"));
    }
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() < cols.width {
        return Err(err(
            line,
            "line",
            format!("{} of {} columns", fields.len(), cols.width),
        ));
    }
    let row = Row { line, fields, cols };
    let kind = match row.get("Type") {
        "Settled" => "payment",
        "Refunded" => "refund",
        "Chargeback" => "chargeback",
        "Fee" => "fee",
        "ChargebackReversed" => "chargeback",
        t if SKIPPED_TYPES.contains(&t) => return Ok(Translated::Skipped(t)),
        t => return Err(err(line, "Type", format!("unknown record type `{t}`"))),
    };
    let net_currency = row.currency("Net Currency")?;
    let currency = if kind == "fee" {
        net_currency
    } else {
        let gross_currency = row.currency("Gross Currency")?;
        if gross_currency != net_currency {
            return Err(err(
                line,
                "Net Currency",
                "settled in another currency than charged: not supported yet",
            ));
        }
        gross_currency
    };
    let fee = row.fees(currency)?;
    let reversal = row.get("Type") == "ChargebackReversed";
    let (gross, net) = match kind {
        _ if kind == "payment" || reversal => (
            row.minor("Gross Credit (GC)", currency)?,
            row.minor("Net Credit (NC)", currency)?,
        ),
        "fee" => (0, -row.minor("Net Debit (NC)", currency)?),
        _ => (
            -row.minor("Gross Debit (GC)", currency)?,
            -row.minor("Net Debit (NC)", currency)?,
        ),
    };
    // A fee line carries its amount as the debit, not as itemised fees.
    let fee = if kind == "fee" { -net } else { fee };
    // A fee row may carry no reference at all: the row itself is its key
    // (two identical rows are then a true duplicate).
    let reference = match (row.get("Modification Reference"), row.get("Psp Reference")) {
        ("", "") if kind == "fee" => text,
        ("", r) | (r, _) => r,
    };
    if gross.checked_sub(fee) != Some(net) {
        return Err(err(line, "Net Credit (NC)", "is not gross − fees"));
    }
    Ok(Translated::Line(LineRef {
        line,
        reference,
        payment_id: row.get("Merchant Reference"),
        kind,
        gross_minor: gross,
        fee_minor: fee,
        net_minor: net,
        currency,
        settled_date: row.day()?,
    }))
}

/// Adyen's settlement details report as a [`LineFormat`]: the header names
/// the columns, each line is translated (or skipped).
#[derive(Debug, Default)]
pub struct AdyenFormat {
    cols: Option<Columns>,
}

impl LineFormat for AdyenFormat {
    fn header(&mut self, text: &str) -> Result<(), ReportError> {
        self.cols = Some(Columns::parse(text)?);
        Ok(())
    }

    fn line<'a>(&mut self, line: u64, text: &'a str) -> Option<Result<LineRef<'a>, ReportError>> {
        let Some(cols) = self.cols.as_ref() else {
            return Some(Err(ReportError::BadHeader));
        };
        match translate(cols, line, text) {
            Ok(Translated::Line(l)) => Some(Ok(l)),
            Ok(Translated::Skipped(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::settlement::SettledLine;

    fn field(e: ReportError) -> (u64, &'static str) {
        match e {
            ReportError::BadField { line, field, .. } => (line, field),
            other => panic!("{other:?}"),
        }
    }

    const HEADER: &str = "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,Modification Merchant Reference,Batch Number,Reserved4";

    fn row(
        kind: &str,
        gross_debit: &str,
        gross_credit: &str,
        net_debit: &str,
        net_credit: &str,
        fees: [&str; 4],
    ) -> String {
        format!(
            "Co,Shop,8816000000000001,pay_01JD0000000000000000000000,visa,2026-11-20 14:02:11,CET,{kind},8816000000000009,GBP,{gross_debit},{gross_credit},1,GBP,{net_debit},{net_credit},{},{},{},{},visa,,7,",
            fees[0], fees[1], fees[2], fees[3]
        )
    }

    fn line(t: Translated<'_>) -> SettledLine {
        match t {
            Translated::Line(l) => l.to_line(),
            other => panic!("{other:?}"),
        }
    }

    /// The documented sample: GBP 5.00 settled as 4.88 after 0.04 + 0.01 + 0.07.
    #[test]
    fn a_settled_payment_nets_its_four_fees() {
        let cols = Columns::parse(HEADER).unwrap();
        let text = row(
            "Settled",
            "",
            "5.00",
            "",
            "4.88",
            ["0.04", "0.01", "0.07", ""],
        );
        let l = line(translate(&cols, 2, &text).unwrap());
        assert_eq!(
            (
                l.kind,
                l.gross_minor,
                l.fee_minor,
                l.net_minor,
                l.currency.code()
            ),
            ("payment", 500, 12, 488, "GBP")
        );
        assert_eq!(l.gross_minor - l.fee_minor, l.net_minor);
        assert_eq!(
            (l.reference.as_str(), l.payment_id.as_str()),
            ("8816000000000009", "pay_01JD0000000000000000000000")
        );
        assert_eq!(l.settled_date, Day::parse("2026-11-20").unwrap());
    }

    #[test]
    fn refunds_chargebacks_and_fees_are_debits() {
        let cols = Columns::parse(HEADER).unwrap();
        let refund = line(
            translate(
                &cols,
                3,
                &row("Refunded", "2.00", "", "2.00", "", ["", "", "", ""]),
            )
            .unwrap(),
        );
        assert_eq!(
            (refund.kind, refund.gross_minor, refund.net_minor),
            ("refund", -200, -200)
        );
        let cb = line(
            translate(
                &cols,
                4,
                &row("Chargeback", "5.00", "", "5.00", "", ["", "", "", ""]),
            )
            .unwrap(),
        );
        assert_eq!((cb.kind, cb.gross_minor), ("chargeback", -500));
        let fee =
            line(translate(&cols, 5, &row("Fee", "", "", "0.25", "", ["", "", "", ""])).unwrap());
        assert_eq!(
            (fee.kind, fee.gross_minor, fee.fee_minor, fee.net_minor),
            ("fee", 0, 25, -25)
        );
        let payout_row = row("MerchantPayout", "", "", "100.00", "", ["", "", "", ""]);
        let payout = translate(&cols, 6, &payout_row).unwrap();
        assert_eq!(payout, Translated::Skipped("MerchantPayout"));
        // A reversed chargeback comes back as a credit.
        let reversal_row = row(
            "ChargebackReversed",
            "",
            "5.00",
            "",
            "5.00",
            ["", "", "", ""],
        );
        let reversal = line(translate(&cols, 7, &reversal_row).unwrap());
        assert_eq!((reversal.kind, reversal.gross_minor), ("chargeback", 500));
        // Fees that do not add up to the net are refused, naming the column.
        let off = row(
            "Settled",
            "",
            "5.00",
            "",
            "4.90",
            ["0.04", "0.01", "0.07", ""],
        );
        assert!(matches!(
            translate(&cols, 8, &off),
            Err(ReportError::BadField {
                field: "Net Credit (NC)",
                ..
            })
        ));
    }

    #[test]
    fn bad_lines_name_line_and_column() {
        let cols = Columns::parse(HEADER).unwrap();
        let named = |text: String| field(translate(&cols, 7, &text).unwrap_err());
        let e = named(row("Settled", "", "5.001", "", "4.88", ["", "", "", ""]));
        assert_eq!(e, (7, "Gross Credit (GC)"));
        assert_eq!(
            named(row("Bogus", "", "", "", "", ["", "", "", ""])).1,
            "Type"
        );
        assert_eq!(named("a,b".into()).1, "line");
        let fx = row("Settled", "", "5.00", "", "4.88", ["", "", "", ""]).replacen(
            ",1,GBP,",
            ",1.1,EUR,",
            1,
        );
        assert_eq!(named(fx).1, "Net Currency");
        assert_eq!(
            field(Columns::parse("Psp Reference,Type").unwrap_err()).1,
            "Merchant Reference"
        );
    }

    proptest::proptest! {
        /// A report line comes from outside: any text is translated or
        /// refused with its line, never a panic.
        #[test]
        fn any_line_is_translated_or_refused(text in ".{0,300}", kind in "(Settled|Refunded|Fee|Chargeback|é)", amount in "[0-9.é-]{0,8}") {
            let cols = Columns::parse(HEADER).unwrap();
            let _ = translate(&cols, 9, &text);
            let built = row(&kind, &amount, &amount, &amount, &amount, [&amount, "", "", ""]);
            if let Err(e) = translate(&cols, 9, &built) {
                proptest::prop_assert!(matches!(e, ReportError::BadField { line: 9, .. }), "{e:?}");
            }
        }
    }
}
