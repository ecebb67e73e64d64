//! How a round and its answers are shown.

use super::*;

/// Transactions shown per round.
pub(super) const MAX_ROUND_TXNS: usize = 200;

/// Balances after a round operation, as decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceAfter {
    pub available: Option<String>,
    pub held: Option<String>,
}

/// The answer to a bet, win or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundAnswer {
    pub player_id: PlayerId,
    pub round_id: String,
    pub txn_id: TxnId,
    pub operation: &'static str,
    pub ledger_txn_id: Option<String>,
    pub amount: String,
    pub currency: Currency,
    pub balance: BalanceAfter,
}

pub(super) fn answer(op: RoundOp, r: &Round, entry: &Entry) -> RoundAnswer {
    let c = r.amount.currency();
    let after = |name: &str| entry.item.int_attr(name).map(|v| format_minor(v, c));
    RoundAnswer {
        player_id: r.player.clone(),
        round_id: r.round_id.clone(),
        txn_id: r.txn.clone(),
        operation: op.as_str(),
        ledger_txn_id: entry.item.str_attr("txn_id").map(str::to_owned),
        amount: r.amount.to_decimal(),
        currency: c,
        balance: BalanceAfter {
            available: after("available_after"),
            held: after("held_after"),
        },
    }
}

/// One debit or credit of a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundTxn {
    pub txn_id: String,
    pub amount: Option<String>,
    pub rolled_back: bool,
}

/// `GET /v1/wallet/rounds/{round_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundView {
    pub round_id: String,
    pub player_id: Option<String>,
    pub currency: Currency,
    pub debits: Vec<RoundTxn>,
    pub credits: Vec<RoundTxn>,
}

/// `GET /v1/wallet/rounds/{round_id}`: the round and its debit and credit txn ids.
pub async fn round_view(ctx: &Ctx, round: &str) -> Result<RoundView, Error> {
    let round = parse_round_id(round)?;
    let head = ctx
        .store
        .get(&keys::round(&round))
        .await?
        .ok_or(Error::NotFound { what: "round" })?;
    let currency = head
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok())
        .ok_or_else(|| Error::Internal("round without currency".into()))?;
    let q = Query::new(
        keys::round_pk(&round),
        SkRange::Prefix(keys::LEDGER_PREFIX.into()),
        MAX_ROUND_TXNS,
    );
    let mut debits = Vec::new();
    let mut credits = Vec::new();
    for it in ctx.store.query(&q).await?.items {
        let txn = it
            .str_attr("sk")
            .and_then(|sk| sk.strip_prefix(keys::LEDGER_PREFIX))
            .unwrap_or_default();
        let v = RoundTxn {
            txn_id: txn.to_owned(),
            amount: it.int_attr("amount").map(|a| format_minor(a, currency)),
            rolled_back: it
                .get("rolled_back")
                .and_then(Attr::as_bool)
                .unwrap_or(false),
        };
        match it.str_attr("kind") {
            Some("debit") => debits.push(v),
            _ => credits.push(v),
        }
    }
    Ok(RoundView {
        round_id: round,
        player_id: head.str_attr("player").map(str::to_owned),
        currency,
        debits,
        credits,
    })
}
