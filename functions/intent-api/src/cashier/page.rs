//! The cashier page itself: one HTML document in the language the browser
//! asks for first (`Accept-Language`, switchable in the page), its script
//! (every string of every language, the API calls) and its style. Served
//! with a strict Content-Security-Policy: same-origin script, style and
//! API calls only, no inline script, no framing, no referrer.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const HTML: &str = include_str!("assets/cashier.html");
const SCRIPT: &str = include_str!("assets/cashier.js");
const STYLE: &str = include_str!("assets/cashier.css");

/// The page's languages; the first is the default.
pub const LANGUAGES: [&str; 4] = ["en", "de", "fi", "sv"];
/// Accept-Language entries looked at (the header is the client's).
const MAX_LANGUAGE_RANGES: usize = 20;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router {
    Router::new()
        .route("/cashier", get(page))
        .route("/cashier/cashier.js", get(script))
        .route("/cashier/cashier.css", get(style))
}

/// The supported language the browser prefers most (highest q, then
/// order), else English.
pub fn negotiate(accept_language: Option<&str>) -> &'static str {
    let Some(header) = accept_language else {
        return LANGUAGES[0];
    };
    let mut best: Option<(u16, &'static str)> = None;
    for range in header.split(',').take(MAX_LANGUAGE_RANGES) {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag.split('-').next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), quality);
        let (Some(q), Some(lang)) = (
            q,
            LANGUAGES.iter().find(|l| l.eq_ignore_ascii_case(primary)),
        ) else {
            continue;
        };
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map_or(LANGUAGES[0], |(_, l)| l)
}

/// An HTTP quality value ("0.8") in thousandths, without floats.
fn quality(q: &str) -> Option<u16> {
    let (int, frac) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn with_headers(content_type: &'static str, body: String) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    resp
}

async fn page(headers: HeaderMap) -> Response {
    let lang = negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    with_headers("text/html; charset=utf-8", HTML.replace("{{lang}}", lang))
}

async fn script() -> Response {
    with_headers("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

async fn style() -> Response {
    with_headers("text/css; charset=utf-8", STYLE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_preferred_supported_language_wins() {
        assert_eq!(negotiate(None), "en");
        assert_eq!(negotiate(Some("de-DE,de;q=0.9,en;q=0.8")), "de");
        assert_eq!(negotiate(Some("fr-FR, sv;q=0.7, fi;q=0.9")), "fi");
        assert_eq!(negotiate(Some("SV")), "sv");
        assert_eq!(negotiate(Some("fr, ja;q=0.5")), "en");
        assert_eq!(negotiate(Some("de;q=0, fi;q=0.001")), "fi");
        assert_eq!(negotiate(Some("de;q=2, fi;q=0.5")), "fi", "bad q skipped");
        assert_eq!(negotiate(Some("")), "en");
    }

    #[test]
    fn every_language_has_every_string_in_the_script() {
        for lang in LANGUAGES {
            assert!(
                SCRIPT.contains(&format!("  {lang}: {{")),
                "no {lang} strings"
            );
        }
        assert!(HTML.contains("lang=\"{{lang}}\""));
    }
}
