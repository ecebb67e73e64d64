//! `payloop reconcile` and `payloop recon cases|resolve`: operate the
//! reconciliation of a running `payloop serve` over its operator endpoints
//! (the sandbox PSPs' books live in that process).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::local::DevSecrets;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the running payloop is, and the operator's key.
#[derive(Args, Debug, Clone)]
pub struct Target {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Platform (operator) key; defaults to the one in the data directory.
    #[arg(long, env = "PAYLOOP_PLATFORM_KEY")]
    pub platform_key: Option<String>,
    #[arg(long, env = "PAYLOOP_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,
}

impl Target {
    fn key(&self) -> Result<String, BoxError> {
        match &self.platform_key {
            Some(k) => Ok(k.clone()),
            None => Ok(DevSecrets::load_or_create(&self.data_dir)?.platform_key),
        }
    }
}

/// `payloop reconcile`.
#[derive(Args, Debug)]
pub struct ReconcileArgs {
    #[arg(long)]
    pub psp: String,
    /// The settlement day, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// Split the day into this many shards (1..=32), run one after another.
    #[arg(long)]
    pub shards: Option<u32>,
    /// `psp` (the PSP's settlement API, default), a file path or an http:// URL.
    #[arg(long)]
    pub source: Option<String>,
    /// Print the report as CSV instead of JSON.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Subcommand, Debug)]
pub enum ReconAction {
    /// List a day's cases.
    Cases {
        #[arg(long)]
        date: String,
        #[arg(long)]
        psp: Option<String>,
        /// open, healed or resolved.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Resolve a case with a note.
    Resolve {
        case_id: String,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        target: Target,
    },
}

async fn call(
    t: &Target,
    req: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, String), BoxError> {
    let resp = req.bearer_auth(t.key()?).send().await?;
    Ok((resp.status(), resp.text().await?))
}

fn done(status: reqwest::StatusCode, body: String) -> Result<(), BoxError> {
    if !status.is_success() {
        return Err(format!("{status}: {body}").into());
    }
    println!("{body}");
    Ok(())
}

pub async fn reconcile(a: ReconcileArgs) -> Result<(), BoxError> {
    let http = payloop::psp::https::local_client()?;
    let mut body = json!({"psp": a.psp, "date": a.date});
    if let Some(s) = a.shards {
        body["shards"] = json!(s);
    }
    if let Some(s) = &a.source {
        body["source"] = json!(s);
    }
    let t = &a.target;
    let (status, text) = call(t, http.post(format!("{}/v1/recon/runs", t.url)).json(&body)).await?;
    if !status.is_success() || !a.csv {
        return done(status, text);
    }
    let report: Value = serde_json::from_str(&text)?;
    match report["csv"].as_str() {
        Some(csv) => {
            print!("{csv}");
            Ok(())
        }
        None => done(status, text),
    }
}

pub async fn recon(action: ReconAction) -> Result<(), BoxError> {
    let http = payloop::psp::https::local_client()?;
    match action {
        ReconAction::Cases {
            date,
            psp,
            status,
            limit,
            target,
        } => {
            let mut q = vec![("date", date), ("limit", limit.to_string())];
            q.extend(psp.map(|p| ("psp", p)));
            q.extend(status.map(|s| ("status", s)));
            let req = http.get(format!("{}/v1/recon/cases", target.url)).query(&q);
            let (st, text) = call(&target, req).await?;
            done(st, text)
        }
        ReconAction::Resolve {
            case_id,
            note,
            target,
        } => {
            let url = format!("{}/v1/recon/cases/{case_id}/resolve", target.url);
            let (st, text) = call(&target, http.post(url).json(&json!({"note": note}))).await?;
            done(st, text)
        }
    }
}
