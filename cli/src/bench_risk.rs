//! `payloop bench risk`: the latency of one risk decision as a deposit
//! takes it — the rules' facts read from the store (one query per velocity
//! window, one per link rule), the rules evaluated, the decision stored
//! with its velocity items in one transaction — over the embedded store of
//! a local stack, with the store's reads and write units per decision.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use payloop::domain::risk::decision;
use payloop::domain::risk::rules::{Flow, Outcome, RiskConfig, Signals};
use payloop::ids::{PaymentId, PlayerId};
use payloop::money::{Currency, Money};
use payloop::store::metered::MeteredStore;
use payloop::store::Store;

use crate::local::{self, LocalOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A rule set like a casino's: amounts, two velocity windows, links and
/// lists; its limits are high enough that bench deposits never go to
/// review (`bench deposits --with-risk` uses it too).
pub const RULES: &str = r#"{"version": "bench-2", "thresholds": {"review": 50, "decline": 100},
  "rules": [
    {"id": "big", "kind": "amount_at_least", "amount": "5000.00", "currency": "EUR", "score": 40},
    {"id": "ip", "kind": "country_mismatch", "score": 30},
    {"id": "player_hour", "kind": "velocity", "dimension": "player", "window_minutes": 60, "max_count": 1000000, "score": 50},
    {"id": "device_day", "kind": "velocity", "dimension": "device", "window_minutes": 1440, "max_amount": "100000000.00", "currency": "EUR", "score": 50},
    {"id": "devices", "kind": "players_per_device", "max": 500, "score": 40},
    {"id": "deny", "kind": "deny_list", "field": "country", "values": ["KP", "IR"], "score": 1000}]}"#;

const PLAYERS: usize = 200;

pub async fn bench(n: usize) -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(payloop::ids::new_ulid("payloop-bench-risk"));
    let meter: Arc<OnceLock<Arc<MeteredStore>>> = Arc::new(OnceLock::new());
    let m2 = Arc::clone(&meter);
    let mut opts = LocalOptions::new(&dir);
    opts.risk = RiskConfig::parse(RULES)?;
    opts.wrap_store = Some(Box::new(move |inner| {
        let metered = Arc::new(MeteredStore::new(inner));
        let _ = m2.set(Arc::clone(&metered));
        metered as Arc<dyn Store>
    }));
    let stack = local::start(opts).await?;
    let ctx = stack.ctx.clone();
    let meter = meter.get().cloned().ok_or("no meter")?;
    let eur = Currency::parse("EUR")?;
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    let mut outcomes = [0usize; 3];
    let (reads0, units0) = (meter.reads(), meter.write_units());
    for i in 0..n {
        let player = PlayerId::parse(&format!("p-{}", i % PLAYERS))?;
        let amount = Money::from_minor(1_000 + (i as i64 * 7_919) % 150_000, eur)?;
        let signals = Signals {
            player: player.as_str().to_owned(),
            amount: Some(amount),
            method: "card".into(),
            country: Some("FI".into()),
            ip_country: Some(if i % 10 == 0 { "RU" } else { "FI" }.into()),
            device: Some(format!("d-{}", i % (PLAYERS / 2))),
            ..Signals::default()
        };
        let id = PaymentId::generate();
        let t = Instant::now();
        let d = decision::decide(&ctx, Flow::Deposit, id.as_str(), &player, &signals).await?;
        times.push(t.elapsed());
        outcomes[match d.outcome {
            Outcome::Approve => 0,
            Outcome::Review => 1,
            Outcome::Decline => 2,
        }] += 1;
    }
    let (reads, units) = (meter.reads() - reads0, meter.write_units() - units0);
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    let per = |x: u64| x as f64 / n.max(1) as f64;
    println!(
        "bench risk: {n} deposit decisions stored, {} rules (2 velocity windows, 1 link rule) over {PLAYERS} players",
        RiskConfig::parse(RULES)?.rules.len(),
    );
    println!(
        "  decision latency: p50 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.99),
        times.last().copied().unwrap_or_default()
    );
    println!(
        "  store per decision: {:.2} reads, {:.2} write units",
        per(reads),
        per(units)
    );
    println!(
        "  outcomes: {} approve, {} review, {} decline",
        outcomes[0], outcomes[1], outcomes[2]
    );
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
