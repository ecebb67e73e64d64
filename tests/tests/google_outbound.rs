//! payloop's calls to Google on `payloop serve`, against the Google sandbox:
//! the completion and refund notifications (retried with backoff while
//! Google answers 503, duplicated jobs sending the same request, a job for
//! a payment not final yet sending nothing), and a remittance statement
//! paged, reconciled with planted mismatches (cases opened), then accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use payloop::domain::google::outbound::{self, Job};
use payloop::ids::PaymentId;
use payloop::queue::QueueName;
use payloop::schema::keys;
use payloop::store::ItemExt;
use payloop_cli::google_sandbox::DEFAULT_ACCOUNT;
use payloop_tests::google::{self, until};
use payloop_tests::TestStack;
use serde_json::{json, Value};

async fn start() -> TestStack {
    TestStack::start_with(|o| o.google_backoff = Duration::from_millis(50)).await
}

async fn sandbox_post(t: &TestStack, path: &str, body: Value) -> Value {
    let r = t
        .send(
            t.http
                .post(t.url(path))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json()
}

async fn notifications(t: &TestStack) -> Value {
    let r = t.get("/google-sandbox/notifications", false).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// The call payloop made under `request_id`, as the sandbox kept it.
async fn received(t: &TestStack, request_id: &str) -> Option<Value> {
    notifications(t).await["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["request_id"] == request_id)
        .cloned()
}

/// Marked sent: Google answered 200.
async fn sent(t: &TestStack, request_id: &str) -> bool {
    google::sent(t, DEFAULT_ACCOUNT, request_id).await
}

/// Every queued call made or dead (the google queue empty).
async fn google_queue_empty(t: &TestStack) {
    until("the google queue drains", || async {
        t.stack.ctx.queue.depth(QueueName::Google).await.unwrap() == 0
    })
    .await;
}

/// A paid Google redirect payment: (its requestId, payloop's payment id).
async fn paid(t: &TestStack, micros: &str) -> (String, PaymentId) {
    let v = sandbox_post(
        t,
        "/google-sandbox/payments",
        json!({"amount_micros": micros, "currency": "EUR"}),
    )
    .await;
    assert_eq!(v["status"], 200, "{v}");
    assert!(v["redirect_url"].as_str().unwrap().contains("/checkout/"));
    let request = v["request_id"].as_str().unwrap().to_owned();
    let payment = google::redirect_payment(t, DEFAULT_ACCOUNT, &request).await;
    t.approve(payment.as_str()).await;
    (request, payment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_retried_until_google_takes_them_and_never_change() {
    let t = start().await;
    // Google is down for the next two calls.
    sandbox_post(&t, "/google-sandbox/fail", json!({"next": 2})).await;
    let (request, payment) = paid(&t, "12500000").await;
    let complete = format!("complete:{payment}");
    until("the completion notification is taken", || {
        sent(&t, &complete)
    })
    .await;
    let n = received(&t, &complete).await.unwrap();
    assert_eq!(n["method"], "redirectPaymentCompleteNotification");
    assert_eq!(n["count"], 3, "two 503s, then the 200: {n}");
    assert_eq!(n["changed"], false);
    assert_eq!(
        n["body"],
        json!({"redirectRequestId": request, "result": {"success": {}},
               "formOfPayment": {"noneChosen": {}}})
    );

    // The same job again (a redelivered capture): the same request, once more.
    let job = Job::PaymentComplete {
        account: DEFAULT_ACCOUNT.into(),
        redirect_request_id: request.clone(),
        payment_id: payment.clone(),
    };
    outbound::enqueue(&t.stack.ctx, &job).await.unwrap();
    outbound::enqueue(&t.stack.ctx, &job).await.unwrap();
    google_queue_empty(&t).await;
    let n = received(&t, &complete).await.unwrap();
    assert_eq!(
        (n["count"].as_u64(), &n["changed"]),
        (Some(5), &json!(false))
    );

    // A job for a payment not final yet sends nothing (its final event will).
    let v = sandbox_post(
        &t,
        "/google-sandbox/payments",
        json!({"amount_micros": "1000000", "currency": "EUR", "issuer": "nordea-fi"}),
    )
    .await;
    let open_request = v["request_id"].as_str().unwrap().to_owned();
    let open = google::redirect_payment(&t, DEFAULT_ACCOUNT, &open_request).await;
    let early = Job::PaymentComplete {
        account: DEFAULT_ACCOUNT.into(),
        redirect_request_id: open_request.clone(),
        payment_id: open.clone(),
    };
    outbound::enqueue(&t.stack.ctx, &early).await.unwrap();
    google_queue_empty(&t).await;
    assert!(received(&t, &format!("complete:{open}")).await.is_none());
    // Declined at the PSP: Google hears of it, with the issuer it chose.
    let done = t.checkout(open.as_str(), "decline").await;
    assert!(!done.is_empty());
    let declined = format!("complete:{open}");
    until("the decline is notified", || sent(&t, &declined)).await;
    let n = received(&t, &declined).await.unwrap();
    assert!(n["body"]["result"].get("success").is_none(), "{n}");
    assert_eq!(
        n["body"]["formOfPayment"],
        json!({"issuerId": {"value": "nordea-fi"}})
    );

    // A refund: acknowledged, then its result once it settles.
    let r = sandbox_post(
        &t,
        "/google-sandbox/refunds",
        json!({"capture_request_id": request, "amount_micros": "2500000"}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["response"]["result"], json!({"acknowledged": {}}));
    let refund_request = r["request_id"].as_str().unwrap().to_owned();
    let refund_id = refund_of(&t, &payment, &refund_request).await;
    let result_id = format!("refund-result:{refund_id}");
    until("the refund result is taken", || sent(&t, &result_id)).await;
    let n = received(&t, &result_id).await.unwrap();
    assert_eq!(n["method"], "refundResultNotification");
    assert_eq!(
        n["body"],
        json!({"refundRequestId": refund_request, "paymentIntegratorRefundId": refund_id,
               "result": {"success": {}}})
    );
    // Sent again: the same result (a result never changes once sent).
    let again = Job::RefundResult {
        account: DEFAULT_ACCOUNT.into(),
        refund_request_id: refund_request.clone(),
        payment_id: payment.clone(),
        refund_id: refund_id.clone(),
    };
    outbound::enqueue(&t.stack.ctx, &again).await.unwrap();
    google_queue_empty(&t).await;
    let n = received(&t, &result_id).await.unwrap();
    assert_eq!(
        (n["count"].as_u64(), &n["changed"]),
        (Some(2), &json!(false))
    );
    assert_eq!(t.balance_minor("gsp-sandbox-merchant").await, 1000);
    t.shutdown().await;
}

/// The refund payloop made for an asynchronousRefund request.
async fn refund_of(t: &TestStack, payment: &PaymentId, request: &str) -> String {
    let q = payloop::store::Query::new(
        keys::payment_pk(payment.as_str()),
        payloop::store::SkRange::Prefix("GSPREF#".into()),
        10,
    );
    let page = t.stack.ctx.store.query(&q).await.unwrap();
    let it = page
        .items
        .iter()
        .find(|i| i.str_attr("request_id") == Some(request))
        .expect("the refund's origin is kept");
    let sk = payloop::store::Key::of(it).unwrap().sk;
    sk.trim_start_matches("GSPREF#").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_paged_reconciled_with_its_mismatches_as_cases_and_accepted() {
    let t = start().await;
    let (first, _) = paid(&t, "12500000").await;
    let (_, second) = paid(&t, "3000000").await;
    let second_done = format!("complete:{second}");
    until("the second completion", || sent(&t, &second_done)).await;
    let r = sandbox_post(
        &t,
        "/google-sandbox/refunds",
        json!({"capture_request_id": first, "amount_micros": "2500000"}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    google_queue_empty(&t).await;
    until("both completions and the refund result", || async {
        let all = notifications(&t).await;
        all["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["body"]["result"].get("success").is_some())
            .count()
            == 3
    })
    .await;

    let today = payloop::clock::Day::today();
    let statement_of = |v: &Value| v["statement_id"].as_str().unwrap().to_owned();
    let accepted_at_google = |statement: String| {
        let t = &t;
        async move {
            notifications(t).await["statements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["statement_id"] == statement.as_str() && s["accepted"] == true)
        }
    };
    let kept = |statement: String| {
        let t = &t;
        async move {
            let key = keys::gsp_statement(DEFAULT_ACCOUNT, &statement);
            t.stack.ctx.store.get(&key).await.unwrap().unwrap()
        }
    };

    // A statement that agrees with payloop: reconciled and accepted by itself.
    let clean = sandbox_post(
        &t,
        "/google-sandbox/statements",
        json!({"date": today.to_string()}),
    )
    .await;
    assert_eq!(clean["status"], 200, "{clean}");
    assert_eq!(clean["response"]["result"], json!({"accepted": {}}));
    assert_eq!(clean["events"], 3);
    let clean = statement_of(&clean);
    until("the clean statement is accepted", || {
        accepted_at_google(clean.clone())
    })
    .await;
    let st = kept(clean.clone()).await;
    assert_eq!(st.str_attr("status"), Some("accepted"));
    assert_eq!(
        (
            st.int_attr("events_read"),
            st.int_attr("matched"),
            st.int_attr("mismatched")
        ),
        (Some(3), Some(3), Some(0))
    );

    // Two planted mismatches: the first capture charged a cent more, and a
    // capture payloop never told of. Reconciled, held, not accepted.
    let planted = sandbox_post(
        &t,
        "/google-sandbox/statements",
        json!({"date": today.to_string(),
               "plant": {"amount_delta_micros": 10000, "unknown_capture": true}}),
    )
    .await;
    assert_eq!(planted["status"], 200, "{planted}");
    assert_eq!(planted["events"], 4);
    let planted = statement_of(&planted);
    until("the planted statement is held", || {
        let planted = planted.clone();
        let kept = &kept;
        async move { kept(planted).await.str_attr("status") == Some("held") }
    })
    .await;
    let st = kept(planted.clone()).await;
    assert_eq!(
        (
            st.int_attr("events_read"),
            st.int_attr("matched"),
            st.int_attr("mismatched")
        ),
        (Some(4), Some(2), Some(2))
    );
    assert!(
        st.str_attr("hold_reason").unwrap().contains("2 mismatches"),
        "{st:?}"
    );
    assert!(!accepted_at_google(planted.clone()).await);
    let all = notifications(&t).await;
    let methods: Vec<&str> = all["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["method"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"remittanceStatementDetails"));

    // The mismatches are reconciliation cases of the counterparty `google`.
    let cases = t
        .get(&format!("/v1/recon/cases?date={today}&psp=google"), true)
        .await;
    assert_eq!(cases.status, 200, "{}", cases.text);
    let mut classes: Vec<(String, String)> = cases.json()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["class"].as_str().unwrap().to_owned(),
                c["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        vec![
            (
                "amount_mismatch".to_owned(),
                format!("payment:{DEFAULT_ACCOUNT}/{first}")
            ),
            (
                "missing_in_wallet".to_owned(),
                format!("payment:{DEFAULT_ACCOUNT}/gs-unknown-capture")
            ),
        ]
    );

    // An operator looked and releases it: accepted at Google next.
    let release = |id: &str, body: &str| {
        let path = format!("/v1/recon/google-statements/{DEFAULT_ACCOUNT}/{id}/release");
        let body = body.to_owned();
        let t = &t;
        async move { t.post_platform(&path, None, &body).await }
    };
    let early = release(&clean, r#"{"note":"checked"}"#).await;
    assert_eq!(early.status, 200, "an accepted statement: nothing to do");
    let no_note = release(&planted, "{}").await;
    assert_eq!(no_note.status, 422, "{}", no_note.text);
    assert!(no_note.text.contains("note"));
    let r = release(
        &planted,
        r#"{"note":"cent overcharge disputed with Google"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    until("the released statement is accepted", || {
        accepted_at_google(planted.clone())
    })
    .await;
    until("and marked so", || {
        let planted = planted.clone();
        let kept = &kept;
        async move { kept(planted).await.str_attr("status") == Some("accepted") }
    })
    .await;
    let unknown = release("gs-none", r#"{"note":"x"}"#).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_google_keeps_refusing_is_a_dead_letter_and_replays_once_google_is_back() {
    let t = TestStack::start_with(|o| o.google_backoff = Duration::from_millis(1)).await;
    sandbox_post(&t, "/google-sandbox/fail", json!({"next": 1000})).await;
    let (request, payment) = paid(&t, "4000000").await;
    let complete = format!("complete:{payment}");
    until("the call is a dead letter", || async {
        t.stack.ctx.queue.depth(QueueName::GoogleDlq).await.unwrap() == 1
    })
    .await;
    let n = received(&t, &complete).await.unwrap();
    assert_eq!(
        n["count"].as_u64(),
        Some(u64::from(outbound::GOOGLE_MAX_RECEIVES)),
        "every attempt reached Google: {n}"
    );
    assert!(!sent(&t, &complete).await);
    // Google is back; an operator replays the dead letters.
    sandbox_post(&t, "/google-sandbox/fail", json!({"next": 0})).await;
    let r = t
        .post_platform("/v1/ops/dlq/replay?queue=google", None, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["moved"], 1);
    until("the replayed call is taken", || sent(&t, &complete)).await;
    let n = received(&t, &complete).await.unwrap();
    assert_eq!(n["changed"], false);
    assert_eq!(n["body"]["redirectRequestId"], request.as_str());
    let bad = t
        .post_platform("/v1/ops/dlq/replay?queue=recon", None, "")
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("queue"));
    t.shutdown().await;
}
