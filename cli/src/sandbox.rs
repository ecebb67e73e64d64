//! The built-in sandbox PSP: a hosted checkout page with Approve and Decline
//! that sends a signed webhook (seed scheme) to our intake over real HTTP,
//! like a PSP would. It learns the payment through the public API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use payloop::clock::now_s;
use std::collections::BTreeMap;
use std::sync::Arc;

use payloop::config::{Config, Secret};
use payloop::domain::signature::{self, Scheme};
use payloop::ids::{new_ulid, PaymentId, PspId};
use payloop::psp::HostedSandbox;
use serde_json::{json, Value};

/// The hosted sandbox connectors, by PSP name (for the outage switch).
pub type Connectors = BTreeMap<PspId, Arc<HostedSandbox>>;

#[derive(Clone)]
pub struct Sandbox {
    /// Where our API listens (http://127.0.0.1:port).
    pub api_base: String,
    pub client_key: Secret,
    pub platform_key: Secret,
    pub webhook_secret: Secret,
    /// Which scheme each sandbox PSP signs with.
    pub config: Arc<Config>,
    pub hosted: Arc<Connectors>,
    pub http: reqwest::Client,
}

pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/sandbox/checkout/{payment_id}", get(checkout))
        .route("/sandbox/checkout/{payment_id}/{decision}", post(decide))
        .route("/sandbox/{psp}/admin/outage", post(outage))
        .with_state(sandbox)
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

impl Sandbox {
    async fn payment(&self, id: &PaymentId) -> Result<Value, Response> {
        let url = format!("{}/v1/payments/{id}", self.api_base);
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.client_key.expose())
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => r.json().await.map_err(|_| bad_gateway()),
            Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                Err((StatusCode::NOT_FOUND, Html("<h1>Unknown payment</h1>")).into_response())
            }
            _ => Err(bad_gateway()),
        }
    }

    /// Sign and send the final webhook; returns our intake's HTTP status.
    pub async fn send_webhook(&self, payment: &Value, status: &str) -> Result<u16, reqwest::Error> {
        let body = json!({
            "event_id": new_ulid("sbx"),
            "payment_id": payment["payment_id"],
            "status": status,
            "amount": payment["amount"],
            "currency": payment["currency"],
            "timestamp": now_s(),
        })
        .to_string();
        let psp = payment["psp"].as_str().and_then(|p| PspId::parse(p).ok());
        let scheme = psp
            .as_ref()
            .and_then(|p| self.config.webhook_secrets.for_psp(p))
            .map_or(Scheme::Seed, |(s, _)| s);
        let psp_name = psp.map(|p| p.to_string()).unwrap_or_default();
        let signed = signature::sign(
            scheme,
            self.webhook_secret.expose(),
            body.as_bytes(),
            now_s(),
            &new_ulid("msg"),
        );
        let mut req = self
            .http
            .post(format!("{}/v1/payments/webhook/{psp_name}", self.api_base))
            .header("content-type", "application/json");
        for (name, value) in signed {
            req = req.header(name, value);
        }
        let resp = req.body(body).send().await?;
        Ok(resp.status().as_u16())
    }
}

fn bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        Html("<h1>Sandbox could not reach payloop</h1>"),
    )
        .into_response()
}

async fn checkout(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let Ok(id) = PaymentId::parse(&id) else {
        return (StatusCode::NOT_FOUND, Html("<h1>Unknown payment</h1>")).into_response();
    };
    let p = match sb.payment(&id).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let amount = format!(
        "{} {}",
        p["amount"].as_str().unwrap_or("?"),
        p["currency"].as_str().unwrap_or("?")
    );
    let status = p["status"].as_str().unwrap_or("?");
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Sandbox PSP checkout</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}button{{font-size:1.1em;margin:.3em;padding:.4em 1.2em}}</style></head>
<body><h1>Sandbox PSP</h1><p>Payment <code id="payment">{id}</code></p><p>Amount: <strong id="amount">{amount}</strong></p>
<p>Status: <span id="status">{status}</span></p>
<form method="post" action="/sandbox/checkout/{id}/approve"><button id="approve" type="submit">Approve</button></form>
<form method="post" action="/sandbox/checkout/{id}/decline"><button id="decline" type="submit">Decline</button></form>
</body></html>"#,
        id = escape(id.as_str()),
        amount = escape(&amount),
        status = escape(status),
    );
    Html(page).into_response()
}

async fn decide(
    State(sb): State<Sandbox>,
    Path((id, decision)): Path<(String, String)>,
) -> Response {
    let status = match decision.as_str() {
        "approve" => "captured",
        "decline" => "failed",
        _ => return (StatusCode::NOT_FOUND, Html("<h1>Unknown action</h1>")).into_response(),
    };
    let Ok(id) = PaymentId::parse(&id) else {
        return (StatusCode::NOT_FOUND, Html("<h1>Unknown payment</h1>")).into_response();
    };
    let p = match sb.payment(&id).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let outcome = match sb.send_webhook(&p, status).await {
        Ok(code) => format!("webhook delivered, payloop answered {code}"),
        Err(_) => "webhook delivery failed; a real PSP would retry".to_owned(),
    };
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Sandbox PSP</title></head><body>
<h1 id="result">Payment {status}</h1><p id="delivery">{outcome}</p><p><a href="/sandbox/checkout/{id}">Back</a></p></body></html>"#,
        status = escape(status),
        outcome = escape(&outcome),
        id = escape(id.as_str()),
    );
    Html(page).into_response()
}

#[derive(serde::Deserialize)]
struct OutageBody {
    down: bool,
}

/// Chaos switch: take a sandbox PSP down (its sessions fail as unavailable)
/// or bring it back. Platform (operator) key required.
async fn outage(
    State(sb): State<Sandbox>,
    headers: axum::http::HeaderMap,
    Path(psp): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = payloop::edge::authenticate(&headers, &sb.config.platform_keys) {
        return payloop::edge::ApiError(e).into_response();
    }
    let Some(hosted) = PspId::parse(&psp)
        .ok()
        .and_then(|p| sb.hosted.get(&p).cloned())
    else {
        return (StatusCode::NOT_FOUND, "unknown sandbox PSP").into_response();
    };
    let Ok(OutageBody { down }) = serde_json::from_slice(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "body must be {\"down\": true|false}",
        )
            .into_response();
    };
    hosted.set_outage(down);
    tracing::warn!(psp = %psp, down, "sandbox PSP outage switched");
    axum::Json(json!({"psp": psp, "down": down})).into_response()
}
