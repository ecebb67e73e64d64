//! The whole loop on the AWS adapters: the local stack with DynamoDB + SQS
//! (moto, started by scripts/test.sh) instead of the embedded ones. Same
//! handlers, same worker, same scenarios as a Lambda deployment would run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use payloop::clock::now_s;
use payloop::queue::sqs::ensure_queues;
use payloop::store::dynamodb::DynamoStore;
use payloop_tests::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_are_credited_exactly_once_on_dynamodb_and_sqs() {
    let Some(endpoint) = payloop_tests::aws_endpoint("e2e on DynamoDB/SQS") else {
        return;
    };
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await;
    let name = payloop::ids::new_ulid("payloop-e2e");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), name.clone());
    store.create_table_if_missing().await.unwrap();
    let queue = ensure_queues(aws_sdk_sqs::Client::new(&conf), &name)
        .await
        .unwrap();
    let t = Arc::new(
        TestStack::start_with(move |o| {
            o.backends = Some((Arc::new(store), Arc::new(queue)));
            // SQS visibility has whole-second granularity, and the local
            // worker cancels a batch that overruns it (as Lambda's timeout
            // would). At 1 s one full run in three found this payment still
            // pending after 20 s (cause not pinned down; likely a slow moto
            // timing every attempt out); 5 s leaves moto room.
            o.visibility = std::time::Duration::from_secs(5);
        })
        .await,
    );
    let id = t.deposit("aws-player", "50.00").await;
    // The same webhook, 10 times concurrently.
    let body = t.event("evt-aws", &id, "captured", "50.00", now_s());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (t, body) = (Arc::clone(&t), body.clone());
        tasks.push(tokio::spawn(
            async move { t.webhook_signed(&body, None).await },
        ));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        outcomes.push(r.json()["outcome"].as_str().unwrap().to_owned());
    }
    // Intake writes nothing for a payment event: copies racing the first
    // one's application are queued too (the credit is once, below); any
    // copy arriving after it is a duplicate.
    let accepted = outcomes.iter().filter(|o| *o == "accepted").count();
    let duplicates = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert!(accepted >= 1, "{outcomes:?}");
    assert_eq!(accepted + duplicates, 10, "{outcomes:?}");
    t.wait_status(&id, "captured").await;
    t.wait_idle().await;
    assert_eq!(t.balance_minor("aws-player").await, 5000);
    assert_eq!(
        t.webhook_signed(&body, None).await.json()["outcome"],
        "duplicate"
    );
    // A late `authorized` and a mismatching event change nothing.
    assert_eq!(
        t.webhook("evt-aws-auth", &id, "authorized", "50.00")
            .await
            .status,
        200
    );
    assert_eq!(
        t.webhook("evt-aws-mm", &id, "captured", "51.00")
            .await
            .json()["outcome"],
        "mismatch"
    );
    let replay = t
        .init(
            Some("aws-key"),
            &payloop_tests::deposit_body("aws-player", "9.00").to_string(),
        )
        .await;
    let again = t
        .init(
            Some("aws-key"),
            &payloop_tests::deposit_body("aws-player", "9.00").to_string(),
        )
        .await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (replay.status, replay.text.as_str())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    t.wait_idle().await;
    assert_eq!(t.payment(&id).await["status"], "captured");
    assert_eq!(t.balance_minor("aws-player").await, 5000);
    t.assert_ledger_invariant().await;
}
