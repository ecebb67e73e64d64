//! The ONE conformance suite for the store and queue ports. Every adapter
//! (embedded, DynamoDB, SQS) must pass the same functions; each panics on a
//! failure. Store functions use their own partition keys (ULIDs), so suites
//! may share one table and run in parallel. Queue functions drain both
//! queues first and clean up after themselves: run them one at a time per
//! queue (see [`run_queue_suite`]).
//!
//! The concurrency checks run real OS threads against the adapter, so these
//! functions must be called inside a multi-threaded tokio runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payloop::queue::{
    self, redrive, Message, Queue, QueueName, DEFAULT_MAX_RECEIVES, MAX_RECEIVE_BATCH,
};
use payloop::store::{
    item, Attr, Cond, Item, Key, Page, Query, SkRange, Store, StoreError, UpdateOp, Write,
    MAX_TRANSACT_WRITES,
};

/// Parallel writers in the concurrency checks.
const CONCURRENT_WRITERS: usize = 20;
/// Upper bound on any wait for a message in the queue checks.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(15);

fn unique(name: &str) -> String {
    payloop::ids::new_ulid(&format!("conf-{name}"))
}

fn put(it: &Item, cond: Option<Cond>) -> Write {
    Write::Put {
        item: it.clone(),
        cond,
    }
}

fn update(key: &Key, ops: Vec<UpdateOp>, cond: Option<Cond>) -> Write {
    Write::Update {
        key: key.clone(),
        ops,
        cond,
    }
}

async fn must_write(s: &dyn Store, w: Write) {
    let shown = format!("{w:?}");
    if let Err(e) = s.write(w).await {
        panic!("write {shown} failed: {e:?}");
    }
}

async fn must_get(s: &dyn Store, key: &Key) -> Option<Item> {
    s.get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e:?}"))
}

async fn must_query(s: &dyn Store, q: &Query) -> Page {
    s.query(q)
        .await
        .unwrap_or_else(|e| panic!("query {q:?}: {e:?}"))
}

fn sks(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| Key::of(i).expect("item without key").sk)
        .collect()
}

/// Run `f(0..n)` on `n` OS threads at once (released together by a barrier)
/// and collect the results in order.
pub fn parallel<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let handle = tokio::runtime::Handle::current();
    let barrier = std::sync::Barrier::new(n);
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (f, handle, barrier) = (&f, &handle, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        handle.block_on(f(i))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("conformance thread panicked"))
                .collect()
        })
    })
}

// ---------------------------------------------------------------- store --

/// Every attribute type survives a put and a get; a put without condition
/// replaces the whole item; a missing key reads as `None`.
pub async fn store_round_trip_all_types(s: &dyn Store) {
    let key = Key::new(unique("rt"), "item");
    let nested = BTreeMap::from([
        (
            "inner".to_owned(),
            Attr::L(vec![Attr::N(1), Attr::from("x"), Attr::B(true)]),
        ),
        ("flag".to_owned(), Attr::B(false)),
        (
            "deeper".to_owned(),
            Attr::M(BTreeMap::from([("n".to_owned(), Attr::N(-7))])),
        ),
    ]);
    let it = item(
        &key,
        [
            ("s", Attr::from("héllo ✓ \"quoted\" #:")),
            ("empty_s", Attr::from("")),
            ("n", Attr::N(42)),
            ("zero", Attr::N(0)),
            ("min", Attr::N(i64::MIN)),
            ("max", Attr::N(i64::MAX)),
            ("t", Attr::B(true)),
            ("f", Attr::B(false)),
            ("m", Attr::M(nested.clone())),
            ("empty_m", Attr::M(BTreeMap::new())),
            (
                "l",
                Attr::L(vec![
                    Attr::from("a"),
                    Attr::N(2),
                    Attr::M(nested),
                    Attr::L(vec![]),
                ]),
            ),
            ("empty_l", Attr::L(Vec::new())),
            ("ttl", Attr::N(payloop::clock::now_s() + 86_400)),
        ],
    );
    must_write(s, put(&it, None)).await;
    assert_eq!(must_get(s, &key).await, Some(it), "round trip");
    assert_eq!(
        must_get(s, &Key::new(key.pk.clone(), "missing")).await,
        None
    );
    assert_eq!(must_get(s, &Key::new(unique("nopk"), "item")).await, None);

    let replaced = item(&key, [("only", Attr::N(1))]);
    must_write(s, put(&replaced, None)).await;
    assert_eq!(
        must_get(s, &key).await,
        Some(replaced),
        "a put replaces the whole item"
    );
}

/// The second NotExists put of a key fails with index 0 and the first item.
pub async fn store_put_not_exists_twice(s: &dyn Store) {
    let key = Key::new(unique("dup"), "k");
    let first = item(&key, [("v", Attr::from("first"))]);
    let second = item(&key, [("v", Attr::from("second"))]);
    must_write(s, put(&first, Some(Cond::NotExists))).await;
    let res = s.write(put(&second, Some(Cond::NotExists))).await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: Some(first.clone())
        })
    );
    assert_eq!(must_get(s, &key).await, Some(first));
}

