//! Configuration and secrets. Secrets never print; a missing secret is a
//! startup error, never a default.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::PspId;
use crate::psp::signature::Scheme;

pub use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Named API keys (`name:secret` pairs). The name is the idempotency scope and
/// what logs show; the secret is never logged.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<(String, [u8; 32])>,
}

impl KeyRing {
    /// Parse `name:secret,name2:secret2`. Secrets must be ≥ 16 characters.
    pub fn parse(list: &str) -> Result<KeyRing, ConfigError> {
        let mut keys = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, secret) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError("API keys are `name:secret` pairs".into()))?;
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError("API key names are [A-Za-z0-9_-]+".into()));
            }
            if secret.len() < 16 {
                return Err(ConfigError(format!(
                    "API key {name} is shorter than 16 characters"
                )));
            }
            keys.push((name.to_owned(), Sha256::digest(secret.as_bytes()).into()));
        }
        if keys.is_empty() {
            return Err(ConfigError("no API keys configured".into()));
        }
        Ok(KeyRing { keys })
    }

    /// The key's name if `presented` matches one, compared in constant time
    /// (over fixed-length digests, every key checked).
    pub fn authenticate(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, key) in &self.keys {
            if bool::from(key.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Webhook verification per PSP: its signature scheme and its secrets (two
/// at once during a rotation).
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    by_psp: BTreeMap<PspId, (Scheme, Vec<Secret>)>,
}

impl WebhookSecrets {
    /// Parse `psp[@scheme]:secret1|secret2,…`; the scheme defaults to `seed`
    /// (others: `timestamped`, `standard-webhooks` with `whsec_<base64>`
    /// secrets).
    pub fn parse(list: &str) -> Result<WebhookSecrets, ConfigError> {
        let mut by_psp = BTreeMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, secrets) = entry.split_once(':').ok_or_else(|| {
                ConfigError("webhook secrets are `psp[@scheme]:secret[|secret]`".into())
            })?;
            let (psp, scheme) = name.split_once('@').unwrap_or((name, "seed"));
            let psp = PspId::parse(psp).map_err(|e| ConfigError(format!("PSP name: {e}")))?;
            let scheme = Scheme::parse(scheme)
                .ok_or_else(|| ConfigError(format!("{psp}: unknown signature scheme {scheme}")))?;
            let list: Vec<Secret> = secrets
                .split('|')
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect();
            if list.is_empty() || list.len() > 2 || list.iter().any(|s| s.expose().len() < 16) {
                return Err(ConfigError(format!(
                    "{psp}: one or two secrets of ≥ 16 characters"
                )));
            }
            if scheme == Scheme::StandardWebhooks && !list.iter().all(is_standard_secret) {
                return Err(ConfigError(format!(
                    "{psp}: standard-webhooks secrets are whsec_<base64>"
                )));
            }
            if by_psp.insert(psp.clone(), (scheme, list)).is_some() {
                return Err(ConfigError(format!(
                    "{psp} is listed twice; put both rotation secrets in one entry"
                )));
            }
        }
        if by_psp.is_empty() {
            return Err(ConfigError("no webhook secrets configured".into()));
        }
        Ok(WebhookSecrets { by_psp })
    }

    pub fn for_psp(&self, psp: &PspId) -> Option<(Scheme, &[Secret])> {
        self.by_psp
            .get(psp)
            .map(|(scheme, secrets)| (*scheme, secrets.as_slice()))
    }

    pub fn psps(&self) -> impl Iterator<Item = &PspId> {
        self.by_psp.keys()
    }
}

/// Standard Webhooks asks for keys of 24 to 64 bytes.
const MIN_STANDARD_KEY_BYTES: usize = 24;

fn is_standard_secret(s: &Secret) -> bool {
    use base64::Engine as _;
    s.expose().strip_prefix("whsec_").is_some_and(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .is_ok_and(|k| k.len() >= MIN_STANDARD_KEY_BYTES)
    })
}

/// Everything the handlers need to know, built once at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_keys: KeyRing,
    pub platform_keys: KeyRing,
    pub webhook_secrets: WebhookSecrets,
    /// Base URL where the sandbox checkout pages are served.
    pub public_url: String,
    /// The PSP that serves `POST /v1/payments/webhook` and takes deposits.
    pub default_psp: PspId,
    pub idempotency_ttl_s: i64,
    /// How long an in-flight idempotency claim blocks others.
    pub idempotency_lease_ms: i64,
    pub webhook_tolerance_s: i64,
    /// Deposits must be wagered this many times before a withdrawal.
    pub wagering_multiple: i64,
}

pub const DEFAULT_IDEMPOTENCY_TTL_S: i64 = 24 * 3600;
pub const DEFAULT_LEASE_MS: i64 = 30_000;
pub const DEFAULT_WEBHOOK_TOLERANCE_S: i64 = 300;
pub const DEFAULT_WAGERING_MULTIPLE: i64 = 1;

pub fn optional_int(name: &str, default: i64) -> Result<i64, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .map_err(|_| ConfigError(format!("{name} must be an integer"))),
    }
}

/// Where configuration is read: the secrets fetched at cold start (from
/// Secrets Manager, never in the environment) over the process environment.
/// A secret's JSON key `x` stands for the variable `PAYLOOP_X`.
#[derive(Default)]
pub struct Env {
    secrets: BTreeMap<String, Secret>,
}

impl Env {
    /// The process environment alone.
    pub fn process() -> Env {
        Env::default()
    }

