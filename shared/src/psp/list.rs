//! The PSP list: one JSON document naming every PSP of a deployment, its
//! kind, API base URL, merchant account and secrets. Read once at start
//! (`PAYLOOP_PSPS`, or `payloop serve --psps FILE`); a secret is given
//! inline or by reference (`{"env": "NAME"}`: read from that environment
//! variable, which the SAM template fills from Secrets Manager). Secrets
//! are never printed; a bad entry is refused naming `psps[i].field`.
//!
//! ```json
//! [{"id": "adyen", "kind": "adyen",
//!   "api_base_url": "https://checkout-test.adyen.com/v71",
//!   "transfers_base_url": "https://balanceplatform-api-test.adyen.com/btl/v4",
//!   "merchant_account": "CasinoEU", "balance_account_id": "BA00000000000000000000001",
//!   "secrets": {"api_key": {"env": "ADYEN_API_KEY"},
//!               "hmac_keys": [{"env": "ADYEN_HMAC_KEY"}],
//!               "basic_auth": {"username": "adyen", "password": {"env": "ADYEN_HOOK_PASSWORD"}}}},
//!  {"id": "acquirer-b", "kind": "sandbox", "api_base_url": "https://psp.example/api",
//!   "secrets": {"api_key": "…", "webhook_scheme": "timestamped", "webhook_secrets": ["…"]}}]
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::ids::PspId;
use crate::psp::adyen::connector::{AdyenConfig, AdyenPsp};
use crate::psp::adyen::webhook::BasicAuth;
use crate::psp::http_connector::HttpPsp;
use crate::psp::https::Transport;
use crate::psp::signature::Scheme;
use crate::psp::{PspConnector, WebhookKeys};
use crate::secret::Secret;

/// The most PSPs one list may name.
pub const MAX_PSPS: usize = 32;

/// A bad PSP list, naming the entry and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PSP list: {0}")]
pub struct ListError(pub String);

/// A secret inline, or the environment variable holding it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretRef {
    Env { env: String },
    Inline(Secret),
}

