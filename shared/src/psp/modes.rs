//! Degradation mode: during an incident, heavy payment methods are switched
//! off, fast ones (pay-by-bank, P2P by default) stay on, and payouts are
//! queued instead of failed. Switched by an operator over the admin API (a
//! store item, so every instance follows) or forced by configuration.

use std::sync::RwLock;

use crate::schema::keys;
use crate::store::{item, Attr, Store, StoreError, Write};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModeView {
    pub degraded: bool,
    /// Forced on by configuration (the admin switch cannot turn it off).
    pub forced: bool,
    pub changed_ms: i64,
    pub note: String,
}

pub struct Modes {
    forced: bool,
    refresh_ms: i64,
    cache: RwLock<Option<(i64, ModeView)>>,
}

impl Modes {
    pub fn new(forced: bool, refresh_ms: i64) -> Modes {
        Modes {
            forced,
            refresh_ms,
            cache: RwLock::new(None),
        }
    }

    /// The current mode, re-read from the store at most every `refresh_ms`.
    pub async fn current(&self, store: &dyn Store, now_ms: i64) -> Result<ModeView, StoreError> {
        if let Ok(cache) = self.cache.read() {
            if let Some((at, view)) = cache.as_ref() {
                if now_ms.saturating_sub(*at) < self.refresh_ms {
                    return Ok(view.clone());
                }
            }
        }
        let view = self.read(store).await?;
        if let Ok(mut cache) = self.cache.write() {
            *cache = Some((now_ms, view.clone()));
        }
        Ok(view)
    }

    async fn read(&self, store: &dyn Store) -> Result<ModeView, StoreError> {
        let found = store.get(&keys::modes()).await?;
        let get = |name: &str| found.as_ref().and_then(|it| it.get(name));
        Ok(ModeView {
            degraded: self.forced || get("degraded").and_then(Attr::as_bool).unwrap_or(false),
            forced: self.forced,
            changed_ms: get("changed_ms").and_then(Attr::as_i64).unwrap_or(0),
            note: get("note")
                .and_then(Attr::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Switch degradation mode on or off for every instance.
    pub async fn set_degraded(
        &self,
        store: &dyn Store,
        on: bool,
        note: &str,
        now_ms: i64,
    ) -> Result<ModeView, StoreError> {
        let it = item(
            &keys::modes(),
            [
                ("degraded", Attr::B(on)),
                ("changed_ms", Attr::N(now_ms)),
                ("note", Attr::from(note)),
            ],
        );
        store
            .write(Write::Put {
                item: it,
                cond: None,
            })
            .await?;
        let view = self.read(store).await?;
        if let Ok(mut cache) = self.cache.write() {
            *cache = Some((now_ms, view.clone()));
        }
        Ok(view)
    }
}
