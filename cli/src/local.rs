//! The whole loop in one process: every function's router on one HTTP
//! server, the embedded store and queue in a data directory, the queue
//! worker, and the sandbox PSPs, each on its own port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use payloop::config::{
    Config, KeyRing, Secret, WebhookSecrets, DEFAULT_IDEMPOTENCY_TTL_S, DEFAULT_LEASE_MS,
    DEFAULT_WAGERING_MULTIPLE, DEFAULT_WEBHOOK_TOLERANCE_S,
};
use payloop::domain::Ctx;
use payloop::ids::PspId;
use payloop::psp::health::HealthPolicy;
use payloop::psp::http_connector::{HttpPsp, DEFAULT_TIMEOUT};
use payloop::psp::https::Transport;
use payloop::psp::routing::Router;
use payloop::psp::signature::Scheme;
use payloop::psp::{PspConnector, Psps, WebhookKeys};
use payloop::queue::embedded::EmbeddedQueue;
use payloop::queue::Queue;
use payloop::runtime::{check_unique, listed_connectors};
use payloop::store::embedded::EmbeddedStore;
use payloop::store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::google_sandbox::GoogleSandbox;
use crate::sandbox::{self, SandboxHandle, SandboxOptions};
use google_facade::outbound::HttpGoogle;
use payloop::domain::google::codec::{Codec, Plaintext};

/// The first retry wait of a call to Google in the local stack.
pub const DEFAULT_GOOGLE_BACKOFF: Duration = Duration::from_secs(2);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
use crate::worker::{self, WorkerOptions};

pub const SANDBOX_PSP: &str = "sandbox";
/// Announcements of applied events kept for slow subscribers (tests, bench).
const APPLIED_CHANNEL_CAPACITY: usize = 16_384;

/// Secrets of a local data directory, made once and kept in it.
#[derive(Clone, Serialize, Deserialize)]
pub struct DevSecrets {
    pub client_key: String,
    pub platform_key: String,
    pub webhook_secret: String,
    /// The sandbox PSPs' API (and admin) key.
    #[serde(default = "psp_api_key")]
    pub psp_api_key: String,
}

fn token(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(rand::random::<[u8; 24]>()))
}

fn psp_api_key() -> String {
    token("sk")
}

impl DevSecrets {
    fn generate() -> DevSecrets {
        DevSecrets {
            client_key: token("ck"),
            platform_key: token("pk"),
            webhook_secret: token("whsec"),
            psp_api_key: psp_api_key(),
        }
    }

    /// Load `dev-secrets.json` from the data dir, creating it (mode 0600) if absent.
    pub fn load_or_create(dir: &Path) -> std::io::Result<DevSecrets> {
        let path = dir.join("dev-secrets.json");
        let s = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let s: DevSecrets = serde_json::from_str(&text)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                if text.contains("psp_api_key") {
                    return Ok(s);
                }
                s // an older file: write it back with the new key
            }
            Err(_) => DevSecrets::generate(),
        };
        let text = serde_json::to_string_pretty(&s).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(s)
    }
}

pub type StoreWrap = Box<dyn FnOnce(Arc<dyn Store>) -> Arc<dyn Store> + Send>;
pub type QueueWrap = Box<dyn FnOnce(Arc<dyn Queue>) -> Arc<dyn Queue> + Send>;
/// A store and a queue, the two ports everything runs on.
pub type Backends = (Arc<dyn Store>, Arc<dyn Queue>);

