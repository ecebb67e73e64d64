//! The payout request: `POST /v1/payouts/init`'s body, parsed with every
//! error naming its field.

use super::*;
use crate::domain::risk::rules::Signals;
use crate::domain::risk::signals::{is_country, EdgeSignals, RiskMeta, RISK_META_FIELDS};

pub(super) const MAX_TOKEN: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRequest {
    pub player: PlayerId,
    pub amount: Money,
    pub method: String,
    pub destination_token: Option<String>,
    /// The player's country (`meta.country`) and the risk signals.
    pub country: Option<String>,
    pub risk: RiskMeta,
}

pub(super) const INIT_FIELDS: [&str; 7] = [
    "player_id",
    "amount",
    "currency",
    "method",
    "destination_token",
    "idempotency_key",
    "meta",
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
        let (country, risk) = parse_meta(body)?;
        Ok(PayoutRequest {
            player: PlayerId::parse(body.str("player_id")?)
                .map_err(|e| Error::validation("player_id", e.to_string()))?,
            amount,
            method: method.to_owned(),
            destination_token,
            country,
            risk,
        })
    }

    /// The edge's signals (trusted headers) over the client's.
    pub fn with_edge(mut self, edge: &EdgeSignals) -> PayoutRequest {
        self.risk = self.risk.with_edge(edge);
        self
    }

    /// The risk signals of this payout to `instrument` (where it goes).
    pub fn signals(&self, instrument: Option<&str>) -> Signals {
        self.risk.signals(
            &self.player,
            self.amount,
            &self.method,
            self.country.as_deref(),
            instrument,
        )
    }
}

fn parse_meta(body: &Body) -> Result<(Option<String>, RiskMeta), Error> {
    let Some(meta) = body.opt_object("meta")? else {
        return Ok((None, RiskMeta::default()));
    };
    if let Some(unknown) = meta
        .keys()
        .find(|k| *k != "country" && !RISK_META_FIELDS.contains(k))
    {
        return Err(Error::validation(
            &format!("meta.{unknown}"),
            "unknown field",
        ));
    }
    let country = match meta.opt_str("country") {
        Ok(None) => None,
        Ok(Some(c)) if is_country(c) => Some(c.to_owned()),
        _ => {
            return Err(Error::validation(
                "meta.country",
                "must be an ISO 3166 alpha-2 code like \"FI\"",
            ))
        }
    };
    Ok((country, RiskMeta::parse(&meta)?))
}
