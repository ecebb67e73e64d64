//! The day's reconciliation report: counts per class, and gross / fee / net
//! per method, currency and kind from the PSP's lines, with the true margin
//! per method (what is left of the deposits after refunds, chargebacks and
//! fees). Shards each build a [`Totals`]; merging them is addition, so the
//! report does not depend on how the day was split.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::money::{format_minor, Currency};

use crate::domain::recon::matcher::{Booked, Class, Theirs};
use crate::schema::recon_index::Kind;

/// Count and sums of a group of lines (minor units).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums {
    pub count: u64,
    pub gross: i64,
    pub fee: i64,
    pub net: i64,
}

fn overflow() -> Error {
    Error::Internal("reconciliation totals overflow".into())
}

impl Sums {
    fn add(&mut self, gross: i64, fee: i64) -> Result<(), Error> {
        self.count += 1;
        self.gross = self.gross.checked_add(gross).ok_or_else(overflow)?;
        self.fee = self.fee.checked_add(fee).ok_or_else(overflow)?;
        let net = gross.checked_sub(fee).ok_or_else(overflow)?;
        self.net = self.net.checked_add(net).ok_or_else(overflow)?;
        Ok(())
    }
    fn merge(&mut self, o: &Sums) -> Result<(), Error> {
        self.count += o.count;
        self.gross = self.gross.checked_add(o.gross).ok_or_else(overflow)?;
        self.fee = self.fee.checked_add(o.fee).ok_or_else(overflow)?;
        self.net = self.net.checked_add(o.net).ok_or_else(overflow)?;
        Ok(())
    }
}

/// What one shard (or the whole day) found. Group keys are
/// `method|currency|kind`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub lines: u64,
    pub records: u64,
    pub classes: BTreeMap<String, u64>,
    pub healed: u64,
    /// The PSP's lines, by our method (`unknown` when we have no record,
    /// `account` for account fees).
    pub settled: BTreeMap<String, Sums>,
    /// Our records the PSP did not settle.
    pub unsettled: BTreeMap<String, Sums>,
}

fn group(method: &str, currency: Currency, kind: Kind) -> String {
    format!("{method}|{}|{}", currency.code(), kind.as_str())
}

impl Totals {
    pub fn merge(&mut self, o: &Totals) -> Result<(), Error> {
        self.lines += o.lines;
        self.records += o.records;
        self.healed += o.healed;
        for (k, v) in &o.classes {
            *self.classes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.settled {
            self.settled.entry(k.clone()).or_default().merge(v)?;
        }
        for (k, v) in &o.unsettled {
            self.unsettled.entry(k.clone()).or_default().merge(v)?;
        }
        Ok(())
    }

    pub fn count(&self, class: Class) -> u64 {
        self.classes.get(class.as_str()).copied().unwrap_or(0)
    }

    /// Lines and records an operator must look at.
    pub fn mismatches(&self) -> u64 {
        Class::ALL
            .iter()
            .filter(|c| c.opens_case())
            .map(|c| self.count(*c))
            .sum()
    }
}

/// One bucket's counts and sums before they join a [`Totals`]: classes in
/// an array, groups in a short list found by comparing their parts (a day
/// has a handful of method × currency × kind groups), so nothing is
/// formatted or looked up by string per line. Folded in once per bucket.
#[derive(Debug, Default)]
pub struct Tally {
    lines: u64,
    records: u64,
    healed: u64,
    classes: [u64; Class::ALL.len()],
    settled: Vec<(String, Currency, Kind, Sums)>,
    unsettled: Vec<(String, Currency, Kind, Sums)>,
}

fn add_group(
    groups: &mut Vec<(String, Currency, Kind, Sums)>,
    method: &str,
    currency: Currency,
    kind: Kind,
    gross: i64,
    fee: i64,
) -> Result<(), Error> {
    let found = groups
        .iter_mut()
        .find(|(m, c, k, _)| *c == currency && *k == kind && m == method);
    match found {
        Some((_, _, _, s)) => s.add(gross, fee),
        None => {
            let mut s = Sums::default();
            s.add(gross, fee)?;
            groups.push((method.to_owned(), currency, kind, s));
            Ok(())
        }
    }
}

impl Tally {
    /// Count our records of the bucket.
    pub fn records(&mut self, n: u64) {
        self.records += n;
    }