pub struct LocalOptions {
    pub data_dir: PathBuf,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Concurrent consumers of the events queue, each taking batches of up
    /// to 10 (the Lambda event source mapping's concurrency).
    pub pollers: usize,
    pub visibility: Duration,
    /// Decorate the store / queue (metering, fault injection in tests).
    pub wrap_store: Option<StoreWrap>,
    pub wrap_queue: Option<QueueWrap>,
    /// Use these instead of the embedded adapters (`--aws`).
    pub backends: Option<Backends>,
    /// The webhook signature scheme the `sandbox` PSP speaks.
    pub webhook_scheme: Scheme,
    /// More sandbox PSPs (name, scheme) beside `sandbox`.
    pub extra_sandboxes: Vec<(String, Scheme)>,
    /// A routing document (JSON); default: the sandboxes in order.
    pub routing: Option<String>,
    /// Overrides the routing document's health policy (tests).
    pub health: Option<HealthPolicy>,
    /// Start with degradation mode forced on.
    pub degraded: bool,
    /// The sandboxes' webhook retry schedule (default: production-like).
    pub sandbox_retry_schedule: Option<Vec<Duration>>,
    /// The runtime the sandboxes run on (default: the stack's).
    pub sandbox_runtime: Option<tokio::runtime::Handle>,
    /// First sandbox port (the others follow); 0 picks free ports.
    pub sandbox_port: u16,
    /// PSP API calls slower than this count as unavailable.
    pub psp_timeout: Duration,
    /// How often the payout sweep runs.
    pub sweep_every: Duration,
    /// Payout rules (limits, KYC, timeouts).
    pub payouts: payloop::domain::policy::PayoutPolicy,
    /// A PSP list (JSON, `psp::list`) added beside the sandboxes.
    pub psp_list: Option<String>,
    /// Responsible-gambling preset (deposit limits, cooling-off; and the
    /// jurisdiction's AML parameters).
    pub rg: payloop::domain::policy::RgPolicy,
    /// The risk rules (default: none, every decision approves).
    pub risk: payloop::domain::risk::rules::RiskConfig,
    /// How many times a deposit must be wagered before a payout.
    pub wagering_multiple: i64,
    /// The Google facade's message security and the Google sandbox's (the
    /// two ends of one channel); default: plaintext both.
    pub google_codecs: Option<(Arc<dyn Codec>, Arc<dyn Codec>)>,
    /// The first wait before a failed call to Google is made again.
    pub google_backoff: Duration,
}

impl LocalOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalOptions {
            data_dir: data_dir.into(),
            host: "127.0.0.1".into(),
            port: 0,
            pollers: 16,
            visibility: Duration::from_secs(30),
            wrap_store: None,
            wrap_queue: None,
            backends: None,
            webhook_scheme: Scheme::Seed,
            extra_sandboxes: vec![
                ("sandbox-b".into(), Scheme::Timestamped),
                ("sandbox-c".into(), Scheme::StandardWebhooks),
            ],
            routing: None,
            health: None,
            degraded: false,
            sandbox_retry_schedule: None,
            sandbox_runtime: None,
            sandbox_port: 0,
            psp_timeout: DEFAULT_TIMEOUT,
            sweep_every: Duration::from_secs(1),
            payouts: payloop::domain::policy::PayoutPolicy::default(),
            psp_list: None,
            rg: payloop::domain::policy::RgPolicy::default(),
            risk: payloop::domain::risk::rules::RiskConfig::default(),
            wagering_multiple: DEFAULT_WAGERING_MULTIPLE,
            google_codecs: None,
            google_backoff: DEFAULT_GOOGLE_BACKOFF,
        }
    }
}

