//! Handler tests from Lambda JSON fixtures: API Gateway v2 HTTP events go
//! through `lambda_http`'s own decoding into the deployed routers; SQS
//! events go through the deployed batch handler.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use http_body_util::BodyExt;
use payloop::domain::Ctx;
use payloop::ids::PaymentId;
use payloop::money::Currency;
use payloop::store::embedded::EmbeddedStore;
use payloop_tests::{fixture_ctx, seed_pending_payment};
use tower::ServiceExt;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ctx(dir: &std::path::Path) -> Ctx {
    fixture_ctx(dir, None, 30_000)
}

async fn call(app: axum::Router, event: &str) -> (u16, axum::http::HeaderMap, serde_json::Value) {
    let req = lambda_http::request::from_str(event).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn apigw_init_event_creates_an_intent_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    let (status, headers, body) =
        call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending");
    assert!(body["redirect_url"]
        .as_str()
        .unwrap()
        .starts_with("https://pay.example/checkout/fx_pay_"));
    assert!(headers.contains_key("x-trace-id"));
    let (status2, headers2, body2) = call(intent_api::app(ctx), &fixture("apigw-init.json")).await;
    assert_eq!((status2, &body2), (201, &body));
    assert_eq!(headers2.get("idempotent-replayed").unwrap(), "true");
}

/// As deployed (`main.rs`): each invocation writes exactly one EMF
/// document with what it recorded, and the next starts from nothing.
#[tokio::test]
async fn each_invocation_writes_one_emf_document_of_its_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    let docs = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = {
        let docs = Arc::clone(&docs);
        Arc::new(move |d: String| docs.lock().unwrap().push(d))
    };
    let app = payloop::runtime::with_emf_to(intent_api::app(ctx.clone()), ctx, "intent-api", sink);
    let (status, _, _) = call(app.clone(), &fixture("apigw-init.json")).await;
    assert_eq!(status, 201);
    let (status, _, _) = call(app, &fixture("apigw-init.json")).await;
    assert_eq!(status, 201, "the replay");
    let docs = docs.lock().unwrap();
    assert_eq!(
        docs.len(),
        1,
        "the replay recorded nothing, so wrote nothing: {docs:?}"
    );
    assert!(!docs[0].contains('\n'));
    let emf: serde_json::Value = serde_json::from_str(&docs[0]).unwrap();
    assert_eq!(emf["function"], "intent-api");
    assert_eq!(emf["deposits_started"], 1);
    assert_eq!(emf["psp_calls_ok"], 1);
    assert_eq!(emf["risk_decisions.flow.deposit"], 1);
    let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deposits_started.method.card"), "{names:?}");
}

#[tokio::test]
async fn apigw_get_of_an_unknown_payment_is_a_404_with_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let (status, headers, body) = call(
        intent_api::app(ctx(dir.path())),
        &fixture("apigw-get-missing.json"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["trace_id"], "fixture-trace-1");
    assert_eq!(headers.get("x-trace-id").unwrap(), "fixture-trace-1");
    assert!(body["details"].is_object() && body["message"].is_string());
}

#[tokio::test]
async fn sqs_batch_reports_only_the_poison_message_and_credits_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    let eur = Currency::parse("EUR").unwrap();
    let id = PaymentId::parse("pay_01JFIXTURE000000000000000A").unwrap();
    let payment = seed_pending_payment(&ctx, id, "player-fixture", 5000).await;
    let event: SqsEvent = serde_json::from_str(&fixture("sqs-batch.json")).unwrap();
    let resp = wallet_credit::handle_sqs(&ctx, event).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["msg-poison"]);
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "msg-poison");
    let balances = payloop::domain::wallet::balances(&ctx, &payment.player)
        .await
        .unwrap();
    assert_eq!(
        balances,
        vec![payloop::domain::wallet::CurrencyBalance {
            currency: eur,
            available: 5000,
            held: 0
        }]
    );
}

