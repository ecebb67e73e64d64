//! The sandbox checkout clicked through in a real headless Chromium (Debian's
//! `chromium` + `chromium-driver`, installed by `scripts/test.sh`), spoken to
//! over the W3C WebDriver protocol, to a credited wallet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use payloop_tests::webdriver::{browser_or_skip, Driver};
use payloop_tests::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_pays_through_the_sandbox_checkout_in_headless_chromium() {
    let Some((driver, browser)) = browser_or_skip("sandbox checkout") else {
        return;
    };
    let t = TestStack::start().await;
    let id = t.deposit("bea", "25.00").await;
    let checkout = t.payment(&id).await["redirect_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = Driver::start(&driver, &browser).await;
    d.goto(&checkout).await;
    assert_eq!(d.text("#amount").await, "25.00 EUR");
    d.click("#pay").await;
    // 3-D Secure: a wrong code first, then the right one.
    d.type_into("#otp", "0000").await;
    d.click("#approve").await;
    assert!(d.text("#error").await.contains("Wrong code"));
    d.type_into("#otp", "1234").await;
    d.click("#approve").await;
    assert_eq!(d.text("#result").await, "Payment captured");
    d.quit().await;
    t.wait_status(&id, "captured").await;
    assert_eq!(t.balance_minor("bea").await, 2500);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}