    /// As [`Totals::line`].
    pub fn line(
        &mut self,
        t: &Theirs,
        class: Class,
        method: &str,
        healed: bool,
    ) -> Result<(), Error> {
        self.lines += 1;
        self.classes[class as usize] += 1;
        self.healed += u64::from(healed);
        let method = match t.kind {
            Kind::Fee => "account",
            _ => method,
        };
        add_group(
            &mut self.settled,
            method,
            t.currency,
            t.kind,
            t.gross_minor,
            t.fee_minor,
        )
    }

    /// As [`Totals::unsettled`].
    pub fn unsettled(&mut self, r: &impl Booked) -> Result<(), Error> {
        self.classes[Class::MissingAtPsp as usize] += 1;
        let r = r.fields();
        add_group(
            &mut self.unsettled,
            r.method,
            r.currency,
            r.kind,
            r.gross_minor,
            0,
        )
    }

    /// Add what the bucket found to `totals`.
    pub fn fold_into(self, totals: &mut Totals) -> Result<(), Error> {
        totals.lines += self.lines;
        totals.records += self.records;
        totals.healed += self.healed;
        for (class, n) in Class::ALL.iter().zip(self.classes) {
            if n > 0 {
                *totals.classes.entry(class.as_str().to_owned()).or_default() += n;
            }
        }
        for (into, groups) in [
            (&mut totals.settled, self.settled),
            (&mut totals.unsettled, self.unsettled),
        ] {
            for (method, currency, kind, sums) in groups {
                into.entry(group(&method, currency, kind))
                    .or_default()
                    .merge(&sums)?;
            }
        }
        Ok(())
    }
}

/// One method × currency of the report.
#[derive(Default)]
struct MethodRow {
    kinds: BTreeMap<&'static str, Sums>,
}

/// What the method earned: deposits less refunds, chargebacks and fees.
/// Payouts are the players' own money leaving (their fees count).
fn margin_sums(row: &MethodRow) -> Sums {
    let mut all = Sums::default();
    for (kind, s) in &row.kinds {
        let s = match *kind {
            "payout" => Sums {
                count: s.count,
                gross: 0,
                fee: s.fee,
                net: -s.fee,
            },
            _ => *s,
        };
        let _ = all.merge(&s);
    }
    all
}

fn split(key: &str) -> Option<(&str, Currency, Kind)> {
    let mut it = key.split('|');
    let (m, c, k) = (it.next()?, it.next()?, it.next()?);
    Some((m, Currency::parse(c).ok()?, Kind::parse(k)?))
}

fn money(minor: i64, c: Currency) -> String {
    format_minor(minor, c)
}

/// Count and money of a group, as decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumsView {
    pub count: u64,
    pub gross: String,
    pub fee: String,
    pub net: String,
}

fn sums_view(s: &Sums, c: Currency) -> SumsView {
    SumsView {
        count: s.count,
        gross: money(s.gross, c),
        fee: money(s.fee, c),
        net: money(s.net, c),
    }
}

fn ratio_bps(part: i64, whole: i64) -> Option<i64> {
    (i128::from(part) * 10_000)
        .checked_div(i128::from(whole))
        .and_then(|v| i64::try_from(v).ok())
}

fn rows(groups: &BTreeMap<String, Sums>) -> BTreeMap<(String, Currency), MethodRow> {
    let mut out: BTreeMap<(String, Currency), MethodRow> = BTreeMap::new();
    for (k, s) in groups {
        if let Some((m, c, kind)) = split(k) {
            let row = out.entry((m.to_owned(), c)).or_default();
            *row.kinds.entry(kind.as_str()).or_default() = *s;
        }
    }
    out
}

/// One method × currency of the day: net, fees, margin and each kind's sums
/// (`payments`, `refunds`, `chargebacks`, `payouts`, `account_fees`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodView {
    pub method: String,
    pub currency: Currency,
    pub net: String,
    pub fees: String,
    pub margin_bps: Option<i64>,
    pub effective_fee_bps: Option<i64>,
    #[serde(flatten)]
    pub kinds: BTreeMap<String, SumsView>,
}

