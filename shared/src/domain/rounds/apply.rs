//! Moving a round's money: one ledger movement per txn id, with the round's
//! own records in the same transaction.

use super::*;

/// The amount a request moves: its own, or for a rollback the bet's (what
/// the rollback sends must match it).
pub(super) async fn resolve(ctx: &Ctx, op: RoundOp, r: &RoundRequest) -> Result<Round, Error> {
    let round = |amount| Round {
        player: r.player.clone(),
        round_id: r.round_id.clone(),
        txn: r.txn.clone(),
        amount,
    };
    if let (RoundOp::Bet | RoundOp::Win, Some(amount)) = (op, r.amount) {
        return Ok(round(amount));
    }
    let no_bet = || {
        Error::validation(
            "txn_id",
            "no bet of this player with this txn_id in this round",
        )
    };
    let bet = ctx
        .store
        .get(&keys::round_txn(&r.round_id, &r.txn))
        .await?
        .filter(|b| b.str_attr("kind") == Some("debit"))
        .ok_or_else(no_bet)?;
    let bet_amount = bet
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok())
        .and_then(|c| Money::from_minor(bet.int_attr("amount")?, c).ok())
        .ok_or_else(|| Error::Internal("stored bet lacks amount or currency".into()))?;
    if r.currency.is_some_and(|c| c != bet_amount.currency()) {
        return Err(Error::validation("currency", "does not match the bet"));
    }
    if r.amount.is_some_and(|a| a != bet_amount) {
        return Err(Error::validation("amount", "does not match the bet"));
    }
    Ok(round(bet_amount))
}

/// The round is this player's, in this currency.
pub(super) fn round_is_theirs(r: &Round) -> Cond {
    Cond::And(vec![
        Cond::eq("player", r.player.as_str()),
        Cond::eq("currency", r.amount.currency().code()),
    ])
}

/// Apply a bet, win or rollback. `(body, fresh)`: fresh is false for a
/// repeat of an applied txn id (same body).
pub async fn apply(
    ctx: &Ctx,
    op: RoundOp,
    req: &RoundRequest,
) -> Result<(RoundAnswer, bool), Error> {
    let round = resolve(ctx, op, req).await?;
    let r = &round;
    let (m, mut extra) = plan(ctx, op, r).await?;
    // A bet only while the player is not self-excluded, checked in the bet's
    // own transaction (a repeat of an applied bet is still answered).
    let excluded_at = (op == RoundOp::Bet).then(|| {
        extra.push(crate::domain::limits::exclusion::still_clear(
            &r.player,
            ctx.now_ms(),
        ));
        extra.len() - 1
    });
    match ledger::apply(ctx, &m, &extra).await? {
        Outcome::Moved(entry) => {
            same_request(&entry, op, r)?;
            Ok((answer(op, r, &entry), entry.fresh))
        }
        Outcome::Refused(Refusal::InsufficientFunds { available }) => Err(Error::PaymentRequired {
            code: ErrorCode::InsufficientFunds,
            reason: format!(
                "the bet is {} but only {} is available",
                r.amount,
                format_minor(available, r.amount.currency())
            ),
        }),
        Outcome::Refused(Refusal::Extra { index, .. }) if Some(index) == excluded_at => {
            crate::domain::limits::exclusion::check(ctx, &r.player, ctx.now_ms()).await?;
            Err(Error::Unavailable(
                "the self-exclusion changed meanwhile".into(),
            ))
        }
        Outcome::Refused(Refusal::Extra { index, .. }) => Err(match (op, index) {
            (RoundOp::Bet, _) => Error::Conflict {
                code: ErrorCode::RoundConflict,
                reason: "this round belongs to another player or currency, or has this txn_id"
                    .into(),
            },
            (RoundOp::Win, 0) => Error::validation(
                "round_id",
                "no bet of this player and currency in this round",
            ),
            (RoundOp::Win, _) => Error::Conflict {
                code: ErrorCode::TxnIdReused,
                reason: "this round already has this txn_id".into(),
            },
            (RoundOp::Rollback, 0) => Error::validation(
                "round_id",
                "this round belongs to another player or currency",
            ),
            (RoundOp::Rollback, _) => {
                Error::validation("txn_id", "this bet was already rolled back")
            }
        }),
        Outcome::Refused(Refusal::NoHold | Refusal::WageringIncomplete { .. }) => Err(
            Error::Internal("round movement refused for held or wagering".into()),
        ),
    }
}

