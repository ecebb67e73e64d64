//! Risk decisions, reviews and AML alerts end to end over HTTP: a decline
//! with its stored decision, a deposit held unopened for review then opened
//! by an operator's approval, idempotent and conflicting decisions, a
//! payout held for review then released, step-up KYC, the edge's country
//! header, and AML alerts (linked deposits reaching the CDD threshold,
//! pass-through) with their evidence, the payout hold they cause and the
//! suspicious-activity report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use payloop::domain::policy::PayoutPolicy;
use payloop::domain::risk::decision;
use payloop::domain::risk::rules::{Flow, RiskConfig, Signals};
use payloop::domain::risk::velocity;
use payloop::ids::PlayerId;
use payloop::money::{Currency, Money};
use payloop_tests::{assert_wallet_audits, deposit_body, Resp, TestStack};
use serde_json::{json, Value};

const RULES: &str = r#"{"version": "test-7", "thresholds": {"review": 50, "decline": 100},
  "rules": [
    {"id": "deny_country", "kind": "deny_list", "field": "country", "values": ["KP"], "score": 1000},
    {"id": "big_deposit", "kind": "amount_at_least", "amount": "3000.00", "currency": "EUR", "score": 50, "applies_to": ["deposit"]},
    {"id": "ip_mismatch", "kind": "country_mismatch", "score": 20},
    {"id": "fast", "kind": "velocity", "dimension": "player", "window_minutes": 60, "max_count": 3, "score": 50, "applies_to": ["deposit"]},
    {"id": "big_payout", "kind": "amount_at_least", "amount": "700.00", "currency": "EUR", "score": 50, "applies_to": ["payout"]},
    {"id": "huge_payout_kyc", "kind": "amount_at_least", "amount": "900.00", "currency": "EUR", "score": 0, "step_up_kyc": "full", "applies_to": ["payout"]}
  ]}"#;

async fn start() -> TestStack {
    TestStack::start_with(|o| {
        o.risk = RiskConfig::parse(RULES).unwrap();
        o.payouts = PayoutPolicy {
            retry_after_ms: 200,
            outcome_timeout_ms: 1_500,
            ..PayoutPolicy::default()
        };
        o.sweep_every = Duration::from_millis(100);
        o.sandbox_retry_schedule = Some(vec![Duration::from_millis(100); 5]);
        // Deposits need no wagering (the pass-through scenario's world).
        o.wagering_multiple = 0;
    })
    .await
}

