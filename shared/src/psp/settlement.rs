//! Reading a PSP settlement report as a stream: chunks in, checked lines out,
//! never the whole report in memory. Every malformed line is reported with
//! its line number and field (bad header, bad amount, unknown currency,
//! net ≠ gross − fee, truncated last line), so a reconciliation can refuse a
//! report before it applies anything.
//!
//! Format (`psp::wire::SETTLEMENT_HEADER`):
//! `reference,payment_id,type,gross,fee,net,currency,settled_date`, amounts
//! as signed decimals in the currency's ISO 4217 precision.

use crate::clock::Day;
use crate::money::{Currency, Money};
use crate::psp::wire::{SETTLEMENT_HEADER, SETTLEMENT_TYPES};
use crate::text::{split_fields, LineError, LineSplitter};

/// A line longer than this is malformed (bounds memory per line).
pub const MAX_LINE: usize = 4096;
const FIELDS: usize = 8;

/// One settled line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledLine {
    /// 1-based line number in the report (the header is line 1).
    pub line: u64,
    pub reference: String,
    pub payment_id: String,
    pub kind: &'static str,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
    pub currency: Currency,
    pub settled_date: Day,
}

/// One checked line whose text fields borrow from the report's bytes (the
/// streaming path: no allocation per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef<'a> {
    pub line: u64,
    pub reference: &'a str,
    pub payment_id: &'a str,
    pub kind: &'static str,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
    pub currency: Currency,
    pub settled_date: Day,
}

impl LineRef<'_> {
    pub fn to_line(&self) -> SettledLine {
        SettledLine {
            line: self.line,
            reference: self.reference.to_owned(),
            payment_id: self.payment_id.to_owned(),
            kind: self.kind,
            gross_minor: self.gross_minor,
            fee_minor: self.fee_minor,
            net_minor: self.net_minor,
            currency: self.currency,
            settled_date: self.settled_date,
        }
    }
}

/// Why a report is malformed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("line 1: the header must be `{SETTLEMENT_HEADER}`")]
    BadHeader,
    #[error("line {line}: {field}: {reason}")]
    BadField {
        line: u64,
        field: &'static str,
        reason: String,
    },
    #[error("line {line}: truncated (no end of line)")]
    Truncated { line: u64 },
    #[error("the report is empty (no header)")]
    Empty,
}

/// How one report's lines read: its header, then each line as one of
/// payloop's settlement lines (borrowing the line's text), or `None` for a
/// line that moves no player's money.
pub trait LineFormat: Send {
    /// Line 1.
    fn header(&mut self, text: &str) -> Result<(), ReportError>;
    /// Data line `line` (2-based).
    fn line<'a>(&mut self, line: u64, text: &'a str) -> Option<Result<LineRef<'a>, ReportError>>;
}

/// payloop's own format ([`SETTLEMENT_HEADER`]): what the sandboxes send.
#[derive(Debug, Default)]
pub struct PayloopFormat {
    last: LastSeen,
}

/// The previous line's currency and settlement day: a report's lines mostly
/// share both, so most lines parse neither again.
#[derive(Debug, Default)]
struct LastSeen {
    currency: Option<Currency>,
    day: Option<([u8; 10], Day)>,
}

impl LastSeen {
    fn day(&mut self, text: &str) -> Option<Day> {
        match self.day {
            Some((seen, day)) if seen.as_slice() == text.as_bytes() => Some(day),
            _ => {
                let day = Day::parse(text)?;
                let mut seen = [0u8; 10];
                if text.len() == seen.len() {
                    seen.copy_from_slice(text.as_bytes());
                    self.day = Some((seen, day));
                }
                Some(day)
            }
        }
    }
}

impl LineFormat for PayloopFormat {
    fn header(&mut self, text: &str) -> Result<(), ReportError> {
        (text == SETTLEMENT_HEADER)
            .then_some(())
            .ok_or(ReportError::BadHeader)
    }