/// The intent's answer is never stored apart: the stored intent is the
/// answer. A retry while the first request's lease still runs (its answer
/// was lost on the way) gets the SAME 201, byte for byte and marked as a
/// replay, never a 409 and never a second intent; so does every later one.
#[tokio::test]
async fn a_lost_response_is_answered_again_from_the_stored_intent() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn payloop::store::Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store.wal")).unwrap());
    let faulty = Arc::new(payloop_tests::faults::FaultyStore::new(inner));
    // A completion write would fail: none is made.
    faulty
        .fail_idem_completion
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let ctx = fixture_ctx(dir.path(), Some(faulty.clone()), 60_000);
    let (status, headers, first) =
        call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
    assert_eq!(status, 201, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    for _ in 0..2 {
        let (status, headers, again) =
            call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again, first);
    }
    assert_eq!(
        faulty
            .payment_puts
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(
        faulty
            .fail_idem_completion
            .load(std::sync::atomic::Ordering::SeqCst),
        "no completion write was attempted"
    );
}

/// GET `uri` on `app` with the fixture platform key; status and JSON body.
async fn get_platform(app: axum::Router, uri: &str) -> (u16, serde_json::Value) {
    let req = axum::http::Request::get(uri)
        .header("authorization", "Bearer fixture-platform-key-0123456789")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, body)
}

fn assert_error_body(uri: &str, body: &serde_json::Value, field: &str) {
    assert_eq!(body["error"], "validation_failed", "{uri}: {body}");
    assert_eq!(body["details"]["field"], field, "{uri}: {body}");
    assert!(
        body["message"].is_string() && body["trace_id"].is_string(),
        "{uri}: {body}"
    );
}

/// A case id whose date holds a multi-byte character where the id is cut
/// into year, month and day (`202é011`, 8 bytes) used to panic inside the
/// handler; now it is a 422 naming `case_id`.
#[tokio::test]
async fn a_multibyte_case_id_is_a_422_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    for uri in [
        "/v1/recon/cases/rc_202%C3%A9011_0123456789abcdef_sandbox",
        "/v1/recon/cases/rc_20240%C3%A91_0123456789abcdef_sandbox",
        "/v1/recon/cases/rc_%E2%82%AC%E2%82%AC11_0123456789abcdef_sandbox",
    ] {
        let (status, body) = get_platform(wallet_credit::app(ctx.clone()), uri).await;
        assert_eq!(status, 422, "{uri}: {body}");
        assert_error_body(uri, &body, "case_id");
    }
    let uri = "/v1/recon/cases/rc_20240501_0123456789abcdef_sandbox";
    let (status, body) = get_platform(wallet_credit::app(ctx), uri).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

/// Query strings and path parameters axum refused with a plain-text 400
/// are 422s with the one error body, naming the parameter.
#[tokio::test]
async fn malformed_query_and_path_parameters_are_422s_with_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    for (uri, field) in [
        (
            "/v1/recon/cases?date=2024-05-01&status=a&status=b",
            "status",
        ),
        ("/v1/recon/cases?date=%FF", "date"),
        ("/v1/reports/refunds?date=null&date=null", "date"),
        ("/v1/reports/refunds?date=nope", "date"),
        (
            "/v1/recon/reports/sandbox/2024-05-01?format=a&format=b",
            "format",
        ),
        ("/v1/wallet/%FF", "player_id"),
        ("/v1/recon/cases/%FF%FE", "case_id"),
    ] {
        let (status, body) = get_platform(wallet_credit::app(ctx.clone()), uri).await;
        assert_eq!(status, 422, "{uri}: {body}");
        assert_error_body(uri, &body, field);
    }
    let req = axum::http::Request::post("/v1/ops/dlq/replay?max=null&max=null")
        .header("authorization", "Bearer fixture-platform-key-0123456789")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = wallet_credit::app(ctx.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_error_body("replay", &body, "max");
    let (status, body) = get_platform(intent_api::app(ctx), "/v1/payments/%C3").await;
    assert_eq!(status, 422, "{body}");
    assert_error_body("payments", &body, "payment_id");
}
