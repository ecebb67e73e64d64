//! Google's idempotency rule over payloop's engine (issue 14's first
//! piece): by requestId within the integrator account, a success is
//! answered again as stored (a retry differs only in requestTimestamp), other
//! content under the same id is IDEMPOTENCY_VIOLATION (412), a refusal is
//! never stored, and two accounts never share an id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use payloop::domain::google::wire::{GspCode, GspError, RequestHeader};
use payloop::domain::google::{once, Refusal};
use payloop_tests::fixture_ctx;
use serde_json::{json, Value};

fn request(id: &str, account: &str, at_ms: i64, message: &str) -> Value {
    json!({"requestHeader": {"requestId": id, "requestTimestamp": {"epochMillis": at_ms.to_string()},
           "protocolVersion": {"major": 1}, "paymentIntegratorAccountId": account},
           "clientMessage": message})
}

async fn answer(
    ctx: &payloop::domain::Ctx,
    body: &Value,
    runs: &Arc<AtomicUsize>,
    refuse: bool,
) -> Result<Value, Refusal> {
    let header = RequestHeader::parse(body, ctx.now_ms()).map_err(Refusal::Gsp)?;
    let runs = Arc::clone(runs);
    let message = body["clientMessage"].clone();
    once(ctx, "echo", &header, body, |reserved| async move {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        if refuse {
            return Err(Refusal::Gsp(GspError::new(GspCode::InvalidFieldValue, "clientMessage refused")));
        }
        Ok(json!({"clientMessage": message, "serverMessage": format!("run {n}"), "reserved": reserved}))
    })
    .await
}

fn code(r: Result<Value, Refusal>) -> GspCode {
    match r {
        Err(Refusal::Gsp(e)) => e.code,
        other => panic!("expected a Google error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_id_answers_once_per_account_and_a_refusal_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture_ctx(dir.path(), None, 30_000);
    let runs = Arc::new(AtomicUsize::new(0));
    let now = payloop::clock::now_ms();

    let first = answer(&ctx, &request("req-1", "acct-a", now, "hi"), &runs, false)
        .await
        .unwrap();
    // A retry: same content, a later timestamp. The stored answer, not a new run.
    let again = answer(
        &ctx,
        &request("req-1", "acct-a", now + 5_000, "hi"),
        &runs,
        false,
    )
    .await
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(first["serverMessage"], "run 1");

    // The same id with other content.
    let other = answer(&ctx, &request("req-1", "acct-a", now, "bye"), &runs, false).await;
    assert_eq!(code(other), GspCode::IdempotencyViolation);
    assert_eq!(GspCode::IdempotencyViolation.status(), 412);

    // Another account's req-1 is another request.
    let b = answer(&ctx, &request("req-1", "acct-b", now, "hi"), &runs, false)
        .await
        .unwrap();
    assert_eq!(b["serverMessage"], "run 2");
    assert_ne!(b["reserved"], first["reserved"]);

    // A refusal is not stored: the retry runs again (and may succeed).
    let refused = answer(&ctx, &request("req-2", "acct-a", now, "x"), &runs, true).await;
    assert_eq!(code(refused), GspCode::InvalidFieldValue);
    let retried = answer(&ctx, &request("req-2", "acct-a", now, "x"), &runs, false)
        .await
        .unwrap();
    assert_eq!(retried["serverMessage"], "run 4", "evaluated afresh");

    // Outside the ±60 s window: refused before any claim.
    let late = answer(
        &ctx,
        &request("req-3", "acct-a", now - 61_000, "x"),
        &runs,
        false,
    )
    .await;
    assert_eq!(code(late), GspCode::RequestTimestampOutOfRange);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}
