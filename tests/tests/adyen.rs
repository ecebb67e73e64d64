//! The Adyen connector against Adyen's own contract: Stoplight Prism serves
//! Adyen's published OpenAPI files (Checkout v71, Transfers v4) with request
//! validation (`scripts/prism.sh`), so every request the connector sends
//! must pass Adyen's schema or the call fails with Prism's 422. End to end
//! through the local stack (what `payloop serve --psps FILE` runs): a
//! deposit opens a hosted session at "Adyen", a signed AUTHORISATION
//! credits it once, a refund and its REFUND debit once, a payout and its
//! transfer webhook settle once; duplicated and reordered notifications are
//! harmless; a wrong HMAC or missing basic auth never moves money.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use payloop::clock::Day;
use payloop::domain::policy::{PayoutPolicy, ReconPolicy};
use payloop::domain::recon::run::{self, Source};
use payloop::domain::recon::{Class, FeeRule};
use payloop::ids::PaymentId;
use payloop::ids::PspId;
use payloop::money::{Currency, Money};
use payloop::psp::{
    OperationStatus, PayoutRequest, PspConnector, PspError, RefundRequest, SessionRequest,
};
use payloop_tests::{assert_wallet_audits, deposit_body, Resp, Seen, TestStack, WAIT};
use serde_json::{json, Value};
use sha2::Sha256;

/// The notification HMAC key of the test merchant (hex).
pub const HMAC_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
pub const MERCHANT: &str = "PayloopCasinoEU";
const HOOK_USER: &str = "adyen-notifications";
const HOOK_PASSWORD: &str = "hook-password-0123";
/// What Prism answers for a session (scripts/prism.sh adds the `url`).
const PRISM_SESSION_URL: &str =
    "https://checkoutshopper-test.adyen.com/checkoutshopper/pay/session?id=CS451F2AB1ED897A94";
/// Prism's example refund reference.
const PRISM_REFUND_REFERENCE: &str = "993617894906488A";

/// The Prism endpoints (Checkout, Transfers, Payout), or `None` after
/// printing why the test is skipped. Under the test command
/// (`PAYLOOP_REQUIRE_PRISM` set) they must be there.
pub fn prism(test: &str) -> Option<(String, String, String)> {
    use std::io::Write as _;
    match (
        std::env::var("PAYLOOP_TEST_PRISM_CHECKOUT"),
        std::env::var("PAYLOOP_TEST_PRISM_TRANSFERS"),
        std::env::var("PAYLOOP_TEST_PRISM_PAYOUT"),
    ) {
        (Ok(c), Ok(t), Ok(p)) => Some((c, t, p)),
        _ => {
            assert!(
                std::env::var_os("PAYLOOP_REQUIRE_PRISM").is_none(),
                "{test}: PAYLOOP_TEST_PRISM_CHECKOUT/TRANSFERS/PAYOUT are not set but PAYLOOP_REQUIRE_PRISM \
                 requires the Adyen contract tests (scripts/test.sh starts Prism)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: run `scripts/prism.sh start` and set PAYLOOP_TEST_PRISM_CHECKOUT=\
                 http://127.0.0.1:4010 PAYLOOP_TEST_PRISM_TRANSFERS=http://127.0.0.1:4011 \
                 PAYLOOP_TEST_PRISM_PAYOUT=http://127.0.0.1:4012"
            );
            None
        }
    }
}

/// The PSP list `payloop serve --psps` reads: one Adyen entry at Prism.
pub fn psp_list(checkout: &str, transfers: &str) -> String {
    json!([{
        "id": "adyen", "kind": "adyen",
        "api_base_url": checkout, "transfers_base_url": transfers,
        "merchant_account": MERCHANT, "balance_account_id": "BA3227C223222B5B9SCR82TMV",
        "secrets": {"api_key": "AQEyhmfxK4-test-api-key", "hmac_keys": [HMAC_KEY],
                    "basic_auth": {"username": HOOK_USER, "password": HOOK_PASSWORD}}
    }])
    .to_string()
}

