//! Start-up for the Lambda functions: logging and the AWS adapters, built
//! once per instance from the environment.

use std::sync::Arc;

use crate::config::optional_int;
use crate::config::{Config, ConfigError, Env, Secret};
use crate::domain::policy::{parse_fee_schedule, PayoutPolicy, Policies, ReconPolicy};
use crate::domain::Ctx;
use crate::ids::PspId;
use crate::psp::http_connector::{HttpPsp, DEFAULT_TIMEOUT};
use crate::psp::https::Transport;
use crate::psp::routing::Router;
use crate::psp::Psps;
use crate::psp::{PspConnector, WebhookKeys};
use crate::queue::sqs::SqsQueue;
use crate::queue::Queue;
use crate::store::dynamodb::DynamoStore;
use crate::store::Store;
use std::time::Duration;

/// JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .init();
}

fn required(name: &str) -> Result<String, ConfigError> {
    Env::process().required(name)
}

/// DynamoDB table `PAYLOOP_TABLE`, SQS queues `PAYLOOP_QUEUE_URL_EVENTS`,
/// `PAYLOOP_QUEUE_URL_EVENTS_DLQ`, `PAYLOOP_QUEUE_URL_NOTIFICATIONS` and,
/// where reconciliation shards are fanned out, `PAYLOOP_QUEUE_URL_RECON`;
/// where calls to Google are made or queued, `PAYLOOP_QUEUE_URL_GOOGLE` and
/// `PAYLOOP_QUEUE_URL_GOOGLE_DLQ`.
pub async fn aws_backends_from_env() -> Result<(Arc<dyn Store>, Arc<dyn Queue>), ConfigError> {
    let table = required("PAYLOOP_TABLE")?;
    let events = required("PAYLOOP_QUEUE_URL_EVENTS")?;
    let dlq = required("PAYLOOP_QUEUE_URL_EVENTS_DLQ")?;
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), table);
    let notifications = required("PAYLOOP_QUEUE_URL_NOTIFICATIONS")?;
    let mut queue = SqsQueue::from_urls(aws_sdk_sqs::Client::new(&conf), events, dlq)
        .with_notifications(notifications);
    if let Ok(recon) = std::env::var("PAYLOOP_QUEUE_URL_RECON") {
        queue = queue.with_recon(recon);
    }
    if let (Ok(google), Ok(dlq)) = (
        std::env::var("PAYLOOP_QUEUE_URL_GOOGLE"),
        std::env::var("PAYLOOP_QUEUE_URL_GOOGLE_DLQ"),
    ) {
        queue = queue.with_google(google, dlq);
    }
    Ok((Arc::new(store), Arc::new(queue)))
}

/// The PSP connectors: every entry of the PSP list `PAYLOOP_PSPS` (see
/// `psp::list`), plus one per PSP with legacy webhook secrets (at its
/// `PAYLOOP_PSP_ENDPOINTS` URL, with `PAYLOOP_PSP_API_KEY`), and the routing
/// rules (`PAYLOOP_ROUTING`, a JSON document; default: the default PSP only).
pub fn psps_from_env(config: &Config) -> Result<Psps, ConfigError> {
    psps_from(config, &Env::process())
}

/// [`psps_from_env`], with the PSPs' secrets read through `env`.
pub fn psps_from(config: &Config, env: &Env) -> Result<Psps, ConfigError> {
    let router = match env.var("PAYLOOP_ROUTING") {
        Some(json) => Router::from_json(&json).map_err(|e| ConfigError(e.to_string()))?,
        None => Router::in_order(std::slice::from_ref(&config.default_psp)),
    };
    let transport = transport_from_env()?;
    let mut connectors = match env.var("PAYLOOP_PSPS") {
        Some(json) => listed_connectors(&json, &transport, &|name| env.var(name))?,
        None => Vec::new(),
    };
    if config.webhook_secrets.psps().next().is_some() {
        let api_key = Secret::new(env.required("PAYLOOP_PSP_API_KEY")?);
        connectors.extend(connectors_from_config(
            config,
            &env.required("PAYLOOP_PSP_ENDPOINTS")?,
            &api_key,
            &transport,
            DEFAULT_TIMEOUT,
        )?);
    }
    check_unique(&connectors)?;
    let forced = std::env::var("PAYLOOP_DEGRADED").is_ok_and(|v| v == "true" || v == "1");
    Psps::new(connectors, router)
        .map(|p| p.force_degraded(forced).with_transport(transport))
        .map_err(|e| ConfigError(e.to_string()))
}

