//! The game-round wallet API over HTTP: bets, wins and rollbacks, each txn id
//! once, repeats answering the same result, funds and rounds checked, and the
//! wallet auditing (balance = sum of entries) after every scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use payloop_tests::{assert_wallet_audits, TestStack};
use serde_json::{json, Value};

fn op(player: &str, round: &str, txn: &str, amount: &str, key: &str) -> Value {
    json!({"player_id": player, "round_id": round, "txn_id": txn, "amount": amount,
           "currency": "EUR", "idempotency_key": key})
}

async fn call(t: &TestStack, path: &str, body: &Value) -> payloop_tests::Resp {
    t.post_platform(path, None, &body.to_string()).await
}

async fn funded(t: &TestStack, player: &str, amount: &str) {
    let id = t.deposit(player, amount).await;
    t.approve(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bets_wins_and_rollbacks_apply_once_and_check_everything() {
    let t = TestStack::start().await;
    funded(&t, "gus", "100.00").await;
    let bet = call(
        &t,
        "/v1/wallet/debit",
        &op("gus", "r1", "t1", "30.00", "k1"),
    )
    .await;
    assert_eq!(bet.status, 200, "{}", bet.text);
    assert_eq!(bet.json()["balance"]["available"], "70.00");
    // The same request again, and the same txn under another key: same result.
    let again = call(
        &t,
        "/v1/wallet/debit",
        &op("gus", "r1", "t1", "30.00", "k1"),
    )
    .await;
    assert_eq!((again.status, again.json()), (200, bet.json()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other_key = call(
        &t,
        "/v1/wallet/debit",
        &op("gus", "r1", "t1", "30.00", "k1b"),
    )
    .await;
    assert_eq!((other_key.status, other_key.json()), (200, bet.json()));
    assert_eq!(t.balance_minor("gus").await, 7_000);
    // A txn id reused for something else is refused.
    let reused = call(
        &t,
        "/v1/wallet/debit",
        &op("gus", "r1", "t1", "31.00", "k1c"),
    )
    .await;
    assert_eq!(
        (reused.status, reused.json()["error"].as_str()),
        (409, Some("txn_id_reused"))
    );
    let as_win = call(
        &t,
        "/v1/wallet/credit",
        &op("gus", "r1", "t1", "30.00", "k1d"),
    )
    .await;
    assert_eq!(as_win.status, 409, "{}", as_win.text);
    // No funds: 402 with nothing written.
    let broke = call(
        &t,
        "/v1/wallet/debit",
        &op("gus", "r2", "t2", "70.01", "k2"),
    )
    .await;
    assert_eq!(
        (broke.status, broke.json()["error"].as_str()),
        (402, Some("insufficient_funds"))
    );
    assert_eq!(
        t.get("/v1/wallet/rounds/r2", true).await.status,
        404,
        "no half-written round"
    );
    // A win: on a known round only.
    let win = call(
        &t,
        "/v1/wallet/credit",
        &op("gus", "r1", "w1", "50.00", "k3"),
    )
    .await;
    assert_eq!(
        (win.status, &win.json()["balance"]["available"]),
        (200, &json!("120.00"))
    );
    let stray = call(
        &t,
        "/v1/wallet/credit",
        &op("gus", "nope", "w2", "5.00", "k4"),
    )
    .await;
    assert_eq!(
        (stray.status, &stray.json()["details"]["field"]),
        (422, &json!("round_id"))
    );
    // Rollback of the bet: once; unknown bets are 422.
    let rb = call(
        &t,
        "/v1/wallet/rollback",
        &op("gus", "r1", "t1", "30.00", "k5"),
    )
    .await;
    assert_eq!(
        (rb.status, &rb.json()["balance"]["available"]),
        (200, &json!("150.00"))
    );
    let rb2 = call(
        &t,
        "/v1/wallet/rollback",
        &op("gus", "r1", "t1", "30.00", "k5b"),
    )
    .await;
    assert_eq!((rb2.status, rb2.json()), (200, rb.json()));
    let unknown = call(
        &t,
        "/v1/wallet/rollback",
        &op("gus", "r1", "t9", "30.00", "k6"),
    )
    .await;
    assert_eq!(
        (unknown.status, &unknown.json()["details"]["field"]),
        (422, &json!("txn_id"))
    );
    assert_eq!(t.balance_minor("gus").await, 15_000);
    // The round links its debit and credit txn ids.
    let round = t.get("/v1/wallet/rounds/r1", true).await.json();
    assert_eq!(round["player_id"], "gus");
    assert_eq!(
        round["debits"],
        json!([{"txn_id": "t1", "amount": "30.00", "rolled_back": true}])
    );
    assert_eq!(
        round["credits"],
        json!([{"txn_id": "w1", "amount": "50.00", "rolled_back": false}])
    );
    // Another player cannot bet into gus's round.
    funded(&t, "hal", "10.00").await;
    let foreign = call(&t, "/v1/wallet/debit", &op("hal", "r1", "h1", "1.00", "k7")).await;
    assert_eq!(
        (foreign.status, foreign.json()["error"].as_str()),
        (409, Some("round_conflict"))
    );
    // Bad input names its field.
    let mut bad = op("gus", "r1", "t3", "1.001", "k8");
    let r = call(&t, "/v1/wallet/debit", &bad).await;
    assert_eq!(
        (r.status, &r.json()["details"]["field"]),
        (422, &json!("amount"))
    );
    bad["amount"] = json!("1.00");
    bad["round_id"] = json!("r 1");
    let r = call(&t, "/v1/wallet/debit", &bad).await;
    assert_eq!(
        (r.status, &r.json()["details"]["field"]),
        (422, &json!("round_id"))
    );
    // The ledger: kinds, reasons and balances after each entry.
    let w = t.get("/v1/wallet/gus", true).await.json();
    let kinds: Vec<(&str, &str, &str)> = w["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
                e["available_after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("credit", "deposit", "100.00"),
            ("debit", "bet", "70.00"),
            ("credit", "win", "120.00"),
            ("adjustment", "rollback", "150.00")
        ]
    );
    assert_wallet_audits(&t.stack.ctx, "gus").await;
    assert_wallet_audits(&t.stack.ctx, "hal").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bets_never_spend_more_than_the_balance() {
    let t = Arc::new(TestStack::start().await);
    funded(&t, "ivy", "100.00").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..25 {
        let t = Arc::clone(&t);
        tasks.spawn(async move {
            let body = op(
                "ivy",
                &format!("cr{i}"),
                &format!("ct{i}"),
                "10.00",
                &format!("ck{i}"),
            );
            call(&t, "/v1/wallet/debit", &body).await.status
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 402).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(t.balance_minor("ivy").await, 0);
    assert_wallet_audits(&t.stack.ctx, "ivy").await;
    Arc::try_unwrap(t).ok().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_names_its_bet_and_needs_no_amount() {
    let t = TestStack::start().await;
    funded(&t, "jan", "50.00").await;
    let bet = call(
        &t,
        "/v1/wallet/debit",
        &op("jan", "jr", "jt", "20.00", "jk"),
    )
    .await;
    assert_eq!(bet.status, 200, "{}", bet.text);
    // An amount that is sent must be the bet's.
    let wrong = call(
        &t,
        "/v1/wallet/rollback",
        &op("jan", "jr", "jt", "19.99", "jrb-wrong"),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.json()["details"]["field"].as_str()),
        (422, Some("amount")),
        "{}",
        wrong.text
    );
    let bare =
        json!({"player_id": "jan", "round_id": "jr", "txn_id": "jt", "idempotency_key": "jrb"});
    let rb = call(&t, "/v1/wallet/rollback", &bare).await;
    assert_eq!(rb.status, 200, "{}", rb.text);
    assert_eq!(rb.json()["amount"], "20.00", "the bet's amount");
    assert_eq!(rb.json()["balance"]["available"], "50.00");
    // A bet and a win still need their amount.
    let no_amount = json!({"player_id": "jan", "round_id": "jr2", "txn_id": "jt2", "currency": "EUR", "idempotency_key": "jk2"});
    let refused = call(&t, "/v1/wallet/debit", &no_amount).await;
    assert_eq!(
        (refused.status, refused.json()["details"]["field"].as_str()),
        (422, Some("amount"))
    );
    let unknown =
        json!({"player_id": "jan", "round_id": "jr", "txn_id": "nope", "idempotency_key": "jk3"});
    assert_eq!(call(&t, "/v1/wallet/rollback", &unknown).await.status, 422);
    assert_eq!(t.balance_minor("jan").await, 5_000);
    assert_wallet_audits(&t.stack.ctx, "jan").await;
    t.shutdown().await;
}
