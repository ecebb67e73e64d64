//! Time: UTC, milliseconds since the Unix epoch.
//!
//! The domain reads time only through the [`Clock`] in its `Ctx`, so tests
//! and the simulator run leases, timeouts, retries and sweeps on a virtual
//! clock ([`ManualClock`]). `now_ms()` is the wall clock, for the edges
//! (start-up, schedules) only.

use std::sync::atomic::{AtomicI64, Ordering};

/// Where the domain gets the time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
    fn today(&self) -> Day {
        Day::of_ms(self.now_ms())
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A virtual clock that moves only when told (simulation, tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock {
            ms: AtomicI64::new(ms),
        }
    }
    pub fn advance_ms(&self, by: i64) {
        self.ms.fetch_add(by.max(0), Ordering::SeqCst);
    }
    /// Move to `ms` if that is later (time never runs backwards).
    pub fn advance_to(&self, ms: i64) {
        self.ms.fetch_max(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An RFC 3339 date-time (`2025-10-17T09:41:00Z`, `…+02:00`, fractions
/// allowed) as epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn now_s() -> i64 {
    now_ms() / 1000
}

/// A UTC calendar day, `YYYY-MM-DD` (settlement days, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    /// Days since 1970-01-01.
    days: i64,
}

const MS_PER_DAY: i64 = 86_400_000;

impl Day {
    pub fn of_ms(ms: i64) -> Day {
        Day {
            days: ms.div_euclid(MS_PER_DAY),
        }
    }

    pub fn today() -> Day {
        Day::of_ms(now_ms())
    }

    /// Strict `YYYY-MM-DD` between 1970 and 9999.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<i64> {
            b.get(r.clone())?
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| s[r].parse().ok())?
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        Some(Day {
            days: days_from_civil(y, m, d),
        })
    }

    pub fn start_ms(&self) -> i64 {
        self.days * MS_PER_DAY
    }

    pub fn next(&self) -> Day {
        Day {
            days: self.days + 1,
        }
    }

    pub fn prev(&self) -> Day {
        Day {
            days: self.days - 1,
        }
    }

    /// The Monday of this day's ISO week (1970-01-01 was a Thursday).
    pub fn week_start(&self) -> Day {
        Day {
            days: self.days - (self.days + 3).rem_euclid(7),
        }
    }

    /// The first day of this day's calendar month.
    pub fn month_start(&self) -> Day {
        let (y, m, _) = civil_from_days(self.days);
        Day {
            days: days_from_civil(y, m, 1),
        }
    }

    /// The first day of the next calendar month.
    pub fn next_month_start(&self) -> Day {
        let (y, m, _) = civil_from_days(self.days);
        let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        Day {
            days: days_from_civil(y, m, 1),
        }
    }

    /// This day plus `n` days.
    pub fn plus_days(&self, n: i64) -> Day {
        Day {
            days: self.days + n,
        }
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = civil_from_days(self.days);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_start_where_the_calendar_says() {
        let d = Day::parse("2026-12-02").unwrap(); // a Wednesday
        assert_eq!(d.week_start().to_string(), "2026-11-30");
        assert_eq!(d.month_start().to_string(), "2026-12-01");
        assert_eq!(d.next_month_start().to_string(), "2027-01-01");
        let monday = Day::parse("2026-11-30").unwrap();
        assert_eq!(monday.week_start(), monday);
        let sunday = Day::parse("2026-12-06").unwrap();
        assert_eq!(sunday.week_start(), monday);
        assert_eq!(
            Day::parse("2024-02-29")
                .unwrap()
                .next_month_start()
                .to_string(),
            "2024-03-01"
        );
        assert_eq!(d.plus_days(7).to_string(), "2026-12-09");
    }

    #[test]
    fn rfc3339_times_parse_to_epoch_ms() {
        assert_eq!(
            parse_rfc3339_ms("2025-10-17T09:41:00Z"),
            Some(1_760_694_060_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-10-17T11:41:00.250+02:00"),
            Some(1_760_694_060_250)
        );
        for bad in [
            "2025-10-17",
            "2025-10-17 09:41:00",
            "yesterday",
            "",
            "2025-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_round_trip_and_reject_bad_dates() {
        for s in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-21",
            "2024-12-31",
            "9999-12-31",
        ] {
            assert_eq!(Day::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Day::parse("2026-11-21").unwrap().start_ms(),
            1_795_219_200_000
        );
        assert_eq!(
            Day::of_ms(1_795_219_200_000 + 86_399_999).to_string(),
            "2026-11-21"
        );
        assert_eq!(
            Day::parse("2024-12-31").unwrap().next().to_string(),
            "2025-01-01"
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-11-21",
            "2026-11-21x",
            "1969-12-31",
            "2026-11-00",
            "２０２６-11-21",
        ] {
            assert!(Day::parse(bad).is_none(), "{bad}");
        }
    }
}
