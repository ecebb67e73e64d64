//! Lambda entry point of the platform wallet API (HTTP).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    payloop::runtime::init_tracing();
    let ctx = payloop::runtime::lambda_ctx().await?;
    let app = payloop::runtime::with_emf(wallet_credit::app(ctx.clone()), ctx, "wallet-api");
    lambda_http::run(app).await
}
