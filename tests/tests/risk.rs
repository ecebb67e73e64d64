//! Risk (issue 12, in progress): velocity windows counted exactly in the
//! store — idempotent per movement, read only within the live window — and
//! fed to the rules engine.
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
            &[(Dimension::Player, "ann"), (Dimension::Device, "dev-1")],
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
            Dimension::Player,
            "ann",
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
            Dimension::Player,
            "ann",
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
            Dimension::Player,
            "bob",
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
            "rules": [{"id": "fast", "kind": "velocity", "dimension": "player",
                       "window_minutes": 60, "max_count": 2, "score": 60}]}"#,
    )
    .unwrap();
    let (count, sum) = window(
        &ctx,
        Flow::Deposit,
        Dimension::Player,
        "ann",
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
