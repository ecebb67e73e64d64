//! The Google redirect-FOP facade on `payloop serve` (plaintext codec):
//! echo, a redirect payment opened through payloop's routing and paid on
//! the sandbox PSP's page, its status, both path forms, and Google's rules
//! (stored answer replayed, 412 for other content, ±60 s, no card, errors
//! never 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use payloop::store::ItemExt;
use payloop_tests::TestStack;
use serde_json::{json, Value};

const ACCOUNT: &str = "piaid-test-1";

fn header(id: &str) -> Value {
    json!({"requestId": id, "requestTimestamp": {"epochMillis": payloop::clock::now_ms().to_string()},
           "protocolVersion": {"major": 1}, "paymentIntegratorAccountId": ACCOUNT})
}

async fn call(t: &TestStack, path: &str, body: &Value) -> (u16, Value) {
    let r = t
        .send(
            t.http
                .post(t.url(path))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
    let v: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
    (r.status, v)
}

fn generate_body(id: &str, fop: Value) -> Value {
    json!({"requestHeader": header(id),
           "transactionAmount": {"amountMicros": "12500000", "currencyCode": "EUR"},
           "transactionDescription": "Top-up", "formOfPayment": fop,
           "callbackUrl": "https://pay.google.example/callback"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_payment_is_opened_paid_on_the_psp_and_reported() {
    let t = TestStack::start().await;
    let (s, v) = call(
        &t,
        "/v1/echo",
        &json!({"requestHeader": header("echo-1"), "clientMessage": "ping"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["clientMessage"], "ping");
    assert!(v["responseHeader"]["responseTimestamp"]["epochMillis"].is_string());

    let body = generate_body("gen-1", json!({"noneChosen": {}}));
    let path = "/v1/payment-integrator-redirect/generateRedirectPaymentUrl";
    let (s, v) = call(&t, path, &body).await;
    assert_eq!(s, 200, "{v}");
    let url = v["result"]["success"]["redirectDetails"]["getMethod"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.contains("/checkout/"), "{url}");
    // A retry (new timestamp, same content) on the other path form: the same answer.
    let mut retry = body.clone();
    retry["requestHeader"] = header("gen-1");
    let (s2, v2) = call(&t, "/redirect-fop-v1/generateRedirectPaymentUrl", &retry).await;
    assert_eq!((s2, &v2["result"]), (200, &v["result"]));
    // The same requestId, other content.
    let mut other = body.clone();
    other["transactionAmount"]["amountMicros"] = json!("99000000");
    let (s, e) = call(&t, path, &other).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (412, Some("IDEMPOTENCY_VIOLATION"))
    );

    // Pending until the user pays at the PSP.
    let status = |id: &str| json!({"requestHeader": header(id), "redirectRequestId": "gen-1"});
    let (s, v) = call(
        &t,
        "/redirect-fop-v1/getRedirectPaymentStatus",
        &status("st-1"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], json!({"pending": {}}));
    assert_eq!(v["formOfPayment"], json!({"noneChosen": {}}));
    let found = t
        .stack
        .ctx
        .store
        .get(&payloop::schema::keys::gsp_redirect(ACCOUNT, "gen-1"))
        .await
        .unwrap()
        .unwrap();
    let payment = found.str_attr("payment_id").unwrap().to_owned();
    t.approve(&payment).await;
    let (s, v) = call(
        &t,
        "/v1/payment-integrator-redirect/getRedirectPaymentStatus",
        &status("st-2"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], json!({"success": {}}));
    // The account's wallet holds the money.
    assert_eq!(t.balance_minor("gsp-piaid-test-1").await, 1250);
    // st-1 asked before the payment: its stored answer is replayed as it was.
    let (_, again) = call(
        &t,
        "/redirect-fop-v1/getRedirectPaymentStatus",
        &status("st-1"),
    )
    .await;
    assert_eq!(again["result"], json!({"pending": {}}));

    // Refunds: partial, acknowledged, once per requestId; above what remains
    // is PRECONDITION_VIOLATION; an unknown capture is INVALID_IDENTIFIER.
    let refund = |id: &str, capture: &str, micros: &str| {
        json!({"requestHeader": header(id), "captureRequestId": capture,
               "refundAmount": {"amountMicros": micros, "currencyCode": "EUR"}})
    };
    let path = "/v1/payment-integrator-redirect/asynchronousRefund";
    let (s, v) = call(&t, path, &refund("rf-1", "gen-1", "2500000")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], json!({"acknowledged": {}}));
    let (s, _) = call(
        &t,
        "/redirect-fop-v1/asynchronousRefund",
        &refund("rf-1", "gen-1", "2500000"),
    )
    .await;
    assert_eq!(s, 200, "the retry is the stored answer");
    let (s, e) = call(&t, path, &refund("rf-2", "gen-1", "20000000")).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (400, Some("PRECONDITION_VIOLATION")),
        "{e}"
    );
    let (s, e) = call(&t, path, &refund("rf-3", "never-sent", "1000000")).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (404, Some("INVALID_IDENTIFIER"))
    );
    // The one refund settles at the sandbox PSP: 12.50 - 2.50 left.
    let mut left = 0;
    for _ in 0..100 {
        left = t.balance_minor("gsp-piaid-test-1").await;
        if left == 1000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 1000, "one refund of 2.50, once");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_errors_carry_their_codes_and_are_never_stored() {
    let t = TestStack::start().await;
    let path = "/v1/payment-integrator-redirect/generateRedirectPaymentUrl";
    // No card form of payment: no PAN is ever accepted.
    let card = generate_body("gen-card", json!({"card": {"pan": "4111111111111111"}}));
    let (s, e) = call(&t, path, &card).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (400, Some("INVALID_FIELD_VALUE")),
        "{e}"
    );
    assert!(!e.to_string().contains("4111"));
    // The same requestId, now valid: evaluated afresh (the refusal was not stored).
    let ok = generate_body("gen-card", json!({"noneChosen": {}}));
    let (s, v) = call(&t, path, &ok).await;
    assert_eq!(s, 200, "{v}");
    // Outside ±60 s.
    let mut late = generate_body("gen-late", json!({"noneChosen": {}}));
    late["requestHeader"]["requestTimestamp"]["epochMillis"] =
        json!((payloop::clock::now_ms() - 120_000).to_string());
    let (s, e) = call(&t, path, &late).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (400, Some("REQUEST_TIMESTAMP_OUT_OF_RANGE"))
    );
    // Missing and malformed fields name the field.
    let mut missing = generate_body("gen-miss", json!({"noneChosen": {}}));
    missing.as_object_mut().unwrap().remove("callbackUrl");
    let (s, e) = call(&t, path, &missing).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (400, Some("MISSING_REQUIRED_FIELD"))
    );
    assert!(e["errorDescription"]
        .as_str()
        .unwrap()
        .contains("callbackUrl"));
    let mut odd = generate_body("gen-odd", json!({"noneChosen": {}}));
    odd["transactionAmount"]["amountMicros"] = json!("12345678");
    let (s, e) = call(&t, path, &odd).await;
    assert_eq!(s, 400);
    assert!(
        e["errorDescription"]
            .as_str()
            .unwrap()
            .contains("transactionAmount.amountMicros"),
        "{e}"
    );
    // Not JSON at all.
    let r = t.send(t.http.post(t.url(path)).body("garbage")).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("INVALID_DECRYPTED_REQUEST"));
    // An unknown redirect request.
    let q = json!({"requestHeader": header("st-x"), "redirectRequestId": "never-sent"});
    let (s, e) = call(&t, "/redirect-fop-v1/getRedirectPaymentStatus", &q).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (404, Some("INVALID_IDENTIFIER"))
    );
    t.shutdown().await;
}

