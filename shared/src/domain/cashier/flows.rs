//! What the cashier's browser may do with its session: start a deposit or a
//! withdrawal for the session's player (the same domain calls as the
//! public API, so every limit, risk and idempotency rule holds), and follow
//! them. Another player's payment is not found, not forbidden: a token
//! tells nothing about payments that are not its own.

use serde::Serialize;

use crate::domain::deposits::{self, InitRequest, IntentView, Shown};
use crate::domain::payouts::{self, PayoutRequest, PayoutStatus};
use crate::domain::request::Body;
use crate::domain::risk::signals::{is_country, EdgeSignals, RiskMeta};
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::PaymentId;
use crate::money::{Currency, Money};

use super::options::{stored_methods, withdrawal_fee_minor};
use super::session::Session;

const DEPOSIT_FIELDS: [&str; 5] = ["amount", "currency", "method", "stored_token", "country"];
/// Where the PSP sends the player back: the cashier's status view, on
/// payloop's own public URL (never one the browser chose).
pub const RETURN_PATH: &str = "/cashier?return=deposit";
const WITHDRAWAL_FIELDS: [&str; 3] = ["amount", "currency", "method"];

/// The public API's body for a cashier request: the session's player, the
/// currency the cashier names (else the session's), the amount and method
/// as sent, and `extra`; the public request parsers then check every field,
/// the same rules as `POST /v1/payments/init` and `/v1/payouts/init`.
fn public_body(
    body: &Body,
    s: &Session,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<Body, Error> {
    let mut out = serde_json::Map::new();
    out.insert("player_id".into(), s.player.as_str().into());
    let currency = body.opt_str("currency")?.unwrap_or(s.currency.code());
    out.insert("currency".into(), currency.into());
    out.insert("amount".into(), body.str("amount")?.into());
    out.insert("method".into(), body.str("method")?.into());
    out.extend(extra);
    Body::from_json(serde_json::Value::Object(out).to_string().as_bytes())
}

/// `POST /v1/cashier/deposits`: the session's player, currency (unless
/// given) and country (else the browser's), back to the cashier; a stored
/// token must be one of the player's own.
pub async fn deposit(
    ctx: &Ctx,
    s: &Session,
    body: &Body,
    edge: &EdgeSignals,
    id: PaymentId,
) -> Result<IntentView, Error> {
    body.only(&DEPOSIT_FIELDS)?;
    let return_url = format!(
        "{}{RETURN_PATH}",
        ctx.config.public_url.trim_end_matches('/')
    );
    let mut extra = serde_json::Map::new();
    extra.insert("return_url".into(), return_url.into());
    let mut req = InitRequest::parse(&public_body(body, s, extra)?)?;
    let instrument = match body.opt_str("stored_token")? {
        None => None,
        Some(t) => {
            let mine = stored_methods(ctx, &s.player, req.amount.currency()).await?;
            if !mine.iter().any(|m| m.token == t && m.method == req.method) {
                return Err(Error::validation(
                    "stored_token",
                    "is not one of this player's stored methods for this method",
                ));
            }
            Some(t.to_owned())
        }
    };
    req.country = match (&s.country, body.opt_str("country")?) {
        (Some(c), _) => Some(c.clone()),
        (None, None) => None,
        (None, Some(c)) if is_country(c) => Some(c.to_owned()),
        (None, Some(_)) => {
            return Err(Error::validation(
                "country",
                "must be an ISO 3166 alpha-2 code like \"FI\"",
            ))
        }
    };
    // The hosted cashier is a web page, whatever the device.
    req.device = Some("web".into());
    req.risk = RiskMeta {
        instrument,
        ..RiskMeta::default()
    }
    .with_edge(edge);
    deposits::create_intent(ctx, req, id).await
}

/// A deposit as the player's cashier shows it: no routing or risk detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CashierPayment {
    pub payment_id: String,
    /// A payment status, or `review` / `declined` / `approved` while held.
    pub status: String,
    pub is_final: bool,
    pub credited: bool,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub method: Option<String>,
}

/// `GET /v1/cashier/payments/{id}`: the session's player's deposit only.
pub async fn payment(ctx: &Ctx, s: &Session, id: &PaymentId) -> Result<CashierPayment, Error> {
    let not_found = Error::NotFound { what: "payment" };
    match deposits::show(ctx, id).await? {
        Shown::Payment(p) if p.player_id == s.player => Ok(CashierPayment {
            payment_id: p.payment_id.to_string(),
            status: p.status.as_str().to_owned(),
            is_final: p.status.is_final(),
            credited: p.credited_txn_id.is_some(),
            amount: Some(p.amount),
            currency: Some(p.currency.code().to_owned()),
            method: Some(p.method),
        }),
        Shown::Held(h) if h.player_id == s.player.as_str() => Ok(CashierPayment {
            payment_id: h.payment_id.to_string(),
            is_final: h.status == "declined",
            status: h.status.to_owned(),
            credited: false,
            amount: h.amount,
            currency: h.currency,
            method: h.method,
        }),
        _ => Err(not_found),
    }
}

/// A withdrawal as the player's cashier shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CashierWithdrawal {
    pub withdrawal_id: String,
    pub status: String,
    pub is_final: bool,
    pub amount: Option<String>,
    pub fee: Option<String>,
    pub currency: Option<String>,
    pub method: Option<String>,
}

fn withdrawal_of(v: payouts::PayoutView) -> CashierWithdrawal {
    let currency = v.currency.as_deref().and_then(|c| Currency::parse(c).ok());
    let fee = match (&v.method, &v.amount, currency) {
        (Some(m), Some(a), Some(c)) => Money::parse_decimal(a, c)
            .ok()
            .map(|a| crate::money::format_minor(withdrawal_fee_minor(m, a.minor()), c)),
        _ => None,
    };
    CashierWithdrawal {
        withdrawal_id: v.payout_id.unwrap_or_default(),
        status: v.status.map_or("unknown", |s| s.as_str()).to_owned(),
        is_final: v.status.is_some_and(|s: PayoutStatus| s.is_final()),
        amount: v.amount,
        fee,
        currency: v.currency,
        method: v.method,
    }
}

/// `POST /v1/cashier/withdrawals`: a payout for the session's player.
pub async fn withdraw(
    ctx: &Ctx,
    s: &Session,
    body: &Body,
    edge: &EdgeSignals,
    id: String,
) -> Result<CashierWithdrawal, Error> {
    body.only(&WITHDRAWAL_FIELDS)?;
    let mut extra = serde_json::Map::new();
    if let Some(c) = &s.country {
        extra.insert("meta".into(), serde_json::json!({ "country": c }));
    }
    let req = PayoutRequest::parse(&public_body(body, s, extra)?)?.with_edge(edge);
    Ok(withdrawal_of(payouts::init(ctx, req, id).await?))
}

/// `GET /v1/cashier/withdrawals/{id}`: the session's player's payout only.
pub async fn withdrawal(ctx: &Ctx, s: &Session, id: &str) -> Result<CashierWithdrawal, Error> {
    let v = payouts::view(ctx, id).await?;
    if v.player_id.as_deref() != Some(s.player.as_str()) {
        return Err(Error::NotFound { what: "withdrawal" });
    }
    Ok(withdrawal_of(v))
}
