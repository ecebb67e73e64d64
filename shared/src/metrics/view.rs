//! `GET /v1/ops/metrics`: every metric with its definition and its series,
//! and the derived figures (ratios; never stored, computed on reading).

use std::collections::BTreeMap;

use serde::Serialize;

use super::catalogue::{Def, Derived, Kind, ALL, DERIVED};
use super::{series_name, Dim, SeriesKey, State};

#[derive(Debug, Clone, Serialize)]
pub struct SeriesView {
    pub name: String,
    pub labels: BTreeMap<&'static str, String>,
    /// Counters and gauges: the value; derived figures: the ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Timers: how many, and the percentiles (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricView {
    pub name: &'static str,
    pub kind: &'static str,
    pub unit: &'static str,
    pub help: &'static str,
    /// How the figure is computed (derived figures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    pub breakdowns: Vec<Vec<&'static str>>,
    pub series: Vec<SeriesView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsView {
    pub metrics: Vec<MetricView>,
    pub derived: Vec<MetricView>,
}

impl MetricsView {
    /// One metric's (or derived figure's) series by name, with counters'
    /// and ratios' values, timers' counts (tests, the console).
    pub fn series(&self, metric: &str) -> BTreeMap<String, f64> {
        self.metrics
            .iter()
            .chain(&self.derived)
            .filter(|m| m.name == metric)
            .flat_map(|m| &m.series)
            .map(|s| {
                let v = s.value.or(s.count.map(|c| c as f64)).unwrap_or(0.0);
                (s.name.clone(), v)
            })
            .collect()
    }

    /// A timer series' percentiles (p50, p95), if it has any values.
    pub fn percentiles(&self, series: &str) -> Option<(u64, u64)> {
        self.metrics
            .iter()
            .flat_map(|m| &m.series)
            .find(|s| s.name == series)
            .and_then(|s| Some((s.p50_ms?, s.p95_ms?)))
    }
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Counter => "counter",
        Kind::Timer => "timer",
        Kind::Gauge => "gauge",
    }
}

fn breakdowns(b: &[&[Dim]]) -> Vec<Vec<&'static str>> {
    b.iter()
        .map(|dims| dims.iter().map(|d| d.as_str()).collect())
        .collect()
}

fn series(key: &SeriesKey) -> SeriesView {
    SeriesView {
        name: series_name(key.0, &key.1),
        labels: key.1.iter().map(|(d, v)| (d.as_str(), v.clone())).collect(),
        value: None,
        count: None,
        p50_ms: None,
        p95_ms: None,
        max_ms: None,
    }
}

fn metric(s: &State, d: &Def) -> MetricView {
    let mine = |k: &&SeriesKey| k.0 == d.name;
    let mut out: Vec<SeriesView> = Vec::new();
    for k in s.counters.keys().filter(mine) {
        out.push(SeriesView {
            value: Some(s.counters[k] as f64),
            ..series(k)
        });
    }
    for k in s.gauges.keys().filter(mine) {
        out.push(SeriesView {
            value: Some(s.gauges[k] as f64),
            ..series(k)
        });
    }
    for (k, t) in s.timers.iter().filter(|(k, _)| k.0 == d.name) {
        out.push(SeriesView {
            count: Some(t.count),
            p50_ms: Some(t.quantile(0.5)),
            p95_ms: Some(t.quantile(0.95)),
            max_ms: Some(t.max),
            ..series(k)
        });
    }
    MetricView {
        name: d.name,
        kind: kind(d.kind),
        unit: d.unit.cloudwatch(),
        help: d.help,
        formula: None,
        breakdowns: breakdowns(d.breakdowns),
        series: out,
    }
}

fn derived(s: &State, f: &Derived) -> MetricView {
    let mut out = Vec::new();
    for (key, den) in &s.counters {
        let shape: Vec<Dim> = key.1.iter().map(|(d, _)| *d).collect();
        if key.0 != f.denominator.name || !f.breakdowns.contains(&shape.as_slice()) || *den == 0 {
            continue;
        }
        let num: u64 = f
            .numerator
            .iter()
            .filter_map(|n| s.counters.get(&(n.name, key.1.clone())))
            .sum();
        let ratio = num as f64 / *den as f64;
        let value = if f.complement { 1.0 - ratio } else { ratio };
        out.push(SeriesView {
            value: Some((value * 10_000.0).round() / 10_000.0),
            ..series(&(f.name, key.1.clone()))
        });
    }
    let names: Vec<&str> = f.numerator.iter().map(|n| n.name).collect();
    let ratio = format!("{} / {}", names.join(" + "), f.denominator.name);
    MetricView {
        name: f.name,
        kind: "ratio",
        unit: "None",
        help: f.help,
        formula: Some(if f.complement {
            format!("1 - {ratio}")
        } else {
            ratio
        }),
        breakdowns: breakdowns(f.breakdowns),
        series: out,
    }
}

pub(super) fn build(s: &State) -> MetricsView {
    MetricsView {
        metrics: ALL.iter().map(|d| metric(s, d)).collect(),
        derived: DERIVED.iter().map(|f| derived(s, f)).collect(),
    }
}
