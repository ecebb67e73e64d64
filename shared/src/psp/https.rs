//! The one HTTPS stack for every call to a PSP and every report download:
//! rustls with the aws-lc-rs provider (the same rustls and provider the AWS
//! SDK uses, so a Lambda binary carries one TLS stack and no OpenSSL),
//! certificates verified against the system's roots plus any CA the
//! deployment adds. Plain `http://` is refused unless a deployment allows it
//! explicitly (local development against the sandbox PSPs).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why a PSP endpoint cannot be reached as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// (The URL itself is never repeated: a pre-signed one carries a token.)
    #[error("plain http is refused (PSP endpoints and report URLs must be https://)")]
    PlainHttp,
    #[error("not an http(s) URL")]
    NotAUrl,
    #[error("trusted CA certificates: {0}")]
    BadCa(String),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// How PSP endpoints are reached.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// CA certificates trusted besides the system's (a PSP's private CA, a
    /// test CA).
    extra_roots: Vec<CertificateDer<'static>>,
    /// Plain `http://` endpoints allowed: local development only.
    allow_http: bool,
}

impl Transport {
    /// HTTPS only, the system's roots.
    pub fn https_only() -> Transport {
        Transport::default()
    }

    /// Also allow plain `http://` endpoints (the local stack's sandboxes).
    pub fn allowing_http(mut self) -> Transport {
        self.allow_http = true;
        self
    }

    /// Also trust the CA certificates in `pem` (one or more PEM blocks).
    pub fn trusting_pem(mut self, pem: &[u8]) -> Result<Transport, TransportError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TransportError::BadCa(e.to_string()))?;
        if certs.is_empty() {
            return Err(TransportError::BadCa("no certificate in the PEM".into()));
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    pub fn allows_http(&self) -> bool {
        self.allow_http
    }

    /// Refuse an endpoint this transport may not reach, naming it.
    pub fn check_endpoint(&self, url: &str) -> Result<(), TransportError> {
        if url.starts_with("https://") {
            return Ok(());
        }
        if url.starts_with("http://") {
            return match self.allow_http {
                true => Ok(()),
                false => Err(TransportError::PlainHttp),
            };
        }
        Err(TransportError::NotAUrl)
    }

    /// A client on this transport: HTTPS with verified certificates (plain
    /// HTTP only when allowed), `timeout` for connecting and for the whole
    /// call.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, TransportError> {
        self.client_builder(timeout)?
            .build()
            .map_err(|e| TransportError::Setup(e.to_string()))
    }

    /// The same, for a caller that tunes the client further (pool sizes).
    pub fn client_builder(
        &self,
        timeout: Duration,
    ) -> Result<reqwest::ClientBuilder, TransportError> {
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(self.tls_config()?)
            .https_only(!self.allow_http)
            .timeout(timeout)
            .connect_timeout(timeout))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, TransportError> {
        let mut roots = rustls::RootCertStore::empty();
        // The system's roots; one unreadable certificate does not stop the rest.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| TransportError::BadCa(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// A client for this machine's own services (the local stack and its
/// sandbox PSPs, tests): plain http allowed, the same TLS stack otherwise.
/// Every HTTP client in payloop is built on [`Transport`]: reqwest carries
/// no TLS provider of its own in this build.
pub fn local_client() -> Result<reqwest::Client, TransportError> {
    local_client_builder()?
        .build()
        .map_err(|e| TransportError::Setup(e.to_string()))
}

/// The same, to tune further (the bench's connection pool).
pub fn local_client_builder() -> Result<reqwest::ClientBuilder, TransportError> {
    Transport::https_only()
        .allowing_http()
        .client_builder(LOCAL_TIMEOUT)
}

/// Calls to this machine's own services time out after this.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed PSP call in words for the log, without the URL (a pre-signed
/// URL carries a token).
pub fn transport_error(psp: &crate::ids::PspId, e: &reqwest::Error) -> String {
    format!("{psp}: {}", failure_kind(e))
}

/// What went wrong with a call, in words that never carry its URL.
pub fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_needs_an_explicit_allowance() {
        let strict = Transport::https_only();
        assert!(strict.check_endpoint("https://psp.example").is_ok());
        assert_eq!(
            strict.check_endpoint("http://psp.example"),
            Err(TransportError::PlainHttp)
        );
        assert!(strict.check_endpoint("ftp://psp.example").is_err());
        let dev = Transport::https_only().allowing_http();
        assert!(dev.check_endpoint("http://127.0.0.1:8091").is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(Transport::https_only().trusting_pem(b"not a pem").is_err());
        assert!(Transport::https_only().trusting_pem(b"").is_err());
    }
}
