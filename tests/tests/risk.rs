//! Risk: velocity windows counted exactly in the store — idempotent per
//! movement, read only within the live window — fed to the rules engine, and
//! every rule kind deciding from the facts the store holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use payloop::domain::risk::rules::{Dimension, Facts, Flow, Outcome, RiskConfig, Signals};
use payloop::domain::risk::velocity::{record_writes, window, Movement};
use payloop::store::StoreError;
use payloop_tests::fixture_ctx;

const MIN: i64 = 60_000;

#[tokio::test]
async fn velocity_windows_are_exact_idempotent_and_live_only() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture_ctx(dir.path(), None, 30_000);
    let t0 = 1_795_000_000_000;
    for (i, at) in [0, 30 * MIN, 59 * MIN].into_iter().enumerate() {
        let id = format!("pay_{i}");
        let m = Movement {
            id: &id,
            at_ms: t0 + at,
            amount_minor: 1_000 * (i as i64 + 1),
            keep_ms: 24 * 60 * MIN,
        };
        let writes = record_writes(
            Flow::Deposit,
            &m,
            &[
                (Dimension::Instrument, "tok-ann"),
                (Dimension::Device, "dev-1"),
            ],
        );
        ctx.store.transact(writes.clone()).await.unwrap();
        // A retried request counts nothing more.
        assert!(matches!(
            ctx.store.transact(writes).await,
            Err(StoreError::ConditionFailed { .. })
        ));
    }
    let hour = 60 * MIN;
    assert_eq!(
        window(
            &ctx,
            Flow::Deposit,
            Dimension::Instrument,
            "tok-ann",
            hour,
            t0 + hour
        )
        .await
        .unwrap(),
        (3, 6_000)
    );
    // A minute later the first movement is outside the window, though its
    // item is still there (TTL has not run): it is never read.
    assert_eq!(
        window(
            &ctx,
            Flow::Deposit,
            Dimension::Instrument,
            "tok-ann",
            hour,
            t0 + hour + MIN
        )
        .await
        .unwrap(),
        (2, 5_000)
    );
    assert_eq!(
        window(
            &ctx,
            Flow::Deposit,
            Dimension::Device,
            "dev-1",
            10 * MIN,
            t0 + hour
        )
        .await
        .unwrap(),
        (1, 3_000)
    );
    assert_eq!(
        window(
            &ctx,
            Flow::Deposit,
            Dimension::Instrument,
            "tok-bob",
            hour,
            t0 + hour
        )
        .await
        .unwrap(),
        (0, 0)
    );

    // The window feeds the rule: the third movement in an hour is one too many.
    let config = RiskConfig::parse(
        r#"{"version": "v1", "thresholds": {"review": 50, "decline": 100},
            "rules": [{"id": "fast", "kind": "velocity", "dimension": "instrument",
                       "window_minutes": 60, "max_count": 2, "score": 60}]}"#,
    )
    .unwrap();
    let (count, sum) = window(
        &ctx,
        Flow::Deposit,
        Dimension::Instrument,
        "tok-ann",
        hour,
        t0 + hour,
    )
    .await
    .unwrap();
    let facts = Facts {
        velocity: [("fast".to_owned(), (count, sum))].into_iter().collect(),
        ..Facts::default()
    };
    let signals = Signals {
        player: "ann".into(),
        ..Signals::default()
    };
    let d = config.decide(Flow::Deposit, &signals, &facts);
    assert_eq!((d.outcome, d.score), (Outcome::Review, 60));
}

