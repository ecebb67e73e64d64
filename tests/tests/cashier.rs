//! The hosted cashier: sessions bound to one player (minted with the
//! platform key, refused anywhere else, expired on time), the options it
//! offers (routing bounds, health, limits, stored tokens, withdrawal fee and
//! ETA), deposits and withdrawals through it (idempotent per attempt, the
//! session's player only), and the page itself in headless Chromium over
//! WebDriver: a deposit paid through the sandbox's 3-D Secure page and shown
//! credited, a refused amount's sentence, a double submit that opens one
//! payment, the language switch, keyboard tabs, a withdrawal with its fee
//! and time shown before confirming, axe-core in every view. Screenshots go
//! to target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use payloop::clock::ManualClock;
use payloop::domain::cashier::{self, SessionRequest};
use payloop::domain::policy::PayoutPolicy;
use payloop::ids::PlayerId;
use payloop::money::Currency;
use payloop::psp::health::HealthPolicy;
use payloop_tests::webdriver::{axe, axe_source, browser_or_skip, screenshots, Driver};
use payloop_tests::{assert_wallet_audits, deposit_body, Resp, TestStack, WAIT};
use serde_json::{json, Value};

const SESSIONS: &str = "/v1/cashier/sessions";
const DEPOSITS: &str = "/v1/cashier/deposits";
const WITHDRAWALS: &str = "/v1/cashier/withdrawals";

/// Cards from 5.00 to 500.00 EUR; the other methods unbounded.
const ROUTING: &str = r#"{"routes": [
  {"psp": "sandbox", "currencies": ["EUR"], "methods": ["card"], "min_amount": "5.00", "max_amount": "500.00"},
  {"psp": "sandbox", "methods": ["bank_transfer", "ewallet", "pay_by_bank", "p2p"]}]}"#;

async fn stack() -> TestStack {
    TestStack::start_with(|o| {
        o.routing = Some(ROUTING.into());
        o.payouts = PayoutPolicy {
            outcome_timeout_ms: 1_500,
            retry_after_ms: 200,
            ..PayoutPolicy::default()
        };
        o.sweep_every = Duration::from_millis(100);
        o.sandbox_retry_schedule = Some(vec![Duration::from_millis(100); 5]);
    })
    .await
}

async fn session(t: &TestStack, player: &str) -> String {
    let body = json!({"player_id": player, "currency": "EUR", "country": "FI"});
    let r = t.post_platform(SESSIONS, None, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["token"].as_str().unwrap().to_owned()
}

async fn get(t: &TestStack, token: &str, path: &str) -> Resp {
    t.send(t.http.get(t.url(path)).bearer_auth(token)).await
}

async fn post(t: &TestStack, token: &str, path: &str, key: &str, body: Value) -> Resp {
    let req = t
        .http
        .post(t.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body);
    t.send(req).await
}

fn method<'a>(options: &'a Value, name: &str) -> &'a Value {
    options["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == name)
        .unwrap_or_else(|| panic!("no {name} in {options}"))
}

fn field(r: &Resp) -> Value {
    r.json()["details"]["field"].clone()
}

/// Deposit intents opened, as the server counted them.
fn deposits_started(t: &TestStack) -> f64 {
    let series = t.stack.ctx.metrics().view().series("deposits_started");
    series.get("deposits_started").copied().unwrap_or(0.0)
}

/// Bet `amount` and win it back, so the deposit is wagered; basic KYC.
async fn ready_to_withdraw(t: &TestStack, player: &str, amount: &str) {
    t.wager(player, "r", amount).await;
    t.set_kyc(player, "basic").await;
}

