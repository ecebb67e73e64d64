//! The whole loop in one process: the four functions' routers on one HTTP
//! server, the embedded store and queue in a data directory, the queue worker
//! and the sandbox PSP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use payloop::config::{
    Config, KeyRing, Secret, WebhookSecrets, DEFAULT_IDEMPOTENCY_TTL_S, DEFAULT_LEASE_MS,
    DEFAULT_WEBHOOK_TOLERANCE_S,
};
use payloop::domain::signature::Scheme;
use payloop::domain::Ctx;
use payloop::ids::PspId;
use payloop::psp::routing::Router;
use payloop::psp::{HostedSandbox, PspConnector, Psps};
use payloop::queue::embedded::EmbeddedQueue;
use payloop::queue::Queue;
use payloop::store::embedded::EmbeddedStore;
use payloop::store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::sandbox::{self, Connectors, Sandbox};

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
}

impl DevSecrets {
    fn generate() -> DevSecrets {
        let token = |prefix: &str| format!("{prefix}_{}", hex::encode(rand::random::<[u8; 24]>()));
        DevSecrets {
            client_key: token("ck"),
            platform_key: token("pk"),
            webhook_secret: token("whsec"),
        }
    }

    /// Load `dev-secrets.json` from the data dir, creating it (mode 0600) if absent.
    pub fn load_or_create(dir: &Path) -> std::io::Result<DevSecrets> {
        let path = dir.join("dev-secrets.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        let s = DevSecrets::generate();
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

pub struct LocalOptions {
    pub data_dir: PathBuf,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub pollers: usize,
    pub visibility: Duration,
    /// Decorate the store / queue (metering, fault injection in tests).
    pub wrap_store: Option<StoreWrap>,
    pub wrap_queue: Option<QueueWrap>,
    /// Use these instead of the embedded adapters (`--aws`).
    pub backends: Option<(Arc<dyn Store>, Arc<dyn Queue>)>,
    /// The webhook signature scheme the `sandbox` PSP speaks.
    pub webhook_scheme: Scheme,
    /// More sandbox PSPs (name, scheme) beside `sandbox`.
    pub extra_sandboxes: Vec<(String, Scheme)>,
    /// A routing document (JSON); default: the sandboxes in order.
    pub routing: Option<String>,
}

impl LocalOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalOptions {
            data_dir: data_dir.into(),
            host: "127.0.0.1".into(),
            port: 0,
            pollers: 4,
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
    })
}

/// One hosted sandbox connector per sandbox PSP, routed by `routing` (a JSON
/// document) or, by default, in the listed order.
fn psps(
    sandboxes: &[(PspId, Scheme)],
    base_url: &str,
    routing: Option<&str>,
) -> Result<(Psps, Connectors), BoxError> {
    let hosted: Connectors = sandboxes
        .iter()
        .map(|(psp, _)| {
            (
                psp.clone(),
                Arc::new(HostedSandbox::new(psp.clone(), base_url)),
            )
        })
        .collect();
    let names: Vec<PspId> = sandboxes.iter().map(|(psp, _)| psp.clone()).collect();
    let router = match routing {
        Some(json) => Router::from_json(json)?,
        None => Router::in_order(&names),
    };
    let connectors: Vec<Arc<dyn PspConnector>> = hosted
        .values()
        .map(|h| Arc::clone(h) as Arc<dyn PspConnector>)
        .collect();
    Ok((Psps::new(connectors, router)?, hosted))
}

fn embedded_backends(dir: &Path) -> std::io::Result<(Arc<dyn Store>, Arc<dyn Queue>)> {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("store.wal"))?);
    let queue_store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("queue.wal"))?);
    Ok((store, Arc::new(EmbeddedQueue::new(queue_store))))
}

/// Start everything; returns once the server is listening.
pub async fn start(
    opts: LocalOptions,
) -> Result<LocalStack, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let secrets = DevSecrets::load_or_create(&opts.data_dir)?;
    let sandboxes = sandbox_list(&opts)?;
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let (store, queue) = match opts.backends {
        Some(b) => b,
        None => embedded_backends(&opts.data_dir)?,
    };
    let store = match opts.wrap_store {
        Some(wrap) => wrap(store),
        None => store,
    };
    let queue = match opts.wrap_queue {
        Some(wrap) => wrap(queue),
        None => queue,
    };
    let (psps, hosted) = psps(&sandboxes, &base_url, opts.routing.as_deref())?;
    let config = Arc::new(config(&secrets, &base_url, &sandboxes)?);
    let ctx = Ctx {
        store,
        queue,
        config: Arc::clone(&config),
        psps: Arc::new(psps),
    };
    let sb = Sandbox {
        api_base: base_url.clone(),
        client_key: Secret::new(secrets.client_key.clone()),
        platform_key: Secret::new(secrets.platform_key.clone()),
        webhook_secret: Secret::new(secrets.webhook_secret.clone()),
        config,
        hosted: Arc::new(hosted),
        http: reqwest::Client::new(),
    };
    let app = payloop::edge::with_edge(
        intent_api::router(ctx.clone())
            .merge(webhook_intake::router(ctx.clone()))
            .merge(wallet_credit::router(ctx.clone()))
            .merge(sandbox::router(sb))
            .fallback(payloop::edge::not_found),
    );
    let (stop, stop_rx) = watch::channel(false);
    let (applied, _) = broadcast::channel(APPLIED_CHANNEL_CAPACITY);
    let mut tasks = worker::spawn(
        ctx.clone(),
        WorkerOptions {
            pollers: opts.pollers,
            visibility: opts.visibility,
        },
        stop_rx.clone(),
        applied.clone(),
    );
    let mut server_stop = stop_rx;
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    }));
    Ok(LocalStack {
        scheme: opts.webhook_scheme,
        addr,
        base_url,
        ctx,
        secrets,
        applied,
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
    }
}
