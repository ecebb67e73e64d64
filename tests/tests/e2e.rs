//! End-to-end over HTTP against the local stack (embedded store + queue,
//! worker, sandbox PSP). Every scenario ends with the ledger invariant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use payloop::clock::now_s;
use payloop_tests::{deposit_body, minor, TestStack};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_through_the_sandbox_checkout_is_credited_once() {
    let t = TestStack::start().await;
    let r = t
        .init(Some("k-1"), &deposit_body("alice", "50.00").to_string())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["psp"], "sandbox");
    let id = created["payment_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pay_"));
    let page = t
        .http
        .get(created["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Pay") && page.contains("50.00 EUR"), "{page}");
    // Pay, pass 3-D Secure, approve: the sandbox PSP (its own server) signs
    // and sends authorized + captured webhooks to our intake over HTTP.
    let p = t.approve(&id).await;
    assert_eq!(
        p["credited_txn_id"].as_str().unwrap(),
        id.replace("pay_", "dep_")
    );
    let statuses: Vec<&str> = p["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    // Authorized may be applied before captured, or arrive after it and be
    // ignored: the history is forward-only either way.
    assert!(
        statuses == ["pending", "authorized", "captured"] || statuses == ["pending", "captured"],
        "{statuses:?}"
    );
    assert_eq!(t.balance_minor("alice").await, 5000);
    // The platform's credit confirmation points at the same single entry.
    let body =
        serde_json::json!({"payment_id": id, "txn_id": "round-1", "amount": "50.00"}).to_string();
    let c = t
        .post_platform("/v1/wallet/credit", Some("c-1"), &body)
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.json()["txn_id"], p["credited_txn_id"]);
    assert_eq!(t.balance_minor("alice").await, 5000);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_checkout_fails_the_payment_without_money() {
    let t = TestStack::start().await;
    let id = t.deposit("dora", "12.00").await;
    let done = t.checkout(&id, "decline").await;
    assert!(done.contains("Payment failed"), "{done}");
    t.wait_status(&id, "failed").await;
    let body = serde_json::json!({"payment_id": id, "txn_id": "x", "amount": "12.00"}).to_string();
    let c = t
        .post_platform("/v1/wallet/credit", Some("c-2"), &body)
        .await;
    assert_eq!(
        (c.status, c.json()["error"].as_str()),
        (409, Some("payment_not_final"))
    );
    assert_eq!(t.balance_minor("dora").await, 0);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_twenty_times_concurrently_credits_once() {
    let t = Arc::new(TestStack::start().await);
    let id = t.deposit("bob", "20.00").await;
    let body = t.event("evt-same", &id, "captured", "20.00", now_s());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (t, body) = (Arc::clone(&t), body.clone());
        tasks.push(tokio::spawn(
            async move { t.webhook_signed(&body, None).await },
        ));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        outcomes.push(r.json()["outcome"].as_str().unwrap().to_owned());
    }
    // Intake writes nothing for a payment event: copies racing the first
    // one's application are queued too, every later one is a duplicate.
    let accepted = outcomes.iter().filter(|o| *o == "accepted").count();
    let duplicates = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert!(accepted >= 1, "{outcomes:?}");
    assert_eq!(accepted + duplicates, 20, "{outcomes:?}");
    t.wait_status(&id, "captured").await;
    // Every stray copy applied (as nothing) before looking.
    t.wait_idle().await;
    assert_eq!(t.balance_minor("bob").await, 2000);
    let late = t.webhook_signed(&body, None).await;
    assert_eq!(
        late.json()["outcome"],
        "duplicate",
        "known by the payment's status"
    );
    t.wait_idle().await;
    assert_eq!(t.balance_minor("bob").await, 2000);
    let log = t
        .get(&format!("/v1/payments/{id}/deliveries"), true)
        .await
        .json();
    let log = log["deliveries"].as_array().unwrap();
    // The delivery that moved it (from the payment's history), then the duplicates.
    assert_eq!(log.iter().filter(|d| d["outcome"] == "accepted").count(), 1);
    assert_eq!(
        log.iter().filter(|d| d["outcome"] == "duplicate").count(),
        duplicates + 1
    );
    assert!(
        log.iter()
            .all(|d| d["amount"] == "20.00" && d["event_id"] == "evt-same"),
        "{log:?}"
    );
    t.assert_ledger_invariant().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stale_webhooks_are_refused_and_logged() {
    let t = TestStack::start().await;
    let id = t.deposit("carol", "30.00").await;
    let body = t.event("evt-forged", &id, "captured", "30.00", now_s());
    let r = t
        .webhook_signed(&body, Some("not-the-secret-0123456789"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("bad_signature"))
    );
    assert!(r.json()["trace_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(r.header("x-trace-id"), r.json()["trace_id"].as_str());
    let unsigned = t
        .http
        .post(t.url("/v1/payments/webhook"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let stale = t.event("evt-stale", &id, "captured", "30.00", now_s() - 301);
    let r = t.webhook_signed(&stale, None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("stale_event"))
    );
    // Well past the window: seconds elapse between signing and checking.
    let future = t.event("evt-future", &id, "captured", "30.00", now_s() + 330);
    assert_eq!(t.webhook_signed(&future, None).await.status, 401);
    t.wait_idle().await;
    assert_eq!(t.payment(&id).await["status"], "pending");
    assert_eq!(t.balance_minor("carol").await, 0);
    let log = t
        .get(&format!("/v1/payments/{id}/deliveries"), true)
        .await
        .json();
    let outcomes: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "bad_signature").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "stale").count(),
        2,
        "{outcomes:?}"
    );
    // Unverified deliveries are shown as claims, kept apart from the payment's own records.
    let deliveries = log["deliveries"].as_array().unwrap();
    assert!(deliveries
        .iter()
        .all(|d| (d["outcome"] == "bad_signature") == (d["verified"] == false)));
    let own = payloop::store::Query::new(
        format!("PAY#{id}"),
        payloop::store::SkRange::Prefix("DLV#".into()),
        50,
    );
    let own = t.stack.ctx.store.query(&own).await.unwrap().items;
    assert!(own
        .iter()
        .all(|d| d.get("outcome").and_then(|o| o.as_str()) != Some("bad_signature")));
    // Unknown payment: 404, never enqueued.
    let ghost = t.event(
        "evt-ghost",
        "pay_01NOSUCHPAYMENT000000000000",
        "captured",
        "30.00",
        now_s(),
    );
    assert_eq!(
        t.webhook_signed(&ghost, None).await.json()["error"],
        "unknown_payment"
    );
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_mismatch_moves_no_money_and_opens_a_case() {
    let t = TestStack::start().await;
    let id = t.deposit("dave", "40.00").await;
    let r = t.webhook("evt-mm", &id, "captured", "400.00").await;
    assert_eq!(
        (r.status, r.json()["outcome"].as_str()),
        (200, Some("mismatch"))
    );
    t.wait_idle().await;
    assert_eq!(t.payment(&id).await["status"], "pending");
    assert_eq!(t.balance_minor("dave").await, 0);
    let q = payloop::store::Query::new(
        format!("PAY#{id}"),
        payloop::store::SkRange::Prefix("CASE#".into()),
        10,
    );
    let cases = t.stack.ctx.store.query(&q).await.unwrap().items;
    assert_eq!(cases.len(), 1);
    assert_eq!(
        cases[0].get("event_amount").and_then(|a| a.as_i64()),
        Some(40000)
    );
    // The matching event still captures it afterwards.
    assert_eq!(
        t.webhook("evt-ok", &id, "captured", "40.00").await.json()["outcome"],
        "accepted"
    );
    t.wait_status(&id, "captured").await;
    assert_eq!(t.balance_minor("dave").await, 4000);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_after_captured_does_not_move_back() {
    let t = TestStack::start().await;
    let id = t.deposit("erin", "15.00").await;
    assert_eq!(
        t.webhook("evt-cap", &id, "captured", "15.00").await.status,
        200
    );
    t.wait_status(&id, "captured").await;
    assert_eq!(
        t.webhook("evt-auth", &id, "authorized", "15.00")
            .await
            .json()["outcome"],
        "accepted"
    );
    assert_eq!(
        t.webhook("evt-fail", &id, "failed", "15.00").await.json()["outcome"],
        "accepted"
    );
    t.wait_idle().await;
    let p = t.payment(&id).await;
    assert_eq!(p["status"], "captured");
    assert_eq!(p["history"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(t.balance_minor("erin").await, 1500);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_and_conflicts() {
    let t = TestStack::start().await;
    let body = deposit_body("fay", "25.00").to_string();
    let first = t.init(Some("same-key"), &body).await;
    assert_eq!(first.status, 201);
    assert!(first.header("idempotent-replayed").is_none());
    // Same request, reformatted JSON: the stored response byte for byte.
    let pretty = serde_json::to_string_pretty(&deposit_body("fay", "25.00")).unwrap();
    let again = t.init(Some("same-key"), &pretty).await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (201, first.text.as_str())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = t
        .init(Some("same-key"), &deposit_body("fay", "26.00").to_string())
        .await;
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let missing = t.init(None, &body).await;
    assert_eq!(
        (missing.status, missing.json()["error"].as_str()),
        (422, Some("idempotency_key_required"))
    );
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_one_key_make_one_intent() {
    let (t, faulty) = TestStack::with_faulty_store(|_| {}).await;
    let t = Arc::new(t);
    let body = deposit_body("gus", "10.00").to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (t, body) = (Arc::clone(&t), body.clone());
        tasks.push(tokio::spawn(
            async move { t.init(Some("one-key"), &body).await },
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            201 => {
                ids.insert(r.json()["payment_id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(r.json()["error"], "request_in_progress", "{}", r.text),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(faulty.payment_puts.load(Ordering::SeqCst), 1);
    t.assert_ledger_invariant().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_422_retried_with_the_same_key_after_fixing_the_body_is_processed() {
    let t = TestStack::start().await;
    let bad = t
        .init(Some("fix-me"), &deposit_body("hal", "10.001").to_string())
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["details"]["field"], "amount");
    let good = t
        .init(Some("fix-me"), &deposit_body("hal", "10.00").to_string())
        .await;
    assert_eq!(good.status, 201, "{}", good.text);
    let pan = deposit_body("hal", "10.00");
    let mut pan = pan.as_object().unwrap().clone();
    pan.insert(
        "meta".into(),
        serde_json::json!({"country": "FI", "device": "4111111111111111"}),
    );
    let r = t.init(Some("pan"), &Value::Object(pan).to_string()).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("pan_detected"))
    );
    let unauth = t
        .http
        .post(t.url("/v1/payments/init"))
        .header("idempotency-key", "x")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redelivered_after_commit_before_delete_does_not_double_credit() {
    let (t, q) = TestStack::with_faulty_queue(|_| {}).await;
    q.lose_deletes.store(2, Ordering::SeqCst);
    let mut applied = t.stack.applied.subscribe();
    let id = t.deposit("ivy", "33.00").await;
    assert_eq!(
        t.webhook("evt-r", &id, "captured", "33.00").await.status,
        200
    );
    // Two lost deletes, so the message is delivered three times.
    tokio::time::timeout(payloop_tests::WAIT, applied.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.deletes_seen.load(Ordering::SeqCst), 3);
    assert_eq!(t.payment(&id).await["status"], "captured");
    assert_eq!(t.balance_minor("ivy").await, 3300);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dlq_and_is_replayed_once_healed() {
    let (t, store) =
        TestStack::with_faulty_store(|o| o.visibility = Duration::from_millis(100)).await;
    let id = t.deposit("jay", "44.00").await;
    store.fail_transacts.store(true, Ordering::SeqCst);
    assert_eq!(
        t.webhook("evt-p", &id, "captured", "44.00").await.status,
        200
    );
    // 5 failed receives, then the 6th moves it to the DLQ.
    let deadline = tokio::time::Instant::now() + payloop_tests::WAIT;
    let mut moved = 0;
    while moved == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        if store.failed_transacts.load(Ordering::SeqCst) >= 5 {
            // Captured, the credit owed but not made: the view says so.
            let p = t.payment(&id).await;
            assert_eq!(p["status"], "captured");
            assert!(p["credited_txn_id"].is_null(), "no ledger entry yet: {p}");
            assert_eq!(t.balance_minor("jay").await, 0);
            store.fail_transacts.store(false, Ordering::SeqCst);
            let r = t.post_platform("/v1/ops/dlq/replay?max=10", None, "").await;
            assert_eq!(r.status, 200, "{}", r.text);
            moved = r.json()["moved"].as_u64().unwrap();
        }
    }
    assert_eq!(moved, 1);
    assert_eq!(
        store.failed_transacts.load(Ordering::SeqCst),
        5,
        "retried exactly maxReceiveCount times"
    );
    let p = t.wait_credited(&id).await;
    assert_eq!(p["credited_txn_id"], format!("dep_{}", &id[4..]));
    assert_eq!(t.balance_minor("jay").await, 4400);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_outage_answers_503_and_the_psp_retry_is_accepted() {
    let (t, fq) = TestStack::with_faulty_queue(|_| {}).await;
    let id = t.deposit("kim", "5.00").await;
    let body = t.event("evt-q", &id, "captured", "5.00", now_s());
    fq.fail_sends.store(true, Ordering::SeqCst);
    let r = t.webhook_signed(&body, None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (503, Some("service_unavailable"))
    );
    fq.fail_sends.store(false, Ordering::SeqCst);
    let r = t.webhook_signed(&body, None).await;
    assert_eq!(
        (r.status, r.json()["outcome"].as_str()),
        (200, Some("accepted"))
    );
    t.wait_status(&id, "captured").await;
    assert_eq!(t.balance_minor("kim").await, minor("5.00"));
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_and_intake_speak_every_signature_scheme() {
    use payloop::psp::signature::Scheme;
    for scheme in [Scheme::Timestamped, Scheme::StandardWebhooks] {
        let t = TestStack::start_with(|o| o.webhook_scheme = scheme).await;
        let id = t.deposit("lee", "8.00").await;
        t.approve(&id).await;
        // The body carries no timestamp: the signed one is authoritative.
        let body = serde_json::json!({"event_id": "evt-late", "payment_id": id, "status": "failed",
                                      "amount": "8.00", "currency": "EUR"})
        .to_string();
        let stale = t.webhook_scheme(scheme, &body, now_s() - 301).await;
        assert_eq!(
            (stale.status, stale.json()["error"].as_str()),
            (401, Some("stale_event")),
            "{scheme:?}"
        );
        let seed = t.webhook_signed(&body, None).await;
        assert_eq!(
            (seed.status, seed.json()["error"].as_str()),
            (401, Some("bad_signature")),
            "{scheme:?}"
        );
        // A PSP retry an hour later: the body keeps the event's time, the
        // signature is fresh. Freshness is the signed attempt's, so it is accepted.
        let mut late = serde_json::from_str::<Value>(&body).unwrap();
        late["timestamp"] = (now_s() - 3600).into();
        let fresh = t.webhook_scheme(scheme, &late.to_string(), now_s()).await;
        assert_eq!(
            fresh.json()["outcome"],
            "accepted",
            "{scheme:?}: {}",
            fresh.text
        );
        t.wait_idle().await;
        assert_eq!(t.payment(&id).await["status"], "captured");
        assert_eq!(t.balance_minor("lee").await, 800);
        t.assert_ledger_invariant().await;
        t.shutdown().await;
    }
}

async fn routed_psp(t: &TestStack, player: &str, key: &str) -> (String, Value) {
    let r = t
        .init(Some(key), &deposit_body(player, "9.00").to_string())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["payment_id"].as_str().unwrap().to_owned();
    let p = t.payment(&id).await;
    (r.json()["psp"].as_str().unwrap().to_owned(), p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psp_outage_fails_over_to_the_next_route_and_recovers() {
    let t = TestStack::start().await;
    assert_eq!(routed_psp(&t, "max", "r-0").await.0, "sandbox");
    t.set_outage("sandbox", true).await;
    for i in 0..10 {
        let (psp, p) = routed_psp(&t, "max", &format!("r-a{i}")).await;
        assert_eq!(psp, "sandbox-b");
        let attempts = p["routing"]["attempts"].as_array().unwrap();
        let summary: Vec<(&str, &str)> = attempts
            .iter()
            .map(|a| (a["psp"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [("sandbox", "unavailable"), ("sandbox-b", "session_opened")]
        );
        assert_ne!(attempts[0]["attempt_id"], attempts[1]["attempt_id"]);
    }
    // The failed-over payment completes through sandbox-b's own webhook scheme.
    let (_, p) = routed_psp(&t, "max", "r-b").await;
    let id = p["payment_id"].as_str().unwrap().to_owned();
    t.approve(&id).await;
    t.set_outage("sandbox-b", true).await;
    assert_eq!(routed_psp(&t, "max", "r-c").await.0, "sandbox-c");
    t.set_outage("sandbox-c", true).await;
    let down = t
        .init(Some("r-d"), &deposit_body("max", "9.00").to_string())
        .await;
    assert_eq!(
        (down.status, down.json()["error"].as_str()),
        (503, Some("service_unavailable"))
    );
    // Recovery: the preferred route gets the traffic again, and the key that
    // met the outage is evaluated afresh.
    t.set_outage("sandbox", false).await;
    let retry = t
        .init(Some("r-d"), &deposit_body("max", "9.00").to_string())
        .await;
    assert_eq!(
        (retry.status, retry.json()["psp"].as_str()),
        (201, Some("sandbox"))
    );
    assert_eq!(t.balance_minor("max").await, 900);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_choose_the_psp_and_refuse_what_no_route_takes() {
    let routing = r#"{"routes": [
        {"psp": "sandbox-b", "countries": ["FI"], "currencies": ["EUR"], "cost_bps": 50},
        {"psp": "sandbox", "currencies": ["EUR"], "cost_bps": 100}
    ]}"#;
    let t = TestStack::start_with(|o| o.routing = Some(routing.into())).await;
    assert_eq!(routed_psp(&t, "nia", "n-1").await.0, "sandbox-b");
    let mut se = deposit_body("nia", "9.00");
    se["meta"]["country"] = "SE".into();
    let r = t.init(Some("n-2"), &se.to_string()).await;
    assert_eq!(r.json()["psp"], "sandbox");
    let mut sek = deposit_body("nia", "90.00");
    sek["currency"] = "SEK".into();
    let r = t.init(Some("n-3"), &sek.to_string()).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("no_route"))
    );
    t.shutdown().await;
    // A routing document naming an unknown PSP stops the start with the field named.
    let bad = r#"{"routes": [{"psp": "nowhere"}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = payloop_cli::local::LocalOptions::new(dir.path());
    opts.routing = Some(bad.into());
    let err = payloop_cli::local::start(opts)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("routes[0].psp"), "{err}");
}

/// The barrier itself: `wait_idle` returns only once what was queued (a
/// webhook) and what the sandbox still had to send (the checkout's
/// `authorized` + `captured`, a failing first delivery retried) is applied,
/// with no polling for the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_returns_only_once_queue_and_sandbox_deliveries_are_done() {
    let t = TestStack::start_with(|o| {
        o.sandbox_retry_schedule = Some(vec![Duration::from_millis(100); 3]);
    })
    .await;
    let queued = t.deposit("idle-a", "12.00").await;
    assert_eq!(
        t.webhook("evt-idle", &queued, "captured", "12.00")
            .await
            .status,
        200
    );
    t.wait_idle().await;
    assert_eq!(t.payment(&queued).await["status"], "captured");
    assert_eq!(t.balance_minor("idle-a").await, 1200);

    let checkout = t.deposit("idle-b", "7.00").await;
    let r = t
        .chaos(
            "sandbox",
            serde_json::json!({"duplicate_pct": 100, "delay_ms": 50}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = t.checkout(&checkout, "approve").await;
    assert!(page.contains("Payment captured"), "{page}");
    t.wait_idle().await;
    assert_eq!(t.payment(&checkout).await["status"], "captured");
    assert_eq!(t.balance_minor("idle-b").await, 700);
    let log = t
        .get(&format!("/v1/payments/{checkout}/deliveries"), true)
        .await
        .json();
    // authorized + captured, each sent twice: those that moved it (from its
    // history) and each copy that came after its move, as a duplicate (a
    // copy racing the first is queued and applied as nothing, unlogged).
    // The capture moved it, once. The authorization did too, unless the
    // capture (sent right after it, both delayed alike) was consumed first:
    // then it applied as nothing, as forward-only status requires.
    let log = log["deliveries"].as_array().unwrap();
    let count = |o: &str| log.iter().filter(|d| d["outcome"] == o).count();
    let moved = |st: &str| {
        log.iter()
            .filter(|d| d["outcome"] == "accepted" && d["status"] == st)
            .count()
    };
    assert_eq!(moved("captured"), 1, "{log:?}");
    assert!(moved("authorized") <= 1, "{log:?}");
    assert_eq!(
        count("accepted"),
        moved("captured") + moved("authorized"),
        "{log:?}"
    );
    assert_eq!(count("accepted") + count("duplicate"), log.len(), "{log:?}");
    assert!(log.len() <= 4, "{log:?}");
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}