/// Set / Add / Append / Remove, an update creating the item, Add on a
/// missing attribute, type errors, and failed conditions on updates.
pub async fn store_update_semantics(s: &dyn Store) {
    let key = Key::new(unique("upd"), "k");
    let m = Attr::M(BTreeMap::from([("a".to_owned(), Attr::N(1))]));
    let ops = vec![
        UpdateOp::set("s", "x"),
        UpdateOp::Add("n".into(), 5),
        UpdateOp::Append("l".into(), vec![Attr::from("a")]),
        UpdateOp::Set("m".into(), m.clone()),
    ];
    must_write(s, update(&key, ops, None)).await;
    let expect = item(
        &key,
        [
            ("s", Attr::from("x")),
            ("n", Attr::N(5)),
            ("l", Attr::L(vec![Attr::from("a")])),
            ("m", m.clone()),
        ],
    );
    assert_eq!(
        must_get(s, &key).await,
        Some(expect),
        "an update creates a missing item"
    );

    let ops = vec![
        UpdateOp::Add("n".into(), -2),
        UpdateOp::Add("c".into(), 7),
        UpdateOp::Append("l".into(), vec![Attr::from("b"), Attr::N(3)]),
        UpdateOp::Remove("s".into()),
        UpdateOp::Remove("never_there".into()),
    ];
    must_write(s, update(&key, ops, Some(Cond::Exists))).await;
    let list = Attr::L(vec![Attr::from("a"), Attr::from("b"), Attr::N(3)]);
    let expect = item(
        &key,
        [
            ("n", Attr::N(3)),
            ("c", Attr::N(7)),
            ("l", list.clone()),
            ("m", m.clone()),
        ],
    );
    assert_eq!(must_get(s, &key).await, Some(expect.clone()));

    must_write(s, update(&key, vec![UpdateOp::set("n", 10)], None)).await;
    let expect = item(
        &key,
        [("n", Attr::N(10)), ("c", Attr::N(7)), ("l", list), ("m", m)],
    );
    assert_eq!(
        must_get(s, &key).await,
        Some(expect.clone()),
        "set overwrites"
    );

    let bad_add = s
        .write(update(&key, vec![UpdateOp::Add("l".into(), 1)], None))
        .await;
    assert!(
        matches!(bad_add, Err(StoreError::Invalid(_))),
        "add to a list: {bad_add:?}"
    );
    let bad_append = s
        .write(update(
            &key,
            vec![UpdateOp::Append("n".into(), vec![Attr::N(1)])],
            None,
        ))
        .await;
    assert!(
        matches!(bad_append, Err(StoreError::Invalid(_))),
        "append to a number: {bad_append:?}"
    );
    assert_eq!(
        must_get(s, &key).await,
        Some(expect.clone()),
        "refused updates change nothing"
    );

    let res = s
        .write(update(
            &key,
            vec![UpdateOp::Add("n".into(), 1)],
            Some(Cond::eq("n", 11)),
        ))
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: Some(expect.clone())
        })
    );
    assert_eq!(must_get(s, &key).await, Some(expect));

    let absent = Key::new(key.pk.clone(), "absent");
    let res = s
        .write(update(
            &absent,
            vec![UpdateOp::set("x", 1)],
            Some(Cond::Exists),
        ))
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: None
        })
    );
    assert_eq!(
        must_get(s, &absent).await,
        None,
        "a failed update creates nothing"
    );
}

/// Updates DynamoDB refuses are refused by every adapter, alone or in a
/// transaction, and change nothing: no operation, a key attribute, or one
/// attribute named twice.
pub async fn store_update_refusals(s: &dyn Store) {
    let key = Key::new(unique("updref"), "k");
    let moved_pk = unique("updref-moved");
    let refused: Vec<Vec<UpdateOp>> = vec![
        vec![],
        vec![UpdateOp::set("pk", moved_pk.as_str())],
        vec![UpdateOp::set("sk", "other")],
        vec![UpdateOp::set("a", 1), UpdateOp::Remove("a".into())],
        vec![UpdateOp::Add("n".into(), 1), UpdateOp::Add("n".into(), 2)],
        vec![
            UpdateOp::Append("l".into(), vec![Attr::N(1)]),
            UpdateOp::set("l", 2),
        ],
    ];
    for ops in refused {
        let res = s.write(update(&key, ops.clone(), None)).await;
        assert!(
            matches!(res, Err(StoreError::Invalid(_))),
            "update {ops:?}: {res:?}"
        );
        let other = put(&item(&Key::new(key.pk.clone(), "other"), []), None);
        let res = s
            .transact(vec![other, update(&key, ops.clone(), None)])
            .await;
        assert!(
            matches!(res, Err(StoreError::Invalid(_))),
            "transact {ops:?}: {res:?}"
        );
    }
    let page = must_query(s, &Query::new(key.pk.clone(), SkRange::All, 10)).await;
    assert_eq!(page, Page::default(), "refused updates wrote nothing");
    assert_eq!(must_get(s, &Key::new(moved_pk, "k")).await, None);
}

/// Apply `cond` to an Add on `key`: it must pass, or fail reporting the item
/// as it stood.
async fn expect_cond(s: &dyn Store, key: &Key, cond: Cond, expect: bool) {
    let before = must_get(s, key).await;
    let res = s
        .write(update(
            key,
            vec![UpdateOp::Add("probe".into(), 1)],
            Some(cond.clone()),
        ))
        .await;
    if expect {
        assert_eq!(res, Ok(()), "condition {cond:?} should hold on {before:?}");
    } else {
        assert_eq!(
            res,
            Err(StoreError::ConditionFailed {
                index: 0,
                old: before.clone()
            }),
            "condition {cond:?} should fail on {before:?}"
        );
        assert_eq!(
            must_get(s, key).await,
            before,
            "a failed condition changes nothing"
        );
    }
}

