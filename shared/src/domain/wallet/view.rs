//! What a wallet looks like from outside: balances per currency and the most
//! recent ledger entries (`GET /v1/wallet/{player}`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::{format_minor, Currency};
use crate::schema::keys;
use crate::store::{Attr, Item, ItemExt, Query, SkRange};

use crate::domain::wallet::balance::balances;
use crate::domain::Ctx;

/// Ledger entries shown by `GET /v1/wallet/{player}`.
pub const RECENT_ENTRIES: usize = 50;
/// Related ids a ledger entry may carry.
const RELATED_IDS: [&str; 4] = ["payment_id", "payout_id", "round_id", "refund_id"];

#[derive(Debug, Serialize)]
pub struct WalletView {
    pub player_id: PlayerId,
    pub balances: Vec<BalanceView>,
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub currency: Currency,
    pub available: String,
    pub held: String,
}

#[derive(Debug, Serialize)]
pub struct EntryView {
    pub txn_id: Option<String>,
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub amount: String,
    pub available_delta: Option<String>,
    pub held_delta: Option<String>,
    pub available_after: Option<String>,
    pub held_after: Option<String>,
    pub currency: Currency,
    pub flagged: bool,
    pub at_ms: Option<i64>,
    /// The payment, payout, round or refund the entry belongs to.
    #[serde(flatten)]
    pub related: BTreeMap<&'static str, String>,
}

impl EntryView {
    fn from_item(it: &Item) -> Option<EntryView> {
        let currency = Currency::parse(it.str_attr("currency")?).ok()?;
        let minor = |name: &str| it.int_attr(name).map(|v| format_minor(v, currency));
        let text = |name: &str| it.str_attr(name).map(str::to_owned);
        let related = RELATED_IDS
            .into_iter()
            .filter_map(|name| Some((name, it.str_attr(name)?.to_owned())))
            .collect();
        Some(EntryView {
            txn_id: text("txn_id"),
            kind: text("kind"),
            reason: text("reason"),
            amount: minor("amount")?,
            available_delta: minor("available_delta"),
            held_delta: minor("held_delta"),
            available_after: minor("available_after"),
            held_after: minor("held_after"),
            currency,
            flagged: it.get("flagged").and_then(Attr::as_bool).unwrap_or(false),
            at_ms: it.int_attr("at_ms"),
            related,
        })
    }
}

/// `GET /v1/wallet/{player}`: balances and the most recent ledger entries.
pub async fn wallet_view(ctx: &Ctx, player: &PlayerId) -> Result<WalletView, Error> {
    let balances = balances(ctx, player)
        .await?
        .into_iter()
        .map(|b| BalanceView {
            currency: b.currency,
            available: format_minor(b.available, b.currency),
            held: format_minor(b.held, b.currency),
        })
        .collect();
    let mut q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::LEDGER_PREFIX.into()),
        RECENT_ENTRIES,
    );
    q.descending = true;
    let page = ctx.store.query(&q).await?;
    let entries = page.items.iter().filter_map(EntryView::from_item).collect();
    Ok(WalletView {
        player_id: player.clone(),
        balances,
        entries,
    })
}
