//! One scenario's world: the real handlers (the routers the Lambdas serve,
//! the queue consumer, the sweep, reconciliation) over the embedded store
//! and queue and the simulated PSP, every port behind the fault layer, on a
//! virtual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::{HeaderMap, Method, Request};
use payloop::clock::{Clock, Day, ManualClock};
use payloop::config::{Config, KeyRing, WebhookSecrets};
use payloop::domain::policy::Policies;
use payloop::domain::Ctx;
use payloop::ids::PspId;
use payloop::money::Currency;
use payloop::psp::routing::Router as Routes;
use payloop::psp::{PspConnector, Psps};
use payloop::queue::embedded::EmbeddedQueue;
use payloop::queue::Queue;
use payloop::store::embedded::EmbeddedStore;
use payloop::store::Store;
use tower::ServiceExt;

use super::faults::{FaultPsp, FaultQueue, FaultStore, Faults, Plan};
use super::psp::{SimPsp, SIM_PSP, WEBHOOK_SECRET};

pub const CLIENT_KEY: &str = "sim-client-key-0123456789";
pub const PLATFORM_KEY: &str = "sim-platform-key-0123456789";
/// 2026-11-20T01:00:00Z: scenarios stay within this settlement day.
pub const START_MS: i64 = 1_795_136_400_000;
/// Largest response body read back.
const MAX_BODY: usize = 1 << 20;

/// What the caller of one invocation heard.
#[derive(Debug, Clone)]
pub enum Heard {
    Answer {
        status: u16,
        headers: HeaderMap,
        body: String,
    },
    /// The invocation died: no answer reached the caller.
    Lost,
}

impl Heard {
    pub fn status(&self) -> Option<u16> {
        match self {
            Heard::Answer { status, .. } => Some(*status),
            Heard::Lost => None,
        }
    }
}

pub struct World {
    pub clock: Arc<ManualClock>,
    pub faults: Arc<Faults>,
    pub psp: Arc<SimPsp>,
    /// Every port behind the fault layer: what the handlers run on.
    pub ctx: Ctx,
    /// The same store, queue and PSP without faults: the infrastructure's
    /// own view (event source mapping, operators, the checks).
    pub raw: Ctx,
    pub queue_store: Arc<dyn Store>,
    pub app: Router,
    pub day: Day,
}

type Boxed = Box<dyn std::error::Error + Send + Sync>;

fn config() -> Result<Config, Boxed> {
    Ok(Config {
        client_keys: KeyRing::parse(&format!("sim:{CLIENT_KEY}"))?,
        platform_keys: KeyRing::parse(&format!("ops:{PLATFORM_KEY}"))?,
        webhook_secrets: WebhookSecrets::parse(&format!("{SIM_PSP}@timestamped:{WEBHOOK_SECRET}"))?,
        public_url: "https://pay.sim".into(),
        default_psp: PspId::parse(SIM_PSP)?,
        idempotency_ttl_s: 86_400,
        idempotency_lease_ms: 30_000,
        webhook_tolerance_s: 300,
        wagering_multiple: 1,
    })
}

/// Risk rules that send a share of deposits and payouts to review (and
/// decline a player's burst of deposits), and AML thresholds within the
/// scenarios' amounts, so reviews and alerts happen under faults.
pub const SIM_RISK_RULES: &str = r#"{"version": "sim-1", "thresholds": {"review": 50, "decline": 100},
  "rules": [
    {"id": "big_deposit", "kind": "amount_at_least", "amount": "80.00", "currency": "EUR", "score": 50, "applies_to": ["deposit"]},
    {"id": "big_payout", "kind": "amount_at_least", "amount": "60.00", "currency": "EUR", "score": 50, "applies_to": ["payout"]},
    {"id": "burst", "kind": "velocity", "dimension": "player", "window_minutes": 10, "max_count": 6, "score": 100, "applies_to": ["deposit"]}]}"#;

