//! The checks before any money is held (wagering, limits, KYC for the
//! amount and risk) and the choice of PSP (closed loop first).

use super::*;

pub(super) fn required_kyc(policy: &PayoutPolicy, amount: i64, risk: RiskLevel) -> KycLevel {
    if amount > policy.basic_kyc_max_minor || risk >= RiskLevel::Medium {
        KycLevel::Full
    } else {
        KycLevel::Basic
    }
}

/// The checks before any money is held, each with its own error.
pub(super) async fn check(ctx: &Ctx, r: &PayoutRequest) -> Result<(), Error> {
    let policy = &ctx.policies.payouts;
    if r.amount.minor() > policy.max_per_payout_minor {
        return Err(Error::Limit {
            code: ErrorCode::PayoutLimit,
            field: "amount".into(),
            reason: format!(
                "above the per-payout limit of {}",
                crate::money::format_minor(policy.max_per_payout_minor, r.amount.currency())
            ),
        });
    }
    let balance = ledger::Balance::from_item(
        ctx.store
            .get(&keys::balance(&r.player, r.amount.currency()))
            .await?
            .as_ref(),
    );
    if balance.to_wager() > 0 {
        return Err(wagering_incomplete(balance.to_wager(), r.amount.currency()));
    }
    let players::Profile { kyc, risk } = players::profile(ctx, &r.player).await?;
    let needed = required_kyc(policy, r.amount.minor(), risk);
    if kyc < needed {
        return Err(Error::PaymentRequiredWith {
            code: ErrorCode::KycRequired,
            reason: format!("this payout needs {} KYC (step-up)", needed.as_str()),
            details: json!({"kyc_level": kyc.as_str(), "required_level": needed.as_str(), "risk_level": risk.as_str()}),
        });
    }
    Ok(())
}

pub(super) fn wagering_incomplete(to_wager: i64, currency: Currency) -> Error {
    Error::PaymentRequiredWith {
        code: ErrorCode::WageringIncomplete,
        reason: "deposits must be wagered before a withdrawal".into(),
        details: json!({"to_wager": crate::money::format_minor(to_wager, currency)}),
    }
}

/// Where the payout goes, and why: the PSP of the player's last captured
/// deposit (closed loop) if it is healthy, else the routing rules.
pub(super) async fn route(
    ctx: &Ctx,
    r: &PayoutRequest,
) -> Result<(PspId, Option<String>, String), Error> {
    let mut q = Query::new(
        keys::wallet_pk(&r.player),
        SkRange::Prefix(format!("{}dep_", keys::LEDGER_PREFIX)),
        1,
    );
    q.descending = true;
    let last = ctx.store.query(&q).await?.items.into_iter().next();
    let deposit_id = last
        .as_ref()
        .and_then(|e| e.str_attr("payment_id"))
        .map(crate::ids::PaymentId::parse)
        .transpose()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let deposit = match &deposit_id {
        Some(id) => ctx.store.get(&keys::payment(id)).await?,
        None => None,
    };
    let mut why_not = "no captured deposit to return to".to_owned();
    if let Some(d) = &deposit {
        let psp = d.str_attr("psp").and_then(|p| PspId::parse(p).ok());
        let same_currency = d.str_attr("currency") == Some(r.amount.currency().code());
        match psp {
            Some(psp) if same_currency && ctx.psps.get(&psp).is_some() => {
                if ctx.psps.health.state(&psp).circuit == Circuit::Closed {
                    let token = d.str_attr("psp_reference").map(str::to_owned);
                    let pid = deposit_id.as_ref().map(|p| p.as_str()).unwrap_or_default();
                    return Ok((psp, token, format!("closed loop: deposit {pid}")));
                }
                why_not = format!("closed-loop PSP {psp} is unhealthy");
            }
            Some(psp) if !same_currency => {
                why_not = format!("last deposit (via {psp}) was in another currency")
            }
            _ => why_not = "the deposit's PSP has no connector".into(),
        }
    }
    let candidates = ctx.psps.router.candidates(&RouteRequest {
        country: None,
        amount: r.amount,
        method: &r.method,
        risk: players::profile(ctx, &r.player).await?.risk,
        seed: 0,
    });
    let c = candidates.into_iter().next().ok_or(Error::NoRoute)?;
    Ok((c.psp, None, format!("{why_not}; {}", c.reason)))
}
