//! The operator console of `payloop serve` at `/ops`: server-rendered
//! pages over the same domain calls the JSON API makes.
//!
//! Sign-in takes a platform key once; the session is a signed cookie
//! (`HttpOnly`, `SameSite=Strict`, path `/ops`, 8 hours) naming the key's
//! operator, and every POST form carries a CSRF token derived from the
//! session (the sign-in form's from a pre-session cookie). The signing key is
//! random per process: a restart signs everyone out. No key or secret is
//! ever written into a page.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use hmac::{Hmac, Mac};
use payloop::domain::Ctx;
use sha2::Sha256;

mod charts;
mod html;
mod pages;

/// How long a console session lasts.
pub const SESSION_MS: i64 = 8 * 3600 * 1000;
const SESSION_COOKIE: &str = "payloop_ops";
const LOGIN_COOKIE: &str = "payloop_ops_login";

pub struct Console {
    ctx: Ctx,
    key: [u8; 32],
    /// Mark cookies `Secure` (the console is served over https).
    secure: bool,
}

type St = State<Arc<Console>>;
type Fields = Form<HashMap<String, String>>;

pub fn router(ctx: Ctx) -> axum::Router {
    let secure = ctx.config.public_url.starts_with("https://");
    let console = Arc::new(Console {
        ctx,
        key: rand::random(),
        secure,
    });
    axum::Router::new()
        .route("/ops", get(pages::overview))
        .route("/ops/login", get(login_page).post(login))
        .route("/ops/logout", post(logout))
        .route("/ops/payments", get(pages::payments))
        .route("/ops/payments/{payment_id}", get(pages::payment))
        .route("/ops/dlq", get(pages::dead_letters))
        .route("/ops/dlq/replay", post(pages::replay_all))
        .route("/ops/dlq/{message_id}/replay", post(pages::replay_one))
        .route("/ops/recon", get(pages::recon))
        .route(
            "/ops/recon/cases/{case_id}/resolve",
            post(pages::resolve_case),
        )
        .route("/ops/routing", get(pages::routing))
        .route("/ops/routing/degradation", post(pages::degradation))
        .route("/ops/risk", get(pages::risk))
        .route(
            "/ops/risk/reviews/{review_id}/decide",
            post(pages::decide_review),
        )
        .route(
            "/ops/risk/alerts/{alert_id}/close",
            post(pages::close_alert),
        )
        .with_state(console)
}

/// A signed-in operator and the CSRF token of their session.
pub struct Operator {
    pub name: String,
    pub csrf: String,
}

impl Console {
    /// HMAC-SHA256 of `what` under the process's key, hex. (HMAC takes a
    /// key of any length, so building it cannot fail; an empty string would
    /// match nothing.)
    fn sign(&self, what: &str) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(what.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    fn same(a: &str, b: &str) -> bool {
        use subtle::ConstantTimeEq;
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }

    fn cookie(&self, name: &str, value: &str, max_age_s: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/ops; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
    }

    /// The session cookie's value for `operator` until `expires_ms`.
    fn session_value(&self, operator: &str, expires_ms: i64) -> String {
        let sig = self.sign(&format!("session|{operator}|{expires_ms}"));
        format!("{operator}.{expires_ms}.{sig}")
    }

    /// The operator of a valid, unexpired session cookie.
    fn operator(&self, headers: &HeaderMap) -> Option<Operator> {
        let value = cookie(headers, SESSION_COOKIE)?;
        let mut parts = value.splitn(3, '.');
        let (name, expires, sig) = (parts.next()?, parts.next()?, parts.next()?);
        let expires_ms: i64 = expires.parse().ok()?;
        let expected = self.sign(&format!("session|{name}|{expires_ms}"));
        if expected.is_empty() || !Console::same(sig, &expected) || expires_ms <= self.ctx.now_ms()
        {
            return None;
        }
        Some(Operator {
            name: name.to_owned(),
            csrf: self.sign(&format!("csrf|{value}")),
        })
    }

    /// The signed-in operator whose POST carries their CSRF token.
    fn checked(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<Operator, Refused> {
        let op = self.operator(headers).ok_or(Refused::SignedOut)?;
        let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
        if op.csrf.is_empty() || !Console::same(sent, &op.csrf) {
            return Err(Refused::Token);
        }
        Ok(op)
    }
}

/// A page request by a signed-in operator (else: to the sign-in page).
pub struct Viewer(pub Operator);

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, Response> {
        c.operator(&parts.headers).map(Viewer).ok_or_else(to_login)
    }
}

/// A form POST by a signed-in operator carrying the session's CSRF token,
/// and the form's fields (else: sign in first, or 403).
pub struct Posted {
    pub op: Operator,
    pub form: HashMap<String, String>,
}

impl FromRequest<Arc<Console>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Arc<Console>) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let Form(form) = Fields::from_request(req, c)
            .await
            .map_err(IntoResponse::into_response)?;
        let op = c
            .checked(&headers, &form)
            .map_err(IntoResponse::into_response)?;
        Ok(Posted { op, form })
    }
}

