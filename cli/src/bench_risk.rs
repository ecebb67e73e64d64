//! `payloop bench risk`: the latency of one risk decision as a deposit
//! would take it — its velocity windows read from the store (one query per
//! window), the rules evaluated — with each movement recorded as it would
//! be, over the embedded store of a local stack.

use std::time::{Duration, Instant};

use payloop::domain::risk::rules::{Dimension, Facts, Flow, Outcome, RiskConfig, Signals};
use payloop::domain::risk::velocity::{record_writes, window, Movement};
use payloop::money::{Currency, Money};

use crate::local::{self, LocalOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A rule set like a casino's: amounts, two velocity windows, lists.
const RULES: &str = r#"{"version": "bench-1", "thresholds": {"review": 50, "decline": 100},
  "rules": [
    {"id": "big", "kind": "amount_at_least", "amount": "1000.00", "currency": "EUR", "score": 40},
    {"id": "ip", "kind": "country_mismatch", "score": 30},
    {"id": "player_hour", "kind": "velocity", "dimension": "player", "window_minutes": 60, "max_count": 20, "score": 50},
    {"id": "device_day", "kind": "velocity", "dimension": "device", "window_minutes": 1440, "max_amount": "100000.00", "currency": "EUR", "score": 50},
    {"id": "deny", "kind": "deny_list", "field": "country", "values": ["KP", "IR"], "score": 1000}]}"#;

const PLAYERS: usize = 200;

pub async fn bench(n: usize) -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(payloop::ids::new_ulid("payloop-bench-risk"));
    let stack = local::start(LocalOptions::new(&dir)).await?;
    let ctx = stack.ctx.clone();
    let config = RiskConfig::parse(RULES)?;
    let eur = Currency::parse("EUR")?;
    let windows = [
        ("player_hour", Dimension::Player, 60),
        ("device_day", Dimension::Device, 1440),
    ];
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    let mut outcomes = [0usize; 3];
    let now0 = payloop::clock::now_ms();
    for i in 0..n {
        let player = format!("p-{}", i % PLAYERS);
        let device = format!("d-{}", i % (PLAYERS / 2));
        let now = now0 + i as i64 * 1_000;
        let amount = Money::from_minor(1_000 + (i as i64 * 7_919) % 150_000, eur)?;
        let t = Instant::now();
        let mut facts = Facts::default();
        for (id, dim, minutes) in windows {
            let value = if dim == Dimension::Player {
                &player
            } else {
                &device
            };
            let w = window(&ctx, Flow::Deposit, dim, value, minutes * 60_000, now).await?;
            facts.velocity.insert(id.to_owned(), w);
        }
        let signals = Signals {
            player: player.clone(),
            amount: Some(amount),
            method: "card".into(),
            country: Some("FI".into()),
            ip_country: Some(if i % 10 == 0 { "RU" } else { "FI" }.into()),
            device: Some(device.clone()),
            ..Signals::default()
        };
        let d = config.decide(Flow::Deposit, &signals, &facts);
        times.push(t.elapsed());
        outcomes[match d.outcome {
            Outcome::Approve => 0,
            Outcome::Review => 1,
            Outcome::Decline => 2,
        }] += 1;
        let id = format!("pay_{i}");
        let m = Movement {
            id: &id,
            at_ms: now,
            amount_minor: amount.minor(),
            keep_ms: 86_400_000,
        };
        ctx.store
            .transact(record_writes(
                Flow::Deposit,
                &m,
                &[(Dimension::Player, &player), (Dimension::Device, &device)],
            ))
            .await?;
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "bench risk: {n} deposit decisions, {} rules, {} velocity windows (one query each) over {PLAYERS} players",
        config.rules.len(),
        windows.len()
    );
    println!(
        "  decision latency: p50 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.99),
        times.last().copied().unwrap_or_default()
    );
    println!(
        "  outcomes: {} approve, {} review, {} decline",
        outcomes[0], outcomes[1], outcomes[2]
    );
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
