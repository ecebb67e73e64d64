//! The query string, parsed at the edge: every parameter at most once,
//! percent-decoded as UTF-8, a bounded number of them. Anything else is a
//! 422 naming the parameter, rendered as the one error body (axum's own
//! `Query` answers a plain-text 400 instead).

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::error::Error;

/// Most parameters one query string may carry.
pub const MAX_QUERY_PARAMS: usize = 32;
/// Longest query string read.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The decoded parameters of a request's query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(BTreeMap<String, String>);

impl QueryParams {
    /// Parse `a=1&b=x%20y` (`+` is a space). Empty pieces (`a=1&&b=2`) are
    /// skipped; a name without `=` has the empty value.
    pub fn parse(query: &str) -> Result<Self, Error> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(Error::validation(
                "query",
                format!("longer than {MAX_QUERY_BYTES} bytes"),
            ));
        }
        let mut params = BTreeMap::new();
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = decode(raw_name).map_err(|reason| Error::validation("query", reason))?;
            let value = decode(raw_value).map_err(|reason| Error::validation(&name, reason))?;
            if params.contains_key(&name) {
                return Err(Error::validation(&name, "given more than once"));
            }
            if params.len() == MAX_QUERY_PARAMS {
                return Err(Error::validation(
                    "query",
                    format!("more than {MAX_QUERY_PARAMS} parameters"),
                ));
            }
            params.insert(name, value);
        }
        Ok(QueryParams(params))
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `name` parsed with `parse`; `Ok(None)` when absent, a 422 naming it
    /// (with `reason`) when `parse` refuses it.
    pub fn parse_with<T>(
        &self,
        name: &str,
        reason: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .ok_or_else(|| Error::validation(name, reason)),
        }
    }
}

/// Percent-decode one name or value (`+` is a space); the bytes must be UTF-8.
fn decode(raw: &str) -> Result<String, &'static str> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "is not UTF-8 once percent-decoded")
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryParams::parse(parts.uri.query().unwrap_or_default())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> String {
        match e {
            Error::Validation { field, .. } => field,
            other => format!("not a validation error: {other}"),
        }
    }

    #[test]
    fn decodes_names_and_values() {
        let q = QueryParams::parse("date=2024-05-01&psp=sandbox&note=a+b%20c&flag").unwrap();
        assert_eq!(q.get("date"), Some("2024-05-01"));
        assert_eq!(q.get("note"), Some("a b c"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("missing"), None);
        assert_eq!(QueryParams::parse("").unwrap(), QueryParams::default());
        assert_eq!(QueryParams::parse("&&").unwrap(), QueryParams::default());
    }

    #[test]
    fn refusals_name_the_parameter() {
        assert_eq!(field(QueryParams::parse("max=1&max=2").unwrap_err()), "max");
        assert_eq!(field(QueryParams::parse("date=%FF").unwrap_err()), "date");
        assert_eq!(field(QueryParams::parse("%C3=1").unwrap_err()), "query");
        let many: Vec<String> = (0..=MAX_QUERY_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            field(QueryParams::parse(&many.join("&")).unwrap_err()),
            "query"
        );
        let q = QueryParams::parse("max=x").unwrap();
        let e = q
            .parse_with("max", "must be an integer", |v| v.parse::<u32>().ok())
            .unwrap_err();
        assert_eq!(field(e), "max");
        assert_eq!(
            q.parse_with("min", "-", |v| v.parse::<u32>().ok()),
            Ok(None)
        );
    }
}