/// Each condition kind, true and false, on an item and on a missing item.
pub async fn store_conditions(s: &dyn Store) {
    let key = Key::new(unique("cond"), "k");
    let list = Attr::L(vec![Attr::N(1), Attr::from("two")]);
    let it = item(
        &key,
        [
            ("s", Attr::from("m")),
            ("n", Attr::N(5)),
            ("b", Attr::B(true)),
            ("l", list.clone()),
        ],
    );
    must_write(s, put(&it, None)).await;
    let n = |v: i64| Attr::N(v);
    let st = |v: &str| Attr::from(v);
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::Exists, true),
        (Cond::NotExists, false),
        (Cond::AttrNotExists("nope".into()), true),
        (Cond::AttrNotExists("s".into()), false),
        (Cond::eq("s", "m"), true),
        (Cond::eq("s", "x"), false),
        (Cond::eq("n", 5), true),
        (Cond::Eq("n".into(), st("5")), false),
        (Cond::eq("b", true), true),
        (Cond::eq("b", false), false),
        (Cond::eq("nope", "m"), false),
        (Cond::Eq("l".into(), list), true),
        (Cond::In("s".into(), vec![st("a"), st("m")]), true),
        (Cond::In("s".into(), vec![st("a"), st("b")]), false),
        (Cond::In("n".into(), vec![n(4), n(5)]), true),
        (Cond::In("nope".into(), vec![st("m")]), false),
        (Cond::Ge("n".into(), n(5)), true),
        (Cond::Ge("n".into(), n(-6)), true),
        (Cond::Ge("n".into(), n(6)), false),
        (Cond::Ge("s".into(), st("l")), true),
        (Cond::Ge("s".into(), st("n")), false),
        (Cond::Ge("nope".into(), n(0)), false),
        (Cond::Lt("n".into(), n(6)), true),
        (Cond::Lt("n".into(), n(5)), false),
        (Cond::Lt("s".into(), st("n")), true),
        (Cond::Lt("s".into(), st("m")), false),
        (Cond::Lt("nope".into(), n(100)), false),
        (
            Cond::And(vec![
                Cond::Exists,
                Cond::eq("s", "m"),
                Cond::Ge("n".into(), n(1)),
            ]),
            true,
        ),
        (Cond::And(vec![Cond::Exists, Cond::eq("s", "x")]), false),
        (Cond::Or(vec![Cond::eq("s", "x"), Cond::eq("n", 5)]), true),
        (Cond::Or(vec![Cond::eq("s", "x"), Cond::NotExists]), false),
        (
            Cond::And(vec![
                Cond::Or(vec![Cond::NotExists, Cond::eq("b", true)]),
                Cond::Lt("n".into(), n(9)),
            ]),
            true,
        ),
        (
            Cond::Or(vec![
                Cond::And(vec![Cond::Exists, Cond::eq("b", false)]),
                Cond::AttrNotExists("n".into()),
            ]),
            false,
        ),
    ];
    for (cond, expect) in cases {
        expect_cond(s, &key, cond, expect).await;
    }

    // On a missing item every attribute is absent.
    let missing = Key::new(key.pk.clone(), "missing");
    for (cond, expect) in [
        (Cond::Exists, false),
        (Cond::eq("s", "m"), false),
        (Cond::Ge("n".into(), n(0)), false),
        (Cond::In("s".into(), vec![st("m")]), false),
        (Cond::Or(vec![Cond::eq("s", "m"), Cond::Exists]), false),
    ] {
        expect_cond(s, &missing, cond, expect).await;
    }
    expect_cond(
        s,
        &missing,
        Cond::And(vec![Cond::NotExists, Cond::AttrNotExists("s".into())]),
        true,
    )
    .await;
    assert_eq!(
        must_get(s, &missing)
            .await
            .and_then(|i| i.get("probe").cloned()),
        Some(Attr::N(1))
    );
}

/// Deletes honour their condition and report the item; deleting a missing
/// item without a condition is fine.
pub async fn store_delete_with_condition(s: &dyn Store) {
    let key = Key::new(unique("del"), "k");
    let it = item(&key, [("status", Attr::from("open"))]);
    must_write(s, put(&it, None)).await;
    let res = s
        .write(Write::Delete {
            key: key.clone(),
            cond: Some(Cond::eq("status", "closed")),
        })
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: Some(it.clone())
        })
    );
    assert_eq!(must_get(s, &key).await, Some(it));
    must_write(
        s,
        Write::Delete {
            key: key.clone(),
            cond: Some(Cond::eq("status", "open")),
        },
    )
    .await;
    assert_eq!(must_get(s, &key).await, None);
    must_write(
        s,
        Write::Delete {
            key: key.clone(),
            cond: None,
        },
    )
    .await;
    let res = s
        .write(Write::Delete {
            key: key.clone(),
            cond: Some(Cond::Exists),
        })
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: None
        })
    );
    let check = s
        .write(Write::Check {
            key,
            cond: Cond::NotExists,
        })
        .await;
    assert!(
        matches!(check, Err(StoreError::Invalid(_))),
        "a check alone is refused: {check:?}"
    );
}

