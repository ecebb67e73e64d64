//! The payment (deposit intent) and its forward-only state machine:
//! pending → authorized → captured | failed | canceled.

use crate::error::Error;
use crate::ids::{PaymentId, PlayerId, PspId};
use crate::money::{Currency, Money};
use crate::store::{item, Attr, Item, ItemExt};

use crate::domain::cases::{CaseKind, NewCase, Side};
use crate::psp::event::PspEvent;
use crate::schema::keys;
pub use crate::schema::status::{PaymentStatus, METHODS};

#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub id: PaymentId,
    pub player: PlayerId,
    pub amount: Money,
    pub method: String,
    pub psp: PspId,
    pub status: PaymentStatus,
    pub return_url: String,
    pub country: Option<String>,
    pub device: Option<String>,
    pub created_ms: i64,
    pub credited_txn: Option<String>,
    /// Every status the payment went through, as stored.
    pub history: Vec<Attr>,
}

pub fn history_entry(status: PaymentStatus, at_ms: i64, event_id: Option<&str>) -> Attr {
    let mut m = std::collections::BTreeMap::new();
    m.insert("status".to_owned(), Attr::from(status.as_str()));
    m.insert("at_ms".to_owned(), Attr::N(at_ms));
    if let Some(e) = event_id {
        m.insert("event_id".to_owned(), Attr::from(e));
    }
    Attr::M(m)
}

impl Payment {
    pub fn to_item(&self) -> Item {
        let mut it = item(
            &keys::payment(&self.id),
            [
                ("player", Attr::from(self.player.as_str())),
                ("amount", Attr::N(self.amount.minor())),
                ("currency", Attr::from(self.amount.currency().code())),
                ("method", Attr::from(self.method.as_str())),
                ("psp", Attr::from(self.psp.as_str())),
                ("status", Attr::from(self.status.as_str())),
                ("return_url", Attr::from(self.return_url.as_str())),
                ("created_ms", Attr::N(self.created_ms)),
                (
                    "history",
                    Attr::L(vec![history_entry(self.status, self.created_ms, None)]),
                ),
            ],
        );
        if let Some(c) = &self.country {
            it.insert("country".into(), Attr::from(c.as_str()));
        }
        if let Some(d) = &self.device {
            it.insert("device".into(), Attr::from(d.as_str()));
        }
        it
    }

    pub fn from_item(it: &Item) -> Result<Payment, Error> {
        let bad = |f: &str| Error::Internal(format!("payment item lacks {f}"));
        let id = it
            .str_attr("pk")
            .and_then(|pk| pk.strip_prefix("PAY#"))
            .ok_or_else(|| bad("pk"))?;
        let currency = Currency::parse(it.str_attr("currency").ok_or_else(|| bad("currency"))?)
            .map_err(|_| bad("currency"))?;
        let amount = Money::from_minor(
            it.int_attr("amount").ok_or_else(|| bad("amount"))?,
            currency,
        )
        .map_err(|_| bad("amount"))?;
        let history = it
            .get("history")
            .and_then(Attr::as_list)
            .unwrap_or_default();
        Ok(Payment {
            id: PaymentId::parse(id).map_err(|_| bad("id"))?,
            player: PlayerId::parse(it.str_attr("player").ok_or_else(|| bad("player"))?)
                .map_err(|_| bad("player"))?,
            amount,
            method: it.str_attr("method").unwrap_or_default().to_owned(),
            psp: PspId::parse(it.str_attr("psp").ok_or_else(|| bad("psp"))?)
                .map_err(|_| bad("psp"))?,
            status: PaymentStatus::parse(it.str_attr("status").unwrap_or_default())
                .ok_or_else(|| bad("status"))?,
            return_url: it.str_attr("return_url").unwrap_or_default().to_owned(),
            country: it.str_attr("country").map(str::to_owned),
            device: it.str_attr("device").map(str::to_owned),
            created_ms: it.int_attr("created_ms").unwrap_or(0),
            credited_txn: it.str_attr("credited_txn").map(str::to_owned),
            history: history.to_vec(),
        })
    }
}

impl Payment {
    /// Does a PSP event describe this payment (id, amount, currency, PSP)?
    pub fn matches(&self, ev: &PspEvent) -> bool {
        self.id == ev.payment_id
            && self.amount.minor() == ev.amount_minor
            && self.amount.currency() == ev.currency
            && self.psp == ev.psp
    }

    /// The case an event that must not move this payment's money opens
    /// (once per event: the key is the event's).
    pub fn case(&self, kind: CaseKind, ev: &PspEvent) -> NewCase {
        NewCase::of_event(
            keys::case(&ev.payment_id, &ev.psp, &ev.event_id),
            kind,
            &ev.event_id,
            None,
            Side::record("payment", self.status.as_str(), self.amount, &self.psp),
            Side::event(ev.status.as_str(), ev.amount_minor, ev.currency, &ev.psp),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PaymentStatus::*;

    #[test]
    fn moves_only_forward() {
        assert!(Pending.can_move_to(Authorized));
        assert!(Pending.can_move_to(Captured));
        assert!(Authorized.can_move_to(Captured));
        assert!(Authorized.can_move_to(Failed));
        assert!(!Captured.can_move_to(Authorized));
        assert!(!Captured.can_move_to(Failed));
        assert!(!Failed.can_move_to(Captured));
        assert!(!Authorized.can_move_to(Authorized));
        assert!(!Pending.can_move_to(Pending));
        assert_eq!(
            PaymentStatus::predecessors(Captured),
            vec![Pending, Authorized]
        );
        assert_eq!(PaymentStatus::predecessors(Authorized), vec![Pending]);
        assert_eq!(PaymentStatus::predecessors(ChargedBack), vec![Captured]);
        assert!(!Failed.can_move_to(ChargedBack) && !Pending.can_move_to(ChargedBack));
    }

    proptest! {
        /// Applying any sequence of events (in any order, with repeats) never
        /// leaves a final state except captured → charged_back, and the end
        /// state only depends on which PSP outcome came first.
        #[test]
        fn any_event_order_is_monotonic(events in prop::collection::vec(0usize..6, 0..20)) {
            let mut s = Pending;
            let mut first_final = None;
            for e in events {
                let next = PaymentStatus::ALL[e];
                if s.can_move_to(next) {
                    prop_assert!(!s.is_final() || (s == Captured && next == ChargedBack));
                    s = next;
                    if s.is_final() && first_final.is_none() { first_final = Some(s); }
                }
            }
            if let Some(f) = first_final {
                prop_assert!(s == f || (f == Captured && s == ChargedBack));
            }
        }
    }
}
