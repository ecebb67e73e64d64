//! Cashier sessions: a short-lived token the platform's back end mints for
//! one player (`POST /v1/cashier/sessions`, platform key) and hands to that
//! player's browser, so the browser never holds a client or platform key.
//! The token is 32 random bytes; only its SHA-256 is stored, beside the
//! player, currency, country and expiry. Every use checks the expiry
//! (DynamoDB's TTL only cleans up, late).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::request::Body;
use crate::domain::risk::signals::is_country;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::Currency;
use crate::schema::keys;
use crate::store::{item, Attr, Cond, ItemExt, StoreError, Write, TTL};

pub const TOKEN_PREFIX: &str = "cs_";
/// A session's life when the platform does not say (seconds).
pub const DEFAULT_TTL_S: i64 = 900;
pub const MIN_TTL_S: i64 = 60;
pub const MAX_TTL_S: i64 = 3600;
/// `cs_` and 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 3 + 43;
const FIELDS: [&str; 4] = ["player_id", "currency", "country", "ttl_s"];

/// What the platform asks for: whose session, in which currency and
/// country (the cashier's pre-selection), for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub player: PlayerId,
    pub currency: Currency,
    pub country: Option<String>,
    pub ttl_s: i64,
}

impl SessionRequest {
    pub fn parse(body: &Body) -> Result<SessionRequest, Error> {
        body.only(&FIELDS)?;
        let player = PlayerId::parse(body.str("player_id")?)
            .map_err(|e| Error::validation("player_id", e.to_string()))?;
        let currency = Currency::parse(body.str("currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let country = match body.opt_str("country") {
            Ok(None) => None,
            Ok(Some(c)) if is_country(c) => Some(c.to_owned()),
            _ => {
                return Err(Error::validation(
                    "country",
                    "must be an ISO 3166 alpha-2 code like \"FI\"",
                ))
            }
        };
        let ttl_s = body.opt_i64("ttl_s")?.unwrap_or(DEFAULT_TTL_S);
        if !(MIN_TTL_S..=MAX_TTL_S).contains(&ttl_s) {
            return Err(Error::validation(
                "ttl_s",
                format!("must be {MIN_TTL_S} to {MAX_TTL_S} seconds"),
            ));
        }
        Ok(SessionRequest {
            player,
            currency,
            country,
            ttl_s,
        })
    }
}

/// A live session, as every cashier endpoint sees its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub player: PlayerId,
    pub currency: Currency,
    pub country: Option<String>,
    pub expires_ms: i64,
}

/// The answer to the platform: the token (shown once) and where the
/// cashier page is. The token goes in the URL's fragment, which browsers
/// never send to a server or put in a `Referer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MintedSession {
    pub token: String,
    pub player_id: PlayerId,
    pub currency: Currency,
    pub country: Option<String>,
    pub expires_at_ms: i64,
    pub cashier_path: String,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Store a new session and return its token.
pub async fn mint(ctx: &Ctx, req: &SessionRequest) -> Result<MintedSession, Error> {
    let token = format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let now = ctx.now_ms();
    let expires_ms = now.saturating_add(req.ttl_s.saturating_mul(1000));
    let mut record = item(
        &keys::cashier_session(&digest(&token)),
        [
            ("player", Attr::from(req.player.as_str())),
            ("currency", Attr::from(req.currency.code())),
            ("expires_ms", Attr::N(expires_ms)),
            (TTL, Attr::N(expires_ms / 1000 + 60)),
        ],
    );
    if let Some(c) = &req.country {
        record.insert("country".into(), Attr::from(c.as_str()));
    }
    match ctx
        .store
        .write(Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {}
        // 256 random bits met an existing token: never, but never reuse one.
        Err(StoreError::ConditionFailed { .. }) => {
            return Err(Error::Unavailable("session token collision".into()))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(MintedSession {
        cashier_path: format!("/cashier#{token}"),
        token,
        player_id: req.player.clone(),
        currency: req.currency,
        country: req.country.clone(),
        expires_at_ms: expires_ms,
    })
}

fn looks_like_token(t: &str) -> bool {
    t.len() == TOKEN_LEN
        && t.starts_with(TOKEN_PREFIX)
        && t[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The live session behind a presented token; unknown, malformed and
/// expired tokens are all the same 401.
pub async fn resolve(ctx: &Ctx, presented: &str) -> Result<Session, Error> {
    if !looks_like_token(presented) {
        return Err(Error::Unauthorized);
    }
    let it = ctx
        .store
        .get(&keys::cashier_session(&digest(presented)))
        .await?
        .ok_or(Error::Unauthorized)?;
    let expires_ms = it.int_attr("expires_ms").unwrap_or(0);
    if ctx.now_ms() >= expires_ms {
        return Err(Error::Unauthorized);
    }
    let player = it
        .str_attr("player")
        .and_then(|p| PlayerId::parse(p).ok())
        .ok_or_else(|| Error::Internal("cashier session without a player".into()))?;
    let currency = it
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok())
        .ok_or_else(|| Error::Internal("cashier session without a currency".into()))?;
    Ok(Session {
        player,
        currency,
        country: it.str_attr("country").map(str::to_owned),
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<SessionRequest, Error> {
        SessionRequest::parse(&Body::from_json(v.to_string().as_bytes())?)
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = parse(json!({"player_id": "bea", "currency": "EUR", "country": "FI"})).unwrap();
        assert_eq!(ok.ttl_s, DEFAULT_TTL_S);
        for (body, field) in [
            (json!({"currency": "EUR"}), "player_id"),
            (json!({"player_id": "bea", "currency": "EURO"}), "currency"),
            (
                json!({"player_id": "bea", "currency": "EUR", "country": "fi"}),
                "country",
            ),
            (
                json!({"player_id": "bea", "currency": "EUR", "ttl_s": 5}),
                "ttl_s",
            ),
            (
                json!({"player_id": "bea", "currency": "EUR", "ttl_s": 86400}),
                "ttl_s",
            ),
            (
                json!({"player_id": "bea", "currency": "EUR", "colour": 1}),
                "colour",
            ),
        ] {
            match parse(body.clone()) {
                Err(Error::Validation { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_well_formed_tokens_are_looked_up() {
        let good = format!("cs_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert!(looks_like_token(&good));
        assert!(!looks_like_token("cs_short"));
        assert!(!looks_like_token(&good.replace("cs_", "pk_")));
        assert!(!looks_like_token(&format!("{}!", &good[..good.len() - 1])));
    }
}