async fn wait_final(t: &TestStack, token: &str, path: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = get(t, token, path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        if v["is_final"] == true && (v["status"] != "captured" || v["credited"] == true) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_session_is_one_players_and_good_for_the_cashier_only() {
    let t = stack().await;
    let body = json!({"player_id": "cara", "currency": "EUR", "country": "FI"}).to_string();
    // Minted with the platform key only, every field checked.
    let by_client = t
        .send(
            t.http
                .post(t.url(SESSIONS))
                .bearer_auth(&t.stack.secrets.client_key)
                .body(body.clone()),
        )
        .await;
    assert_eq!(by_client.status, 401, "{}", by_client.text);
    let short = json!({"player_id": "cara", "currency": "EUR", "ttl_s": 5}).to_string();
    let bad = t.post_platform(SESSIONS, None, &short).await;
    assert_eq!((bad.status, field(&bad)), (422, json!("ttl_s")));
    let minted = t.post_platform(SESSIONS, None, &body).await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    let minted = minted.json();
    let token = minted["token"].as_str().unwrap();
    assert_eq!(minted["cashier_path"], format!("/cashier#{token}"));
    let left = minted["expires_at_ms"].as_i64().unwrap() - payloop::clock::now_ms();
    assert!((880_000..=900_000).contains(&left), "{left} ms left");

    // The token opens the cashier and nothing else; no key opens the cashier.
    let init = t
        .send(
            t.http
                .post(t.url("/v1/payments/init"))
                .bearer_auth(token)
                .header("idempotency-key", "k-init")
                .json(&deposit_body("cara", "10.00")),
        )
        .await;
    assert_eq!(init.status, 401, "{}", init.text);
    for key in [
        &t.stack.secrets.client_key,
        &t.stack.secrets.platform_key,
        &"cs_unknown".to_owned(),
    ] {
        assert_eq!(get(&t, key, "/v1/cashier/options").await.status, 401);
    }

    // The options: the routes' methods and bounds for this amount.
    let o = get(&t, token, "/v1/cashier/options?amount=600.00").await;
    assert_eq!(o.status, 200, "{}", o.text);
    let o = o.json();
    let card = method(&o, "card");
    assert_eq!(
        (&card["available"], &card["unavailable_reason"]),
        (&json!(false), &json!("amount_out_of_range"))
    );
    assert_eq!(
        (&card["min_amount"], &card["max_amount"]),
        (&json!("5.00"), &json!("500.00"))
    );
    assert_eq!(method(&o, "ewallet")["available"], true);
    assert_eq!(o["presets"], json!(["10.00", "25.00", "50.00", "100.00"]));
    assert_eq!(
        (&o["balance_available"], &o["stored_methods"]),
        (&json!("0.00"), &json!([]))
    );
    assert_eq!(
        (&o["country"], &o["currency"]),
        (&json!("FI"), &json!("EUR"))
    );
    for (query, named) in [
        ("kind=payout", "kind"),
        ("amount=1.001", "amount"),
        ("currency=EURO", "currency"),
    ] {
        let r = get(&t, token, &format!("/v1/cashier/options?{query}")).await;
        assert_eq!((r.status, field(&r)), (422, json!(named)), "{query}");
    }
    // Degradation mode: only the fast methods stay on.
    let on = t
        .put_platform("/v1/admin/degradation", json!({"degraded": true}))
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    let degraded = get(&t, token, "/v1/cashier/options").await.json();
    assert_eq!(degraded["degraded"], true);
    assert_eq!(method(&degraded, "card")["unavailable_reason"], "degraded");
    assert_eq!(method(&degraded, "p2p")["available"], true);
    let off = t
        .put_platform("/v1/admin/degradation", json!({"degraded": false}))
        .await;
    assert_eq!(off.status, 200, "{}", off.text);

    // A deposit: the session's player, once per attempt key.
    let d = post(
        &t,
        token,
        DEPOSITS,
        "att-1",
        json!({"amount": "20.00", "method": "card"}),
    )
    .await;
    assert_eq!(d.status, 201, "{}", d.text);
    let id = d.json()["payment_id"].as_str().unwrap().to_owned();
    let again = post(
        &t,
        token,
        DEPOSITS,
        "att-1",
        json!({"amount": "20.00", "method": "card"}),
    )
    .await;
    assert_eq!(again.json()["payment_id"], id.as_str());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let shown = t.payment(&id).await;
    assert_eq!(shown["player_id"], "cara");
    assert!(shown["redirect_url"].is_string());
    let for_eve = post(
        &t,
        token,
        DEPOSITS,
        "att-2",
        json!({"amount": "20.00", "method": "card", "player_id": "eve"}),
    )
    .await;
    assert_eq!((for_eve.status, field(&for_eve)), (422, json!("player_id")));
    let too_small = post(
        &t,
        token,
        DEPOSITS,
        "att-3",
        json!({"amount": "0.00", "method": "card"}),
    )
    .await;
    assert_eq!(
        (too_small.status, field(&too_small)),
        (422, json!("amount"))
    );

    // Its status: the player's own only.
    let path = format!("/v1/cashier/payments/{id}");
    let mine = get(&t, token, &path).await.json();
    assert_eq!(
        (&mine["status"], &mine["is_final"]),
        (&json!("pending"), &json!(false))
    );
    let other = session(&t, "dan").await;
    assert_eq!(get(&t, &other, &path).await.status, 404);
    t.approve(&id).await;
    let done = wait_final(&t, token, &path).await;
    assert_eq!(
        (&done["status"], &done["amount"]),
        (&json!("captured"), &json!("20.00"))
    );

    // A session minted two hours ago for a minute is over.
    let mut past = t.stack.ctx.clone();
    past.clock = Arc::new(ManualClock::at(payloop::clock::now_ms() - 7_200_000));
    let old = cashier::mint(
        &past,
        &SessionRequest {
            player: PlayerId::parse("cara").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            country: None,
            ttl_s: 60,
        },
    )
    .await
    .unwrap();
    assert_eq!(get(&t, &old.token, "/v1/cashier/options").await.status, 401);

    // The page: in the browser's language, under a strict policy.
    let page = t
        .send(
            t.http
                .get(t.url("/cashier"))
                .header("accept-language", "fi-FI,fi;q=0.9,en;q=0.5"),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(r#"<html lang="fi">"#), "{}", page.text);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let script = t.send(t.http.get(t.url("/cashier/cashier.js"))).await;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_wallet_audits(&t.stack.ctx, "cara").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_tokens_fees_and_withdrawals_through_the_cashier() {
    let t = stack().await;
    // A captured deposit with a PSP token makes a stored method.
    let mut body = deposit_body("sia", "30.00");
    body["meta"]["instrument"] = json!("tok_sia_card");
    let r = t.init(Some("sia-1"), &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.json()["payment_id"].as_str().unwrap().to_owned();
    t.approve(&first).await;
    t.wait_status(&first, "captured").await;
    let token = session(&t, "sia").await;
    let o = get(&t, &token, "/v1/cashier/options").await.json();
    assert_eq!(o["stored_methods"].as_array().unwrap().len(), 1, "{o}");
    let stored = &o["stored_methods"][0];
    assert_eq!(
        (&stored["token"], &stored["method"], &stored["psp"]),
        (&json!("tok_sia_card"), &json!("card"), &json!("sandbox"))
    );
    assert_eq!(o["balance_available"], "30.00");
    let with_token = post(
        &t,
        &token,
        DEPOSITS,
        "s-1",
        json!({"amount": "10.00", "method": "card", "stored_token": "tok_sia_card"}),
    )
    .await;
    assert_eq!(with_token.status, 201, "{}", with_token.text);
    let foreign = post(
        &t,
        &token,
        DEPOSITS,
        "s-2",
        json!({"amount": "10.00", "method": "card", "stored_token": "tok_someone_else"}),
    )
    .await;
    assert_eq!(
        (foreign.status, field(&foreign)),
        (422, json!("stored_token"))
    );

    // Withdrawal options: each method's fee, what arrives and when.
    let w = get(
        &t,
        &token,
        "/v1/cashier/options?kind=withdrawal&amount=10.00",
    )
    .await
    .json();
    let card = method(&w, "card");
    assert_eq!(
        (&card["fee"], &card["you_receive"], &card["eta_hours"]),
        (&json!("0.00"), &json!("10.00"), &json!(72))
    );
    assert_eq!(method(&w, "ewallet")["eta_hours"], 1);
    assert_eq!(w["limits"], json!([]));

    // Not wagered yet: refused with its code; then sent and followed.
    let early = post(
        &t,
        &token,
        WITHDRAWALS,
        "w-1",
        json!({"amount": "10.00", "method": "card"}),
    )
    .await;
    assert_eq!(
        (early.status, early.json()["error"].clone()),
        (402, json!("wagering_incomplete"))
    );
    ready_to_withdraw(&t, "sia", "30.00").await;
    let sent = post(
        &t,
        &token,
        WITHDRAWALS,
        "w-2",
        json!({"amount": "10.00", "method": "card"}),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let sent = sent.json();
    assert_eq!(
        (&sent["fee"], &sent["amount"]),
        (&json!("0.00"), &json!("10.00"))
    );
    let id = sent["withdrawal_id"].as_str().unwrap().to_owned();
    // The same attempt again (a retry, a double click): the same withdrawal.
    let again = post(
        &t,
        &token,
        WITHDRAWALS,
        "w-2",
        json!({"amount": "10.00", "method": "card"}),
    )
    .await;
    assert_eq!(again.json()["withdrawal_id"], id.as_str());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let bad = post(
        &t,
        &token,
        WITHDRAWALS,
        "w-3",
        json!({"amount": "10.001", "method": "card"}),
    )
    .await;
    assert_eq!((bad.status, field(&bad)), (422, json!("amount")));
    let path = format!("/v1/cashier/withdrawals/{id}");
    let other = session(&t, "dan").await;
    assert_eq!(get(&t, &other, &path).await.status, 404);
    let done = wait_final(&t, &token, &path).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(t.balance_minor("sia").await, 2000);
    assert_wallet_audits(&t.stack.ctx, "sia").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_whose_every_psp_is_down_is_offered_as_unavailable() {
    let t = TestStack::start_with(|o| {
        o.routing = Some(ROUTING.into());
        o.health = Some(HealthPolicy {
            window_ms: 10_000,
            bucket_ms: 1_000,
            min_samples: 5,
            cool_down_ms: 60_000,
            probe_every_ms: 60_000,
            sync_every_ms: 10,
            ..HealthPolicy::default()
        });
    })
    .await;
    let token = session(&t, "uma").await;
    let before = get(&t, &token, "/v1/cashier/options").await.json();
    assert_eq!(method(&before, "card")["available"], true);
    t.set_outage("sandbox", true).await;
    for i in 0..5 {
        let r = t
            .init(
                Some(&format!("down-{i}")),
                &deposit_body("uma", "10.00").to_string(),
            )
            .await;
        assert_eq!(r.status, 503, "{}", r.text);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let o = get(&t, &token, "/v1/cashier/options").await.json();
        if method(&o, "card")["unavailable_reason"] == "route_unhealthy" {
            assert_eq!(
                method(&o, "ewallet")["available"],
                false,
                "one PSP behind both"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never unhealthy: {o}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.shutdown().await;
}

async fn axe_clean(d: &Driver, source: Option<&String>, page: &str, bad: &mut Vec<String>) {
    if let Some(js) = source {
        bad.extend(axe(d, js, page).await.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_deposits_and_withdraws_in_the_hosted_cashier_in_headless_chromium() {
    let Some((driver, browser)) = browser_or_skip("hosted cashier") else {
        return;
    };
    let axe_js = axe_source();
    let mut violations = Vec::new();
    let shots = screenshots();
    let t = stack().await;
    let limit = t
        .put_platform(
            "/v1/players/lena/limits",
            json!({"currency": "EUR", "day": "100.00"}),
        )
        .await;
    assert_eq!(limit.status, 200, "{}", limit.text);
    let token = session(&t, "lena").await;
    let d = Driver::start(&driver, &browser).await;
    d.goto(&t.url(&format!("/cashier#{token}"))).await;
    assert!(d
        .text("label[for='deposit-method-card']")
        .await
        .starts_with("Card"));
    assert!(
        !d.url().await.contains("cs_"),
        "the token left the address bar"
    );
    assert_eq!(d.text("#balance").await, "Balance: €0.00");
    assert_eq!(
        d.text("#deposit-hint").await,
        "Deposit limit left today: €100.00 of €100.00"
    );
    d.screenshot(&shots.join("cashier-deposit.png")).await;
    axe_clean(&d, axe_js.as_ref(), "deposit", &mut violations).await;

    // Keyboard: the arrow keys move between the tabs.
    d.type_into("#tab-deposit", "\u{E014}").await;
    d.wait_text("#tab-withdraw[aria-selected='true']", "Withdraw")
        .await;
    d.type_into("#tab-withdraw", "\u{E012}").await;
    d.wait_text("#tab-deposit[aria-selected='true']", "Deposit")
        .await;

    // Above the day's limit: refused, in a sentence.
    d.type_into("#deposit-amount", "150.00").await;
    d.click("label[for='deposit-method-card']").await;
    d.click("#deposit-submit").await;
    d.wait_text("#error", "This deposit would go over your deposit limit.")
        .await;
    d.screenshot(&shots.join("cashier-refused.png")).await;
    axe_clean(&d, axe_js.as_ref(), "refused", &mut violations).await;

    // A double submit opens one payment; 3-D Secure at the sandbox.
    let before = deposits_started(&t);
    d.click("button.preset[data-amount='25.00']").await;
    d.execute(
        "const f = document.getElementById('deposit-form'); f.requestSubmit(); f.requestSubmit(); return true;",
        json!([]),
    )
    .await;
    d.wait_text("#amount", "25.00 EUR").await;
    assert_eq!(deposits_started(&t) - before, 1.0, "one payment opened");
    d.click("#pay").await;
    d.type_into("#otp", "1234").await;
    d.click("#approve").await;
    assert_eq!(d.text("#result").await, "Payment captured");
    d.click("#return").await;
    d.wait_text("#status-title", "Deposit credited").await;
    assert_eq!(
        d.text("#status-text").await,
        "€25.00 has been added to your balance."
    );
    let tabs = d
        .execute(
            "return getComputedStyle(document.getElementById('tabs')).display;",
            json!([]),
        )
        .await;
    assert_eq!(tabs, "none", "the status view stands alone");
    d.screenshot(&shots.join("cashier-credited.png")).await;
    axe_clean(&d, axe_js.as_ref(), "status", &mut violations).await;
    assert_eq!(t.balance_minor("lena").await, 2500);

    // The language switch: German strings and German amounts.
    d.click("#status-again").await;
    d.wait_text("#balance", "Balance: €25.00").await;
    d.click("#lang-select option[value='de']").await;
    d.wait_text("#tab-deposit", "Einzahlen").await;
    assert_eq!(d.text("#balance").await, "Guthaben: 25,00 €");
    let lang = d
        .execute("return document.documentElement.lang;", json!([]))
        .await;
    assert_eq!(lang, "de");
    let incomplete = d
        .execute(
            "const s = window.payloopCashier.strings; const en = Object.keys(s.en).sort().join();
             return Object.keys(s).filter(l => Object.keys(s[l]).sort().join() !== en);",
            json!([]),
        )
        .await;
    assert_eq!(incomplete, json!([]), "languages missing strings");

    // A withdrawal: its fee, what arrives and when, before confirming.
    ready_to_withdraw(&t, "lena", "25.00").await;
    d.click("#tab-withdraw").await;
    assert!(d
        .text("label[for='withdraw-method-card']")
        .await
        .starts_with("Karte"));
    d.type_into("#withdraw-amount", "10,00").await;
    d.click("label[for='withdraw-method-card']").await;
    d.click("#withdraw-review").await;
    d.wait_text("#confirm-fee", "0,00 €").await;
    assert_eq!(d.text("#confirm-amount").await, "10,00 €");
    assert_eq!(d.text("#confirm-receive").await, "10,00 €");
    assert_eq!(d.text("#confirm-eta").await, "innerhalb von 72 Stunden");
    d.screenshot(&shots.join("cashier-withdrawal.png")).await;
    axe_clean(&d, axe_js.as_ref(), "withdrawal", &mut violations).await;
    d.click("#withdraw-confirm-button").await;
    d.wait_text("#status-title", "Auszahlung gesendet").await;
    assert_eq!(
        d.text("#status-text").await,
        "10,00 € wurde an Sie gesendet."
    );
    d.quit().await;
    assert_eq!(t.balance_minor("lena").await, 1500);
    assert_wallet_audits(&t.stack.ctx, "lena").await;
    assert!(violations.is_empty(), "axe: {violations:?}");
    t.shutdown().await;
}
