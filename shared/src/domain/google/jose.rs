//! Signed and encrypted messages (JOSE): the production [`Codec`] of the
//! Google Standard Payments facade.
//!
//! A message is a compact JWE (RFC 7516) whose plaintext is a compact JWS
//! (RFC 7515) whose payload is the JSON bytes; its content type is
//! `application/jose`.
//!
//! - The JWS is `ES256`: ECDSA over P-256 with SHA-256, deterministic
//!   (RFC 6979), the signature the 64 bytes of `r || s`. Its protected header
//!   is `{"alg":"ES256","kid":…}`, the kid of the signer's key.
//! - The JWE is `ECDH-ES` direct key agreement (RFC 7518 §4.6): a fresh
//!   ephemeral P-256 key per message (`epk`) meets the recipient's key
//!   (`kid`); the Concat KDF over SHA-256 (§4.6.2, AlgorithmID the `enc`
//!   value, PartyUInfo/PartyVInfo from `apu`/`apv` or empty) gives the
//!   content key for `A256GCM` (96-bit random IV, 128-bit tag, the base64url
//!   protected header as additional authenticated data). The encrypted key
//!   part is empty; `cty` is `JWT` when present; `zip` and `crit` are
//!   refused.
//! - base64url is unpadded everywhere: padding, stray characters and
//!   non-canonical trailing bits are refused.
//!
//! Keys come in a keyset document, one per party:
//!
//! ```json
//! {"own":  [{"kid": "pi-2026-12", "d": "<base64url P-256 scalar, 32 bytes>"}],
//!  "peer": [{"kid": "google-2026-12", "x": "<base64url>", "y": "<base64url>"}]}
//! ```
//!
//! `own` holds this side's private keys: the first signs what is sent, and
//! any of them, chosen by the JWE header's `kid`, decrypts what arrives.
//! `peer` holds the other side's public keys: the first is encrypted to, and
//! any of them, chosen by the JWS header's `kid`, verifies. Rotation is
//! adding the new key in front and dropping the old one once the other side
//! has moved: while both are listed, messages by either kid are accepted.
//!
//! Simplification: one P-256 key per entry serves both signing and key
//! agreement (the JOSE specifications allow separate keys per use; the two
//! parties' keys are always distinct, and a keyset naming one key on both
//! sides is refused).
//!
//! Key material never appears in an error, a log line or `Debug` output:
//! errors name the field or the step that failed, `Debug` shows kids only.

use std::fmt;

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::{PublicKey, SecretKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::codec::{check_size, Codec};
use super::wire::{GspCode, GspError};

/// The content type of a JOSE message.
pub const CONTENT_TYPE: &str = "application/jose";

const JWS_ALG: &str = "ES256";
const JWE_ALG: &str = "ECDH-ES";
const JWE_ENC: &str = "A256GCM";
const CTY: &str = "JWT";
/// Keys per list in a keyset.
const MAX_KEYS: usize = 8;
/// The longest kid.
const MAX_KID: usize = 64;

/// One of this side's private keys.
struct OwnKey {
    kid: String,
    secret: SecretKey,
}

/// One of the other side's public keys.
struct PeerKey {
    kid: String,
    public: PublicKey,
}

/// The signed-and-encrypted codec: this side's private keys and the other
/// side's public keys (each list non-empty, the first in use for sending).
pub struct Jose {
    own: Vec<OwnKey>,
    peer: Vec<PeerKey>,
}

impl fmt::Debug for Jose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own: Vec<&str> = self.own.iter().map(|k| k.kid.as_str()).collect();
        let peer: Vec<&str> = self.peer.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Jose")
            .field("own", &own)
            .field("peer", &peer)
            .finish()
    }
}

impl Jose {
    /// Reads a keyset document (see the module documentation). The error
    /// names the field at fault and never carries key material.
    pub fn from_json(doc: &str) -> Result<Jose, String> {
        let v: Value =
            serde_json::from_str(doc).map_err(|_| "the keyset is not JSON".to_owned())?;
        let top = v
            .as_object()
            .ok_or_else(|| "the keyset is not a JSON object".to_owned())?;
        known_fields(top, "the keyset", &["own", "peer"])?;

        let mut own: Vec<OwnKey> = Vec::new();
        for (i, entry) in key_list(top, "own")?.iter().enumerate() {
            let at = format!("own[{i}]");
            let e = entry
                .as_object()
                .ok_or_else(|| format!("{at} is not a JSON object"))?;
            known_fields(e, &at, &["kid", "d"])?;
            let kid = read_kid(e, &at, own.iter().map(|k| k.kid.as_str()))?;
            let d = read_32(e, &at, "d")?
                .ok_or_else(|| format!("{at}.d is not a P-256 private key"))?;
            let secret = SecretKey::from_slice(d.as_slice())
                .map_err(|_| format!("{at}.d is not a P-256 private key"))?;
            own.push(OwnKey { kid, secret });
        }

        let mut peer: Vec<PeerKey> = Vec::new();
        for (i, entry) in key_list(top, "peer")?.iter().enumerate() {
            let at = format!("peer[{i}]");
            let e = entry
                .as_object()
                .ok_or_else(|| format!("{at} is not a JSON object"))?;
            known_fields(e, &at, &["kid", "x", "y"])?;
            let kid = read_kid(e, &at, peer.iter().map(|k| k.kid.as_str()))?;
            let x = read_32(e, &at, "x")?
                .ok_or_else(|| format!("{at}.x is not a 32-byte base64url coordinate"))?;
            let y = read_32(e, &at, "y")?
                .ok_or_else(|| format!("{at}.y is not a 32-byte base64url coordinate"))?;
            let public =
                point(&x, &y).ok_or_else(|| format!("{at} (x, y) is not a point on P-256"))?;
            if let Some(j) = own.iter().position(|o| o.secret.public_key() == public) {
                return Err(format!(
                    "{at} is the public key of own[{j}]: the two parties' keys must differ"
                ));
            }
            peer.push(PeerKey { kid, public });
        }
        Ok(Jose { own, peer })
    }

