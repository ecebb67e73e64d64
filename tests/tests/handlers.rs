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
    assert_eq!(balances, vec![(eur, 5000, 0)]);
}

/// The intent is stored but remembering the response fails (a crash or a
/// timeout right after the work): retries first see the request in flight,
/// then, once its lease lapses, get the SAME payment, never a second one.
#[tokio::test]
async fn a_lost_response_is_recovered_without_a_second_intent() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn payloop::store::Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store.wal")).unwrap());
    let faulty = Arc::new(payloop_tests::faults::FaultyStore::new(inner));
    faulty
        .fail_idem_completion
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let ctx = fixture_ctx(dir.path(), Some(faulty.clone()), 1_000);
    let (status, _, first) = call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
    assert_eq!(status, 201, "{first}");
    let (status, _, busy) = call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
    assert_eq!(
        (status, busy["error"].as_str()),
        (409, Some("request_in_progress"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _, again) = call(intent_api::app(ctx.clone()), &fixture("apigw-init.json")).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["payment_id"], first["payment_id"]);
    assert_eq!(
        faulty
            .payment_puts
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // And from now on it is a plain replay.
    let (_, headers, replay) = call(intent_api::app(ctx), &fixture("apigw-init.json")).await;
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay, again);
}
