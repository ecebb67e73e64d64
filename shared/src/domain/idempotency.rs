//! The idempotency engine used by every mutating endpoint.
//!
//! A request claims `(scope, Idempotency-Key)` with ONE conditional put that
//! also reserves the id of the resource the request will create. The claim
//! succeeds when no record exists or the record expired (checked here, not
//! only by TTL). When it fails, the store hands back the record as it stood
//! (ALL_OLD), so a duplicate costs one failed write and no read:
//! - completed, same request → the stored response, byte for byte;
//! - completed or in flight, another request → 409 `idempotency_key_reused`;
//! - in flight → 409 `request_in_progress`;
//! - released (the first answer was not 2xx), or in flight with a lapsed
//!   lease (its request crashed) → taken over with a second conditional
//!   write, KEEPING the reserved resource id: work that committed before a
//!   crash or a timeout is found again, never done twice.
//!
//! Only 2xx responses are stored; otherwise the claim is released and a retry
//! is evaluated afresh (Google's rule).

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::Error;
use crate::ids::IdempotencyKey;
use crate::store::{item, Attr, Cond, Item, ItemExt, Key, Store, StoreError, UpdateOp, Write, TTL};

use crate::schema::keys;

const IN_FLIGHT: &str = "in_flight";
const COMPLETED: &str = "completed";
const RELEASED: &str = "released";

/// A request as the engine sees it.
pub struct IdemRequest<'a> {
    pub scope: &'a str,
    pub key: &'a IdempotencyKey,
    pub fingerprint: String,
    /// The time of this request (from the `Ctx` clock).
    pub now_ms: i64,
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
    resource: String,
}

impl Claim {
    /// The id reserved for what this request creates (a ULID), the same for
    /// every attempt under this key.
    pub fn resource(&self) -> &str {
        &self.resource
    }
}

#[derive(Debug)]
pub enum Begin {
    Fresh(Claim),
    Replay(StoredResponse),
    /// The same request holds the key in flight (only from [`begin_recall`]):
    /// its work may have committed without storing its answer (an endpoint
    /// whose own record is its answer); [`resume`] decides otherwise.
    InFlight(Busy),
}

/// A key held in flight by the same request.
#[derive(Debug)]
pub struct Busy {
    mine: Claim,
    old: Item,
    lapsed: bool,
}

