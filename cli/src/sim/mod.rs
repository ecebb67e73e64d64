//! `payloop bench simulate`: deterministic simulation of every money flow.
//!
//! Each seed builds a fresh world (embedded store and queue on a tmpfs, the
//! simulated PSP, a virtual clock, seeded ids), runs a scenario of the real
//! handlers with faults injected at port calls, lets it settle, reconciles
//! the day and checks the invariants (see [`check`]). The same seed gives
//! the same scenario, so a violation prints its seed and
//! `payloop bench simulate --seed S` replays it.

pub mod check;
pub mod faults;
pub mod psp;
pub mod reviews;
pub mod scenario;
pub mod world;

use std::collections::BTreeMap;
use std::time::Instant;

use faults::{FaultKind, Layer};
use scenario::{Options, Scenario};

type Boxed = Box<dyn std::error::Error + Send + Sync>;

/// What one seed came to.
#[derive(Debug, Clone, Default)]
pub struct SeedOutcome {
    pub seed: u64,
    pub steps: u64,
    pub invocations: u64,
    pub faults: BTreeMap<(Layer, FaultKind), u64>,
    pub violations: Vec<String>,
    /// The most attempts any client request needed to get its answer.
    pub max_attempts: u32,
    pub requests: usize,
    /// A digest of every answer every client got: equal for equal runs.
    pub digest: u64,
    /// Reviews approved, reviews declined, AML alerts opened, requests
    /// the risk rules declined.
    pub risk: [u64; 4],
}

/// What the risk side of a scenario did.
async fn risk_counts(s: &Scenario) -> [u64; 4] {
    let approved = s.review_choices.values().filter(|a| **a).count() as u64;
    let declined = s.review_choices.len() as u64 - approved;
    let q = payloop::store::Query::new(
        payloop::schema::keys::ALERT_QUEUE_PK,
        payloop::store::SkRange::All,
        1_000,
    );
    let alerts = s
        .world
        .raw
        .store
        .query(&q)
        .await
        .map(|p| p.items.len() as u64)
        .unwrap_or(0);
    let refused = s.reqs.iter().filter(|r| r.done == Some(403)).count() as u64;
    [approved, declined, alerts, refused]
}

/// FNV-1a over the answers (status and body) of every request.
fn digest(s: &Scenario) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for r in &s.reqs {
        let status = r.done.unwrap_or(0).to_le_bytes();
        let body = r
            .first_ok
            .as_ref()
            .map(|(_, b)| b.as_bytes())
            .unwrap_or_default();
        for byte in status.iter().chain(body) {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Run one seed to its checks (on the current thread: ids are seeded per
/// thread).
pub async fn run_seed(seed: u64, opts: Options) -> Result<SeedOutcome, Boxed> {
    let scenario = Scenario::new(seed, opts).await?;
    payloop::ids::seed_ids(scenario.world.clock.clone(), seed);
    let done = scenario.run().await;
    payloop::ids::unseed_ids();
    let s = done?;
    Ok(SeedOutcome {
        seed,
        steps: s.tally.steps,
        invocations: s.tally.invocations,
        faults: s.world.faults.injected(),
        violations: s.violations.clone(),
        max_attempts: s
            .reqs
            .iter()
            .filter(|r| r.done.is_some())
            .map(|r| r.attempts)
            .max()
            .unwrap_or(0),
        requests: s.reqs.len(),
        digest: digest(&s),
        risk: risk_counts(&s).await,
    })
}

/// Totals over many seeds.
#[derive(Debug, Default)]
pub struct Summary {
    pub scenarios: u64,
    pub steps: u64,
    pub invocations: u64,
    pub requests: u64,
    pub faults: BTreeMap<(Layer, FaultKind), u64>,
    pub failed: Vec<SeedOutcome>,
    pub max_attempts: u32,
    pub seconds: f64,
    /// Digests of the seeds, in order.
    pub digests: Vec<u64>,
    pub risk: [u64; 4],
}

impl Summary {
    fn add(&mut self, o: SeedOutcome) {
        self.scenarios += 1;
        self.steps += o.steps;
        self.invocations += o.invocations;
        self.requests += o.requests as u64;
        self.max_attempts = self.max_attempts.max(o.max_attempts);
        self.digests.push(o.digest);
        for (total, n) in self.risk.iter_mut().zip(o.risk) {
            *total += n;
        }
        for (k, n) in &o.faults {
            *self.faults.entry(*k).or_default() += n;
        }
        if !o.violations.is_empty() {
            self.failed.push(o);
        }
    }

    pub fn print(&self) {
        let per_s = self.scenarios as f64 / self.seconds.max(1e-9);
        println!(
            "simulate: {} scenarios in {:.1} s ({per_s:.1} scenarios/s), {} steps, {} invocations, {} client requests",
            self.scenarios, self.seconds, self.steps, self.invocations, self.requests
        );
        let total: u64 = self.faults.values().sum();
        println!("faults injected: {total}");
        for ((layer, kind), n) in &self.faults {
            println!("  {:<6} {:<12} {n}", layer.as_str(), kind.as_str());
        }
        let [approved, declined, alerts, refused] = self.risk;
        println!(
            "risk: {} reviews decided ({approved} approved, {declined} declined), {alerts} AML alerts opened, {refused} requests declined or refused with 403",
            approved + declined
        );
        println!(
            "most attempts a request needed to settle: {}",
            self.max_attempts
        );
        let violations: usize = self.failed.iter().map(|o| o.violations.len()).sum();
        println!("violations: {violations} (in {} seeds)", self.failed.len());
        for o in self.failed.iter().take(20) {
            println!(
                "  seed {} — replay: payloop bench simulate --seed {}",
                o.seed, o.seed
            );
            for v in o.violations.iter().take(10) {
                println!("    {v}");
            }
        }
    }
}

/// Run `seeds` on one thread with a current-thread runtime, seed after seed.
pub fn run_many(seeds: Vec<u64>, opts: Options) -> Result<Summary, Boxed> {
    let worker = std::thread::Builder::new().name("simulate".into()).spawn(
        move || -> Result<Summary, String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut summary = Summary::default();
            for seed in seeds {
                let outcome = rt
                    .block_on(run_seed(seed, opts.clone()))
                    .map_err(|e| format!("seed {seed}: {e}"))?;
                summary.add(outcome);
            }
            summary.seconds = started.elapsed().as_secs_f64();
            Ok(summary)
        },
    )?;
    match worker.join() {
        Ok(r) => r.map_err(Boxed::from),
        Err(_) => Err("the simulation thread panicked".into()),
    }
}