/// A refund or chargeback section's line, with its rate against deposits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionLine {
    pub method: String,
    pub currency: Currency,
    pub rate_bps: Option<i64>,
    #[serde(flatten)]
    pub sums: SumsView,
}

/// Our records the PSP did not settle, by method, currency and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledLine {
    pub method: String,
    pub currency: Currency,
    pub kind: String,
    #[serde(flatten)]
    pub sums: SumsView,
}

/// A reconciled day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteReport {
    pub psp: String,
    pub date: String,
    pub lines: u64,
    pub records: u64,
    pub classes: BTreeMap<String, u64>,
    pub mismatches: u64,
    pub healed: u64,
    pub methods: Vec<MethodView>,
    pub refunds: Vec<SectionLine>,
    pub chargebacks: Vec<SectionLine>,
    pub unsettled: Vec<UnsettledLine>,
    /// The same report as CSV (stored; the JSON route leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// A day whose report was refused: nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedReport {
    pub psp: String,
    pub date: String,
    pub errors: Vec<String>,
    pub more_errors: u64,
}

/// The day's reconciliation report, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DayReport {
    Complete(CompleteReport),
    Malformed(MalformedReport),
}

impl DayReport {
    pub fn status(&self) -> &'static str {
        match self {
            DayReport::Complete(_) => "complete",
            DayReport::Malformed(_) => "malformed",
        }
    }
}

/// A kind's entry in a method row: `payments`, `refunds`, `chargebacks`,
/// `payouts`, and `account_fees` (not `fees`, the row's fee total).
fn kind_key(kind: &str) -> String {
    match kind {
        "fee" => "account_fees".to_owned(),
        _ => format!("{kind}s"),
    }
}

fn method_view(method: &str, c: Currency, row: &MethodRow) -> MethodView {
    let all = margin_sums(row);
    let deposits = row.kinds.get("payment").map_or(0, |s| s.gross);
    MethodView {
        method: method.to_owned(),
        currency: c,
        net: money(all.net, c),
        fees: money(all.fee, c),
        margin_bps: ratio_bps(all.net, deposits),
        effective_fee_bps: ratio_bps(all.fee, deposits),
        kinds: row
            .kinds
            .iter()
            .map(|(kind, s)| (kind_key(kind), sums_view(s, c)))
            .collect(),
    }
}

/// The report of a day's totals.
pub fn day_report(psp: &str, date: &str, t: &Totals) -> CompleteReport {
    let mut methods = Vec::new();
    let mut sections: BTreeMap<&str, Vec<SectionLine>> = BTreeMap::new();
    for ((method, c), row) in rows(&t.settled) {
        let deposits = row.kinds.get("payment").map_or(0, |s| s.gross);
        for (kind, s) in &row.kinds {
            if matches!(*kind, "refund" | "chargeback") {
                sections.entry(kind).or_default().push(SectionLine {
                    method: method.clone(),
                    currency: c,
                    rate_bps: ratio_bps(s.gross.abs(), deposits),
                    sums: sums_view(s, c),
                });
            }
        }
        methods.push(method_view(&method, c, &row));
    }
    let unsettled = t
        .unsettled
        .iter()
        .filter_map(|(k, s)| {
            let (m, c, kind) = split(k)?;
            Some(UnsettledLine {
                method: m.to_owned(),
                currency: c,
                kind: kind.as_str().to_owned(),
                sums: sums_view(s, c),
            })
        })
        .collect();
    CompleteReport {
        psp: psp.to_owned(),
        date: date.to_owned(),
        lines: t.lines,
        records: t.records,
        classes: Class::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), t.count(*c)))
            .collect(),
        mismatches: t.mismatches(),
        healed: t.healed,
        methods,
        refunds: sections.remove("refund").unwrap_or_default(),
        chargebacks: sections.remove("chargeback").unwrap_or_default(),
        unsettled,
        csv: None,
        shards: None,
    }
}

