//! Integer money with ISO 4217 minor units. No floats anywhere.
//!
//! Amounts are held as a count of the currency's minor unit (cents for EUR,
//! yen for JPY, fils for BHD). The currency table is ISO 4217 (via the
//! `iso_currency` crate); special codes without a minor unit (XAU, XXX, ...)
//! and superseded codes are refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest amount we accept, in minor units. Far above any real payment and far
/// below `i64::MAX`, so sums of many amounts stay checked-safe.
pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000_000;
/// Micros per major unit (Google Standard Payments convention).
pub const MICROS_PER_UNIT: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency code")]
    UnknownCurrency,
    #[error("amount must be a plain decimal like \"50.00\"")]
    Malformed,
    #[error("amount has more decimals than the currency allows ({0})")]
    TooPrecise(u16),
    #[error("amount must have exactly {0} decimals for this currency")]
    WrongPrecision(u16),
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount is too large")]
    Overflow,
    #[error("currencies differ")]
    CurrencyMismatch,
}

/// An ISO 4217 currency with a defined minor unit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The euro (a placeholder value where one is needed before parsing).
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::UnknownCurrency);
        }
        let c = iso_currency::Currency::from_code(code).ok_or(MoneyError::UnknownCurrency)?;
        if c.exponent().is_none() || c.is_superseded().is_some() {
            return Err(MoneyError::UnknownCurrency);
        }
        Ok(Self(c))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Number of decimals of the minor unit (2 for EUR, 0 for JPY, 3 for BHD).
    pub fn minor_digits(&self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }

    fn minor_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.minor_digits()))
    }

    /// The largest amount in minor units: [`MAX_MINOR_UNITS`], lowered where
    /// needed so the amount in micros still fits an i64.
    pub fn max_minor(&self) -> i64 {
        let micros_per_minor = (MICROS_PER_UNIT / self.minor_per_major()).max(1);
        MAX_MINOR_UNITS.min(i64::MAX / micros_per_minor)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount of one currency, in minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// A positive payment amount from minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        if minor > currency.max_minor() {
            return Err(MoneyError::Overflow);
        }
        Ok(Self { minor, currency })
    }

    /// Parse a decimal string strictly: digits, and if the currency has a minor
    /// unit, a dot and exactly that many digits ("50.00" EUR, "5000" JPY).
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let digits = currency.minor_digits();
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed);
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return Err(MoneyError::Malformed);
        }
        let frac = frac.unwrap_or("");
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed);
        }
        if frac.len() > usize::from(digits) {
            return Err(MoneyError::TooPrecise(digits));
        }
        if frac.len() != usize::from(digits) {
            return Err(MoneyError::WrongPrecision(digits));
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let frac: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| MoneyError::Malformed)?
        };
        let minor = whole
            .checked_mul(currency.minor_per_major())
            .and_then(|m| m.checked_add(frac))
            .ok_or(MoneyError::Overflow)?;
        Self::from_minor(minor, currency)
    }

    /// From `amount_micros` (1.23 = 1_230_000). Must be exactly representable
    /// in the currency's minor unit.
    pub fn from_micros(micros: i64, currency: Currency) -> Result<Self, MoneyError> {
        if micros <= 0 {
            return Err(MoneyError::NotPositive);
        }
        let micros_per_minor = MICROS_PER_UNIT / currency.minor_per_major();
        if micros_per_minor == 0 {
            return Err(MoneyError::UnknownCurrency);
        }
        if micros % micros_per_minor != 0 {
            return Err(MoneyError::TooPrecise(currency.minor_digits()));
        }
        Self::from_minor(micros / micros_per_minor, currency)
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Always representable: amounts are capped by [`Currency::max_minor`].
    pub fn micros(&self) -> Result<i64, MoneyError> {
        let per_minor = MICROS_PER_UNIT / self.currency.minor_per_major();
        self.minor
            .checked_mul(per_minor)
            .ok_or(MoneyError::Overflow)
    }

    /// The canonical decimal string ("50.00", "5000", "1.250").
    pub fn to_decimal(&self) -> String {
        format_minor(self.minor, self.currency)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let sum = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Money::from_minor(sum, self.currency)
    }

    /// Subtraction that must stay positive (a payment amount, not a balance).
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let diff = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Money::from_minor(diff, self.currency)
    }
}