/// The deployment's policies, from the environment over the defaults.
pub fn policies_from_env() -> Result<Policies, ConfigError> {
    Ok(Policies {
        payouts: payout_policy_from_env()?,
        recon: recon_policy_from_env()?,
        rg: rg_policy_from_env()?,
        risk: risk_rules_from_env()?,
        aml: aml_policy_from_env()?,
    })
}

/// `PAYLOOP_RISK_RULES`: the rules as JSON, or the path of a JSON file;
/// unset, the shipped rules.
pub fn risk_rules_from_env() -> Result<crate::domain::risk::rules::RiskConfig, ConfigError> {
    let text = match std::env::var("PAYLOOP_RISK_RULES") {
        Err(_) => crate::domain::risk::rules::RiskConfig::SHIPPED.to_owned(),
        Ok(v) if v.trim().is_empty() => crate::domain::risk::rules::RiskConfig::SHIPPED.to_owned(),
        Ok(v) if v.trim_start().starts_with('{') => v,
        Ok(path) => std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("PAYLOOP_RISK_RULES: cannot read {path}: {e}")))?,
    };
    crate::domain::risk::rules::RiskConfig::parse(&text)
        .map_err(|e| ConfigError(format!("PAYLOOP_RISK_RULES: {e}")))
}

/// The AML preset of the jurisdiction (`PAYLOOP_RG_PRESET`).
fn aml_policy_from_env() -> Result<crate::domain::policy::AmlPolicy, ConfigError> {
    let rg = rg_policy_from_env()?;
    crate::domain::policy::AmlPolicy::preset(rg.preset)
        .ok_or_else(|| ConfigError(format!("no AML preset for {}", rg.preset)))
}

/// `PAYLOOP_RG_PRESET`: `uk` (default), `se` or `de`.
fn rg_policy_from_env() -> Result<crate::domain::policy::RgPolicy, ConfigError> {
    let name = std::env::var("PAYLOOP_RG_PRESET").unwrap_or_else(|_| "uk".into());
    crate::domain::policy::RgPolicy::preset(&name).ok_or_else(|| {
        ConfigError(format!(
            "PAYLOOP_RG_PRESET must be one of {}",
            crate::domain::policy::RgPolicy::PRESETS.join(", ")
        ))
    })
}

/// `PAYLOOP_PAYOUT_MAX_MINOR`, `PAYLOOP_PAYOUT_DAILY_MAX_MINOR`,
/// `PAYLOOP_PAYOUT_BASIC_KYC_MAX_MINOR`, `PAYLOOP_PAYOUT_TIMEOUT_SECS`,
/// `PAYLOOP_PAYOUT_RETRY_SECS` over the defaults.
fn payout_policy_from_env() -> Result<PayoutPolicy, ConfigError> {
    let d = PayoutPolicy::default();
    let positive = |name: &str, default: i64| -> Result<i64, ConfigError> {
        match optional_int(name, default)? {
            v if v > 0 => Ok(v),
            _ => Err(ConfigError(format!("{name} must be positive"))),
        }
    };
    Ok(PayoutPolicy {
        max_per_payout_minor: positive("PAYLOOP_PAYOUT_MAX_MINOR", d.max_per_payout_minor)?,
        max_per_day_minor: positive("PAYLOOP_PAYOUT_DAILY_MAX_MINOR", d.max_per_day_minor)?,
        basic_kyc_max_minor: positive("PAYLOOP_PAYOUT_BASIC_KYC_MAX_MINOR", d.basic_kyc_max_minor)?,
        outcome_timeout_ms: positive("PAYLOOP_PAYOUT_TIMEOUT_SECS", d.outcome_timeout_ms / 1000)?
            * 1000,
        retry_after_ms: positive("PAYLOOP_PAYOUT_RETRY_SECS", d.retry_after_ms / 1000)? * 1000,
    })
}

