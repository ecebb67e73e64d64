//! The sandbox PSPs as real HTTP servers, driven through the connector trait
//! and the hosted checkout: payouts, refunds, status, settlement CSV,
//! webhook retries, chaos knobs, and the 500-deposit chaos run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use payloop::clock::Day;
use payloop::ids::PspId;
use payloop::money::{Currency, Money};
use payloop::psp::{PayoutRequest, PspError, RefundRequest};
use payloop_tests::{deposit_body, TestStack};
use serde_json::{json, Value};

fn eur(text: &str) -> Money {
    Money::parse_decimal(text, Currency::parse("EUR").unwrap()).unwrap()
}

/// Retries every 100 ms, eight times: a PSP's schedule, compressed.
fn quick_retries() -> Vec<Duration> {
    vec![Duration::from_millis(100); 8]
}

async fn sandbox_get(t: &TestStack, psp: &str, path: &str) -> Value {
    let s = t.stack.sandbox(psp).unwrap();
    t.http
        .get(format!("{}{path}", s.base_url))
        .bearer_auth(&t.stack.secrets.psp_api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn read_report(t: &TestStack, psp: &str, day: Day) -> String {
    let connector = t.stack.ctx.psps.get(&PspId::parse(psp).unwrap()).unwrap();
    let mut chunks = connector.settlement_report(day).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = chunks.next_chunk().await.unwrap() {
        out.extend_from_slice(&c);
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_drives_payouts_refunds_status_and_settlement() {
    let t = TestStack::start_with(|o| o.sandbox_retry_schedule = Some(quick_retries())).await;
    let psp = PspId::parse("sandbox").unwrap();
    let connector = t.stack.ctx.psps.get(&psp).unwrap().clone();
    let id = t.deposit("pia", "40.00").await;
    let p = t.approve(&id).await;
    let reference = p["psp_reference"].as_str().unwrap().to_owned();
    let remote = connector.payment_status(&reference).await.unwrap();
    assert_eq!(
        (
            remote.status.as_str(),
            remote.payment_id.as_str(),
            remote.amount
        ),
        ("captured", id.as_str(), eur("40.00"))
    );
    assert!(matches!(
        connector.payment_status("sandbox_nope").await,
        Err(PspError::NotFound(_))
    ));
    // Refunds: partial, idempotent per refund id, never above the capture.
    let payment_id = payloop::ids::PaymentId::parse(&id).unwrap();
    let refund = |refund_id: &'static str, amount: &'static str| {
        let connector = connector.clone();
        let reference = reference.clone();
        let payment_id = payment_id.clone();
        async move {
            connector
                .start_refund(&RefundRequest {
                    refund_id,
                    payment_id: &payment_id,
                    payment_reference: &reference,
                    amount: eur(amount),
                })
                .await
        }
    };
    let r1 = refund("rf-1", "15.00").await.unwrap();
    assert_eq!(r1.status, payloop::psp::OperationStatus::Succeeded);
    assert_eq!(
        refund("rf-1", "15.00").await.unwrap(),
        r1,
        "same refund id, same refund"
    );
    let over = refund("rf-2", "25.01").await.unwrap_err();
    assert!(
        matches!(&over, PspError::Rejected(m) if m.contains("refundable")),
        "{over:?}"
    );
    refund("rf-3", "25.00").await.unwrap();
    // Payouts: accepted, then completed by the PSP and announced by webhook.
    let payout = connector
        .start_payout(&PayoutRequest {
            payout_id: "po-1",
            player_id: &payloop::ids::PlayerId::parse("pia").unwrap(),
            amount: eur("12.00"),
            destination_token: None,
        })
        .await
        .unwrap();
    assert_eq!(payout.status, payloop::psp::OperationStatus::Pending);
    let failing = connector
        .start_payout(&PayoutRequest {
            payout_id: "po-2",
            player_id: &payloop::ids::PlayerId::parse("pia").unwrap(),
            amount: eur("1.00"),
            destination_token: Some("tok_fail"),
        })
        .await
        .unwrap();
    let mut done = BTreeMap::new();
    for _ in 0..100 {
        for r in [&payout.reference, &failing.reference] {
            let v = sandbox_get(&t, "sandbox", &format!("/v1/payouts/{r}")).await;
            done.insert(r.clone(), v["status"].as_str().unwrap().to_owned());
        }
        if done.values().all(|s| s != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done[&payout.reference], "succeeded");
    assert_eq!(done[&failing.reference], "failed");
    // The day's settlement report: the capture with its 1.5% fee, both refunds.
    let csv = read_report(&t, "sandbox", Day::today()).await;
    let today = Day::today().to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], payloop::psp::wire::SETTLEMENT_HEADER);
    assert!(
        lines.contains(&format!("{reference},{id},payment,40.00,0.60,39.40,EUR,{today}").as_str()),
        "{csv}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(",refund,")).count(),
        2,
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",refund,-15.00,0.00,-15.00,EUR,")),
        "{csv}"
    );
    let tomorrow = read_report(&t, "sandbox", Day::today().next()).await;
    assert_eq!(tomorrow.lines().count(), 1, "only the header: {tomorrow}");
    // Chargebacks and account fees are report lines too.
    let s = t.stack.sandbox("sandbox").unwrap();
    let post = |path: &'static str, body: Value| {
        t.http
            .post(format!("{}{path}", s.base_url))
            .bearer_auth(&t.stack.secrets.psp_api_key)
            .json(&body)
            .send()
    };
    assert_eq!(
        post("/admin/chargebacks", json!({"reference": reference}))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        post("/admin/fees", json!({"amount": "9.99", "currency": "EUR"}))
            .await
            .unwrap()
            .status(),
        201
    );
    let csv = read_report(&t, "sandbox", Day::today()).await;
    assert!(
        csv.contains(&format!("cb_{reference},{id},chargeback,-40.00,")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",,fee,0.00,9.99,-9.99,EUR,")),
        "{csv}"
    );
    // payloop hears of all of it: the chargeback moves the payment and the
    // wallet; the refunds it never asked for become cases, moving nothing.
    t.wait_status(&id, "charged_back").await;
    assert_eq!(t.balance_minor("pia").await, 0);
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let cases = t
            .stack
            .ctx
            .store
            .query(&payloop::store::Query::new(
                format!("PAY#{id}"),
                payloop::store::SkRange::Prefix("CASE#".into()),
                10,
            ))
            .await
            .unwrap()
            .items;
        kinds = cases
            .iter()
            .filter_map(|c| c["kind"].as_str().map(str::to_owned))
            .collect();
        if kinds.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kinds.sort();
    assert_eq!(kinds, ["chargeback", "unknown_refund", "unknown_refund"]);
    payloop_tests::assert_wallet_audits(&t.stack.ctx, "pia").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_on_the_schedule_until_accepted() {
    let t = TestStack::start_with(|o| o.sandbox_retry_schedule = Some(quick_retries())).await;
    let r = t
        .chaos("sandbox", json!({"wrong_signature_pct": 100}))
        .await;
    assert_eq!(r.json()["wrong_signature_pct"], 100);
    let id = t.deposit("rob", "7.00").await;
    let done = t.checkout(&id, "approve").await;
    assert!(done.contains("Payment captured"), "{done}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        t.payment(&id).await["status"],
        "pending",
        "nothing verified yet"
    );
    t.chaos("sandbox", json!({"wrong_signature_pct": 0})).await;
    t.wait_status(&id, "captured").await;
    assert_eq!(t.balance_minor("rob").await, 700);
    // The PSP's own log: 401s, then the 200 that ended the retries.
    let mut log = Value::Null;
    for _ in 0..100 {
        log = sandbox_get(&t, "sandbox", "/admin/deliveries").await;
        if log["deliveries"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for d in log["deliveries"].as_array().unwrap() {
        let attempts: Vec<u64> = d["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_u64().unwrap())
            .collect();
        assert_eq!(d["outcome"], "delivered", "{d}");
        assert!(attempts.len() >= 2, "{d}");
        assert_eq!(attempts.last(), Some(&200));
        assert!(
            attempts[..attempts.len() - 1].iter().all(|a| *a == 401),
            "{d}"
        );
    }
    // Our side logged the refused attempts as unverified deliveries.
    let dl = t
        .get(&format!("/v1/payments/{id}/deliveries"), true)
        .await
        .json();
    let unverified = dl["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verified"] == false)
        .count();
    assert!(unverified >= 2, "{dl}");
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandon_wrong_codes_and_api_errors_behave_like_a_psp() {
    let t = TestStack::start().await;
    let id = t.deposit("abe", "3.00").await;
    let done = t.checkout(&id, "abandon").await;
    assert!(done.contains("Payment canceled"), "{done}");
    t.wait_status(&id, "canceled").await;
    // A decided checkout cannot be decided again.
    let again = t.checkout_page_post(&id, "approve", "otp=1234").await;
    assert!(again.contains("Payment canceled"), "{again}");
    // A wrong 3-D Secure code approves nothing.
    let id2 = t.deposit("abe", "4.00").await;
    let wrong = t.checkout_page_post(&id2, "approve", "otp=9999").await;
    assert!(wrong.contains("Wrong code"), "{wrong}");
    assert_eq!(t.payment(&id2).await["status"], "pending");
    t.approve(&id2).await;
    assert_eq!(t.balance_minor("abe").await, 400);
    // API errors at A cascade to B.
    t.chaos("sandbox", json!({"api_error_pct": 100})).await;
    let r = t
        .init(Some("ae-1"), &deposit_body("abe", "1.00").to_string())
        .await;
    assert_eq!(r.json()["psp"], "sandbox-b", "{}", r.text);
    // Knobs are validated, and only the API key may turn them.
    let bad = t.chaos("sandbox", json!({"drop_pct": 150})).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("drop_pct"), "{}", bad.text);
    let s = t.stack.sandbox("sandbox").unwrap();
    let anon = t
        .http
        .post(format!("{}/admin/chaos", s.base_url))
        .json(&json!({"outage": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}

/// One player's expected end state in the chaos run.
#[derive(Default)]
struct Expect {
    approved_minor: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_run_500_deposits_with_duplicates_reordering_and_delays() {
    let t = Arc::new(
        TestStack::start_with(|o| {
            o.sandbox_retry_schedule = Some(quick_retries());
            o.pollers = 4;
            // Spread deposits over all three PSPs and their three schemes.
            o.routing = Some(
                r#"{"routes": [
                    {"psp": "sandbox", "cost_bps": 10, "weight": 1},
                    {"psp": "sandbox-b", "cost_bps": 10, "weight": 1},
                    {"psp": "sandbox-c", "cost_bps": 10, "weight": 1}
                ]}"#
                .into(),
            );
        })
        .await,
    );
    for psp in ["sandbox", "sandbox-b", "sandbox-c"] {
        let r = t
            .chaos(
                psp,
                json!({"duplicate_pct": 50, "reorder_pct": 50, "delay_ms": 40}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    const N: usize = 500;
    const PLAYERS: usize = 25;
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..N {
        let (t, sem) = (Arc::clone(&t), Arc::clone(&sem));
        tasks.spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let player = format!("chaos-{}", i % PLAYERS);
            let amount = format!("{}.{:02}", 1 + i % 50, i % 100);
            let id = t.deposit(&player, &amount).await;
            let action = ["approve", "approve", "approve", "decline", "abandon"][i % 5];
            let page = t.checkout(&id, action).await;
            assert!(page.contains("Payment "), "{page}");
            let final_status = match action {
                "approve" => "captured",
                "decline" => "failed",
                _ => "canceled",
            };
            (player, id, payloop_tests::minor(&amount), final_status)
        });
    }
    let mut expect: BTreeMap<String, Expect> = BTreeMap::new();
    let mut finals = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (player, id, minor, status) = done.unwrap();
        if status == "captured" {
            expect.entry(player.clone()).or_default().approved_minor += minor;
        }
        finals.push((id, status));
    }
    assert_eq!(finals.len(), N);
    for (id, status) in &finals {
        t.wait_status(id, status).await;
    }
    // Late duplicates and reordered events must not move anything more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for p in 0..PLAYERS {
        let player = format!("chaos-{p}");
        let want = expect.get(&player).map_or(0, |e| e.approved_minor);
        assert_eq!(t.balance_minor(&player).await, want, "{player}");
    }
    let mut duplicates = 0;
    for psp in ["sandbox", "sandbox-b", "sandbox-c"] {
        let log = sandbox_get(&t, psp, "/admin/deliveries?limit=1000").await;
        duplicates += log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["duplicate"] == true)
            .count();
    }
    assert!(
        duplicates > 50,
        "chaos really duplicated deliveries ({duplicates})"
    );
    t.assert_ledger_invariant().await;
    Arc::try_unwrap(t).ok().unwrap().shutdown().await;
}
