//! Lambda entry point of the payout sweep (EventBridge schedule, every
//! minute): deferred payouts are sent again, payouts past their outcome
//! timeout are asked about at the PSP or flagged for review. Each run also
//! writes the gauges (DLQ depth, payouts in review) as metrics.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            // A failed run is reported to Lambda (and retried by the next minute's run).
            let handled = payloop::domain::sweep::run(&ctx, ctx.now_ms()).await;
            // The levels operators alarm on (dead letters, payouts in
            // review), written once a minute with the sweep's own figures.
            if let Err(e) = payloop::domain::observe::gauges(&ctx).await {
                tracing::warn!(error = %e, "could not read the gauges");
            }
            payloop::runtime::flush_metrics(&ctx, "payout-sweeper");
            let handled = handled.map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            tracing::info!(handled, "sweep (payouts, refunds)");
            Ok::<_, lambda_runtime::Error>(json!({ "handled": handled }))
        }
    }))
    .await
}
