//! Routing end to end over HTTP: circuit breaker with half-open probes (health
//! kept in the store), stickiness, degradation mode, risk-level rules, and
//! the decision recorded on every payment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use payloop::psp::health::{Circuit, Health, HealthPolicy};
use payloop_tests::{deposit_body, TestStack};
use serde_json::{json, Value};

/// A policy that reacts in test time: 5 calls decide, 1 s cool-down.
fn quick_health() -> HealthPolicy {
    HealthPolicy {
        window_ms: 10_000,
        bucket_ms: 1_000,
        min_samples: 5,
        cool_down_ms: 1_000,
        probe_every_ms: 1_000,
        sync_every_ms: 10,
        ..HealthPolicy::default()
    }
}

async fn init(t: &TestStack, key: &str, body: Value) -> Value {
    let r = t.init(Some(key), &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    t.payment(r.json()["payment_id"].as_str().unwrap()).await
}

fn outcomes(p: &Value) -> Vec<(String, String)> {
    p["routing"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["psp"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(psp: &str, outcome: &str) -> (String, String) {
    (psp.to_owned(), outcome.to_owned())
}

async fn circuit(t: &TestStack, psp: &str) -> String {
    let r = t.get("/v1/admin/routing", true).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["routes"][psp]["circuit"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_route_is_taken_out_and_probed_back_in() {
    let t = TestStack::start_with(|o| o.health = Some(quick_health())).await;
    t.set_outage("sandbox", true).await;
    // Five failures reach min_samples: the circuit opens for every instance.
    for i in 0..5 {
        let p = init(&t, &format!("cb-{i}"), deposit_body("cleo", "5.00")).await;
        assert_eq!(p["psp"], "sandbox-b");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(circuit(&t, "sandbox").await, "open");
    let p = init(&t, "cb-open", deposit_body("cleo", "5.00")).await;
    assert_eq!(
        outcomes(&p),
        [
            pair("sandbox", "skipped"),
            pair("sandbox-b", "session_opened")
        ],
        "an open circuit is not called"
    );
    let skipped = &p["routing"]["attempts"][0]["detail"];
    assert!(
        skipped
            .as_str()
            .unwrap()
            .contains("circuit open: error rate"),
        "{skipped}"
    );
    // Another instance (a fresh Health on the same store) sees the same picture.
    let other = Health::new(quick_health(), Default::default());
    let sandbox = payloop::ids::PspId::parse("sandbox").unwrap();
    other
        .sync(
            t.stack.ctx.store.as_ref(),
            [&sandbox],
            payloop::clock::now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(other.state(&sandbox).circuit, Circuit::Open);
    // Still down after the cool-down: the probe fails and the circuit re-opens.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let p = init(&t, "cb-probe-1", deposit_body("cleo", "5.00")).await;
    assert_eq!(
        outcomes(&p),
        [
            pair("sandbox", "unavailable"),
            pair("sandbox-b", "session_opened")
        ]
    );
    assert_eq!(circuit(&t, "sandbox").await, "open");
    // Recovered: after the next cool-down one probe goes through and closes it.
    t.set_outage("sandbox", false).await;
    let p = init(&t, "cb-still-open", deposit_body("cleo", "5.00")).await;
    assert_eq!(p["psp"], "sandbox-b", "no probe before the cool-down");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let p = init(&t, "cb-probe-2", deposit_body("cleo", "5.00")).await;
    assert_eq!(outcomes(&p), [pair("sandbox", "session_opened")]);
    assert!(p["routing"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("half-open probe"));
    assert_eq!(circuit(&t, "sandbox").await, "closed");
    for i in 0..5 {
        let p = init(&t, &format!("cb-back-{i}"), deposit_body("cleo", "5.00")).await;
        assert_eq!(
            p["psp"], "sandbox",
            "the recovered route gets traffic again"
        );
    }
    // The metrics saw it all: opened, probed (half-open) twice, re-opened
    // by the failed probe, closed by the good one; the failed calls count
    // against the route's uptime.
    let m = t.stack.ctx.metrics().view();
    let changes = m.series("circuit_changes");
    assert_eq!(
        changes["circuit_changes.psp.sandbox.to.open"], 2.0,
        "{changes:?}"
    );
    assert_eq!(
        changes["circuit_changes.psp.sandbox.to.half_open"], 2.0,
        "{changes:?}"
    );
    assert_eq!(
        changes["circuit_changes.psp.sandbox.to.closed"], 1.0,
        "{changes:?}"
    );
    assert_eq!(
        m.series("circuit_opened")["circuit_opened.psp.sandbox"],
        2.0
    );
    let down = m.series("psp_calls_unavailable");
    assert_eq!(
        down["psp_calls_unavailable.psp.sandbox"], 6.0,
        "five trips and one probe"
    );
    assert!(m.series("psp_uptime")["psp_uptime.psp.sandbox"] < 1.0);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_route_trips_on_its_p95() {
    let routing = r#"{"routes": [
        {"psp": "sandbox", "cost_bps": 10, "max_p95_ms": 100},
        {"psp": "sandbox-b", "cost_bps": 20}
    ]}"#;
    let t = TestStack::start_with(|o| {
        o.routing = Some(routing.into());
        o.health = Some(quick_health());
    })
    .await;
    let r = t.chaos("sandbox", json!({"api_latency_ms": 300})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for i in 0..5 {
        let p = init(&t, &format!("slow-{i}"), deposit_body("sol", "5.00")).await;
        assert_eq!(p["psp"], "sandbox", "slow but working");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = t.get("/v1/admin/routing", true).await;
    let route = &r.json()["routes"]["sandbox"];
    assert_eq!(route["circuit"], "open", "{route}");
    assert!(route["p95_ms"].as_u64().unwrap() >= 250, "{route}");
    let p = init(&t, "slow-after", deposit_body("sol", "5.00")).await;
    assert_eq!(p["psp"], "sandbox-b");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_or_bank_stays_on_the_route_it_started_on() {
    let t = TestStack::start().await;
    // The session starts while the preferred PSP is down: it lands on B.
    t.set_outage("sandbox", true).await;
    let mut body = deposit_body("sam", "5.00");
    body["meta"]["session_id"] = "sess-1".into();
    assert_eq!(init(&t, "st-1", body.clone()).await["psp"], "sandbox-b");
    let mut bank = deposit_body("sam", "5.00");
    bank["method"] = "pay_by_bank".into();
    bank["meta"]["bank"] = "nordea-fi".into();
    assert_eq!(init(&t, "bk-1", bank.clone()).await["psp"], "sandbox-b");
    t.set_outage("sandbox", false).await;
    // A recovers; the session and the bank stay on B, everyone else goes to A.
    for i in 0..3 {
        let p = init(&t, &format!("st-2{i}"), body.clone()).await;
        assert_eq!(p["psp"], "sandbox-b");
        assert!(p["routing"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("sticky: session started on sandbox-b"));
        assert_eq!(
            init(&t, &format!("bk-2{i}"), bank.clone()).await["psp"],
            "sandbox-b"
        );
        let other = init(&t, &format!("st-o{i}"), deposit_body("sam", "5.00")).await;
        assert_eq!(other["psp"], "sandbox");
    }
    // Stickiness holds only while the route is healthy: B down, the session moves.
    t.set_outage("sandbox-b", true).await;
    let moved = init(&t, "st-3", body.clone()).await;
    assert_eq!(
        outcomes(&moved),
        [
            pair("sandbox-b", "unavailable"),
            pair("sandbox", "session_opened")
        ]
    );
    t.set_outage("sandbox-b", false).await;
    assert_eq!(
        init(&t, "st-4", body).await["psp"],
        "sandbox",
        "re-stuck on A"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degradation_mode_keeps_only_fast_methods_on() {
    let t = TestStack::start().await;
    let on = t
        .put_platform(
            "/v1/admin/degradation",
            json!({"degraded": true, "note": "card acquirer incident"}),
        )
        .await;
    assert_eq!(
        (on.status, &on.json()["degraded"]),
        (200, &json!(true)),
        "{}",
        on.text
    );
    let card = t
        .init(Some("dg-1"), &deposit_body("dan", "5.00").to_string())
        .await;
    assert_eq!(card.status, 503, "{}", card.text);
    let e = card.json();
    assert_eq!(e["error"], "method_unavailable");
    assert_eq!(e["details"]["field"], "method");
    assert_eq!(
        e["details"]["available_methods"],
        json!(["p2p", "pay_by_bank"])
    );
    let mut fast = deposit_body("dan", "5.00");
    fast["method"] = "pay_by_bank".into();
    assert_eq!(init(&t, "dg-2", fast).await["status"], "pending");
    let bad = t
        .put_platform("/v1/admin/degradation", json!({"degraded": "yes"}))
        .await;
    assert_eq!(
        (bad.status, &bad.json()["details"]["field"]),
        (422, &json!("degraded"))
    );
    let off = t
        .put_platform("/v1/admin/degradation", json!({"degraded": false}))
        .await;
    assert_eq!(off.status, 200);
    // The same key that met the degradation is evaluated afresh.
    let again = t
        .init(Some("dg-1"), &deposit_body("dan", "5.00").to_string())
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    let r = t
        .http
        .put(t.url("/v1/admin/degradation"))
        .bearer_auth(&t.stack.secrets.client_key)
        .json(&json!({"degraded": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "client keys cannot switch modes");
    t.shutdown().await;
    // Forced by configuration: the admin switch cannot turn it off.
    let t = TestStack::start_with(|o| o.degraded = true).await;
    let off = t
        .put_platform("/v1/admin/degradation", json!({"degraded": false}))
        .await;
    assert_eq!(
        (&off.json()["degraded"], &off.json()["degraded_forced"]),
        (&json!(true), &json!(true))
    );
    let card = t
        .init(Some("dg-f"), &deposit_body("dan", "5.00").to_string())
        .await;
    assert_eq!(card.status, 503);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_levels_select_routes_and_every_decision_has_its_reason() {
    let routing = r#"{"routes": [
        {"psp": "sandbox", "risk_levels": ["low"], "cost_bps": 10},
        {"psp": "sandbox-c", "risk_levels": ["low", "medium"], "cost_bps": 20},
        {"psp": "sandbox-b", "risk_levels": ["low", "medium", "high"], "methods": ["pay_by_bank"], "cost_bps": 30}
    ]}"#;
    let t = TestStack::start_with(|o| o.routing = Some(routing.into())).await;
    let p = init(&t, "rk-1", deposit_body("rita", "5.00")).await;
    assert_eq!(p["psp"], "sandbox");
    assert_eq!(p["routing"]["risk_level"], "low");
    assert_eq!(p["routing"]["reason"], "routes[0] matched, cost 10 bps");
    let r = t
        .put_platform(
            "/v1/admin/players/rita/risk",
            json!({"risk_level": "medium"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = init(&t, "rk-2", deposit_body("rita", "5.00")).await;
    assert_eq!(
        (&p["psp"], &p["routing"]["risk_level"]),
        (&json!("sandbox-c"), &json!("medium"))
    );
    t.put_platform("/v1/admin/players/rita/risk", json!({"risk_level": "high"}))
        .await;
    let card = t
        .init(Some("rk-3"), &deposit_body("rita", "5.00").to_string())
        .await;
    assert_eq!(
        (card.status, card.json()["error"].as_str()),
        (422, Some("no_route"))
    );
    let mut bank = deposit_body("rita", "5.00");
    bank["method"] = "pay_by_bank".into();
    assert_eq!(init(&t, "rk-4", bank).await["psp"], "sandbox-b");
    let bad = t
        .put_platform(
            "/v1/admin/players/rita/risk",
            json!({"risk_level": "extreme"}),
        )
        .await;
    assert_eq!(
        (bad.status, &bad.json()["details"]["field"]),
        (422, &json!("risk_level"))
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_instance_gets_the_half_open_probe() {
    use payloop::store::embedded::EmbeddedStore;
    use payloop::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(EmbeddedStore::open(&dir.path().join("s.wal")).unwrap());
    let psp = payloop::ids::PspId::parse("sandbox").unwrap();
    let instances: Vec<Health> = (0..8)
        .map(|_| Health::new(quick_health(), Default::default()))
        .collect();
    let t0 = payloop::clock::now_ms();
    // Instance 0 sees five failures and opens the circuit for everyone.
    for _ in 0..5 {
        instances[0].record(&psp, false, 3);
    }
    instances[0].sync(store.as_ref(), [&psp], t0).await.unwrap();
    for h in &instances {
        h.sync(store.as_ref(), [&psp], t0).await.unwrap();
        assert_eq!(h.state(&psp).circuit, Circuit::Open);
    }
    // After the cool-down all eight ask for the probe: exactly one gets it.
    let later = t0 + 1_500;
    let claims = claims_at(&instances, store.as_ref(), &psp, later).await;
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    // Until probe_every has passed, nobody else probes.
    let claims = claims_at(&instances, store.as_ref(), &psp, later + 10).await;
    assert!(claims.iter().all(|c| !c));
    let claims = claims_at(&instances, store.as_ref(), &psp, later + 1_100).await;
    assert_eq!(claims.iter().filter(|c| **c).count(), 1);
}

async fn claims_at(
    instances: &[Health],
    store: &dyn payloop::store::Store,
    psp: &payloop::ids::PspId,
    now: i64,
) -> Vec<bool> {
    let mut out = Vec::new();
    let claims = instances.iter().map(|h| h.claim_probe(store, psp, now));
    for c in claims {
        out.push(c.await);
    }
    out
}
