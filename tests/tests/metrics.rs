//! The metrics an operator reads (`GET /v1/ops/metrics` of `payloop serve`)
//! follow the loop, and they are the same numbers the Lambdas write as EMF:
//! one recorder, drained per invocation in AWS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use payloop_tests::TestStack;
use serde_json::Value;

fn series(view: &Value, metric: &str) -> BTreeMap<String, f64> {
    let all = view["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .chain(view["derived"].as_array().unwrap());
    let m = all
        .into_iter()
        .find(|m| m["name"] == metric)
        .unwrap_or_else(|| panic!("no metric {metric}"));
    assert!(
        !m["help"].as_str().unwrap().is_empty(),
        "{metric} undefined"
    );
    m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let v = s["value"].as_f64().or(s["count"].as_f64()).unwrap();
            (s["name"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_metrics_follow_deposits_webhooks_and_chargebacks() {
    let t = TestStack::start().await;
    let paid = t.deposit("mia", "20.00").await;
    let failed = t.deposit("mia", "5.00").await;
    let left = t.deposit("noa", "7.00").await;
    t.approve(&paid).await;
    t.checkout(&failed, "decline").await;
    t.wait_status(&failed, "failed").await;
    t.checkout(&left, "abandon").await;
    t.wait_status(&left, "canceled").await;
    t.charge_back(&paid).await;
    // A forged webhook is counted as refused, by reason.
    let forged = t.event(
        "evt_forged",
        &paid,
        "captured",
        "20.00",
        payloop::clock::now_s(),
    );
    let r = t
        .webhook_signed(&forged, Some("not-the-secret-at-all"))
        .await;
    assert_eq!(r.status, 401);
    t.wait_idle().await;

    assert_eq!(
        t.get("/v1/ops/metrics", false).await.status,
        401,
        "client key refused"
    );
    let r = t.get("/v1/ops/metrics", true).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();

    let started = series(&v, "deposits_started");
    assert_eq!(started["deposits_started"], 3.0);
    assert_eq!(started["deposits_started.method.card"], 3.0);
    assert_eq!(started["deposits_started.country.FI"], 3.0);
    assert_eq!(started["deposits_started.device.ios"], 3.0);
    assert_eq!(started["deposits_started.bank.none"], 3.0);
    assert_eq!(
        series(&v, "deposits_succeeded")["deposits_succeeded.method.card"],
        1.0
    );
    assert_eq!(
        series(&v, "deposits_failed")["deposits_failed.method.card"],
        1.0
    );
    assert_eq!(
        series(&v, "deposits_3ds_failed")["deposits_3ds_failed.method.card"],
        1.0
    );
    assert_eq!(series(&v, "deposits_cancelled")["deposits_cancelled"], 1.0);
    assert_eq!(series(&v, "chargebacks")["chargebacks.method.card"], 1.0);

    let conversion = series(&v, "deposit_conversion");
    assert_eq!(conversion["deposit_conversion.method.card"], 0.3333);
    assert_eq!(conversion["deposit_conversion.country.FI"], 0.3333);
    assert_eq!(
        series(&v, "three_ds_failure_share")["three_ds_failure_share"],
        0.3333
    );
    assert_eq!(
        series(&v, "cancellation_share")["cancellation_share"],
        0.3333
    );
    assert_eq!(
        series(&v, "chargeback_rate")["chargeback_rate.method.card"],
        1.0
    );

    // The sandbox's fee schedule: 150 bps of 20.00 EUR = 30 minor units.
    let fees = series(&v, "deposit_fees_minor");
    assert_eq!(fees["deposit_fees_minor.method.card.currency.EUR"], 30.0);
    let cost = series(&v, "cost_per_success_minor");
    assert_eq!(
        cost["cost_per_success_minor.method.card.currency.EUR"],
        30.0
    );

    let calls = series(&v, "psp_calls_ok");
    assert_eq!(calls["psp_calls_ok.psp.sandbox.method.card"], 3.0);
    assert_eq!(series(&v, "psp_uptime")["psp_uptime.psp.sandbox"], 1.0);
    assert_eq!(
        series(&v, "psp_native_error_rate")["psp_native_error_rate"],
        0.0
    );

    // authorized + captured, failed, canceled, charged_back: five events.
    assert_eq!(
        series(&v, "webhooks_accepted")["webhooks_accepted.psp.sandbox"],
        5.0
    );
    let rejected = series(&v, "webhooks_rejected");
    assert_eq!(
        rejected["webhooks_rejected.psp.sandbox.outcome.bad_signature"],
        1.0
    );

    let decisions = series(&v, "risk_decisions");
    assert_eq!(decisions["risk_decisions.flow.deposit"], 3.0);
    assert_eq!(
        series(&v, "manual_review_share")["manual_review_share"],
        0.0
    );

    let timer = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "deposit_time_ms")
        .unwrap();
    assert_eq!(timer["kind"], "timer");
    assert_eq!(timer["unit"], "Milliseconds");
    let s = &timer["series"][0];
    assert_eq!(s["count"], 1);
    assert!(s["p95_ms"].as_u64().unwrap() >= s["p50_ms"].as_u64().unwrap());

    assert_eq!(series(&v, "dlq_depth")["dlq_depth.queue.events-dlq"], 0.0);
    assert_eq!(series(&v, "dlq_depth")["dlq_depth.queue.google-dlq"], 0.0);
    assert_eq!(series(&v, "payouts_in_review")["payouts_in_review"], 0.0);
    // Formulas are stated for the derived figures.
    let conv = v["derived"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "deposit_conversion")
        .unwrap();
    assert_eq!(conv["formula"], "deposits_succeeded / deposits_started");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_document_carries_the_numbers_serve_shows() {
    let t = TestStack::start().await;
    let id = t.deposit("ada", "12.00").await;
    t.approve(&id).await;
    t.wait_idle().await;
    let shown = t.stack.ctx.metrics().view();
    let doc = t
        .stack
        .ctx
        .metrics()
        .take_emf(payloop::clock::now_ms(), "wallet-credit")
        .unwrap();
    assert!(!doc.contains('\n'), "one line");
    let emf: Value = serde_json::from_str(&doc).unwrap();
    for metric in [
        "deposits_started",
        "deposits_succeeded",
        "psp_calls_ok",
        "webhooks_accepted",
    ] {
        for (name, value) in shown.series(metric) {
            assert_eq!(emf[&name].as_f64(), Some(value), "{name} in {doc}");
        }
    }
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "payloop");
    assert_eq!(
        emf["deposit_time_ms.method.card"].as_array().unwrap().len(),
        1
    );
    // Drained: the next invocation starts from nothing.
    assert!(t
        .stack
        .ctx
        .metrics()
        .view()
        .series("deposits_started")
        .is_empty());
    t.shutdown().await;
}
