//! The wagering requirement is checked under the same condition as the hold:
//! a deposit credited between the payout's first look at the balance and its
//! hold (another Lambda, a webhook) is seen, and the payout refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use payloop::domain::payouts::{self, PayoutRequest};
use payloop::domain::wallet::ledger::{self, EntryKind, Movement};
use payloop::domain::Ctx;
use payloop::ids::{PlayerId, TxnId};
use payloop::money::Currency;
use payloop::schema::keys;
use payloop::store::embedded::EmbeddedStore;
use payloop::store::{item, Attr, Item, Key, Page, Query, Store, StoreError, Write};
use payloop_tests::fixture_ctx;

/// Credits a deposit (which adds to the wagering requirement) right after
/// the first read of the balance once armed: the interleaving of a payout
/// with a concurrent deposit credit.
struct InterleavingStore {
    inner: Arc<dyn Store>,
    armed: AtomicBool,
    other: std::sync::Mutex<Option<Ctx>>,
}

#[async_trait]
impl Store for InterleavingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(key).await;
        if key.sk.starts_with(keys::BALANCE_PREFIX) && self.armed.swap(false, Ordering::SeqCst) {
            let other = self.other.lock().unwrap().clone().unwrap();
            let player = PlayerId::parse("wren").unwrap();
            let mut m = Movement::new(
                &player,
                Currency::EUR,
                TxnId::parse("dep_concurrent").unwrap(),
                EntryKind::Credit,
            );
            m.available_delta = 5_000;
            m.wager_required_delta = 5_000;
            ledger::apply(&other, &m, &[]).await.unwrap();
        }
        got
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.inner.query(q).await
    }
    async fn write(&self, w: Write) -> Result<(), StoreError> {
        self.inner.write(w).await
    }
    async fn transact(&self, ws: Vec<Write>) -> Result<(), StoreError> {
        self.inner.transact(ws).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_credited_during_the_payout_check_blocks_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.wal")).unwrap());
    let racing = Arc::new(InterleavingStore {
        inner: Arc::clone(&inner),
        armed: AtomicBool::new(false),
        other: std::sync::Mutex::new(None),
    });
    let side = tempfile::tempdir().unwrap();
    *racing.other.lock().unwrap() =
        Some(fixture_ctx(side.path(), Some(Arc::clone(&inner)), 30_000));
    let main_dir = tempfile::tempdir().unwrap();
    let ctx = fixture_ctx(main_dir.path(), Some(racing.clone()), 30_000);
    let player = PlayerId::parse("wren").unwrap();
    // 100.00 available, nothing left to wager, basic KYC.
    let mut seed = Movement::new(
        &player,
        Currency::EUR,
        TxnId::parse("adj_start").unwrap(),
        EntryKind::Adjustment,
    );
    seed.available_delta = 10_000;
    ledger::apply(&ctx, &seed, &[]).await.unwrap();
    let profile = item(
        &keys::player_profile(&player),
        [("kyc_level", Attr::from("basic"))],
    );
    ctx.store
        .write(Write::Put {
            item: profile,
            cond: None,
        })
        .await
        .unwrap();
    racing.armed.store(true, Ordering::SeqCst);
    let req = PayoutRequest::parse(
        &payloop::domain::request::Body::from_json(
            br#"{"player_id": "wren", "amount": "60.00", "currency": "EUR", "method": "card"}"#,
        )
        .unwrap(),
    )
    .unwrap();
    let refused = payouts::init(&ctx, req, "po_race1".into()).await;
    assert!(
        !racing.armed.load(Ordering::SeqCst),
        "the deposit was credited mid-check"
    );
    match refused {
        Err(payloop::Error::PaymentRequiredWith { code, details, .. }) => {
            assert_eq!(code.as_str(), "wagering_incomplete");
            assert_eq!(details["to_wager"], "50.00");
        }
        other => panic!("the payout must wait for the wagering: {other:?}"),
    }
    let bal = ledger::Balance::from_item(
        ctx.store
            .get(&keys::balance(&player, Currency::EUR))
            .await
            .unwrap()
            .as_ref(),
    );
    assert_eq!((bal.available, bal.held), (15_000, 0), "nothing held");
    assert!(ctx
        .store
        .get(&Key::new("PAYOUT#po_race1", "A"))
        .await
        .unwrap()
        .is_none());
}
