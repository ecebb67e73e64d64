//! A request body as the domain receives it: one JSON object, already
//! checked for card numbers, read field by field. Every accessor names the
//! field in its error, so each capability's request struct is parsed from a
//! [`Body`] with errors like `amount: must be a string`, never a bare
//! "body: missing field".

use serde_json::{Map, Value};

use crate::domain::pan::find_pan;
use crate::error::Error;

/// The parsed, PAN-free JSON object of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    fields: Map<String, Value>,
}

impl Body {
    /// Parse raw bytes: valid JSON, no card number anywhere, an object.
    pub fn from_json(raw: &[u8]) -> Result<Body, Error> {
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| Error::validation("body", format!("invalid JSON: {e}")))?;
        if let Some(field) = find_pan(&v) {
            return Err(Error::PanDetected { field });
        }
        Body::from_value(v, "body")
    }

    fn from_value(v: Value, name: &str) -> Result<Body, Error> {
        match v {
            Value::Object(fields) => Ok(Body { fields }),
            _ => Err(Error::validation(name, "must be a JSON object")),
        }
    }

    /// Refuse any field not in `allowed` (named in the error).
    pub fn only(&self, allowed: &[&str]) -> Result<(), Error> {
        match self.fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(Error::validation(k, "unknown field")),
            None => Ok(()),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// A required string.
    pub fn str(&self, name: &str) -> Result<&str, Error> {
        self.opt_str(name)?
            .ok_or_else(|| Error::validation(name, "is required"))
    }

    /// An optional string (`null` counts as absent).
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::validation(name, "must be a string")),
        }
    }

    /// An optional boolean (`null` counts as absent).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::validation(name, "must be true or false")),
        }
    }

    /// An optional integer (`null` counts as absent).
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Error::validation(name, "must be an integer")),
        }
    }

    /// An optional nested object, `prefix.field` in its errors' names.
    pub fn opt_object(&self, name: &str) -> Result<Option<Body>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Body::from_value(v.clone(), name).map(Some),
        }
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_in_every_error() {
        let b = Body::from_json(br#"{"a":"x","n":3,"t":true,"o":{"k":1},"z":null}"#).unwrap();
        assert_eq!(b.str("a").unwrap(), "x");
        assert_eq!(
            b.str("missing"),
            Err(Error::validation("missing", "is required"))
        );
        assert_eq!(b.str("n"), Err(Error::validation("n", "must be a string")));
        assert_eq!(b.opt_str("z").unwrap(), None);
        assert_eq!(b.opt_i64("n").unwrap(), Some(3));
        assert_eq!(
            b.opt_i64("a"),
            Err(Error::validation("a", "must be an integer"))
        );
        assert_eq!(b.opt_bool("t").unwrap(), Some(true));
        assert!(b.opt_object("o").unwrap().is_some());
        assert_eq!(
            b.opt_object("a"),
            Err(Error::validation("a", "must be a JSON object"))
        );
        assert_eq!(
            b.only(&["a", "n", "t", "o"]),
            Err(Error::validation("z", "unknown field"))
        );
        assert_eq!(
            Body::from_json(b"[1]"),
            Err(Error::validation("body", "must be a JSON object"))
        );
        assert!(Body::from_json(b"{").is_err());
        assert!(matches!(
            Body::from_json(br#"{"note":"4111 1111 1111 1111"}"#),
            Err(Error::PanDetected { .. })
        ));
    }
}