impl Busy {
    /// The id reserved for what the request creates.
    pub fn resource(&self) -> &str {
        self.old.str_attr("resource").unwrap_or_default()
    }
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

/// Claim the key, or learn what the earlier request with it became.
pub async fn begin(store: &dyn Store, cfg: &Config, req: &IdemRequest<'_>) -> Result<Begin, Error> {
    match begin_recall(store, cfg, req).await? {
        Begin::InFlight(busy) => resume(store, cfg, req, busy).await,
        other => Ok(other),
    }
}

/// An in-flight key whose work left no record: take it over when its lease
/// lapsed (its request crashed), 409 `request_in_progress` otherwise.
pub async fn resume(
    store: &dyn Store,
    cfg: &Config,
    req: &IdemRequest<'_>,
    busy: Busy,
) -> Result<Begin, Error> {
    if busy.lapsed {
        take_over(store, cfg, req, busy.mine, &busy.old).await
    } else {
        Err(Error::RequestInProgress)
    }
}

/// As [`begin`], but the same request in flight is handed back as
/// [`Begin::InFlight`], for an endpoint that can recall its answer from
/// the record its work writes (and so never stores it: [`finish`] only on
/// a failure).
pub async fn begin_recall(
    store: &dyn Store,
    cfg: &Config,
    req: &IdemRequest<'_>,
) -> Result<Begin, Error> {
    let key = keys::idempotency(req.scope, req.key);
    let owner = crate::ids::fresh_ulid().to_string();
    let resource = crate::ids::fresh_ulid().to_string();
    let (ms, s) = (req.now_ms, req.now_ms.div_euclid(1000));
    let record = item(
        &key,
        [
            ("state", Attr::from(IN_FLIGHT)),
            ("fp", Attr::from(req.fingerprint.as_str())),
            ("owner", Attr::from(owner.as_str())),
            ("resource", Attr::from(resource.as_str())),
            ("lease_until_ms", Attr::N(ms + cfg.idempotency_lease_ms)),
            (TTL, Attr::N(s + cfg.idempotency_ttl_s)),
        ],
    );
    let fresh_or_expired = Cond::Or(vec![Cond::NotExists, Cond::Lt(TTL.into(), Attr::N(s))]);
    match store
        .write(Write::Put {
            item: record,
            cond: Some(fresh_or_expired),
        })
        .await
    {
        Ok(()) => Ok(Begin::Fresh(Claim {
            key,
            owner,
            resource,
        })),
        Err(StoreError::ConditionFailed { old: Some(old), .. }) => {
            judge_existing(
                store,
                cfg,
                req,
                Claim {
                    key,
                    owner,
                    resource,
                },
                &old,
            )
            .await
        }
        // The record vanished between the check and the report: treat as busy.
        Err(StoreError::ConditionFailed { old: None, .. }) => Err(Error::RequestInProgress),
        Err(e) => Err(e.into()),
    }
}

async fn judge_existing(
    store: &dyn Store,
    cfg: &Config,
    req: &IdemRequest<'_>,
    mine: Claim,
    old: &Item,
) -> Result<Begin, Error> {
    let old_resource = old.str_attr("resource").unwrap_or_default().to_owned();
    if old.str_attr("owner") == Some(mine.owner.as_str()) {
        // Our own put, retried by the SDK after it had succeeded.
        return Ok(Begin::Fresh(Claim {
            resource: old_resource,
            ..mine
        }));
    }
    let same_request = old.str_attr("fp") == Some(req.fingerprint.as_str());
    match old.str_attr("state") {
        Some(COMPLETED) if same_request => replay(old),
        Some(RELEASED) => take_over(store, cfg, req, mine, old).await,
        Some(IN_FLIGHT) if same_request => Ok(Begin::InFlight(Busy {
            mine,
            old: old.clone(),
            lapsed: old.int_attr("lease_until_ms").unwrap_or(0) < req.now_ms,
        })),
        _ => Err(Error::IdempotencyKeyReused),
    }
}

fn replay(old: &Item) -> Result<Begin, Error> {
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

/// Take a released or abandoned claim over, keeping its resource id. The
/// condition (owner and state as we saw them) lets exactly one taker win.
async fn take_over(
    store: &dyn Store,
    cfg: &Config,
    req: &IdemRequest<'_>,
    mine: Claim,
    old: &Item,
) -> Result<Begin, Error> {
    let (Some(old_owner), Some(old_state), Some(resource)) = (
        old.str_attr("owner"),
        old.str_attr("state"),
        old.str_attr("resource"),
    ) else {
        return Err(Error::Internal(
            "idempotency record without owner, state or resource".into(),
        ));
    };
    let ops = vec![
        UpdateOp::set("state", IN_FLIGHT),
        UpdateOp::set("fp", req.fingerprint.as_str()),
        UpdateOp::set("owner", mine.owner.as_str()),
        UpdateOp::set("lease_until_ms", req.now_ms + cfg.idempotency_lease_ms),
    ];
    let cond = Cond::And(vec![
        Cond::eq("owner", old_owner),
        Cond::eq("state", old_state),
    ]);
    match store
        .write(Write::Update {
            key: mine.key.clone(),
            ops,
            cond: Some(cond),
        })
        .await
    {
        Ok(()) => Ok(Begin::Fresh(Claim {
            resource: resource.to_owned(),
            ..mine
        })),
        Err(StoreError::ConditionFailed { .. }) => Err(Error::RequestInProgress),
        Err(e) => Err(e.into()),
    }
}

/// Responses a key remembers: successes only. Every other answer (a 402 on
/// the funds or KYC of the moment, a validation error, a conflict, a 5xx)
/// releases the key, so a retry of the same request is evaluated afresh and
/// a non-2xx is never replayed.
pub fn remembers(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Finish a claim: remember the response (see [`remembers`]), release the
/// key otherwise (the record stays, marked released, so a retry keeps the
/// resource id).
pub async fn finish(store: &dyn Store, claim: Claim, status: u16, body: &str) -> Result<(), Error> {
    let owned = Cond::And(vec![Cond::Exists, Cond::eq("owner", claim.owner.as_str())]);
    let ops = if remembers(status) {
        vec![
            UpdateOp::set("state", COMPLETED),
            UpdateOp::set("status", i64::from(status)),
            UpdateOp::set("body", body),
            UpdateOp::Remove("lease_until_ms".into()),
        ]
    } else {
        vec![
            UpdateOp::set("state", RELEASED),
            UpdateOp::Remove("lease_until_ms".into()),
        ]
    };
    match store
        .write(Write::Update {
            key: claim.key,
            ops,
            cond: Some(owned),
        })
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { .. }) => {
            // Our lease lapsed and another attempt took the key over; it works
            // on the same resource id, so nothing is done twice.
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
            wagering_multiple: 1,
        }
    }

    fn req<'a>(key: &'a IdempotencyKey, body: &str) -> IdemRequest<'a> {
        IdemRequest {
            scope: "client:t",
            key,
            fingerprint: fingerprint("POST", "/x", body.as_bytes()),
            now_ms: crate::clock::now_ms(),
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
        // A non-2xx releases the key: the retry (even with a fixed body) is
        // evaluated afresh, on the same reserved resource id.
        let k2 = IdempotencyKey::parse("k2").unwrap();
        let Begin::Fresh(claim) = begin(&store, &c, &req(&k2, "{}")).await.unwrap() else {
            panic!("fresh")
        };
        let reserved = claim.resource().to_owned();
        finish(&store, claim, 422, "").await.unwrap();
        match begin(&store, &c, &req(&k2, "{\"fixed\":1}")).await.unwrap() {
            Begin::Fresh(again) => assert_eq!(again.resource(), reserved),
            other => panic!("{other:?}"),
        }
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
