//! `payloop serve` at `/`: what is running and the API document, with no
//! secret on the page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use payloop::domain::risk::rules::RiskConfig;
use payloop_tests::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_says_what_runs_and_links_the_api_document() {
    let t = TestStack::start_with(|o| {
        o.risk = RiskConfig::parse(RiskConfig::SHIPPED).unwrap();
    })
    .await;
    let home = t.send(t.http.get(t.url("/"))).await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let page = &home.text;
    assert!(page.contains("<h1>payloop is running</h1>"), "{page}");
    assert!(page.contains("sandbox, sandbox-b, sandbox-c"), "{page}");
    assert!(page.contains("version shipped-"), "{page}");
    assert!(page.contains("Degradation mode</dt><dd>off"), "{page}");
    assert!(page.contains(r#"href="/openapi.yaml""#), "{page}");
    assert!(
        page.contains(r#"href="/ops""#),
        "the console is linked: {page}"
    );
    for secret in [
        &t.stack.secrets.client_key,
        &t.stack.secrets.platform_key,
        &t.stack.secrets.webhook_secret,
    ] {
        assert!(!page.contains(secret.as_str()), "a secret on the page");
    }
    let doc = t.send(t.http.get(t.url("/openapi.yaml"))).await;
    assert_eq!(doc.status, 200);
    assert!(doc
        .header("content-type")
        .unwrap()
        .starts_with("application/yaml"));
    assert!(doc.text.starts_with("openapi: 3.1"), "{}", &doc.text[..40]);
    assert!(doc.text.contains("/v1/risk/reviews/{review_id}/decide:"));
    // Anything else is still the JSON 404.
    let other = t.send(t.http.get(t.url("/nope"))).await;
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    t.shutdown().await;
}
