//! `payloop bench …` and `payloop dlq …`: operator and measurement commands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Subcommand;
use payloop::ids::PspId;
use payloop::money::{Currency, Money};
use payloop::psp::event::PspEvent;
use payloop::psp::routing::{RiskLevel, RouteRequest, Router};
use payloop::psp::signature::{self, Scheme};
use payloop::queue::Queue;
use payloop::store::metered::MeteredStore;
use payloop::store::Store;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::cpu::CpuTimes;
use crate::local::{self, LocalOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The players bench deposits are spread over.
const BENCH_PLAYERS: usize = 1000;

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Drive N full deposits (init → signed webhook → credited) over HTTP.
    Deposits {
        #[arg(long, default_value_t = 5000)]
        n: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Take the preferred PSP (`sandbox`) down when half the deposits are
        /// started, and report how many still complete (via failover).
        #[arg(long)]
        outage_at_half: bool,
        /// Give every bench player day, week and month deposit limits first
        /// (high enough never to refuse), so each deposit reserves against them.
        #[arg(long)]
        with_limits: bool,
        /// Decide every deposit by a casino-like rule set (amounts, two
        /// velocity windows, links, lists; never reviewing a bench deposit)
        /// instead of no rules.
        #[arg(long)]
        with_risk: bool,
        /// How many tasks consume the events queue (as `payloop serve`), 1–256.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        pollers: u16,
    },
    /// Time risk decisions as a deposit takes them (velocity windows read
    /// from the store, rules evaluated).
    Risk {
        #[arg(long, default_value_t = 20_000)]
        n: usize,
    },
    /// Time routing decisions (µs per decision) over a 24-route rule set.
    Routing {
        #[arg(long, default_value_t = 200_000)]
        n: usize,
    },
    /// Reconcile a generated report of N lines against its ledger export,
    /// with payloop's matcher, with DuckDB and with Polars; print lines/s,
    /// wall, peak RSS and the ratios.
    Recon {
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// Where the generated files go.
        #[arg(long, default_value = "target/bench-recon")]
        dir: std::path::PathBuf,
        /// Skip the DuckDB comparison.
        #[arg(long)]
        no_duckdb: bool,
        /// Skip the Polars comparison.
        #[arg(long)]
        no_polars: bool,
        /// Rounds, each running every engine once in turn (1–15); each
        /// engine's median wall time and largest peak RSS are compared.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=15))]
        runs: u8,
    },
    /// Deterministic simulation of every money flow with faults injected at
    /// every store, queue and PSP call; checks the money invariants after
    /// each seeded scenario and prints the seed of any violation.
    Simulate {
        /// How many seeds (scenarios), starting at `--first`.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        #[arg(long, default_value_t = 1)]
        first: u64,
        /// Replay exactly this seed (overrides --seeds/--first).
        #[arg(long)]
        seed: Option<u64>,
        /// Share of invocations given a fault, in percent.
        #[arg(long, default_value_t = 35)]
        fault_pct: u32,
    },
    /// (internal) The matcher process of `bench recon`.
    #[command(hide = true)]
    ReconWorker {
        #[arg(long)]
        report: std::path::PathBuf,
        #[arg(long)]
        ledger: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum DlqAction {
    /// Move dead letters back to the events queue.
    Replay {
        /// A running `payloop serve` (replays through its operator endpoint).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Platform key; defaults to the one in the data directory.
        #[arg(long, env = "PAYLOOP_PLATFORM_KEY")]
        platform_key: Option<String>,
        #[arg(long, env = "PAYLOOP_DATA_DIR", default_value = ".data")]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Replay directly on SQS (PAYLOOP_QUEUE_URL_EVENTS / _DLQ).
        #[arg(long)]
        aws: bool,
    },
}

/// DynamoDB + SQS for `serve --aws`: table and queues are created if missing.
pub async fn aws_backends() -> Result<(Arc<dyn Store>, Arc<dyn Queue>), BoxError> {
    let table = std::env::var("PAYLOOP_TABLE").unwrap_or_else(|_| "payloop-local".into());
    let prefix = std::env::var("PAYLOOP_QUEUE_PREFIX").unwrap_or_else(|_| "payloop-local".into());
    let store = payloop::store::dynamodb::DynamoStore::from_env(table).await;
    store.create_table_if_missing().await?;
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let queue =
        payloop::queue::sqs::ensure_queues(aws_sdk_sqs::Client::new(&conf), &prefix).await?;
    Ok((Arc::new(store), Arc::new(queue)))
}

pub async fn dlq(action: DlqAction) -> Result<(), BoxError> {
    let DlqAction::Replay {
        url,
        platform_key,
        data_dir,
        max,
        aws,
    } = action;
    if aws {
        let (_, queue) = payloop::runtime::aws_backends_from_env().await?;
        let moved = payloop::queue::redrive(
            queue.as_ref(),
            payloop::queue::QueueName::EventsDlq,
            payloop::queue::QueueName::Events,
            max,
        )
        .await?;
        println!("moved {moved} message(s) from the DLQ back to the events queue");
        return Ok(());
    }
    let key = match platform_key {
        Some(k) => k,
        None => local::DevSecrets::load_or_create(&data_dir)?.platform_key,
    };
    let resp = payloop::psp::https::local_client()?
        .post(format!("{url}/v1/ops/dlq/replay?max={max}"))
        .bearer_auth(key)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    println!("{status}: {body}");
    if !status.is_success() {
        return Err(format!("replay failed with {status}").into());
    }
    Ok(())
}

pub async fn run(what: BenchWhat) -> Result<(), BoxError> {
    match what {
        BenchWhat::Deposits {
            n,
            concurrency,
            outage_at_half,
            with_limits,
            with_risk,
            pollers,
        } => {
            let opts = (outage_at_half, with_limits, with_risk);
            bench_deposits(n, concurrency, usize::from(pollers), opts).await
        }
        BenchWhat::Routing { n } => bench_routing(n),
        BenchWhat::Risk { n } => crate::bench_risk::bench(n.max(1)).await,
        BenchWhat::Recon {
            lines,
            dir,
            no_duckdb,
            no_polars,
            runs,
        } => {
            let peers = crate::bench_recon::Peers {
                duckdb: !no_duckdb,
                polars: !no_polars,
            };
            crate::bench_recon::bench(lines, &dir, peers, usize::from(runs))
        }
        BenchWhat::ReconWorker { report, ledger } => crate::bench_recon::worker(&report, &ledger),
        BenchWhat::Simulate {
            seeds,
            first,
            seed,
            fault_pct,
        } => simulate(seeds, first, seed, fault_pct),
    }
}

fn simulate(seeds: u64, first: u64, seed: Option<u64>, fault_pct: u32) -> Result<(), BoxError> {
    let list: Vec<u64> = match seed {
        Some(s) => vec![s],
        None => (first..first.saturating_add(seeds)).collect(),
    };
    let opts = crate::sim::scenario::Options {
        fault_pct: fault_pct.min(100),
        ..Default::default()
    };
    let summary = crate::sim::run_many(list, opts)?;
    summary.print();
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} seed(s) violated an invariant", summary.failed.len()).into())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Shared {
    /// For setting up and the outage switch; deposits go over [`Conn`]s.
    client: reqwest::Client,
    addr: std::net::SocketAddr,
    base: String,
    client_key: String,
    secret: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    config: Arc<payloop::config::Config>,
    routed: Mutex<std::collections::BTreeMap<String, usize>>,
    next: AtomicUsize,
    n: usize,
}

/// A bench worker's own HTTP/1.1 connection to the server, kept alive for
/// all its deposits: hyper's client connection with no pool, no URL parsed
/// per request and bodies written as text, so the load generator takes
/// little of the two cores it shares with the server it measures.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: http::HeaderValue,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Result<Conn, BoxError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("bench connection closed: {e}");
            }
        });
        Ok(Conn {
            send,
            host: http::HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// POST `body` (JSON) to `path`; the status and the whole answer.
    async fn post(
        &mut self,
        path: &str,
        headers: impl IntoIterator<Item = (http::HeaderName, http::HeaderValue)>,
        body: String,
    ) -> Result<(u16, bytes::Bytes), BoxError> {
        use http_body_util::BodyExt;
        let mut req = http::Request::post(path)
            .header(http::header::HOST, self.host.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        req.headers_mut().extend(headers);
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let status = resp.status().as_u16();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }
}

fn header(name: &str, value: &str) -> Result<(http::HeaderName, http::HeaderValue), BoxError> {
    Ok((
        http::HeaderName::from_bytes(name.as_bytes())?,
        http::HeaderValue::from_str(value)?,
    ))
}

/// What the bench reads from an init's answer.
#[derive(serde::Deserialize)]
struct Created<'a> {
    #[serde(borrow)]
    payment_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    psp: std::borrow::Cow<'a, str>,
}

/// One deposit: init, signed captured webhook, wait for the credit.
async fn one_deposit(
    s: &Shared,
    conn: &mut Conn,
    i: usize,
) -> Result<(Duration, Duration), BoxError> {
    let t0 = Instant::now();
    // Bodies as text: every value is a plain ASCII token (no escaping).
    let init = format!(
        r#"{{"amount":"10.00","currency":"EUR","method":"card","return_url":"https://example.test/r","player_id":"bench-{}","meta":{{"country":"FI","device":"ios"}}}}"#,
        i % BENCH_PLAYERS
    );
    let headers = [
        header("authorization", &format!("Bearer {}", s.client_key))?,
        header("idempotency-key", &format!("bench-{i}"))?,
    ];
    let (status, answer) = conn.post("/v1/payments/init", headers, init).await?;
    if status != 201 {
        return Err(format!("init answered {status}").into());
    }
    let created: Created = serde_json::from_slice(&answer)?;
    let t1 = Instant::now();
    let (tx, rx) = oneshot::channel();
    s.waiting
        .lock()
        .map_err(|_| "poisoned")?
        .insert(created.payment_id.to_string(), tx);
    let body = format!(
        r#"{{"event_id":"evt-{i}","payment_id":"{}","status":"captured","amount":"10.00","currency":"EUR","timestamp":{}}}"#,
        created.payment_id,
        payloop::clock::now_s()
    );
    let psp = created.psp.as_ref();
    let scheme = PspId::parse(psp)
        .ok()
        .and_then(|p| s.config.webhook_secrets.for_psp(&p).map(|(sc, _)| sc))
        .unwrap_or(Scheme::Seed);
    let signed = signature::sign(
        scheme,
        &s.secret,
        body.as_bytes(),
        payloop::clock::now_s(),
        &format!("msg-{i}"),
    );
    let headers = signed
        .iter()
        .map(|(name, value)| header(name, value))
        .collect::<Result<Vec<_>, _>>()?;
    let path = format!("/v1/payments/webhook/{psp}");
    let (status, _) = conn.post(&path, headers, body).await?;
    s.routed
        .lock()
        .map_err(|_| "poisoned")?
        .entry(psp.to_owned())
        .and_modify(|c| *c += 1)
        .or_insert(1usize);
    if status != 200 {
        return Err(format!("webhook answered {status}").into());
    }
    let credited = tokio::time::timeout(Duration::from_secs(30), rx).await??;
    Ok((t1 - t0, credited - t1))
}

async fn bench_deposits(
    n: usize,
    concurrency: usize,
    pollers: usize,
    (outage_at_half, with_limits, with_risk): (bool, bool, bool),
) -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(payloop::ids::new_ulid("payloop-bench"));
    let meter: Arc<OnceLock<Arc<MeteredStore>>> = Arc::new(OnceLock::new());
    let m2 = Arc::clone(&meter);
    let mut opts = LocalOptions::new(&dir);
    opts.pollers = pollers;
    opts.wrap_store = Some(Box::new(move |inner| {
        let metered = Arc::new(MeteredStore::new(inner));
        let _ = m2.set(Arc::clone(&metered));
        metered as Arc<dyn Store>
    }));
    if with_risk {
        opts.risk = payloop::domain::risk::rules::RiskConfig::parse(crate::bench_risk::RULES)?;
    }
    // The client and the sandboxes each on their own runtime, its threads
    // named, so their CPU is counted apart from the server's.
    let client_rt = named_runtime(CLIENT_THREADS)?;
    let sandbox_rt = named_runtime(SANDBOX_THREADS)?;
    opts.sandbox_runtime = Some(sandbox_rt.handle().clone());
    let stack = local::start(opts).await?;
    let shared = Arc::new(Shared {
        client: payloop::psp::https::local_client_builder()?
            .pool_max_idle_per_host(concurrency)
            .build()?,
        addr: stack.addr,
        base: stack.base_url.clone(),
        client_key: stack.secrets.client_key.clone(),
        secret: stack.secrets.webhook_secret.clone(),
        waiting: Mutex::new(HashMap::new()),
        config: Arc::clone(&stack.ctx.config),
        routed: Mutex::new(std::collections::BTreeMap::new()),
        next: AtomicUsize::new(0),
        n,
    });
    if with_limits {
        set_bench_limits(&shared, &stack.secrets.platform_key).await?;
    }
    let before = meter
        .get()
        .map(|m| (m.write_units(), m.write_requests()))
        .unwrap_or((0, 0));
    let collector = spawn_collector(
        stack.applied.subscribe(),
        Arc::clone(&shared),
        &client_rt.handle(),
    );
    let cpu_before = CpuTimes::now(&[CLIENT_THREADS, SANDBOX_THREADS]);
    let started = Instant::now();
    if outage_at_half {
        let sandbox = stack
            .sandbox(local::SANDBOX_PSP)
            .map(|h| h.base_url.clone())
            .ok_or("no sandbox PSP")?;
        spawn_outage(
            Arc::clone(&shared),
            sandbox,
            stack.secrets.psp_api_key.clone(),
        );
    }
    let run = {
        let s = Arc::clone(&shared);
        client_rt
            .handle()
            .spawn(async move {
                run_deposits(&s, concurrency)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await??
    };
    let wall = started.elapsed();
    let cpu = CpuTimes::now(&[CLIENT_THREADS, SANDBOX_THREADS])
        .zip(cpu_before)
        .map(|(now, before)| now.since(&before));
    collector.abort();
    let units = meter
        .get()
        .map(|m| (m.write_units() - before.0, m.write_requests() - before.1))
        .unwrap_or((0, 0));
    if with_limits {
        println!("  with day, week and month deposit limits on every player");
    }
    if with_risk {
        println!("  with the bench risk rules deciding every deposit");
    }
    print_deposits(&shared, &run, concurrency, wall, units, outage_at_half);
    print_cpu(cpu.as_ref(), run.inits.len());
    stack.shutdown().await;
    drop((client_rt, sandbox_rt));
    let _ = std::fs::remove_dir_all(&dir);
    if run.errors > 0 {
        return Err(format!("{} deposits failed", run.errors).into());
    }
    Ok(())
}

/// Day, week and month limits for every bench player (never reached).
async fn set_bench_limits(s: &Shared, platform_key: &str) -> Result<(), BoxError> {
    let body = json!({"currency": "EUR", "day": "1000000.00", "week": "1000000.00", "month": "1000000.00"});
    for i in 0..BENCH_PLAYERS {
        let r = s
            .client
            .put(format!("{}/v1/players/bench-{i}/limits", s.base))
            .bearer_auth(platform_key)
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("setting limits: {}", r.status()).into());
        }
    }
    Ok(())
}

