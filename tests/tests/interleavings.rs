//! 1 000 random interleavings of deposits, bets, wins, rollbacks, payouts
//! and refunds over HTTP, with the sandbox PSPs duplicating and reordering
//! every webhook and the test repeating API calls: after EVERY operation the
//! player's wallet audits (balance = sum of entries, the balances-after chain
//! unbroken, held ≥ 0), and at the end every wallet equals the model kept
//! from the answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use payloop_tests::{assert_wallet_audits, TestStack, WAIT};
use serde_json::{json, Value};

const OPS: usize = 1_000;
const PLAYERS: u64 = 8;

/// A small deterministic generator (splitmix64): the same run every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cents(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn parse_minor(s: &str) -> i64 {
    let neg = s.starts_with('-');
    let (w, f) = s.trim_start_matches('-').split_once('.').unwrap();
    let v = w.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

#[derive(Default)]
struct Player {
    /// What the wallet must hold once everything has settled.
    expected: i64,
    /// Approved deposits: (payment id, amount, refunded so far).
    deposits: Vec<(String, i64, i64)>,
    /// Bets: (round, txn, amount, rolled back).
    bets: Vec<(String, String, i64, bool)>,
}

/// One API call, kept so it can be sent again (a duplicate).
#[derive(Clone)]
struct Call {
    path: String,
    body: Value,
    key: String,
    client: bool,
    status: u16,
}