    /// Add one secret's JSON object (`{"client_keys": "...", ...}`); its
    /// string members become `PAYLOOP_CLIENT_KEYS`, ... An empty string is
    /// as if the member were absent (the template's secret has every key,
    /// empty where a PSP list carries the PSPs' own). Errors never show a
    /// value.
    pub fn with_secret_json(mut self, what: &str, json: &str) -> Result<Env, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "{what}: the secret must be a JSON object of strings"
            ))
        };
        let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad())?;
        for (k, v) in v.as_object().ok_or_else(bad)? {
            let value = v.as_str().ok_or_else(bad)?;
            if value.is_empty() {
                continue;
            }
            let name = format!("PAYLOOP_{}", k.to_ascii_uppercase());
            self.secrets.insert(name, Secret::new(value.to_owned()));
        }
        Ok(self)
    }

    /// A variable: from the secrets, else the environment.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.secrets.get(name) {
            Some(s) => Some(s.expose().to_owned()),
            None => std::env::var(name).ok(),
        }
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.var(name)
            .ok_or_else(|| ConfigError(format!("{name} is not set")))
    }

    /// How many variables the secrets supply (start-up log).
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }
}

impl Config {
    /// Read from `PAYLOOP_*` environment variables alone.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&Env::process())
    }

    /// Read from `env` (Lambda: the secrets over the environment).
    pub fn from_lookup(env: &Env) -> Result<Config, ConfigError> {
        let default_psp = env
            .var("PAYLOOP_DEFAULT_PSP")
            .unwrap_or_else(|| "sandbox".into());
        Ok(Config {
            client_keys: KeyRing::parse(&env.required("PAYLOOP_CLIENT_KEYS")?)?,
            platform_keys: KeyRing::parse(&env.required("PAYLOOP_PLATFORM_KEYS")?)?,
            // With a PSP list (`PAYLOOP_PSPS`) the legacy per-PSP variables
            // are optional: the list carries each PSP's secrets.
            webhook_secrets: match env.var("PAYLOOP_WEBHOOK_SECRETS") {
                Some(list) => WebhookSecrets::parse(&list)?,
                None if env.var("PAYLOOP_PSPS").is_some() => WebhookSecrets::default(),
                None => return Err(ConfigError("PAYLOOP_WEBHOOK_SECRETS is not set".into())),
            },
            public_url: env.required("PAYLOOP_PUBLIC_URL")?,
            default_psp: PspId::parse(&default_psp)
                .map_err(|e| ConfigError(format!("PAYLOOP_DEFAULT_PSP: {e}")))?,
            idempotency_ttl_s: optional_int(
                "PAYLOOP_IDEMPOTENCY_TTL_SECS",
                DEFAULT_IDEMPOTENCY_TTL_S,
            )?,
            idempotency_lease_ms: optional_int("PAYLOOP_IDEMPOTENCY_LEASE_MS", DEFAULT_LEASE_MS)?,
            webhook_tolerance_s: optional_int(
                "PAYLOOP_WEBHOOK_TOLERANCE_SECS",
                DEFAULT_WEBHOOK_TOLERANCE_S,
            )?,
            wagering_multiple: match optional_int(
                "PAYLOOP_WAGERING_MULTIPLE",
                DEFAULT_WAGERING_MULTIPLE,
            )? {
                m @ 0..=100 => m,
                _ => {
                    return Err(ConfigError(
                        "PAYLOOP_WAGERING_MULTIPLE must be 0 to 100".into(),
                    ))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_authenticates_and_hides() {
        let ring = KeyRing::parse("web:0123456789abcdef0123,ops:fedcba9876543210fedc").unwrap();
        assert_eq!(ring.authenticate("0123456789abcdef0123"), Some("web"));
        assert_eq!(ring.authenticate("fedcba9876543210fedc"), Some("ops"));
        assert_eq!(ring.authenticate("0123456789abcdef012"), None);
        assert_eq!(ring.authenticate(""), None);
        assert!(!format!("{ring:?}").contains("0123456789abcdef"));
        assert!(KeyRing::parse("short:abc").is_err());
        assert!(KeyRing::parse("").is_err());
    }

    #[test]
    fn webhook_secrets_allow_rotation_and_never_print() {
        let s = WebhookSecrets::parse("sandbox:aaaaaaaaaaaaaaaa|bbbbbbbbbbbbbbbb").unwrap();
        let psp = PspId::parse("sandbox").unwrap();
        let (scheme, secrets) = s.for_psp(&psp).unwrap();
        assert_eq!((scheme, secrets.len()), (Scheme::Seed, 2));
        let sw = WebhookSecrets::parse("a@standard-webhooks:whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD,b@timestamped:cccccccccccccccc").unwrap();
        assert_eq!(
            sw.for_psp(&PspId::parse("a").unwrap()).unwrap().0,
            Scheme::StandardWebhooks
        );
        assert_eq!(
            sw.for_psp(&PspId::parse("b").unwrap()).unwrap().0,
            Scheme::Timestamped
        );
        assert!(WebhookSecrets::parse("a@standard-webhooks:not-a-whsec-secret").is_err());
        assert!(WebhookSecrets::parse("a@md5:cccccccccccccccc").is_err());
        assert!(
            WebhookSecrets::parse("a@standard-webhooks:whsec_AAAAAAAAAAAAAAAA").is_err(),
            "12-byte key"
        );
        assert!(
            WebhookSecrets::parse("a:aaaaaaaaaaaaaaaa,a:bbbbbbbbbbbbbbbb").is_err(),
            "listed twice"
        );
        assert!(!format!("{s:?}").contains("aaaa"));
        assert!(WebhookSecrets::parse("sandbox:a|b|c").is_err());
    }
}