/// A deployed facade without `PAYLOOP_GSP_ALLOW_PLAINTEXT=true` refuses every
/// request (the plaintext mode authenticates nothing).
#[tokio::test]
async fn an_unconfigured_facade_refuses_everything_with_forbidden() {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let ctx = payloop_tests::fixture_ctx(dir.path(), None, 30_000);
    let facade = google_facade::Facade {
        ctx,
        codec: std::sync::Arc::new(payloop::domain::google::codec::Unconfigured),
    };
    let body = json!({"requestHeader": header("echo-x"), "clientMessage": "ping"});
    let req = axum::http::Request::post("/v1/echo")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let resp = google_facade::app(facade).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 403);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["errorResponseCode"], "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remittance_statement_is_kept_once_and_accepted() {
    let t = TestStack::start().await;
    let ts = |ms: i64| json!({"epochMillis": ms.to_string()});
    let day = payloop::clock::Day::today().start_ms();
    let body = json!({"requestHeader": header("stmt-2026-12-01"),
        "remittanceStatementSummary": {
            "statementDate": ts(day), "billingPeriod": {"startDate": ts(day - 86_400_000), "endDate": ts(day - 1)},
            "dateDue": ts(day + 7 * 86_400_000),
            "totalDueByIntegrator": {"amountMicros": "12500000", "currencyCode": "EUR"}, "totalEvents": "1"}});
    let (s, v) = call(&t, "/v1/remittanceStatementNotification", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], json!({"accepted": {}}));
    let mut retry = body.clone();
    retry["requestHeader"] = header("stmt-2026-12-01");
    let (s, _) = call(
        &t,
        "/redirect-fop-v1/remittanceStatementNotification",
        &retry,
    )
    .await;
    assert_eq!(s, 200);
    let kept = t
        .stack
        .ctx
        .store
        .get(&payloop::schema::keys::gsp_statement(
            ACCOUNT,
            "stmt-2026-12-01",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.int_attr("total_due_minor"), Some(1250));
    assert_eq!(kept.str_attr("status"), Some("notified"));
    let mut other = body.clone();
    other["remittanceStatementSummary"]["totalEvents"] = json!("2");
    let (s, e) = call(&t, "/v1/remittanceStatementNotification", &other).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (412, Some("IDEMPOTENCY_VIOLATION"))
    );
    let mut missing = body.clone();
    missing["requestHeader"] = header("stmt-other");
    missing["remittanceStatementSummary"]
        .as_object_mut()
        .unwrap()
        .remove("dateDue");
    let (s, e) = call(&t, "/v1/remittanceStatementNotification", &missing).await;
    assert_eq!(
        (s, e["errorResponseCode"].as_str()),
        (400, Some("MISSING_REQUIRED_FIELD"))
    );
    assert!(e["errorDescription"].as_str().unwrap().contains("dateDue"));
    t.shutdown().await;
}
