//! Start-up for the Lambda functions: logging and the AWS adapters, built
//! once per instance from the environment.

use std::sync::Arc;

use crate::config::{Config, ConfigError, Secret};
use crate::domain::Ctx;
use crate::psp::http_connector::{connectors_from_config, DEFAULT_TIMEOUT};
use crate::psp::routing::Router;
use crate::psp::Psps;
use crate::queue::sqs::SqsQueue;
use crate::queue::Queue;
use crate::store::dynamodb::DynamoStore;
use crate::store::Store;

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
    std::env::var(name).map_err(|_| ConfigError(format!("{name} is not set")))
}

/// DynamoDB table `PAYLOOP_TABLE`, SQS queues `PAYLOOP_QUEUE_URL_EVENTS`,
/// `PAYLOOP_QUEUE_URL_EVENTS_DLQ`, `PAYLOOP_QUEUE_URL_NOTIFICATIONS` and,
/// where reconciliation shards are fanned out, `PAYLOOP_QUEUE_URL_RECON`.
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
    Ok((Arc::new(store), Arc::new(queue)))
}

/// The PSP connectors (one per PSP with webhook secrets, at its
/// `PAYLOOP_PSP_ENDPOINTS` URL, with `PAYLOOP_PSP_API_KEY`) and the routing
/// rules (`PAYLOOP_ROUTING`, a JSON document; default: the default PSP only).
pub fn psps_from_env(config: &Config) -> Result<Psps, ConfigError> {
    let router = match std::env::var("PAYLOOP_ROUTING") {
        Ok(json) => Router::from_json(&json).map_err(|e| ConfigError(e.to_string()))?,
        Err(_) => Router::in_order(std::slice::from_ref(&config.default_psp)),
    };
    let api_key = Secret::new(required("PAYLOOP_PSP_API_KEY")?);
    let connectors = connectors_from_config(
        config,
        &required("PAYLOOP_PSP_ENDPOINTS")?,
        &api_key,
        DEFAULT_TIMEOUT,
    )?;
    let forced = std::env::var("PAYLOOP_DEGRADED").is_ok_and(|v| v == "true" || v == "1");
    Psps::new(connectors, router)
        .map(|p| p.force_degraded(forced))
        .map_err(|e| ConfigError(e.to_string()))
}

/// Everything a Lambda handler needs.
pub async fn lambda_ctx() -> Result<Ctx, ConfigError> {
    let config = Config::from_env()?;
    let psps = psps_from_env(&config)?;
    let (store, queue) = aws_backends_from_env().await?;
    Ok(Ctx {
        store,
        queue,
        config: Arc::new(config),
        psps: Arc::new(psps),
        clock: Arc::new(crate::clock::SystemClock),
    })
}
