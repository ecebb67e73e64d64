//! Lambda entry point: logging, config, clients built once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    payloop::runtime::init_tracing();
    let (ctx, env) = payloop::runtime::lambda_ctx_and_env().await?;
    let facade = google_facade::Facade::from_env(ctx.clone(), &env)?;
    let app = payloop::runtime::with_emf(google_facade::app(facade), ctx, "google-facade");
    lambda_http::run(app).await
}
