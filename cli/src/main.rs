//! `payloop`: run the whole loop locally, replay dead letters, bench.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use payloop::psp::signature::Scheme;
use payloop_cli::local::{self, LocalOptions};

/// mimalloc instead of glibc malloc: per-thread free lists, no arena lock
/// (see `bench deposits`; the Lambdas keep the system allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    Scheme::parse(s).ok_or_else(|| "one of: seed, timestamped, standard-webhooks".to_owned())
}

fn parse_rg_preset(s: &str) -> Result<payloop::domain::policy::RgPolicy, String> {
    payloop::domain::policy::RgPolicy::preset(s).ok_or_else(|| "one of: uk, se, de".to_owned())
}

#[derive(Parser)]
#[command(
    name = "payloop",
    about = "payloop: the payment loop, on your laptop or on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole loop in one process on the embedded store.
    Serve {
        #[arg(long, env = "PAYLOOP_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
        #[arg(long, env = "PAYLOOP_PORT", default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Queue visibility timeout (seconds) before a failed event is retried.
        #[arg(long, default_value_t = 30)]
        visibility_secs: u64,
        /// Use DynamoDB + SQS (AWS_ENDPOINT_URL, PAYLOOP_TABLE, PAYLOOP_QUEUE_PREFIX) instead.
        #[arg(long)]
        aws: bool,
        /// Routing rules (JSON file); default: sandbox, sandbox-b, sandbox-c in that order.
        #[arg(long)]
        routing: Option<PathBuf>,
        /// Webhook signature scheme of the `sandbox` PSP: seed, timestamped, standard-webhooks.
        #[arg(long, default_value = "seed", value_parser = parse_scheme)]
        webhook_scheme: Scheme,
        /// Port of the first sandbox PSP (the other two take the next ports).
        #[arg(long, default_value_t = 8091)]
        sandbox_port: u16,
        /// Start in degradation mode (heavy methods off) until switched off.
        #[arg(long)]
        degraded: bool,
        /// More PSPs (a PSP list, JSON: sandbox or adyen kind) beside the sandboxes;
        /// routing rules (--routing) can send deposits to them.
        #[arg(long, env = "PAYLOOP_PSPS_FILE")]
        psps: Option<PathBuf>,
        /// Responsible-gambling preset: uk (24 h cooling-off), se (72 h, limits
        /// required), de (EUR 1 000 a month by default).
        #[arg(long, env = "PAYLOOP_RG_PRESET", default_value = "uk", value_parser = parse_rg_preset)]
        rg_preset: payloop::domain::policy::RgPolicy,
        /// Risk rules (JSON file); default: the shipped rules
        /// (shared/src/domain/policy/shipped-risk-rules.json).
        #[arg(long, env = "PAYLOOP_RISK_RULES_FILE")]
        risk_rules: Option<PathBuf>,
        /// The Google facade and the Google sandbox speak signed-and-encrypted
        /// messages (JWS inside JWE, fresh test keys) instead of plaintext.
        #[arg(long)]
        google_jose: bool,
    },
    /// Run only the three sandbox PSPs (for a payloop running elsewhere).
    Sandbox {
        #[arg(long, env = "PAYLOOP_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
        /// Where payloop listens: webhooks go to <base>/v1/payments/webhook/<psp>.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        webhook_base: String,
        #[arg(long, default_value_t = 8091)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value = "seed", value_parser = parse_scheme)]
        webhook_scheme: Scheme,
    },
    /// Operate the dead-letter queue of the local data directory.
    Dlq {
        #[command(subcommand)]
        action: payloop_cli::bench::DlqAction,
    },
    /// Reconcile one PSP-day on a running `payloop serve`; prints the report.
    Reconcile(payloop_cli::recon::ReconcileArgs),
    /// Reconciliation cases of a running `payloop serve`.
    Recon {
        #[command(subcommand)]
        action: payloop_cli::recon::ReconAction,
    },
    /// Benchmarks (print figures; not tests).
    Bench {
        #[command(subcommand)]
        what: payloop_cli::bench::BenchWhat,
    },
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    init_logging(&cli.command);
    match cli.command {
        Command::Serve {
            data_dir,
            port,
            host,
            visibility_secs,
            aws,
            routing,
            webhook_scheme,
            sandbox_port,
            degraded,
            psps,
            rg_preset,
            risk_rules,
            google_jose,
        } => {
            let rules = match risk_rules {
                Some(path) => std::fs::read_to_string(path)?,
                None => payloop::domain::risk::rules::RiskConfig::SHIPPED.to_owned(),
            };
            let opts = LocalOptions {
                rg: rg_preset,
                risk: payloop::domain::risk::rules::RiskConfig::parse(&rules)?,
                psp_list: psps.map(std::fs::read_to_string).transpose()?,
                host,
                port,
                visibility: Duration::from_secs(visibility_secs),
                webhook_scheme,
                routing: routing.map(std::fs::read_to_string).transpose()?,
                sandbox_port,
                degraded,
                google_codecs: google_jose.then(test_jose),
                ..LocalOptions::new(data_dir)
            };
            serve(opts, aws).await
        }
        Command::Reconcile(args) => payloop_cli::recon::reconcile(args).await,
        Command::Recon { action } => payloop_cli::recon::recon(action).await,
        Command::Sandbox {
            data_dir,
            webhook_base,
            port,
            host,
            webhook_scheme,
        } => {
            let opts = LocalOptions {
                host,
                sandbox_port: port,
                webhook_scheme,
                ..LocalOptions::new(data_dir)
            };
            sandboxes(opts, &webhook_base).await
        }
        Command::Dlq { action } => payloop_cli::bench::dlq(action).await,
        Command::Bench { what } => payloop_cli::bench::run(what).await,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Codecs = (
    std::sync::Arc<dyn payloop::domain::google::codec::Codec>,
    std::sync::Arc<dyn payloop::domain::google::codec::Codec>,
);

/// Fresh test keys for both ends of the Google channel.
fn test_jose() -> Codecs {
    let (facade, google) = payloop::domain::google::jose::Jose::test_pair();
    (std::sync::Arc::new(facade), std::sync::Arc::new(google))
}

/// Per-request logs for the server; only problems for one-shot commands.
fn init_logging(command: &Command) {
    let default_level = match command {
        Command::Serve { .. } => "info",
        // The simulation injects faults on purpose: their logs are noise.
        Command::Bench {
            what: payloop_cli::bench::BenchWhat::Simulate { .. },
        } => "off",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    // Colour only for a terminal (and never with NO_COLOR): a log file or a
    // pipe gets plain text.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
}

/// `payloop serve`: the whole loop in this process until Ctrl-C.
async fn serve(mut opts: LocalOptions, aws: bool) -> Result<(), BoxError> {
    if aws {
        opts.backends = Some(payloop_cli::bench::aws_backends().await?);
    }
    let stack = local::start(opts).await?;
    print_banner(&stack);
    tokio::signal::ctrl_c().await?;
    stack.shutdown().await;
    Ok(())
}

/// `payloop sandbox`: only the sandbox PSPs, webhooks to `webhook_base`.
async fn sandboxes(opts: LocalOptions, webhook_base: &str) -> Result<(), BoxError> {
    let handles = local::run_sandboxes(&opts, webhook_base).await?;
    for h in &handles {
        println!(
            "sandbox PSP {} at {} ({} webhooks)",
            h.name,
            h.base_url,
            h.state.opts.scheme.as_str()
        );
    }
    println!(
        "API and admin key: in {}/dev-secrets.json (psp_api_key)",
        opts.data_dir.display()
    );
    tokio::signal::ctrl_c().await?;
    for h in handles {
        h.shutdown().await;
    }
    Ok(())
}

fn print_banner(stack: &local::LocalStack) {
    let s = &stack.secrets;
    let base = &stack.base_url;
    println!("payloop is running at {base}");
    println!("  POST {base}/v1/payments/init            (Authorization: Bearer <client key>)");
    println!("  POST {base}/v1/payments/webhook[/<psp>] (signed by the PSP)");
    println!("  GET  {base}/v1/wallet/<player_id>       (Authorization: Bearer <platform key>)");
    println!("  GET  {base}/v1/admin/routing            (platform key: circuits, degradation)");
    println!("  GET  {base}/v1/ops/metrics              (platform key: every metric with its definition)");
    println!("  POST {base}/v1/payment-integrator-redirect/<method>  (Google redirect FOP)");
    println!("Google sandbox:         {base}/google-sandbox/notifications (POST …/payments, …/refunds, …/statements)");
    println!("operator console:       {base}/ops (sign in with the platform key)");
    println!("hosted cashier:         {base}/cashier#<token> (POST /v1/cashier/sessions with the platform key mints one)");
    println!("dev client API key:     {}", s.client_key);
    println!("dev platform API key:   {}", s.platform_key);
    println!("sandbox webhook secret: {}", s.webhook_secret);
    println!("sandbox PSP API key:    {}", s.psp_api_key);
    for h in &stack.sandboxes {
        println!(
            "sandbox PSP {:<10} {} ({} webhooks; chaos: POST {}/admin/chaos)",
            h.name.as_str(),
            h.base_url,
            h.state.opts.scheme.as_str(),
            h.base_url
        );
    }
    let sandboxes: Vec<&str> = stack.sandboxes.iter().map(|h| h.name.as_str()).collect();
    for psp in stack
        .ctx
        .psps
        .ids()
        .filter(|p| !sandboxes.contains(&p.as_str()))
    {
        println!(
            "listed PSP  {:<10} webhooks at {base}/v1/payments/webhook/{psp}",
            psp.as_str()
        );
    }
    println!("Ctrl-C stops it; data stays in the data directory.");
}
