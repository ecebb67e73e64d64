//! The metrics recorder: the domain records facts (a deposit credited, its
//! method and country, how long it took) and the recorder keeps one series
//! per breakdown its [`Def`] names, every label value bounded.
//!
//! One recorder per process (it lives beside the PSPs, so route health
//! records circuit changes into it too). The Lambdas drain it once per
//! invocation into a single EMF document ([`Metrics::take_emf`]); `payloop
//! serve` never drains it and shows the totals since start
//! ([`Metrics::view`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

pub mod catalogue;
mod emf;
mod timer;
mod view;

pub use catalogue::{Def, Dim, Kind, Unit};
pub use view::{MetricView, MetricsView, SeriesView};

use timer::Timer;

/// Distinct values kept per free-form label (banks, PSP ids) before the
/// rest count as `other`: series stay bounded whatever the input.
pub const MAX_FREE_VALUES: usize = 50;

/// The label value that stands for "not known" (a deposit without a country).
pub const NONE: &str = "none";
/// The label value that stands for "outside the bounded set".
pub const OTHER: &str = "other";

/// The device classes kept (anything else is `other`).
const DEVICES: [&str; 7] = [
    "ios", "android", "web", "desktop", "mobile", "tablet", "app",
];

/// One series: a metric and its labels, in breakdown order.
type SeriesKey = (&'static str, Vec<(Dim, String)>);

#[derive(Default)]
struct State {
    counters: BTreeMap<SeriesKey, u64>,
    timers: BTreeMap<SeriesKey, Timer>,
    gauges: BTreeMap<SeriesKey, i64>,
    /// The free-form values admitted so far, per label.
    admitted: BTreeMap<Dim, BTreeSet<String>>,
}

/// A process's metrics (see the module docs).
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// One fact of an observation: a label and its raw value.
pub type Fact<'a> = (Dim, &'a str);

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Count one event with these facts into every series of `def`.
    pub fn count(&self, def: &'static Def, facts: &[Fact<'_>]) {
        self.add(def, facts, 1);
    }

    /// Add `n` to every series of the counter `def`.
    pub fn add(&self, def: &'static Def, facts: &[Fact<'_>], n: u64) {
        debug_assert_eq!(def.kind, Kind::Counter, "{}", def.name);
        self.each_series(def, facts, |s, key| {
            let c = s.counters.entry(key).or_insert(0);
            *c = c.saturating_add(n);
        });
    }

    /// One duration (ms) into every series of the timer `def`.
    pub fn time(&self, def: &'static Def, facts: &[Fact<'_>], ms: i64) {
        debug_assert_eq!(def.kind, Kind::Timer, "{}", def.name);
        let ms = u64::try_from(ms).unwrap_or(0);
        self.each_series(def, facts, |s, key| {
            s.timers.entry(key).or_default().add(ms)
        });
    }

    /// Set the gauge `def` (every series) to `value`.
    pub fn gauge(&self, def: &'static Def, facts: &[Fact<'_>], value: i64) {
        debug_assert_eq!(def.kind, Kind::Gauge, "{}", def.name);
        self.each_series(def, facts, |s, key| {
            s.gauges.insert(key, value);
        });
    }

    /// A gauge read in parts, one value per label of `part`: each part's
    /// series holds its own value, every series without `part` the sum of
    /// the parts (not whichever part was set last).
    pub fn gauge_parts(&self, def: &'static Def, part: Dim, parts: &[(&str, i64)]) {
        debug_assert_eq!(def.kind, Kind::Gauge, "{}", def.name);
        let total = parts.iter().fold(0i64, |a, (_, v)| a.saturating_add(*v));
        for (label, value) in parts {
            self.each_series(def, &[(part, label)], |s, key| {
                if key.1.iter().any(|(d, _)| *d == part) {
                    s.gauges.insert(key, *value);
                } else {
                    s.gauges.insert(key, total);
                }
            });
        }
    }

    fn each_series(
        &self,
        def: &'static Def,
        facts: &[Fact<'_>],
        mut f: impl FnMut(&mut State, SeriesKey),
    ) {
        let Ok(mut s) = self.state.lock() else { return };
        for dims in def.breakdowns {
            let labels = dims
                .iter()
                .map(|d| (*d, s.bound(*d, fact(facts, *d))))
                .collect();
            f(&mut s, (def.name, labels));
        }
    }

    /// Everything recorded since the last take, as one EMF document (a JSON
    /// line), and forget it; `None` when nothing was recorded.
    pub fn take_emf(&self, now_ms: i64, function: &str) -> Option<String> {
        let Ok(mut s) = self.state.lock() else {
            return None;
        };
        let admitted = std::mem::take(&mut s.admitted);
        let taken = std::mem::replace(
            &mut *s,
            State {
                admitted,
                ..State::default()
            },
        );
        emf::document(&taken, now_ms, function)
    }

    /// Every metric and derived figure with its definition and series.
    pub fn view(&self) -> MetricsView {
        match self.state.lock() {
            Ok(s) => view::build(&s),
            Err(_) => view::build(&State::default()),
        }
    }
}

fn fact<'a>(facts: &[Fact<'a>], dim: Dim) -> Option<&'a str> {
    facts.iter().find(|(d, _)| *d == dim).map(|(_, v)| *v)
}

