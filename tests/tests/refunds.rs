//! Refunds and chargebacks end to end over HTTP with the sandbox PSPs: the
//! captured amount as a bound, the wallet debited once per refund or
//! chargeback (negative and flagged when the player already spent the
//! money), cases, and the daily reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use payloop::store::{Query, SkRange};
use payloop_tests::{assert_wallet_audits, TestStack, WAIT};
use serde_json::{json, Value};

async fn refund(t: &TestStack, id: &str, key: &str, amount: &str) -> payloop_tests::Resp {
    let req = t
        .http
        .post(t.url(&format!("/v1/payments/{id}/refund")))
        .bearer_auth(&t.stack.secrets.platform_key)
        .header("idempotency-key", key)
        .json(&json!({"amount": amount, "reason": "player request"}));
    t.send(req).await
}

async fn available(t: &TestStack, player: &str) -> String {
    let w = t.get(&format!("/v1/wallet/{player}"), true).await.json();
    w["balances"][0]["available"].as_str().unwrap().to_owned()
}

async fn wait_available(t: &TestStack, player: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = available(t, player).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{player}: {now}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn entries(w: &Value, kind: &str) -> Vec<Value> {
    w["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_never_exceed_the_captured_amount() {
    let t = TestStack::start().await;
    let id = t.deposit("ann", "100.00").await;
    let early = refund(&t, &id, "rf-0", "10.00").await;
    assert_eq!(
        (early.status, early.json()["error"].as_str()),
        (409, Some("payment_not_refundable"))
    );
    t.approve(&id).await;
    let r = refund(&t, &id, "rf-1", "30.00").await;
    assert_eq!(
        (r.status, &r.json()["status"]),
        (201, &json!("requested")),
        "{}",
        r.text
    );
    let again = refund(&t, &id, "rf-1", "30.00").await;
    assert_eq!(again.json(), r.json(), "the same request, the same refund");
    wait_available(&t, "ann", "70.00").await;
    let over = refund(&t, &id, "rf-2", "70.01").await;
    assert_eq!(
        (over.status, over.json()["error"].as_str()),
        (422, Some("refund_exceeds_captured"))
    );
    assert_eq!(over.json()["details"]["field"], "amount");
    assert_eq!(refund(&t, &id, "rf-3", "70.00").await.status, 201);
    wait_available(&t, "ann", "0.00").await;
    assert_eq!(
        refund(&t, &id, "rf-4", "0.01").await.status,
        422,
        "nothing left"
    );
    let w = t.get("/v1/wallet/ann", true).await.json();
    assert_eq!(entries(&w, "refund").len(), 2);
    let report = t.get("/v1/reports/refunds", true).await.json();
    assert_eq!(
        report["rows"],
        json!([{"method": "card", "currency": "EUR", "count": 2, "amount": "100.00",
                "deposits": 1, "rate_bps": 20000, "rate": "200.00%"}])
    );
    assert_wallet_audits(&t.stack.ctx, "ann").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_after_the_money_was_spent_goes_negative_and_is_flagged() {
    let t = TestStack::start().await;
    let id = t.deposit("ben", "50.00").await;
    t.approve(&id).await;
    let bet = json!({"player_id": "ben", "round_id": "br", "txn_id": "bt", "amount": "50.00", "currency": "EUR", "idempotency_key": "bt"});
    assert_eq!(
        t.post_platform("/v1/wallet/debit", None, &bet.to_string())
            .await
            .status,
        200
    );
    assert_eq!(refund(&t, &id, "rb-1", "20.00").await.status, 201);
    wait_available(&t, "ben", "-20.00").await;
    let w = t.get("/v1/wallet/ben", true).await.json();
    let r = &entries(&w, "refund")[0];
    assert_eq!(
        (&r["flagged"], &r["available_after"]),
        (&json!(true), &json!("-20.00"))
    );
    assert_wallet_audits(&t.stack.ctx, "ben").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chargeback_after_a_withdrawal_debits_once_flags_and_opens_a_case() {
    let t = TestStack::start_with(|o| o.sweep_every = Duration::from_millis(100)).await;
    let id = t.deposit("cat", "100.00").await;
    t.approve(&id).await;
    for (path, txn) in [("/v1/wallet/debit", "b"), ("/v1/wallet/credit", "w")] {
        let body = json!({"player_id": "cat", "round_id": "cr", "txn_id": txn, "amount": "100.00", "currency": "EUR", "idempotency_key": txn});
        assert_eq!(
            t.post_platform(path, None, &body.to_string()).await.status,
            200
        );
    }
    t.put_platform("/v1/admin/players/cat/kyc", json!({"kyc_level": "basic"}))
        .await;
    let body = json!({"player_id": "cat", "amount": "100.00", "currency": "EUR", "method": "card"});
    let r = t
        .http
        .post(t.url("/v1/payouts/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", "cat-po")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    wait_available(&t, "cat", "0.00").await;
    // The bank takes the deposit back, and the PSP says so twice.
    t.chaos("sandbox", json!({"duplicate_pct": 100})).await;
    t.charge_back(&id).await;
    wait_available(&t, "cat", "-100.00").await;
    t.wait_idle().await;
    assert_eq!(available(&t, "cat").await, "-100.00", "debited once");
    let w = t.get("/v1/wallet/cat", true).await.json();
    let cbs = entries(&w, "chargeback");
    assert_eq!(cbs.len(), 1);
    assert_eq!(cbs[0]["flagged"], true);
    let mut cases = Vec::new();
    for _ in 0..100 {
        cases = t
            .stack
            .ctx
            .store
            .query(&Query::new(
                format!("PAY#{id}"),
                SkRange::Prefix("CASE#".into()),
                10,
            ))
            .await
            .unwrap()
            .items;
        if !cases.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["kind"].as_str(), Some("chargeback"));
    let report = t.get("/v1/reports/chargebacks", true).await.json();
    assert_eq!(report["rows"][0]["count"], 1);
    assert_eq!(report["rows"][0]["rate"], "100.00%");
    assert_eq!(
        refund(&t, &id, "cb-rf", "1.00").await.status,
        409,
        "charged back: no refund"
    );
    assert_wallet_audits(&t.stack.ctx, "cat").await;
    t.shutdown().await;
}

/// The refund the PSP could not take (503) is kept, not failed: the client's
/// retry with the same key, as the 503 told it, asks the PSP again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_psp_could_not_take_is_asked_again_on_the_retry() {
    let t = TestStack::start().await;
    let id = t.deposit("dan", "50.00").await;
    t.approve(&id).await;
    wait_available(&t, "dan", "50.00").await;
    t.chaos("sandbox", json!({"api_error_pct": 100})).await;
    let first = refund(&t, &id, "dan-rf", "10.00").await;
    assert_eq!(
        (first.status, first.json()["details"]["retryable"].as_bool()),
        (503, Some(true)),
        "{}",
        first.text
    );
    assert!(
        !first.text.contains("sandbox"),
        "no PSP text: {}",
        first.text
    );
    t.chaos("sandbox", json!({"api_error_pct": 0})).await;
    let retry = refund(&t, &id, "dan-rf", "10.00").await;
    assert_eq!(
        (retry.status, &retry.json()["status"]),
        (201, &json!("requested")),
        "{}",
        retry.text
    );
    assert!(retry.json()["psp_reference"].is_string(), "{}", retry.text);
    wait_available(&t, "dan", "40.00").await;
    assert_wallet_audits(&t.stack.ctx, "dan").await;
    t.shutdown().await;
}

/// A PSP's rejection is its own error code, without the PSP's words, and
/// not a validation error on the client's amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_psp_rejects_is_failed_without_its_text() {
    let t = TestStack::start().await;
    let id = t.deposit("eve", "50.00").await;
    t.approve(&id).await;
    wait_available(&t, "eve", "50.00").await;
    // The sandbox forgets its books: it no longer knows the payment.
    t.stack.sandbox("sandbox").unwrap().forget_charges();
    let r = refund(&t, &id, "eve-rf", "10.00").await;
    let body = r.json();
    assert_eq!(
        (
            r.status,
            body["error"].as_str(),
            body["details"]["retryable"].as_bool()
        ),
        (502, Some("psp_rejected"), Some(false)),
        "{}",
        r.text
    );
    assert!(body["details"].get("field").is_none(), "{}", r.text);
    assert!(!r.text.to_lowercase().contains("sandbox"), "{}", r.text);
    assert_eq!(available(&t, "eve").await, "50.00");
    t.shutdown().await;
}

/// The refund's outcome webhook never comes: after the outcome timeout the
/// sweep asks the PSP's refund status API and applies the answer, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_whose_webhook_is_lost_is_settled_from_the_status_api() {
    let t = TestStack::start_with(|o| {
        o.payouts = payloop::domain::policy::PayoutPolicy {
            outcome_timeout_ms: 1_000,
            retry_after_ms: 200,
            ..Default::default()
        };
        o.sweep_every = Duration::from_millis(100);
    })
    .await;
    let id = t.deposit("fay", "50.00").await;
    t.approve(&id).await;
    wait_available(&t, "fay", "50.00").await;
    t.chaos("sandbox", json!({"drop_pct": 100})).await;
    let r = refund(&t, &id, "fay-rf", "20.00").await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_available(&t, "fay", "30.00").await;
    t.chaos("sandbox", json!({"drop_pct": 0})).await;
    t.wait_idle().await;
    assert_eq!(available(&t, "fay").await, "30.00", "debited once");
    let w = t.get("/v1/wallet/fay", true).await.json();
    assert_eq!(entries(&w, "refund").len(), 1);
    assert_wallet_audits(&t.stack.ctx, "fay").await;
    t.shutdown().await;
}