/// One CSV row of sums.
fn sums_row(section: &str, name: &str, c: Currency, kind: &str, s: &Sums, margin: &str) -> String {
    format!(
        "{section},{name},{},{kind},{},{},{},{},{margin}\n",
        c.code(),
        s.count,
        money(s.gross, c),
        money(s.fee, c),
        money(s.net, c)
    )
}

pub const CSV_HEADER: &str = "section,name,currency,kind,count,gross,fee,net,margin_bps";

/// The same report as CSV: one row per class, per method × kind, and per
/// method total with its margin.
pub fn to_csv(t: &Totals) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for c in Class::ALL {
        out.push_str(&format!("class,{},,,{},,,,\n", c.as_str(), t.count(c)));
    }
    for ((method, c), row) in rows(&t.settled) {
        let all = margin_sums(&row);
        for (kind, s) in &row.kinds {
            out.push_str(&sums_row("settled", &method, c, kind, s, ""));
        }
        let deposits = row.kinds.get("payment").map_or(0, |s| s.gross);
        let margin = ratio_bps(all.net, deposits).map_or(String::new(), |b| b.to_string());
        out.push_str(&sums_row("method", &method, c, "", &all, &margin));
    }
    for (k, s) in &t.unsettled {
        if let Some((m, c, kind)) = split(k) {
            out.push_str(&format!(
                "unsettled,{m},{},{},{},{},,,\n",
                c.code(),
                kind.as_str(),
                s.count,
                money(s.gross, c)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn t(kind: Kind, gross: i64, fee: i64) -> Theirs {
        Theirs {
            line: 2,
            kind,
            key: String::new(),
            reference: String::new(),
            payment_id: String::new(),
            gross_minor: gross,
            fee_minor: fee,
            currency: eur(),
        }
    }

    fn totals(t: Tally) -> Totals {
        let mut out = Totals::default();
        t.fold_into(&mut out).unwrap();
        out
    }

    #[test]
    fn margins_and_sections_add_up_and_shards_merge() {
        let mut a = Tally::default();
        a.line(
            &t(Kind::Payment, 10_000, 150),
            Class::Matched,
            "card",
            false,
        )
        .unwrap();
        a.line(
            &t(Kind::Payment, 10_000, 150),
            Class::Matched,
            "card",
            false,
        )
        .unwrap();
        let mut b = Tally::default();
        b.line(&t(Kind::Refund, -2_000, 0), Class::Matched, "card", false)
            .unwrap();
        b.line(
            &t(Kind::Chargeback, -1_000, 0),
            Class::Matched,
            "card",
            false,
        )
        .unwrap();
        b.line(&t(Kind::Fee, 0, 500), Class::Fee, "unknown", false)
            .unwrap();
        let (a, b) = (totals(a), totals(b));
        let mut a = a;
        a.merge(&b).unwrap();
        let mut report = day_report("sandbox", "2026-11-20", &a);
        report.csv = Some(to_csv(&a));
        report.shards = Some(2);
        // Stored as text and read back: the same report.
        let stored = serde_json::to_string(&DayReport::Complete(report.clone())).unwrap();
        let back: DayReport = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, DayReport::Complete(report.clone()));
        let j = serde_json::to_value(report).unwrap();
        assert_eq!(j["lines"], 5);
        assert_eq!(j["classes"]["matched"], 4);
        assert_eq!(j["classes"]["fee"], 1);
        assert_eq!(j["mismatches"], 0);
        let card = &j["methods"][1];
        assert_eq!(card["method"], "card");
        // 20 000 − 300 fees − 2 000 refund − 1 000 chargeback = 16 700 of 20 000.
        assert_eq!(card["net"], "167.00");
        assert_eq!(card["margin_bps"], 8350);
        assert_eq!(card["effective_fee_bps"], 150);
        assert_eq!(j["refunds"][0]["rate_bps"], 1000);
        assert_eq!(j["chargebacks"][0]["gross"], "-10.00");
        assert_eq!(j["methods"][0]["method"], "account");
        let csv = to_csv(&a);
        assert!(
            csv.contains("method,card,EUR,,4,170.00,3.00,167.00,8350\n"),
            "{csv}"
        );
        assert!(csv.contains("class,matched,,,4,,,,\n"));
    }
}
