//! A player's balances per currency, as the ledger keeps them.

use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::Currency;
use crate::schema::keys;
use crate::store::{ItemExt, Query, SkRange};

use crate::domain::Ctx;

/// Balance currencies read per wallet.
const MAX_CURRENCIES: usize = 200;

/// One currency's balance, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyBalance {
    pub currency: Currency,
    pub available: i64,
    pub held: i64,
}

/// A player's balances per currency.
pub async fn balances(ctx: &Ctx, player: &PlayerId) -> Result<Vec<CurrencyBalance>, Error> {
    let q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::BALANCE_PREFIX.into()),
        MAX_CURRENCIES,
    );
    let page = ctx.store.query(&q).await?;
    let mut out = Vec::new();
    for it in &page.items {
        let Some(currency) = it.str_attr("sk").and_then(keys::balance_currency) else {
            continue;
        };
        let available = it.int_attr("available").unwrap_or(0);
        let held = it.int_attr("held").unwrap_or(0);
        if available < 0 || held < 0 {
            // Never expected without a chargeback: shout, do not hide it.
            tracing::error!(player_id = %player, currency = currency.code(), "negative wallet balance");
        }
        out.push(CurrencyBalance {
            currency,
            available,
            held,
        });
    }
    Ok(out)
}
