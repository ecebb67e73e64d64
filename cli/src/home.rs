//! What `payloop serve` shows at `/`: what is running (version, store, PSPs,
//! rules, modes) and where to go next (the operator console at `/ops`, the
//! API document, served at `/openapi.yaml`). No key or secret appears on the page.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use payloop::domain::Ctx;

use crate::sandbox::pages::escape;

/// The API document the functions implement (infra/openapi.yaml).
pub const OPENAPI: &str = include_str!("../../infra/openapi.yaml");

pub fn router(ctx: Ctx) -> axum::Router {
    axum::Router::new()
        .route("/", get(home))
        .route("/openapi.yaml", get(openapi))
        .with_state(ctx)
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        OPENAPI,
    )
}

async fn home(State(ctx): State<Ctx>) -> Html<String> {
    let psps: Vec<String> = ctx.psps.ids().map(|p| escape(p.as_str())).collect();
    let degraded = match ctx
        .psps
        .modes
        .current(ctx.store.as_ref(), ctx.now_ms())
        .await
    {
        Ok(m) if m.degraded => "on",
        Ok(_) => "off",
        Err(_) => "unknown (store unavailable)",
    };
    let p = &ctx.policies;
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>payloop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}}dt{{font-weight:bold}}</style></head>
<body><main><h1>payloop is running</h1>
<dl>
<dt>Version</dt><dd>{version}</dd>
<dt>PSPs</dt><dd>{psps}</dd>
<dt>Degradation mode</dt><dd>{degraded}</dd>
<dt>Risk rules</dt><dd>version {rules} ({count} rules)</dd>
<dt>Jurisdiction preset</dt><dd>{preset}</dd>
</dl>
<h2>Next</h2>
<ul>
<li><a href="/ops">The operator console</a> (sign in with the platform key printed at start-up)</li>
<li><a href="/openapi.yaml">The API document (OpenAPI 3.1)</a></li>
<li>The hosted cashier: <code>POST /v1/cashier/sessions</code> with the platform key, then open <code>/cashier#&lt;token&gt;</code></li>
<li>Create a deposit: <code>POST /v1/payments/init</code> with the client key printed at start-up</li>
<li>Routing and circuits: <code>GET /v1/admin/routing</code> with the platform key</li>
</ul></main></body></html>"#,
        version = env!("CARGO_PKG_VERSION"),
        psps = psps.join(", "),
        rules = escape(&p.risk.version),
        count = p.risk.rules.len(),
        preset = escape(p.rg.preset),
    ))
}
