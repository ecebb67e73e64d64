//! Payouts end to end over HTTP with the sandbox PSPs: checks, two-phase
//! holds, settle and release by webhook, duplicates and reordering, deferral
//! while the PSP is down, the timeout path through the status API, and the
//! wallet audit after every scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use payloop::domain::policy::PayoutPolicy;
use payloop::queue::QueueName;
use payloop_tests::{assert_wallet_audits, TestStack, WAIT};
use serde_json::{json, Value};

fn quick_policy() -> PayoutPolicy {
    PayoutPolicy {
        outcome_timeout_ms: 1_500,
        retry_after_ms: 200,
        ..PayoutPolicy::default()
    }
}

async fn start() -> TestStack {
    TestStack::start_with(|o| {
        o.payouts = quick_policy();
        o.sweep_every = Duration::from_millis(100);
        o.sandbox_retry_schedule = Some(vec![Duration::from_millis(100); 5]);
    })
    .await
}

/// Deposit `amount`, wager it once (bet then win it back), basic KYC.
async fn ready(t: &TestStack, player: &str, amount: &str) {
    let id = t.deposit(player, amount).await;
    t.approve(&id).await;
    t.wager(player, "r", amount).await;
    t.set_kyc(player, "basic").await;
}

async fn payout(
    t: &TestStack,
    key: &str,
    player: &str,
    amount: &str,
    token: Option<&str>,
) -> payloop_tests::Resp {
    let mut body =
        json!({"player_id": player, "amount": amount, "currency": "EUR", "method": "card"});
    if let Some(tok) = token {
        body["destination_token"] = tok.into();
    }
    let req = t
        .http
        .post(t.url("/v1/payouts/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", key)
        .json(&body);
    t.send(req).await
}

fn kinds(w: &Value) -> Vec<String> {
    w["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_is_held_then_settled_by_the_psp_webhook() {
    let t = start().await;
    ready(&t, "pam", "100.00").await;
    let r = payout(&t, "po-1", "pam", "40.00", None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let p = r.json();
    assert_eq!(p["status"], "pending");
    assert!(
        p["route_reason"]
            .as_str()
            .unwrap()
            .starts_with("closed loop: deposit pay_"),
        "{p}"
    );
    assert_eq!(
        t.balances("pam").await,
        ("60.00".into(), "40.00".into()),
        "held, not spendable"
    );
    let id = p["payout_id"].as_str().unwrap().to_owned();
    // A retry of the same request answers the same payout.
    let again = payout(&t, "po-1", "pam", "40.00", None).await;
    assert_eq!(again.json()["payout_id"], id.as_str());
    let done = t.wait_payout(&id, "succeeded").await;
    assert!(done["history"].as_array().unwrap().len() >= 3, "{done}");
    assert_eq!(t.balances("pam").await, ("60.00".into(), "0.00".into()));
    let w = t.get("/v1/wallet/pam", true).await.json();
    let k = kinds(&w);
    assert_eq!(&k[k.len() - 2..], ["hold", "hold_settled"]);
    assert_wallet_audits(&t.stack.ctx, "pam").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payout_check_has_its_own_error() {
    let t = TestStack::start_with(|o| {
        o.payouts = PayoutPolicy {
            max_per_payout_minor: 50_000,
            max_per_day_minor: 50_000,
            basic_kyc_max_minor: 20_000,
            ..quick_policy()
        };
    })
    .await;
    let id = t.deposit("quin", "100.00").await;
    t.approve(&id).await;
    t.set_kyc("quin", "basic").await;
    // Not wagered yet: the amount still to wager is in details.
    let r = payout(&t, "c-1", "quin", "10.00", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (402, Some("wagering_incomplete")),
        "{}",
        r.text
    );
    assert_eq!(r.json()["details"]["to_wager"], "100.00");
    for (path, txn) in [("/v1/wallet/debit", "b"), ("/v1/wallet/credit", "w")] {
        let body = json!({"player_id": "quin", "round_id": "qr", "txn_id": txn, "amount": "100.00", "currency": "EUR", "idempotency_key": txn});
        assert_eq!(
            t.post_platform(path, None, &body.to_string()).await.status,
            200
        );
    }
    let r = payout(&t, "c-2", "quin", "500.01", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("payout_limit"))
    );
    assert_eq!(r.json()["details"]["field"], "amount");
    // Above the basic-KYC amount: step-up KYC.
    let r = payout(&t, "c-3", "quin", "250.00", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (402, Some("kyc_required"))
    );
    assert_eq!(r.json()["details"]["required_level"], "full");
    t.set_kyc("quin", "full").await;
    let r = payout(&t, "c-4", "quin", "100.01", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (402, Some("insufficient_funds"))
    );
    assert_eq!(r.json()["details"]["available"], "100.00");
    // Daily limit 500.00: more deposits, then payouts up to and past it.
    for n in 0..5 {
        let id = t.deposit("quin", "100.00").await;
        t.approve(&id).await;
        let body = json!({"player_id": "quin", "round_id": format!("qr{n}"), "txn_id": format!("b{n}"), "amount": "100.00", "currency": "EUR", "idempotency_key": format!("b{n}")});
        t.post_platform("/v1/wallet/debit", None, &body.to_string())
            .await;
        let body = json!({"player_id": "quin", "round_id": format!("qr{n}"), "txn_id": format!("w{n}"), "amount": "100.00", "currency": "EUR", "idempotency_key": format!("w{n}")});
        t.post_platform("/v1/wallet/credit", None, &body.to_string())
            .await;
    }
    assert_eq!(payout(&t, "c-5", "quin", "400.00", None).await.status, 201);
    let r = payout(&t, "c-6", "quin", "100.01", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (402, Some("daily_limit_reached")),
        "{}",
        r.text
    );
    assert_eq!(
        payout(&t, "c-7", "quin", "100.00", None).await.status,
        201,
        "exactly at the limit"
    );
    // Refused payouts held nothing: 600 in, 500 held or paid.
    assert_eq!(t.balances("quin").await.0, "100.00");
    assert_wallet_audits(&t.stack.ctx, "quin").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_payouts_over_the_balance_exactly_one_wins() {
    let t = Arc::new(start().await);
    ready(&t, "ray", "100.00").await;
    let (a, b) = tokio::join!(
        payout(&t, "cc-a", "ray", "70.00", None),
        payout(&t, "cc-b", "ray", "70.00", None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 402], "{} / {}", a.text, b.text);
    let (avail, held) = t.balances("ray").await;
    assert_eq!((avail.as_str(), held.as_str()), ("30.00", "70.00"));
    assert_wallet_audits(&t.stack.ctx, "ray").await;
    Arc::try_unwrap(t).ok().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payout_releases_the_hold_and_notifies_the_player() {
    let t = start().await;
    ready(&t, "sue", "50.00").await;
    let r = payout(&t, "f-1", "sue", "20.00", Some("tok_fail")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    let p = t.wait_payout(&id, "failed").await;
    assert!(
        p["final_reason"].as_str().unwrap().contains("failed"),
        "{p}"
    );
    assert_eq!(t.balances("sue").await, ("50.00".into(), "0.00".into()));
    let w = t.get("/v1/wallet/sue", true).await.json();
    let k = kinds(&w);
    assert_eq!(&k[k.len() - 2..], ["hold", "hold_released"]);
    let msgs = t
        .stack
        .ctx
        .queue
        .receive(
            QueueName::Notifications,
            10,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let n: Value = serde_json::from_str(&msgs[0].body).unwrap();
    assert_eq!(
        (n["type"].as_str(), n["payout_id"].as_str()),
        (Some("payout_failed"), Some(id.as_str()))
    );
    assert_wallet_audits(&t.stack.ctx, "sue").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_and_contradicting_payout_webhooks_change_nothing() {
    let t = start().await;
    ready(&t, "tim", "80.00").await;
    t.chaos(
        "sandbox",
        json!({"duplicate_pct": 100, "reorder_pct": 100, "delay_ms": 20}),
    )
    .await;
    let r = payout(&t, "d-1", "tim", "30.00", None).await;
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    t.wait_payout(&id, "succeeded").await;
    t.wait_idle().await;
    assert_eq!(t.balances("tim").await, ("50.00".into(), "0.00".into()));
    // A late "failed" for a payout that succeeded: a case, no money.
    let body =
        json!({"event_id": "late-fail", "type": "payout", "payout_id": id, "status": "failed",
                      "amount": "30.00", "currency": "EUR", "timestamp": payloop::clock::now_s()})
        .to_string();
    let r = t.webhook_signed(&body, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    t.wait_idle().await;
    assert_eq!(t.payout_view(&id).await["status"], "succeeded");
    assert_eq!(t.balances("tim").await, ("50.00".into(), "0.00".into()));
    assert_wallet_audits(&t.stack.ctx, "tim").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_wait_out_an_outage_or_a_degradation_instead_of_failing() {
    let t = start().await;
    ready(&t, "uma", "90.00").await;
    t.set_outage("sandbox", true).await;
    let r = payout(&t, "o-1", "uma", "30.00", None).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (201, Some("deferred")),
        "{}",
        r.text
    );
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.balances("uma").await,
        ("60.00".into(), "30.00".into()),
        "held while deferred"
    );
    // The sweep tries again (a second deferral in the history), still down.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = t.payout_view(&id).await;
        let deferrals = p["history"]
            .to_string()
            .matches("deferred: PSP unavailable")
            .count();
        if deferrals >= 2 {
            assert_eq!(p["status"], "deferred", "retried, still down: {p}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never retried: {p}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    t.set_outage("sandbox", false).await;
    t.wait_payout(&id, "succeeded").await;
    // Degradation mode defers too, until it is switched off.
    t.put_platform("/v1/admin/degradation", json!({"degraded": true}))
        .await;
    let r = payout(&t, "o-2", "uma", "10.00", None).await;
    assert_eq!(r.json()["status"], "deferred");
    let id2 = r.json()["payout_id"].as_str().unwrap().to_owned();
    t.put_platform("/v1/admin/degradation", json!({"degraded": false}))
        .await;
    t.wait_payout(&id2, "succeeded").await;
    assert_eq!(t.balances("uma").await, ("50.00".into(), "0.00".into()));
    assert_wallet_audits(&t.stack.ctx, "uma").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_without_outcome_is_asked_at_the_psp_then_held_for_review() {
    let t = start().await;
    ready(&t, "vic", "60.00").await;
    // Every webhook is lost: after the timeout the status API answers.
    t.chaos("sandbox", json!({"drop_pct": 100})).await;
    let r = payout(&t, "t-1", "vic", "25.00", None).await;
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    let p = t.wait_payout(&id, "succeeded").await;
    assert!(p["history"].to_string().contains("status_api"), "{p}");
    // Lost webhooks AND the PSP down when asked: never released, flagged.
    let r = payout(&t, "t-2", "vic", "10.00", None).await;
    let id2 = r.json()["payout_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["status"], "pending");
    t.set_outage("sandbox", true).await;
    let p = t.wait_payout(&id2, "review").await;
    assert_eq!(p["flagged"], true);
    assert_eq!(
        t.balances("vic").await,
        ("25.00".into(), "10.00".into()),
        "still held"
    );
    assert_wallet_audits(&t.stack.ctx, "vic").await;
    t.shutdown().await;
}