/// A transaction applies all of its writes or none, and reports which
/// write's condition failed with the item as it stood.
pub async fn store_transact_all_or_nothing(s: &dyn Store) {
    let pk = unique("tx");
    let k = |sk: &str| Key::new(pk.clone(), sk);
    let (k1, k2, k3, k4, k5) = (k("1"), k("2"), k("3"), k("4"), k("5"));
    let it2 = item(&k2, [("v", Attr::N(1))]);
    let it4 = item(&k4, [("v", Attr::from("doomed"))]);
    must_write(s, put(&it2, None)).await;
    must_write(s, put(&it4, None)).await;
    let it1 = item(&k1, [("a", Attr::N(1))]);

    let failing = vec![
        put(&it1, Some(Cond::NotExists)),
        update(
            &k2,
            vec![UpdateOp::Add("v".into(), 1)],
            Some(Cond::eq("v", 2)),
        ),
    ];
    let res = s.transact(failing).await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 1,
            old: Some(it2.clone())
        })
    );
    assert_eq!(
        must_get(s, &k1).await,
        None,
        "the first write was not applied"
    );
    assert_eq!(must_get(s, &k2).await, Some(it2.clone()));

    let res = s
        .transact(vec![
            Write::Check {
                key: k2.clone(),
                cond: Cond::eq("v", 99),
            },
            put(&it1, None),
        ])
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 0,
            old: Some(it2.clone())
        })
    );
    assert_eq!(must_get(s, &k1).await, None);

    let res = s
        .transact(vec![
            put(&it1, None),
            update(&k3, vec![UpdateOp::set("x", 1)], Some(Cond::Exists)),
        ])
        .await;
    assert_eq!(
        res,
        Err(StoreError::ConditionFailed {
            index: 1,
            old: None
        })
    );
    assert_eq!(must_get(s, &k1).await, None);
    assert_eq!(must_get(s, &k3).await, None);

    let ok = vec![
        put(&it1, Some(Cond::NotExists)),
        update(
            &k2,
            vec![UpdateOp::Add("v".into(), 1)],
            Some(Cond::eq("v", 1)),
        ),
        Write::Check {
            key: k5.clone(),
            cond: Cond::NotExists,
        },
        Write::Delete {
            key: k4.clone(),
            cond: Some(Cond::Exists),
        },
    ];
    s.transact(ok)
        .await
        .unwrap_or_else(|e| panic!("transaction should commit: {e:?}"));
    assert_eq!(must_get(s, &k1).await, Some(it1));
    assert_eq!(must_get(s, &k2).await, Some(item(&k2, [("v", Attr::N(2))])));
    assert_eq!(must_get(s, &k4).await, None);
    assert_eq!(must_get(s, &k5).await, None, "a check writes nothing");
}

/// 100 writes commit; 101, none, or two on one item are refused whole.
pub async fn store_transact_limits(s: &dyn Store) {
    let pk = unique("txlim");
    let puts = |n: usize, tag: &str| -> Vec<Write> {
        (0..n)
            .map(|i| {
                put(
                    &item(
                        &Key::new(pk.clone(), format!("{tag}{i:03}")),
                        [("i", Attr::N(i as i64))],
                    ),
                    None,
                )
            })
            .collect()
    };
    s.transact(puts(MAX_TRANSACT_WRITES, "a"))
        .await
        .unwrap_or_else(|e| panic!("100 writes: {e:?}"));
    let page = must_query(
        s,
        &Query::new(pk.clone(), SkRange::Prefix("a".into()), 1000),
    )
    .await;
    assert_eq!(page.items.len(), MAX_TRANSACT_WRITES);

    let res = s.transact(puts(MAX_TRANSACT_WRITES + 1, "b")).await;
    assert!(
        matches!(res, Err(StoreError::Invalid(_))),
        "101 writes: {res:?}"
    );
    let res = s.transact(Vec::new()).await;
    assert!(
        matches!(res, Err(StoreError::Invalid(_))),
        "no writes: {res:?}"
    );
    let key = Key::new(pk.clone(), "c");
    let twice = vec![
        put(&item(&key, []), None),
        update(&key, vec![UpdateOp::set("x", 1)], None),
    ];
    let res = s.transact(twice).await;
    assert!(
        matches!(res, Err(StoreError::Invalid(_))),
        "two writes on one item: {res:?}"
    );
    assert_eq!(must_get(s, &key).await, None);
    let page = must_query(s, &Query::new(pk, SkRange::Prefix("b".into()), 1000)).await;
    assert!(
        page.items.is_empty(),
        "a refused transaction writes nothing"
    );
}