/// Marks each deposit's credit time as the wallet applies its event.
fn spawn_collector(
    mut applied: tokio::sync::broadcast::Receiver<Arc<str>>,
    shared: Arc<Shared>,
    on: &tokio::runtime::Handle,
) -> tokio::task::JoinHandle<()> {
    on.spawn(async move {
        loop {
            let body = match applied.recv().await {
                Ok(body) => body,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("bench collector lagged by {n} events");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let now = Instant::now();
            if let Ok(ev) = PspEvent::from_message(&body) {
                let tx = shared
                    .waiting
                    .lock()
                    .ok()
                    .and_then(|mut w| w.remove(ev.payment_id.as_str()));
                if let Some(tx) = tx {
                    let _ = tx.send(now);
                }
            }
        }
    })
}

/// What the deposits of one bench run measured (latencies sorted).
struct DepositRun {
    inits: Vec<Duration>,
    credits: Vec<Duration>,
    errors: usize,
}

/// `concurrency` workers take deposits until `n` are done.
async fn run_deposits(shared: &Arc<Shared>, concurrency: usize) -> Result<DepositRun, BoxError> {
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let s = Arc::clone(shared);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut conn = match Conn::open(s.addr).await {
                Ok(c) => c,
                Err(e) => return vec![Err(format!("connecting: {e}"))],
            };
            loop {
                let i = s.next.fetch_add(1, Ordering::Relaxed);
                if i >= s.n {
                    return out;
                }
                out.push(
                    one_deposit(&s, &mut conn, i)
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
        }));
    }
    let mut run = DepositRun {
        inits: Vec::with_capacity(shared.n),
        credits: Vec::with_capacity(shared.n),
        errors: 0,
    };
    for t in tasks {
        for r in t.await? {
            match r {
                Ok((a, b)) => {
                    run.inits.push(a);
                    run.credits.push(b);
                }
                Err(e) => {
                    run.errors += 1;
                    if run.errors <= 3 {
                        eprintln!("deposit failed: {e}");
                    }
                }
            }
        }
    }
    run.inits.sort();
    run.credits.sort();
    Ok(run)
}

