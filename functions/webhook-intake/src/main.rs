//! Lambda entry point: logging, config, clients built once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    lambda_http::run(webhook_intake::app(ctx)).await
}
