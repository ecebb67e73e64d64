//! reconciliation: the nightly per-PSP settlement match. Scheduled by
//! EventBridge; implemented by the reconciliation issue. Until then the
//! function accepts its schedule event and reports that nothing ran, so a
//! deployment never pretends a day was reconciled.

use serde::Deserialize;
use serde_json::{json, Value};

/// The scheduled event's detail: which PSP and day to reconcile.
#[derive(Debug, Deserialize, PartialEq)]
pub struct RunRequest {
    pub psp: Option<String>,
    pub date: Option<String>,
}

/// Parse a run request from an EventBridge event's `detail`.
pub fn parse_request(detail: &Value) -> RunRequest {
    serde_json::from_value(detail.clone()).unwrap_or(RunRequest {
        psp: None,
        date: None,
    })
}

/// The result of a run: always `not_implemented` for now.
pub fn run(req: &RunRequest) -> Value {
    tracing::warn!(psp = ?req.psp, date = ?req.date, "reconciliation is not implemented yet");
    json!({"status": "not_implemented", "psp": req.psp, "date": req.date})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_not_implemented_honestly() {
        let req = parse_request(&json!({"psp": "sandbox", "date": "2026-11-20"}));
        assert_eq!(req.psp.as_deref(), Some("sandbox"));
        assert_eq!(run(&req)["status"], "not_implemented");
    }
}
