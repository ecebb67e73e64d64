//! Route health and the circuit breaker, shared through the store so every
//! Lambda instance sees the same picture.
//!
//! - Each instance tallies PSP call outcomes (success, latency) in memory and
//!   adds them to a per-PSP time bucket in the store at most once per
//!   `sync_every` (an atomic `ADD`, so instances never overwrite each
//!   other): no store write per deposit.
//! - The same sync reads the window's buckets and the circuit item. A closed
//!   circuit whose error rate or p95 crosses its threshold (with at least
//!   `min_samples` calls since it last closed) is opened by a conditional
//!   write; one instance wins, the others see it.
//! - After `cool_down` an open circuit lets one probe through per
//!   `probe_every`, claimed by a conditional write (half-open). The probe's
//!   success closes it, its failure opens it again.
//!
//! p95 comes from a fixed latency histogram: it is the upper bound of the
//! bucket holding the 95th percentile call.
//!
//! | item            | pk              | sk                   |
//! |-----------------|-----------------|----------------------|
//! | call tallies    | `HEALTH#<psp>`  | `B#<bucket start ms>`|
//! | circuit         | `HEALTH#<psp>`  | `CIRCUIT`            |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::ids::PspId;
use crate::metrics::{catalogue, Dim, Metrics};
use crate::schema::keys;
use crate::store::{
    item, Attr, Cond, ItemExt, Query, SkRange, Store, StoreError, UpdateOp, Write, TTL,
};

/// Latency histogram upper bounds (ms); the last bucket is "slower".
pub const LATENCY_BOUNDS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
const LAT_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;
/// p95 reported for calls slower than the last bound.
const SLOWER_MS: u64 = 60_000;
/// Buckets read per sync, at most (window / bucket is validated below this).
pub const MAX_BUCKETS: i64 = 360;

/// How health is measured and when a circuit trips (validated by the router
/// config; the defaults suit a production PSP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    pub window_ms: i64,
    pub bucket_ms: i64,
    pub min_samples: u64,
    pub cool_down_ms: i64,
    pub probe_every_ms: i64,
    pub sync_every_ms: i64,
    /// Per PSP: open the circuit above this error share (percent) ...
    pub max_error_pct: BTreeMap<PspId, u64>,
    /// ... or above this p95 latency (ms).
    pub max_p95_ms: BTreeMap<PspId, u64>,
}

pub const DEFAULT_MAX_ERROR_PCT: u64 = 50;
pub const DEFAULT_MAX_P95_MS: u64 = 4000;

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            window_ms: 60_000,
            bucket_ms: 10_000,
            min_samples: 20,
            cool_down_ms: 30_000,
            probe_every_ms: 5_000,
            sync_every_ms: 1_000,
            max_error_pct: BTreeMap::new(),
            max_p95_ms: BTreeMap::new(),
        }
    }
}

