//! The idempotency engine used by every mutating endpoint.
//!
//! A request claims `(scope, Idempotency-Key)` with ONE conditional put. The
//! claim succeeds when no record exists, the record expired (checked here, not
//! only by TTL), or an in-flight claim's lease lapsed (its request crashed).
//! When the claim fails, the store hands back the record as it stood
//! (ALL_OLD), so a duplicate costs one failed write and no read:
//! - another request body → 409 `idempotency_key_reused`;
//! - completed → the stored response, byte for byte;
//! - in flight → 409 `request_in_progress`.
//!
//! Only 2xx responses are stored; otherwise the claim is released and a retry
//! is evaluated afresh.

use sha2::{Digest, Sha256};

use crate::clock::{now_ms, now_s};
use crate::config::Config;
use crate::error::Error;
use crate::ids::{new_ulid, IdempotencyKey};
use crate::store::{item, Attr, Cond, Item, ItemExt, Key, Store, StoreError, UpdateOp, Write, TTL};

use super::keys;

const IN_FLIGHT: &str = "in_flight";
const COMPLETED: &str = "completed";

/// A request as the engine sees it.
pub struct IdemRequest<'a> {
    pub scope: &'a str,
    pub key: &'a IdempotencyKey,
    pub fingerprint: String,
}

/// The response remembered for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// Proof of a successful claim, needed to finish it.
#[derive(Debug)]
pub struct Claim {
    key: Key,
    owner: String,
}

#[derive(Debug)]
pub enum Begin {
    Fresh(Claim),
    Replay(StoredResponse),
}

/// Hash of method, path and the canonical body (JSON re-serialised with
/// sorted keys, so whitespace and key order do not matter).
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let canonical = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec()),
        Err(_) => body.to_vec(),
    };
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(&canonical);
    hex::encode(h.finalize())
}

fn claim_condition(now_ms: i64, now_s: i64) -> Cond {
    Cond::Or(vec![
        Cond::NotExists,
        Cond::Lt(TTL.into(), Attr::N(now_s)),
        Cond::And(vec![
            Cond::eq("state", IN_FLIGHT),
            Cond::Lt("lease_until_ms".into(), Attr::N(now_ms)),
        ]),
    ])
}

/// Claim the key, or learn what the earlier request with it became.
pub async fn begin(store: &dyn Store, cfg: &Config, req: &IdemRequest<'_>) -> Result<Begin, Error> {
    let key = keys::idempotency(req.scope, req.key);
    let owner = new_ulid("own");
    let (ms, s) = (now_ms(), now_s());
    let record = item(
        &key,
        [
            ("state", Attr::from(IN_FLIGHT)),
            ("fp", Attr::from(req.fingerprint.as_str())),
            ("owner", Attr::from(owner.as_str())),
            ("lease_until_ms", Attr::N(ms + cfg.idempotency_lease_ms)),
            (TTL, Attr::N(s + cfg.idempotency_ttl_s)),
        ],
    );
    let put = Write::Put {
        item: record,
        cond: Some(claim_condition(ms, s)),
    };
    match store.write(put).await {
        Ok(()) => Ok(Begin::Fresh(Claim { key, owner })),
        Err(StoreError::ConditionFailed { old: Some(old), .. }) => judge_existing(&old, req),
        // The record vanished between the check and the report: treat as busy.
        Err(StoreError::ConditionFailed { old: None, .. }) => Err(Error::RequestInProgress),
        Err(e) => Err(e.into()),
    }
}

fn judge_existing(old: &Item, req: &IdemRequest<'_>) -> Result<Begin, Error> {
    if old.str_attr("fp") != Some(req.fingerprint.as_str()) {
        return Err(Error::IdempotencyKeyReused);
    }
    if old.str_attr("state") != Some(COMPLETED) {
        return Err(Error::RequestInProgress);
    }
    let status = old.int_attr("status").and_then(|s| u16::try_from(s).ok());
    match (status, old.str_attr("body")) {
        (Some(status), Some(body)) => Ok(Begin::Replay(StoredResponse {
            status,
            body: body.to_owned(),
        })),
        _ => Err(Error::Internal(
            "completed idempotency record without a response".into(),
        )),
    }
}