/// The bench's figures: throughput, latencies, write units, routing.
fn print_deposits(
    shared: &Shared,
    run: &DepositRun,
    concurrency: usize,
    wall: Duration,
    units: (u64, u64),
    outage_at_half: bool,
) {
    let (n, ok) = (shared.n, run.inits.len());
    let done = ok.max(1) as f64;
    println!(
        "bench deposits: n={n} concurrency={concurrency} completed={ok} errors={}",
        run.errors
    );
    println!(
        "  throughput:            {:.0} deposits/s (wall {:.2} s)",
        ok as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  init latency:          p50 {:?}  p99 {:?}",
        percentile(&run.inits, 0.50),
        percentile(&run.inits, 0.99)
    );
    println!(
        "  webhook→credit:        p50 {:?}  p99 {:?}",
        percentile(&run.credits, 0.50),
        percentile(&run.credits, 0.99)
    );
    println!(
        "  store write units:     {:.2} per deposit ({} write requests, {:.2} per deposit)",
        units.0 as f64 / done,
        units.1,
        units.1 as f64 / done
    );
    let routed = shared.routed.lock().map(|r| r.clone()).unwrap_or_default();
    println!("  routed to:             {routed:?}");
    if outage_at_half {
        println!(
            "  during a `sandbox` outage from deposit {}: {ok} of {n} deposits completed ({:.2}%)",
            n / 2,
            100.0 * ok as f64 / n.max(1) as f64
        );
    }
}

