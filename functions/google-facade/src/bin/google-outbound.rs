//! Lambda entry point of the `google` queue's consumer: each message is one
//! call to Google (ReportBatchItemFailures; a failed call comes back after
//! its backoff and reaches the DLQ after the receive limit).
//!
//! Google's base URL is `PAYLOOP_GSP_BASE_URL` (its `…/gsp` URL); the
//! message security is the facade's (`PAYLOOP_GSP_KEYS`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    payloop::runtime::init_tracing();
    let (ctx, env) = payloop::runtime::lambda_ctx_and_env().await?;
    let codec = google_facade::codec_from_env(&env)?;
    let base = env.required("PAYLOOP_GSP_BASE_URL")?;
    let transport = payloop::runtime::transport_from_env()?;
    let api = google_facade::outbound::HttpGoogle::new(&base, codec, &transport)?;
    let api: Arc<dyn payloop::domain::google::outbound::GoogleApi> = Arc::new(api);
    let (ctx, api) = (&ctx, &api);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let answer = google_facade::outbound::handle_sqs(ctx, api.as_ref(), event.payload).await;
        payloop::runtime::flush_metrics(ctx, "google-outbound");
        Ok::<_, std::convert::Infallible>(answer)
    }))
    .await
}