pub struct LocalStack {
    pub addr: SocketAddr,
    /// The webhook signature scheme of the sandbox PSP.
    pub scheme: Scheme,
    pub base_url: String,
    pub ctx: Ctx,
    pub secrets: DevSecrets,
    pub applied: broadcast::Sender<Arc<str>>,
    /// What the queue consumer is doing: `activity.drained(limit)` waits
    /// until the events queue is drained and the consumer idle.
    pub activity: Arc<worker::Activity>,
    /// The sandbox PSPs, each its own HTTP server.
    pub sandboxes: Vec<SandboxHandle>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The sandbox PSPs of a local stack: name and signature scheme.
fn sandbox_list(opts: &LocalOptions) -> Result<Vec<(PspId, Scheme)>, payloop::config::ConfigError> {
    let bad = |e: payloop::ids::IdError| payloop::config::ConfigError(e.to_string());
    let mut list = vec![(PspId::parse(SANDBOX_PSP).map_err(bad)?, opts.webhook_scheme)];
    for (name, scheme) in &opts.extra_sandboxes {
        list.push((PspId::parse(name).map_err(bad)?, *scheme));
    }
    Ok(list)
}

fn config(
    secrets: &DevSecrets,
    base_url: &str,
    sandboxes: &[(PspId, Scheme)],
    wagering_multiple: i64,
) -> Result<Config, payloop::config::ConfigError> {
    let webhook: Vec<String> = sandboxes
        .iter()
        .map(|(psp, scheme)| format!("{psp}@{}:{}", scheme.as_str(), secrets.webhook_secret))
        .collect();
    Ok(Config {
        client_keys: KeyRing::parse(&format!("dev:{}", secrets.client_key))?,
        platform_keys: KeyRing::parse(&format!("platform:{}", secrets.platform_key))?,
        webhook_secrets: WebhookSecrets::parse(&webhook.join(","))?,
        public_url: base_url.to_owned(),
        default_psp: PspId::parse(SANDBOX_PSP)
            .map_err(|e| payloop::config::ConfigError(e.to_string()))?,
        idempotency_ttl_s: DEFAULT_IDEMPOTENCY_TTL_S,
        idempotency_lease_ms: DEFAULT_LEASE_MS,
        webhook_tolerance_s: DEFAULT_WEBHOOK_TOLERANCE_S,
        wagering_multiple,
    })
}

/// Reconciliation checks fees against the sandboxes' own fee schedule.
fn sandbox_fees(sandboxes: &[(PspId, Scheme)]) -> payloop::domain::recon::ReconPolicy {
    let rule = payloop::domain::recon::FeeRule {
        bps: crate::sandbox::DEFAULT_FEE_BPS,
        fixed_minor: crate::sandbox::DEFAULT_FIXED_FEE_MINOR,
    };
    payloop::domain::recon::ReconPolicy {
        fees: sandboxes
            .iter()
            .map(|(psp, _)| (psp.clone(), rule))
            .collect(),
        ..Default::default()
    }
}

/// Start one sandbox PSP server per sandbox, each delivering its webhooks
/// to our intake at `/v1/payments/webhook/{psp}`.
async fn start_sandboxes(
    opts: &LocalOptions,
    sandboxes: &[(PspId, Scheme)],
    secrets: &DevSecrets,
    base_url: &str,
) -> Result<Vec<SandboxHandle>, BoxError> {
    let mut handles = Vec::new();
    for (i, (psp, scheme)) in sandboxes.iter().enumerate() {
        let mut so = SandboxOptions::new(
            psp.clone(),
            *scheme,
            format!("{base_url}/v1/payments/webhook/{psp}"),
            (
                Secret::new(secrets.webhook_secret.clone()),
                Secret::new(secrets.psp_api_key.clone()),
            ),
        );
        so.host = opts.host.clone();
        so.port = match opts.sandbox_port {
            0 => 0,
            p => p.checked_add(i as u16).ok_or("sandbox port out of range")?,
        };
        if let Some(schedule) = &opts.sandbox_retry_schedule {
            so.retry_schedule = schedule.clone();
        }
        so.runtime = opts.sandbox_runtime.clone();
        handles.push(sandbox::start(so).await?);
    }
    Ok(handles)
}

/// Only the sandbox PSPs, delivering webhooks to a payloop at `webhook_base`
/// (`payloop sandbox`).
pub async fn run_sandboxes(
    opts: &LocalOptions,
    webhook_base: &str,
) -> Result<Vec<SandboxHandle>, BoxError> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let secrets = DevSecrets::load_or_create(&opts.data_dir)?;
    let sandboxes = sandbox_list(opts)?;
    start_sandboxes(
        opts,
        &sandboxes,
        &secrets,
        webhook_base.trim_end_matches('/'),
    )
    .await
}

/// One HTTP connector per sandbox server, routed by `routing` (a JSON
/// document) or, by default, in the listed order.
fn psps(
    handles: &[SandboxHandle],
    config: &Config,
    secrets: &DevSecrets,
    opts: &LocalOptions,
) -> Result<Psps, BoxError> {
    let mut connectors: Vec<Arc<dyn PspConnector>> = Vec::new();
    for h in handles {
        let (scheme, keys) = config
            .webhook_secrets
            .for_psp(&h.name)
            .ok_or("sandbox without webhook secrets")?;
        let webhook = WebhookKeys {
            scheme,
            secrets: keys.to_vec(),
        };
        let api_key = Secret::new(secrets.psp_api_key.clone());
        let c = HttpPsp::new(
            h.name.clone(),
            &h.base_url,
            api_key,
            webhook,
            &local_transport(),
            opts.psp_timeout,
        )?;
        connectors.push(Arc::new(c));
    }
    if let Some(json) = &opts.psp_list {
        let env = |name: &str| std::env::var(name).ok();
        connectors.extend(listed_connectors(json, &local_transport(), &env)?);
        check_unique(&connectors)?;
    }
    let names: Vec<PspId> = handles.iter().map(|h| h.name.clone()).collect();
    let mut router = match opts.routing.as_deref() {
        Some(json) => Router::from_json(json)?,
        None => Router::in_order(&names),
    };
    if let Some(h) = &opts.health {
        router = router.with_health(h.clone());
    }
    Ok(Psps::new(connectors, router)?
        .force_degraded(opts.degraded)
        .with_transport(local_transport()))
}

/// The store and the queue share one log (`store.wal`), so a webhook's
/// record and its message, and a credit and its delete, are made durable by
/// the same group commit: one fsync where two logs needed two. Queue items
/// live in their own partitions (`Q#<queue>`). A `queue.wal` left by an older
/// version is folded in at open.
fn embedded_backends(dir: &Path) -> std::io::Result<Backends> {
    let store = Arc::new(EmbeddedStore::open_absorbing(
        &dir.join("store.wal"),
        Some(&dir.join("queue.wal")),
    )?);
    let queue = EmbeddedQueue::new(Arc::clone(&store));
    Ok((store, Arc::new(queue)))
}

