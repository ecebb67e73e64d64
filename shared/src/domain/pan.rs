//! Refuse anything that looks like a raw card number (PAN) anywhere in a
//! request body: 13–19 digits (spaces or dashes between them allowed) that
//! pass the Luhn check. Cards travel as PSP tokens only.

use serde_json::Value;

const MIN_PAN_DIGITS: usize = 13;
const MAX_PAN_DIGITS: usize = 19;
/// Numeric fields that legitimately carry long digit runs: amounts in
/// micros and times (epoch milliseconds are 13 digits, and one in ten
/// passes Luhn).
fn is_numeric_amount_or_time(field: &str) -> bool {
    field == "timestamp" || field.ends_with("_micros") || field.ends_with("_ms")
}
/// Bounds the walk over hostile, deeply nested bodies.
const MAX_DEPTH: usize = 32;

/// The JSON path of the first PAN-looking value, if any.
pub(crate) fn find_pan(v: &Value) -> Option<String> {
    walk(v, "$", 0)
}

fn walk(v: &Value, path: &str, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return Some(path.to_owned());
    }
    match v {
        Value::String(s) => contains_pan(s).then(|| path.to_owned()),
        Value::Number(n) => contains_pan(&n.to_string()).then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"), depth + 1)),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let child = format!("{path}.{k}");
            if contains_pan(k) {
                return Some(child);
            }
            if is_numeric_amount_or_time(k) && x.is_number() {
                return None;
            }
            walk(x, &child, depth + 1)
        }),
        Value::Bool(_) | Value::Null => None,
    }
}

/// Does the text hold a run of 13–19 digits (single spaces/dashes allowed
/// between digits) passing Luhn?
pub fn contains_pan(s: &str) -> bool {
    let mut run: Vec<u8> = Vec::new();
    let mut last_sep = false;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            run.push(b - b'0');
            last_sep = false;
        } else if (b == b' ' || b == b'-') && !run.is_empty() && !last_sep {
            last_sep = true;
        } else {
            if run_has_pan(&run) {
                return true;
            }
            run.clear();
            last_sep = false;
        }
    }
    run_has_pan(&run)
}

fn run_has_pan(run: &[u8]) -> bool {
    (MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&run.len()) && luhn_valid(run)
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_test_cards_in_any_shape() {
        for pan in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "378282246310005",
        ] {
            assert!(contains_pan(pan), "{pan}");
            assert!(contains_pan(&format!("card {pan} exp 12/30")), "{pan}");
        }
        let body = json!({"amount": "50.00", "meta": {"note": ["ok", "pan 4242424242424242"]}});
        assert_eq!(find_pan(&body).as_deref(), Some("$.meta.note[1]"));
        assert_eq!(
            find_pan(&json!({"n": 4111111111111111u64})).as_deref(),
            Some("$.n")
        );
    }

    #[test]
    fn leaves_ordinary_values_alone() {
        for ok in [
            "50.00",
            "pay_01HZX3",
            "4111111111111112",
            "123456789012",
            "2026-11-21T10:00:00Z",
            "+358 40 123 4567",
        ] {
            assert!(!contains_pan(ok), "{ok}");
        }
        assert_eq!(
            find_pan(&json!({"amount": "50.00", "player_id": "p-1"})),
            None
        );
    }

    /// Epoch milliseconds are 13 digits and one in ten passes Luhn: a
    /// numeric time field is a time, a string or another field still a PAN.
    #[test]
    fn epoch_millis_in_time_fields_are_not_card_numbers() {
        let luhn_ms = 1_795_165_200_001_i64;
        assert!(
            contains_pan(&luhn_ms.to_string()),
            "the fixture passes Luhn"
        );
        assert_eq!(find_pan(&json!({"until_ms": luhn_ms})), None);
        assert_eq!(
            find_pan(&json!({"amount_micros": 4_111_111_111_111_111_i64})),
            None
        );
        assert_eq!(
            find_pan(&json!({"until_ms": luhn_ms.to_string()})).as_deref(),
            Some("$.until_ms")
        );
        assert_eq!(
            find_pan(&json!({"until": luhn_ms})).as_deref(),
            Some("$.until")
        );
    }
}
