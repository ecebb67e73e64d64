//! Message security behind one interface. Google's messages travel inside
//! TLS and, in production, inside an application layer (signed and
//! encrypted); the facade sees only JSON, whatever the layer.
//!
//! This file has the interface and the plaintext development mode (the
//! default of `payloop serve`); a signed-and-encrypted codec is another
//! implementation of [`Codec`].

use serde_json::Value;

use super::wire::{GspCode, GspError};

/// Turns a request body into JSON and a response's JSON into a body.
pub trait Codec: Send + Sync {
    /// The JSON of a request body, or why it is refused
    /// (`INVALID_PAYLOAD_SIGNATURE` 401, `INVALID_PAYLOAD_ENCRYPTION` 400,
    /// `INVALID_DECRYPTED_REQUEST` 400).
    fn open(&self, content_type: Option<&str>, body: &[u8]) -> Result<Value, GspError>;
    /// A response body and its content type.
    fn seal(&self, json: &Value) -> Result<(&'static str, Vec<u8>), GspError>;
    /// The mode's name (start-up log, `/`).
    fn name(&self) -> &'static str;
}

/// Development mode: JSON as it is, no signature, no encryption.
pub struct Plaintext;

/// The largest request body the facade reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Refuse a body beyond [`MAX_BODY`] before any codec reads it.
pub fn check_size(body: &[u8]) -> Result<(), GspError> {
    if body.len() > MAX_BODY {
        return Err(GspError::new(
            GspCode::InvalidFieldValue,
            "the body is larger than 64 KiB",
        ));
    }
    Ok(())
}

impl Codec for Plaintext {
    fn open(&self, _content_type: Option<&str>, body: &[u8]) -> Result<Value, GspError> {
        check_size(body)?;
        let v: Value = serde_json::from_slice(body).map_err(|_| {
            GspError::new(
                GspCode::InvalidDecryptedRequest,
                "the body is not a JSON object",
            )
        })?;
        if !v.is_object() {
            return Err(GspError::new(
                GspCode::InvalidDecryptedRequest,
                "the body is not a JSON object",
            ));
        }
        Ok(v)
    }

    fn seal(&self, json: &Value) -> Result<(&'static str, Vec<u8>), GspError> {
        serde_json::to_vec(json)
            .map(|b| ("application/json", b))
            .map_err(|_| {
                GspError::new(
                    GspCode::InvalidFieldValue,
                    "the response could not be encoded",
                )
            })
    }

    fn name(&self) -> &'static str {
        "plaintext"
    }
}

/// What a deployed facade answers until its message security is set up:
/// every request is `FORBIDDEN` (403). The plaintext mode carries no
/// authentication, so a stack takes it only when told to
/// (`PAYLOOP_GSP_ALLOW_PLAINTEXT=true`, development stacks).
pub struct Unconfigured;

impl Codec for Unconfigured {
    fn open(&self, _content_type: Option<&str>, _body: &[u8]) -> Result<Value, GspError> {
        Err(GspError::new(
            GspCode::Forbidden,
            "this integrator's message security is not configured",
        ))
    }

    fn seal(&self, json: &Value) -> Result<(&'static str, Vec<u8>), GspError> {
        Plaintext.seal(json)
    }

    fn name(&self) -> &'static str {
        "unconfigured"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_takes_json_objects_only() {
        let c = Plaintext;
        assert!(c.open(None, br#"{"a":1}"#).is_ok());
        for bad in [&b"[1]"[..], b"not json", b""] {
            let e = c.open(Some("application/json"), bad).unwrap_err();
            assert_eq!(e.code, GspCode::InvalidDecryptedRequest);
        }
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            c.open(None, &big).unwrap_err().code,
            GspCode::InvalidFieldValue
        );
        let (ct, body) = c.seal(&serde_json::json!({"x": "y"})).unwrap();
        assert_eq!(
            (ct, body.as_slice()),
            ("application/json", &br#"{"x":"y"}"#[..])
        );
    }
}
