//! Lambda entry point of the SQS consumer (ReportBatchItemFailures).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let answer = wallet_credit::handle_sqs(ctx, event.payload).await;
        payloop::runtime::flush_metrics(ctx, "wallet-credit");
        Ok::<_, std::convert::Infallible>(answer)
    }))
    .await
}
