//! PSP calls over real TLS: a local HTTPS server whose certificate comes from
//! a throwaway CA (made here with rcgen). A connector that trusts the CA gets
//! its answer; one that does not is refused during the handshake; an
//! `http://` endpoint is refused unless the transport allows it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use payloop::ids::PspId;
use payloop::psp::http_connector::HttpPsp;
use payloop::psp::https::{Transport, TransportError};
use payloop::psp::signature::Scheme;
use payloop::psp::{PspConnector, PspError, WebhookKeys};
use payloop::schema::status::PaymentStatus;
use payloop::secret::Secret;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA, and a server certificate for `localhost` / 127.0.0.1 it signed.
struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn new_pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: cert.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// An HTTPS PSP answering the payment status API; returns its base URL.
async fn https_psp(pki: &Pki) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // An untrusting client aborts the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let answer = service_fn(|_req| async {
                    let body = r#"{"reference":"ref_1","payment_id":"pay_1","status":"captured","amount":"12.50","currency":"EUR"}"#;
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), answer)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

fn connector(base: &str, transport: &Transport) -> Result<HttpPsp, TransportError> {
    HttpPsp::new(
        PspId::parse("adyen-test").unwrap(),
        base,
        Secret::new("api-key-0123456789"),
        WebhookKeys {
            scheme: Scheme::Seed,
            secrets: vec![Secret::new("webhook-secret-0123456789")],
        },
        transport,
        Duration::from_secs(5),
    )
}

#[tokio::test]
async fn a_connector_that_trusts_the_ca_gets_its_answer() {
    let pki = new_pki();
    let base = https_psp(&pki).await;
    let trusting = Transport::https_only()
        .trusting_pem(pki.ca_pem.as_bytes())
        .unwrap();
    let status = connector(&base, &trusting)
        .unwrap()
        .payment_status("ref_1")
        .await
        .unwrap();
    assert_eq!(
        (status.status, status.amount.minor()),
        (PaymentStatus::Captured, 1250)
    );
}

#[tokio::test]
async fn a_connector_that_does_not_trust_the_ca_is_refused() {
    let pki = new_pki();
    let base = https_psp(&pki).await;
    let answer = connector(&base, &Transport::https_only())
        .unwrap()
        .payment_status("ref_1")
        .await;
    match answer {
        Err(PspError::Unavailable(why)) => assert!(why.contains("adyen-test"), "{why}"),
        other => panic!("an unknown CA must be refused, got {other:?}"),
    }
    // Another CA's certificate does not help either.
    let other = new_pki();
    let wrong = Transport::https_only()
        .trusting_pem(other.ca_pem.as_bytes())
        .unwrap();
    assert!(connector(&base, &wrong)
        .unwrap()
        .payment_status("ref_1")
        .await
        .is_err());
}

#[tokio::test]
async fn plain_http_endpoints_are_refused_unless_allowed() {
    let refused = connector("http://127.0.0.1:9", &Transport::https_only());
    assert!(matches!(refused, Err(TransportError::PlainHttp)));
    let allowed = connector(
        "http://127.0.0.1:9",
        &Transport::https_only().allowing_http(),
    );
    assert!(allowed.is_ok());
}