    /// Two codecs that talk to each other, with fresh random keys: the
    /// integrator's side (kid `integrator-test`) and Google's side (kid
    /// `google-test`), each one's peer the other's own key. For tests and
    /// local runs.
    pub fn test_pair() -> (Jose, Jose) {
        let ours = random_secret();
        let theirs = random_secret();
        let integrator = Jose {
            own: vec![OwnKey {
                kid: "integrator-test".to_owned(),
                secret: ours.clone(),
            }],
            peer: vec![PeerKey {
                kid: "google-test".to_owned(),
                public: theirs.public_key(),
            }],
        };
        let google = Jose {
            own: vec![OwnKey {
                kid: "google-test".to_owned(),
                secret: theirs,
            }],
            peer: vec![PeerKey {
                kid: "integrator-test".to_owned(),
                public: ours.public_key(),
            }],
        };
        (integrator, google)
    }

    /// This side's public keys as the other side lists them (its `peer`
    /// entries: kid, x, y), to hand over out of band. No private part.
    pub fn public_keys(&self) -> Value {
        let keys: Vec<Value> = self
            .own
            .iter()
            .filter_map(|k| {
                let (x, y) = coordinates(&k.secret.public_key())?;
                Some(json!({"kid": k.kid, "x": x, "y": y}))
            })
            .collect();
        Value::Array(keys)
    }

    /// The JWE's plaintext: decrypted by the own key the header names.
    fn decrypt(&self, jwe: &[u8]) -> Result<Zeroizing<Vec<u8>>, GspError> {
        let parts: Vec<&[u8]> = jwe.split(|b| *b == b'.').collect();
        let [h64, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(encryption("the payload is not a compact JWE (five parts)"));
        };
        if !encrypted_key.is_empty() {
            return Err(encryption(
                "the JWE encrypted key must be empty (ECDH-ES direct key agreement)",
            ));
        }
        let header =
            header_object(h64).ok_or_else(|| encryption("the JWE header is not base64url JSON"))?;
        if header.get("alg").and_then(Value::as_str) != Some(JWE_ALG) {
            return Err(encryption("the JWE alg must be ECDH-ES"));
        }
        if header.get("enc").and_then(Value::as_str) != Some(JWE_ENC) {
            return Err(encryption("the JWE enc must be A256GCM"));
        }
        if header.contains_key("zip") {
            return Err(encryption("compressed JWE payloads are not accepted"));
        }
        if header.contains_key("crit") {
            return Err(encryption(
                "the JWE header names critical extensions that are not supported",
            ));
        }
        if let Some(cty) = header.get("cty") {
            if !cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case(CTY)) {
                return Err(encryption("the JWE cty must be JWT"));
            }
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| encryption("the JWE header names no key (kid)"))?;
        let own = self
            .own
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| encryption("the JWE header names an unknown key"))?;
        let epk = header
            .get("epk")
            .and_then(Value::as_object)
            .and_then(epk_point)
            .ok_or_else(|| encryption("the JWE epk is not a P-256 public key"))?;
        let apu =
            party_info(&header, "apu").ok_or_else(|| encryption("the JWE apu is not base64url"))?;
        let apv =
            party_info(&header, "apv").ok_or_else(|| encryption("the JWE apv is not base64url"))?;
        let iv: [u8; 12] = b64_array(iv).ok_or_else(|| encryption("the JWE IV is not 96 bits"))?;
        let tag: [u8; 16] =
            b64_array(tag).ok_or_else(|| encryption("the JWE tag is not 128 bits"))?;
        let mut plaintext = Zeroizing::new(
            b64(ciphertext).ok_or_else(|| encryption("the JWE ciphertext is not base64url"))?,
        );
        let shared = diffie_hellman(own.secret.to_nonzero_scalar(), epk.as_affine());
        let cek = concat_kdf::<32>(shared.raw_secret_bytes().as_slice(), JWE_ENC, &apu, &apv)
            .ok_or_else(undecryptable)?;
        let cipher = Aes256Gcm::new_from_slice(cek.as_slice()).map_err(|_| undecryptable())?;
        cipher
            .decrypt_in_place_detached(
                &GenericArray::from(iv),
                h64,
                plaintext.as_mut_slice(),
                &GenericArray::from(tag),
            )
            .map_err(|_| undecryptable())?;
        Ok(plaintext)
    }

    /// The JWS's payload, once verified by the peer key the header names.
    fn verify(&self, jws: &[u8]) -> Result<Vec<u8>, GspError> {
        let parts: Vec<&[u8]> = jws.split(|b| *b == b'.').collect();
        let [h64, p64, s64] = parts.as_slice() else {
            return Err(signature(
                "the decrypted payload is not a compact JWS (three parts)",
            ));
        };
        let header =
            header_object(h64).ok_or_else(|| signature("the JWS header is not base64url JSON"))?;
        if header.get("alg").and_then(Value::as_str) != Some(JWS_ALG) {
            return Err(signature("the JWS alg must be ES256"));
        }
        if header.contains_key("crit") {
            return Err(signature(
                "the JWS header names critical extensions that are not supported",
            ));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| signature("the JWS header names no key (kid)"))?;
        let peer = self
            .peer
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| signature("the JWS header names an unknown key"))?;
        let sig = b64(s64)
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or_else(|| signature("the JWS signature is not an ES256 signature"))?;
        let payload = b64(p64).ok_or_else(|| signature("the JWS payload is not base64url"))?;
        let mut input = Vec::with_capacity(h64.len() + 1 + p64.len());
        input.extend_from_slice(h64);
        input.push(b'.');
        input.extend_from_slice(p64);
        VerifyingKey::from(&peer.public)
            .verify(&input, &sig)
            .map_err(|_| signature("the payload signature does not verify"))?;
        Ok(payload)
    }
}

