//! The operator console (`/ops` of `payloop serve`) in headless Chromium
//! over WebDriver: sign in with the platform key, find a payment and its
//! timeline, replay a dead letter (which credits the stuck deposit), resolve
//! the reconciliation case that credit makes, switch degradation; axe-core
//! (npm) run in every page finds no serious or critical violation.
//! Screenshots are saved in target/screenshots/. Beside the browser, plain
//! HTTP checks the cookie's flags and that a POST without the session's
//! CSRF token is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use payloop::ids::{EventId, PaymentId, PspId};
use payloop::money::Currency;
use payloop::psp::event::PspEvent;
use payloop::queue::QueueName;
use payloop::schema::status::PaymentStatus;
use payloop_tests::webdriver::{axe, axe_source, browser_or_skip, screenshots, Driver};
use payloop_tests::TestStack;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_payment_replays_a_dead_letter_and_resolves_its_case() {
    let Some((driver, browser)) = browser_or_skip("operator console") else {
        return;
    };
    let axe_js = axe_source();
    let t = TestStack::start().await;
    let paid = t.deposit("ola", "30.00").await;
    t.approve(&paid).await;
    // A deposit whose capture event died: it waits in the dead-letter queue.
    let stuck = t.deposit("ola", "9.00").await;
    let dead = PspEvent {
        psp: PspId::parse("sandbox").unwrap(),
        event_id: EventId::parse("evt_console_dead_letter").unwrap(),
        payment_id: PaymentId::parse(&stuck).unwrap(),
        status: PaymentStatus::Captured,
        amount_minor: 900,
        currency: Currency::parse("EUR").unwrap(),
        occurred_ms: payloop::clock::now_ms(),
        psp_reference: None,
        three_ds_failed: false,
    };
    let ctx = &t.stack.ctx;
    ctx.queue
        .send(QueueName::EventsDlq, &dead.to_message().unwrap())
        .await
        .unwrap();

    let d = Driver::start(&driver, &browser).await;
    let shots = screenshots();
    let mut axe_runs = Vec::new();

    // Signed out: the console sends the operator to sign in.
    d.goto(&t.url("/ops")).await;
    assert!(d.url().await.ends_with("/ops/login"), "{}", d.url().await);
    d.type_into("#key", "not-the-platform-key").await;
    d.click("#login").await;
    assert!(d.text("#flash-error").await.contains("not accepted"));
    d.type_into("#key", &t.stack.secrets.platform_key).await;
    d.click("#login").await;
    assert_eq!(d.text("#operator").await, "platform");
    assert_eq!(d.text("#gauge-dlq_depth").await, "1");
    d.screenshot(&shots.join("console-overview.png")).await;
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "overview").await);
    }

    // Find the paid deposit: its timeline, routing and deliveries.
    d.click("a[href='/ops/payments']").await;
    d.type_into("#q", &paid).await;
    d.click("#search").await;
    assert_eq!(d.text("#status").await, "captured");
    let page = d.text("main").await;
    // The timeline: created pending, then captured. (The sandbox sends the
    // authorization and the capture one after the other; the capture may
    // be applied first, which makes the authorization a no-op, so an
    // `authorized` row is not guaranteed.)
    let history = page
        .split_once("Status history")
        .and_then(|(_, rest)| rest.split_once("Routing attempts"))
        .map(|(history, _)| history)
        .unwrap_or_default();
    let row = |status: &str| history.lines().any(|l| l.starts_with(status));
    assert!(row("pending") && row("captured"), "{page}");
    assert!(
        page.contains("session_opened"),
        "routing attempts shown: {page}"
    );
    assert!(
        page.contains("accepted"),
        "deliveries with verdicts: {page}"
    );
    assert!(
        !page.contains(&t.stack.secrets.platform_key),
        "no key on a page"
    );
    d.screenshot(&shots.join("console-payment.png")).await;
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "payment").await);
    }
    // By player: the player's payments and balance.
    d.goto(&t.url("/ops/payments?q=ola")).await;
    assert!(d.text("main").await.contains(&stuck));

    // The dead letter: inspect, replay; the stuck deposit is credited.
    d.goto(&t.url("/ops/dlq")).await;
    assert!(d.text("main").await.contains(&stuck));
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "dead letters").await);
    }
    d.click("#replay-0").await;
    assert!(d.text("#flash").await.starts_with("Replayed message"));
    d.screenshot(&shots.join("console-dlq-replayed.png")).await;
    t.wait_status(&stuck, "captured").await;
    assert_eq!(t.balance_minor("ola").await, 3900);

    // The sandbox never settled that capture: reconciliation opens a case.
    let day = payloop::clock::Day::today();
    let run = json!({"psp": "sandbox", "date": day.to_string()}).to_string();
    let r = t.post_platform("/v1/recon/runs", None, &run).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["classes"]["missing_at_psp"], 1, "{}", r.text);
    d.goto(&t.url(&format!("/ops/recon?date={day}"))).await;
    assert_eq!(d.text(".case-status").await, "open");
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "reconciliation").await);
    }
    d.type_into("#note-0", "settled by hand with the PSP").await;
    d.click("#resolve-0").await;
    assert!(d.text("#flash").await.contains("resolved"));
    d.wait_text(".case-status", "resolved").await;
    d.screenshot(&shots.join("console-recon-resolved.png"))
        .await;

    // Routing: the circuits and the degradation switch.
    d.goto(&t.url("/ops/routing")).await;
    assert_eq!(d.text("#degraded").await, "off");
    d.click("#degradation").await;
    d.wait_text("#degraded", "on").await;
    d.screenshot(&shots.join("console-routing.png")).await;
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "routing").await);
    }
    d.click("#degradation").await;
    d.wait_text("#degraded", "off").await;

    d.goto(&t.url("/ops/risk")).await;
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "risk").await);
    }
    // Signing out ends the session.
    d.click("#logout").await;
    d.element("#key").await;
    assert!(d.url().await.ends_with("/ops/login"));
    if let Some(js) = &axe_js {
        axe_runs.push(axe(&d, js, "sign-in").await);
    }
    d.goto(&t.url("/ops/dlq")).await;
    d.element("#key").await;
    assert!(d.url().await.ends_with("/ops/login"));
    d.quit().await;

    if axe_js.is_some() {
        let total: usize = axe_runs.iter().map(|(n, _)| n).sum();
        let bad: Vec<&String> = axe_runs.iter().flat_map(|(_, b)| b).collect();
        println!("axe-core on {} console pages: {total} violation(s) of any impact, {} serious or critical", axe_runs.len(), bad.len());
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(axe_runs.len(), 7);
    }
    t.shutdown().await;
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(url)
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The session cookie's flags, and a POST without the session's CSRF token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_session_is_http_only_strict_and_every_post_needs_its_token() {
    let t = TestStack::start().await;
    let http = payloop::psp::https::local_client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(t.url("/ops/login")).send().await.unwrap();
    let pre = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let nonce = pre.split(';').next().unwrap().to_owned();
    let page = login.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    // Sign-in without the pre-session token is refused.
    let form = [
        ("key", t.stack.secrets.platform_key.as_str()),
        ("csrf", "forged"),
    ];
    let r = post(&http, &t.url("/ops/login"), &nonce, &form).await;
    assert_eq!(r.status(), 403);
    let form = [
        ("key", t.stack.secrets.platform_key.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let r = post(&http, &t.url("/ops/login"), &nonce, &form).await;
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("payloop_ops="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ops", "Max-Age=28800"] {
        assert!(session.contains(flag), "{flag}: {session}");
    }
    assert!(
        !session.contains(&t.stack.secrets.platform_key),
        "the key is not the cookie"
    );
    let cookie = session.split(';').next().unwrap().to_owned();
    // Signed in: a page works; a POST without (or with a wrong) token is 403.
    let r = http
        .get(t.url("/ops/routing"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: String = r.text().await.unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    for bad in ["", "0000"] {
        let form = [("csrf", bad), ("degraded", "true")];
        let r = post(&http, &t.url("/ops/routing/degradation"), &cookie, &form).await;
        assert_eq!(r.status(), 403, "token {bad:?}");
    }
    let view: Value = t.get("/v1/admin/routing", true).await.json();
    assert_eq!(
        view["degraded"], false,
        "nothing switched by the refused posts"
    );
    // A tampered cookie is no session.
    let tampered = cookie.replacen("platform", "admin", 1);
    let r = http
        .get(t.url("/ops"))
        .header("cookie", &tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // With the token, the switch works.
    let form = [("csrf", token.as_str()), ("degraded", "true")];
    let r = post(&http, &t.url("/ops/routing/degradation"), &cookie, &form).await;
    assert_eq!(r.status(), 303);
    let view: Value = t.get("/v1/admin/routing", true).await.json();
    assert_eq!(view["degraded"], true);
    t.shutdown().await;
}
