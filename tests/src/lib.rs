//! Test support for payloop's end-to-end and fault-injection suites: a local
//! stack driven over HTTP, fault-injecting store/queue wrappers, and the
//! ledger invariant check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod conformance;
pub mod faults;
pub mod google;
pub mod webdriver;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use payloop_cli::local::{self, LocalOptions, LocalStack};
use serde_json::{json, Value};

pub use payloop::psp::signature::seed_signature;

/// How long tests wait for the asynchronous part of the loop.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct TestStack {
    pub stack: LocalStack,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    /// Every payment this test created, for the ledger invariant.
    pub payments: std::sync::Mutex<Vec<String>>,
}

pub fn deposit_body(player: &str, amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR", "method": "card", "return_url": "https://shop.example/back",
           "player_id": player, "meta": {"country": "FI", "device": "ios"}})
}

impl TestStack {
    pub async fn start() -> TestStack {
        Self::start_with(|_| {}).await
    }

    /// Start with options adjusted by `tune` (wrappers, visibility...).
    pub async fn start_with(tune: impl FnOnce(&mut LocalOptions)) -> TestStack {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = LocalOptions::new(dir.path());
        opts.visibility = Duration::from_millis(300);
        opts.pollers = 2;
        tune(&mut opts);
        let stack = local::start(opts).await.unwrap();
        TestStack {
            stack,
            http: payloop::psp::https::local_client().unwrap(),
            _dir: dir,
            payments: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.stack.base_url, path)
    }