/// Render any signed minor-unit count (balances may be zero) as a decimal string.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let digits = usize::from(currency.minor_digits());
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let per = 10_u64.pow(digits as u32);
    format!("{sign}{}.{:0width$}", abs / per, abs % per, width = digits)
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).unwrap()
    }

    #[test]
    fn parses_exact_precision_per_currency() {
        assert_eq!(
            Money::parse_decimal("50.00", cur("EUR")).unwrap().minor(),
            5000
        );
        assert_eq!(
            Money::parse_decimal("5000", cur("JPY")).unwrap().minor(),
            5000
        );
        assert_eq!(
            Money::parse_decimal("1.250", cur("BHD")).unwrap().minor(),
            1250
        );
        assert_eq!(Money::parse_decimal("0.01", cur("EUR")).unwrap().minor(), 1);
    }

    #[test]
    fn rejects_bad_decimals() {
        let eur = cur("EUR");
        for bad in [
            "50.001", "-1", "0", "0.00", "1e3", " 5", "5 ", "+5", "5.", ".50", "50", "5,00", "",
            "05.00", "50.0",
        ] {
            assert!(
                Money::parse_decimal(bad, eur).is_err(),
                "{bad:?} must be rejected"
            );
        }
        assert_eq!(
            Money::parse_decimal("50.00", cur("JPY")),
            Err(MoneyError::TooPrecise(0))
        );
        assert_eq!(
            Money::parse_decimal("99999999999999999999.00", eur),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse_decimal("10000000000000.01", eur),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn currency_table_is_real_iso_4217() {
        assert_eq!(cur("KWD").minor_digits(), 3);
        assert_eq!(cur("CLP").minor_digits(), 0);
        assert_eq!(cur("ISK").minor_digits(), 0);
        assert_eq!(cur("SEK").minor_digits(), 2);
        for bad in ["eur", "EURO", "ABC", "XAU", "XXX", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn micros_must_fit_minor_units() {
        let eur = cur("EUR");
        assert_eq!(Money::from_micros(1_230_000, eur).unwrap().minor(), 123);
        assert_eq!(
            Money::from_micros(1_234_567, eur),
            Err(MoneyError::TooPrecise(2))
        );
        assert_eq!(Money::from_micros(0, eur), Err(MoneyError::NotPositive));
        assert_eq!(
            Money::from_micros(5_000_000_000, cur("JPY"))
                .unwrap()
                .minor(),
            5000
        );
    }

    #[test]
    fn checked_arithmetic() {
        let eur = cur("EUR");
        let a = Money::from_minor(100, eur).unwrap();
        let b = Money::from_minor(eur.max_minor(), eur).unwrap();
        assert_eq!(a.checked_add(a).unwrap().minor(), 200);
        assert_eq!(a.checked_add(b), Err(MoneyError::Overflow));
        assert_eq!(a.checked_sub(a), Err(MoneyError::NotPositive));
        let jpy = cur("JPY");
        let top = Money::from_minor(jpy.max_minor(), jpy).unwrap();
        assert!(top.micros().is_ok(), "every accepted amount has micros");
        assert_eq!(
            Money::from_minor(jpy.max_minor() + 1, jpy),
            Err(MoneyError::Overflow)
        );
        let usd = Money::from_minor(1, cur("USD")).unwrap();
        assert_eq!(a.checked_add(usd), Err(MoneyError::CurrencyMismatch));
    }

    proptest! {
        #[test]
        fn decimal_round_trips(minor in 1..MAX_MINOR_UNITS, code in prop::sample::select(vec!["EUR", "JPY", "BHD", "USD", "CLF"])) {
            let c = cur(code);
            let m = Money::from_minor(minor.min(c.max_minor()), c).unwrap();
            prop_assert_eq!(Money::parse_decimal(&m.to_decimal(), c).unwrap(), m);
            prop_assert_eq!(Money::from_micros(m.micros().unwrap(), c).unwrap(), m);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = Money::parse_decimal(&s, cur("EUR"));
        }
    }
}