/// Finish a claim: remember a 2xx response, release the key otherwise.
pub async fn finish(store: &dyn Store, claim: Claim, status: u16, body: &str) -> Result<(), Error> {
    let owned = Cond::And(vec![Cond::Exists, Cond::eq("owner", claim.owner.as_str())]);
    let write = if (200..300).contains(&status) {
        Write::Update {
            key: claim.key,
            ops: vec![
                UpdateOp::set("state", COMPLETED),
                UpdateOp::set("status", i64::from(status)),
                UpdateOp::set("body", body),
                UpdateOp::Remove("lease_until_ms".into()),
            ],
            cond: Some(owned),
        }
    } else {
        Write::Delete {
            key: claim.key,
            cond: Some(owned),
        }
    };
    match store.write(write).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { .. }) => {
            // Our lease lapsed and another request took the key over: the work
            // itself is already done and guarded by its own conditions.
            tracing::warn!("idempotency claim lost before completion");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyRing, WebhookSecrets};
    use crate::store::embedded::EmbeddedStore;

    fn cfg(ttl_s: i64, lease_ms: i64) -> Config {
        Config {
            client_keys: KeyRing::default(),
            platform_keys: KeyRing::default(),
            webhook_secrets: WebhookSecrets::default(),
            public_url: String::new(),
            default_psp: crate::ids::PspId::parse("sandbox").unwrap(),
            idempotency_ttl_s: ttl_s,
            idempotency_lease_ms: lease_ms,
            webhook_tolerance_s: 300,
        }
    }

    fn req<'a>(key: &'a IdempotencyKey, body: &str) -> IdemRequest<'a> {
        IdemRequest {
            scope: "client:t",
            key,
            fingerprint: fingerprint("POST", "/x", body.as_bytes()),
        }
    }

    #[tokio::test]
    async fn engine_claims_replays_conflicts_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.wal")).unwrap();
        let c = cfg(86_400, 30_000);
        let key = IdempotencyKey::parse("k1").unwrap();
        let Begin::Fresh(claim) = begin(&store, &c, &req(&key, "{}")).await.unwrap() else {
            panic!("fresh")
        };
        assert_eq!(
            begin(&store, &c, &req(&key, "{}")).await.unwrap_err(),
            Error::RequestInProgress
        );
        assert_eq!(
            begin(&store, &c, &req(&key, "{\"a\":1}"))
                .await
                .unwrap_err(),
            Error::IdempotencyKeyReused
        );
        finish(&store, claim, 201, "{\"id\":1}").await.unwrap();
        match begin(&store, &c, &req(&key, "{}")).await.unwrap() {
            Begin::Replay(r) => assert_eq!(
                r,
                StoredResponse {
                    status: 201,
                    body: "{\"id\":1}".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        // A non-2xx releases the key: the retry is evaluated afresh.
        let k2 = IdempotencyKey::parse("k2").unwrap();
        let Begin::Fresh(claim) = begin(&store, &c, &req(&k2, "{}")).await.unwrap() else {
            panic!("fresh")
        };
        finish(&store, claim, 422, "").await.unwrap();
        assert!(matches!(
            begin(&store, &c, &req(&k2, "{\"fixed\":1}")).await.unwrap(),
            Begin::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn expired_records_and_lapsed_leases_are_taken_over_in_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.wal")).unwrap();
        let key = IdempotencyKey::parse("k").unwrap();
        // Completed but expired (TTL in the past, item still present as on moto).
        let expired = cfg(-10, 30_000);
        let Begin::Fresh(claim) = begin(&store, &expired, &req(&key, "{}")).await.unwrap() else {
            panic!()
        };
        finish(&store, claim, 200, "old").await.unwrap();
        assert!(matches!(
            begin(&store, &expired, &req(&key, "{\"new\":1}"))
                .await
                .unwrap(),
            Begin::Fresh(_)
        ));
        // In flight with a lapsed lease (the first request crashed).
        let k2 = IdempotencyKey::parse("k2").unwrap();
        let lapsed = cfg(86_400, -1);
        let Begin::Fresh(stale) = begin(&store, &lapsed, &req(&k2, "{}")).await.unwrap() else {
            panic!()
        };
        let Begin::Fresh(_taken) = begin(&store, &lapsed, &req(&k2, "{}")).await.unwrap() else {
            panic!("takeover")
        };
        // The crashed request's late completion must not overwrite the new owner.
        finish(&store, stale, 200, "late").await.unwrap();
        let k2_key = keys::idempotency("client:t", &k2);
        let rec = store.get(&k2_key).await.unwrap().unwrap();
        assert_eq!(rec.str_attr("state"), Some(IN_FLIGHT));
    }

    #[test]
    fn fingerprint_ignores_json_formatting_but_not_content() {
        let a = fingerprint("POST", "/v1/x", br#"{"a":1,"b":"x"}"#);
        let b = fingerprint("POST", "/v1/x", b"{ \"b\": \"x\",\n \"a\": 1 }");
        let c = fingerprint("POST", "/v1/x", br#"{"a":2,"b":"x"}"#);
        let d = fingerprint("POST", "/v1/y", br#"{"a":1,"b":"x"}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
