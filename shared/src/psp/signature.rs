//! Webhook signature schemes. Every scheme is HMAC-SHA256 compared in
//! constant time (`Mac::verify_slice`), accepts any of a PSP's current
//! secrets (two during a rotation), and checks its signed timestamp only
//! AFTER the signature, so "stale" always means "genuine but too old".
//!
//! 1. `seed`: `X-Signature: sha256=<hex>` over the raw body; the timestamp
//!    travels in the signed body and is checked by intake.
//! 2. `timestamped`: `X-Psp-Signature: t=<unix s>,v1=<hex>[,v1=<hex>…]`
//!    over `"{t}.{body}"` (the scheme Stripe uses for its webhooks).
//! 3. `standard-webhooks`: `webhook-id`, `webhook-timestamp`,
//!    `webhook-signature: v1,<base64> [v1,<base64> …]` over
//!    `"{id}.{timestamp}.{body}"` with a `whsec_<base64 key>` secret
//!    (<https://www.standardwebhooks.com>).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::error::Error;
use crate::secret::Secret;

pub const SEED_HEADER: &str = "x-signature";
pub const TIMESTAMPED_HEADER: &str = "x-psp-signature";
pub const SW_ID: &str = "webhook-id";
pub const SW_TIMESTAMP: &str = "webhook-timestamp";
pub const SW_SIGNATURE: &str = "webhook-signature";
/// Most signatures read from one header (rotation needs two).
const MAX_SIGNATURES: usize = 8;
const MAX_MESSAGE_ID: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Seed,
    Timestamped,
    StandardWebhooks,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "seed" => Some(Scheme::Seed),
            "timestamped" => Some(Scheme::Timestamped),
            "standard-webhooks" => Some(Scheme::StandardWebhooks),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::Seed => "seed",
            Scheme::Timestamped => "timestamped",
            Scheme::StandardWebhooks => "standard-webhooks",
        }
    }
}

/// What a verified signature vouches for besides the body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The signed timestamp (unix seconds), for schemes that sign one.
    pub signed_at_s: Option<i64>,
    /// The signed message id (Standard Webhooks), unique per message.
    pub message_id: Option<String>,
}

/// Why a delivery's signature does not vouch for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Missing, malformed, or made with none of the secrets.
    BadSignature,
    /// Genuine, but signed outside the freshness window.
    Stale { signed_at_s: i64 },
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::BadSignature => Error::BadSignature,
            Rejection::Stale { .. } => Error::StaleEvent,
        }
    }
}

/// The freshness window: `now_s ± tolerance_s`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub now_s: i64,
    pub tolerance_s: i64,
}

impl Window {
    fn check(&self, ts: i64) -> Result<(), Rejection> {
        let ok = self.now_s.abs_diff(ts) <= self.tolerance_s.unsigned_abs();
        ok.then_some(()).ok_or(Rejection::Stale { signed_at_s: ts })
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    for p in parts {
        m.update(p);
    }
    Some(m)
}

/// Does any (secret, signature) pair verify, in constant time per compare?
fn any_valid(keys: &[Vec<u8>], parts: &[&[u8]], sigs: &[Vec<u8>]) -> bool {
    keys.iter().any(|k| {
        sigs.iter()
            .any(|s| mac(k, parts).is_some_and(|m| m.verify_slice(s).is_ok()))
    })
}

/// Verify a delivery under `scheme` with any of `secrets`.
pub fn verify(
    scheme: Scheme,
    secrets: &[Secret],
    headers: &HeaderMap,
    raw: &[u8],
    window: Window,
) -> Result<Verified, Rejection> {
    match scheme {
        Scheme::Seed => verify_seed(secrets, headers, raw),
        Scheme::Timestamped => verify_timestamped(secrets, headers, raw, window),
        Scheme::StandardWebhooks => verify_standard(secrets, headers, raw, window),
    }
}

fn verify_seed(secrets: &[Secret], headers: &HeaderMap, raw: &[u8]) -> Result<Verified, Rejection> {
    let hex_sig = header(headers, SEED_HEADER)
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or(Rejection::BadSignature)?;
    let sig = hex::decode(hex_sig).map_err(|_| Rejection::BadSignature)?;
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| s.expose().as_bytes().to_vec())
        .collect();
    any_valid(&keys, &[raw], &[sig])
        .then(Verified::default)
        .ok_or(Rejection::BadSignature)
}