    fn line<'a>(&mut self, line: u64, text: &'a str) -> Option<Result<LineRef<'a>, ReportError>> {
        Some(parse_line(line, text, &mut self.last))
    }
}

impl LineFormat for Box<dyn LineFormat> {
    fn header(&mut self, text: &str) -> Result<(), ReportError> {
        (**self).header(text)
    }

    fn line<'a>(&mut self, line: u64, text: &'a str) -> Option<Result<LineRef<'a>, ReportError>> {
        (**self).line(line, text)
    }
}

/// Feeds chunks in, yields complete lines. Holds at most one partial line.
#[derive(Debug)]
pub struct ReportReader<F = PayloopFormat> {
    lines: LineSplitter,
    line: u64,
    /// Lines the format skipped (no player's money moved).
    skipped: u64,
    format: F,
}

impl Default for ReportReader {
    fn default() -> Self {
        ReportReader::with_format(PayloopFormat::default())
    }
}

impl ReportReader {
    pub fn new() -> ReportReader {
        ReportReader::default()
    }
}

impl<F: LineFormat> ReportReader<F> {
    /// A reader of a PSP's own report format.
    pub fn with_format(format: F) -> ReportReader<F> {
        ReportReader {
            lines: LineSplitter::new(MAX_LINE),
            line: 0,
            skipped: 0,
            format,
        }
    }

    /// A reader of the part of a report that starts after its header
    /// (line numbers count from 2; see [`ReportError::shifted`]).
    pub fn after_header(format: F) -> ReportReader<F> {
        ReportReader {
            line: 1,
            ..ReportReader::with_format(format)
        }
    }

    /// Lines read so far (the header included).
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Whether the bytes pushed so far end inside a line.
    pub fn has_partial(&self) -> bool {
        self.lines.has_partial()
    }

    /// Lines read that move no player's money (e.g. the PSP's own payouts
    /// to the merchant).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Take a chunk; returns the lines it completed, each parsed or refused.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<SettledLine, ReportError>> {
        let mut out = Vec::new();
        self.push_with(chunk, |r| out.push(r.map(|l| l.to_line())));
        out
    }

    /// Take a chunk; hand each line it completed to `each`, parsed (borrowing
    /// the chunk) or refused. The header (line 1) yields nothing unless wrong.
    pub fn push_with(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(Result<LineRef<'_>, ReportError>),
    ) {
        let ReportReader {
            lines,
            line,
            skipped,
            format,
        } = self;
        lines.push(chunk, |text| {
            *line += 1;
            let n = *line;
            match text {
                Err(LineError::NotUtf8) => each(Err(bad(n, "line", "is not UTF-8"))),
                Err(LineError::TooLong) => {
                    each(Err(bad(n, "line", format!("longer than {MAX_LINE} bytes"))))
                }
                Ok(t) if n == 1 => {
                    if let Err(e) = format.header(t) {
                        each(Err(e));
                    }
                }
                Ok(t) => match format.line(n, t) {
                    Some(r) => each(r),
                    None => *skipped += 1,
                },
            }
        });
    }

    /// The end of the report: a last line without its newline is truncated.
    pub fn finish(self) -> Result<u64, ReportError> {
        if self.lines.has_partial() {
            return Err(ReportError::Truncated {
                line: self.line + 1,
            });
        }
        if self.line == 0 {
            return Err(ReportError::Empty);
        }
        Ok(self.line)
    }
}

impl ReportError {
    /// The same error `by` lines further down (a part of a report read on
    /// its own numbers its lines from its start).
    pub fn shifted(self, by: u64) -> ReportError {
        match self {
            ReportError::BadField {
                line,
                field,
                reason,
            } => ReportError::BadField {
                line: line + by,
                field,
                reason,
            },
            ReportError::Truncated { line } => ReportError::Truncated { line: line + by },
            other => other,
        }
    }
}

fn bad(line: u64, field: &'static str, reason: impl Into<String>) -> ReportError {
    ReportError::BadField {
        line,
        field,
        reason: reason.into(),
    }
}

