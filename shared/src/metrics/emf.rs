//! CloudWatch Embedded Metric Format: one JSON document per invocation.
//!
//! An invocation can touch several values of one label (a failover calls two
//! PSPs; a webhook batch carries several outcomes), and an EMF document has
//! one value per dimension key. So payloop keeps its metrics dimensionless
//! (one empty dimension set) and names each series by its labels:
//! `deposits_started.method.card`. Every label value is bounded, so the
//! number of metric names is too.

use serde_json::{json, Map, Value};

use super::series_name;
use super::timer::MAX_VALUES;
use super::State;
use crate::metrics::catalogue::ALL;

/// The CloudWatch namespace of every payloop metric.
pub const NAMESPACE: &str = "payloop";
/// Metric definitions per directive (the format's limit).
const PER_DIRECTIVE: usize = 100;

pub(super) fn document(s: &State, now_ms: i64, function: &str) -> Option<String> {
    let unit = |name: &str| {
        ALL.iter()
            .find(|d| d.name == name)
            .map_or("None", |d| d.unit.cloudwatch())
    };
    let mut root = Map::new();
    let mut defs = Vec::new();
    for ((name, labels), n) in &s.counters {
        let series = series_name(name, labels);
        defs.push(json!({"Name": series, "Unit": unit(name)}));
        root.insert(series, json!(n));
    }
    for ((name, labels), v) in &s.gauges {
        let series = series_name(name, labels);
        defs.push(json!({"Name": series, "Unit": unit(name)}));
        root.insert(series, json!(v));
    }
    for ((name, labels), t) in &s.timers {
        let series = series_name(name, labels);
        defs.push(json!({"Name": series, "Unit": unit(name)}));
        let values: Vec<u64> = t.values.iter().copied().take(MAX_VALUES).collect();
        root.insert(series, json!(values));
    }
    if defs.is_empty() {
        return None;
    }
    let directives: Vec<Value> = defs
        .chunks(PER_DIRECTIVE)
        .map(|chunk| json!({"Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": chunk}))
        .collect();
    root.insert("function".into(), json!(function));
    root.insert(
        "_aws".into(),
        json!({"Timestamp": now_ms, "CloudWatchMetrics": directives}),
    );
    serde_json::to_string(&Value::Object(root)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalogue::*;
    use crate::metrics::{Dim, Metrics};

    #[test]
    fn one_document_holds_every_series_of_the_invocation() {
        let m = Metrics::new();
        m.count(&PSP_CALLS, &[(Dim::Psp, "a"), (Dim::Method, "card")]);
        m.count(&PSP_CALLS, &[(Dim::Psp, "b"), (Dim::Method, "card")]);
        m.time(&DEPOSIT_TIME_MS, &[(Dim::Method, "card")], 420);
        m.time(&DEPOSIT_TIME_MS, &[(Dim::Method, "card")], 17);
        let doc: Value =
            serde_json::from_str(&m.take_emf(1_700_000_000_000, "wallet-credit").unwrap()).unwrap();
        assert_eq!(doc["psp_calls"], 2);
        assert_eq!(doc["psp_calls.psp.a"], 1);
        assert_eq!(doc["psp_calls.psp.b.method.card"], 1);
        assert_eq!(doc["deposit_time_ms.method.card"], json!([420, 17]));
        assert_eq!(doc["function"], "wallet-credit");
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000i64);
        let d = &aws["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "payloop");
        assert_eq!(d["Dimensions"], json!([[]]));
        let names: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        // Every declared metric has its value at the root.
        for n in &names {
            assert!(doc.get(*n).is_some(), "{n} declared without a value");
        }
        assert!(names.contains(&"deposit_time_ms"));
        // Taken: the next invocation starts empty.
        assert!(m.take_emf(0, "wallet-credit").is_none());
    }
}
