//! `payloop`: run the whole loop locally, replay dead letters, bench.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use payloop::domain::signature::Scheme;
use payloop_cli::local::{self, LocalOptions};

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    Scheme::parse(s).ok_or_else(|| "one of: seed, timestamped, standard-webhooks".to_owned())
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
    },
    /// Operate the dead-letter queue of the local data directory.
    Dlq {
        #[command(subcommand)]
        action: payloop_cli::bench::DlqAction,
    },
    /// Benchmarks (print figures; not tests).
    Bench {
        #[command(subcommand)]
        what: payloop_cli::bench::BenchWhat,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    // Per-request logs for the server; only problems for one-shot commands.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match cli.command {
        Command::Serve {
            data_dir,
            port,
            host,
            visibility_secs,
            aws,
            routing,
            webhook_scheme,
        } => {
            let routing = routing.map(std::fs::read_to_string).transpose()?;
            let mut opts = LocalOptions {
                host,
                port,
                visibility: Duration::from_secs(visibility_secs),
                webhook_scheme,
                routing,
                ..LocalOptions::new(data_dir)
            };
            if aws {
                opts.backends = Some(payloop_cli::bench::aws_backends().await?);
            }
            let stack = local::start(opts).await?;
            print_banner(&stack);
            tokio::signal::ctrl_c().await?;
            stack.shutdown().await;
            Ok(())
        }
        Command::Dlq { action } => payloop_cli::bench::dlq(action).await,
        Command::Bench { what } => payloop_cli::bench::run(what).await,
    }
}

fn print_banner(stack: &local::LocalStack) {
    let s = &stack.secrets;
    println!("payloop is running at {}", stack.base_url);
    println!(
        "  POST {}/v1/payments/init            (Authorization: Bearer <client key>)",
        stack.base_url
    );
    println!(
        "  POST {}/v1/payments/webhook         (X-Signature: sha256=<hmac>)",
        stack.base_url
    );
    println!(
        "  GET  {}/v1/wallet/<player_id>       (Authorization: Bearer <platform key>)",
        stack.base_url
    );
    println!(
        "  sandbox checkout pages under {}/sandbox/checkout/<payment_id>",
        stack.base_url
    );
    println!("dev client API key:     {}", s.client_key);
    println!("dev platform API key:   {}", s.platform_key);
    println!(
        "sandbox webhook secret: {} ({} scheme)",
        s.webhook_secret,
        stack.scheme.as_str()
    );
    println!("sandbox PSPs: sandbox (see above), sandbox-b (timestamped), sandbox-c (standard-webhooks);");
    println!(
        "  take one down: POST {}/sandbox/<psp>/admin/outage {{\"down\":true}} (platform key)",
        stack.base_url
    );
    println!("Ctrl-C stops it; data stays in the data directory.");
}
