//! Property-based fuzzing of every parser at the edge, over arbitrary bytes
//! and strings: webhook signature headers (each scheme), webhook bodies,
//! queue messages, money strings, ids, query strings, settlement CSV and
//! ledger lines, days. The property is first "never panics" (a panic aborts
//! a release build's whole server), then, where a parser has a printer,
//! that parse → print → parse gives the same value back. Case counts are
//! bounded so the whole file runs in a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderName, HeaderValue};
use payloop::clock::Day;
use payloop::config::Secret;
use payloop::domain::recon::files::parse_ledger_line;
use payloop::edge::{parse_body, QueryParams};
use payloop::ids::{CaseId, EventId, IdempotencyKey, PaymentId, PlayerId, PspId, TxnId};
use payloop::money::{format_minor, Currency, Money};
use payloop::psp::event::{parse_message, Inbound};
use payloop::psp::settlement::ReportReader;
use payloop::psp::signature::{self, Rejection, Scheme, Window};
use payloop::psp::wire::parse_inbound;
use proptest::prelude::*;

const SCHEMES: [Scheme; 3] = [Scheme::Seed, Scheme::Timestamped, Scheme::StandardWebhooks];
const HEADERS: [&str; 5] = [
    signature::SEED_HEADER,
    signature::TIMESTAMPED_HEADER,
    signature::SW_ID,
    signature::SW_TIMESTAMP,
    signature::SW_SIGNATURE,
];
const NOW_S: i64 = 1_750_000_000;
const CURRENCIES: [&str; 5] = ["EUR", "JPY", "KWD", "SEK", "CLF"];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn secrets() -> Vec<Secret> {
    vec![
        Secret::new("fuzz-secret-0123456789"),
        // Standard Webhooks secrets are `whsec_` + base64 of the key.
        Secret::new("whsec_ZnV6ei1rZXktZm9yLXN0YW5kYXJkLXdlYmhvb2tz"),
    ]
}

fn window() -> Window {
    Window {
        now_s: NOW_S,
        tolerance_s: 300,
    }
}

/// Header text that looks enough like each scheme's to get past the first
/// checks: known prefixes and separators mixed with arbitrary pieces.
fn header_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[0-9a-f]{0,70}",
        "[A-Za-z0-9+/=]{0,50}",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("sha256=".to_owned()),
        Just("t=".to_owned()),
        Just("v1=".to_owned()),
        Just("v1,".to_owned()),
        Just(",".to_owned()),
        Just(" ".to_owned()),
        Just("=".to_owned()),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn headers_from(pairs: &[(usize, String)], raw: &[Vec<u8>]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (i, text) in pairs {
        if let Ok(v) = HeaderValue::from_str(text) {
            h.append(HeaderName::from_static(HEADERS[i % HEADERS.len()]), v);
        }
    }
    for (i, bytes) in raw.iter().enumerate() {
        if let Ok(v) = HeaderValue::from_bytes(bytes) {
            h.append(HeaderName::from_static(HEADERS[i % HEADERS.len()]), v);
        }
    }
    h
}