/// Prefix, between, all, descending, empty ranges, and `next` only when
/// more items exist.
pub async fn store_query_ranges(s: &dyn Store) {
    let pk = unique("qr");
    let mut all: Vec<String> = (1..=9).map(|i| format!("a#{i:02}")).collect();
    all.extend((1..=5).map(|i| format!("b#{i:02}")));
    all.push("c".into());
    let writes: Vec<Write> = all
        .iter()
        .map(|sk| put(&item(&Key::new(pk.clone(), sk.clone()), []), None))
        .collect();
    s.transact(writes)
        .await
        .unwrap_or_else(|e| panic!("seed: {e:?}"));
    // Another partition sharing the prefix must never leak in.
    must_write(s, put(&item(&Key::new(format!("{pk}x"), "a#01"), []), None)).await;

    let q = |range: SkRange, limit: usize| Query::new(pk.clone(), range, limit);
    let ids = |r: std::ops::RangeInclusive<usize>, p: &str| -> Vec<String> {
        r.map(|i| format!("{p}#{i:02}")).collect()
    };

    let page = must_query(s, &q(SkRange::All, 100)).await;
    assert_eq!((sks(&page), page.next.clone()), (all.clone(), None));
    let page = must_query(s, &q(SkRange::Prefix("a#".into()), 100)).await;
    assert_eq!((sks(&page), page.next.clone()), (ids(1..=9, "a"), None));
    let page = must_query(s, &q(SkRange::Between("a#03".into(), "a#05".into()), 100)).await;
    assert_eq!(sks(&page), ids(3..=5, "a"));
    let page = must_query(s, &q(SkRange::Between("a#035".into(), "b#".into()), 100)).await;
    assert_eq!(sks(&page), ids(4..=9, "a"), "bounds need not be keys");
    let page = must_query(s, &q(SkRange::Between("a#08".into(), "b#02".into()), 100)).await;
    assert_eq!(sks(&page), ["a#08", "a#09", "b#01", "b#02"]);
    let page = must_query(s, &q(SkRange::Between(String::new(), "a#02".into()), 100)).await;
    assert_eq!(sks(&page), ids(1..=2, "a"));
    let page = must_query(s, &q(SkRange::Prefix("z".into()), 100)).await;
    assert_eq!(page, Page::default());
    let page = must_query(s, &q(SkRange::Between("b".into(), "a".into()), 100)).await;
    assert_eq!(page, Page::default(), "an inverted range is empty");
    let page = must_query(s, &Query::new(unique("qr-empty"), SkRange::All, 10)).await;
    assert_eq!(page, Page::default());

    let mut desc = q(SkRange::Prefix("b#".into()), 100);
    desc.descending = true;
    let page = must_query(s, &desc).await;
    assert_eq!(sks(&page), ["b#05", "b#04", "b#03", "b#02", "b#01"]);

    let page = must_query(s, &q(SkRange::Prefix("b#".into()), 5)).await;
    assert_eq!(
        (page.items.len(), page.next),
        (5, None),
        "an exactly full last page has no next"
    );
    let page = must_query(s, &q(SkRange::Prefix("b#".into()), 4)).await;
    assert_eq!(
        (sks(&page), page.next),
        (ids(1..=4, "b"), Some("b#04".into()))
    );
    desc.limit = 2;
    let page = must_query(s, &desc).await;
    assert_eq!(
        (sks(&page), page.next),
        (vec!["b#05".to_owned(), "b#04".into()], Some("b#04".into()))
    );
}

/// Follow `next` until the end; returns the sort keys and the page sizes.
async fn collect_pages(s: &dyn Store, mut q: Query) -> (Vec<String>, Vec<usize>) {
    let (mut out, mut sizes) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let page = must_query(s, &q).await;
        sizes.push(page.items.len());
        out.extend(sks(&page));
        match page.next {
            Some(n) => q.after = Some(n),
            None => return (out, sizes),
        }
    }
    panic!("pagination did not end after 100 pages");
}

/// Cursor pagination covers every item once, in order, both directions.
pub async fn store_query_pagination(s: &dyn Store) {
    let pk = unique("qp");
    let all: Vec<String> = (0..25).map(|i| format!("p#{i:03}")).collect();
    let writes: Vec<Write> = all
        .iter()
        .map(|sk| put(&item(&Key::new(pk.clone(), sk.clone()), []), None))
        .collect();
    s.transact(writes)
        .await
        .unwrap_or_else(|e| panic!("seed: {e:?}"));

    let (got, sizes) =
        collect_pages(s, Query::new(pk.clone(), SkRange::Prefix("p#".into()), 7)).await;
    assert_eq!((got, sizes), (all.clone(), vec![7, 7, 7, 4]));

    let mut desc = Query::new(pk.clone(), SkRange::All, 10);
    desc.descending = true;
    let (got, sizes) = collect_pages(s, desc).await;
    let reversed: Vec<String> = all.iter().rev().cloned().collect();
    assert_eq!((got, sizes), (reversed, vec![10, 10, 5]));

    let between = Query::new(
        pk.clone(),
        SkRange::Between("p#005".into(), "p#019".into()),
        4,
    );
    let (got, sizes) = collect_pages(s, between).await;
    assert_eq!((got, sizes), (all[5..=19].to_vec(), vec![4, 4, 4, 3]));

    let (got, sizes) = collect_pages(s, Query::new(pk, SkRange::All, 1)).await;
    assert_eq!(got, all);
    assert_eq!(sizes.len(), 25);
}

/// Of many concurrent NotExists puts of one key exactly one wins; every
/// loser sees the winner's item.
pub async fn store_concurrent_conditional_puts(s: &dyn Store) {
    let key = Key::new(unique("race"), "k");
    let results = parallel(CONCURRENT_WRITERS, |i| {
        let it = item(&key, [("writer", Attr::N(i as i64))]);
        async move { s.write(put(&it, Some(Cond::NotExists))).await }
    });
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one put wins: {results:?}");
    let stored = must_get(s, &key).await.expect("the winner's item");
    assert_eq!(stored.get("writer"), Some(&Attr::N(winners[0] as i64)));
    for r in results.into_iter().filter(|r| r.is_err()) {
        assert_eq!(
            r,
            Err(StoreError::ConditionFailed {
                index: 0,
                old: Some(stored.clone())
            })
        );
    }
}

