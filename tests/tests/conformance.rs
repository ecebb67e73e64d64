//! Runs the one conformance suite (`payloop_tests::conformance`) against every
//! adapter: the embedded store and queue always; DynamoDB and SQS when
//! `PAYLOOP_TEST_AWS_ENDPOINT` points at an AWS-wire server (moto:
//! `scripts/moto.sh start`, then `PAYLOOP_TEST_AWS_ENDPOINT=http://127.0.0.1:5005`).
//! The AWS tests use one fresh table and one pair of queues per test run.
//! Under the test command (`PAYLOOP_REQUIRE_AWS=1`) a missing endpoint fails
//! them; elsewhere they skip with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use payloop::queue::embedded::EmbeddedQueue;
use payloop::queue::sqs::{ensure_queues, SqsQueue};
use payloop::store::dynamodb::DynamoStore;
use payloop::store::embedded::EmbeddedStore;

fn open_embedded(path: &Path) -> EmbeddedStore {
    EmbeddedStore::open(path).unwrap_or_else(|e| panic!("open embedded store {path:?}: {e}"))
}

/// A name unique to this test run (table, queue prefix).
fn run_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| payloop::ids::new_ulid("payloop-conf"))
}

/// SDK config for the test endpoint, or `None` (with the reason printed)
/// when no endpoint is configured; a failure when the test command
/// requires it (`payloop_tests::aws_endpoint`).
async fn aws_sdk_config(test: &str) -> Option<aws_config::SdkConfig> {
    let endpoint = payloop_tests::aws_endpoint(test)?;
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "conformance",
        ))
        .load()
        .await;
    Some(conf)
}

async fn dynamo_store(test: &str) -> Option<DynamoStore> {
    let conf = aws_sdk_config(test).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), run_name().to_owned());
    store
        .create_table_if_missing()
        .await
        .unwrap_or_else(|e| panic!("create table: {e}"));
    Some(store)
}

async fn sqs_queue(test: &str) -> Option<SqsQueue> {
    let conf = aws_sdk_config(test).await?;
    let queue = ensure_queues(aws_sdk_sqs::Client::new(&conf), run_name()).await;
    Some(queue.unwrap_or_else(|e| panic!("ensure queues: {e}")))
}

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod embedded_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = super::open_embedded(&dir.path().join("store.log"));
                    payloop_tests::conformance::$name(&store).await;
                }
            )*
        }

        mod dynamodb_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!("dynamodb_store::", stringify!($name));
                    let Some(store) = super::dynamo_store(test).await else { return };
                    payloop_tests::conformance::$name(&store).await;
                }
            )*
        }
    };
}

store_tests!(
    store_round_trip_all_types,
    store_put_not_exists_twice,
    store_update_semantics,
    store_update_refusals,
    store_conditions,
    store_delete_with_condition,
    store_transact_all_or_nothing,
    store_transact_limits,
    store_query_ranges,
    store_query_pagination,
    store_concurrent_conditional_puts,
);

/// Concurrent Adds lose nothing: on the embedded store. The AWS-wire test
/// server (moto) applies concurrent UpdateItem ADDs without a lock (a run
/// saw 19 of 20), so there the check would test moto; the adapter's Add is
/// DynamoDB's own atomic `ADD` update expression (the request shape is
/// checked in `shared/src/store/dynamodb.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_concurrent_adds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_embedded(&dir.path().join("store.log"));
    payloop_tests::conformance::store_concurrent_adds(&store).await;
}

/// On moto: concurrent Adds are all taken without an error, and Adds one
/// after the other sum exactly; that none is lost under concurrency is
/// DynamoDB's guarantee, which moto does not give (printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_concurrent_adds() {
    use payloop::store::{Attr, Key, Store, UpdateOp, Write};
    let Some(store) = dynamo_store("dynamodb_store::concurrent_adds").await else {
        return;
    };
    println!(
        "dynamodb_store::concurrent_adds: exact atomicity not asserted on moto (its concurrent \
         UpdateItem ADDs can lose updates); checked on the embedded store"
    );
    let add = |key: &Key| Write::Update {
        key: key.clone(),
        ops: vec![UpdateOp::Add("n".into(), 1)],
        cond: None,
    };
    let key = Key::new(payloop::ids::new_ulid("adds"), "counter");
    let store = &store;
    let all = payloop_tests::conformance::parallel(20, |_| store.write(add(&key)));
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    let n = |it: Option<payloop::store::Item>| it.and_then(|i| i.get("n").cloned());
    let seen = n(store.get(&key).await.unwrap());
    assert!(
        matches!(seen, Some(Attr::N(v)) if (1..=20).contains(&v)),
        "{seen:?}"
    );
    let one_by_one = Key::new(payloop::ids::new_ulid("adds"), "counter");
    for _ in 0..5 {
        store.write(add(&one_by_one)).await.unwrap();
    }
    assert_eq!(n(store.get(&one_by_one).await.unwrap()), Some(Attr::N(5)));
}

/// The queue checks share their queues: one test per adapter runs them in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_queue_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open_embedded(&dir.path().join("queue.log")));
    let queue = EmbeddedQueue::new(store);
    payloop_tests::conformance::run_queue_suite(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_suite() {
    let Some(queue) = sqs_queue("sqs_queue_suite").await else {
        return;
    };
    payloop_tests::conformance::run_queue_suite(&queue).await;
}

/// The whole store suite in one embedded store, as the AWS tests share one
/// table: the checks must not disturb each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_suite_in_one_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_embedded(&dir.path().join("shared.log"));
    payloop_tests::conformance::run_store_suite(&store).await;
}