    /// Send any request and keep status, headers and body.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Resp {
            status,
            headers,
            text: r.text().await.unwrap(),
        }
    }

    /// `POST /v1/payments/init` with the dev client key.
    pub async fn init(&self, key: Option<&str>, body: &str) -> Resp {
        let mut req = self
            .http
            .post(self.url("/v1/payments/init"))
            .bearer_auth(&self.stack.secrets.client_key)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = self.send(req).await;
        if resp.status == 201 {
            self.payments
                .lock()
                .unwrap()
                .push(resp.json()["payment_id"].as_str().unwrap().to_owned());
        }
        resp
    }

    /// Create a deposit intent and return its payment id.
    pub async fn deposit(&self, player: &str, amount: &str) -> String {
        let key = payloop::ids::new_ulid("k");
        let r = self
            .init(Some(&key), &deposit_body(player, amount).to_string())
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["payment_id"].as_str().unwrap().to_owned()
    }

    pub fn event(
        &self,
        event_id: &str,
        payment_id: &str,
        status: &str,
        amount: &str,
        ts: i64,
    ) -> String {
        json!({"event_id": event_id, "payment_id": payment_id, "status": status, "amount": amount,
               "currency": "EUR", "timestamp": ts})
        .to_string()
    }

    /// POST a webhook body signed with `secret` (the sandbox secret if None).
    pub async fn webhook_signed(&self, body: &str, secret: Option<&str>) -> Resp {
        let secret = secret.unwrap_or(&self.stack.secrets.webhook_secret);
        let req = self
            .http
            .post(self.url("/v1/payments/webhook"))
            .header("x-signature", seed_signature(secret, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body.to_owned());
        self.send(req).await
    }

    /// POST a body signed under `scheme` with the sandbox secret, dated `ts_s`.
    pub async fn webhook_scheme(
        &self,
        scheme: payloop::psp::signature::Scheme,
        body: &str,
        ts_s: i64,
    ) -> Resp {
        let msg_id = payloop::ids::new_ulid("msg");
        let signed = payloop::psp::signature::sign(
            scheme,
            &self.stack.secrets.webhook_secret,
            body.as_bytes(),
            ts_s,
            &msg_id,
        );
        let mut req = self
            .http
            .post(self.url("/v1/payments/webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in signed {
            req = req.header(name, value);
        }
        self.send(req).await
    }

    pub async fn webhook(
        &self,
        event_id: &str,
        payment_id: &str,
        status: &str,
        amount: &str,
    ) -> Resp {
        let body = self.event(
            event_id,
            payment_id,
            status,
            amount,
            payloop::clock::now_s(),
        );
        self.webhook_signed(&body, None).await
    }

    pub async fn get(&self, path: &str, platform: bool) -> Resp {
        let key = if platform {
            &self.stack.secrets.platform_key
        } else {
            &self.stack.secrets.client_key
        };
        self.send(self.http.get(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn post_platform(&self, path: &str, key: Option<&str>, body: &str) -> Resp {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.stack.secrets.platform_key)
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        self.send(req).await
    }

    /// Set the player's KYC level (an operator's call), which must answer 200.
    pub async fn set_kyc(&self, player: &str, level: &str) {
        let r = self
            .put_platform(
                &format!("/v1/admin/players/{player}/kyc"),
                json!({ "kyc_level": level }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    /// Play `amount` through in one round (a bet, then its win back), so the
    /// player's deposits count as wagered; each call must answer 200.
    pub async fn wager(&self, player: &str, round: &str, amount: &str) {
        for (path, txn) in [("/v1/wallet/debit", "bet"), ("/v1/wallet/credit", "win")] {
            let id = format!("{player}-{round}-{txn}");
            let body = json!({"player_id": player, "round_id": format!("{player}-{round}"), "txn_id": id,
                              "amount": amount, "currency": "EUR", "idempotency_key": id});
            let r = self.post_platform(path, None, &body.to_string()).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    /// `GET /v1/payouts/{id}` (client key), which must answer 200.
    pub async fn payout_view(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/payouts/{id}"), false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// Wait until the payout reaches `status`.
    pub async fn wait_payout(&self, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = self.payout_view(id).await;
            if p["status"] == status {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "payout {id} stuck: {p}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// The player's first balance: (available, held) as decimals.
    pub async fn balances(&self, player: &str) -> (String, String) {
        let w = self.get(&format!("/v1/wallet/{player}"), true).await.json();
        let b = &w["balances"][0];
        (
            b["available"].as_str().unwrap().to_owned(),
            b["held"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn payment(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/payments/{id}"), false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// Wait until the payment reaches `status`; for `captured`, until its
    /// credit is in the wallet too (the payment moves first, the credit
    /// follows: a test that waited for the move alone could see the balance
    /// before the credit).
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = self.payment(id).await;
            let settled = status != "captured" || p["credited_txn_id"].is_string();
            if p["status"] == status && settled {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "payment {id} stuck in {}",
                p["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The barrier for "and nothing else happens": wait until the sandbox
    /// PSPs have no webhook delivery in flight (retries and chaos duplicates
    /// included), every event queued has been applied (or dead-lettered), no
    /// failed message waits for redelivery and the consumer is idle. Use it
    /// instead of sleeping before asserting that a duplicate, late or
    /// mismatching message changed nothing.
    pub async fn wait_idle(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loop did not go quiet within {WAIT:?}"
            );
            let scheduled = self.sandbox_deliveries_settled(deadline).await;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                self.stack.activity.drained(left).await,
                "the events queue did not drain within {WAIT:?}"
            );
            // Quiet only if applying those events scheduled no new webhook.
            if self.sandbox_deliveries_settled(deadline).await == scheduled {
                return;
            }
        }
    }

    /// Wait (polling, until `deadline`) for no sandbox delivery in flight;
    /// returns how many were ever scheduled.
    async fn sandbox_deliveries_settled(&self, deadline: tokio::time::Instant) -> u64 {
        loop {
            let (scheduled, in_flight) = self
                .stack
                .sandboxes
                .iter()
                .map(|s| s.state.deliveries.in_flight())
                .fold((0, 0), |(a, b), (s, f)| (a + s, b + f));
            if in_flight == 0 {
                return scheduled;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{in_flight} sandbox webhook deliveries still in flight after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Available balance (minor units) of a player's EUR wallet.
    /// Wait until the payment's credit is in the wallet: its view names the
    /// ledger entry only once that exists.
    pub async fn wait_credited(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = self.payment(id).await;
            if p["credited_txn_id"].is_string() {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "payment {id} never credited: {p}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn balance_minor(&self, player: &str) -> i64 {
        let w = self.get(&format!("/v1/wallet/{player}"), true).await;
        assert_eq!(w.status, 200, "{}", w.text);
        let bal = w.json()["balances"].as_array().cloned().unwrap_or_default();
        bal.iter()
            .filter(|b| b["currency"] == "EUR")
            .map(|b| minor(b["available"].as_str().unwrap()))
            .sum()
    }

    /// The ledger invariant: for every player, wallet balance = sum of the
    /// credited captured deposits, and one ledger entry per captured deposit.
    pub async fn assert_ledger_invariant(&self) {
        let ids = self.payments.lock().unwrap().clone();
        let mut expected: BTreeMap<String, (i64, usize)> = BTreeMap::new();
        for id in &ids {
            let p = self.payment(id).await;
            let e = expected
                .entry(p["player_id"].as_str().unwrap().to_owned())
                .or_default();
            if p["status"] == "captured" {
                assert!(
                    p["credited_txn_id"].as_str().is_some(),
                    "captured without credit: {p}"
                );
                e.0 += minor(p["amount"].as_str().unwrap());
                e.1 += 1;
            } else {
                assert!(
                    p["credited_txn_id"].is_null(),
                    "credited but not captured: {p}"
                );
            }
        }
        for (player, (sum, count)) in expected {
            let w = self.get(&format!("/v1/wallet/{player}"), true).await.json();
            let entries = w["entries"].as_array().unwrap();
            assert_eq!(
                self.balance_minor(&player).await,
                sum,
                "balance of {player}"
            );
            let deposits = entries
                .iter()
                .filter(|e| e["kind"] == "credit" && e["reason"] == "deposit")
                .count();
            assert_eq!(
                deposits,
                count.min(entries.len()),
                "ledger entries of {player}"
            );
            assert!(self.balance_minor(&player).await >= 0, "negative balance");
            assert_wallet_audits(&self.stack.ctx, &player).await;
        }
    }

    /// Start with the store wrapped in a [`faults::FaultyStore`].
    pub async fn with_faulty_store(
        tune: impl FnOnce(&mut LocalOptions),
    ) -> (TestStack, Arc<faults::FaultyStore>) {
        let slot: Arc<std::sync::OnceLock<Arc<faults::FaultyStore>>> = Arc::default();
        let fill = Arc::clone(&slot);
        let t = Self::start_with(move |o| {
            tune(o);
            o.wrap_store = Some(Box::new(move |inner| {
                let s = Arc::new(faults::FaultyStore::new(inner));
                let _ = fill.set(Arc::clone(&s));
                s as Arc<dyn payloop::store::Store>
            }))
        })
        .await;
        let store = Arc::clone(slot.get().unwrap());
        (t, store)
    }

    /// Start with the queue wrapped in a [`faults::FaultyQueue`].
    pub async fn with_faulty_queue(
        tune: impl FnOnce(&mut LocalOptions),
    ) -> (TestStack, Arc<faults::FaultyQueue>) {
        let slot: Arc<std::sync::OnceLock<Arc<faults::FaultyQueue>>> = Arc::default();
        let fill = Arc::clone(&slot);
        let t = Self::start_with(move |o| {
            tune(o);
            o.wrap_queue = Some(Box::new(move |inner| {
                let q = Arc::new(faults::FaultyQueue::new(inner));
                let _ = fill.set(Arc::clone(&q));
                q as Arc<dyn payloop::queue::Queue>
            }))
        })
        .await;
        let queue = Arc::clone(slot.get().unwrap());
        (t, queue)
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
    }

    /// Play the player on the PSP's hosted checkout: open the page, then
    /// `approve` (through the 3-D Secure code), `decline` or `abandon`.
    /// Returns the result page.
    pub async fn checkout(&self, payment_id: &str, action: &str) -> String {
        let p = self.payment(payment_id).await;
        let page = p["redirect_url"].as_str().unwrap().to_owned();
        let get = |url: String| async move {
            let r = self.http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        };
        let first = get(page.clone()).await;
        assert!(first.contains("id=\"pay\""), "{first}");
        if action != "abandon" {
            let challenge = get(format!("{page}/3ds")).await;
            assert!(challenge.contains("id=\"otp\""), "{challenge}");
        }
        let r = self
            .http
            .post(format!("{page}/{action}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("otp=1234")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// POST one checkout action with a form body; returns the page.
    pub async fn checkout_page_post(&self, payment_id: &str, action: &str, form: &str) -> String {
        let p = self.payment(payment_id).await;
        let page = p["redirect_url"].as_str().unwrap();
        let r = self
            .http
            .post(format!("{page}/{action}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    /// Approve a payment on its checkout and wait for the credit.
    pub async fn approve(&self, payment_id: &str) -> Value {
        let done = self.checkout(payment_id, "approve").await;
        assert!(done.contains("Payment captured"), "{done}");
        self.wait_status(payment_id, "captured").await
    }

    /// The bank takes a captured deposit back: the `sandbox` PSP's admin
    /// chargeback; waits until the payment is charged back.
    pub async fn charge_back(&self, payment_id: &str) {
        let p = self.payment(payment_id).await;
        let s = self.stack.sandbox("sandbox").unwrap();
        let r = self
            .http
            .post(format!("{}/admin/chargebacks", s.base_url))
            .bearer_auth(&self.stack.secrets.psp_api_key)
            .json(&json!({"reference": p["psp_reference"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        self.wait_status(payment_id, "charged_back").await;
    }

    /// Set a sandbox PSP's chaos knobs (`POST /admin/chaos`).
    pub async fn chaos(&self, psp: &str, knobs: Value) -> Resp {
        let sandbox = self.stack.sandbox(psp).unwrap();
        let req = self
            .http
            .post(format!("{}/admin/chaos", sandbox.base_url))
            .bearer_auth(&self.stack.secrets.psp_api_key)
            .json(&knobs);
        self.send(req).await
    }

    pub async fn set_outage(&self, psp: &str, down: bool) {
        let r = self.chaos(psp, json!({ "outage": down })).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    /// `PUT` a platform admin endpoint.
    pub async fn put_platform(&self, path: &str, body: Value) -> Resp {
        let req = self
            .http
            .put(self.url(path))
            .bearer_auth(&self.stack.secrets.platform_key)
            .json(&body);
        self.send(req).await
    }
}

/// Where the AWS-wire server (moto) of the DynamoDB/SQS suites listens.
pub const AWS_ENDPOINT_ENV: &str = "PAYLOOP_TEST_AWS_ENDPOINT";
/// Set by the test command: a missing AWS endpoint fails instead of skipping.
pub const REQUIRE_AWS_ENV: &str = "PAYLOOP_REQUIRE_AWS";

/// The AWS test endpoint, or `None` after printing why `test` is skipped.
/// Under the test command (`PAYLOOP_REQUIRE_AWS` set) a missing endpoint
/// fails the test: the adapter suites must never pass by not running.
pub fn aws_endpoint(test: &str) -> Option<String> {
    use std::io::Write as _;
    if let Ok(endpoint) = std::env::var(AWS_ENDPOINT_ENV) {
        return Some(endpoint);
    }
    assert!(
        std::env::var_os(REQUIRE_AWS_ENV).is_none(),
        "{test}: {AWS_ENDPOINT_ENV} is not set but {REQUIRE_AWS_ENV} requires the DynamoDB/SQS \
         suites to run (scripts/test.sh starts moto and sets it)"
    );
    // Straight to stderr: the harness hides eprintln! output of a passing
    // test, and a skip must never be silent.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {AWS_ENDPOINT_ENV} is not set; run `scripts/moto.sh start` and set \
         {AWS_ENDPOINT_ENV}=http://127.0.0.1:5005 to test the DynamoDB/SQS adapters"
    );
    None
}

/// The whole ledger of `player` read back: balance = sum of entries, the
/// balances-after chain unbroken, held ≥ 0.
pub async fn assert_wallet_audits(ctx: &payloop::domain::Ctx, player: &str) {
    let player = payloop::ids::PlayerId::parse(player).unwrap();
    let audit = payloop::domain::wallet::ledger::audit(ctx, &player)
        .await
        .unwrap();
    assert!(
        audit.holds(),
        "wallet of {player} does not audit: {audit:?}"
    );
}

/// "12.34" → 1234 (EUR test amounts only).
pub fn minor(decimal: &str) -> i64 {
    let (w, f) = decimal.split_once('.').unwrap();
    w.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

/// A handler-level context on embedded adapters in `dir` (or on `store`):
/// fixture API keys, one `sandbox` PSP with the seed signature scheme.
pub fn fixture_ctx(
    dir: &std::path::Path,
    store: Option<Arc<dyn payloop::store::Store>>,
    lease_ms: i64,
) -> payloop::domain::Ctx {
    use payloop::config::{Config, KeyRing, WebhookSecrets};
    use payloop::store::embedded::EmbeddedStore;
    let store =
        store.unwrap_or_else(|| Arc::new(EmbeddedStore::open(&dir.join("store.wal")).unwrap()));
    let qstore = Arc::new(EmbeddedStore::open(&dir.join("queue.wal")).unwrap());
    let sandbox = payloop::ids::PspId::parse("sandbox").unwrap();
    payloop::domain::Ctx {
        store,
        queue: Arc::new(payloop::queue::embedded::EmbeddedQueue::new(qstore)),
        config: Arc::new(Config {
            client_keys: KeyRing::parse("fixture:fixture-client-key-0123456789").unwrap(),
            platform_keys: KeyRing::parse("ops:fixture-platform-key-0123456789").unwrap(),
            webhook_secrets: WebhookSecrets::parse("sandbox:fixture-webhook-secret-0123").unwrap(),
            public_url: "https://pay.example".into(),
            default_psp: sandbox.clone(),
            idempotency_ttl_s: 86_400,
            idempotency_lease_ms: lease_ms,
            webhook_tolerance_s: 300,
            wagering_multiple: 1,
        }),
        policies: Arc::default(),
        psps: Arc::new(
            payloop::psp::Psps::new(
                vec![Arc::new(FixturePsp::new(sandbox.clone()))],
                payloop::psp::routing::Router::in_order(&[sandbox]),
            )
            .unwrap(),
        ),
        clock: Arc::new(payloop::clock::SystemClock),
    }
}

/// A PSP for handler-level tests that need no network: sessions point at
/// `https://pay.example/checkout/<reference>`; webhooks are verified with
/// the fixture secret under the seed scheme. Payouts, refunds, status and
/// settlement are not used by those tests and say so.
pub struct FixturePsp {
    id: payloop::ids::PspId,
    webhook: payloop::psp::WebhookKeys,
}

impl FixturePsp {
    pub fn new(id: payloop::ids::PspId) -> FixturePsp {
        FixturePsp {
            id,
            webhook: payloop::psp::WebhookKeys {
                scheme: payloop::psp::signature::Scheme::Seed,
                secrets: vec![payloop::config::Secret::new("fixture-webhook-secret-0123")],
            },
        }
    }
}

#[async_trait::async_trait]
impl payloop::psp::PspConnector for FixturePsp {
    fn id(&self) -> &payloop::ids::PspId {
        &self.id
    }
    async fn create_session(
        &self,
        req: &payloop::psp::SessionRequest<'_>,
    ) -> Result<payloop::psp::Session, payloop::psp::PspError> {
        let reference = format!("fx_{}", req.payment_id);
        Ok(payloop::psp::Session {
            redirect_url: format!("https://pay.example/checkout/{reference}"),
            reference,
        })
    }
    async fn start_payout(
        &self,
        _: &payloop::psp::PayoutRequest<'_>,
    ) -> Result<payloop::psp::Operation, payloop::psp::PspError> {
        Err(unused())
    }
    async fn start_refund(
        &self,
        _: &payloop::psp::RefundRequest<'_>,
    ) -> Result<payloop::psp::Operation, payloop::psp::PspError> {
        Err(unused())
    }
    async fn payment_status(
        &self,
        _: &str,
    ) -> Result<payloop::psp::RemoteStatus, payloop::psp::PspError> {
        Err(unused())
    }
    async fn payout_status(
        &self,
        _: &str,
    ) -> Result<payloop::psp::Operation, payloop::psp::PspError> {
        Err(unused())
    }
    async fn refund_status(
        &self,
        _: &str,
    ) -> Result<payloop::psp::Operation, payloop::psp::PspError> {
        Err(unused())
    }
    async fn settlement_report(
        &self,
        _: payloop::clock::Day,
    ) -> Result<Box<dyn payloop::psp::ReportChunks>, payloop::psp::PspError> {
        Err(unused())
    }
    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        raw: &[u8],
        window: payloop::psp::signature::Window,
    ) -> Result<payloop::psp::signature::Verified, payloop::psp::signature::Rejection> {
        self.webhook.verify(headers, raw, window)
    }
    fn normalise_webhook(
        &self,
        raw: &[u8],
        signed_at_s: Option<i64>,
    ) -> Result<payloop::psp::event::Inbound, payloop::Error> {
        payloop::psp::wire::parse_inbound(&self.id, raw, signed_at_s)
    }
}

fn unused() -> payloop::psp::PspError {
    payloop::psp::PspError::Rejected("the fixture PSP only opens sessions".into())
}

/// Store a pending EUR deposit intent (sandbox PSP) and return it.
pub async fn seed_pending_payment(
    ctx: &payloop::domain::Ctx,
    id: payloop::ids::PaymentId,
    player: &str,
    minor: i64,
) -> payloop::domain::deposits::payment::Payment {
    seed_pending_payment_at(ctx, id, player, minor, "sandbox").await
}

/// A pending EUR card payment of `player` at `psp`, stored as an intent is.
pub async fn seed_pending_payment_at(
    ctx: &payloop::domain::Ctx,
    id: payloop::ids::PaymentId,
    player: &str,
    minor: i64,
    psp: &str,
) -> payloop::domain::deposits::payment::Payment {
    use payloop::money::{Currency, Money};
    let payment = payloop::domain::deposits::payment::Payment {
        id,
        player: payloop::ids::PlayerId::parse(player).unwrap(),
        amount: Money::from_minor(minor, Currency::parse("EUR").unwrap()).unwrap(),
        method: "card".into(),
        psp: payloop::ids::PspId::parse(psp).unwrap(),
        status: payloop::domain::deposits::payment::PaymentStatus::Pending,
        return_url: "https://shop.example/return".into(),
        country: None,
        device: None,
        created_ms: 0,
        credited_txn: None,
        history: vec![],
    };
    let put = payloop::store::Write::Put {
        item: payment.to_item(),
        cond: None,
    };
    ctx.store.write(put).await.unwrap();
    payment
}

/// Every classification a reconciliation run reports, line by line and
/// record by record.
#[derive(Default)]
pub struct Seen {
    pub lines: Vec<(u64, payloop::domain::recon::Class)>,
    pub records: Vec<(String, payloop::domain::recon::Class)>,
}

impl payloop::domain::recon::run::Observer for Seen {
    fn line(&mut self, line: u64, _key: &str, class: payloop::domain::recon::Class) {
        self.lines.push((line, class));
    }
    fn record(&mut self, key: &str, class: payloop::domain::recon::Class) {
        self.records.push((key.to_owned(), class));
    }
}
