//! Path parameters, with axum's rejections (a plain-text 400, e.g. for a
//! parameter that is not UTF-8 once percent-decoded) turned into a 422
//! naming the parameter, rendered as the one error body.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::error::Error;

/// Drop-in for `axum::extract::Path` whose rejection is an `ApiError`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(ApiError(rejection_error(&rejection))),
        }
    }
}

fn rejection_error(rejection: &PathRejection) -> Error {
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        // No parameters matched: a route wired to the wrong extractor.
        return Error::Internal(format!("path parameters: {rejection}"));
    };
    match e.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => {
            Error::validation(key, "is not UTF-8 once percent-decoded")
        }
        ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
            Error::validation(key, "is not valid here")
        }
        _ => Error::validation("path", "does not match this route's parameters"),
    }
}