impl Codec for Jose {
    fn open(&self, content_type: Option<&str>, body: &[u8]) -> Result<Value, GspError> {
        check_size(body)?;
        if let Some(ct) = content_type {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !essence.eq_ignore_ascii_case(CONTENT_TYPE) {
                return Err(encryption("the content type must be application/jose"));
            }
        }
        let jws = self.decrypt(body.trim_ascii())?;
        let payload = self.verify(&jws)?;
        let not_object = || {
            GspError::new(
                GspCode::InvalidDecryptedRequest,
                "the decrypted payload is not a JSON object",
            )
        };
        let v: Value = serde_json::from_slice(&payload).map_err(|_| not_object())?;
        if !v.is_object() {
            return Err(not_object());
        }
        Ok(v)
    }

    fn seal(&self, json: &Value) -> Result<(&'static str, Vec<u8>), GspError> {
        let payload = serde_json::to_vec(json).map_err(|_| unsealable())?;
        let own = self.own.first().ok_or_else(unsealable)?;
        let peer = self.peer.first().ok_or_else(unsealable)?;
        let jws = Zeroizing::new(sign(own, &payload).ok_or_else(unsealable)?);
        let jwe = encrypt(peer, jws.as_bytes(), b"", b"").ok_or_else(unsealable)?;
        Ok((CONTENT_TYPE, jwe.into_bytes()))
    }

    fn name(&self) -> &'static str {
        "jose"
    }
}

/// A compact JWS of `payload`, signed by `key`.
fn sign(key: &OwnKey, payload: &[u8]) -> Option<String> {
    let header = serde_json::to_vec(&json!({"alg": JWS_ALG, "kid": key.kid})).ok()?;
    let mut jws = b64e(&header);
    jws.push('.');
    jws.push_str(&b64e(payload));
    let sig: Signature = SigningKey::from(&key.secret)
        .try_sign(jws.as_bytes())
        .ok()?;
    jws.push('.');
    jws.push_str(&b64e(&sig.to_bytes()));
    Some(jws)
}

/// A compact JWE of `plaintext` to `to`, from a fresh ephemeral key
/// (`apu`/`apv` go in the header when not empty).
fn encrypt(to: &PeerKey, plaintext: &[u8], apu: &[u8], apv: &[u8]) -> Option<String> {
    let ephemeral = random_secret();
    let (x, y) = coordinates(&ephemeral.public_key())?;
    let mut header = Map::new();
    header.insert("alg".into(), JWE_ALG.into());
    header.insert("enc".into(), JWE_ENC.into());
    header.insert("kid".into(), to.kid.as_str().into());
    header.insert("cty".into(), CTY.into());
    header.insert(
        "epk".into(),
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
    );
    if !apu.is_empty() {
        header.insert("apu".into(), b64e(apu).into());
    }
    if !apv.is_empty() {
        header.insert("apv".into(), b64e(apv).into());
    }
    let h64 = b64e(&serde_json::to_vec(&Value::Object(header)).ok()?);
    let shared = diffie_hellman(ephemeral.to_nonzero_scalar(), to.public.as_affine());
    let cek = concat_kdf::<32>(shared.raw_secret_bytes().as_slice(), JWE_ENC, apu, apv)?;
    let cipher = Aes256Gcm::new_from_slice(cek.as_slice()).ok()?;
    let iv: [u8; 12] = rand::random();
    let mut body = Zeroizing::new(plaintext.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(&GenericArray::from(iv), h64.as_bytes(), body.as_mut_slice())
        .ok()?;
    Some(format!(
        "{h64}..{}.{}.{}",
        b64e(&iv),
        b64e(body.as_slice()),
        b64e(tag.as_slice())
    ))
}

/// The Concat KDF of NIST SP 800-56A as RFC 7518 §4.6.2 uses it, over
/// SHA-256: `N` bytes of key from the shared secret `z`, AlgorithmID `alg`
/// and the party infos, each length-prefixed (32-bit big-endian), then
/// SuppPubInfo = the key length in bits. `None` only for absurd lengths.
fn concat_kdf<const N: usize>(
    z: &[u8],
    alg: &str,
    apu: &[u8],
    apv: &[u8],
) -> Option<Zeroizing<[u8; N]>> {
    let bits = u32::try_from(N.checked_mul(8)?).ok()?;
    let mut out = Zeroizing::new([0u8; N]);
    for (round, chunk) in out.chunks_mut(32).enumerate() {
        let counter = u32::try_from(round.checked_add(1)?).ok()?;
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        for part in [alg.as_bytes(), apu, apv] {
            h.update(u32::try_from(part.len()).ok()?.to_be_bytes());
            h.update(part);
        }
        h.update(bits.to_be_bytes());
        let digest = h.finalize();
        for (o, d) in chunk.iter_mut().zip(digest.iter()) {
            *o = *d;
        }
    }
    Some(out)
}

/// A random P-256 private key (a random 32-byte string is outside the
/// scalar range with probability about 2^-32: draw again).
fn random_secret() -> SecretKey {
    loop {
        let bytes = Zeroizing::new(rand::random::<[u8; 32]>());
        if let Ok(k) = SecretKey::from_slice(bytes.as_slice()) {
            return k;
        }
    }
}

/// The public key with these affine coordinates, if it is on the curve.
fn point(x: &[u8; 32], y: &[u8; 32]) -> Option<PublicKey> {
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    PublicKey::from_sec1_bytes(&sec1).ok()
}

/// A public key's affine coordinates, base64url.
fn coordinates(public: &PublicKey) -> Option<(String, String)> {
    let p = public.to_encoded_point(false);
    Some((b64e(p.x()?), b64e(p.y()?)))
}

/// An `epk` JWK's point: `{kty: "EC", crv: "P-256", x, y}`.
fn epk_point(jwk: &Map<String, Value>) -> Option<PublicKey> {
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return None;
    }
    let x: [u8; 32] = b64_array(jwk.get("x")?.as_str()?.as_bytes())?;
    let y: [u8; 32] = b64_array(jwk.get("y")?.as_str()?.as_bytes())?;
    point(&x, &y)
}

