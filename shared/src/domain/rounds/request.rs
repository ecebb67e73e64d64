//! A bet, win or rollback request, parsed with every error naming its field.

use super::*;

pub(super) const MAX_ROUND_ID: usize = 64;

/// The fields a bet, win or rollback body may carry (`amount` and
/// `currency` are required for bets and wins; a rollback may leave both out,
/// it names the bet it cancels, and when it sends them they must match the
/// bet); `idempotency_key` is read by the edge as the Idempotency-Key.
pub(super) const ROUND_FIELDS: [&str; 6] = [
    "player_id",
    "round_id",
    "txn_id",
    "amount",
    "currency",
    "idempotency_key",
];

/// A round request as parsed at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRequest {
    pub player: PlayerId,
    pub round_id: String,
    /// For a rollback: the bet's txn id.
    pub txn: TxnId,
    pub currency: Option<Currency>,
    pub amount: Option<Money>,
}

pub(super) fn parse_round_id(s: &str) -> Result<String, Error> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ROUND_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::validation("round_id", "must be 1-64 characters [A-Za-z0-9_.-]"))
}

impl RoundRequest {
    pub fn parse(op: RoundOp, b: &Body) -> Result<RoundRequest, Error> {
        b.only(&ROUND_FIELDS)?;
        let currency = b
            .opt_str("currency")?
            .map(Currency::parse)
            .transpose()
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = match (b.opt_str("amount")?, currency) {
            (Some(a), Some(c)) => Some(
                Money::parse_decimal(a, c)
                    .map_err(|e| Error::validation("amount", e.to_string()))?,
            ),
            (Some(_), None) => return Err(Error::validation("currency", "is required")),
            (None, _) => None,
        };
        if op != RoundOp::Rollback {
            currency.ok_or_else(|| Error::validation("currency", "is required"))?;
            amount.ok_or_else(|| Error::validation("amount", "is required"))?;
        }
        Ok(RoundRequest {
            player: PlayerId::parse(b.str("player_id")?)
                .map_err(|e| Error::validation("player_id", e.to_string()))?,
            round_id: parse_round_id(b.str("round_id")?)?,
            txn: TxnId::parse(b.str("txn_id")?)
                .map_err(|e| Error::validation("txn_id", e.to_string()))?,
            currency,
            amount,
        })
    }
}
