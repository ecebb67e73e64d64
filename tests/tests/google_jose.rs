//! The Google facade on its signed-and-encrypted codec (JWS inside compact
//! JWE), end to end on `payloop serve`: the Google sandbox pays through
//! it and hears the completion through it; plaintext, a message encrypted
//! to another key, and one signed by a stranger are refused with Google's
//! codes (400 INVALID_PAYLOAD_ENCRYPTION, 401 INVALID_PAYLOAD_SIGNATURE),
//! their error answers sealed too; a rotated keyset takes both kids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use payloop::domain::google::codec::Codec;
use payloop::domain::google::jose::Jose;
use payloop_cli::google_sandbox::DEFAULT_ACCOUNT;
use payloop_tests::google;
use payloop_tests::TestStack;
use serde_json::{json, Value};

fn header(id: &str) -> Value {
    json!({"requestId": id, "requestTimestamp": {"epochMillis": payloop::clock::now_ms().to_string()},
           "protocolVersion": {"major": 1}, "paymentIntegratorAccountId": DEFAULT_ACCOUNT})
}

fn fresh_d() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A keyset that signs with a key of its own and encrypts to `peer`.
fn stranger(kid: &str, peer: Value) -> Jose {
    let doc = json!({"own": [{"kid": kid, "d": fresh_d()}], "peer": peer});
    Jose::from_json(&doc.to_string()).unwrap()
}

