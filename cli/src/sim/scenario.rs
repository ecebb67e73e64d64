//! A seeded scenario: clients, the PSP, the queue's event source mapping,
//! the sweep's schedule and an operator act in an order drawn from the seed,
//! while the fault layer fails, crashes or times out one port call of some
//! invocations. Then faults stop, everything is let settle, the day is
//! reconciled, and the invariants are checked.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use payloop::money::{format_minor, Currency};
use payloop::queue::QueueName;
use payloop::store::ItemExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::faults::Plan;
use super::psp::{ChargeStatus, SIM_PSP};
use super::world::{Heard, Tally, World, CLIENT_KEY, PLATFORM_KEY};

type Boxed = Box<dyn std::error::Error + Send + Sync>;

/// Retries after which a client gives a request up.
pub const MAX_ATTEMPTS: u32 = 60;
/// Rounds of the settling phase (each moves the clock 2 minutes).
const SETTLE_ROUNDS: usize = 40;
const VISIBILITY: Duration = Duration::from_secs(30);
const PLAYERS: usize = 3;
/// The deposit limits scenarios start with.
pub const LIMITS: [(&str, &str); 2] = [
    ("player-1", r#"{"currency": "EUR", "day": "150.00"}"#),
    ("player-2", r#"{"currency": "EUR", "week": "250.00"}"#),
];
/// The player who excludes themselves at some point of a scenario.
pub const EXCLUDED: &str = "player-3";

#[derive(Debug, Clone)]
pub struct Options {
    /// Client flows started per scenario.
    pub flows: usize,
    /// Steps of the faulty phase.
    pub steps: usize,
    /// Share of invocations given a fault, in percent.
    pub fault_pct: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flows: 24,
            steps: 240,
            fault_pct: 35,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    Deposit {
        player: String,
    },
    Payout {
        player: String,
    },
    Refund {
        payment_id: String,
    },
    Bet {
        player: String,
        round: String,
        minor: i64,
    },
    Win {
        player: String,
        minor: i64,
    },
    Rollback {
        player: String,
        round: String,
    },
}

/// Who sends an invocation: a client (its request's index) or the PSP (the
/// outbox item's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client(usize),
    Psp(u64),
}

/// One HTTP invocation, ready to send.
#[derive(Debug, Clone)]
pub struct Call {
    pub who: Caller,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// One client request and everything its sender heard.
#[derive(Debug, Clone)]
pub struct Req {
    pub flow: Flow,
    pub path: String,
    pub body: String,
    pub key: String,
    pub platform: bool,
    /// The first 2xx heard (status, body); every later answer must equal it.
    pub first_ok: Option<(u16, String)>,
    /// 2xx answers that were not replays: the work, done (at most one).
    pub fresh_oks: u32,
    /// The definitive status heard (2xx, or a 4xx not worth retrying).
    pub done: Option<u16>,
    pub attempts: u32,
}

#[derive(Debug, Clone)]
pub struct RoundState {
    pub player: String,
    pub bet_txn: String,
    pub bet_ok: bool,
    pub settled: bool,
}

pub struct Scenario {
    pub seed: u64,
    pub(super) rng: StdRng,
    pub world: World,
    pub reqs: Vec<Req>,
    pub players: Vec<String>,
    pub rounds: BTreeMap<String, RoundState>,
    /// Payment id → player, from the intents clients saw created.
    pub payments: BTreeMap<String, String>,
    /// Refund ids clients saw accepted (201).
    pub accepted_refunds: Vec<(String, String)>,
    /// When (scenario clock) `EXCLUDED` excluded themselves, if they did.
    pub excluded_at: Option<i64>,
    /// Review id → the operator's decision (approve?), once chosen.
    pub review_choices: BTreeMap<String, bool>,
    /// Reviews whose decision the operator heard answered 200.
    pub reviews_heard: std::collections::BTreeSet<String>,
    pub tally: Tally,
    pub violations: Vec<String>,
    opts: Options,
    next: u64,
}

/// `PAYLOOP_SIM_TRACE=1`: print every client request and webhook with what
/// it got back (replaying one seed).
pub fn trace() -> bool {
    std::env::var_os("PAYLOOP_SIM_TRACE").is_some()
}

pub fn eur() -> Currency {
    Currency::EUR
}

impl Scenario {
    pub async fn new(seed: u64, opts: Options) -> Result<Scenario, Boxed> {
        // Half the seeds require deposits to be wagered before a payout.
        let world = World::new(seed, (seed % 2) as i64)?;
        let players: Vec<String> = (1..=PLAYERS).map(|n| format!("player-{n}")).collect();
        for p in &players {
            let body = json!({"kyc_level": "basic"}).to_string();
            world
                .setup_put(&format!("/v1/admin/players/{p}/kyc"), &body)
                .await?;
        }
        // Deposit limits: player-1 by the day, player-2 by the week (the
        // deposits of a scenario pass them, so refusals and frees happen).
        for (p, limits) in LIMITS {
            world
                .setup_put(&format!("/v1/players/{p}/limits"), limits)
                .await?;
        }
        Ok(Scenario {
            seed,
            rng: StdRng::seed_from_u64(seed),
            world,
            reqs: Vec::new(),
            players,
            rounds: BTreeMap::new(),
            payments: BTreeMap::new(),
            accepted_refunds: Vec::new(),
            excluded_at: None,
            review_choices: BTreeMap::new(),
            reviews_heard: Default::default(),
            tally: Tally::default(),
            violations: Vec::new(),
            opts,
            next: 0,
        })
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}", self.next)
    }

    pub(super) fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// The fault plan of the next invocation, if it gets one.
    pub(super) fn plan(&mut self, faulty: bool) -> Option<Plan> {
        if !faulty || self.rng.random_range(0..100) >= self.opts.fault_pct {
            return None;
        }
        Some(Plan { per_mille: 150 })
    }

    pub(super) fn pick<T: Clone>(&mut self, from: &[T]) -> Option<T> {
        if from.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..from.len());
        from.get(i).cloned()
    }

    fn amount(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi.max(lo))
    }

    /// Run the scenario: the faulty phase, settling, reconciliation, checks.
    pub async fn run(mut self) -> Result<Scenario, Boxed> {
        let mut started = 0;
        for _ in 0..self.opts.steps {
            self.tally.steps += 1;
            let rate = 100 * self.opts.flows / self.opts.steps.max(1);
            let start_new =
                started < self.opts.flows && self.rng.random_range(0..100) < rate.max(1) as u32;
            if start_new {
                started += 1;
                self.new_flow().await;
            } else {
                self.act(true).await;
            }
        }
        self.settle(SETTLE_ROUNDS).await;
        // The day is reconciled (healing captures whose webhooks were
        // lost), then whatever waited on those captures settles too.
        self.reconcile(false).await?;
        self.settle(SETTLE_ROUNDS / 4).await;
        // Re-run, as the next night would: now everything must match but
        // the healed captures.
        self.reconcile(true).await?;
        super::check::all(&mut self).await;
        Ok(self)
    }

    /// One step of an actor other than a new client flow.
    async fn act(&mut self, faulty: bool) {
        let action = match self.rng.random_range(0..100) {
            0..=2 => "client_read",
            3..=17 => "client_retry",
            18..=21 => "client_duplicate",
            22..=31 => "checkout",
            32..=39 => "psp_settles",
            40..=41 => "chargeback",
            42..=61 => "webhook",
            62..=77 => "consumer",
            78..=84 => "sweep",
            85..=86 => "redrive",
            87 if self.excluded_at.is_none() && self.rng.random_bool(0.3) => "exclude",
            87 => "degradation",
            88..=91 => "concurrent",
            92..=94 => "review",
            _ => "clock",
        };
        *self.tally.by_action.entry(action).or_default() += 1;
        match action {
            "client_read" => self.client_read(faulty).await,
            "client_retry" => self.client_retry(faulty).await,
            "client_duplicate" => self.client_duplicate(faulty).await,
            "checkout" => self.checkout(),
            "psp_settles" => self.psp_settles(),
            "chargeback" => self.chargeback(),
            "webhook" => self.deliver_webhook(faulty).await,
            "consumer" => self.consume(faulty).await,
            "sweep" => self.sweep(faulty).await,
            "redrive" => self.redrive().await,
            "concurrent" => self.concurrently().await,
            "exclude" => self.exclude().await,
            "review" => self.review(faulty).await,
            "degradation" => {
                let on = self.rng.random_bool(0.5);
                self.degrade(on).await
            }
            _ => self.advance_clock(),
        }
    }

    // ---- clients ----

    async fn new_flow(&mut self) {
        let player = self.pick(&self.players.clone()).unwrap_or_default();
        if let Some(i) = self.new_request(&player).await {
            self.send(i, true).await;
        }
    }

    /// A new client request of `player` (not sent yet).
    async fn new_request(&mut self, player: &str) -> Option<usize> {
        let player = player.to_owned();
        let flow = match self.rng.random_range(0..100) {
            0..=29 => Some(self.deposit(&player)),
            30..=49 => Some(self.bet(&player).await),
            50..=61 => self.win(),
            62..=67 => self.rollback(),
            68..=83 => Some(self.payout(&player).await),
            _ => self.refund().await,
        };
        if flow.is_some() {
            *self.tally.by_action.entry("client_new").or_default() += 1;
        }
        flow
    }

    fn push(&mut self, flow: Flow, path: String, body: Value, platform: bool) -> usize {
        let key = self.fresh("key");
        self.reqs.push(Req {
            flow,
            path,
            body: body.to_string(),
            key,
            platform,
            first_ok: None,
            fresh_oks: 0,
            done: None,
            attempts: 0,
        });
        self.reqs.len() - 1
    }

    fn deposit(&mut self, player: &str) -> usize {
        let minor = self.amount(500, 10_000);
        let body = json!({"amount": format_minor(minor, eur()), "currency": "EUR", "method": "card",
                          "return_url": "https://shop.sim/back", "player_id": player});
        let flow = Flow::Deposit {
            player: player.into(),
        };
        self.push(flow, "/v1/payments/init".into(), body, false)
    }

    async fn bet(&mut self, player: &str) -> usize {
        let seen = self.available(player).await;
        let minor = self.amount(100, (seen / 2).clamp(200, 5_000));
        let round = self.fresh("round");
        let txn = self.fresh("bet");
        self.rounds.insert(
            round.clone(),
            RoundState {
                player: player.into(),
                bet_txn: txn.clone(),
                bet_ok: false,
                settled: false,
            },
        );
        let body = json!({"player_id": player, "round_id": round, "txn_id": txn,
                          "amount": format_minor(minor, eur()), "currency": "EUR"});
        let flow = Flow::Bet {
            player: player.into(),
            round,
            minor,
        };
        self.push(flow, "/v1/wallet/debit".into(), body, true)
    }

    fn open_round(&mut self) -> Option<(String, RoundState)> {
        let open: Vec<(String, RoundState)> = self
            .rounds
            .iter()
            .filter(|(_, r)| r.bet_ok && !r.settled)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let (round, state) = self.pick(&open)?;
        if let Some(r) = self.rounds.get_mut(&round) {
            r.settled = true;
        }
        Some((round, state))
    }

    fn win(&mut self) -> Option<usize> {
        let (round, state) = self.open_round()?;
        let minor = self.amount(1, 6_000);
        let txn = self.fresh("win");
        let body = json!({"player_id": state.player, "round_id": round, "txn_id": txn,
                          "amount": format_minor(minor, eur()), "currency": "EUR"});
        let flow = Flow::Win {
            player: state.player.clone(),
            minor,
        };
        Some(self.push(flow, "/v1/wallet/credit".into(), body, true))
    }

    fn rollback(&mut self) -> Option<usize> {
        let (round, state) = self.open_round()?;
        let body = json!({"player_id": state.player, "round_id": round, "txn_id": state.bet_txn});
        let flow = Flow::Rollback {
            player: state.player.clone(),
            round,
        };
        Some(self.push(flow, "/v1/wallet/rollback".into(), body, true))
    }

    /// What the player's wallet shows available now (players spend and
    /// withdraw what they see).
    async fn available(&self, player: &str) -> i64 {
        let Ok(id) = payloop::ids::PlayerId::parse(player) else {
            return 0;
        };
        let key = payloop::schema::keys::balance(&id, eur());
        match self.world.raw.store.get(&key).await {
            Ok(Some(b)) => b.int_attr("available").unwrap_or(0),
            _ => 0,
        }
    }

    async fn payout(&mut self, player: &str) -> usize {
        let seen = self.available(player).await;
        let minor = self.amount(100, seen.max(200));
        let mut body = json!({"player_id": player, "amount": format_minor(minor, eur()),
                              "currency": "EUR", "method": "card"});
        if self.rng.random_range(0..10) == 0 {
            body["destination_token"] = json!("tok_refuse");
        }
        let flow = Flow::Payout {
            player: player.into(),
        };
        self.push(flow, "/v1/payouts/init".into(), body, false)
    }

    /// An operator refunds (part of) a payment our API shows captured.
    async fn refund(&mut self) -> Option<usize> {
        let mut captured: Vec<(String, i64)> = Vec::new();
        for id in self.payments.keys() {
            let Ok(pid) = payloop::ids::PaymentId::parse(id) else {
                continue;
            };
            let it = self
                .world
                .raw
                .store
                .get(&payloop::schema::keys::payment(&pid))
                .await;
            if let Ok(Some(p)) = it {
                if p.str_attr("status") == Some("captured") {
                    captured.push((id.clone(), p.int_attr("amount").unwrap_or(0)));
                }
            }
        }
        let (payment_id, total) = self.pick(&captured)?;
        let minor = self.amount(1, total + total / 10);
        let body = json!({"amount": format_minor(minor, eur()), "reason": "sim"});
        let path = format!("/v1/payments/{payment_id}/refund");
        Some(self.push(Flow::Refund { payment_id }, path, body, true))
    }

    /// A client looks at a payout or a payment it created.
    async fn client_read(&mut self, faulty: bool) {
        let seen: Vec<String> = self
            .reqs
            .iter()
            .filter_map(|r| r.first_ok.as_ref())
            .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
            .filter_map(|v| {
                let payout = v["payout_id"]
                    .as_str()
                    .map(|id| format!("/v1/payouts/{id}"));
                payout.or_else(|| {
                    v["payment_id"]
                        .as_str()
                        .map(|id| format!("/v1/payments/{id}"))
                })
            })
            .collect();
        let Some(path) = self.pick(&seen) else {
            return;
        };
        let plan = self.plan(faulty);
        let auth = vec![("authorization", format!("Bearer {CLIENT_KEY}"))];
        self.tally.invocations += 1;
        let heard = self.world.http(plan, Method::GET, &path, &auth, "").await;
        if let Heard::Answer { status, body, .. } = heard {
            if let Some(text) = super::psp::REPLY_TEXTS.iter().find(|t| body.contains(*t)) {
                self.violation(format!(
                    "GET {path}: the PSP's own text {text:?} reached the client"
                ));
            }
            if status != 200 && status < 500 {
                self.violation(format!("GET {path}: {status} {body}"));
            }
        }
    }

    async fn client_retry(&mut self, faulty: bool) {
        let open: Vec<usize> = (0..self.reqs.len())
            .filter(|i| self.reqs[*i].done.is_none() && self.reqs[*i].attempts < MAX_ATTEMPTS)
            .collect();
        if let Some(i) = self.pick(&open) {
            self.send(i, faulty).await;
        }
    }

    async fn client_duplicate(&mut self, faulty: bool) {
        let ok: Vec<usize> = (0..self.reqs.len())
            .filter(|i| self.reqs[*i].first_ok.is_some())
            .collect();
        if let Some(i) = self.pick(&ok) {
            self.send(i, faulty).await;
        }
    }

    pub async fn send(&mut self, i: usize, faulty: bool) {
        let plan = self.plan(faulty);
        let Some(call) = self.client_call(i) else {
            return;
        };
        let heard = self.invoke(plan, &call).await;
        self.heard(&call, heard);
    }

    /// What a client makes of an answer: the idempotency promises checked.
    fn judge(&mut self, i: usize, status: u16, headers: &http::HeaderMap, body: String) {
        let replayed = headers.get("idempotent-replayed").is_some();
        let key = self.reqs[i].key.clone();
        if let Some(text) = super::psp::REPLY_TEXTS.iter().find(|t| body.contains(*t)) {
            self.violation(format!(
                "key {key}: the PSP's own text {text:?} reached the client: {body}"
            ));
        }
        if replayed && !(200..300).contains(&status) {
            self.violation(format!("key {key}: a {status} was replayed"));
        }
        let first = self.reqs[i].first_ok.clone();
        if (200..300).contains(&status) {
            if !replayed {
                // Work done for this key: once, ever (two concurrent sends
                // are judged in either order, so count rather than order).
                self.reqs[i].fresh_oks += 1;
                if self.reqs[i].fresh_oks > 1 {
                    self.violation(format!("key {key}: a second 2xx not served from the key"));
                }
            }
            match first {
                // Every 2xx of a key is the stored one, byte for byte.
                Some((s0, b0)) if (s0, b0.as_str()) != (status, body.as_str()) => {
                    let how = if replayed { "replayed" } else { "answered" };
                    self.violation(format!(
                        "key {key}: {how} {status} {body}, first 2xx was {s0} {b0}"
                    ))
                }
                Some(_) => {}
                None => {
                    self.reqs[i].first_ok = Some((status, body.clone()));
                    self.on_ok(i, &body);
                }
            }
            self.reqs[i].done = Some(status);
            return;
        }
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if parsed.get("error").is_none() || parsed.get("trace_id").is_none() {
            self.violation(format!(
                "key {key}: {status} without the error body: {body}"
            ));
        }
        let retryable = parsed["details"]["retryable"]
            .as_bool()
            .unwrap_or(status >= 500);
        match first {
            // A retry that meets an outage is told to retry: fine. A
            // definitive refusal of a request that already succeeded is not.
            Some((s0, _)) if !retryable => {
                self.violation(format!("key {key}: answered {status} after a {s0}"))
            }
            Some(_) => {}
            None if !retryable => self.reqs[i].done = Some(status),
            None => {}
        }
    }

    fn on_ok(&mut self, i: usize, body: &str) {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        match self.reqs[i].flow.clone() {
            Flow::Deposit { player } => {
                if let Some(id) = v["payment_id"].as_str() {
                    self.payments.insert(id.to_owned(), player);
                }
            }
            Flow::Refund { payment_id } => {
                if let Some(id) = v["refund_id"].as_str() {
                    self.accepted_refunds.push((payment_id, id.to_owned()));
                }
            }
            Flow::Bet { round, .. } => {
                if let Some(r) = self.rounds.get_mut(&round) {
                    r.bet_ok = true;
                }
            }
            _ => {}
        }
    }

    // ---- the PSP ----

    /// A player who was sent to the checkout (the client saw the redirect)
    /// pays, is declined or gives up.
    fn checkout(&mut self) {
        let known = &self.payments;
        let open = self
            .world
            .psp
            .charges_where(|c| c.status == ChargeStatus::Open && known.contains_key(&c.payment_id));
        let Some(reference) = self.pick(&open) else {
            return;
        };
        let outcome = match self.rng.random_range(0..100) {
            0..=74 => ChargeStatus::Captured,
            75..=89 => ChargeStatus::Failed,
            _ => ChargeStatus::Canceled,
        };
        let lose = self.rng.random_range(0..100) < 6;
        self.world.psp.checkout(&reference, outcome, lose);
    }

    fn psp_settles(&mut self) {
        let pending = self.world.psp.pending_ops();
        let Some(reference) = self.pick(&pending) else {
            return;
        };
        let succeed = self.rng.random_range(0..100) < 85;
        // Its outcome webhook lost for good: learnt from the status API.
        let lose = self.rng.random_range(0..100) < 10;
        self.world.psp.settle_op(&reference, succeed, lose);
    }

    fn chargeback(&mut self) {
        let captured = self
            .world
            .psp
            .charges_where(|c| c.status == ChargeStatus::Captured && !c.charged_back);
        if let Some(reference) = self.pick(&captured) {
            self.world.psp.charge_back(&reference);
        }
    }

    /// The PSP delivers one webhook from its outbox: any of them (out of
    /// order), sometimes one already acknowledged (a duplicate).
    pub async fn deliver_webhook(&mut self, faulty: bool) {
        let Some(call) = self.webhook_call(faulty) else {
            return;
        };
        let plan = self.plan(faulty);
        let heard = self.invoke(plan, &call).await;
        self.heard(&call, heard);
    }

    /// A delivery of the outbox item at `i`, signed now.
    fn webhook_call(&mut self, faulty: bool) -> Option<Call> {
        let candidates: Vec<u64> = self
            .world
            .psp
            .book()
            .map(|b| {
                b.outbox
                    .iter()
                    .enumerate()
                    .filter(|(i, o)| !o.acknowledged || !faulty || *i % 7 == 0)
                    .map(|(_, o)| o.id)
                    .collect()
            })
            .unwrap_or_default();
        let id = self.pick(&candidates)?;
        let out = self
            .world
            .psp
            .book()
            .and_then(|b| b.outbox.iter().find(|o| o.id == id).cloned())?;
        self.next += 1;
        let mut headers: Vec<(&'static str, String)> = self
            .world
            .psp
            .sign(&out.body, self.next)
            .into_iter()
            .collect();
        headers.push(("content-type", "application/json".to_owned()));
        Some(Call {
            who: Caller::Psp(id),
            method: Method::POST,
            path: format!("/v1/payments/webhook/{SIM_PSP}"),
            headers,
            body: out.body,
        })
    }

    /// The request `reqs[i]` as its client sends it.
    fn client_call(&self, i: usize) -> Option<Call> {
        let r = self.reqs.get(i)?;
        let auth = if r.platform { PLATFORM_KEY } else { CLIENT_KEY };
        Some(Call {
            who: Caller::Client(i),
            method: Method::POST,
            path: r.path.clone(),
            headers: vec![
                ("authorization", format!("Bearer {auth}")),
                ("idempotency-key", r.key.clone()),
                ("content-type", "application/json".to_owned()),
            ],
            body: r.body.clone(),
        })
    }

    async fn invoke(&mut self, plan: Option<Plan>, c: &Call) -> Heard {
        self.tally.invocations += 1;
        self.world
            .http(plan, c.method.clone(), &c.path, &c.headers, &c.body)
            .await
    }

    /// What the caller makes of what it heard.
    fn heard(&mut self, c: &Call, heard: Heard) {
        if trace() {
            let heard_as = match &heard {
                Heard::Answer {
                    status,
                    body,
                    headers,
                } => {
                    let replayed = if headers.contains_key("idempotent-replayed") {
                        " (replayed)"
                    } else {
                        ""
                    };
                    format!("{status}{replayed} {body}")
                }
                Heard::Lost => "lost".into(),
            };
            let key = c
                .headers
                .iter()
                .find(|(k, _)| *k == "idempotency-key")
                .map(|(_, v)| v.as_str())
                .unwrap_or("-");
            eprintln!(
                "[{}] {:?} {key} {} {} → {heard_as}",
                self.world.now_ms(),
                c.who,
                c.path,
                c.body
            );
        }
        match c.who {
            Caller::Client(i) => {
                self.reqs[i].attempts += 1;
                if let Heard::Answer {
                    status,
                    headers,
                    body,
                } = heard
                {
                    self.judge(i, status, &headers, body);
                }
            }
            Caller::Psp(id) => self.webhook_heard(id, &c.body, heard.status()),
        }
    }

    fn webhook_heard(&mut self, id: u64, body: &str, status: Option<u16>) {
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        // 404: the intent is not stored yet (its init is being retried); the
        // PSP retries. Any other 4xx means a delivery we wrongly refuse.
        if let Some(s) = status.filter(|s| !matches!(s, 200 | 404) && *s < 500) {
            self.violation(format!("webhook {body} answered {s}"));
        }
        if let Some(mut b) = self.world.psp.book() {
            let Some(i) = b.outbox.iter().position(|o| o.id == id) else {
                return;
            };
            let was_acked = b.outbox[i].acknowledged;
            b.outbox[i].attempts += 1;
            b.outbox[i].acknowledged |= ok;
            if ok && was_acked {
                b.outbox.remove(i);
            }
        }
    }

    /// Two invocations at once (Lambda runs requests concurrently): two
    /// clients, a client and its own retry, two deliveries of a webhook…
    /// Every port call may yield, in a seeded order, so their steps
    /// interleave differently per seed. No faults in these.
    async fn concurrently(&mut self) {
        if self.rng.random_range(0..100) < 45 {
            // Two new requests of one player: they race for one wallet.
            let player = self.pick(&self.players.clone()).unwrap_or_default();
            let (Some(i), Some(j)) = (
                self.new_request(&player).await,
                self.new_request(&player).await,
            ) else {
                return;
            };
            if let (Some(a), Some(b)) = (self.client_call(i), self.client_call(j)) {
                self.race(a, b).await;
            }
            return;
        }
        let Some(first) = self.any_call() else {
            return;
        };
        let second = if self.rng.random_range(0..100) < 35 {
            match first.who {
                Caller::Client(i) => self.client_call(i),
                Caller::Psp(_) => Some(first.clone()),
            }
        } else {
            self.any_call()
        };
        if let Some(second) = second {
            self.race(first, second).await;
        }
    }

    async fn race(&mut self, first: Call, second: Call) {
        self.tally.invocations += 2;
        self.world.faults.interleave(true);
        let w = &self.world;
        let (a, b) = tokio::join!(
            w.http(
                None,
                first.method.clone(),
                &first.path,
                &first.headers,
                &first.body
            ),
            w.http(
                None,
                second.method.clone(),
                &second.path,
                &second.headers,
                &second.body
            ),
        );
        self.world.faults.interleave(false);
        self.heard(&first, a);
        self.heard(&second, b);
    }

    /// A client request still open (or finished, again), or a webhook.
    fn any_call(&mut self) -> Option<Call> {
        if self.rng.random_bool(0.5) {
            if let Some(c) = self.webhook_call(false) {
                return Some(c);
            }
        }
        let candidates: Vec<usize> = (0..self.reqs.len())
            .filter(|i| self.reqs[*i].attempts < MAX_ATTEMPTS)
            .collect();
        let i = self.pick(&candidates)?;
        self.client_call(i)
    }

    // ---- infrastructure ----

    /// The event source mapping hands a batch to one consumer invocation;
    /// successes are deleted only if the invocation lived to report them.
    pub async fn consume(&mut self, faulty: bool) {
        let batch = match self
            .world
            .raw
            .queue
            .receive(QueueName::Events, 10, VISIBILITY, Duration::ZERO)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                self.violation(format!("queue receive failed: {e}"));
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        let plan = self.plan(faulty);
        self.tally.invocations += 1;
        self.world.faults.begin(plan);
        let mut ok = Vec::new();
        for m in &batch {
            if wallet_credit::process_message(&self.world.ctx, &m.id, &m.body)
                .await
                .is_ok()
            {
                ok.push(m.receipt.clone());
            }
        }
        if self.world.faults.end() {
            return;
        }
        for receipt in ok {
            let _ = self
                .world
                .raw
                .queue
                .delete(QueueName::Events, &receipt)
                .await;
        }
    }

    pub async fn sweep(&mut self, faulty: bool) {
        let plan = self.plan(faulty);
        self.tally.invocations += 1;
        self.world.faults.begin(plan);
        let _ = payloop::domain::sweep::run(&self.world.ctx, self.world.now_ms()).await;
        self.world.faults.end();
    }

    /// An operator replays the dead letters.
    pub async fn redrive(&mut self) {
        let q = self.world.raw.queue.as_ref();
        if let Err(e) =
            payloop::queue::redrive(q, QueueName::EventsDlq, QueueName::Events, 100).await
        {
            self.violation(format!("redrive failed: {e}"));
        }
    }

    /// An operator switches degradation mode (payouts wait, card deposits
    /// are refused retryable).
    /// `EXCLUDED` excludes themselves for 30 days (an operator's call).
    async fn exclude(&mut self) {
        let now = self.world.now_ms();
        let until = now + 30 * 86_400_000;
        let body = json!({ "until_ms": until }).to_string();
        let path = format!("/v1/players/{EXCLUDED}/self-exclusion");
        match self.world.setup_post(&path, &body).await {
            Ok(()) => self.excluded_at = Some(now),
            Err(e) => self.violation(format!("self-exclusion refused: {e}")),
        }
    }

    async fn degrade(&mut self, on: bool) {
        let body = json!({"degraded": on, "note": "sim"}).to_string();
        if let Err(e) = self.world.setup_put("/v1/admin/degradation", &body).await {
            self.violation(format!("degradation switch: {e}"));
        }
    }

    fn advance_clock(&mut self) {
        let ms = match self.rng.random_range(0..100) {
            0..=79 => self.rng.random_range(100..3_000),
            80..=94 => self.rng.random_range(10_000..120_000),
            _ => self.rng.random_range(300_000..1_200_000),
        };
        self.world.clock.advance_ms(ms);
    }

    // ---- settling ----

    /// Faults stop; every actor keeps going until nothing is left to do.
    async fn settle(&mut self, rounds: usize) {
        self.degrade(false).await;
        for round in 0..rounds {
            self.settle_reviews().await;
            let open: Vec<usize> = (0..self.reqs.len())
                .filter(|i| self.reqs[*i].done.is_none() && self.reqs[*i].attempts < MAX_ATTEMPTS)
                .collect();
            for i in open {
                self.send(i, false).await;
            }
            if round < rounds / 2 {
                for _ in 0..8 {
                    self.checkout();
                    self.psp_settles();
                }
            }
            for _ in 0..64 {
                self.deliver_webhook(false).await;
            }
            for _ in 0..16 {
                self.consume(false).await;
            }
            self.redrive().await;
            self.world.clock.advance_ms(120_000);
            self.sweep(false).await;
            for _ in 0..16 {
                self.consume(false).await;
            }
        }
    }

    async fn reconcile(&mut self, check: bool) -> Result<(), Boxed> {
        let psp = payloop::ids::PspId::parse(SIM_PSP)?;
        let mut quiet = payloop::domain::recon::run::Quiet;
        let report = payloop::domain::recon::run::reconcile_day(
            &self.world.raw,
            &psp,
            self.world.day,
            1,
            &payloop::domain::recon::run::Source::Psp,
            &mut quiet,
        )
        .await?;
        if check {
            super::check::recon_report(self, &report);
        }
        Ok(())
    }
}