/// Thread-name prefixes of the bench's own runtimes (all other threads are
/// the server's: the HTTP server, the functions, the worker, the store).
const CLIENT_THREADS: &str = "bench-client";
const SANDBOX_THREADS: &str = "bench-sandbox";

/// A one-thread runtime whose threads are named `name`, shut down in the
/// background when dropped (a runtime may not block inside another).
struct NamedRuntime(Option<tokio::runtime::Runtime>);

impl NamedRuntime {
    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for NamedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn named_runtime(name: &str) -> Result<NamedRuntime, BoxError> {
    Ok(NamedRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?,
    )))
}

/// CPU time per deposit of the server, the client and the sandboxes.
fn print_cpu(cpu: Option<&CpuTimes>, done: usize) {
    let Some(cpu) = cpu else {
        println!("  CPU per deposit:       not measured (no /proc)");
        return;
    };
    let per = |d: Duration| d.as_secs_f64() * 1e6 / done.max(1) as f64;
    let group = |g: &str| cpu.groups.get(g).copied().unwrap_or_default();
    println!(
        "  CPU per deposit:       server {:.0} µs, client {:.0} µs, sandboxes {:.0} µs (process {:.2} s of CPU)",
        per(cpu.rest()),
        per(group(CLIENT_THREADS)),
        per(group(SANDBOX_THREADS)),
        cpu.process.as_secs_f64()
    );
}

