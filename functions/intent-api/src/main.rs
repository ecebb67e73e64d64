//! Lambda entry point: logging, config, clients built once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    let app = payloop::runtime::with_emf(intent_api::app(ctx.clone()), ctx, "intent-api");
    lambda_http::run(app).await
}
