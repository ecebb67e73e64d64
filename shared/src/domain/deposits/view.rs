//! How a deposit is shown: the payment (`GET /v1/payments/{id}`) and its
//! webhook delivery log (`GET /v1/payments/{id}/deliveries`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::ids::{PaymentId, PlayerId, PspId, TxnId};
use crate::money::{format_minor, Currency};
use crate::schema::keys;
use crate::store::{Attr, Doc, Item, ItemExt, Query, SkRange};

use crate::domain::deposits::intent::load_payment;
use crate::domain::deposits::payment::{Payment, PaymentStatus};
use crate::domain::Ctx;

/// Deliveries shown per payment.
pub const MAX_DELIVERIES_SHOWN: usize = 200;
/// Deliveries that failed verification shown per payment (they are claims).
pub const MAX_UNVERIFIED_SHOWN: usize = 50;

/// The public view of a payment, with its PSP reference and routing decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentView {
    pub payment_id: PaymentId,
    pub player_id: PlayerId,
    pub amount: String,
    pub amount_micros: Option<i64>,
    pub currency: Currency,
    pub method: String,
    pub psp: PspId,
    pub status: PaymentStatus,
    /// The ledger entry that credited the wallet, once it exists: between
    /// the capture and the credit (or until a redelivery after a crash) the
    /// payment names the txn it owes, and this stays empty.
    pub credited_txn_id: Option<String>,
    pub created_at_ms: i64,
    pub history: Vec<Doc>,
    pub psp_reference: Option<Doc>,
    pub redirect_url: Option<Doc>,
    pub routing: Option<Doc>,
    /// The risk decision's outcome, score, rules version and id.
    pub risk: Option<Doc>,
}

impl PaymentView {
    fn new(p: Payment, stored: &Item) -> PaymentView {
        PaymentView {
            amount: p.amount.to_decimal(),
            amount_micros: p.amount.micros().ok(),
            currency: p.amount.currency(),
            payment_id: p.id,
            player_id: p.player,
            method: p.method,
            psp: p.psp,
            status: p.status,
            credited_txn_id: None,
            created_at_ms: p.created_ms,
            history: p.history.into_iter().map(Doc).collect(),
            psp_reference: stored.get("psp_reference").cloned().map(Doc),
            redirect_url: stored.get("redirect_url").cloned().map(Doc),
            routing: stored.get("routing").cloned().map(Doc),
            risk: stored.get("risk").cloned().map(Doc),
        }
    }
}

pub async fn payment_view(ctx: &Ctx, id: &PaymentId) -> Result<PaymentView, Error> {
    let found = ctx
        .store
        .get(&keys::payment(id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    let payment = Payment::from_item(&found)?;
    let owed = payment.credited_txn.clone();
    let player = payment.player.clone();
    let mut view = PaymentView::new(payment, &found);
    view.credited_txn_id = match owed.as_deref().map(TxnId::parse) {
        Some(Ok(txn)) => credited(ctx, &player, &txn).await?.then(|| txn.to_string()),
        _ => None,
    };
    Ok(view)
}

/// Whether the wallet holds the ledger entry `txn`.
async fn credited(ctx: &Ctx, player: &PlayerId, txn: &TxnId) -> Result<bool, Error> {
    Ok(ctx.store.get(&keys::ledger(player, txn)).await?.is_some())
}

/// A deposit intent held for risk review (no payment at any PSP yet).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldView {
    pub payment_id: PaymentId,
    pub player_id: String,
    /// `review` until an operator decides; `declined`; `approved` while
    /// the approved intent is being opened.
    pub status: &'static str,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub method: Option<String>,
    pub review_opened_at_ms: i64,
    /// What an approval did (`opened`, or `not opened: <code>`).
    pub review_result: Option<String>,
}

/// What `GET /v1/payments/{id}` shows: the payment, or the held intent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Payment(Box<PaymentView>),
    Held(HeldView),
}

pub async fn show(ctx: &Ctx, id: &PaymentId) -> Result<Shown, Error> {
    match payment_view(ctx, id).await {
        Err(Error::NotFound { .. }) => {}
        other => return other.map(|v| Shown::Payment(Box::new(v))),
    }
    let r = crate::domain::risk::review::find(ctx, id.as_str())
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    let field = |n: &str| {
        r.request
            .as_ref()
            .and_then(|b| b[n].as_str())
            .map(str::to_owned)
    };
    Ok(Shown::Held(HeldView {
        payment_id: id.clone(),
        player_id: r.player.as_str().to_owned(),
        status: match r.status {
            crate::domain::risk::review::ReviewStatus::Open => "review",
            other => other.as_str(),
        },
        amount: field("amount"),
        currency: field("currency"),
        method: field("method"),
        review_opened_at_ms: r.opened_ms,
        review_result: r.result.clone(),
    }))
}