/// `PAYLOOP_FEE_SCHEDULE`, `PAYLOOP_FEE_TOLERANCE_MINOR`, `PAYLOOP_RECON_SHARDS`.
fn recon_policy_from_env() -> Result<ReconPolicy, ConfigError> {
    let d = ReconPolicy::default();
    let fees = parse_fee_schedule(&std::env::var("PAYLOOP_FEE_SCHEDULE").unwrap_or_default())
        .map_err(|e| ConfigError(format!("PAYLOOP_FEE_SCHEDULE: {e}")))?;
    let tolerance_minor = match optional_int("PAYLOOP_FEE_TOLERANCE_MINOR", d.tolerance_minor)? {
        t @ 0..=1_000_000 => t,
        _ => {
            return Err(ConfigError(
                "PAYLOOP_FEE_TOLERANCE_MINOR must be 0 to 1000000".into(),
            ))
        }
    };
    let shards = match optional_int("PAYLOOP_RECON_SHARDS", i64::from(d.shards))? {
        s @ 1..=32 => s as u32,
        _ => return Err(ConfigError("PAYLOOP_RECON_SHARDS must be 1 to 32".into())),
    };
    Ok(ReconPolicy {
        fees,
        tolerance_minor,
        shards,
    })
}

/// How PSPs are reached: HTTPS with the system's roots, plus the CA
/// certificates in `PAYLOOP_PSP_CA_FILE` (PEM) if set; plain http only with
/// `PAYLOOP_ALLOW_HTTP_PSP=true` (local development, never production).
pub fn transport_from_env() -> Result<Transport, ConfigError> {
    let mut transport = Transport::https_only();
    if let Ok(path) = std::env::var("PAYLOOP_PSP_CA_FILE") {
        let pem = std::fs::read(&path)
            .map_err(|e| ConfigError(format!("PAYLOOP_PSP_CA_FILE {path}: {e}")))?;
        transport = transport
            .trusting_pem(&pem)
            .map_err(|e| ConfigError(format!("PAYLOOP_PSP_CA_FILE: {e}")))?;
    }
    if std::env::var("PAYLOOP_ALLOW_HTTP_PSP").is_ok_and(|v| v == "true" || v == "1") {
        transport = transport.allowing_http();
    }
    Ok(transport)
}

/// The connectors of a PSP list (JSON), secrets by reference read through `env`.
pub fn listed_connectors(
    json: &str,
    transport: &Transport,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<dyn PspConnector>>, ConfigError> {
    let list = crate::psp::list::parse(json).map_err(|e| ConfigError(e.to_string()))?;
    let build = crate::psp::list::Build {
        transport,
        timeout: DEFAULT_TIMEOUT,
        env,
    };
    crate::psp::list::connectors(&list, &build).map_err(|e| ConfigError(e.to_string()))
}

/// A PSP named twice (in the list and by the legacy variables) is refused.
pub fn check_unique(connectors: &[Arc<dyn PspConnector>]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for c in connectors {
        if !seen.insert(c.id().clone()) {
            return Err(ConfigError(format!("PSP {} is configured twice", c.id())));
        }
    }
    Ok(())
}

/// One [`HttpPsp`] per PSP that has webhook secrets, at the endpoint
/// given for it (`psp=url` pairs, comma-separated).
pub fn connectors_from_config(
    config: &Config,
    endpoints: &str,
    api_key: &Secret,
    transport: &Transport,
    timeout: Duration,
) -> Result<Vec<Arc<dyn PspConnector>>, ConfigError> {
    let mut urls = std::collections::BTreeMap::new();
    for pair in endpoints
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (name, url) = pair
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("PSP endpoint {pair:?} is not psp=url")))?;
        let psp = PspId::parse(name).map_err(|e| ConfigError(format!("PSP endpoint: {e}")))?;
        transport
            .check_endpoint(url)
            .map_err(|e| ConfigError(format!("PSP endpoint of {psp}: {e}")))?;
        urls.insert(psp, url.to_owned());
    }
    config
        .webhook_secrets
        .psps()
        .map(|psp| {
            let url = urls
                .get(psp)
                .ok_or_else(|| ConfigError(format!("no API endpoint for PSP {psp}")))?;
            let (scheme, secrets) = config
                .webhook_secrets
                .for_psp(psp)
                .ok_or_else(|| ConfigError(format!("no webhook secrets for PSP {psp}")))?;
            let webhook = WebhookKeys {
                scheme,
                secrets: secrets.to_vec(),
            };
            let c = HttpPsp::new(
                psp.clone(),
                url,
                api_key.clone(),
                webhook,
                transport,
                timeout,
            )
            .map_err(|e| ConfigError(format!("PSP {psp}: {e}")))?;
            Ok(std::sync::Arc::new(c) as Arc<dyn PspConnector>)
        })
        .collect()
}