impl State {
    /// The bounded value of a label: closed sets are checked, free-form
    /// ones admitted up to [`MAX_FREE_VALUES`] each.
    fn bound(&mut self, dim: Dim, raw: Option<&str>) -> String {
        let Some(raw) = raw.filter(|v| !v.is_empty()) else {
            return NONE.to_owned();
        };
        let kept = match dim {
            Dim::Method => crate::schema::status::METHODS.contains(&raw),
            Dim::Country => raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_uppercase()),
            Dim::Currency => crate::money::Currency::parse(raw).is_ok(),
            Dim::Device => {
                let lower = raw.to_ascii_lowercase();
                return DEVICES
                    .iter()
                    .find(|d| **d == lower)
                    .map_or(OTHER, |d| *d)
                    .to_owned();
            }
            Dim::Bank | Dim::Psp => return self.admit(dim, raw),
            // Code-defined words (outcomes, classes, queue names).
            Dim::Outcome | Dim::To | Dim::Class | Dim::Queue | Dim::Flow => is_word(raw),
        };
        if kept {
            raw.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    fn admit(&mut self, dim: Dim, raw: &str) -> String {
        if !is_word(raw) {
            return OTHER.to_owned();
        }
        let seen = self.admitted.entry(dim).or_default();
        if seen.contains(raw) || seen.len() < MAX_FREE_VALUES {
            seen.insert(raw.to_owned());
            raw.to_owned()
        } else {
            OTHER.to_owned()
        }
    }
}

/// 1-64 characters `[A-Za-z0-9_.-]`: safe in a metric name and a label.
fn is_word(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The name a series goes by in EMF and in the view: the metric, then each
/// label as `.label.value` (`deposits_started.method.card`).
pub fn series_name(name: &str, labels: &[(Dim, String)]) -> String {
    let mut s = name.to_owned();
    for (d, v) in labels {
        s.push('.');
        s.push_str(d.as_str());
        s.push('.');
        s.push_str(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::catalogue::*;
    use super::*;

    #[test]
    fn a_fact_lands_in_every_breakdown_bounded() {
        let m = Metrics::new();
        let facts = [
            (Dim::Method, "card"),
            (Dim::Country, "FI"),
            (Dim::Device, "iOS"),
            (Dim::Bank, "nordea"),
        ];
        m.count(&DEPOSITS_STARTED, &facts);
        m.count(
            &DEPOSITS_STARTED,
            &[(Dim::Method, "bitcoin"), (Dim::Country, "fin")],
        );
        let v = m.view();
        let s = v.series("deposits_started");
        assert_eq!(s["deposits_started"], 2.0);
        assert_eq!(s["deposits_started.method.card"], 1.0);
        assert_eq!(s["deposits_started.method.other"], 1.0);
        assert_eq!(s["deposits_started.country.FI"], 1.0);
        assert_eq!(s["deposits_started.country.other"], 1.0);
        assert_eq!(s["deposits_started.device.ios"], 1.0);
        assert_eq!(s["deposits_started.device.none"], 1.0);
        assert_eq!(s["deposits_started.bank.nordea"], 1.0);
    }

    #[test]
    fn a_gauge_in_parts_totals_the_parts() {
        let m = Metrics::new();
        m.gauge_parts(
            &DLQ_DEPTH,
            Dim::Queue,
            &[("events-dlq", 2), ("google-dlq", 0)],
        );
        let v = m.view();
        let s = v.series("dlq_depth");
        assert_eq!(s["dlq_depth"], 2.0, "the total, not the last part");
        assert_eq!(s["dlq_depth.queue.events-dlq"], 2.0);
        assert_eq!(s["dlq_depth.queue.google-dlq"], 0.0);
    }

    #[test]
    fn free_form_labels_stop_growing_at_the_bound() {
        let m = Metrics::new();
        for i in 0..(MAX_FREE_VALUES + 10) {
            m.count(&DEPOSITS_STARTED, &[(Dim::Bank, &format!("bank-{i}"))]);
        }
        let v = m.view();
        let s = v.series("deposits_started");
        let banks = s.keys().filter(|k| k.contains(".bank.")).count();
        assert_eq!(
            banks,
            MAX_FREE_VALUES + 1,
            "{MAX_FREE_VALUES} banks and other"
        );
        assert_eq!(s["deposits_started.bank.other"], 10.0);
    }

    #[test]
    fn derived_figures_divide_matching_series() {
        let m = Metrics::new();
        for method in ["card", "card", "card", "card", "ewallet"] {
            m.count(&DEPOSITS_STARTED, &[(Dim::Method, method)]);
        }
        m.count(
            &DEPOSITS_SUCCEEDED,
            &[(Dim::Method, "card"), (Dim::Currency, "EUR")],
        );
        m.add(
            &DEPOSIT_FEES_MINOR,
            &[(Dim::Method, "card"), (Dim::Currency, "EUR")],
            37,
        );
        let v = m.view();
        let conv = v.series("deposit_conversion");
        assert_eq!(conv["deposit_conversion.method.card"], 0.25);
        assert_eq!(conv["deposit_conversion.method.ewallet"], 0.0);
        assert_eq!(conv["deposit_conversion"], 0.2);
        let cost = v.series("cost_per_success_minor");
        assert_eq!(
            cost["cost_per_success_minor.method.card.currency.EUR"],
            37.0
        );
    }
}