/// The local stack's sandboxes listen on plain http on this machine: the one
/// place http is allowed (Lambdas refuse it unless told otherwise).
fn local_transport() -> Transport {
    Transport::https_only().allowing_http()
}

/// The store and queue: given, else embedded in the data dir; each wrapped
/// when the options say so (benches meter the store, tests inject faults).
fn backends(opts: &mut LocalOptions) -> Result<Backends, BoxError> {
    let (store, queue) = match opts.backends.take() {
        Some(b) => b,
        None => embedded_backends(&opts.data_dir)?,
    };
    let store = match opts.wrap_store.take() {
        Some(wrap) => wrap(store),
        None => store,
    };
    let queue = match opts.wrap_queue.take() {
        Some(wrap) => wrap(queue),
        None => queue,
    };
    Ok((store, queue))
}

/// Every function's routes in one router, behind the shared edge, and the
/// Google sandbox's.
fn app(ctx: &Ctx, facade: google_facade::Facade, google: GoogleSandbox) -> axum::Router {
    payloop::edge::with_edge(
        intent_api::router(ctx.clone())
            .merge(webhook_intake::router(ctx.clone()))
            .merge(wallet_credit::router(ctx.clone()))
            .merge(reconciliation::local_router(ctx.clone()))
            .merge(google_facade::router(facade))
            .merge(google.router())
            .merge(crate::home::router(ctx.clone()))
            .merge(crate::ops::router(ctx.clone()))
            .fallback(payloop::edge::not_found),
    )
}

/// Serve HTTP until `stop` turns true.
fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    })
}

/// Start everything; returns once the server is listening.
pub async fn start(
    mut opts: LocalOptions,
) -> Result<LocalStack, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let secrets = DevSecrets::load_or_create(&opts.data_dir)?;
    let sandboxes = sandbox_list(&opts)?;
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let (store, queue) = backends(&mut opts)?;
    let config = Arc::new(config(
        &secrets,
        &base_url,
        &sandboxes,
        opts.wagering_multiple,
    )?);
    let policies = Arc::new(payloop::domain::policy::Policies {
        payouts: opts.payouts.clone(),
        recon: sandbox_fees(&sandboxes),
        rg: opts.rg.clone(),
        risk: opts.risk.clone(),
        aml: payloop::domain::policy::AmlPolicy::preset(opts.rg.preset).unwrap_or_default(),
    });
    let handles = start_sandboxes(&opts, &sandboxes, &secrets, &base_url).await?;
    let psps = psps(&handles, &config, &secrets, &opts)?;
    let ctx = Ctx {
        store,
        queue,
        config: Arc::clone(&config),
        policies,
        psps: Arc::new(psps),
        clock: Arc::new(payloop::clock::SystemClock),
    };
    let (stop, stop_rx) = watch::channel(false);
    let (applied, _) = broadcast::channel(APPLIED_CHANNEL_CAPACITY);
    let (mut tasks, activity) = worker::spawn(
        ctx.clone(),
        WorkerOptions {
            pollers: opts.pollers,
            visibility: opts.visibility,
            sweep_every: opts.sweep_every,
        },
        stop_rx.clone(),
        applied.clone(),
    );
    let (facade_codec, google_codec) = opts
        .google_codecs
        .take()
        .unwrap_or_else(|| (Arc::new(Plaintext), Arc::new(Plaintext)));
    let google = GoogleSandbox::new(&base_url, google_codec)?;
    let gsp = HttpGoogle::new(
        &GoogleSandbox::gsp_base(&base_url),
        Arc::clone(&facade_codec),
        &local_transport(),
    )?;
    tasks.push(google_facade::outbound::spawn_poller(
        ctx.clone(),
        Arc::new(gsp),
        opts.google_backoff,
        stop_rx.clone(),
    ));
    let facade = google_facade::Facade {
        ctx: ctx.clone(),
        codec: facade_codec,
    };
    tasks.push(serve_http(listener, app(&ctx, facade, google), stop_rx));
    Ok(LocalStack {
        scheme: opts.webhook_scheme,
        addr,
        base_url,
        ctx,
        secrets,
        applied,
        activity,
        sandboxes: handles,
        stop,
        tasks,
    })
}

impl LocalStack {
    /// Stop the worker and the server and wait for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        for s in self.sandboxes {
            s.shutdown().await;
        }
    }

    /// The running sandbox PSP of this name.
    pub fn sandbox(&self, name: &str) -> Option<&SandboxHandle> {
        self.sandboxes.iter().find(|s| s.name.as_str() == name)
    }
}