/// The secrets named by `PAYLOOP_SECRETS_ARN` (the API keys and webhook
/// secrets) and `PAYLOOP_PSP_SECRETS_ARN` (the PSP list's secrets), each a
/// JSON object in Secrets Manager, read once per instance (cold start) and
/// kept in memory: none is ever in the environment.
pub async fn secrets_env() -> Result<Env, ConfigError> {
    let arns: Vec<(&str, String)> = ["PAYLOOP_SECRETS_ARN", "PAYLOOP_PSP_SECRETS_ARN"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|arn| (name, arn)))
        .filter(|(_, arn)| !arn.is_empty())
        .collect();
    if arns.is_empty() {
        return Ok(Env::process());
    }
    let started = std::time::Instant::now();
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let env = read_secrets(&client, &arns).await?;
    let ms = started.elapsed().as_millis();
    tracing::info!(
        secrets = env.secret_count(),
        fetch_ms = ms as u64,
        "secrets read from Secrets Manager"
    );
    Ok(env)
}

/// Read each named secret (a JSON object) over the process environment.
pub async fn read_secrets(
    client: &aws_sdk_secretsmanager::Client,
    arns: &[(&str, String)],
) -> Result<Env, ConfigError> {
    let mut env = Env::process();
    for (name, arn) in arns {
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| {
                let code = aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&e)
                    .unwrap_or("unreachable")
                    .to_owned();
                ConfigError(format!("{name}: GetSecretValue failed ({code})"))
            })?;
        let text = out
            .secret_string()
            .ok_or_else(|| ConfigError(format!("{name}: the secret has no string value")))?;
        env = env.with_secret_json(name, text)?;
    }
    Ok(env)
}

/// Everything a Lambda handler needs.
pub async fn lambda_ctx() -> Result<Ctx, ConfigError> {
    lambda_ctx_and_env().await.map(|(ctx, _)| ctx)
}

/// [`lambda_ctx`], and where it read its configuration (for a function's
/// own settings, secrets included).
pub async fn lambda_ctx_and_env() -> Result<(Ctx, Env), ConfigError> {
    let env = secrets_env().await?;
    let config = Config::from_lookup(&env)?;
    let psps = psps_from(&config, &env)?;
    let (store, queue) = aws_backends_from_env().await?;
    let ctx = Ctx {
        store,
        queue,
        config: Arc::new(config),
        policies: Arc::new(policies_from_env()?),
        psps: Arc::new(psps),
        clock: Arc::new(crate::clock::SystemClock),
    };
    Ok((ctx, env))
}

/// Write what this invocation recorded as one CloudWatch EMF document (a
/// JSON line on stdout, which Lambda sends to CloudWatch Logs). Call once at
/// the end of every invocation.
pub fn flush_metrics(ctx: &Ctx, function: &str) {
    flush_metrics_to(ctx, function, &|doc| println!("{doc}"));
}

/// Where an invocation's EMF document goes (stdout in Lambda; tests collect).
pub type EmfSink = dyn Fn(String) + Send + Sync;

pub fn flush_metrics_to(ctx: &Ctx, function: &str, sink: &EmfSink) {
    if let Some(doc) = ctx.metrics().take_emf(ctx.now_ms(), function) {
        sink(doc);
    }
}

/// An HTTP function as deployed: its router, then one EMF document per
/// request (one request is one Lambda invocation).
pub fn with_emf(app: axum::Router, ctx: Ctx, function: &'static str) -> axum::Router {
    with_emf_to(app, ctx, function, Arc::new(|doc| println!("{doc}")))
}

/// [`with_emf`], the documents given to `sink`.
pub fn with_emf_to(
    app: axum::Router,
    ctx: Ctx,
    function: &'static str,
    sink: Arc<EmfSink>,
) -> axum::Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (ctx, sink) = (ctx.clone(), Arc::clone(&sink));
            async move {
                let response = next.run(req).await;
                flush_metrics_to(&ctx, function, sink.as_ref());
                response
            }
        },
    ))
}