/// A signed decimal in the currency's precision, as minor units.
/// The common case of [`signed_minor`] without allocating or a table
/// lookup: `-`?, digits (no leading zero), and exactly `digits` decimals,
/// at most `max` minor units. `None` when anything is off: the strict path
/// then decides, with its error.
fn plain_minor(text: &str, digits: u16, max: i64) -> Option<i64> {
    let (neg, b) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text.as_bytes()),
    };
    let d = usize::from(digits);
    let (whole, frac) = match d {
        0 => (b, &b[b.len()..]),
        _ if b.len() >= d + 2 && b[b.len() - d - 1] == b'.' => {
            (&b[..b.len() - d - 1], &b[b.len() - d..])
        }
        _ => return None,
    };
    if whole.is_empty() || (whole.len() > 1 && whole[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &ch in whole.iter().chain(frac) {
        if !ch.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(ch - b'0'))?;
    }
    (v <= max).then_some(if neg { -v } else { v })
}

fn signed_minor(
    line: u64,
    field: &'static str,
    text: &str,
    c: Currency,
) -> Result<i64, ReportError> {
    if let Some(v) = plain_minor(text, c.minor_digits(), c.max_minor()) {
        return Ok(v);
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    if digits.chars().all(|ch| ch == '0' || ch == '.') && !digits.is_empty() {
        // Zero in the right precision ("0.00"): Money refuses zero amounts.
        let want = match c.minor_digits() {
            0 => "0".to_owned(),
            n => format!("0.{}", "0".repeat(usize::from(n))),
        };
        return (digits == want)
            .then_some(0)
            .ok_or_else(|| bad(line, field, format!("must be written as {want}")));
    }
    let m = Money::parse_decimal(digits, c).map_err(|e| bad(line, field, e.to_string()))?;
    Ok(if neg { -m.minor() } else { m.minor() })
}

fn parse_line<'a>(
    line: u64,
    text: &'a str,
    last: &mut LastSeen,
) -> Result<LineRef<'a>, ReportError> {
    let f: [&str; FIELDS] = split_fields(text, b',')
        .map_err(|n| bad(line, "line", format!("has {n} fields, not {FIELDS}")))?;
    let kind = SETTLEMENT_TYPES
        .iter()
        .copied()
        .find(|k| *k == f[2])
        .ok_or_else(|| {
            bad(
                line,
                "type",
                format!("must be one of {}", SETTLEMENT_TYPES.join(", ")),
            )
        })?;
    let currency = match last.currency {
        Some(c) if c.code() == f[6] => c,
        _ => {
            let c = Currency::parse(f[6]).map_err(|e| bad(line, "currency", e.to_string()))?;
            last.currency = Some(c);
            c
        }
    };
    let gross = signed_minor(line, "gross", f[3], currency)?;
    let fee = signed_minor(line, "fee", f[4], currency)?;
    let net = signed_minor(line, "net", f[5], currency)?;
    if gross.checked_sub(fee) != Some(net) {
        return Err(bad(line, "net", "is not gross − fee"));
    }
    let settled_date = last
        .day(f[7])
        .ok_or_else(|| bad(line, "settled_date", "must be YYYY-MM-DD"))?;
    if f[0].is_empty() || f[0].len() > 128 {
        return Err(bad(line, "reference", "must be 1-128 characters"));
    }
    Ok(LineRef {
        line,
        reference: f[0],
        payment_id: f[1],
        kind,
        gross_minor: gross,
        fee_minor: fee,
        net_minor: net,
        currency,
        settled_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "reference,payment_id,type,gross,fee,net,currency,settled_date\n\
        sbx_1,pay_1,payment,40.00,0.60,39.40,EUR,2026-11-21\n\
        rf_1,pay_1,refund,-15.00,0.00,-15.00,EUR,2026-11-21\r\n\
        fee_1,,fee,0.00,9.99,-9.99,EUR,2026-11-21\n\
        jp_1,pay_2,payment,1000,25,975,JPY,2026-11-21\n";

    fn read_all(
        chunks: &[&[u8]],
    ) -> (
        Vec<Result<SettledLine, ReportError>>,
        Result<u64, ReportError>,
    ) {
        let mut r = ReportReader::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c));
        }
        (out, r.finish())
    }

    #[test]
    fn the_plain_path_takes_exactly_what_the_strict_one_does() {
        let eur = Currency::parse("EUR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let bhd = Currency::parse("BHD").unwrap();
        let cases = [
            ("40.00", eur),
            ("-15.00", eur),
            ("0.00", eur),
            ("-0.00", eur),
            ("0.60", eur),
            ("0.0", eur),
            ("00.00", eur),
            ("05.00", eur),
            ("5.000", eur),
            ("5.0", eur),
            ("5", eur),
            (".50", eur),
            ("5.", eur),
            ("5,00", eur),
            ("+5.00", eur),
            ("--5.00", eur),
            ("", eur),
            ("-", eur),
            ("1e3", eur),
            ("10000000000000000.00", eur),
            ("9999999999999.99", eur),
            ("1000", jpy),
            ("0", jpy),
            ("1000.0", jpy),
            ("012", jpy),
            ("1.234", bhd),
            ("0.000", bhd),
            ("1.23", bhd),
            ("99999999999999999999.999", bhd),
        ];
        for (text, c) in cases {
            let plain = plain_minor(text, c.minor_digits(), c.max_minor());
            let strict = {
                // The strict path alone (what signed_minor did before).
                let (neg, digits) = match text.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, text),
                };
                let zero = match c.minor_digits() {
                    0 => "0".to_owned(),
                    n => format!("0.{}", "0".repeat(usize::from(n))),
                };
                if digits == zero {
                    Some(0)
                } else {
                    Money::parse_decimal(digits, c).ok().map(|m| {
                        if neg {
                            -m.minor()
                        } else {
                            m.minor()
                        }
                    })
                }
            };
            if let Some(v) = plain {
                assert_eq!(Some(v), strict, "{text} {c}");
            }
            assert_eq!(signed_minor(2, "gross", text, c).ok(), strict, "{text} {c}");
        }
    }

    #[test]
    fn each_line_keeps_its_own_day_and_currency_after_the_previous_ones() {
        let text = "reference,payment_id,type,gross,fee,net,currency,settled_date\n\
            a,pay_1,payment,1.00,0.00,1.00,EUR,2026-11-21\n\
            b,pay_2,payment,1.00,0.00,1.00,EUR,2026-11-21\n\
            c,pay_3,payment,1.00,0.00,1.00,EUR,2026-11-22\n\
            d,pay_4,payment,100,0,100,JPY,2026-11-22\n\
            e,pay_5,payment,1.00,0.00,1.00,EUR,2026-02-30\n";
        let (lines, _) = read_all(&[text.as_bytes()]);
        let days: Vec<String> = lines[..4]
            .iter()
            .map(|l| l.as_ref().unwrap().settled_date.to_string())
            .collect();
        assert_eq!(
            days,
            ["2026-11-21", "2026-11-21", "2026-11-22", "2026-11-22"]
        );
        let jpy = lines[3].as_ref().unwrap();
        assert_eq!((jpy.currency.code(), jpy.gross_minor), ("JPY", 100));
        match &lines[4] {
            Err(ReportError::BadField { line: 6, field, .. }) => assert_eq!(*field, "settled_date"),
            other => panic!("a bad day after good ones is refused: {other:?}"),
        }
    }

    #[test]
    fn lines_come_out_whole_whatever_the_chunking() {
        let bytes = GOOD.as_bytes();
        let (whole, end) = read_all(&[bytes]);
        assert_eq!(end, Ok(5));
        let lines: Vec<SettledLine> = whole.into_iter().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            (lines[0].line, lines[0].gross_minor, lines[0].fee_minor),
            (2, 4000, 60)
        );
        assert_eq!((lines[1].kind, lines[1].net_minor), ("refund", -1500));
        assert_eq!((lines[2].gross_minor, lines[2].net_minor), (0, -999));
        assert_eq!(lines[3].net_minor, 975);
        for size in [1, 2, 7, 64] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            let (again, end) = read_all(&chunks);
            assert_eq!(end, Ok(5));
            assert_eq!(
                again.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
                lines,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn malformed_reports_say_where() {
        let header = "reference,payment_id,type,gross,fee,net,currency,settled_date\n";
        let cases: [(&str, ReportError); 7] = [
            ("ref,pay,type\n", ReportError::BadHeader),
            (
                "sbx_1,pay_1,payment,40.001,0.60,39.40,EUR,2026-11-21\n",
                bad(2, "gross", ""),
            ),
            (
                "sbx_1,pay_1,payment,40.00,0.60,39.40,EUX,2026-11-21\n",
                bad(2, "currency", ""),
            ),
            (
                "sbx_1,pay_1,payment,40.00,0.60,39.41,EUR,2026-11-21\n",
                bad(2, "net", ""),
            ),
            (
                "sbx_1,pay_1,bonus,40.00,0.60,39.40,EUR,2026-11-21\n",
                bad(2, "type", ""),
            ),
            (
                "sbx_1,pay_1,payment,40.00,0.60,39.40,EUR,2026-13-01\n",
                bad(2, "settled_date", ""),
            ),
            ("sbx_1,pay_1,payment,40.00,0.60\n", bad(2, "line", "")),
        ];
        for (body, want) in cases {
            let text = if want == ReportError::BadHeader {
                body.to_owned()
            } else {
                format!("{header}{body}")
            };
            let (out, _) = read_all(&[text.as_bytes()]);
            let got = out.into_iter().find_map(Result::err).unwrap();
            match (&got, &want) {
                (
                    ReportError::BadField { line, field, .. },
                    ReportError::BadField {
                        line: l, field: f, ..
                    },
                ) => {
                    assert_eq!((line, field), (l, f), "{body}");
                }
                _ => assert_eq!(got, want, "{body}"),
            }
        }
        let (_, end) =
            read_all(&[
                format!("{header}sbx_1,pay_1,payment,40.00,0.60,39.40,EUR,2026-11-2").as_bytes(),
            ]);
        assert_eq!(end, Err(ReportError::Truncated { line: 2 }));
        assert_eq!(read_all(&[]).1, Err(ReportError::Empty));
        let long = vec![b'x'; MAX_LINE + 1];
        let (out, _) = read_all(&[header.as_bytes(), &long]);
        assert!(matches!(
            out[0],
            Err(ReportError::BadField { field: "line", .. })
        ));
    }

    proptest::proptest! {
        /// What the sandbox PSPs write, the reader reads back exactly.
        #[test]
        fn the_writer_and_the_reader_agree(
            gross in -10_000_000_000i64..10_000_000_000,
            fee in 0i64..1_000_000,
            code in proptest::sample::select(vec!["EUR", "JPY", "KWD", "SEK"]),
            kind in proptest::sample::select(SETTLEMENT_TYPES.to_vec()),
        ) {
            let currency = Currency::parse(code).unwrap();
            let line = crate::psp::wire::SettlementLine {
                reference: "ref_1".into(),
                payment_id: "pay_1".into(),
                kind,
                gross_minor: gross,
                fee_minor: fee,
                currency,
                settled_date: "2026-11-21".into(),
            };
            let text = format!("{SETTLEMENT_HEADER}\n{}\n", line.to_csv().unwrap());
            let (out, end) = read_all(&[text.as_bytes()]);
            proptest::prop_assert_eq!(end, Ok(2));
            let got = out.into_iter().next().unwrap().unwrap();
            proptest::prop_assert_eq!((got.gross_minor, got.fee_minor, got.net_minor), (gross, fee, gross - fee));
            proptest::prop_assert_eq!((got.kind, got.currency), (kind, currency));
        }
    }
}