/// The ledger movement and the round writes that go with it.
pub(super) async fn plan(
    ctx: &Ctx,
    op: RoundOp,
    r: &Round,
) -> Result<(Movement, Vec<Write>), Error> {
    let kind = match op {
        RoundOp::Bet => EntryKind::Debit,
        RoundOp::Win => EntryKind::Credit,
        RoundOp::Rollback => EntryKind::Adjustment,
    };
    let mut m = Movement::new(&r.player, r.amount.currency(), op.ledger_txn(&r.txn)?, kind);
    m.related = vec![
        ("round_id", r.round_id.clone()),
        ("client_txn_id", r.txn.to_string()),
    ];
    let writes = match op {
        RoundOp::Bet => bet_writes(&mut m, r),
        RoundOp::Win => win_writes(&mut m, r),
        RoundOp::Rollback => rollback_writes(ctx, &mut m, r).await?,
    };
    Ok((m, writes))
}

/// The round's record of one bet (`debit`) or win (`credit`).
pub(super) fn txn_record(r: &Round, kind: &str) -> Item {
    item(
        &keys::round_txn(&r.round_id, &r.txn),
        [
            ("kind", Attr::from(kind)),
            ("amount", Attr::N(r.amount.minor())),
            ("currency", Attr::from(r.amount.currency().code())),
        ],
    )
}

/// A bet: debit and count it as wagered; the round is created or must be
/// this player's in this currency; the bet's txn id is new.
pub(super) fn bet_writes(m: &mut Movement, r: &Round) -> Vec<Write> {
    m.available_delta = -r.amount.minor();
    m.wagered_delta = r.amount.minor();
    m.reason = "bet".into();
    vec![
        Write::Update {
            key: keys::round(&r.round_id),
            ops: vec![
                UpdateOp::set("player", r.player.as_str()),
                UpdateOp::set("currency", r.amount.currency().code()),
            ],
            cond: Some(Cond::Or(vec![Cond::NotExists, round_is_theirs(r)])),
        },
        Write::Put {
            item: txn_record(r, "debit"),
            cond: Some(Cond::NotExists),
        },
    ]
}

/// A win: credit, in a round of this player's; the win's txn id is new.
pub(super) fn win_writes(m: &mut Movement, r: &Round) -> Vec<Write> {
    m.available_delta = r.amount.minor();
    m.reason = "win".into();
    vec![
        Write::Check {
            key: keys::round(&r.round_id),
            cond: round_is_theirs(r),
        },
        Write::Put {
            item: txn_record(r, "credit"),
            cond: Some(Cond::NotExists),
        },
    ]
}

/// A rollback: give back a bet of this round (same txn id, amount and
/// currency), once: the bet is marked rolled back in the same transaction.
pub(super) async fn rollback_writes(
    ctx: &Ctx,
    m: &mut Movement,
    r: &Round,
) -> Result<Vec<Write>, Error> {
    let (minor, currency) = (r.amount.minor(), r.amount.currency());
    let bet = ctx.store.get(&keys::round_txn(&r.round_id, &r.txn)).await?;
    let is_bet = bet.as_ref().is_some_and(|b| {
        b.str_attr("kind") == Some("debit")
            && b.int_attr("amount") == Some(minor)
            && b.str_attr("currency") == Some(currency.code())
    });
    if !is_bet || ctx.store.get(&keys::round(&r.round_id)).await?.is_none() {
        return Err(Error::validation(
            "txn_id",
            "no bet with this txn_id, amount and currency in this round",
        ));
    }
    m.available_delta = minor;
    m.wagered_delta = -minor;
    m.reason = "rollback".into();
    Ok(vec![
        Write::Check {
            key: keys::round(&r.round_id),
            cond: round_is_theirs(r),
        },
        Write::Update {
            key: keys::round_txn(&r.round_id, &r.txn),
            ops: vec![UpdateOp::set("rolled_back", true)],
            cond: Some(Cond::And(vec![
                Cond::eq("kind", "debit"),
                Cond::AttrNotExists("rolled_back".into()),
            ])),
        },
    ])
}

/// A repeat must be the same request: same round, amount, currency, kind.
pub(super) fn same_request(entry: &Entry, op: RoundOp, r: &Round) -> Result<(), Error> {
    let it = &entry.item;
    let expected_kind = match op {
        RoundOp::Bet => "debit",
        RoundOp::Win => "credit",
        RoundOp::Rollback => "adjustment",
    };
    let same = it.str_attr("kind") == Some(expected_kind)
        && it.str_attr("round_id") == Some(r.round_id.as_str())
        && it.int_attr("amount") == Some(r.amount.minor())
        && it.str_attr("currency") == Some(r.amount.currency().code());
    if same {
        Ok(())
    } else {
        Err(Error::Conflict {
            code: ErrorCode::TxnIdReused,
            reason: "this txn_id was already used for another wallet operation".into(),
        })
    }
}