/// Every rule kind decided through the store: the links (instruments per
/// player, players per device and per instrument), the account's age, and a
/// payout's quick cash-out and route change from the AML log of deposits.
#[tokio::test]
async fn every_rule_kind_gathers_its_facts_from_the_store() {
    use payloop::clock::ManualClock;
    use payloop::domain::policy::Policies;
    use payloop::domain::risk::aml::{self, Logged, MoveKind};
    use payloop::domain::risk::decision;
    use payloop::domain::risk::rules::Hit;
    use payloop::domain::wallet::ledger;
    use payloop::ids::{PaymentId, PlayerId};
    use payloop::money::{Currency, Money};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let mut ctx = fixture_ctx(dir.path(), None, 30_000);
    let clock = Arc::new(ManualClock::at(1_795_000_000_000));
    ctx.clock = clock.clone();
    ctx.policies = Arc::new(Policies {
        risk: RiskConfig::parse(
            r#"{"version": "all", "thresholds": {"review": 50, "decline": 100}, "rules": [
              {"id": "instruments", "kind": "instruments_per_player", "max": 2, "score": 10},
              {"id": "device_players", "kind": "players_per_device", "max": 1, "score": 10},
              {"id": "instrument_players", "kind": "players_per_instrument", "max": 1, "score": 10},
              {"id": "young", "kind": "new_account", "max_age_hours": 24, "amount": "100.00", "currency": "EUR", "score": 10},
              {"id": "cash_out", "kind": "quick_cash_out", "within_hours": 24, "min_wager_pct": 50, "score": 10, "applies_to": ["payout"]},
              {"id": "route", "kind": "route_change", "score": 10, "applies_to": ["payout"]},
              {"id": "bin", "kind": "deny_list", "field": "bin", "values": ["400000"], "score": 10},
              {"id": "ip", "kind": "deny_list", "field": "ip", "values": ["203.0.113.9"], "score": 10},
              {"id": "asn_free", "kind": "allow_list", "field": "device", "values": ["trusted"], "score": -5}]}"#,
        )
        .unwrap(),
        ..Policies::default()
    });
    let eur = |minor| Money::from_minor(minor, Currency::EUR).unwrap();
    let signals = |player: &str, device: &str, instrument: &str, minor: i64| Signals {
        player: player.into(),
        amount: Some(eur(minor)),
        method: "card".into(),
        country: Some("FI".into()),
        device: Some(device.into()),
        instrument: Some(instrument.into()),
        bin: Some("400000".into()),
        ip: Some("203.0.113.9".into()),
        ..Signals::default()
    };
    let hit =
        |d: &decision::StoredDecision, id: &str| d.rules.iter().find(|r| r.id == id).unwrap().hit;
    let ann = PlayerId::parse("ann").unwrap();
    let bob = PlayerId::parse("bob").unwrap();
    let decide = |player: PlayerId, s: Signals, flow: Flow| {
        let ctx = ctx.clone();
        async move {
            let id = PaymentId::generate();
            decision::decide(&ctx, flow, id.as_str(), &player, &s)
                .await
                .unwrap()
        }
    };
    // ann: a new account, three instruments on one device.
    let first = decide(
        ann.clone(),
        signals("ann", "dev-1", "tok_a", 20_000),
        Flow::Deposit,
    )
    .await;
    assert_eq!(
        (hit(&first, "young"), hit(&first, "bin"), hit(&first, "ip")),
        (Hit::Hit, Hit::Hit, Hit::Hit)
    );
    assert_eq!(hit(&first, "instruments"), Hit::NoHit);
    decide(
        ann.clone(),
        signals("ann", "dev-1", "tok_b", 1_000),
        Flow::Deposit,
    )
    .await;
    let third = decide(
        ann.clone(),
        signals("ann", "dev-1", "tok_c", 1_000),
        Flow::Deposit,
    )
    .await;
    assert_eq!(hit(&third, "instruments"), Hit::Hit, "{:?}", third.rules);
    assert_eq!(hit(&third, "device_players"), Hit::NoHit);
    // bob on ann's device and instrument.
    let shared = decide(
        bob.clone(),
        signals("bob", "dev-1", "tok_a", 1_000),
        Flow::Deposit,
    )
    .await;
    assert_eq!(
        (
            hit(&shared, "device_players"),
            hit(&shared, "instrument_players")
        ),
        (Hit::Hit, Hit::Hit)
    );
    // A day on, ann is no longer new; the allow list lowers a trusted device.
    clock.advance_ms(25 * 3_600_000);
    let later = decide(
        ann.clone(),
        signals("ann", "trusted", "tok_a", 20_000),
        Flow::Deposit,
    )
    .await;
    assert_eq!(
        (hit(&later, "young"), hit(&later, "asn_free")),
        (Hit::NoHit, Hit::Hit)
    );
    // ann's credited deposit (its ledger entry is the AML movement), then
    // payouts: unwagered and to another instrument is a quick cash-out and
    // a route change.
    let sk = payloop::schema::keys::ledger_time_sk("dep", ctx.now_ms(), false);
    let dep = PaymentId::from_reserved(sk.trim_start_matches("TXN#dep_")).unwrap();
    let mut credit = ledger::Movement::new(
        &ann,
        payloop::money::Currency::EUR,
        dep.deposit_txn_id(),
        ledger::EntryKind::Credit,
    );
    credit.available_delta = 50_000;
    credit.related = vec![("payment_id", dep.to_string())];
    credit
        .related
        .extend(aml::entry_facts(Some("tok_a"), Some("FI")));
    ledger::apply(&ctx, &credit, &[]).await.unwrap();
    let logged = Logged {
        id: dep.as_str().to_owned(),
        kind: MoveKind::Deposit,
        amount: eur(50_000),
        at_ms: ctx.now_ms(),
        instrument: Some("tok_a".into()),
        country: Some("FI".into()),
        wagered_total: 0,
    };
    aml::after_movement(&ctx, &ann, &logged).await.unwrap();
    let out = decide(
        ann.clone(),
        signals("ann", "dev-1", "tok_new", 40_000),
        Flow::Payout,
    )
    .await;
    assert_eq!(
        (hit(&out, "cash_out"), hit(&out, "route")),
        (Hit::Hit, Hit::Hit),
        "{:?}",
        out.rules
    );
    let home = decide(
        ann.clone(),
        signals("ann", "dev-1", "tok_a", 40_000),
        Flow::Payout,
    )
    .await;
    assert_eq!(hit(&home, "route"), Hit::NoHit);
    assert_eq!(
        decision::list(&ctx, &ann, 100).await.unwrap().len(),
        6,
        "every decision of ann is listed"
    );
}