/// One webhook delivery as logged: its attributes (amount as a decimal),
/// its id and whether its signature verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub verified: bool,
    #[serde(flatten)]
    pub logged: BTreeMap<String, Doc>,
}

impl DeliveryView {
    fn from_item(it: &Item, verified: bool) -> DeliveryView {
        let mut logged = it.clone();
        logged.remove("pk");
        let delivery_id = logged
            .remove("sk")
            .and_then(|sk| sk.as_str().map(str::to_owned));
        let currency = it
            .str_attr("currency")
            .and_then(|c| Currency::parse(c).ok());
        if let (Some(c), Some(minor)) = (currency, it.int_attr("amount")) {
            logged.insert("amount".into(), Attr::from(format_minor(minor, c)));
        }
        logged.remove("verified");
        DeliveryView {
            delivery_id: delivery_id.unwrap_or_default(),
            verified,
            logged: logged.into_iter().map(|(k, v)| (k, Doc(v))).collect(),
        }
    }

    fn at_ms(&self) -> i64 {
        self.logged
            .get("at_ms")
            .and_then(|d| d.0.as_i64())
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveriesView {
    pub payment_id: PaymentId,
    pub deliveries: Vec<DeliveryView>,
}

/// The deliveries that moved the payment, from its history: intake writes
/// no record of an accepted payment event (the payment's status tells a
/// duplicate), so the move is the accepted delivery's trace, dated when it
/// was applied. (Payments accepted before keep their `EVT#` records.)
fn applied_deliveries(p: &Payment) -> Vec<DeliveryView> {
    p.history
        .iter()
        .filter_map(Attr::as_map)
        .filter_map(|h| {
            let event_id = h.get("event_id")?.as_str()?;
            let mut logged = BTreeMap::new();
            logged.insert("outcome".to_owned(), Doc(Attr::from("accepted")));
            logged.insert("psp".to_owned(), Doc(Attr::from(p.psp.as_str())));
            logged.insert("event_id".to_owned(), Doc(Attr::from(event_id)));
            logged.insert("status".to_owned(), Doc(h.get("status")?.clone()));
            logged.insert("at_ms".to_owned(), Doc(h.get("at_ms")?.clone()));
            logged.insert("amount".to_owned(), Doc(Attr::from(p.amount.to_decimal())));
            logged.insert(
                "currency".to_owned(),
                Doc(Attr::from(p.amount.currency().code())),
            );
            Some(DeliveryView {
                delivery_id: format!("{}{}#{event_id}", keys::EVENT_PREFIX, p.psp),
                verified: true,
                logged,
            })
        })
        .collect()
}

/// The webhook delivery log of one payment, oldest first.
pub async fn deliveries(ctx: &Ctx, id: &PaymentId) -> Result<DeliveriesView, Error> {
    let payment = load_payment(ctx, id).await?;
    let pk = keys::payment_pk(id.as_str());
    let unverified_pk = keys::unverified_pk(id.as_str());
    let sources = [
        (pk.as_str(), keys::EVENT_PREFIX, MAX_DELIVERIES_SHOWN, true),
        (
            pk.as_str(),
            keys::DELIVERY_PREFIX,
            MAX_DELIVERIES_SHOWN,
            true,
        ),
        (
            unverified_pk.as_str(),
            keys::DELIVERY_PREFIX,
            MAX_UNVERIFIED_SHOWN,
            false,
        ),
    ];
    let mut out = applied_deliveries(&payment);
    for (partition, prefix, limit, verified) in sources {
        let q = Query::new(partition, SkRange::Prefix(prefix.into()), limit);
        let page = ctx.store.query(&q).await?;
        let logged: Vec<DeliveryView> = page
            .items
            .iter()
            .map(|it| DeliveryView::from_item(it, verified))
            // An older record of a move the history shows already.
            .filter(|d| !out.iter().any(|o| o.delivery_id == d.delivery_id))
            .collect();
        out.extend(logged);
    }
    out.sort_by_key(DeliveryView::at_ms);
    Ok(DeliveriesView {
        payment_id: id.clone(),
        deliveries: out,
    })
}
