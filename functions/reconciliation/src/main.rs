//! Lambda entry point of the nightly reconciliation (EventBridge schedule,
//! and the SQS queue of its shards).

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    let ctx = &ctx;
    let fan_out = std::env::var("PAYLOOP_QUEUE_URL_RECON").is_ok();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = reconciliation::handle(ctx, event.payload, fan_out).await;
        payloop::runtime::flush_metrics(ctx, "reconciliation");
        Ok::<_, std::convert::Infallible>(answer)
    }))
    .await
}