async fn post(t: &TestStack, content_type: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let r = t
        .http
        .post(t.url("/v1/echo"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facade_speaks_jose_and_refuses_what_it_cannot_open_or_trust() {
    // Both ends from keyset documents, so this test holds Google's side too
    // and reads the facade's sealed error answers.
    let (facade_d, google_d) = (fresh_d(), fresh_d());
    let placeholder = Jose::test_pair().0.public_keys();
    let facade_public = keyset(&[("integrator-test", &facade_d)], &placeholder).public_keys();
    let google_public = keyset(&[("google-test", &google_d)], &placeholder).public_keys();
    let facade = keyset(&[("integrator-test", &facade_d)], &google_public);
    let google = keyset(&[("google-test", &google_d)], &facade_public);
    let ours = keyset(&[("google-test", &google_d)], &facade_public);
    let code = |ct: &str, body: &[u8]| -> String {
        let v = ours
            .open(Some(ct), body)
            .expect("the error answer is sealed to Google");
        v["errorResponseCode"].as_str().unwrap_or("").to_owned()
    };
    let (_, other_google) = Jose::test_pair();
    let t = TestStack::start_with(|o| {
        o.google_codecs = Some((Arc::new(facade), Arc::new(google)));
        o.google_backoff = Duration::from_millis(50);
    })
    .await;

    // The sandbox pays through the JOSE channel, and hears back through it.
    let r = t
        .send(
            t.http
                .post(t.url("/google-sandbox/payments"))
                .header("content-type", "application/json")
                .body(json!({"amount_micros": "7000000", "currency": "EUR"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 200, "{v}");
    let request = v["request_id"].as_str().unwrap().to_owned();
    let payment = google::redirect_payment(&t, DEFAULT_ACCOUNT, &request).await;
    t.approve(payment.as_str()).await;
    let complete = format!("complete:{payment}");
    google::until("the completion is taken", || {
        google::sent(&t, DEFAULT_ACCOUNT, &complete)
    })
    .await;

    // Plaintext JSON: not a JOSE message.
    let echo = json!({"requestHeader": header("echo-1"), "clientMessage": "ping"});
    let (s, ct, body) = post(&t, "application/json", echo.to_string().into_bytes()).await;
    assert_eq!((s, ct.as_str()), (400, "application/jose"));
    assert!(
        !String::from_utf8_lossy(&body).contains("INVALID"),
        "sealed"
    );
    assert_eq!(code(&ct, &body), "INVALID_PAYLOAD_ENCRYPTION");

    // Encrypted to another integrator's key under the same kid: undecryptable.
    let (s, ct, body) = {
        let (ct, bytes) = other_google.seal(&echo).unwrap();
        post(&t, ct, bytes).await
    };
    assert_eq!(
        (s, code(&ct, &body).as_str()),
        (400, "INVALID_PAYLOAD_ENCRYPTION")
    );

    // Encrypted to the facade, signed by a stranger using Google's kid.
    let forger = stranger("google-test", facade_public.clone());
    let (ct, bytes) = forger.seal(&echo).unwrap();
    let (s, ct, body) = post(&t, ct, bytes).await;
    assert_eq!(
        (s, code(&ct, &body).as_str()),
        (401, "INVALID_PAYLOAD_SIGNATURE")
    );
    // Google's own message, opened, answered, sealed.
    let (ct, bytes) = google_copy(&google_d, &facade_public).seal(&echo).unwrap();
    let (s, ct, body) = post(&t, ct, bytes).await;
    assert_eq!(s, 200);
    assert_eq!(
        ours.open(Some(&ct), &body).unwrap()["clientMessage"],
        "ping"
    );

    // Garbage of every shape never gets past the codec.
    for junk in [&b""[..], b"....", b"a.b.c.d.e", &[0xff; 300][..]] {
        let (s, _, _) = post(&t, "application/jose", junk.to_vec()).await;
        assert_eq!(s, 400, "{junk:?}");
    }
    t.shutdown().await;
}

#[tokio::test]
async fn the_codec_itself_names_each_failure() {
    use payloop::domain::google::wire::GspCode;
    let (facade, google) = Jose::test_pair();
    let msg = json!({"requestHeader": header("r-1"), "clientMessage": "hi"});
    let (ct, sealed) = google.seal(&msg).unwrap();
    assert_eq!(ct, "application/jose");
    assert_eq!(facade.open(Some(ct), &sealed).unwrap(), msg);
    let (_, other) = Jose::test_pair();
    let (ct, foreign) = other.seal(&msg).unwrap();
    assert_eq!(
        facade.open(Some(ct), &foreign).unwrap_err().code,
        GspCode::InvalidPayloadEncryption
    );
    let forged = stranger("google-test", facade.public_keys())
        .seal(&msg)
        .unwrap()
        .1;
    assert_eq!(
        facade.open(Some(ct), &forged).unwrap_err().code,
        GspCode::InvalidPayloadSignature
    );
}

fn google_copy(d: &str, facade_public: &Value) -> Jose {
    keyset(&[("google-test", d)], facade_public)
}

fn keyset(own: &[(&str, &str)], peer: &Value) -> Jose {
    let own: Vec<Value> = own
        .iter()
        .map(|(kid, d)| json!({"kid": kid, "d": d}))
        .collect();
    Jose::from_json(&json!({"own": own, "peer": peer}).to_string()).unwrap()
}

#[tokio::test]
async fn a_rotated_keyset_opens_messages_to_the_old_and_the_new_key() {
    let (new_d, old_d, google_d) = (fresh_d(), fresh_d(), fresh_d());
    let placeholder = Jose::test_pair().0.public_keys();
    let google_public = keyset(&[("google-1", &google_d)], &placeholder).public_keys();
    let public_of = |kid: &str, d: &str| keyset(&[(kid, d)], &placeholder).public_keys();
    // The integrator rotated: the new key first, the old one still listed.
    let facade = keyset(&[("pi-new", &new_d), ("pi-old", &old_d)], &google_public);
    let msg = json!({"requestHeader": header("r-2"), "clientMessage": "rotated"});
    for (kid, d) in [("pi-new", &new_d), ("pi-old", &old_d)] {
        let google = keyset(&[("google-1", &google_d)], &public_of(kid, d));
        let (ct, sealed) = google.seal(&msg).unwrap();
        assert_eq!(facade.open(Some(ct), &sealed).unwrap(), msg, "{kid}");
    }
    // Once the old key is dropped, a message to it no longer opens.
    let after = keyset(&[("pi-new", &new_d)], &google_public);
    let google = keyset(&[("google-1", &google_d)], &public_of("pi-old", &old_d));
    let (ct, sealed) = google.seal(&msg).unwrap();
    assert!(after.open(Some(ct), &sealed).is_err());
    // The facade signs with its first key, which Google knows.
    let google = keyset(&[("google-1", &google_d)], &public_of("pi-new", &new_d));
    let (ct, answer) = facade.seal(&msg).unwrap();
    assert_eq!(google.open(Some(ct), &answer).unwrap(), msg);
    assert!(!format!("{facade:?}").contains(&new_d));
}