async fn init_with(t: &TestStack, key: &str, body: Value, headers: &[(&str, &str)]) -> Resp {
    let mut req = t
        .http
        .post(t.url("/v1/payments/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", key)
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    t.send(req).await
}

async fn decide(t: &TestStack, id: &str, decision: &str) -> Resp {
    let body = json!({"decision": decision, "note": "checked the documents"});
    t.post_platform(
        &format!("/v1/risk/reviews/{id}/decide"),
        None,
        &body.to_string(),
    )
    .await
}

async fn payout(t: &TestStack, key: &str, player: &str, amount: &str) -> Resp {
    let body = json!({"player_id": player, "amount": amount, "currency": "EUR", "method": "card",
                      "meta": {"country": "FI"}});
    let req = t
        .http
        .post(t.url("/v1/payouts/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", key)
        .json(&body);
    t.send(req).await
}

fn rule<'a>(d: &'a Value, id: &str) -> &'a Value {
    d["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id} in {d}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_is_declined_or_held_for_review_and_opened_by_an_approval() {
    let t = start().await;
    // Declined: 403 with the decision's id, never its rules.
    let mut body = deposit_body("rita", "20.00");
    body["meta"]["country"] = json!("KP");
    let r = init_with(&t, "r-1", body, &[]).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("risk_declined")),
        "{}",
        r.text
    );
    let declined_id = r.json()["details"]["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!r.text.contains("deny_country"), "{}", r.text);
    let list = t
        .get("/v1/risk/decisions?player_id=rita&limit=10", true)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let d = list.json()["decisions"][0].clone();
    assert_eq!(
        (
            d["decision_id"].as_str(),
            d["outcome"].as_str(),
            d["version"].as_str()
        ),
        (Some(declined_id.as_str()), Some("decline"), Some("test-7"))
    );
    assert_eq!(rule(&d, "deny_country")["hit"], "hit");
    assert_eq!(rule(&d, "big_deposit")["hit"], "no_hit");
    // Held: 202 review, no PSP session, no redirect.
    let big = deposit_body("rita", "3500.00");
    let r = init_with(&t, "r-2", big.clone(), &[]).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let held = r.json();
    assert_eq!(
        (held["status"].as_str(), &held["redirect_url"]),
        (Some("review"), &Value::Null)
    );
    let id = held["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(t.payment(&id).await["status"], "review");
    // The same request again: the same answer, one review.
    let again = init_with(&t, "r-2", big, &[]).await;
    assert_eq!(
        (again.status, again.json()["payment_id"].as_str()),
        (202, Some(id.as_str()))
    );
    let open = t.get("/v1/risk/reviews", true).await.json();
    let open_ids: Vec<&str> = open["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["review_id"].as_str().unwrap())
        .collect();
    assert_eq!(open_ids, vec![id.as_str()]);
    assert_eq!(open["reviews"][0]["decision"]["outcome"], "review");
    // Approved: the intent opens at the PSP and is paid as any other.
    let ok = decide(&t, &id, "approve").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        (ok.json()["status"].as_str(), ok.json()["result"].as_str()),
        (Some("approved"), Some("opened"))
    );
    assert_eq!(ok.json()["decided_by"], "platform");
    let p = t.payment(&id).await;
    assert_eq!(p["status"], "pending", "{p}");
    assert!(
        p["redirect_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        "{p}"
    );
    assert_eq!(p["risk"]["outcome"], "review");
    t.payments.lock().unwrap().push(id.clone());
    t.approve(&id).await;
    // Idempotent: approve again changes nothing; decline now conflicts.
    let same = decide(&t, &id, "approve").await;
    assert_eq!(
        (same.status, same.json()["status"].as_str()),
        (200, Some("approved"))
    );
    let conflict = decide(&t, &id, "decline").await;
    assert_eq!(
        (conflict.status, conflict.json()["error"].as_str()),
        (409, Some("review_already_decided"))
    );
    assert!(t.get("/v1/risk/reviews", true).await.json()["reviews"]
        .as_array()
        .unwrap()
        .is_empty());
    // Another held deposit, declined: it never reaches a PSP.
    let r = init_with(&t, "r-3", deposit_body("rita", "3200.00"), &[]).await;
    let second = r.json()["payment_id"].as_str().unwrap().to_owned();
    let no = decide(&t, &second, "decline").await;
    assert_eq!(no.json()["status"], "declined", "{}", no.text);
    assert_eq!(t.payment(&second).await["status"], "declined");
    // Bad input names its field; an unknown review is 404.
    let bad = t
        .post_platform(
            &format!("/v1/risk/reviews/{second}/decide"),
            None,
            r#"{"decision": "maybe"}"#,
        )
        .await;
    assert_eq!(
        (bad.status, bad.json()["details"]["field"].as_str()),
        (422, Some("decision"))
    );
    let missing = decide(&t, "pay_01JZZZZZZZZZZZZZZZZZZZZZZZ", "approve").await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    let bad_id = decide(&t, "nope", "approve").await;
    assert_eq!(bad_id.json()["details"]["field"], "review_id");
    assert_eq!(
        t.get("/v1/risk/decisions?player_id=rita&limit=0", true)
            .await
            .status,
        422
    );
    assert_eq!(
        t.get("/v1/risk/decisions", true).await.json()["details"]["field"],
        "player_id"
    );
    assert_eq!(
        t.get("/v1/risk/decisions?player_id=rita", false)
            .await
            .status,
        401
    );
    t.wait_idle().await;
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn velocity_counts_each_request_once_and_the_edge_country_wins() {
    let t = start().await;
    // The edge says the viewer is in SE while the player is in FI: a hit
    // (20, approve), whatever the client claims in meta.
    let mut body = deposit_body("vic", "10.00");
    body["meta"]["ip_country"] = json!("FI");
    let r = init_with(&t, "v-1", body, &[("cloudfront-viewer-country", "SE")]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = &t
        .get("/v1/risk/decisions?player_id=vic&limit=1", true)
        .await
        .json()["decisions"][0];
    assert_eq!(
        (rule(d, "ip_mismatch")["hit"].as_str(), d["score"].as_i64()),
        (Some("hit"), Some(20)),
        "{d}"
    );
    assert!(rule(d, "ip_mismatch")["reason"]
        .as_str()
        .unwrap()
        .contains("SE"));
    // Three in the hour are fine; the fourth is over `fast` (review).
    for key in ["v-2", "v-3"] {
        assert_eq!(
            init_with(&t, key, deposit_body("vic", "10.00"), &[])
                .await
                .status,
            201
        );
    }
    // A retry of an earlier request is answered from its record, not recounted.
    assert_eq!(
        init_with(&t, "v-3", deposit_body("vic", "10.00"), &[])
            .await
            .status,
        201
    );
    let fourth = init_with(&t, "v-4", deposit_body("vic", "10.00"), &[]).await;
    assert_eq!(
        (fourth.status, fourth.json()["status"].as_str()),
        (202, Some("review")),
        "{}",
        fourth.text
    );
    // At the domain: deciding the same subject twice keeps the first
    // decision and counts it once.
    let ctx = &t.stack.ctx;
    let player = PlayerId::parse("vic").unwrap();
    let subject = payloop::ids::PaymentId::generate();
    let s = Signals {
        player: "vic".into(),
        amount: Some(Money::from_minor(100, Currency::EUR).unwrap()),
        method: "card".into(),
        ..Signals::default()
    };
    let now = ctx.now_ms();
    let before = velocity::window(
        ctx,
        Flow::Deposit,
        payloop::domain::risk::rules::Dimension::Player,
        "vic",
        3_600_000,
        now + 1,
    )
    .await
    .unwrap();
    let first = decision::decide(ctx, Flow::Deposit, subject.as_str(), &player, &s)
        .await
        .unwrap();
    let second = decision::decide(ctx, Flow::Deposit, subject.as_str(), &player, &s)
        .await
        .unwrap();
    assert_eq!(first, second);
    let after = velocity::window(
        ctx,
        Flow::Deposit,
        payloop::domain::risk::rules::Dimension::Player,
        "vic",
        3_600_000,
        now + 1,
    )
    .await
    .unwrap();
    assert_eq!((after.0, after.1), (before.0 + 1, before.1 + 100));
    t.shutdown().await;
}

/// Deposit and capture `amount` for `player`.
async fn funded(t: &TestStack, player: &str, amount: &str) -> String {
    let id = t.deposit(player, amount).await;
    t.approve(&id).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_under_review_keeps_its_funds_held_until_decided() {
    let t = start().await;
    funded(&t, "paula", "1000.00").await;
    t.set_kyc("paula", "basic").await;
    // 800.00 is over `big_payout`: held for review, no PSP asked.
    let r = payout(&t, "p-1", "paula", "800.00").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let po = r.json();
    assert_eq!(
        (po["status"].as_str(), po["risk"]["outcome"].as_str()),
        (Some("on_hold"), Some("review")),
        "{po}"
    );
    let id = po["payout_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.balances("paula").await,
        ("200.00".to_owned(), "800.00".to_owned())
    );
    // Declined: the hold is released, once.
    let no = decide(&t, &id, "decline").await;
    assert_eq!(
        (no.status, no.json()["status"].as_str()),
        (200, Some("declined")),
        "{}",
        no.text
    );
    let p = t.wait_payout(&id, "failed").await;
    assert_eq!(p["final_reason"], "declined in risk review");
    assert_eq!(
        t.balances("paula").await,
        ("1000.00".to_owned(), "0.00".to_owned())
    );
    assert_eq!(decide(&t, &id, "decline").await.status, 200);
    assert_eq!(decide(&t, &id, "approve").await.status, 409);
    // Approved: sent to the PSP and settled by its webhook.
    let r = payout(&t, "p-2", "paula", "750.00").await;
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["status"], "on_hold", "{}", r.text);
    assert_eq!(decide(&t, &id, "approve").await.status, 200);
    t.wait_payout(&id, "succeeded").await;
    assert_eq!(
        t.balances("paula").await,
        ("250.00".to_owned(), "0.00".to_owned())
    );
    // Step-up: 900.00 and more asks for full KYC.
    funded(&t, "paula", "1000.00").await;
    let r = payout(&t, "p-3", "paula", "950.00").await;
    assert_eq!(
        (
            r.status,
            r.json()["error"].as_str(),
            r.json()["details"]["required_level"].as_str()
        ),
        (402, Some("kyc_required"), Some("full")),
        "{}",
        r.text
    );
    t.set_kyc("paula", "full").await;
    let r = payout(&t, "p-4", "paula", "950.00").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (201, Some("on_hold")),
        "{}",
        r.text
    );
    t.wait_idle().await;
    assert_wallet_audits(&t.stack.ctx, "paula").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aml_alerts_carry_their_evidence_and_hold_payouts() {
    let t = TestStack::start_with(|o| {
        o.sweep_every = Duration::from_millis(100);
        o.wagering_multiple = 0;
    })
    .await;
    // Linked deposits reaching EUR 2 000 within 24 h: one CDD alert.
    let a = funded(&t, "amy", "1200.00").await;
    let b = funded(&t, "amy", "900.00").await;
    funded(&t, "amy", "50.00").await;
    t.wait_idle().await;
    let alerts = t.get("/v1/risk/alerts?player_id=amy", true).await;
    assert_eq!(alerts.status, 200, "{}", alerts.text);
    let list = alerts.json()["alerts"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let alert = &list[0];
    assert_eq!(
        (alert["scenario"].as_str(), alert["status"].as_str()),
        (Some("cdd_threshold"), Some("open"))
    );
    let ev = &alert["evidence"];
    assert_eq!(
        (
            ev["sum"].as_str(),
            ev["threshold"].as_str(),
            ev["count"].as_i64()
        ),
        (Some("2100.00"), Some("2000.00"), Some(2))
    );
    let txns: Vec<&str> = ev["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(txns, vec![a.as_str(), b.as_str()]);
    let alert_id = alert["alert_id"].as_str().unwrap().to_owned();
    // The suspicious-activity report, JSON and CSV.
    let sar = t
        .get(&format!("/v1/risk/alerts/{alert_id}/sar"), true)
        .await
        .json();
    assert_eq!(
        (sar["report"].as_str(), sar["subject"]["player_id"].as_str()),
        (Some("suspicious_activity"), Some("amy"))
    );
    let csv = t
        .get(&format!("/v1/risk/alerts/{alert_id}/sar?format=csv"), true)
        .await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.text.lines().count(), 3, "{}", csv.text);
    assert!(csv.text.contains(&format!("\"{a}\"")));
    assert_eq!(
        t.get(&format!("/v1/risk/alerts/{alert_id}/sar?format=pdf"), true)
            .await
            .json()["details"]["field"],
        "format"
    );
    // A CDD alert does not hold payouts; a pass-through does: 600.00 out
    // of 2 150.00 deposited with nothing wagered.
    t.set_kyc("amy", "basic").await;
    let r = payout(&t, "a-1", "amy", "600.00").await;
    assert_eq!(
        r.json()["status"].as_str().map(|s| s != "on_hold"),
        Some(true),
        "{}",
        r.text
    );
    let open = t.get("/v1/risk/alerts?status=open", true).await.json();
    let pass = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scenario"] == "pass_through")
        .cloned()
        .expect("a pass-through alert");
    assert_eq!(pass["evidence"]["wagered_since"], "0.00");
    // The next payout waits for review while that alert is open.
    let r = payout(&t, "a-2", "amy", "10.00").await;
    assert_eq!(r.json()["status"], "on_hold", "{}", r.text);
    let d = &t
        .get("/v1/risk/decisions?player_id=amy&limit=1", true)
        .await
        .json()["decisions"][0];
    assert_eq!(rule(d, "aml_open_alert")["hit"], "hit");
    // Closed by the compliance officer: payouts flow again.
    let pass_id = pass["alert_id"].as_str().unwrap();
    let closed = t
        .post_platform(
            &format!("/v1/risk/alerts/{pass_id}/close"),
            None,
            r#"{"note": "reported"}"#,
        )
        .await;
    assert_eq!(
        (closed.status, closed.json()["status"].as_str()),
        (200, Some("closed")),
        "{}",
        closed.text
    );
    let r = payout(&t, "a-3", "amy", "10.00").await;
    assert_ne!(r.json()["status"], "on_hold", "{}", r.text);
    assert!(t.get("/v1/risk/alerts?status=closed", true).await.status == 422);
    t.wait_idle().await;
    t.shutdown().await;
}