/// A JSON object with webhook-like field names and values of every type.
fn webhook_json() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "type",
        "event_id",
        "payment_id",
        "payout_id",
        "refund_id",
        "status",
        "amount",
        "currency",
        "timestamp",
        "reason",
        "reference",
    ]);
    let value = prop_oneof![
        any::<String>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        prop::sample::select(vec![
            "payment",
            "payout",
            "refund",
            "chargeback",
            "captured",
            "authorized",
            "failed",
            "succeeded",
            "EUR",
            "JPY",
            "50.00",
            "-1.00",
            "pay_01JFIXTURE000000000000000A",
            "2025-06-15T12:00:00Z",
            "1750000000",
        ])
        .prop_map(serde_json::Value::from),
        Just(serde_json::json!({"nested": [1, "x"]})),
    ];
    proptest::collection::btree_map(names, value, 0..10).prop_map(|m| {
        serde_json::to_vec(
            &m.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<serde_json::Map<_, _>>(),
        )
        .unwrap()
    })
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn signature_headers_never_panic(
        pairs in proptest::collection::vec((0usize..5, header_text()), 0..6),
        raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..3),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        now_s in any::<i64>(),
        tolerance_s in any::<i64>(),
    ) {
        let h = headers_from(&pairs, &raw);
        for scheme in SCHEMES {
            let _ = signature::verify(scheme, &secrets(), &h, &body, window());
            let _ = signature::verify(scheme, &secrets(), &h, &body, Window { now_s, tolerance_s });
            let _ = signature::verify(scheme, &[], &h, &body, window());
        }
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        skew in -300i64..=300,
        msg_id in "[A-Za-z0-9_-]{1,40}",
        flip in any::<prop::sample::Index>(),
    ) {
        for (scheme, secret) in [
            (Scheme::Seed, "fuzz-secret-0123456789"),
            (Scheme::Timestamped, "fuzz-secret-0123456789"),
            (Scheme::StandardWebhooks, "whsec_ZnV6ei1rZXktZm9yLXN0YW5kYXJkLXdlYmhvb2tz"),
        ] {
            let signed = signature::sign(scheme, secret, &body, NOW_S + skew, &msg_id);
            let mut h = HeaderMap::new();
            for (name, value) in signed {
                h.insert(HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap());
            }
            let ok = signature::verify(scheme, &secrets(), &h, &body, window());
            prop_assert!(ok.is_ok(), "{scheme:?}: {ok:?}");
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 0x01;
                prop_assert_eq!(
                    signature::verify(scheme, &secrets(), &h, &changed, window()),
                    Err(Rejection::BadSignature)
                );
            }
        }
    }

    #[test]
    fn webhook_bodies_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..300),
        shaped in webhook_json(),
        signed_at in proptest::option::of(any::<i64>()),
    ) {
        let psp = PspId::parse("sandbox").unwrap();
        for body in [&raw, &shaped] {
            let _ = parse_inbound(&psp, body, signed_at);
            let _ = parse_inbound(&psp, body, Some(NOW_S));
            let _ = parse_body(body);
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = parse_message(text);
            }
        }
    }

    #[test]
    fn normalised_events_round_trip_through_the_queue(shaped in webhook_json()) {
        let psp = PspId::parse("sandbox").unwrap();
        if let Ok(Inbound::Payment(ev)) = parse_inbound(&psp, &shaped, Some(NOW_S)) {
            let message = ev.to_message().unwrap();
            match parse_message(&message) {
                Ok(Inbound::Payment(back)) => prop_assert_eq!(back, ev),
                _ => prop_assert!(false, "{message} did not come back as a payment event"),
            }
        }
    }

    #[test]
    fn queue_messages_never_panic(text in any::<String>()) {
        let _ = parse_message(&text);
    }

    #[test]
    fn money_strings_never_panic_and_round_trip(
        text in prop_oneof![any::<String>(), "-?[0-9]{0,22}(\\.[0-9]{0,5})?", "[0-9.,+ e-]{0,12}"],
        code in prop::sample::select(CURRENCIES.to_vec()),
        any_code in any::<String>(),
    ) {
        let _ = Currency::parse(&any_code);
        let c = Currency::parse(code).unwrap();
        if let Ok(m) = Money::parse_decimal(&text, c) {
            let printed = m.to_decimal();
            prop_assert_eq!(Money::parse_decimal(&printed, c), Ok(m), "{} -> {}", text, printed);
            prop_assert_eq!(format_minor(m.minor(), c), printed);
        }
    }

    #[test]
    fn money_from_minor_round_trips(minor in any::<i64>(), micros in any::<i64>(),
                                    code in prop::sample::select(CURRENCIES.to_vec())) {
        let c = Currency::parse(code).unwrap();
        let _ = Money::from_micros(micros, c);
        let _ = format_minor(minor, c);
        if let Ok(m) = Money::from_minor(minor, c) {
            let _ = m.micros();
            let back = Money::parse_decimal(&m.to_decimal(), c);
            if minor > 0 {
                prop_assert_eq!(back, Ok(m));
            }
        }
    }

    #[test]
    fn ids_never_panic_and_keep_their_text(
        text in prop_oneof![any::<String>(), "[A-Za-z0-9_.:#-]{0,260}"],
    ) {
        macro_rules! check {
            ($($t:ty),*) => {$(
                if let Ok(id) = <$t>::parse(&text) {
                    prop_assert_eq!(id.as_str(), text.as_str());
                    prop_assert_eq!(<$t>::parse(id.as_str()), Ok(id));
                }
            )*};
        }
        check!(PaymentId, TxnId, EventId, PlayerId, PspId, CaseId, IdempotencyKey);
    }

    #[test]
    fn query_strings_never_panic(
        text in prop_oneof![any::<String>(), "[a-z=&%0-9A-F+]{0,80}"],
    ) {
        if let Ok(q) = QueryParams::parse(&text) {
            let _ = q.get("date");
        }
    }

    #[test]
    fn query_strings_round_trip(
        params in proptest::collection::btree_map("[a-z_]{1,8}", any::<String>(), 0..8),
    ) {
        let encoded: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let q = QueryParams::parse(&encoded.join("&")).unwrap();
        for (k, v) in &params {
            prop_assert_eq!(q.get(k), Some(v.as_str()));
        }
    }

    #[test]
    fn settlement_reports_never_panic(
        chunks in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..120),
                settlement_line().prop_map(String::into_bytes),
            ],
            0..8,
        ),
    ) {
        let mut reader = ReportReader::new();
        for chunk in &chunks {
            let _ = reader.push(chunk);
        }
        let _ = reader.finish();
    }

    #[test]
    fn ledger_lines_never_panic(text in prop_oneof![any::<String>(), "([^,]{0,12},){0,8}"]) {
        let _ = parse_ledger_line(&text, &mut None);
    }

    #[test]
    fn days_never_panic_and_round_trip(
        text in prop_oneof![any::<String>(), "[0-9]{4}-[0-9]{2}-[0-9]{2}", "[0-9-]{8,12}"],
        y in 1970i64..=9999, m in 1i64..=12, d in 1i64..=31,
    ) {
        if let Some(day) = Day::parse(&text) {
            prop_assert_eq!(day.to_string(), text);
        }
        let built = format!("{y:04}-{m:02}-{d:02}");
        if let Some(day) = Day::parse(&built) {
            prop_assert_eq!(day.to_string(), built);
            prop_assert_eq!(Day::parse(&day.next().to_string()), Some(day.next()));
        }
    }
}

/// Percent-encode every byte outside `[A-Za-z0-9_-]` (what a client sends).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A settlement CSV line whose fields are plausible or arbitrary.
fn settlement_line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_]{0,12}",
        "-?[0-9]{1,6}\\.[0-9]{2}",
        Just("capture".to_owned()),
        Just("refund".to_owned()),
        Just("EUR".to_owned()),
        Just("2025-06-15".to_owned()),
    ];
    proptest::collection::vec(field, 0..10).prop_map(|f| format!("{}\n", f.join(",")))
}