/// Why a POST was not carried out.
pub enum Refused {
    /// No valid session: sign in first.
    SignedOut,
    /// The form's CSRF token is not the session's.
    Token,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignedOut => to_login(),
            Refused::Token => forbidden(),
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
}

fn to_login() -> Response {
    Redirect::to("/ops/login").into_response()
}

fn forbidden() -> Response {
    let body = html::page(
        "Request refused",
        "",
        None,
        r#"<p class="error" role="alert">This form has expired or did not come from the console. Go back, reload the page and try again.</p><p><a href="/ops">Back to the console</a></p>"#,
    );
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

async fn login_page(State(c): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let csrf = c.sign(&format!("login|{nonce}"));
    let failed = q.contains_key("failed");
    let body = format!(
        r#"{flash}<form method="post" action="/ops/login"><input type="hidden" name="csrf" value="{csrf}">
<p><label for="key">Platform key</label><br><input id="key" name="key" type="password" autocomplete="off" required size="50"></p>
<p><button type="submit" id="login">Sign in</button></p></form>
<p>The key is checked once; the console then keeps a session cookie for 8 hours.</p>"#,
        flash = html::flash(None, failed.then_some("That key was not accepted.")),
    );
    (
        [(header::SET_COOKIE, c.cookie(LOGIN_COOKIE, &nonce, 600))],
        Html(html::page("Sign in", "", None, &body)),
    )
        .into_response()
}

async fn login(State(c): St, headers: HeaderMap, Form(f): Fields) -> Response {
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = f.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = c.sign(&format!("login|{nonce}"));
    if nonce.is_empty() || expected.is_empty() || !Console::same(sent, &expected) {
        return forbidden();
    }
    let key = f.get("key").map(String::as_str).unwrap_or_default();
    let Some(name) = c.ctx.config.platform_keys.authenticate(key) else {
        tracing::warn!(audit = "console_login_refused", "console sign-in refused");
        return Redirect::to("/ops/login?failed").into_response();
    };
    let expires = c.ctx.now_ms() + SESSION_MS;
    let session = c.session_value(name, expires);
    tracing::info!(operator = name, audit = "console_login", "console sign-in");
    let mut res = Redirect::to("/ops").into_response();
    let headers = res.headers_mut();
    for set in [
        c.cookie(SESSION_COOKIE, &session, SESSION_MS / 1000),
        c.cookie(LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = set.parse() {
            headers.append(header::SET_COOKIE, v);
        }
    }
    res
}

async fn logout(State(c): St, _: Posted) -> Response {
    (
        [(header::SET_COOKIE, c.cookie(SESSION_COOKIE, "", 0))],
        Redirect::to("/ops/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; payloop_ops_login=n; payloop_ops=s.1.x"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("s.1.x"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("n"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