fn policies() -> Result<Policies, Boxed> {
    let mut aml = payloop::domain::policy::AmlPolicy::default();
    aml.cdd_threshold.insert(Currency::EUR, 15_000);
    Ok(Policies {
        risk: payloop::domain::risk::rules::RiskConfig::parse(SIM_RISK_RULES)?,
        aml,
        ..Policies::default()
    })
}

fn psps(connector: Arc<dyn PspConnector>) -> Result<Psps, Boxed> {
    let id = PspId::parse(SIM_PSP)?;
    Ok(Psps::new(vec![connector], Routes::in_order(&[id]))?)
}

impl World {
    pub fn new(seed: u64, wagering_multiple: i64) -> Result<World, Boxed> {
        let clock = Arc::new(ManualClock::at(START_MS));
        // The embedded store's own code, in memory: the simulator's crashes
        // are invocations abandoned, not processes lost, so nothing needs a
        // disk (and one thread runs everything, deterministically).
        // The queue's messages live in the same store, as in `payloop serve`.
        let embedded = Arc::new(EmbeddedStore::in_memory());
        let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::with_clock(
            Arc::clone(&embedded),
            clock.clone(),
        ));
        let queue_store: Arc<dyn Store> = embedded;
        let store: Arc<dyn Store> = Arc::clone(&queue_store);
        let faults = Arc::new(Faults::new(seed));
        let psp = Arc::new(SimPsp::new(clock.clone())?);
        let config = Arc::new(Config {
            wagering_multiple,
            ..config()?
        });
        let policies = Arc::new(policies()?);
        let raw = Ctx {
            store: Arc::clone(&store),
            queue: Arc::clone(&queue),
            config: Arc::clone(&config),
            policies: Arc::clone(&policies),
            psps: Arc::new(psps(psp.clone())?),
            clock: clock.clone(),
        };
        let ctx = Ctx {
            store: Arc::new(FaultStore {
                inner: store,
                faults: faults.clone(),
            }),
            queue: Arc::new(FaultQueue {
                inner: queue,
                faults: faults.clone(),
            }),
            config,
            policies,
            psps: Arc::new(psps(Arc::new(FaultPsp {
                inner: psp.clone(),
                faults: faults.clone(),
            }))?),
            clock: clock.clone(),
        };
        let app = payloop::edge::with_edge(
            intent_api::router(ctx.clone())
                .merge(webhook_intake::router(ctx.clone()))
                .merge(wallet_credit::router(ctx.clone()))
                .fallback(payloop::edge::not_found),
        );
        Ok(World {
            day: Day::of_ms(START_MS),
            clock,
            faults,
            psp,
            ctx,
            raw,
            queue_store,
            app,
        })
    }

    /// One HTTP invocation of the real routers, with `plan` as its fault.
    pub async fn http(
        &self,
        plan: Option<Plan>,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Heard {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let Ok(req) = req.body(Body::from(body.to_owned())) else {
            return Heard::Lost;
        };
        self.faults.begin(plan);
        let resp = self.app.clone().oneshot(req).await;
        let dead = self.faults.end();
        let Ok(resp) = resp;
        if dead {
            return Heard::Lost;
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), MAX_BODY)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Heard::Answer {
            status,
            headers,
            body,
        }
    }

    /// A platform-key call that must work (scenario set-up, no fault).
    pub async fn setup_put(&self, path: &str, body: &str) -> Result<(), Boxed> {
        self.setup(Method::PUT, path, body).await
    }

    /// A platform-key POST that must work (an operator's action, no fault).
    pub async fn setup_post(&self, path: &str, body: &str) -> Result<(), Boxed> {
        self.setup(Method::POST, path, body).await
    }

    async fn setup(&self, method: Method, path: &str, body: &str) -> Result<(), Boxed> {
        let auth = vec![("authorization", format!("Bearer {PLATFORM_KEY}"))];
        match self.http(None, method, path, &auth, body).await {
            Heard::Answer { status: 200, .. } => Ok(()),
            other => Err(format!("set-up {path}: {other:?}").into()),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Counters of one scenario.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub steps: u64,
    pub invocations: u64,
    pub by_action: BTreeMap<&'static str, u64>,
}