/// `apu`/`apv`: absent is empty; present must be a base64url string.
fn party_info(header: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    match header.get(name) {
        None => Some(Vec::new()),
        Some(v) => b64(v.as_str()?.as_bytes()),
    }
}

/// A protected header: base64url of a JSON object.
fn header_object(h64: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&b64(h64)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn b64(s: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

fn b64_array<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let v = Zeroizing::new(b64(s)?);
    <[u8; N]>::try_from(v.as_slice()).ok()
}

fn b64e(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn encryption(description: &str) -> GspError {
    GspError::new(GspCode::InvalidPayloadEncryption, description)
}

fn undecryptable() -> GspError {
    encryption("the payload could not be decrypted")
}

fn signature(description: &str) -> GspError {
    GspError::new(GspCode::InvalidPayloadSignature, description)
}

fn unsealable() -> GspError {
    GspError::new(
        GspCode::InvalidFieldValue,
        "the response could not be signed and encrypted",
    )
}

/// Refuses a field the keyset format does not have (a typo would otherwise
/// go unnoticed).
fn known_fields(m: &Map<String, Value>, at: &str, known: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) if k.len() <= MAX_KID && kid_ok(k) => Err(format!("{at} has an unknown field {k}")),
        Some(_) => Err(format!("{at} has an unknown field")),
        None => Ok(()),
    }
}

/// The `own`/`peer` list: 1 to 8 entries.
fn key_list<'a>(top: &'a Map<String, Value>, name: &str) -> Result<&'a Vec<Value>, String> {
    let list = top
        .get(name)
        .ok_or_else(|| format!("{name} is required"))?
        .as_array()
        .ok_or_else(|| format!("{name} is not a list"))?;
    if list.is_empty() || list.len() > MAX_KEYS {
        return Err(format!("{name} must hold 1 to {MAX_KEYS} keys"));
    }
    Ok(list)
}

fn kid_ok(kid: &str) -> bool {
    kid.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// An entry's kid: 1 to 64 characters of `[A-Za-z0-9._:-]`, not in `seen`.
fn read_kid<'a>(
    e: &Map<String, Value>,
    at: &str,
    mut seen: impl Iterator<Item = &'a str>,
) -> Result<String, String> {
    let kid = e
        .get("kid")
        .ok_or_else(|| format!("{at}.kid is required"))?
        .as_str()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KID && kid_ok(k))
        .ok_or_else(|| {
            format!("{at}.kid must be 1 to {MAX_KID} characters of A-Z a-z 0-9 . _ : -")
        })?;
    if seen.any(|s| s == kid) {
        return Err(format!("{at}.kid {kid} is used twice"));
    }
    Ok(kid.to_owned())
}