impl SecretRef {
    fn resolve(&self, env: &dyn Fn(&str) -> Option<String>, at: &str) -> Result<Secret, ListError> {
        match self {
            SecretRef::Inline(s) => Ok(s.clone()),
            SecretRef::Env { env: name } => env(name)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| ListError(format!("{at}: environment variable {name} is not set"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Sandbox,
    Adyen,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    pub api_base_url: String,
    #[serde(default)]
    pub transfers_base_url: Option<String>,
    /// Adyen: the Payout API base; when set, payouts go there.
    #[serde(default)]
    pub payout_base_url: Option<String>,
    #[serde(default)]
    pub merchant_account: Option<String>,
    #[serde(default)]
    pub balance_account_id: Option<String>,
    pub secrets: Secrets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    pub api_key: SecretRef,
    /// Adyen: notification HMAC keys (hex), one or two (rotation).
    #[serde(default)]
    pub hmac_keys: Vec<SecretRef>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuthRef>,
    /// Sandbox kind: its webhook signature scheme and secrets.
    #[serde(default)]
    pub webhook_scheme: Option<String>,
    #[serde(default)]
    pub webhook_secrets: Vec<SecretRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthRef {
    pub username: String,
    pub password: SecretRef,
}

/// Parse the list (a JSON array of entries).
pub fn parse(json: &str) -> Result<Vec<Entry>, ListError> {
    let list: Vec<Entry> = serde_json::from_str(json).map_err(|e| ListError(e.to_string()))?;
    if list.len() > MAX_PSPS {
        return Err(ListError(format!("at most {MAX_PSPS} PSPs")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in list.iter().enumerate() {
        PspId::parse(&e.id).map_err(|err| ListError(format!("psps[{i}].id: {err}")))?;
        if !seen.insert(e.id.as_str()) {
            return Err(ListError(format!("psps[{i}].id: {} is listed twice", e.id)));
        }
    }
    Ok(list)
}

/// Everything a connector is built with besides its entry.
pub struct Build<'a> {
    pub transport: &'a Transport,
    pub timeout: Duration,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// One connector per entry.
pub fn connectors(list: &[Entry], b: &Build<'_>) -> Result<Vec<Arc<dyn PspConnector>>, ListError> {
    list.iter()
        .enumerate()
        .map(|(i, e)| connector(i, e, b))
        .collect()
}

fn connector(i: usize, e: &Entry, b: &Build<'_>) -> Result<Arc<dyn PspConnector>, ListError> {
    let at = |field: &str| format!("psps[{i}].{field}");
    let id = PspId::parse(&e.id).map_err(|err| ListError(format!("{}: {err}", at("id"))))?;
    let api_key = e.secrets.api_key.resolve(b.env, &at("secrets.api_key"))?;
    let transport_err =
        |field: &str, err: &dyn std::fmt::Display| ListError(format!("{}: {err}", at(field)));
    match e.kind {
        Kind::Sandbox => {
            let scheme_name = e.secrets.webhook_scheme.as_deref().unwrap_or("seed");
            let scheme = Scheme::parse(scheme_name).ok_or_else(|| {
                ListError(format!(
                    "{}: unknown scheme {scheme_name}",
                    at("secrets.webhook_scheme")
                ))
            })?;
            let secrets = resolve_all(
                &e.secrets.webhook_secrets,
                b,
                &at("secrets.webhook_secrets"),
            )?;
            let webhook = WebhookKeys { scheme, secrets };
            let c = HttpPsp::new(
                id,
                &e.api_base_url,
                api_key,
                webhook,
                b.transport,
                b.timeout,
            )
            .map_err(|err| transport_err("api_base_url", &err))?;
            Ok(Arc::new(c))
        }
        Kind::Adyen => {
            let merchant_account = e
                .merchant_account
                .clone()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    ListError(format!("{}: is required for adyen", at("merchant_account")))
                })?;
            let hmac_keys = resolve_all(&e.secrets.hmac_keys, b, &at("secrets.hmac_keys"))?;
            if hmac_keys
                .iter()
                .any(|k| hex::decode(k.expose()).map_or(true, |k| k.len() < 16))
            {
                return Err(ListError(format!(
                    "{}: Adyen HMAC keys are hex (at least 32 digits)",
                    at("secrets.hmac_keys")
                )));
            }
            let basic_auth = match &e.secrets.basic_auth {
                None => None,
                Some(a) => Some(BasicAuth {
                    username: a.username.clone(),
                    password: a
                        .password
                        .resolve(b.env, &at("secrets.basic_auth.password"))?,
                }),
            };
            let cfg = AdyenConfig {
                id,
                checkout_url: e.api_base_url.clone(),
                transfers_url: e.transfers_base_url.clone(),
                payout_url: e.payout_base_url.clone(),
                merchant_account,
                balance_account_id: e.balance_account_id.clone(),
                api_key,
                hmac_keys,
                basic_auth,
            };
            let c = AdyenPsp::new(cfg, b.transport, b.timeout)
                .map_err(|err| transport_err("api_base_url", &err))?;
            Ok(Arc::new(c))
        }
    }
}

/// One to four secrets (rotation), each resolved.
fn resolve_all(refs: &[SecretRef], b: &Build<'_>, at: &str) -> Result<Vec<Secret>, ListError> {
    if refs.is_empty() || refs.len() > 4 {
        return Err(ListError(format!("{at}: give one to four")));
    }
    refs.iter().map(|r| r.resolve(b.env, at)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HMAC: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

    fn build(json: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<usize, ListError> {
        let transport = Transport::https_only();
        let b = Build {
            transport: &transport,
            timeout: Duration::from_secs(1),
            env,
        };
        connectors(&parse(json)?, &b).map(|c| c.len())
    }

    fn adyen(secrets: &str) -> String {
        format!(
            r#"[{{"id": "adyen", "kind": "adyen", "api_base_url": "https://checkout-test.adyen.com/v71",
                "merchant_account": "CasinoEU", "secrets": {secrets}}}]"#
        )
    }

    #[test]
    fn secrets_come_inline_or_from_the_environment() {
        let env = |name: &str| (name == "ADYEN_API_KEY").then(|| "api-key-from-env".to_owned());
        let ok = adyen(&format!(
            r#"{{"api_key": {{"env": "ADYEN_API_KEY"}}, "hmac_keys": ["{HMAC}"]}}"#
        ));
        assert_eq!(build(&ok, &env).unwrap(), 1);
        let missing = adyen(&format!(
            r#"{{"api_key": {{"env": "NOT_SET"}}, "hmac_keys": ["{HMAC}"]}}"#
        ));
        let e = build(&missing, &env).unwrap_err().0;
        assert!(
            e.contains("psps[0].secrets.api_key") && e.contains("NOT_SET"),
            "{e}"
        );
    }

    #[test]
    fn bad_entries_name_their_field_and_never_print_a_secret() {
        let none = |_: &str| None;
        let e = build(
            &adyen(r#"{"api_key": "topsecret-value", "hmac_keys": ["zz"]}"#),
            &none,
        )
        .unwrap_err()
        .0;
        assert!(e.contains("psps[0].secrets.hmac_keys"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        let http = adyen(&format!(r#"{{"api_key": "k", "hmac_keys": ["{HMAC}"]}}"#))
            .replace("https://checkout-test", "http://checkout-test");
        assert!(build(&http, &none)
            .unwrap_err()
            .0
            .contains("psps[0].api_base_url"));
        let no_account = adyen(&format!(r#"{{"api_key": "k", "hmac_keys": ["{HMAC}"]}}"#))
            .replace(r#""merchant_account": "CasinoEU","#, "");
        assert!(build(&no_account, &none)
            .unwrap_err()
            .0
            .contains("merchant_account"));
        let unknown = adyen(&format!(
            r#"{{"api_key": "k", "hmac_keys": ["{HMAC}"], "pin": 1}}"#
        ));
        assert!(build(&unknown, &none).unwrap_err().0.contains("pin"));
        let twice = r#"[{"id": "a", "kind": "sandbox", "api_base_url": "https://a", "secrets": {"api_key": "k", "webhook_secrets": ["0123456789abcdef"]}},
                        {"id": "a", "kind": "sandbox", "api_base_url": "https://a", "secrets": {"api_key": "k", "webhook_secrets": ["0123456789abcdef"]}}]"#;
        assert!(build(twice, &none).unwrap_err().0.contains("psps[1].id"));
        let parsed = parse(&adyen(r#"{"api_key": "topsecret-value"}"#)).unwrap();
        assert!(!format!("{parsed:?}").contains("topsecret"));
    }
}
