//! Start-up for the Lambda functions: logging and the AWS adapters, built
//! once per instance from the environment.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::domain::Ctx;
use crate::ids::PspId;
use crate::psp::routing::Router;
use crate::psp::{HostedSandbox, PspConnector, Psps};
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

/// DynamoDB table `PAYLOOP_TABLE`, SQS queues `PAYLOOP_QUEUE_URL_EVENTS` and
/// `PAYLOOP_QUEUE_URL_EVENTS_DLQ`.
pub async fn aws_backends_from_env() -> Result<(Arc<dyn Store>, Arc<dyn Queue>), ConfigError> {
    let table = required("PAYLOOP_TABLE")?;
    let events = required("PAYLOOP_QUEUE_URL_EVENTS")?;
    let dlq = required("PAYLOOP_QUEUE_URL_EVENTS_DLQ")?;
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), table);
    let queue = SqsQueue::from_urls(aws_sdk_sqs::Client::new(&conf), events, dlq);
    Ok((Arc::new(store), Arc::new(queue)))
}

/// The PSP connectors (one per PSP with webhook secrets) and the routing
/// rules (`PAYLOOP_ROUTING`, a JSON document; default: the default PSP only).
pub fn psps_from_env(config: &Config) -> Result<Psps, ConfigError> {
    let names: Vec<PspId> = config.webhook_secrets.psps().cloned().collect();
    let router = match std::env::var("PAYLOOP_ROUTING") {
        Ok(json) => Router::from_json(&json).map_err(|e| ConfigError(e.to_string()))?,
        Err(_) => Router::in_order(std::slice::from_ref(&config.default_psp)),
    };
    let connectors: Vec<Arc<dyn PspConnector>> = names
        .iter()
        .map(|n| {
            Arc::new(HostedSandbox::new(n.clone(), &config.public_url)) as Arc<dyn PspConnector>
        })
        .collect();
    Psps::new(connectors, router).map_err(|e| ConfigError(e.to_string()))
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
    })
}
