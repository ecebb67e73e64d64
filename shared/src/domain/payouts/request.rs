//! The payout request: `POST /v1/payouts/init`'s body, parsed with every
//! error naming its field.

use super::*;

pub(super) const MAX_TOKEN: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRequest {
    pub player: PlayerId,
    pub amount: Money,
    pub method: String,
    pub destination_token: Option<String>,
}

pub(super) const INIT_FIELDS: [&str; 6] = [
    "player_id",
    "amount",
    "currency",
    "method",
    "destination_token",
    "idempotency_key",
];

pub(super) fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TOKEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PayoutRequest {
    /// Parse the payout body; every error names its field.
    pub fn parse(body: &Body) -> Result<PayoutRequest, Error> {
        body.only(&INIT_FIELDS)?;
        let currency = Currency::parse(body.str("currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = Money::parse_decimal(body.str("amount")?, currency)
            .map_err(|e| Error::validation("amount", e.to_string()))?;
        let method = body.str("method")?;
        if !METHODS.contains(&method) {
            return Err(Error::validation(
                "method",
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        let destination_token = match body.opt_str("destination_token") {
            Ok(None) => None,
            Ok(Some(t)) if is_token(t) => Some(t.to_owned()),
            _ => {
                return Err(Error::validation(
                    "destination_token",
                    "must be a PSP token of 1-128 characters [A-Za-z0-9_-]",
                ))
            }
        };
        Ok(PayoutRequest {
            player: PlayerId::parse(body.str("player_id")?)
                .map_err(|e| Error::validation("player_id", e.to_string()))?,
            amount,
            method: method.to_owned(),
            destination_token,
        })
    }
}
