//! Lambda entry point of the platform wallet API (HTTP).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    lambda_http::run(wallet_credit::app(ctx)).await
}