impl HealthPolicy {
    fn thresholds(&self, psp: &PspId) -> (u64, u64) {
        (
            self.max_error_pct
                .get(psp)
                .copied()
                .unwrap_or(DEFAULT_MAX_ERROR_PCT),
            self.max_p95_ms
                .get(psp)
                .copied()
                .unwrap_or(DEFAULT_MAX_P95_MS),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

impl Circuit {
    pub fn as_str(&self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
    fn parse(s: &str) -> Circuit {
        match s {
            "open" => Circuit::Open,
            "half_open" => Circuit::HalfOpen,
            _ => Circuit::Closed,
        }
    }
}

/// One PSP's health as last read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHealth {
    pub circuit: Circuit,
    /// When the circuit last changed state (ms).
    pub changed_ms: i64,
    pub probe_after_ms: i64,
    pub reason: String,
    /// Calls in the window since the circuit last changed.
    pub samples: u64,
    pub error_pct: u64,
    pub p95_ms: u64,
}

impl Default for RouteHealth {
    fn default() -> Self {
        RouteHealth {
            circuit: Circuit::Closed,
            changed_ms: 0,
            probe_after_ms: 0,
            reason: String::new(),
            samples: 0,
            error_pct: 0,
            p95_ms: 0,
        }
    }
}

impl RouteHealth {
    /// May a probe be tried now (open past its cool-down, or half-open and
    /// due)?
    pub fn probe_due(&self, policy: &HealthPolicy, now_ms: i64) -> bool {
        match self.circuit {
            Circuit::Closed => false,
            Circuit::Open => now_ms >= self.changed_ms.saturating_add(policy.cool_down_ms),
            Circuit::HalfOpen => now_ms >= self.probe_after_ms,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Tally {
    ok: u64,
    err: u64,
    latency: [u64; LAT_BUCKETS],
}

impl Tally {
    fn add(&mut self, ok: bool, latency_ms: u64) {
        if ok {
            self.ok += 1;
        } else {
            self.err += 1;
        }
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| latency_ms <= *b)
            .unwrap_or(LAT_BUCKETS - 1);
        self.latency[i] += 1;
    }

    fn merge_item(&mut self, it: &crate::store::Item) {
        let n = |name: &str| it.int_attr(name).unwrap_or(0).max(0) as u64;
        self.ok += n("ok");
        self.err += n("err");
        for (i, slot) in self.latency.iter_mut().enumerate() {
            *slot += n(&format!("l{i}"));
        }
    }

    fn samples(&self) -> u64 {
        self.ok + self.err
    }

    fn error_pct(&self) -> u64 {
        (self.err * 100).checked_div(self.samples()).unwrap_or(0)
    }

    fn p95_ms(&self) -> u64 {
        let total = self.samples();
        if total == 0 {
            return 0;
        }
        // The smallest bucket holding at least 95% of the calls.
        let need = (total * 95).div_ceil(100);
        let mut seen = 0;
        for (i, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= need {
                return LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(SLOWER_MS);
            }
        }
        SLOWER_MS
    }
}

pub struct Health {
    policy: HealthPolicy,
    pending: Mutex<BTreeMap<PspId, Tally>>,
    view: RwLock<BTreeMap<PspId, RouteHealth>>,
    last_sync_ms: AtomicI64,
    syncing: tokio::sync::Mutex<()>,
    metrics: std::sync::Arc<Metrics>,
}

impl Health {
    pub fn new(policy: HealthPolicy, metrics: std::sync::Arc<Metrics>) -> Health {
        Health {
            metrics,
            policy,
            pending: Mutex::new(BTreeMap::new()),
            view: RwLock::new(BTreeMap::new()),
            last_sync_ms: AtomicI64::new(i64::MIN),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// Count one PSP call (in memory; the next sync adds it to the store).
    pub fn record(&self, psp: &PspId, ok: bool, latency_ms: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.entry(psp.clone()).or_default().add(ok, latency_ms);
        }
    }

    /// The PSP's health as last synced (closed if never seen).
    pub fn state(&self, psp: &PspId) -> RouteHealth {
        self.view
            .read()
            .ok()
            .and_then(|v| v.get(psp).cloned())
            .unwrap_or_default()
    }

    /// Sync if the last sync is older than `sync_every` and no other task of
    /// this instance is syncing. Errors are logged: routing goes on with the
    /// last known picture.
    pub async fn maybe_sync<'a>(
        &self,
        store: &dyn Store,
        psps: impl IntoIterator<Item = &'a PspId>,
        now_ms: i64,
    ) {
        let last = self.last_sync_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < self.policy.sync_every_ms {
            return;
        }
        let Ok(_guard) = self.syncing.try_lock() else {
            return;
        };
        self.last_sync_ms.store(now_ms, Ordering::Relaxed);
        if let Err(e) = self.sync(store, psps, now_ms).await {
            tracing::warn!(error = %e, "route health sync failed; routing on the last known health");
        }
    }

    /// Flush this instance's tallies, read every PSP's window and circuit,
    /// open the circuits that crossed their thresholds.
    pub async fn sync<'a>(
        &self,
        store: &dyn Store,
        psps: impl IntoIterator<Item = &'a PspId>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let drained = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => BTreeMap::new(),
        };
        for (psp, tally) in &drained {
            self.flush(store, psp, tally, now_ms).await?;
        }
        for psp in psps {
            let health = self.read(store, psp, now_ms).await?;
            let health = self.maybe_trip(store, psp, health, now_ms).await?;
            if let Ok(mut view) = self.view.write() {
                view.insert(psp.clone(), health);
            }
        }
        Ok(())
    }

    async fn flush(
        &self,
        store: &dyn Store,
        psp: &PspId,
        t: &Tally,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let start = now_ms - now_ms.rem_euclid(self.policy.bucket_ms);
        let mut ops = vec![
            UpdateOp::Add("ok".into(), t.ok as i64),
            UpdateOp::Add("err".into(), t.err as i64),
            UpdateOp::set(
                TTL,
                Attr::N((now_ms + 2 * self.policy.window_ms) / 1000 + 3600),
            ),
        ];
        for (i, n) in t.latency.iter().enumerate().filter(|(_, n)| **n > 0) {
            ops.push(UpdateOp::Add(format!("l{i}"), *n as i64));
        }
        store
            .write(Write::Update {
                key: keys::health_bucket(psp, start),
                ops,
                cond: None,
            })
            .await
    }

    async fn read(
        &self,
        store: &dyn Store,
        psp: &PspId,
        now_ms: i64,
    ) -> Result<RouteHealth, StoreError> {
        let circuit = store.get(&keys::health_circuit(psp)).await?;
        let mut h = RouteHealth::default();
        if let Some(c) = &circuit {
            h.circuit = Circuit::parse(c.str_attr("state").unwrap_or("closed"));
            h.changed_ms = c.int_attr("changed_ms").unwrap_or(0);
            h.probe_after_ms = c.int_attr("probe_after_ms").unwrap_or(0);
            h.reason = c.str_attr("reason").unwrap_or_default().to_owned();
        }
        // Only calls made since the circuit last changed count: a circuit
        // that just closed is not re-opened by the errors that opened it.
        let from = (now_ms - self.policy.window_ms).max(h.changed_ms);
        let first = from - from.rem_euclid(self.policy.bucket_ms);
        let first = if first < h.changed_ms {
            first + self.policy.bucket_ms
        } else {
            first
        };
        let q = Query::new(
            keys::health_pk(psp),
            SkRange::Between(
                keys::health_bucket_sk(first),
                keys::health_bucket_sk(now_ms),
            ),
            MAX_BUCKETS as usize,
        );
        let mut tally = Tally::default();
        for it in store.query(&q).await?.items {
            tally.merge_item(&it);
        }
        h.samples = tally.samples();
        h.error_pct = tally.error_pct();
        h.p95_ms = tally.p95_ms();
        Ok(h)
    }

    async fn maybe_trip(
        &self,
        store: &dyn Store,
        psp: &PspId,
        mut h: RouteHealth,
        now_ms: i64,
    ) -> Result<RouteHealth, StoreError> {
        let (max_err, max_p95) = self.policy.thresholds(psp);
        if h.circuit != Circuit::Closed || h.samples < self.policy.min_samples {
            return Ok(h);
        }
        let reason = if h.error_pct > max_err {
            format!(
                "error rate {}% over {max_err}% ({} calls)",
                h.error_pct, h.samples
            )
        } else if h.p95_ms > max_p95 {
            format!(
                "p95 {} ms over {max_p95} ms ({} calls)",
                h.p95_ms, h.samples
            )
        } else {
            return Ok(h);
        };
        let seen = Cond::Or(vec![
            Cond::AttrNotExists("state".into()),
            Cond::And(vec![
                Cond::eq("state", "closed"),
                Cond::eq("changed_ms", h.changed_ms),
            ]),
        ]);
        match self
            .set_circuit(store, psp, Circuit::Open, now_ms, &reason, Some(seen))
            .await
        {
            Ok(()) => {
                tracing::warn!(psp = %psp, reason = %reason, "circuit opened");
                self.changed(psp, Circuit::Open);
                h.circuit = Circuit::Open;
                h.changed_ms = now_ms;
                h.reason = reason;
                Ok(h)
            }
            // Another instance changed it first: read its decision next sync.
            Err(StoreError::ConditionFailed { .. }) => Ok(h),
            Err(e) => Err(e),
        }
    }

    async fn set_circuit(
        &self,
        store: &dyn Store,
        psp: &PspId,
        state: Circuit,
        now_ms: i64,
        reason: &str,
        cond: Option<Cond>,
    ) -> Result<(), StoreError> {
        let it = item(
            &keys::health_circuit(psp),
            [
                ("state", Attr::from(state.as_str())),
                ("changed_ms", Attr::N(now_ms)),
                ("probe_after_ms", Attr::N(now_ms)),
                ("reason", Attr::from(reason)),
            ],
        );
        store.write(Write::Put { item: it, cond }).await
    }

    /// Claim the next half-open probe of this PSP's circuit. `true`: this
    /// caller may send one request through; report it with
    /// [`Health::probe_result`].
    pub async fn claim_probe(&self, store: &dyn Store, psp: &PspId, now_ms: i64) -> bool {
        let cool = now_ms.saturating_sub(self.policy.cool_down_ms);
        let due = Cond::Or(vec![
            Cond::And(vec![
                Cond::eq("state", "open"),
                Cond::Lt("changed_ms".into(), Attr::N(cool.saturating_add(1))),
            ]),
            Cond::And(vec![
                Cond::eq("state", "half_open"),
                Cond::Lt("probe_after_ms".into(), Attr::N(now_ms.saturating_add(1))),
            ]),
        ]);
        let write = Write::Update {
            key: keys::health_circuit(psp),
            ops: vec![
                UpdateOp::set("state", "half_open"),
                UpdateOp::set(
                    "probe_after_ms",
                    Attr::N(now_ms + self.policy.probe_every_ms),
                ),
            ],
            cond: Some(due),
        };
        match store.write(write).await {
            Ok(()) => {
                self.changed(psp, Circuit::HalfOpen);
                self.update_view(psp, |h| {
                    h.circuit = Circuit::HalfOpen;
                    h.probe_after_ms = now_ms + self.policy.probe_every_ms;
                });
                true
            }
            Err(e) => {
                if !matches!(e, StoreError::ConditionFailed { .. }) {
                    tracing::warn!(psp = %psp, error = %e, "could not claim a health probe");
                }
                // Another instance probes (or the store is failing): back off
                // locally instead of trying a write on every deposit.
                self.update_view(psp, |h| {
                    h.circuit = Circuit::HalfOpen;
                    h.probe_after_ms = now_ms + self.policy.probe_every_ms;
                });
                false
            }
        }
    }

    /// The probe's outcome: close the circuit, or open it again.
    pub async fn probe_result(&self, store: &dyn Store, psp: &PspId, ok: bool, now_ms: i64) {
        let (state, reason) = if ok {
            (Circuit::Closed, "probe succeeded")
        } else {
            (Circuit::Open, "probe failed")
        };
        let cond = Some(Cond::eq("state", "half_open"));
        match self
            .set_circuit(store, psp, state, now_ms, reason, cond)
            .await
        {
            Ok(()) => {
                tracing::warn!(psp = %psp, state = state.as_str(), "circuit {reason}");
                self.changed(psp, state);
                self.update_view(psp, |h| {
                    *h = RouteHealth {
                        circuit: state,
                        changed_ms: now_ms,
                        probe_after_ms: now_ms,
                        reason: reason.to_owned(),
                        ..RouteHealth::default()
                    }
                });
            }
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => tracing::warn!(psp = %psp, error = %e, "could not record a probe result"),
        }
    }

    /// Count a circuit change this instance made (metrics).
    fn changed(&self, psp: &PspId, to: Circuit) {
        let facts = [(Dim::Psp, psp.as_str()), (Dim::To, to.as_str())];
        self.metrics.count(&catalogue::CIRCUIT_CHANGES, &facts);
        if to == Circuit::Open {
            self.metrics.count(&catalogue::CIRCUIT_OPENED, &facts);
        }
    }

    fn update_view(&self, psp: &PspId, f: impl FnOnce(&mut RouteHealth)) {
        if let Ok(mut view) = self.view.write() {
            f(view.entry(psp.clone()).or_default());
        }
    }

    /// Every PSP's last known health (the admin view).
    pub fn snapshot(&self) -> BTreeMap<PspId, RouteHealth> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_and_error_rate_come_from_the_tally() {
        let mut t = Tally::default();
        for _ in 0..94 {
            t.add(true, 3);
        }
        for _ in 0..6 {
            t.add(false, 700);
        }
        assert_eq!((t.samples(), t.error_pct()), (100, 6));
        // 94 calls ≤ 5 ms is not 95%: the 95th call took up to 1 s.
        assert_eq!(t.p95_ms(), 1000);
        for _ in 0..26 {
            t.add(true, 4);
        }
        assert_eq!(t.p95_ms(), 5, "120 of 126 calls within 5 ms");
        let mut slow = Tally::default();
        slow.add(true, 20_000);
        assert_eq!(slow.p95_ms(), SLOWER_MS);
    }
}
