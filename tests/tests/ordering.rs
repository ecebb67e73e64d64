//! Every message may arrive twice, late or out of order. For every order of
//! a payment's events (with a duplicate of each), applied through the same
//! domain function the queue consumer uses, the money must end exactly right:
//! credited once if and only if `captured` was the first final status, and a
//! case for every contradicting final status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use payloop::domain::deposits::apply_event;
use payloop::domain::deposits::payment::PaymentStatus;
use payloop::domain::wallet::{balances, CurrencyBalance};
use payloop::domain::Ctx;
use payloop::ids::{EventId, PaymentId, PlayerId};
use payloop::money::Currency;
use payloop::psp::event::PspEvent;
use payloop::store::{Query, SkRange};

fn ctx(dir: &std::path::Path) -> Ctx {
    payloop_tests::fixture_ctx(dir, None, 30_000)
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let head = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, head);
            out.push(tail);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_of_every_event_twice_ends_exactly_right() {
    use PaymentStatus::*;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    let eur = Currency::parse("EUR").unwrap();
    let events = [Authorized, Captured, Failed, Canceled];
    let orders = permutations(&[0, 1, 2, 3]);
    assert_eq!(orders.len(), 24);
    for (n, order) in orders.iter().enumerate() {
        let player = PlayerId::parse(&format!("order-{n}")).unwrap();
        let payment =
            payloop_tests::seed_pending_payment(&ctx, PaymentId::generate(), player.as_str(), 1234)
                .await;
        // Each event, then the whole sequence again (redelivery), concurrently per round.
        for round in 0..2 {
            let mut tasks = Vec::new();
            for &i in order {
                let ev = PspEvent {
                    psp: payment.psp.clone(),
                    event_id: EventId::parse(&format!("e{i}")).unwrap(),
                    payment_id: payment.id.clone(),
                    status: events[i],
                    amount_minor: 1234,
                    currency: eur,
                    occurred_ms: 0,
                    psp_reference: None,
                    three_ds_failed: false,
                };
                if round == 0 {
                    apply_event(&ctx, &ev).await.unwrap();
                } else {
                    let ctx = ctx.clone();
                    tasks.push(tokio::spawn(async move {
                        apply_event(&ctx, &ev).await.unwrap()
                    }));
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
        let first_final = order
            .iter()
            .map(|&i| events[i])
            .find(|s| s.is_final())
            .unwrap();
        let stored = payloop::domain::deposits::load_payment(&ctx, &payment.id)
            .await
            .unwrap();
        assert_eq!(stored.status, first_final, "order {order:?}");
        let credited: i64 = balances(&ctx, &player)
            .await
            .unwrap()
            .iter()
            .map(|b| b.available)
            .sum();
        let expected = if first_final == Captured { 1234 } else { 0 };
        assert_eq!(credited, expected, "order {order:?}");
        let cases = ctx
            .store
            .query(&Query::new(
                format!("PAY#{}", payment.id),
                SkRange::Prefix("CASE#".into()),
                10,
            ))
            .await
            .unwrap()
            .items;
        // Three final statuses: the first wins, the other two are cases, once each.
        assert_eq!(cases.len(), 2, "order {order:?}");
        let ledger = ctx
            .store
            .query(&Query::new(
                format!("WAL#{player}"),
                SkRange::Prefix("TXN#".into()),
                10,
            ))
            .await
            .unwrap()
            .items;
        assert_eq!(
            ledger.len(),
            usize::from(first_final == Captured),
            "order {order:?}"
        );
    }
}

/// Twenty consumers racing on twenty distinct `captured` events of one
/// payment: all read it as pending, so only the transaction's conditions
/// stand between them and a double credit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_captures_past_the_read_credit_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
    let eur = Currency::parse("EUR").unwrap();
    let player = PlayerId::parse("racer").unwrap();
    let payment =
        payloop_tests::seed_pending_payment(&ctx, PaymentId::generate(), "racer", 500).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (ctx, barrier) = (ctx.clone(), Arc::clone(&barrier));
        let ev = PspEvent {
            psp: payment.psp.clone(),
            event_id: EventId::parse(&format!("race-{i}")).unwrap(),
            payment_id: payment.id.clone(),
            status: PaymentStatus::Captured,
            amount_minor: 500,
            currency: eur,
            occurred_ms: 0,
            psp_reference: None,
            three_ds_failed: false,
        };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            apply_event(&ctx, &ev).await.unwrap()
        }));
    }
    let mut moved = 0;
    for t in tasks {
        moved += usize::from(
            t.await.unwrap()
                == payloop::domain::deposits::apply::Applied::Moved(PaymentStatus::Captured),
        );
    }
    assert_eq!(moved, 1);
    assert_eq!(
        balances(&ctx, &player).await.unwrap(),
        vec![CurrencyBalance {
            currency: eur,
            available: 500,
            held: 0
        }]
    );
}