/// Take `sandbox` down once half the deposits have started.
fn spawn_outage(s: Arc<Shared>, sandbox_url: String, api_key: String) {
    tokio::spawn(async move {
        while s.next.load(Ordering::Relaxed) < s.n / 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let url = format!("{sandbox_url}/admin/chaos");
        let r = s
            .client
            .post(url)
            .bearer_auth(api_key)
            .json(&json!({"outage": true}))
            .send()
            .await;
        if !r.is_ok_and(|r| r.status().is_success()) {
            eprintln!("could not switch the sandbox outage on");
        }
    });
}

/// Routing decisions over a realistic rule set, timed one by one.
fn bench_routing(n: usize) -> Result<(), BoxError> {
    let countries = ["FI", "SE", "NO", "DK", "DE", "EE"];
    let methods = ["card", "bank_transfer", "ewallet", "pay_by_bank", "p2p"];
    let mut routes = Vec::new();
    for (i, c) in countries.iter().enumerate() {
        for (j, m) in methods.iter().take(4).enumerate() {
            routes.push(json!({"psp": format!("psp-{}", (i + j) % 5), "countries": [c], "currencies": ["EUR", "SEK", "NOK", "DKK"],
                               "methods": [m], "cost_bps": 50 + 10 * ((i * 7 + j * 3) % 11)}));
        }
    }
    let router = Router::from_json(&json!({ "routes": routes }).to_string())?;
    let eur = Currency::parse("EUR")?;
    let mut times = Vec::with_capacity(n);
    let mut found = 0usize;
    for i in 0..n {
        let req = RouteRequest {
            country: Some(countries[i % countries.len()]),
            amount: Money::from_minor(1000 + i as i64 % 50_000, eur)?,
            method: methods[i % methods.len()],
            risk: RiskLevel::Low,
            seed: i as u64,
        };
        let t = Instant::now();
        let c = router.candidates(&req);
        times.push(t.elapsed());
        found += usize::from(!c.is_empty());
    }
    times.sort();
    println!(
        "bench routing: {n} decisions over {} routes ({found} with a route)",
        routes.len()
    );
    println!(
        "  decision time: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default()
    );
    Ok(())
}