fn verify_timestamped(
    secrets: &[Secret],
    headers: &HeaderMap,
    raw: &[u8],
    window: Window,
) -> Result<Verified, Rejection> {
    let value = header(headers, TIMESTAMPED_HEADER).ok_or(Rejection::BadSignature)?;
    let mut ts: Option<&str> = None;
    let mut sigs = Vec::new();
    for part in value.split(',').take(MAX_SIGNATURES + 2) {
        match part.trim().split_once('=') {
            Some(("t", t)) if ts.is_none() => ts = Some(t),
            Some(("t", _)) => return Err(Rejection::BadSignature),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| Rejection::BadSignature)?),
            _ => {} // other versions (v0 …) are ignored, as the scheme specifies
        }
    }
    let ts_text = ts.ok_or(Rejection::BadSignature)?;
    let signed_at: i64 = ts_text.parse().map_err(|_| Rejection::BadSignature)?;
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| s.expose().as_bytes().to_vec())
        .collect();
    if !any_valid(&keys, &[ts_text.as_bytes(), b".", raw], &sigs) {
        return Err(Rejection::BadSignature);
    }
    window.check(signed_at)?;
    Ok(Verified {
        signed_at_s: Some(signed_at),
        message_id: None,
    })
}

/// The HMAC key of a `whsec_<base64>` secret.
fn standard_key(secret: &Secret) -> Option<Vec<u8>> {
    B64.decode(secret.expose().strip_prefix("whsec_")?).ok()
}

fn verify_standard(
    secrets: &[Secret],
    headers: &HeaderMap,
    raw: &[u8],
    window: Window,
) -> Result<Verified, Rejection> {
    let id = header(headers, SW_ID)
        .filter(|i| !i.is_empty() && i.len() <= MAX_MESSAGE_ID)
        .ok_or(Rejection::BadSignature)?;
    let ts_text = header(headers, SW_TIMESTAMP).ok_or(Rejection::BadSignature)?;
    let signed_at: i64 = ts_text.parse().map_err(|_| Rejection::BadSignature)?;
    let sigs: Vec<Vec<u8>> = header(headers, SW_SIGNATURE)
        .ok_or(Rejection::BadSignature)?
        .split(' ')
        .take(MAX_SIGNATURES)
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| B64.decode(b).ok())
        .collect();
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(standard_key).collect();
    if !any_valid(
        &keys,
        &[id.as_bytes(), b".", ts_text.as_bytes(), b".", raw],
        &sigs,
    ) {
        return Err(Rejection::BadSignature);
    }
    window.check(signed_at)?;
    Ok(Verified {
        signed_at_s: Some(signed_at),
        message_id: Some(id.to_owned()),
    })
}

/// Sign a body under `scheme` (sandbox PSPs and tests): the headers to send.
pub fn sign(
    scheme: Scheme,
    secret: &str,
    raw: &[u8],
    ts_s: i64,
    message_id: &str,
) -> Vec<(&'static str, String)> {
    let ts = ts_s.to_string();
    match scheme {
        Scheme::Seed => {
            let sig =
                mac(secret.as_bytes(), &[raw]).map(|m| hex::encode(m.finalize().into_bytes()));
            vec![(SEED_HEADER, format!("sha256={}", sig.unwrap_or_default()))]
        }
        Scheme::Timestamped => {
            let sig = mac(secret.as_bytes(), &[ts.as_bytes(), b".", raw])
                .map(|m| hex::encode(m.finalize().into_bytes()));
            vec![(
                TIMESTAMPED_HEADER,
                format!("t={ts},v1={}", sig.unwrap_or_default()),
            )]
        }
        Scheme::StandardWebhooks => {
            let key = standard_key(&Secret::new(secret)).unwrap_or_default();
            let sig = mac(
                &key,
                &[message_id.as_bytes(), b".", ts.as_bytes(), b".", raw],
            )
            .map(|m| B64.encode(m.finalize().into_bytes()));
            vec![
                (SW_ID, message_id.to_owned()),
                (SW_TIMESTAMP, ts),
                (SW_SIGNATURE, format!("v1,{}", sig.unwrap_or_default())),
            ]
        }
    }
}