async fn send(t: &TestStack, c: &Call) -> (u16, Value) {
    let token = if c.client {
        &t.stack.secrets.client_key
    } else {
        &t.stack.secrets.platform_key
    };
    let r = t
        .http
        .post(t.url(&c.path))
        .bearer_auth(token)
        .header("idempotency-key", &c.key)
        .json(&c.body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wallet(t: &TestStack, player: &str) -> (i64, i64) {
    let w = t.get(&format!("/v1/wallet/{player}"), true).await.json();
    match w["balances"].as_array().and_then(|b| b.first()) {
        Some(b) => (
            parse_minor(b["available"].as_str().unwrap()),
            parse_minor(b["held"].as_str().unwrap()),
        ),
        None => (0, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_random_interleavings_keep_every_wallet_exact() {
    let t = TestStack::start_with(|o| {
        o.sweep_every = Duration::from_millis(100);
        o.sandbox_retry_schedule = Some(vec![Duration::from_millis(100); 8]);
    })
    .await;
    for psp in ["sandbox", "sandbox-b", "sandbox-c"] {
        let r = t
            .chaos(
                psp,
                json!({"duplicate_pct": 50, "reorder_pct": 50, "delay_ms": 5}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let mut rng = Rng(20_261_121);
    let mut players: BTreeMap<String, Player> = BTreeMap::new();
    let mut calls: Vec<Call> = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in 0..PLAYERS {
        let name = format!("il-{p}");
        t.put_platform(
            &format!("/v1/admin/players/{name}/kyc"),
            json!({"kyc_level": "basic"}),
        )
        .await;
        players.insert(name, Player::default());
    }
    for i in 0..OPS {
        let name = format!("il-{}", rng.below(PLAYERS));
        let pl = players.get_mut(&name).unwrap();
        let op = match rng.below(100) {
            0..=19 => "deposit",
            20..=44 => "bet",
            45..=59 => "win",
            60..=67 => "rollback",
            68..=79 => "payout",
            80..=87 => "refund",
            _ => "repeat",
        };
        *counts.entry(op).or_default() += 1;
        let round_call = |path: &str, round: &str, txn: &str, amount: i64| Call {
            path: path.into(),
            body: json!({"player_id": name, "round_id": round, "txn_id": txn, "amount": cents(amount), "currency": "EUR"}),
            key: format!("k-{i}"),
            client: false,
            status: 0,
        };
        match op {
            "deposit" => {
                let amount = 500 + rng.below(4_500) as i64;
                let id = t.deposit(&name, &cents(amount)).await;
                if rng.below(5) == 0 {
                    t.checkout(&id, "decline").await;
                } else {
                    let page = t.checkout(&id, "approve").await;
                    assert!(page.contains("Payment captured"), "{page}");
                    pl.expected += amount;
                    pl.deposits.push((id, amount, 0));
                }
            }
            "bet" => {
                let amount = 100 + rng.below(2_000) as i64;
                let mut c = round_call(
                    "/v1/wallet/debit",
                    &format!("r{i}"),
                    &format!("b{i}"),
                    amount,
                );
                let (status, _) = send(&t, &c).await;
                assert!(status == 200 || status == 402, "bet: {status}");
                if status == 200 {
                    pl.expected -= amount;
                    pl.bets
                        .push((format!("r{i}"), format!("b{i}"), amount, false));
                }
                c.status = status;
                calls.push(c);
            }
            "win" | "rollback" if pl.bets.is_empty() => {}
            "win" => {
                let (round, _, _, _) = pl.bets[rng.below(pl.bets.len() as u64) as usize].clone();
                let amount = 100 + rng.below(3_000) as i64;
                let mut c = round_call("/v1/wallet/credit", &round, &format!("w{i}"), amount);
                let (status, body) = send(&t, &c).await;
                assert_eq!(status, 200, "win: {body}");
                pl.expected += amount;
                c.status = status;
                calls.push(c);
            }
            "rollback" => {
                let k = rng.below(pl.bets.len() as u64) as usize;
                let (round, txn, amount, rolled) = pl.bets[k].clone();
                let mut c = round_call("/v1/wallet/rollback", &round, &txn, amount);
                let (status, body) = send(&t, &c).await;
                if rolled {
                    assert_eq!(status, 200, "a repeated rollback answers the same: {body}");
                } else {
                    assert_eq!(status, 200, "rollback: {body}");
                    pl.expected += amount;
                    pl.bets[k].3 = true;
                }
                c.status = status;
                calls.push(c);
            }
            "payout" => {
                let amount = 100 + rng.below(3_000) as i64;
                let mut c = Call {
                    path: "/v1/payouts/init".into(),
                    body: json!({"player_id": name, "amount": cents(amount), "currency": "EUR", "method": "card"}),
                    key: format!("k-{i}"),
                    client: true,
                    status: 0,
                };
                let (status, body) = send(&t, &c).await;
                assert!(matches!(status, 201 | 402), "payout: {status} {body}");
                if status == 201 {
                    pl.expected -= amount;
                }
                c.status = status;
                calls.push(c);
            }
            "refund" => {
                let Some(k) =
                    (!pl.deposits.is_empty()).then(|| rng.below(pl.deposits.len() as u64) as usize)
                else {
                    continue;
                };
                let (id, amount, refunded) = pl.deposits[k].clone();
                if refunded >= amount || t.payment(&id).await["status"] != "captured" {
                    continue;
                }
                let part = 1 + rng.below((amount - refunded) as u64) as i64;
                let mut c = Call {
                    path: format!("/v1/payments/{id}/refund"),
                    body: json!({"amount": cents(part)}),
                    key: format!("k-{i}"),
                    client: false,
                    status: 0,
                };
                let (status, body) = send(&t, &c).await;
                assert_eq!(status, 201, "refund: {body}");
                pl.expected -= part;
                pl.deposits[k].2 += part;
                c.status = status;
                calls.push(c);
            }
            _ => {
                // A call that succeeded, again (a client retry): the same
                // answer, no money. (A refused one would be evaluated afresh.)
                let done: Vec<&Call> = calls
                    .iter()
                    .filter(|c| (200..300).contains(&c.status))
                    .collect();
                if let Some(c) = done.get(rng.below(done.len().max(1) as u64) as usize) {
                    let (status, body) = send(&t, c).await;
                    assert_eq!(status, c.status, "{} repeated: {body}", c.path);
                }
            }
        }
        assert_wallet_audits(&t.stack.ctx, &name).await;
    }
    // Let every webhook, duplicate and payout settle, then compare.
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    for (name, pl) in &players {
        loop {
            let (available, held) = wallet(&t, name).await;
            if (available, held) == (pl.expected, 0) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: wallet {available}/{held}, model {}",
                pl.expected
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_wallet_audits(&t.stack.ctx, name).await;
    }
    // Late duplicates and retries delivered and applied: then nothing moves.
    t.wait_idle().await;
    for (name, pl) in &players {
        assert_eq!(
            wallet(&t, name).await,
            (pl.expected, 0),
            "{name} after late duplicates"
        );
    }
    println!("interleavings: {counts:?}");
    assert!(
        counts.values().all(|n| *n > 20),
        "every kind of operation ran: {counts:?}"
    );
    t.shutdown().await;
}