pub async fn start(checkout: &str, transfers: &str) -> TestStack {
    let list = psp_list(checkout, transfers);
    TestStack::start_with(move |o| {
        o.psp_list = Some(list);
        o.routing = Some(r#"{"routes": [{"psp": "adyen", "cost_bps": 20, "weight": 1}]}"#.into());
        o.payouts = PayoutPolicy {
            outcome_timeout_ms: 60_000,
            retry_after_ms: 200,
            ..PayoutPolicy::default()
        };
        o.sweep_every = Duration::from_millis(100);
    })
    .await
}

/// One notification item, signed with `key` as Adyen signs it.
pub fn item(
    code: &str,
    success: bool,
    psp_reference: &str,
    original: Option<&str>,
    merchant_reference: &str,
    value: i64,
    key: &str,
) -> Value {
    let success = if success { "true" } else { "false" };
    let signed = [
        psp_reference,
        original.unwrap_or(""),
        MERCHANT,
        merchant_reference,
        &value.to_string(),
        "EUR",
        code,
        success,
    ]
    .join(":");
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(key).unwrap()).unwrap();
    mac.update(signed.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    let mut it = json!({
        "pspReference": psp_reference, "merchantAccountCode": MERCHANT,
        "merchantReference": merchant_reference, "eventCode": code, "success": success,
        "eventDate": "2026-11-20T10:00:00+01:00",
        "amount": {"value": value, "currency": "EUR"},
        "additionalData": {"hmacSignature": sig}
    });
    if let Some(o) = original {
        it["originalReference"] = o.into();
    }
    json!({"NotificationRequestItem": it})
}

pub async fn notify(t: &TestStack, items: &[Value], auth: bool) -> Resp {
    let body = json!({"live": "false", "notificationItems": items});
    let mut req = t
        .http
        .post(t.url("/v1/payments/webhook/adyen"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if auth {
        req = req.basic_auth(HOOK_USER, Some(HOOK_PASSWORD));
    }
    t.send(req).await
}

pub async fn accepted(t: &TestStack, items: &[Value]) {
    let r = notify(t, items, true).await;
    assert_eq!((r.status, r.text.as_str()), (200, "[accepted]"));
}

async fn transfer_webhook(t: &TestStack, payout_id: &str, status: &str, key: &str) -> Resp {
    let body = json!({
        "data": {"id": "48TYZO5ZVURJ2FCW", "reference": payout_id, "status": status,
                 "amount": {"currency": "EUR", "value": -1000}, "category": "bank",
                 "direction": "outgoing", "creationDate": "2026-11-20T10:00:00+01:00"},
        "environment": "test", "timestamp": "2026-11-20T10:05:00+01:00",
        "type": "balancePlatform.transfer.updated"
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(key).unwrap()).unwrap();
    mac.update(body.as_bytes());
    let req = t
        .http
        .post(t.url("/v1/payments/webhook/adyen"))
        .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
        .header("HmacSignature", B64.encode(mac.finalize().into_bytes()))
        .header("content-type", "application/json")
        .body(body);
    t.send(req).await
}

async fn wait_available(t: &TestStack, player: &str, minor: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while t.balance_minor(player).await != minor {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{player}: balance {} not {minor}",
            t.balance_minor(player).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn payout_status(t: &TestStack, id: &str) -> Value {
    let r = t.get(&format!("/v1/payouts/{id}"), false).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// Wager the deposits (rounds of a bet and its win) and give basic KYC, so
/// a payout is allowed.
async fn ready_for_payout(t: &TestStack, player: &str, rounds: &[&str]) {
    for (i, amount) in rounds.iter().enumerate() {
        t.wager(player, &format!("r{i}"), amount).await;
    }
    let r = t
        .put_platform(
            &format!("/v1/admin/players/{player}/kyc"),
            json!({"kyc_level": "basic"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_refund_and_payout_through_adyens_contract() {
    let Some((checkout, transfers, _)) = prism("deposit_refund_and_payout_through_adyens_contract")
    else {
        return;
    };
    let t = start(&checkout, &transfers).await;

    // Deposit: a hosted session at Adyen (Prism validated the request).
    let r = t
        .init(Some("ada-1"), &deposit_body("ada", "50.00").to_string())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["psp"], "adyen");
    assert_eq!(r.json()["redirect_url"], PRISM_SESSION_URL);

    // Forged or unauthenticated notifications move nothing.
    let auth = item(
        "AUTHORISATION",
        true,
        "8816000000000001",
        None,
        &id,
        5000,
        HMAC_KEY,
    );
    let forged = item(
        "AUTHORISATION",
        true,
        "8816000000000001",
        None,
        &id,
        5000,
        &"0".repeat(64),
    );
    assert_eq!(notify(&t, &[forged], true).await.status, 401);
    assert_eq!(
        notify(&t, std::slice::from_ref(&auth), false).await.status,
        401
    );
    t.wait_idle().await;
    assert_eq!(t.payment(&id).await["status"], "pending");
    assert_eq!(t.balance_minor("ada").await, 0);

    // The signed AUTHORISATION credits once; again, and in a batch after
    // its own CAPTURE (reordered), it changes nothing.
    accepted(&t, std::slice::from_ref(&auth)).await;
    let p = t.wait_status(&id, "captured").await;
    assert_eq!(p["psp_reference"], "8816000000000001");
    wait_available(&t, "ada", 5000).await;
    let capture = item(
        "CAPTURE",
        true,
        "8816000000000002",
        Some("8816000000000001"),
        &id,
        5000,
        HMAC_KEY,
    );
    accepted(&t, &[capture, auth.clone(), auth]).await;
    t.wait_idle().await;
    assert_eq!(t.balance_minor("ada").await, 5000);

    // Refund: asked at Adyen under the payment's pspReference; the REFUND
    // notification settles it once.
    let req = t
        .http
        .post(t.url(&format!("/v1/payments/{id}/refund")))
        .bearer_auth(&t.stack.secrets.platform_key)
        .header("idempotency-key", "ada-rf-1")
        .json(&json!({"amount": "20.00", "reason": "player request"}));
    let rf = t.send(req).await;
    assert_eq!(rf.status, 201, "{}", rf.text);
    let refund_id = rf.json()["refund_id"].as_str().unwrap().to_owned();
    assert_eq!(rf.json()["psp_reference"], PRISM_REFUND_REFERENCE);
    let reference = format!("{id}.{refund_id}");
    let refund = item(
        "REFUND",
        true,
        PRISM_REFUND_REFERENCE,
        Some("8816000000000001"),
        &reference,
        2000,
        HMAC_KEY,
    );
    let forged_refund = item(
        "REFUND",
        false,
        PRISM_REFUND_REFERENCE,
        Some("8816000000000001"),
        &reference,
        2000,
        &"1".repeat(64),
    );
    assert_eq!(notify(&t, &[forged_refund], true).await.status, 401);
    accepted(&t, std::slice::from_ref(&refund)).await;
    accepted(&t, &[refund]).await;
    t.wait_idle().await;
    let w = t.get("/v1/wallet/ada", true).await.json();
    let refunds = w["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "refund")
        .count();
    assert_eq!(refunds, 1, "one refund entry: {w:#}");
    assert_eq!(t.balance_minor("ada").await, 3000);

    // A reversed chargeback is Adyen's news, not a balance change: a case.
    let reversed = item(
        "CHARGEBACK_REVERSED",
        true,
        "8816000000000005",
        Some("8816000000000001"),
        &id,
        5000,
        HMAC_KEY,
    );
    accepted(&t, &[reversed]).await;
    t.wait_idle().await;
    assert_eq!(t.balance_minor("ada").await, 3000);
    let case_key = payloop::schema::keys::case(
        &PaymentId::parse(&id).unwrap(),
        &PspId::parse("adyen").unwrap(),
        &payloop::ids::EventId::parse("CHARGEBACK_REVERSED:8816000000000005:true").unwrap(),
    );
    let case = t
        .stack
        .ctx
        .store
        .get(&case_key)
        .await
        .unwrap()
        .expect("a case");
    assert_eq!(
        case.get("kind"),
        Some(&payloop::store::Attr::from("psp_adjustment"))
    );

    // Payout through the Transfers API; the transfer webhook settles it once.
    ready_for_payout(&t, "ada", &["30.00", "20.00"]).await;
    let req = t
        .http
        .post(t.url("/v1/payouts/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", "ada-po-1")
        .json(&json!({"player_id": "ada", "amount": "10.00", "currency": "EUR", "method": "bank_transfer",
                      "destination_token": "SE322JV223222F5GKQZL7GSCB"}));
    let po = t.send(req).await;
    assert_eq!(po.status, 201, "{}", po.text);
    let payout_id = po.json()["payout_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    while payout_status(&t, &payout_id).await["status"] != "pending" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "payout never reached Adyen"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        transfer_webhook(&t, &payout_id, "booked", &"2".repeat(64))
            .await
            .status,
        401,
        "a transfer webhook under another key"
    );
    for _ in 0..2 {
        let r = transfer_webhook(&t, &payout_id, "booked", HMAC_KEY).await;
        assert_eq!((r.status, r.text.as_str()), (200, "[accepted]"));
    }
    t.wait_idle().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while payout_status(&t, &payout_id).await["status"] != "succeeded" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "payout never settled"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let w = t.get("/v1/wallet/ada", true).await.json();
    assert_eq!(w["balances"][0]["held"], "0.00", "{w:#}");
    assert_eq!(w["balances"][0]["available"], "20.00", "{w:#}");
    assert_wallet_audits(&t.stack.ctx, "ada").await;
    t.shutdown().await;
}

fn connector(checkout: &str, transfers: Option<&str>) -> std::sync::Arc<dyn PspConnector> {
    connector_with(checkout, transfers, None)
}

fn connector_with(
    checkout: &str,
    transfers: Option<&str>,
    payout_api: Option<&str>,
) -> std::sync::Arc<dyn PspConnector> {
    let mut list: Value =
        serde_json::from_str(&psp_list(checkout, transfers.unwrap_or(""))).unwrap();
    if transfers.is_none() {
        list[0]
            .as_object_mut()
            .unwrap()
            .remove("transfers_base_url");
    }
    if let Some(url) = payout_api {
        list[0]["payout_base_url"] = url.into();
    }
    let transport = payloop::psp::https::Transport::https_only().allowing_http();
    let mut c =
        payloop::runtime::listed_connectors(&list.to_string(), &transport, &|_| None).unwrap();
    c.pop().unwrap()
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// Every call the connector makes, sent to Prism serving Adyen's files:
/// each must pass Adyen's request schema (Prism answers 422 otherwise,
/// which the connector reports as a rejection).
#[tokio::test]
async fn every_connector_call_passes_adyens_schema() {
    let Some((checkout, transfers, payout_api)) =
        prism("every_connector_call_passes_adyens_schema")
    else {
        return;
    };
    let c = connector(&checkout, Some(&transfers));
    let pay = PaymentId::parse("pay_01JD0000000000000000000000").unwrap();
    for method in ["card", "pay_by_bank", "ewallet"] {
        let s = c
            .create_session(&SessionRequest {
                payment_id: &pay,
                amount: eur(1234),
                method,
                return_url: "https://casino.example/back",
            })
            .await
            .unwrap();
        assert_eq!(s.redirect_url, PRISM_SESSION_URL);
    }
    let refund = c
        .start_refund(&RefundRequest {
            refund_id: "rf_01JD0000000000000000000001",
            payment_id: &pay,
            payment_reference: "8816000000000001",
            amount: eur(500),
        })
        .await
        .unwrap();
    assert_eq!(
        (refund.reference.as_str(), refund.status),
        (PRISM_REFUND_REFERENCE, OperationStatus::Pending)
    );
    let payout = c
        .start_payout(&PayoutRequest {
            payout_id: "po_01JD0000000000000000000002",
            player_id: &payloop::ids::PlayerId::parse("pia").unwrap(),
            amount: eur(1000),
            destination_token: Some("SE322JV223222F5GKQZL7GSCB"),
        })
        .await
        .unwrap();
    assert_eq!(payout.status, OperationStatus::Pending);
    // Prism's example transfer (GET /transfers/{id}) is an internal one, booked.
    let status = c.payout_status("1W1UG35QQEBJLHZ8").await.unwrap();
    assert_eq!(status.status, OperationStatus::Succeeded);
    // Prism does validate: a field Adyen does not know is a 422.
    let raw = payloop::psp::https::local_client()
        .unwrap()
        .post(format!("{checkout}/sessions"))
        .header("X-API-Key", "k")
        .json(
            &json!({"amount": {"currency": "EUR", "value": 1}, "merchantAccount": MERCHANT,
                      "reference": "r", "returnUrl": "https://x.example", "playerId": "ada"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 422);
    // What Adyen has no API for is refused in words, never guessed.
    assert!(matches!(
        c.refund_status("993617894906488A").await,
        Err(PspError::NotFound(_))
    ));
    // Where the Payout API is configured, payouts go there (to the player's
    // stored payout details); it has no lookup.
    let via_payout_api = connector_with(&checkout, None, Some(&payout_api));
    let paid = via_payout_api
        .start_payout(&PayoutRequest {
            payout_id: "po_01JD0000000000000000000004",
            player_id: &payloop::ids::PlayerId::parse("ada").unwrap(),
            amount: eur(1000),
            destination_token: Some("8415718415172200"),
        })
        .await;
    assert!(
        matches!(&paid, Ok(op) if op.status == OperationStatus::Pending),
        "{paid:?}"
    );
    assert!(matches!(
        via_payout_api.payout_status("8415718415172200").await,
        Err(PspError::NotFound(_))
    ));
    let no_transfers = connector(&checkout, None);
    let refused = no_transfers
        .start_payout(&PayoutRequest {
            payout_id: "po_01JD0000000000000000000003",
            player_id: &payloop::ids::PlayerId::parse("pia").unwrap(),
            amount: eur(1000),
            destination_token: Some("SE322JV223222F5GKQZL7GSCB"),
        })
        .await;
    assert!(matches!(refused, Err(PspError::Rejected(_))), "{refused:?}");
}

/// The `Idempotency-Key` of every POST comes from payloop's own ids: a
/// retried call sends the same key (Adyen answers it once), another
/// payment or refund another. Seen by a local server standing in for Adyen.
#[tokio::test]
async fn retried_calls_carry_the_same_idempotency_key() {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = |seen: Arc<Mutex<Vec<String>>>, reply: Value| {
        move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            let reply = reply.clone();
            async move {
                let key = headers
                    .get("Idempotency-Key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                seen.lock().unwrap().push(key.to_owned());
                (axum::http::StatusCode::CREATED, axum::Json(reply))
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/sessions",
            post(keep(
                seen.clone(),
                json!({"id": "CS1", "url": PRISM_SESSION_URL}),
            )),
        )
        .route(
            "/payments/{reference}/refunds",
            post(keep(
                seen.clone(),
                json!({"pspReference": "RF1", "status": "received"}),
            )),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let c = connector(&base, None);
    let session = |id: &'static str| {
        let c = c.clone();
        async move {
            let pay = PaymentId::parse(id).unwrap();
            c.create_session(&SessionRequest {
                payment_id: &pay,
                amount: eur(100),
                method: "card",
                return_url: "https://casino.example/back",
            })
            .await
            .unwrap();
        }
    };
    session("pay_01JD0000000000000000000000").await;
    session("pay_01JD0000000000000000000000").await;
    session("pay_01JD0000000000000000000009").await;
    let pay = PaymentId::parse("pay_01JD0000000000000000000000").unwrap();
    for refund_id in [
        "rf_01JD0000000000000000000001",
        "rf_01JD0000000000000000000001",
    ] {
        c.start_refund(&RefundRequest {
            refund_id,
            payment_id: &pay,
            payment_reference: "8816000000000001",
            amount: eur(50),
        })
        .await
        .unwrap();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "adyen:session:pay_01JD0000000000000000000000",
            "adyen:session:pay_01JD0000000000000000000000",
            "adyen:session:pay_01JD0000000000000000000009",
            "adyen:refund:rf_01JD0000000000000000000001",
            "adyen:refund:rf_01JD0000000000000000000001",
        ]
    );
    server.abort();
}

const REPORT_HEADER: &str = "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,Modification Merchant Reference,Batch Number,Reserved4,Reserved5,Reserved6,Reserved7,Reserved8,Reserved9,Reserved10";

/// One settlement details line: `debit` / `credit` are (gross, net) in
/// major units; `fees` are commission, markup, scheme fees, interchange.
#[allow(clippy::too_many_arguments)]
fn report_line(
    psp_reference: &str,
    merchant_reference: &str,
    kind: &str,
    modification: &str,
    currency: &str,
    debit: (&str, &str),
    credit: (&str, &str),
    fees: [&str; 4],
    date: &str,
) -> String {
    format!(
        "PayloopGroup,{MERCHANT},{psp_reference},{merchant_reference},visa,{date} 14:02:11,CET,{kind},{modification},{currency},{},{},1,{currency},{},{},{},{},{},{},visa,,7,,,,,,,",
        debit.0, credit.0, debit.1, credit.1, fees[0], fees[1], fees[2], fees[3]
    )
}

fn settled(
    psp_reference: &str,
    payment: &str,
    ccy: &str,
    gross: &str,
    net: &str,
    fees: [&str; 4],
) -> String {
    report_line(
        psp_reference,
        payment,
        "Settled",
        psp_reference,
        ccy,
        ("", ""),
        (gross, net),
        fees,
        "2026-11-20",
    )
}

async fn paid(t: &TestStack, player: &str, key: &str, amount: &str, currency: &str) -> String {
    let mut body = deposit_body(player, amount);
    body["currency"] = currency.into();
    let r = t.init(Some(key), &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["payment_id"].as_str().unwrap().to_owned()
}

fn signed_in(mut it: Value, currency: &str) -> Value {
    // Re-sign the item for another currency.
    let n = &it["NotificationRequestItem"];
    let fields = [
        n["pspReference"].as_str().unwrap_or(""),
        n["originalReference"].as_str().unwrap_or(""),
        MERCHANT,
        n["merchantReference"].as_str().unwrap_or(""),
        &n["amount"]["value"].to_string(),
        currency,
        n["eventCode"].as_str().unwrap_or(""),
        n["success"].as_str().unwrap_or(""),
    ]
    .join(":");
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(HMAC_KEY).unwrap()).unwrap();
    mac.update(fields.as_bytes());
    let n = &mut it["NotificationRequestItem"];
    n["amount"]["currency"] = currency.into();
    n["additionalData"]["hmacSignature"] = B64.encode(mac.finalize().into_bytes()).into();
    it
}

/// Adyen's settlement details report (columns by header name, decimal
/// major units, four fee columns, the docs' sample row among them) read by
/// the same streaming matcher: every line classified, fees checked against
/// the schedule, a proven capture healed once, player-neutral rows skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adyen_settlement_report_reconciles_with_every_class() {
    let Some((checkout, transfers, _)) =
        prism("an_adyen_settlement_report_reconciles_with_every_class")
    else {
        return;
    };
    let t = start(&checkout, &transfers).await;
    // Deposits, each captured by its AUTHORISATION unless noted.
    let specs: [(&str, &str, &str, bool); 12] = [
        ("a", "50.00", "EUR", true),  // 0 matched
        ("b", "5.00", "GBP", true),   // 1 the docs' sample row, matched
        ("c", "20.00", "EUR", true),  // 2 matched, and refunded 5.00
        ("d", "30.00", "EUR", true),  // 3 settled as 31.00
        ("e", "10.00", "EUR", true),  // 4 settled in USD
        ("f", "15.00", "EUR", true),  // 5 never settled
        ("h", "12.00", "EUR", true),  // 6 settled twice
        ("i", "8.00", "EUR", false),  // 7 refused, yet settled
        ("k", "40.00", "EUR", true),  // 8 fees beyond the schedule
        ("l", "25.00", "EUR", false), // 9 AUTHORISATION lost: healed
        ("m", "60.00", "EUR", true),  // 10 charged back
        ("n", "7.00", "EUR", true),   // 11 matched
    ];
    let mut ids = Vec::new();
    for (i, (player, amount, ccy, _)) in specs.iter().enumerate() {
        ids.push(paid(&t, player, &format!("rc-{i}"), amount, ccy).await);
    }
    let psp_ref = |i: usize| format!("88160000000002{i:02}");
    for (i, (_, amount, ccy, captured)) in specs.iter().enumerate() {
        if i == 9 {
            continue;
        }
        let minor = payloop_tests::minor(amount);
        let it = item(
            "AUTHORISATION",
            *captured,
            &psp_ref(i),
            None,
            &ids[i],
            minor,
            HMAC_KEY,
        );
        accepted(&t, &[signed_in(it, ccy)]).await;
    }
    t.wait_idle().await;
    // A 5.00 refund of c, and the chargeback of m.
    let req = t
        .http
        .post(t.url(&format!("/v1/payments/{}/refund", ids[2])))
        .bearer_auth(&t.stack.secrets.platform_key)
        .header("idempotency-key", "rc-rf")
        .json(&json!({"amount": "5.00", "reason": "player request"}));
    let rf = t.send(req).await;
    assert_eq!(rf.status, 201, "{}", rf.text);
    let refund_ref = format!("{}.{}", ids[2], rf.json()["refund_id"].as_str().unwrap());
    accepted(
        &t,
        &[item(
            "REFUND",
            true,
            PRISM_REFUND_REFERENCE,
            Some(&psp_ref(2)),
            &refund_ref,
            500,
            HMAC_KEY,
        )],
    )
    .await;
    accepted(
        &t,
        &[item(
            "CHARGEBACK",
            true,
            "8816000000000399",
            Some(&psp_ref(10)),
            &ids[10],
            6000,
            HMAC_KEY,
        )],
    )
    .await;
    t.wait_idle().await;
    let before_heal = t.balance_minor("l").await;
    assert_eq!(before_heal, 0);

    let unknown = "pay_01JD0000000000000000000077";
    let d = "2026-11-20";
    let planted: Vec<(String, Option<Class>)> = vec![
        (
            settled(
                &psp_ref(0),
                &ids[0],
                "EUR",
                "50.00",
                "48.98",
                ["0.60", "0.22", "0.10", "0.10"],
            ),
            Some(Class::Matched),
        ),
        // The docs' sample: GBP 5.00 settled as 4.88 after 0.04 + 0.01 + 0.07.
        (
            settled(
                &psp_ref(1),
                &ids[1],
                "GBP",
                "5.00",
                "4.88",
                ["0.04", "0.01", "0.07", ""],
            ),
            Some(Class::Matched),
        ),
        (
            settled(
                &psp_ref(2),
                &ids[2],
                "EUR",
                "20.00",
                "19.58",
                ["0.30", "0.05", "0.05", "0.02"],
            ),
            Some(Class::Matched),
        ),
        (
            report_line(
                &psp_ref(2),
                &ids[2],
                "Refunded",
                PRISM_REFUND_REFERENCE,
                "EUR",
                ("5.00", "5.00"),
                ("", ""),
                ["", "", "", ""],
                d,
            ),
            Some(Class::Matched),
        ),
        (
            settled(
                &psp_ref(3),
                &ids[3],
                "EUR",
                "31.00",
                "30.36",
                ["0.64", "", "", ""],
            ),
            Some(Class::AmountMismatch),
        ),
        (
            settled(
                &psp_ref(4),
                &ids[4],
                "USD",
                "10.00",
                "9.78",
                ["0.22", "", "", ""],
            ),
            Some(Class::CurrencyMismatch),
        ),
        (
            settled(
                "8816000000000377",
                unknown,
                "EUR",
                "9.00",
                "8.80",
                ["0.20", "", "", ""],
            ),
            Some(Class::MissingInWallet),
        ),
        (
            settled(
                &psp_ref(6),
                &ids[6],
                "EUR",
                "12.00",
                "11.74",
                ["0.26", "", "", ""],
            ),
            Some(Class::Matched),
        ),
        (
            settled(
                &psp_ref(6),
                &ids[6],
                "EUR",
                "12.00",
                "11.74",
                ["0.26", "", "", ""],
            ),
            Some(Class::Duplicate),
        ),
        (
            settled(
                &psp_ref(7),
                &ids[7],
                "EUR",
                "8.00",
                "7.82",
                ["0.18", "", "", ""],
            ),
            Some(Class::StatusMismatch),
        ),
        (
            settled(
                &psp_ref(8),
                &ids[8],
                "EUR",
                "40.00",
                "38.00",
                ["1.00", "0.50", "0.30", "0.20"],
            ),
            Some(Class::FeeMismatch),
        ),
        (
            settled(
                &psp_ref(9),
                &ids[9],
                "EUR",
                "25.00",
                "24.48",
                ["0.52", "", "", ""],
            ),
            Some(Class::MissingInWallet),
        ),
        (
            settled(
                &psp_ref(10),
                &ids[10],
                "EUR",
                "60.00",
                "58.78",
                ["1.00", "0.22", "", ""],
            ),
            Some(Class::Matched),
        ),
        (
            report_line(
                &psp_ref(10),
                &ids[10],
                "Chargeback",
                "8816000000000399",
                "EUR",
                ("60.00", "60.02"),
                ("", ""),
                ["0.02", "", "", ""],
                d,
            ),
            Some(Class::Matched),
        ),
        (
            settled(
                &psp_ref(11),
                &ids[11],
                "EUR",
                "7.00",
                "6.84",
                ["0.16", "", "", ""],
            ),
            Some(Class::Matched),
        ),
        (
            report_line(
                "",
                "",
                "Fee",
                "",
                "EUR",
                ("", "0.25"),
                ("", ""),
                ["", "", "", ""],
                d,
            ),
            Some(Class::Fee),
        ),
        // Player-neutral: the merchant's own payout and a balance transfer.
        (
            report_line(
                "",
                "",
                "MerchantPayout",
                "",
                "EUR",
                ("", "150.00"),
                ("", ""),
                ["", "", "", ""],
                d,
            ),
            None,
        ),
        (
            report_line(
                "",
                "",
                "Balancetransfer",
                "",
                "EUR",
                ("", "1.00"),
                ("", ""),
                ["", "", "", ""],
                d,
            ),
            None,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settlement_detail_report_batch_7.csv");
    let mut text = format!("{REPORT_HEADER}\r\n");
    for (l, _) in &planted {
        text.push_str(l);
        text.push_str("\r\n");
    }
    std::fs::write(&path, text).unwrap();
    let expected: Vec<(u64, Class)> = planted
        .iter()
        .enumerate()
        .filter_map(|(i, (_, c))| c.map(|c| (i as u64 + 2, c)))
        .collect();

    // Adyen's fees: 2 % + 0.02 per payment (0.02 per chargeback), within a cent.
    let mut ctx = t.stack.ctx.clone();
    let mut policies = (*ctx.policies).clone();
    policies.recon = ReconPolicy {
        fees: [(
            PspId::parse("adyen").unwrap(),
            FeeRule {
                bps: 200,
                fixed_minor: 2,
            },
        )]
        .into_iter()
        .collect(),
        tolerance_minor: 1,
        ..ReconPolicy::default()
    };
    ctx.policies = Arc::new(policies);
    let day = Day::parse(d).unwrap();
    let adyen = PspId::parse("adyen").unwrap();
    let src = Source::Path(path);
    let mut seen = Seen::default();
    let report = run::reconcile_day(&ctx, &adyen, day, 1, &src, &mut seen)
        .await
        .unwrap();
    let report = serde_json::to_value(report).unwrap();
    seen.lines.sort();
    assert_eq!(seen.lines, expected, "every line's class: {report:#}");
    assert_eq!(
        seen.records,
        vec![(format!("payment:{}", ids[5]), Class::MissingAtPsp)],
        "the capture Adyen never settled"
    );
    assert_eq!(report["status"], "complete", "{report:#}");
    // The lost AUTHORISATION was healed from its settled line: credited once,
    // and the late notification credits nothing more.
    t.wait_status(&ids[9], "captured").await;
    assert_eq!(t.balance_minor("l").await, 2500);
    accepted(
        &t,
        &[item(
            "AUTHORISATION",
            true,
            &psp_ref(9),
            None,
            &ids[9],
            2500,
            HMAC_KEY,
        )],
    )
    .await;
    t.wait_idle().await;
    assert_eq!(t.balance_minor("l").await, 2500);
    // Run again in four shards: the same classes, nothing healed twice.
    let mut again = Seen::default();
    run::reconcile_day(&ctx, &adyen, day, 4, &src, &mut again)
        .await
        .unwrap();
    again.lines.sort();
    assert_eq!(again.lines, expected);
    assert_eq!(t.balance_minor("l").await, 2500);

    // A chargeback reversal weeks later: no record of ours (payloop never
    // re-credits a won dispute by itself), so it is a case for an operator.
    let later = "2026-12-11";
    let reversal = report_line(
        &psp_ref(10),
        &ids[10],
        "ChargebackReversed",
        "8816000000000401",
        "EUR",
        ("", ""),
        ("60.00", "60.00"),
        ["", "", "", ""],
        later,
    );
    let path = dir.path().join("settlement_detail_report_batch_8.csv");
    std::fs::write(&path, format!("{REPORT_HEADER}\n{reversal}\n")).unwrap();
    let mut seen = Seen::default();
    run::reconcile_day(
        &ctx,
        &adyen,
        Day::parse(later).unwrap(),
        1,
        &Source::Path(path),
        &mut seen,
    )
    .await
    .unwrap();
    assert_eq!(seen.lines, vec![(2, Class::MissingInWallet)]);
    for player in ["a", "c", "l", "m"] {
        assert_wallet_audits(&t.stack.ctx, player).await;
    }
    t.shutdown().await;
}

/// Adyen's largest batch we take (100 items) credits each payment once,
/// and the same batch again changes nothing; prints how long intake took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_credits_each_payment_once() {
    let Some((checkout, transfers, _)) = prism("a_full_batch_credits_each_payment_once") else {
        return;
    };
    let t = start(&checkout, &transfers).await;
    let max = payloop::psp::adyen::notification::MAX_ITEMS;
    let mut items = Vec::new();
    for i in 0..max {
        let r = t
            .init(
                Some(&format!("fb-{i}")),
                &deposit_body("fay", "1.00").to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json()["payment_id"].as_str().unwrap().to_owned();
        items.push(item(
            "AUTHORISATION",
            true,
            &format!("88170000000{i:05}"),
            None,
            &id,
            100,
            HMAC_KEY,
        ));
    }
    let started = std::time::Instant::now();
    accepted(&t, &items).await;
    let first = started.elapsed();
    t.wait_idle().await;
    assert_eq!(t.balance_minor("fay").await, 100 * max as i64);
    let started = std::time::Instant::now();
    accepted(&t, &items).await;
    let again = started.elapsed();
    t.wait_idle().await;
    assert_eq!(t.balance_minor("fay").await, 100 * max as i64);
    // One item too many is refused whole, naming the field.
    items.push(items[0].clone());
    let r = notify(&t, &items, true).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("notificationItems"), "{}", r.text);
    t.assert_ledger_invariant().await;
    println!(
        "adyen batch of {max} items: intake {} ms, the same batch again {} ms",
        first.as_millis(),
        again.as_millis()
    );
    t.shutdown().await;
}

/// The deployed webhook-intake Lambda takes an Adyen batch from an API
/// Gateway event (lambda_http's own decoding): `[accepted]` once queued,
/// the same batch again `[accepted]` with nothing new, a forged one 401.
#[tokio::test]
async fn the_lambda_handler_takes_an_adyen_batch() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = payloop_tests::fixture_ctx(dir.path(), None, 30_000);
    let adyen = PspId::parse("adyen").unwrap();
    let list = psp_list(
        "https://checkout-test.adyen.com/v71",
        "https://balanceplatform-api-test.adyen.com/btl/v4",
    );
    let transport = payloop::psp::https::Transport::https_only();
    let connectors = payloop::runtime::listed_connectors(&list, &transport, &|_| None).unwrap();
    let router = payloop::psp::routing::Router::in_order(std::slice::from_ref(&adyen));
    ctx.psps = Arc::new(payloop::psp::Psps::new(connectors, router).unwrap());
    let id = PaymentId::parse("pay_01JD0000000000000000000042").unwrap();
    payloop_tests::seed_pending_payment_at(&ctx, id.clone(), "lia", 2500, "adyen").await;
    let event = |items: Vec<Value>| {
        let body = json!({"live": "false", "notificationItems": items}).to_string();
        let auth = format!(
            "Basic {}",
            B64.encode(format!("{HOOK_USER}:{HOOK_PASSWORD}"))
        );
        json!({
            "version": "2.0", "routeKey": "POST /v1/payments/webhook/{psp}",
            "rawPath": "/v1/payments/webhook/adyen", "rawQueryString": "",
            "headers": {"content-type": "application/json", "authorization": auth},
            "pathParameters": {"psp": "adyen"},
            "requestContext": {"accountId": "123456789012", "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "domainPrefix": "abc123",
                "http": {"method": "POST", "path": "/v1/payments/webhook/adyen", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.10", "userAgent": "Adyen HttpClient 1.0"},
                "requestId": "req-adyen", "routeKey": "POST /v1/payments/webhook/{psp}", "stage": "$default",
                "time": "20/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_165_200_000_i64},
            "body": body, "isBase64Encoded": false
        })
        .to_string()
    };
    let call = |e: String| {
        let app = webhook_intake::app(ctx.clone());
        async move {
            let req = lambda_http::request::from_str(&e).unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let auth = item(
        "AUTHORISATION",
        true,
        "8816000000000042",
        None,
        id.as_str(),
        2500,
        HMAC_KEY,
    );
    assert_eq!(
        call(event(vec![auth.clone()])).await,
        (200, "[accepted]".to_owned())
    );
    // Queued, with no record written: the payment's status tells a later
    // copy (here still pending, so the copy is queued too and applied as
    // nothing).
    let recorded = payloop::schema::keys::accepted_event(
        &id,
        &adyen,
        &payloop::ids::EventId::parse("AUTHORISATION:8816000000000042:true").unwrap(),
    );
    assert!(
        ctx.store.get(&recorded).await.unwrap().is_none(),
        "intake writes nothing"
    );
    assert_eq!(
        call(event(vec![auth])).await,
        (200, "[accepted]".to_owned())
    );
    let forged = item(
        "AUTHORISATION",
        true,
        "8816000000000043",
        None,
        id.as_str(),
        2500,
        &"3".repeat(64),
    );
    assert_eq!(call(event(vec![forged])).await.0, 401);
}