/// Sign a body the seed way (`X-Signature` value; sandbox PSP and tests).
pub fn seed_signature(secret: &str, raw: &[u8]) -> String {
    let headers = sign(Scheme::Seed, secret, raw, 0, "");
    headers
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn window(now_s: i64) -> Window {
        Window {
            now_s,
            tolerance_s: 300,
        }
    }

    // Standard Webhooks: the published vector of the reference library
    // (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs,
    // `test_sign`): this secret, id, timestamp and payload sign to this value.
    const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_TS: i64 = 1649367553;
    const SW_PAYLOAD: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_SIGNATURE_V1: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    // Wrong-signature and decoy values from the same library's tests.
    const SW_DECOYS: [&str; 3] = [
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    ];

    fn sw_headers(sig: &str, ts: i64) -> HeaderMap {
        headers(&[
            (SW_ID, SW_MSG_ID.into()),
            (SW_TIMESTAMP, ts.to_string()),
            (SW_SIGNATURE, sig.into()),
        ])
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let signed = sign(
            Scheme::StandardWebhooks,
            SW_SECRET,
            SW_PAYLOAD,
            SW_TS,
            SW_MSG_ID,
        );
        assert_eq!(signed[2].1, SW_SIGNATURE_V1);
        let s = [Secret::new(SW_SECRET)];
        let ok = verify(
            Scheme::StandardWebhooks,
            &s,
            &sw_headers(SW_SIGNATURE_V1, SW_TS),
            SW_PAYLOAD,
            window(SW_TS),
        )
        .unwrap();
        assert_eq!(
            ok,
            Verified {
                signed_at_s: Some(SW_TS),
                message_id: Some(SW_MSG_ID.into())
            }
        );
        // Among several space-separated signatures (rotation), one valid suffices.
        let multi = format!(
            "{} {} {SW_SIGNATURE_V1} {}",
            SW_DECOYS[0], SW_DECOYS[1], SW_DECOYS[2]
        );
        assert!(verify(
            Scheme::StandardWebhooks,
            &s,
            &sw_headers(&multi, SW_TS),
            SW_PAYLOAD,
            window(SW_TS)
        )
        .is_ok());
        let only_decoys = SW_DECOYS.join(" ");
        let bad = verify(
            Scheme::StandardWebhooks,
            &s,
            &sw_headers(&only_decoys, SW_TS),
            SW_PAYLOAD,
            window(SW_TS),
        );
        assert_eq!(bad, Err(Rejection::BadSignature));
        let wrong = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert!(verify(
            Scheme::StandardWebhooks,
            &s,
            &sw_headers(wrong, SW_TS),
            SW_PAYLOAD,
            window(SW_TS)
        )
        .is_err());
    }

    /// The example of the Standard Webhooks specification document itself
    /// (standard-webhooks/standard-webhooks, spec/standard-webhooks.md).
    #[test]
    fn standard_webhooks_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let signed = sign(Scheme::StandardWebhooks, secret, body, ts, id);
        assert_eq!(
            signed[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let h = headers(&signed);
        assert!(verify(
            Scheme::StandardWebhooks,
            &[Secret::new(secret)],
            &h,
            body,
            window(ts)
        )
        .is_ok());
    }

    #[test]
    fn standard_webhooks_rejects_tampering_staleness_and_missing_headers() {
        let s = [Secret::new(SW_SECRET)];
        let h = sw_headers(SW_SIGNATURE_V1, SW_TS);
        let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            verify(Scheme::StandardWebhooks, &s, &h, tampered, window(SW_TS)),
            Err(Rejection::BadSignature)
        );
        for now in [SW_TS + 301, SW_TS - 301] {
            assert_eq!(
                verify(Scheme::StandardWebhooks, &s, &h, SW_PAYLOAD, window(now)),
                Err(Rejection::Stale { signed_at_s: SW_TS })
            );
        }
        // A re-dated timestamp breaks the signature (it is signed).
        let moved = sw_headers(SW_SIGNATURE_V1, SW_TS + 10);
        assert_eq!(
            verify(
                Scheme::StandardWebhooks,
                &s,
                &moved,
                SW_PAYLOAD,
                window(SW_TS)
            ),
            Err(Rejection::BadSignature)
        );
        for drop in [SW_ID, SW_TIMESTAMP, SW_SIGNATURE] {
            let mut h = sw_headers(SW_SIGNATURE_V1, SW_TS);
            h.remove(drop);
            assert_eq!(
                verify(Scheme::StandardWebhooks, &s, &h, SW_PAYLOAD, window(SW_TS)),
                Err(Rejection::BadSignature)
            );
        }
        let other = [Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
        assert!(verify(
            Scheme::StandardWebhooks,
            &other,
            &h,
            SW_PAYLOAD,
            window(SW_TS)
        )
        .is_err());
        // Rotation: the old and the new secret are both accepted.
        let both = [
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Secret::new(SW_SECRET),
        ];
        assert!(verify(
            Scheme::StandardWebhooks,
            &both,
            &h,
            SW_PAYLOAD,
            window(SW_TS)
        )
        .is_ok());
    }

    // The `t=…,v1=…` scheme: Stripe documents the algorithm (HMAC-SHA256 of
    // "{t}.{payload}" with the endpoint secret as the key, hex) but publishes
    // no fixed vector; this one was computed independently with Python 3.11's
    // `hmac` module: hmac.new(b"whsec_test_secret",
    // b"1492774577." + payload, hashlib.sha256).hexdigest().
    const TS_SECRET: &str = "whsec_test_secret";
    const TS_T: i64 = 1492774577;
    const TS_PAYLOAD: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    const TS_V1: &str = "c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812";

    fn ts_headers(value: String) -> HeaderMap {
        headers(&[(TIMESTAMPED_HEADER, value)])
    }

    #[test]
    fn timestamped_scheme_vector_rotation_and_staleness() {
        let signed = sign(Scheme::Timestamped, TS_SECRET, TS_PAYLOAD, TS_T, "");
        assert_eq!(signed[0].1, format!("t={TS_T},v1={TS_V1}"));
        let s = [Secret::new(TS_SECRET)];
        let h = ts_headers(format!("t={TS_T},v1={TS_V1}"));
        assert_eq!(
            verify(Scheme::Timestamped, &s, &h, TS_PAYLOAD, window(TS_T))
                .unwrap()
                .signed_at_s,
            Some(TS_T)
        );
        // Several v1 values (a rotation on the sender's side) and a v0 to ignore.
        let several = ts_headers(format!(
            "t={TS_T},v1={},v1={TS_V1},v0=deadbeef",
            "00".repeat(32)
        ));
        assert!(verify(Scheme::Timestamped, &s, &several, TS_PAYLOAD, window(TS_T)).is_ok());
        // Our rotation: old and new secrets both accepted.
        let both = [
            Secret::new("whsec_new_secret_value"),
            Secret::new(TS_SECRET),
        ];
        assert!(verify(Scheme::Timestamped, &both, &h, TS_PAYLOAD, window(TS_T)).is_ok());
        let wrong = [Secret::new("whsec_other_secret")];
        assert_eq!(
            verify(Scheme::Timestamped, &wrong, &h, TS_PAYLOAD, window(TS_T)),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(Scheme::Timestamped, &s, &h, b"{}", window(TS_T)),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(Scheme::Timestamped, &s, &h, TS_PAYLOAD, window(TS_T + 301)),
            Err(Rejection::Stale { signed_at_s: TS_T })
        );
        assert_eq!(
            verify(Scheme::Timestamped, &s, &h, TS_PAYLOAD, window(TS_T - 301)),
            Err(Rejection::Stale { signed_at_s: TS_T })
        );
        for broken in [
            format!("v1={TS_V1}"),
            format!("t={TS_T}"),
            format!("t=x,v1={TS_V1}"),
            format!("t={TS_T},t={TS_T},v1={TS_V1}"),
        ] {
            assert_eq!(
                verify(
                    Scheme::Timestamped,
                    &s,
                    &ts_headers(broken),
                    TS_PAYLOAD,
                    window(TS_T)
                ),
                Err(Rejection::BadSignature)
            );
        }
        // Re-dating the header breaks the signature.
        let moved = ts_headers(format!("t={},v1={TS_V1}", TS_T + 5));
        assert_eq!(
            verify(Scheme::Timestamped, &s, &moved, TS_PAYLOAD, window(TS_T)),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn every_scheme_round_trips_and_names_parse() {
        for scheme in [Scheme::Seed, Scheme::Timestamped, Scheme::StandardWebhooks] {
            assert_eq!(Scheme::parse(scheme.as_str()), Some(scheme));
            let secret = if scheme == Scheme::StandardWebhooks {
                SW_SECRET
            } else {
                "a-long-enough-secret-123"
            };
            let h = headers(&sign(scheme, secret, b"body", 1_700_000_000, "msg_1"));
            assert!(
                verify(
                    scheme,
                    &[Secret::new(secret)],
                    &h,
                    b"body",
                    window(1_700_000_000)
                )
                .is_ok(),
                "{scheme:?}"
            );
            assert!(
                verify(
                    scheme,
                    &[Secret::new(secret)],
                    &h,
                    b"body!",
                    window(1_700_000_000)
                )
                .is_err(),
                "{scheme:?}"
            );
        }
        assert_eq!(Scheme::parse("hmac"), None);
    }
}

#[cfg(test)]
mod seed_tests {
    use super::*;
    use crate::secret::Secret;
    use proptest::prelude::*;

    fn seed_headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SEED_HEADER, sig.parse().unwrap());
        h
    }

    fn verify_seed(secrets: &[Secret], raw: &[u8], sig: &str) -> Result<(), Error> {
        let window = Window {
            now_s: 0,
            tolerance_s: 300,
        };
        verify(Scheme::Seed, secrets, &seed_headers(sig), raw, window)
            .map(|_| ())
            .map_err(Error::from)
    }

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new("old-secret-0123456789"),
            Secret::new("new-secret-0123456789"),
        ]
    }

    #[test]
    fn seed_signature_verifies_with_either_rotated_secret() {
        let body = br#"{"event_id":"e1"}"#;
        for s in ["old-secret-0123456789", "new-secret-0123456789"] {
            assert!(verify_seed(&secrets(), body, &seed_signature(s, body)).is_ok());
        }
        let wrong = seed_signature("another-secret-999999", body);
        assert_eq!(
            verify_seed(&secrets(), body, &wrong),
            Err(Error::BadSignature)
        );
        let sig = seed_signature("old-secret-0123456789", body);
        assert!(verify_seed(&secrets(), br#"{"event_id":"e2"}"#, &sig).is_err());
        assert!(verify_seed(&secrets(), body, "sha256=zz").is_err());
        assert!(verify_seed(&secrets(), body, sig.trim_start_matches("sha256=")).is_err());
        let window = Window {
            now_s: 0,
            tolerance_s: 300,
        };
        assert!(verify(Scheme::Seed, &secrets(), &HeaderMap::new(), body, window).is_err());
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = seed_signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    proptest! {
        #[test]
        fn any_tampered_byte_fails(body in prop::collection::vec(any::<u8>(), 1..256), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let sig = seed_signature("old-secret-0123456789", &body);
            let mut tampered = body.clone();
            let i = at.index(tampered.len());
            tampered[i] ^= flip;
            prop_assert!(verify_seed(&secrets(), &tampered, &sig).is_err());
            prop_assert!(verify_seed(&secrets(), &body, &sig).is_ok());
        }
    }
}
