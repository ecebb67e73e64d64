//! Responsible gambling end to end: deposit limits (day / week / month,
//! gross, exact under concurrency, released by a failed payment), the
//! cooling-off of an increase through an injectable clock, the presets, and
//! self-exclusion refusing deposits and bets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use payloop::clock::ManualClock;
use payloop::domain::limits::{self, LimitsChange, Period};
use payloop::domain::policy::RgPolicy;
use payloop::ids::{PaymentId, PlayerId};
use payloop::money::{Currency, Money};
use payloop_tests::{deposit_body, Resp, TestStack};
use serde_json::{json, Value};

async fn put_limits(t: &TestStack, player: &str, body: Value) -> Resp {
    t.put_platform(&format!("/v1/players/{player}/limits"), body)
        .await
}

async fn init(t: &TestStack, key: &str, player: &str, amount: &str) -> Resp {
    t.init(Some(key), &deposit_body(player, amount).to_string())
        .await
}

fn period<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["periods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["period"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_refuses_what_would_pass_it_and_a_failed_payment_frees_it() {
    let t = TestStack::start().await;
    let r = put_limits(&t, "lia", json!({"currency": "EUR", "day": "100.00"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(period(&r.json(), "day")["limit"], "100.00");
    assert_eq!(init(&t, "l-1", "lia", "60.00").await.status, 201);
    let over = init(&t, "l-2", "lia", "50.00").await;
    assert_eq!(
        (over.status, over.json()["error"].as_str()),
        (402, Some("deposit_limit_reached")),
        "{}",
        over.text
    );
    let d = &over.json()["details"];
    assert_eq!(
        (&d["period"], &d["limit"], &d["remaining"]),
        (&json!("day"), &json!("100.00"), &json!("40.00"))
    );
    // Gross: the 60.00 counts whether it is paid yet or not; 40.00 fits.
    let fits = init(&t, "l-3", "lia", "40.00").await;
    assert_eq!(fits.status, 201, "{}", fits.text);
    let v = t.get("/v1/players/lia/limits?currency=EUR", true).await;
    assert_eq!(
        (
            &period(&v.json(), "day")["used"],
            &period(&v.json(), "day")["remaining"]
        ),
        (&json!("100.00"), &json!("0.00"))
    );
    // The player declines the 40.00 at the PSP: it frees its share, once.
    let id = fits.json()["payment_id"].as_str().unwrap().to_owned();
    t.checkout(&id, "decline").await;
    t.wait_status(&id, "failed").await;
    t.wait_idle().await;
    let v = t.get("/v1/players/lia/limits?currency=EUR", true).await;
    assert_eq!(period(&v.json(), "day")["used"], "60.00", "{}", v.text);
    // A retried init of a refused intent is refused again, not reserved.
    assert_eq!(init(&t, "l-2", "lia", "50.00").await.status, 402);
    // An increase waits for the cooling-off; a decrease applies at once.
    let up = put_limits(&t, "lia", json!({"currency": "EUR", "day": "500.00"})).await;
    let day = period(&up.json(), "day").clone();
    assert_eq!(day["limit"], "100.00", "{day}");
    assert_eq!(day["pending"]["limit"], "500.00", "{day}");
    assert_eq!(init(&t, "l-4", "lia", "50.00").await.status, 402);
    let down = put_limits(
        &t,
        "lia",
        json!({"currency": "EUR", "day": "70.00", "week": null}),
    )
    .await;
    let day = period(&down.json(), "day").clone();
    assert_eq!(
        (&day["limit"], &day["pending"]),
        (&json!("70.00"), &Value::Null)
    );
    assert_eq!(init(&t, "l-5", "lia", "10.01").await.status, 402);
    assert_eq!(init(&t, "l-6", "lia", "10.00").await.status, 201);
    // Bad input names its field.
    let bad = put_limits(&t, "lia", json!({"currency": "EUR", "day": "1.001"})).await;
    assert_eq!(
        (bad.status, bad.json()["details"]["field"].as_str()),
        (422, Some("day"))
    );
    let unknown = put_limits(&t, "lia", json!({"currency": "EUR", "year": "1.00"})).await;
    assert_eq!(unknown.json()["details"]["field"], "year");
    let no_ccy = t.get("/v1/players/lia/limits", true).await;
    assert_eq!(
        (no_ccy.status, no_ccy.json()["details"]["field"].as_str()),
        (422, Some("currency"))
    );
    t.shutdown().await;
}

/// Concurrent intents against one limit: never more than it allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_intents_never_pass_a_limit_together() {
    let t = Arc::new(TestStack::start().await);
    let r = put_limits(&t, "cia", json!({"currency": "EUR", "week": "100.00"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let t = Arc::clone(&t);
        tasks.push(tokio::spawn(async move {
            // A 503 (the limits or a counter moved meanwhile) is retried, as a client would.
            for _ in 0..50 {
                let r = init(&t, &format!("c-{i}"), "cia", "30.00").await;
                if r.status != 503 {
                    return r.status;
                }
            }
            panic!("intent c-{i} still answered 503 after 50 tries")
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 201, 201, 402, 402, 402, 402, 402]);
    let v = t.get("/v1/players/cia/limits?currency=EUR", true).await;
    assert_eq!(period(&v.json(), "week")["used"], "90.00");
}

/// The cooling-off of an increase, through the injectable clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_increase_takes_effect_after_the_cooling_off() {
    let t = TestStack::start().await;
    let mut ctx = t.stack.ctx.clone();
    let start = payloop::clock::Day::parse("2026-12-02").unwrap().start_ms() + 3_600_000;
    let clock = Arc::new(ManualClock::at(start));
    ctx.clock = clock.clone();
    let eur = Currency::parse("EUR").unwrap();
    let player = PlayerId::parse("cole").unwrap();
    let money = |s: &str| Money::parse_decimal(s, eur).unwrap();
    let set = |day: &'static str| LimitsChange {
        currency: eur,
        periods: vec![(Period::Day, Some(Money::parse_decimal(day, eur).unwrap()))],
    };
    limits::set(&ctx, &player, &set("20.00")).await.unwrap();
    let v = limits::set(&ctx, &player, &set("80.00")).await.unwrap();
    let pending = v.periods[0].pending.clone().unwrap();
    assert_eq!(pending.effective_ms, start + 24 * 3_600_000);
    let pay = |n: u32| PaymentId::parse(&format!("pay_01JD00000000000000000000{n:02}")).unwrap();
    let reserve = |n: u32, amount: &'static str| {
        let ctx = ctx.clone();
        let player = player.clone();
        async move {
            let now = ctx.now_ms();
            limits::reserve::reserve(&ctx, &player, money(amount), &pay(n), now).await
        }
    };
    assert!(reserve(1, "30.00").await.is_err(), "20.00 is in force");
    clock.advance_ms(24 * 3_600_000 - 1);
    assert!(reserve(2, "30.00").await.is_err(), "a millisecond early");
    clock.advance_ms(1);
    // The next day: a new period, and the 80.00 in force.
    reserve(3, "30.00").await.unwrap();
    reserve(3, "30.00").await.unwrap();
    let v = limits::view(&ctx, &player, eur).await.unwrap();
    assert_eq!(
        (v.periods[0].limit.as_deref(), v.periods[0].used.as_str()),
        (Some("80.00"), "30.00"),
        "the same intent reserves once"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swedish_preset_requires_limits_before_a_deposit() {
    let t = TestStack::start_with(|o| o.rg = RgPolicy::preset("se").unwrap()).await;
    let r = init(&t, "s-1", "sven", "10.00").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (402, Some("deposit_limit_required")),
        "{}",
        r.text
    );
    let set = put_limits(
        &t,
        "sven",
        json!({"currency": "EUR", "day": "50.00", "week": "100.00", "month": "200.00"}),
    )
    .await;
    assert_eq!(set.json()["preset"], "se");
    assert_eq!(init(&t, "s-2", "sven", "10.00").await.status, 201);
    // An increase waits 72 h and for the period's end.
    let up = put_limits(&t, "sven", json!({"currency": "EUR", "month": "300.00"})).await;
    let month = period(&up.json(), "month").clone();
    let end = payloop::clock::Day::parse(month["period_end"].as_str().unwrap())
        .unwrap()
        .start_ms();
    let effective = month["pending"]["effective_ms"].as_i64().unwrap();
    assert!(effective >= end, "{month}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_german_preset_caps_a_month_at_eur_1000() {
    let t = TestStack::start_with(|o| o.rg = RgPolicy::preset("de").unwrap()).await;
    assert_eq!(init(&t, "d-1", "dora", "900.00").await.status, 201);
    let r = init(&t, "d-2", "dora", "100.01").await;
    assert_eq!(r.json()["details"]["limit"], "1000.00", "{}", r.text);
    assert_eq!(r.json()["details"]["period"], "month");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_exclusion_refuses_deposits_and_bets_and_is_never_shortened() {
    let t = TestStack::start().await;
    let id = t.deposit("sam", "20.00").await;
    t.approve(&id).await;
    let now = payloop::clock::now_ms();
    let path = "/v1/players/sam/self-exclusion";
    let r = t
        .post_platform(
            path,
            None,
            &json!({"until_ms": now + 3_600_000}).to_string(),
        )
        .await;
    assert_eq!(
        (r.status, &r.json()["active"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
    let refused = init(&t, "x-1", "sam", "10.00").await;
    assert_eq!(
        (refused.status, refused.json()["error"].as_str()),
        (403, Some("self_excluded"))
    );
    assert_eq!(refused.json()["details"]["until_ms"], now + 3_600_000);
    let bet = json!({"player_id": "sam", "round_id": "sam-r", "txn_id": "sam-bet", "amount": "5.00",
                     "currency": "EUR", "idempotency_key": "sam-bet"});
    let b = t
        .post_platform("/v1/wallet/debit", None, &bet.to_string())
        .await;
    assert_eq!(
        (b.status, b.json()["error"].as_str()),
        (403, Some("self_excluded"))
    );
    // Shorter: refused; longer, then indefinite: taken.
    let shorter = t
        .post_platform(path, None, &json!({"until_ms": now + 60_000}).to_string())
        .await;
    assert_eq!(
        (shorter.status, shorter.json()["error"].as_str()),
        (409, Some("self_exclusion_active"))
    );
    let forever = t
        .post_platform(path, None, &json!({"indefinite": true}).to_string())
        .await;
    assert_eq!(forever.json()["indefinite"], true, "{}", forever.text);
    let lift = t
        .post_platform(
            path,
            None,
            &json!({"until_ms": now + 7_200_000}).to_string(),
        )
        .await;
    assert_eq!(lift.status, 409);
    let past = t
        .post_platform(path, None, &json!({"until_ms": now - 1}).to_string())
        .await;
    assert_eq!(
        (past.status, past.json()["details"]["field"].as_str()),
        (422, Some("until_ms"))
    );
    let v = t.get(path, true).await;
    assert_eq!(
        (&v.json()["active"], &v.json()["indefinite"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(t.balance_minor("sam").await, 2000, "nothing moved");
    t.shutdown().await;
}

async fn used(t: &TestStack, player: &str) -> String {
    let v = t
        .get(&format!("/v1/players/{player}/limits?currency=EUR"), true)
        .await;
    period(&v.json(), "day")["used"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An intent that is neither paid nor failed frees its reservation after
/// the preset's time; if it is paid after all, its amount counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_intent_expires_and_a_late_capture_counts_again() {
    let t = TestStack::start_with(|o| {
        o.rg.reservation_ttl_ms = 300;
        o.sweep_every = std::time::Duration::from_millis(50);
    })
    .await;
    put_limits(&t, "ema", json!({"currency": "EUR", "day": "100.00"})).await;
    let first = init(&t, "e-1", "ema", "60.00").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.json()["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(used(&t, "ema").await, "60.00");
    let deadline = tokio::time::Instant::now() + payloop_tests::WAIT;
    while used(&t, "ema").await != "0.00" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reservation never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The player pays the first intent after all: gross, it counts again.
    t.approve(&id).await;
    t.wait_idle().await;
    assert_eq!(used(&t, "ema").await, "60.00");
    assert_eq!(t.balance_minor("ema").await, 6000);
    let over = init(&t, "e-2", "ema", "40.01").await;
    assert_eq!(
        over.json()["details"]["remaining"],
        "40.00",
        "{}",
        over.text
    );
    t.shutdown().await;
}

/// A player's open intents hold at most MAX_HOLDS of the limits at once;
/// the next is refused (429) until one of them ends, then fits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_intents_beyond_the_holds_bound_are_refused_until_one_ends() {
    use payloop::domain::limits::reserve::MAX_HOLDS;
    let t = TestStack::start().await;
    put_limits(&t, "oli", json!({"currency": "EUR", "day": "1000.00"})).await;
    let mut first = None;
    for n in 0..MAX_HOLDS {
        let r = init(&t, &format!("o-{n}"), "oli", "1.00").await;
        assert_eq!(r.status, 201, "{}", r.text);
        first.get_or_insert(r.json()["payment_id"].as_str().unwrap().to_owned());
    }
    let refused = init(&t, "o-next", "oli", "1.00").await;
    assert_eq!(
        (refused.status, refused.json()["error"].as_str()),
        (429, Some("rate_limited")),
        "{}",
        refused.text
    );
    assert_eq!(used(&t, "oli").await, format!("{MAX_HOLDS}.00"));
    // One ends at the PSP: its hold leaves, and the next intent fits.
    let id = first.unwrap();
    t.checkout(&id, "decline").await;
    t.wait_status(&id, "failed").await;
    t.wait_idle().await;
    let fits = init(&t, "o-next", "oli", "1.00").await;
    assert_eq!(fits.status, 201, "{}", fits.text);
    t.shutdown().await;
}
