//! The request's risk signals: what the client sends in `meta`
//! (`device_id`, `ip`, `ip_country`, `asn`, `instrument`, `bin`) and what the
//! edge adds from trusted headers (CloudFront's viewer country, ASN and
//! address). Each is checked with its field named; the edge's value wins
//! over the client's, since a client can claim any country.

use crate::domain::request::Body;
use crate::domain::risk::rules::Signals;
use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::Money;

/// The `meta` fields that feed the risk decision.
pub const RISK_META_FIELDS: [&str; 6] =
    ["device_id", "ip", "ip_country", "asn", "instrument", "bin"];

const MAX_DEVICE_ID: usize = 64;
const MAX_INSTRUMENT: usize = 128;

/// Risk signals of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskMeta {
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub ip_country: Option<String>,
    pub asn: Option<String>,
    /// The PSP token of the card or account (never a card number).
    pub instrument: Option<String>,
    pub bin: Option<String>,
}

/// What the edge knows of the caller (set by CloudFront, which strips
/// these headers from the viewer's own request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeSignals {
    pub ip: Option<String>,
    pub ip_country: Option<String>,
    pub asn: Option<String>,
}

pub fn is_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_device_id(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= MAX_DEVICE_ID
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn is_instrument(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_INSTRUMENT
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_bin(b: &str) -> bool {
    (b.len() == 6 || b.len() == 8) && b.bytes().all(|c| c.is_ascii_digit())
}

/// An ASN as digits (`AS1234` or `1234`).
pub fn normal_asn(a: &str) -> Option<String> {
    let digits = a.strip_prefix("AS").unwrap_or(a);
    (!digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.to_owned())
}

/// An IP address in its canonical text.
pub fn normal_ip(ip: &str) -> Option<String> {
    ip.parse::<std::net::IpAddr>().ok().map(|a| a.to_string())
}

fn field(
    meta: &Body,
    name: &str,
    ok: impl Fn(&str) -> Option<String>,
    expected: &str,
) -> Result<Option<String>, Error> {
    let bad = || Error::validation(&format!("meta.{name}"), expected);
    match meta.opt_str(name) {
        Ok(None) => Ok(None),
        Ok(Some(v)) => ok(v).map(Some).ok_or_else(bad),
        Err(_) => Err(bad()),
    }
}

impl RiskMeta {
    /// The risk fields of a `meta` object (other fields are the caller's).
    pub fn parse(meta: &Body) -> Result<RiskMeta, Error> {
        let keep = |pred: fn(&str) -> bool| move |v: &str| pred(v).then(|| v.to_owned());
        Ok(RiskMeta {
            device_id: field(
                meta,
                "device_id",
                keep(is_device_id),
                "must be 1-64 characters [A-Za-z0-9_.-]",
            )?,
            ip: field(meta, "ip", normal_ip, "must be an IPv4 or IPv6 address")?,
            ip_country: field(
                meta,
                "ip_country",
                keep(is_country),
                "must be an ISO 3166 alpha-2 code like \"FI\"",
            )?,
            asn: field(
                meta,
                "asn",
                normal_asn,
                "must be an AS number like \"AS3209\"",
            )?,
            instrument: field(
                meta,
                "instrument",
                keep(is_instrument),
                "must be a PSP token of 1-128 characters [A-Za-z0-9_-] (never a card number)",
            )?,
            bin: field(
                meta,
                "bin",
                keep(is_bin),
                "must be the card's first 6 or 8 digits",
            )?,
        })
    }

    /// The signals of a request carrying these risk fields; `instrument`
    /// is where the money goes (a payout's destination), else the one sent.
    pub fn signals(
        &self,
        player: &PlayerId,
        amount: Money,
        method: &str,
        country: Option<&str>,
        instrument: Option<&str>,
    ) -> Signals {
        Signals {
            player: player.as_str().to_owned(),
            amount: Some(amount),
            method: method.to_owned(),
            country: country.map(str::to_owned),
            ip_country: self.ip_country.clone(),
            ip: self.ip.clone(),
            asn: self.asn.clone(),
            device: self.device_id.clone(),
            instrument: instrument.or(self.instrument.as_deref()).map(str::to_owned),
            bin: self.bin.clone(),
        }
    }

    /// The edge's values over the client's.
    pub fn with_edge(mut self, edge: &EdgeSignals) -> RiskMeta {
        if edge.ip.is_some() {
            self.ip.clone_from(&edge.ip);
        }
        if edge.ip_country.is_some() {
            self.ip_country.clone_from(&edge.ip_country);
        }
        if edge.asn.is_some() {
            self.asn.clone_from(&edge.asn);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: serde_json::Value) -> Result<RiskMeta, Error> {
        RiskMeta::parse(&Body::from_json(v.to_string().as_bytes())?)
    }

    #[test]
    fn each_signal_is_checked_and_named() {
        let m = meta(
            serde_json::json!({"device_id": "dev-1", "ip": "10.0.0.1", "ip_country": "SE",
            "asn": "AS3209", "instrument": "tok_1", "bin": "411111"}),
        )
        .unwrap();
        assert_eq!(m.asn.as_deref(), Some("3209"));
        for (name, value) in [
            ("device_id", "a b"),
            ("ip", "999.1.1.1"),
            ("ip_country", "Sweden"),
            ("asn", "ASX"),
            ("instrument", "4111 1111"),
            ("bin", "4111"),
        ] {
            match meta(serde_json::json!({ name: value })) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, format!("meta.{name}")),
                other => panic!("{name}: {other:?}"),
            }
        }
        let edge = EdgeSignals {
            ip_country: Some("RU".into()),
            ..EdgeSignals::default()
        };
        assert_eq!(m.with_edge(&edge).ip_country.as_deref(), Some("RU"));
    }
}