/// A required base64url field of 32 bytes; `Ok(None)` when present but not
/// that (the caller says what it should have been).
fn read_32(
    e: &Map<String, Value>,
    at: &str,
    name: &str,
) -> Result<Option<Zeroizing<[u8; 32]>>, String> {
    let v = e
        .get(name)
        .ok_or_else(|| format!("{at}.{name} is required"))?;
    Ok(v.as_str()
        .and_then(|s| b64_array::<32>(s.as_bytes()))
        .map(Zeroizing::new))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn own_entry(kid: &str, k: &SecretKey) -> Value {
        json!({"kid": kid, "d": b64e(&k.to_bytes())})
    }

    fn peer_entry(kid: &str, k: &SecretKey) -> Value {
        let (x, y) = coordinates(&k.public_key()).unwrap();
        json!({"kid": kid, "x": x, "y": y})
    }

    fn keyset(own: &[(&str, &SecretKey)], peer: &[(&str, &SecretKey)]) -> Jose {
        let doc = json!({
            "own": own.iter().map(|(kid, k)| own_entry(kid, k)).collect::<Vec<_>>(),
            "peer": peer.iter().map(|(kid, k)| peer_entry(kid, k)).collect::<Vec<_>>(),
        });
        Jose::from_json(&doc.to_string()).unwrap()
    }

    fn body() -> Value {
        json!({"requestHeader": {"requestId": "r-1"}, "amount": "12.34"})
    }

    fn code(r: Result<Value, GspError>) -> GspCode {
        r.unwrap_err().code
    }

    /// The parts of a compact serialization, decoded.
    fn parts(msg: &[u8]) -> Vec<Vec<u8>> {
        msg.split(|b| *b == b'.').map(|p| b64(p).unwrap()).collect()
    }

    fn join(parts: &[Vec<u8>]) -> Vec<u8> {
        parts
            .iter()
            .map(|p| b64e(p))
            .collect::<Vec<_>>()
            .join(".")
            .into_bytes()
    }

    /// RFC 7518 Appendix C: ECDH-ES between the published keys gives the
    /// published Z, and the Concat KDF gives the published 128-bit key for
    /// A128GCM with apu "Alice", apv "Bob".
    #[test]
    fn rfc7518_appendix_c_vector() {
        let d = |s: &str| SecretKey::from_slice(&b64(s.as_bytes()).unwrap()).unwrap();
        let alice_ephemeral = d("0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo");
        let bob = d("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw");
        let (bx, by) = coordinates(&bob.public_key()).unwrap();
        assert_eq!(bx, "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ");
        assert_eq!(by, "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck");
        let (ax, ay) = coordinates(&alice_ephemeral.public_key()).unwrap();
        assert_eq!(ax, "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0");
        assert_eq!(ay, "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps");

        let z = diffie_hellman(
            alice_ephemeral.to_nonzero_scalar(),
            bob.public_key().as_affine(),
        );
        let z = z.raw_secret_bytes().to_vec();
        let published_z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        assert_eq!(z, published_z);
        // Bob's side reaches the same Z.
        let z_bob = diffie_hellman(
            bob.to_nonzero_scalar(),
            alice_ephemeral.public_key().as_affine(),
        );
        assert_eq!(z_bob.raw_secret_bytes().as_slice(), published_z);

        let key = concat_kdf::<16>(&z, "A128GCM", b"Alice", b"Bob").unwrap();
        assert_eq!(
            key.as_slice(),
            [86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]
        );
        assert_eq!(b64e(key.as_slice()), "VqqN6vgjbSBcIijNcacQGg");
    }

    #[test]
    fn kdf_binds_every_input_and_spans_rounds() {
        let z = [7u8; 32];
        let base = concat_kdf::<32>(&z, "A256GCM", b"", b"").unwrap();
        assert_ne!(
            *base,
            *concat_kdf::<32>(&[8u8; 32], "A256GCM", b"", b"").unwrap()
        );
        assert_ne!(*base, *concat_kdf::<32>(&z, "A128GCM", b"", b"").unwrap());
        assert_ne!(*base, *concat_kdf::<32>(&z, "A256GCM", b"u", b"").unwrap());
        assert_ne!(*base, *concat_kdf::<32>(&z, "A256GCM", b"", b"v").unwrap());
        // The length prefixes keep ("ab", "") and ("a", "b") apart.
        assert_ne!(
            *concat_kdf::<32>(&z, "A", b"ab", b"").unwrap(),
            *concat_kdf::<32>(&z, "A", b"a", b"b").unwrap()
        );
        // The key length is an input: 16 bytes are not a prefix of 32.
        let short = concat_kdf::<16>(&z, "A256GCM", b"", b"").unwrap();
        assert_ne!(short.as_slice(), &base[..16]);
        // Two rounds: counters 1 and 2 give different halves.
        let long = concat_kdf::<64>(&z, "A256GCM", b"", b"").unwrap();
        assert_ne!(long[..32], long[32..]);
    }

    #[test]
    fn round_trips_both_ways() {
        let (integrator, google) = Jose::test_pair();
        let (ct, msg) = google.seal(&body()).unwrap();
        assert_eq!(ct, "application/jose");
        assert_eq!(integrator.open(Some(ct), &msg).unwrap(), body());
        assert_eq!(integrator.open(None, &msg).unwrap(), body());

        let (ct, msg) = integrator.seal(&json!({"result": "SUCCESS"})).unwrap();
        assert_eq!(
            google.open(Some(ct), &msg).unwrap(),
            json!({"result": "SUCCESS"})
        );
        // Each side reads only what is addressed to it.
        assert_eq!(
            code(integrator.open(None, &msg)),
            GspCode::InvalidPayloadEncryption
        );
        assert_eq!(integrator.name(), "jose");
    }

    #[test]
    fn the_message_is_the_documented_nesting() {
        let (integrator, google) = Jose::test_pair();
        let (_, msg) = integrator.seal(&body()).unwrap();
        let segments: Vec<&[u8]> = msg.split(|b| *b == b'.').collect();
        assert_eq!(segments.len(), 5);
        assert!(segments[1].is_empty(), "ECDH-ES carries no encrypted key");
        let p = parts(&msg);
        assert_eq!(p[2].len(), 12);
        assert_eq!(p[4].len(), 16);
        let header: Value = serde_json::from_slice(&p[0]).unwrap();
        assert_eq!(header["alg"], "ECDH-ES");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], "google-test");
        assert_eq!(header["cty"], "JWT");
        assert_eq!(header["epk"]["kty"], "EC");
        assert_eq!(header["epk"]["crv"], "P-256");
        assert!(epk_point(header["epk"].as_object().unwrap()).is_some());
        assert!(!msg.contains(&b'='));

        // The plaintext is a JWS that verifies on its own.
        let jws = google.decrypt(&msg).unwrap();
        let jp = parts(&jws);
        assert_eq!(jp.len(), 3);
        let jh: Value = serde_json::from_slice(&jp[0]).unwrap();
        assert_eq!(jh, json!({"alg": "ES256", "kid": "integrator-test"}));
        assert_eq!(serde_json::from_slice::<Value>(&jp[1]).unwrap(), body());
        assert_eq!(jp[2].len(), 64);
        let public = &google.peer[0].public;
        let last_dot = jws.iter().rposition(|b| *b == b'.').unwrap();
        let input = &jws[..last_dot];
        let sig = Signature::from_slice(&jp[2]).unwrap();
        assert!(VerifyingKey::from(public).verify(input, &sig).is_ok());
        assert_eq!(
            google.verify(&jws).unwrap(),
            serde_json::to_vec(&body()).unwrap()
        );

        // Fresh ephemeral key and IV each time.
        let (_, again) = integrator.seal(&body()).unwrap();
        assert_ne!(parts(&again)[0], p[0]);
        assert_ne!(parts(&again)[2], p[2]);
    }

    #[test]
    fn tampering_is_an_encryption_error() {
        let (integrator, google) = Jose::test_pair();
        let (_, msg) = google.seal(&body()).unwrap();
        let p = parts(&msg);
        for (part, byte) in [(3, 0), (3, 5), (4, 0), (4, 15), (2, 3), (0, 10)] {
            let mut q = p.clone();
            q[part][byte] ^= 0x01;
            assert_eq!(
                code(integrator.open(None, &join(&q))),
                GspCode::InvalidPayloadEncryption,
                "part {part} byte {byte}"
            );
        }
        // A header that still parses, changed: the AAD no longer matches.
        let mut header: Value = serde_json::from_slice(&p[0]).unwrap();
        header["x-note"] = json!(1);
        let mut q = p.clone();
        q[0] = serde_json::to_vec(&header).unwrap();
        let e = integrator.open(None, &join(&q)).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidPayloadEncryption);
        assert_eq!(e.description, "the payload could not be decrypted");
        // A truncated ciphertext.
        let mut q = p.clone();
        q[3].pop();
        assert_eq!(
            code(integrator.open(None, &join(&q))),
            GspCode::InvalidPayloadEncryption
        );
        // An encrypted key where there must be none.
        let mut q = p.clone();
        q[1] = vec![1, 2, 3];
        assert_eq!(
            code(integrator.open(None, &join(&q))),
            GspCode::InvalidPayloadEncryption
        );
    }

    #[test]
    fn header_rules_are_enforced() {
        let (integrator, google) = Jose::test_pair();
        let (_, msg) = google.seal(&body()).unwrap();
        let p = parts(&msg);
        let header: Value = serde_json::from_slice(&p[0]).unwrap();
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "alg",
                json!("ECDH-ES+A256KW"),
                "the JWE alg must be ECDH-ES",
            ),
            ("alg", json!("dir"), "the JWE alg must be ECDH-ES"),
            ("enc", json!("A128GCM"), "the JWE enc must be A256GCM"),
            (
                "kid",
                json!("someone-else"),
                "the JWE header names an unknown key",
            ),
            ("kid", json!(7), "the JWE header names no key (kid)"),
            (
                "zip",
                json!("DEF"),
                "compressed JWE payloads are not accepted",
            ),
            (
                "crit",
                json!(["exp"]),
                "the JWE header names critical extensions that are not supported",
            ),
            ("cty", json!("json"), "the JWE cty must be JWT"),
            ("apu", json!("QWxpY2U="), "the JWE apu is not base64url"),
            (
                "epk",
                json!({"kty": "EC", "crv": "P-384"}),
                "the JWE epk is not a P-256 public key",
            ),
        ];
        for (field, value, want) in cases {
            let mut h = header.clone();
            h[field] = value;
            let mut q = p.clone();
            q[0] = serde_json::to_vec(&h).unwrap();
            let e = integrator.open(None, &join(&q)).unwrap_err();
            assert_eq!(e.code, GspCode::InvalidPayloadEncryption, "{field}");
            assert_eq!(e.description, want, "{field}");
        }
        // An epk off the curve.
        let mut h = header.clone();
        h["epk"]["y"] = h["epk"]["x"].clone();
        let mut q = p.clone();
        q[0] = serde_json::to_vec(&h).unwrap();
        assert_eq!(
            integrator.open(None, &join(&q)).unwrap_err().description,
            "the JWE epk is not a P-256 public key"
        );
    }

    #[test]
    fn party_infos_are_honoured() {
        let (integrator, google) = Jose::test_pair();
        let jws = sign(&google.own[0], br#"{"a":1}"#).unwrap();
        let jwe = encrypt(&google.peer[0], jws.as_bytes(), b"Google", b"payloop").unwrap();
        let header = header_object(jwe.split('.').next().unwrap().as_bytes()).unwrap();
        assert_eq!(header["apu"], "R29vZ2xl");
        assert_eq!(
            integrator.open(None, jwe.as_bytes()).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn signature_problems_are_signature_errors() {
        let (integrator, google) = Jose::test_pair();
        let to_integrator = &google.peer[0];
        let payload = serde_json::to_vec(&body()).unwrap();

        // Signed by a third key under Google's kid, correctly encrypted.
        let impostor = OwnKey {
            kid: "google-test".into(),
            secret: random_secret(),
        };
        let jws = sign(&impostor, &payload).unwrap();
        let jwe = encrypt(to_integrator, jws.as_bytes(), b"", b"").unwrap();
        let e = integrator.open(None, jwe.as_bytes()).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidPayloadSignature);
        assert_eq!(e.code.status(), 401);
        assert_eq!(e.description, "the payload signature does not verify");

        // Signed by a key of unknown kid.
        let stranger = OwnKey {
            kid: "stranger".into(),
            secret: random_secret(),
        };
        let jws = sign(&stranger, &payload).unwrap();
        let jwe = encrypt(to_integrator, jws.as_bytes(), b"", b"").unwrap();
        let e = integrator.open(None, jwe.as_bytes()).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidPayloadSignature);
        assert_eq!(e.description, "the JWS header names an unknown key");

        // Google's real signature, but the payload swapped afterwards.
        let good = sign(&google.own[0], &payload).unwrap();
        let mut segs: Vec<String> = good.split('.').map(str::to_owned).collect();
        segs[1] = b64e(br#"{"amount":"99999"}"#);
        let jwe = encrypt(to_integrator, segs.join(".").as_bytes(), b"", b"").unwrap();
        assert_eq!(
            code(integrator.open(None, jwe.as_bytes())),
            GspCode::InvalidPayloadSignature
        );

        // Not a JWS, or one with another alg, or a malformed signature.
        let hs = format!(
            "{}.{}.{}",
            b64e(br#"{"alg":"HS256","kid":"google-test"}"#),
            b64e(&payload),
            b64e(&[0u8; 32])
        );
        let short_sig = format!("{}.{}", good.rsplit_once('.').unwrap().0, b64e(&[1u8; 63]));
        let not_jws: [&[u8]; 5] = [
            b"",
            br#"{"a":1}"#,
            b"a.b",
            hs.as_bytes(),
            short_sig.as_bytes(),
        ];
        for plaintext in not_jws {
            let jwe = encrypt(to_integrator, plaintext, b"", b"").unwrap();
            assert_eq!(
                code(integrator.open(None, jwe.as_bytes())),
                GspCode::InvalidPayloadSignature
            );
        }
    }

    #[test]
    fn unknown_recipient_is_an_encryption_error() {
        let (integrator, google) = Jose::test_pair();
        let payload = serde_json::to_vec(&body()).unwrap();
        let jws = sign(&google.own[0], &payload).unwrap();
        // The right key under a kid the integrator does not know.
        let mislabelled = PeerKey {
            kid: "integrator-old".into(),
            public: google.peer[0].public,
        };
        let jwe = encrypt(&mislabelled, jws.as_bytes(), b"", b"").unwrap();
        let e = integrator.open(None, jwe.as_bytes()).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidPayloadEncryption);
        assert_eq!(e.description, "the JWE header names an unknown key");
        // The integrator's kid on another key: the tag fails.
        let wrong_key = PeerKey {
            kid: "integrator-test".into(),
            public: random_secret().public_key(),
        };
        let jwe = encrypt(&wrong_key, jws.as_bytes(), b"", b"").unwrap();
        let e = integrator.open(None, jwe.as_bytes()).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidPayloadEncryption);
        assert_eq!(e.description, "the payload could not be decrypted");
    }

    #[test]
    fn rotation_accepts_old_and_new_kids() {
        let (i_old, i_new) = (random_secret(), random_secret());
        let (g_old, g_new) = (random_secret(), random_secret());
        let integrator = keyset(
            &[("pi-2027-01", &i_new), ("pi-2026-12", &i_old)],
            &[("google-2027-01", &g_new), ("google-2026-12", &g_old)],
        );
        let google_before = keyset(&[("google-2026-12", &g_old)], &[("pi-2026-12", &i_old)]);
        let google_after = keyset(&[("google-2027-01", &g_new)], &[("pi-2027-01", &i_new)]);
        // Google still on the old keys, and Google moved on: both open.
        for google in [&google_before, &google_after] {
            let (_, msg) = google.seal(&body()).unwrap();
            assert_eq!(integrator.open(None, &msg).unwrap(), body());
        }
        // Mixed: Google signs with its new key, encrypts to the old one.
        let google_mixed = keyset(&[("google-2027-01", &g_new)], &[("pi-2026-12", &i_old)]);
        let (_, msg) = google_mixed.seal(&body()).unwrap();
        assert_eq!(integrator.open(None, &msg).unwrap(), body());
        // The integrator sends with the first keys only.
        let (_, reply) = integrator.seal(&body()).unwrap();
        assert_eq!(google_after.open(None, &reply).unwrap(), body());
        assert_eq!(
            code(google_before.open(None, &reply)),
            GspCode::InvalidPayloadEncryption
        );
        // Once the old keys are dropped, old messages are refused.
        let (_, old) = google_before.seal(&body()).unwrap();
        let dropped = keyset(&[("pi-2027-01", &i_new)], &[("google-2027-01", &g_new)]);
        assert_eq!(
            code(dropped.open(None, &old)),
            GspCode::InvalidPayloadEncryption
        );
        let (_, signed_old) = keyset(&[("google-2026-12", &g_old)], &[("pi-2027-01", &i_new)])
            .seal(&body())
            .unwrap();
        assert_eq!(
            code(dropped.open(None, &signed_old)),
            GspCode::InvalidPayloadSignature
        );
    }

    #[test]
    fn the_payload_must_be_a_json_object() {
        let (integrator, google) = Jose::test_pair();
        for payload in [&b"[1]"[..], b"\"text\"", b"not json", b"", b"null"] {
            let jws = sign(&google.own[0], payload).unwrap();
            let jwe = encrypt(&google.peer[0], jws.as_bytes(), b"", b"").unwrap();
            let e = integrator.open(None, jwe.as_bytes()).unwrap_err();
            assert_eq!(e.code, GspCode::InvalidDecryptedRequest);
            assert_eq!(e.code.status(), 400);
        }
        // seal of a non-object still seals (the codec does not judge replies).
        let (_, msg) = google.seal(&json!([1])).unwrap();
        assert_eq!(
            code(integrator.open(None, &msg)),
            GspCode::InvalidDecryptedRequest
        );
    }

    #[test]
    fn content_type_and_framing() {
        let (integrator, google) = Jose::test_pair();
        let (_, msg) = google.seal(&body()).unwrap();
        for ok in [
            "application/jose",
            "application/jose; charset=utf-8",
            "Application/JOSE",
        ] {
            assert_eq!(integrator.open(Some(ok), &msg).unwrap(), body(), "{ok}");
        }
        for bad in [
            "application/json",
            "text/plain",
            "",
            "application/jose+json",
        ] {
            let e = integrator.open(Some(bad), &msg).unwrap_err();
            assert_eq!(e.code, GspCode::InvalidPayloadEncryption, "{bad}");
            assert!(e.description.contains("application/jose"));
        }
        let mut padded = b"\r\n  ".to_vec();
        padded.extend_from_slice(&msg);
        padded.extend_from_slice(b"\n");
        assert_eq!(integrator.open(None, &padded).unwrap(), body());
        // base64 padding is refused.
        let text = String::from_utf8(msg.clone()).unwrap();
        let (head, rest) = text.split_once('.').unwrap();
        let with_pad = format!("{head}=.{rest}");
        assert_eq!(
            code(integrator.open(None, with_pad.as_bytes())),
            GspCode::InvalidPayloadEncryption
        );
        let big = vec![b'a'; super::super::codec::MAX_BODY + 1];
        let e = integrator.open(None, &big).unwrap_err();
        assert_eq!(e.code, GspCode::InvalidFieldValue);
        assert_eq!(e.description, "the body is larger than 64 KiB");
        let huge = vec![b'.'; 1 << 20];
        assert_eq!(
            code(integrator.open(None, &huge)),
            GspCode::InvalidFieldValue
        );
        for garbage in [
            &b""[..],
            b"....",
            b".....",
            b"a.b.c.d.e",
            b"\xff\xfe",
            b"{}",
        ] {
            assert_eq!(
                code(integrator.open(Some("application/jose"), garbage)),
                GspCode::InvalidPayloadEncryption
            );
        }
    }

    #[test]
    fn keyset_errors_name_the_field_and_no_key() {
        let (a, b, c) = (random_secret(), random_secret(), random_secret());
        let good_own = own_entry("pi-1", &a);
        let good_peer = peer_entry("google-1", &b);
        let d_a = good_own["d"].as_str().unwrap().to_owned();
        let (x_b, _) = coordinates(&b.public_key()).unwrap();
        let zero = b64e(&[0u8; 32]);
        // The group order n: one past the largest scalar.
        let order = b64e(
            &hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
                .unwrap(),
        );
        let nine: Vec<Value> = (0..9).map(|i| own_entry(&format!("k{i}"), &c)).collect();
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "the keyset is not a JSON object"),
            (json!({"own": [good_own]}), "peer is required"),
            (
                json!({"own": [], "peer": [good_peer]}),
                "own must hold 1 to 8 keys",
            ),
            (
                json!({"own": nine, "peer": [good_peer]}),
                "own must hold 1 to 8 keys",
            ),
            (json!({"own": {}, "peer": [good_peer]}), "own is not a list"),
            (
                json!({"own": [good_own], "peer": [good_peer], "peers": []}),
                "the keyset has an unknown field peers",
            ),
            (
                json!({"own": [good_own, {"kid": "pi-2", "d": zero}], "peer": [good_peer]}),
                "own[1].d is not a P-256 private key",
            ),
            (
                json!({"own": [good_own, {"kid": "pi-2", "d": order}], "peer": [good_peer]}),
                "own[1].d is not a P-256 private key",
            ),
            (
                json!({"own": [{"kid": "pi-1", "d": format!("{d_a}=")}], "peer": [good_peer]}),
                "own[0].d is not a P-256 private key",
            ),
            (
                json!({"own": [{"kid": "pi-1", "d": &d_a[..40]}], "peer": [good_peer]}),
                "own[0].d is not a P-256 private key",
            ),
            (
                json!({"own": [{"kid": "pi-1"}], "peer": [good_peer]}),
                "own[0].d is required",
            ),
            (
                json!({"own": [{"kid": "pi 1", "d": d_a}], "peer": [good_peer]}),
                "own[0].kid must be",
            ),
            (
                json!({"own": [{"kid": "", "d": d_a}], "peer": [good_peer]}),
                "own[0].kid must be",
            ),
            (
                json!({"own": [{"kid": "k".repeat(65), "d": d_a}], "peer": [good_peer]}),
                "own[0].kid must be",
            ),
            (
                json!({"own": [{"kid": "pi-1", "d": d_a, "x": x_b}], "peer": [good_peer]}),
                "own[0] has an unknown field x",
            ),
            (
                json!({"own": [good_own], "peer": [good_peer, peer_entry("google-1", &c)]}),
                "peer[1].kid google-1 is used twice",
            ),
            (
                json!({"own": [good_own], "peer": [{"kid": "g", "x": x_b, "y": x_b}]}),
                "peer[0] (x, y) is not a point on P-256",
            ),
            (
                json!({"own": [good_own], "peer": [{"kid": "g", "x": "AAAA", "y": x_b}]}),
                "peer[0].x is not a 32-byte base64url coordinate",
            ),
            (
                json!({"own": [good_own], "peer": [{"kid": "g", "x": x_b}]}),
                "peer[0].y is required",
            ),
            (
                json!({"own": [good_own], "peer": [peer_entry("me", &a)]}),
                "peer[0] is the public key of own[0]",
            ),
        ];
        for (doc, want) in cases {
            let e = Jose::from_json(&doc.to_string()).unwrap_err();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
            assert!(!e.contains(&d_a[..8]), "{e:?} shows key material");
        }
        assert_eq!(Jose::from_json("{").unwrap_err(), "the keyset is not JSON");
        // The kid alphabet and length limit themselves are fine.
        let long_kid = "Aa0._:-".repeat(9) + "z";
        assert_eq!(long_kid.len(), 64);
        let ok = json!({"own": [own_entry(&long_kid, &a)], "peer": [good_peer]});
        assert!(Jose::from_json(&ok.to_string()).is_ok());
    }

    #[test]
    fn debug_shows_kids_only() {
        let (a, b) = (random_secret(), random_secret());
        let jose = keyset(&[("pi-1", &a)], &[("google-1", &b)]);
        let shown = format!("{jose:?}");
        assert_eq!(shown, r#"Jose { own: ["pi-1"], peer: ["google-1"] }"#);
        let d = b64e(&a.to_bytes());
        let (x, _) = coordinates(&b.public_key()).unwrap();
        assert!(!shown.contains(&d) && !shown.contains(&x));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let (integrator, _) = Jose::test_pair();
            prop_assert!(integrator.open(None, &bytes).is_err());
        }

        #[test]
        fn dotted_garbage_never_panics(
            segs in proptest::collection::vec("[A-Za-z0-9_=-]{0,120}", 0..8)
        ) {
            let (integrator, _) = Jose::test_pair();
            let text = segs.join(".");
            let e = integrator.open(None, text.as_bytes()).unwrap_err();
            prop_assert_eq!(e.code, GspCode::InvalidPayloadEncryption);
        }

        #[test]
        fn any_changed_character_is_refused(at in any::<prop::sample::Index>(), to in "[A-Za-z0-9_.=-]") {
            let (integrator, google) = Jose::test_pair();
            let (_, msg) = google.seal(&json!({"a": 1})).unwrap();
            let i = at.index(msg.len());
            let mut bad = msg.clone();
            let to = to.as_bytes()[0];
            prop_assume!(bad[i] != to);
            bad[i] = to;
            let e = integrator.open(None, &bad).unwrap_err();
            prop_assert_eq!(e.code, GspCode::InvalidPayloadEncryption);
        }
    }
}