/// Concurrent Adds are atomic: none is lost.
pub async fn store_concurrent_adds(s: &dyn Store) {
    let key = Key::new(unique("adds"), "counter");
    let results = parallel(CONCURRENT_WRITERS, |_| {
        let w = update(&key, vec![UpdateOp::Add("n".into(), 1)], None);
        async move { s.write(w).await }
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let stored = must_get(s, &key).await.expect("counter");
    assert_eq!(stored.get("n"), Some(&Attr::N(CONCURRENT_WRITERS as i64)));
}

/// Every store check, one after the other.
pub async fn run_store_suite(s: &dyn Store) {
    store_round_trip_all_types(s).await;
    store_put_not_exists_twice(s).await;
    store_update_semantics(s).await;
    store_update_refusals(s).await;
    store_conditions(s).await;
    store_delete_with_condition(s).await;
    store_transact_all_or_nothing(s).await;
    store_transact_limits(s).await;
    store_query_ranges(s).await;
    store_query_pagination(s).await;
    store_concurrent_conditional_puts(s).await;
    store_concurrent_adds(s).await;
}

// ---------------------------------------------------------------- queue --

/// Receive and delete everything visible in both queues (events first: a
/// receive there may dead-letter).
pub async fn drain(q: &dyn Queue) {
    for queue in [QueueName::Events, QueueName::EventsDlq] {
        for _ in 0..1000 {
            let batch = q
                .receive(
                    queue,
                    MAX_RECEIVE_BATCH,
                    Duration::from_secs(30),
                    Duration::ZERO,
                )
                .await;
            let batch = batch.unwrap_or_else(|e| panic!("drain receive: {e:?}"));
            if batch.is_empty() {
                break;
            }
            for m in batch {
                q.delete(queue, &m.receipt)
                    .await
                    .unwrap_or_else(|e| panic!("drain delete: {e:?}"));
            }
        }
    }
}

/// One receive of up to 10; messages not of this test (`tag`) are deleted.
async fn receive_tagged(
    q: &dyn Queue,
    queue: QueueName,
    tag: &str,
    visibility: Duration,
    wait: Duration,
) -> Vec<Message> {
    let batch = q.receive(queue, MAX_RECEIVE_BATCH, visibility, wait).await;
    let mut mine = Vec::new();
    for m in batch.unwrap_or_else(|e| panic!("receive from {queue:?}: {e:?}")) {
        if m.body.starts_with(tag) {
            mine.push(m);
        } else {
            q.delete(queue, &m.receipt)
                .await
                .unwrap_or_else(|e| panic!("delete stray: {e:?}"));
        }
    }
    mine
}

/// Wait (bounded) for exactly one message of this test.
async fn receive_one(q: &dyn Queue, queue: QueueName, tag: &str, visibility: Duration) -> Message {
    let deadline = Instant::now() + QUEUE_TIMEOUT;
    while Instant::now() < deadline {
        let mut got = receive_tagged(q, queue, tag, visibility, Duration::from_secs(1)).await;
        assert!(got.len() <= 1, "one message expected, got {got:?}");
        if let Some(m) = got.pop() {
            return m;
        }
    }
    panic!("no message tagged {tag} in {queue:?} within {QUEUE_TIMEOUT:?}");
}

/// After `wait` (past the visibility timeout of what was deleted), no
/// message of this test comes back; `what` names the failure.
async fn assert_none_back(q: &dyn Queue, tag: &str, wait: Duration, what: &str) {
    tokio::time::sleep(wait).await;
    let back = receive_tagged(
        q,
        QueueName::Events,
        tag,
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
    .await;
    assert!(back.is_empty(), "{what}: {back:?}");
}

/// Send, receive (count 1, same body and id), delete: it never comes back.
pub async fn queue_send_receive_delete(q: &dyn Queue) {
    drain(q).await;
    let tag = unique("q-srd");
    let body = format!("{tag} {{\"json\": \"ok\", \"ünï\": 1}}");
    let id = q
        .send(QueueName::Events, &body)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    let m = receive_one(q, QueueName::Events, &tag, Duration::from_secs(1)).await;
    assert_eq!(
        (m.id.as_str(), m.body.as_str(), m.receive_count),
        (id.as_str(), body.as_str(), 1)
    );
    q.delete(QueueName::Events, &m.receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e:?}"));
    assert_none_back(
        q,
        &tag,
        Duration::from_millis(1500),
        "a deleted message came back",
    )
    .await;
    let big = "x".repeat(payloop::queue::MAX_MESSAGE_BYTES + 1);
    let res = q.send(QueueName::Events, &big).await;
    assert!(
        matches!(res, Err(payloop::queue::QueueError::Invalid(_))),
        "oversized message: {res:?}"
    );
}

/// A received message stays hidden for its visibility timeout, then comes
/// back with receive_count 2; change_visibility(0) shows it at once.
pub async fn queue_visibility_timeout(q: &dyn Queue) {
    drain(q).await;
    let tag = unique("q-vis");
    q.send(QueueName::Events, &tag)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    let first = receive_one(q, QueueName::Events, &tag, Duration::from_secs(2)).await;
    let received_at = Instant::now();
    assert_eq!(first.receive_count, 1);
    let hidden = receive_tagged(
        q,
        QueueName::Events,
        &tag,
        Duration::from_secs(2),
        Duration::ZERO,
    )
    .await;
    assert!(
        hidden.is_empty(),
        "visible during its visibility timeout: {hidden:?}"
    );

    let second = receive_one(q, QueueName::Events, &tag, Duration::from_secs(60)).await;
    assert!(
        received_at.elapsed() >= Duration::from_millis(1000),
        "came back after {:?}",
        received_at.elapsed()
    );
    assert_eq!(
        (
            second.id.as_str(),
            second.body.as_str(),
            second.receive_count
        ),
        (first.id.as_str(), tag.as_str(), 2)
    );

    q.change_visibility(QueueName::Events, &second.receipt, Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("change_visibility: {e:?}"));
    let third = receive_one(q, QueueName::Events, &tag, Duration::from_secs(60)).await;
    assert!(
        received_at.elapsed() < Duration::from_secs(60),
        "change_visibility had no effect"
    );
    assert_eq!(
        (third.id.as_str(), third.receive_count),
        (first.id.as_str(), 3)
    );
    q.delete(QueueName::Events, &third.receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e:?}"));
}

/// One batch deletes every message it names; a stale receipt in it is Ok
/// and leaves that message's later receive in force; nothing deleted comes
/// back after its visibility timeout.
pub async fn queue_delete_batch(q: &dyn Queue) {
    drain(q).await;
    let tag = unique("q-batch");
    let kept = format!("{tag}-kept");
    q.send(QueueName::Events, &kept)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    let stale = receive_one(q, QueueName::Events, &kept, Duration::from_secs(1)).await;
    let latest = receive_one(q, QueueName::Events, &kept, Duration::from_secs(60)).await;
    let mut bodies = Vec::new();
    for n in 0..3 {
        let body = format!("{tag}-{n}");
        q.send(QueueName::Events, &body)
            .await
            .unwrap_or_else(|e| panic!("send: {e:?}"));
        bodies.push(body);
    }
    let mut taken: Vec<Message> = Vec::new();
    let deadline = Instant::now() + QUEUE_TIMEOUT;
    while taken.len() < 3 && Instant::now() < deadline {
        let got = receive_tagged(
            q,
            QueueName::Events,
            &tag,
            Duration::from_secs(2),
            Duration::from_secs(1),
        )
        .await;
        taken.extend(got);
    }
    let mut got: Vec<&str> = taken.iter().map(|m| m.body.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, bodies, "the three messages, once each");
    let mut receipts: Vec<String> = taken.iter().map(|m| m.receipt.clone()).collect();
    receipts.push(stale.receipt.clone());
    let outcomes = q.delete_batch(QueueName::Events, &receipts).await;
    assert_eq!(outcomes, vec![Ok(()); 4], "three deletes and a stale one");
    assert_none_back(
        q,
        &tag,
        Duration::from_millis(2500),
        "a batch-deleted message came back",
    )
    .await;
    assert_eq!(
        q.delete_batch(QueueName::Events, std::slice::from_ref(&latest.receipt))
            .await,
        vec![Ok(())],
        "the latest receipt of the kept message"
    );
    assert!(q.delete_batch(QueueName::Events, &[]).await.is_empty());
}

/// Deleting (or hiding) with a stale, repeated or garbage receipt is Ok; the
/// latest receipt deletes the message.
pub async fn queue_stale_receipt(q: &dyn Queue) {
    drain(q).await;
    let tag = unique("q-stale");
    q.send(QueueName::Events, &tag)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    let first = receive_one(q, QueueName::Events, &tag, Duration::from_secs(1)).await;
    let second = receive_one(q, QueueName::Events, &tag, Duration::from_secs(60)).await;
    assert_eq!(second.receive_count, 2);
    assert_ne!(
        first.receipt, second.receipt,
        "each receive has its own receipt"
    );
    let ok =
        |what: &str, r: Result<(), payloop::queue::QueueError>| assert_eq!(r, Ok(()), "{what}");
    ok(
        "stale delete",
        q.delete(QueueName::Events, &first.receipt).await,
    );
    ok(
        "latest delete",
        q.delete(QueueName::Events, &second.receipt).await,
    );
    ok(
        "repeated delete",
        q.delete(QueueName::Events, &second.receipt).await,
    );
    ok(
        "garbage delete",
        q.delete(QueueName::Events, "not-a-receipt").await,
    );
    let hide = q
        .change_visibility(QueueName::Events, &second.receipt, Duration::ZERO)
        .await;
    ok("visibility change after delete", hide);
    assert_none_back(
        q,
        &tag,
        Duration::from_millis(1500),
        "the message survived its delete",
    )
    .await;
}

/// After DEFAULT_MAX_RECEIVES receives without a delete the message moves to
/// the DLQ; `redrive` brings it back to Events as a fresh message.
pub async fn queue_dead_letter_and_redrive(q: &dyn Queue) {
    drain(q).await;
    let tag = unique("q-dlq");
    q.send(QueueName::Events, &tag)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    for n in 1..=DEFAULT_MAX_RECEIVES {
        let m = receive_one(q, QueueName::Events, &tag, Duration::from_secs(1)).await;
        assert_eq!(m.receive_count, n);
    }
    let deadline = Instant::now() + QUEUE_TIMEOUT;
    let dead = loop {
        assert!(Instant::now() < deadline, "message never reached the DLQ");
        let events = receive_tagged(
            q,
            QueueName::Events,
            &tag,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            events.is_empty(),
            "received more than {DEFAULT_MAX_RECEIVES} times: {events:?}"
        );
        let mut dlq = receive_tagged(
            q,
            QueueName::EventsDlq,
            &tag,
            Duration::from_secs(60),
            Duration::ZERO,
        )
        .await;
        if let Some(m) = dlq.pop() {
            break m;
        }
    };
    assert_eq!(dead.body, tag);
    q.change_visibility(QueueName::EventsDlq, &dead.receipt, Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("change_visibility: {e:?}"));
    let moved = redrive(q, QueueName::EventsDlq, QueueName::Events, 10).await;
    assert_eq!(moved, Ok(1), "redrive moves the one dead letter");
    let back = receive_one(q, QueueName::Events, &tag, Duration::from_secs(60)).await;
    assert_eq!((back.body.as_str(), back.receive_count), (tag.as_str(), 1));
    q.delete(QueueName::Events, &back.receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e:?}"));
    let left = receive_tagged(
        q,
        QueueName::EventsDlq,
        &tag,
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .await;
    assert!(
        left.is_empty(),
        "redrive left the dead letter behind: {left:?}"
    );
}

/// Concurrent receivers never get the same message twice within its
/// visibility timeout, and together they get every message.
pub async fn queue_concurrent_receivers(q: &dyn Queue) {
    const MESSAGES: usize = 20;
    const RECEIVERS: usize = 4;
    drain(q).await;
    let tag = unique("q-conc");
    for i in 0..MESSAGES {
        q.send(QueueName::Events, &format!("{tag}#{i}"))
            .await
            .unwrap_or_else(|e| panic!("send: {e:?}"));
    }
    let seen = AtomicUsize::new(0);
    let deadline = Instant::now() + QUEUE_TIMEOUT;
    let per_receiver = parallel(RECEIVERS, |_| {
        let (seen, tag) = (&seen, &tag);
        async move {
            let mut got = Vec::new();
            while seen.load(Ordering::SeqCst) < MESSAGES && Instant::now() < deadline {
                let batch = q
                    .receive(
                        QueueName::Events,
                        3,
                        Duration::from_secs(60),
                        Duration::from_secs(1),
                    )
                    .await;
                for m in batch.unwrap_or_else(|e| panic!("receive: {e:?}")) {
                    if m.body.starts_with(tag.as_str()) {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    got.push(m);
                }
            }
            got
        }
    });
    let all: Vec<Message> = per_receiver.into_iter().flatten().collect();
    let bodies: Vec<&str> = all
        .iter()
        .map(|m| m.body.as_str())
        .filter(|b| b.starts_with(tag.as_str()))
        .collect();
    let unique_bodies: BTreeSet<&str> = bodies.iter().copied().collect();
    assert_eq!(
        bodies.len(),
        unique_bodies.len(),
        "a message was delivered twice: {bodies:?}"
    );
    assert_eq!(unique_bodies.len(), MESSAGES, "every message is received");
    for m in &all {
        q.delete(QueueName::Events, &m.receipt)
            .await
            .unwrap_or_else(|e| panic!("delete: {e:?}"));
    }
}

/// The operator's view of a dead-letter queue: `depth` counts it, `peek`
/// shows messages without taking them, `redrive_one` moves exactly the
/// one asked for and leaves the others visible.
pub async fn queue_depth_peek_and_redrive_one(q: &dyn Queue) {
    drain(q).await;
    assert_eq!(q.depth(QueueName::EventsDlq).await, Ok(0));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            q.send(QueueName::EventsDlq, &format!("dead-{i}"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(q.depth(QueueName::EventsDlq).await, Ok(3));
    let seen = queue::peek(q, QueueName::EventsDlq, 10).await.unwrap();
    let mut bodies: Vec<String> = seen.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, ["dead-0", "dead-1", "dead-2"]);
    // Looked at, not taken: all three are still there and visible.
    let again = queue::peek(q, QueueName::EventsDlq, 10).await.unwrap();
    assert_eq!(again.len(), 3, "a peek leaves the messages visible");
    let moved = queue::redrive_one(q, QueueName::EventsDlq, QueueName::Events, &ids[1], 10).await;
    assert_eq!(moved, Ok(true));
    let moved = queue::redrive_one(q, QueueName::EventsDlq, QueueName::Events, &ids[1], 10).await;
    assert_eq!(
        moved,
        Ok(false),
        "the same message twice: gone the second time"
    );
    let events = q
        .receive(
            QueueName::Events,
            10,
            Duration::from_secs(30),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["dead-1"]
    );
    let left = queue::peek(q, QueueName::EventsDlq, 10).await.unwrap();
    let mut left: Vec<&str> = left.iter().map(|m| m.body.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["dead-0", "dead-2"]);
    drain(q).await;
}

/// Every queue check, one after the other (they share the queues).
pub async fn run_queue_suite(q: &dyn Queue) {
    queue_depth_peek_and_redrive_one(q).await;
    queue_send_receive_delete(q).await;
    queue_visibility_timeout(q).await;
    queue_stale_receipt(q).await;
    queue_delete_batch(q).await;
    queue_dead_letter_and_redrive(q).await;
    queue_concurrent_receivers(q).await;
}
