//! reconciliation: the nightly per-PSP settlement match (SPEC §9).
//!
//! One function, two triggers:
//! - the EventBridge schedule (detail `{psp?, date?, shards?, source?}`;
//!   default: every PSP, yesterday, `PAYLOOP_RECON_SHARDS`, the PSP's API)
//!   plans the day: with a shard queue (`PAYLOOP_QUEUE_URL_RECON`) it sends
//!   one message per shard, without one it runs the day in this invocation;
//! - an SQS batch from that queue runs one shard per message and merges the
//!   day's report when the last shard is in (partial batch failures are
//!   redelivered, then dead-lettered by the queue's redrive policy). A
//!   re-run shard repeats nothing: cases and heals are idempotent, the
//!   shard's result is overwritten with the same totals.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use payloop::clock::Day;
use payloop::domain::recon::run::{self, DayRun, Quiet, ShardOutcome, Source};
use payloop::domain::Ctx;
use payloop::error::Error;
use payloop::ids::PspId;
use payloop::queue::QueueName;
use payloop::schema::recon_index::BUCKETS;

/// The schedule's detail (all optional).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub psp: Option<String>,
    pub date: Option<String>,
    pub shards: Option<u32>,
    /// `psp` (default), a path, or an `http://` URL; `{psp}` and `{date}`
    /// are replaced.
    pub source: Option<String>,
}

impl RunRequest {
    /// `POST /v1/recon/runs` (serve only): `psp` and `date` required,
    /// `shards` and `source` optional; every error names its field.
    pub fn parse_run(b: &payloop::edge::JsonBody) -> Result<RunRequest, Error> {
        b.only(&["psp", "date", "shards", "source"])?;
        let shards = match b.opt_i64("shards")? {
            None => None,
            Some(n) => {
                Some(u32::try_from(n).map_err(|_| Error::validation("shards", "must be 1 to 32"))?)
            }
        };
        Ok(RunRequest {
            psp: Some(b.str("psp")?.to_owned()),
            date: Some(b.str("date")?.to_owned()),
            shards,
            source: b.opt_str("source")?.map(str::to_owned),
        })
    }
}

/// A report as the JSON the schedule's and the operator's answers carry.
fn as_json(r: &payloop::domain::recon::report::DayReport) -> Result<Value, Error> {
    serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()))
}

/// One shard of one PSP-day, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardMessage {
    pub psp: String,
    pub date: String,
    pub shards: u32,
    pub shard: u32,
    pub source: String,
}

/// What to run: the PSPs, the day, the split and where the reports are.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub psps: Vec<PspId>,
    pub day: Day,
    pub shards: u32,
    pub source: String,
}

/// Check a request against the deployment; every error names its field.
pub fn plan(ctx: &Ctx, req: &RunRequest, today: Day) -> Result<Plan, Error> {
    let day = match &req.date {
        None => today.prev(),
        Some(d) => Day::parse(d).ok_or_else(|| Error::validation("date", "must be YYYY-MM-DD"))?,
    };
    if day > today {
        return Err(Error::validation("date", "must not be in the future"));
    }
    let psps = match &req.psp {
        None => ctx.psps.ids().cloned().collect(),
        Some(p) => {
            let id = PspId::parse(p).map_err(|e| Error::validation("psp", e.to_string()))?;
            if ctx.psps.get(&id).is_none() {
                return Err(Error::validation("psp", "is not a configured PSP"));
            }
            vec![id]
        }
    };
    let shards = req.shards.unwrap_or(ctx.policies.recon.shards);
    if !(1..=BUCKETS).contains(&shards) {
        return Err(Error::validation(
            "shards",
            format!("must be 1 to {BUCKETS}"),
        ));
    }
    Ok(Plan {
        psps,
        day,
        shards,
        source: req.source.clone().unwrap_or_else(|| "psp".into()),
    })
}

fn source_for(template: &str, psp: &PspId, day: Day) -> Source {
    Source::parse(
        &template
            .replace("{psp}", psp.as_str())
            .replace("{date}", &day.to_string()),
    )
}

/// The scheduled run: fan out over the shard queue, or run inline.
pub async fn scheduled(
    ctx: &Ctx,
    req: &RunRequest,
    fan_out: bool,
    today: Day,
) -> Result<Value, Error> {
    let plan = plan(ctx, req, today)?;
    let mut runs = Vec::new();
    for psp in &plan.psps {
        if fan_out {
            for shard in 0..plan.shards {
                let msg = ShardMessage {
                    psp: psp.to_string(),
                    date: plan.day.to_string(),
                    shards: plan.shards,
                    shard,
                    source: plan.source.clone(),
                };
                let body =
                    serde_json::to_string(&msg).map_err(|e| Error::Internal(e.to_string()))?;
                ctx.queue.send(QueueName::Recon, &body).await?;
            }
            runs.push(json!({"psp": psp, "date": plan.day.to_string(), "shards": plan.shards, "status": "queued"}));
        } else {
            let src = source_for(&plan.source, psp, plan.day);
            let report = as_json(
                &run::reconcile_day(ctx, psp, plan.day, plan.shards, &src, &mut Quiet).await?,
            )?;
            runs.push(
                json!({"psp": psp, "date": plan.day.to_string(), "status": report["status"],
                             "lines": report["lines"], "mismatches": report["mismatches"]}),
            );
        }
    }
    Ok(json!({"runs": runs}))
}

/// One queued shard: run it, then merge the day if it was the last.
pub async fn shard(ctx: &Ctx, msg: &ShardMessage) -> Result<Value, Error> {
    let psp = PspId::parse(&msg.psp).map_err(|e| Error::validation("psp", e.to_string()))?;
    let day =
        Day::parse(&msg.date).ok_or_else(|| Error::validation("date", "must be YYYY-MM-DD"))?;
    let run = DayRun::new(psp.clone(), day, msg.shards, msg.shard)?;
    let outcome =
        run::run_shard(ctx, &run, &source_for(&msg.source, &psp, day), &mut Quiet).await?;
    let merged = run::merge(ctx, &psp, day, msg.shards).await?;
    let status = match outcome {
        ShardOutcome::Malformed { .. } => "malformed",
        ShardOutcome::Done { .. } => "done",
    };
    Ok(
        json!({"psp": psp, "date": msg.date, "shard": msg.shard, "status": status,
              "report": merged.map(|r| r.status())}),
    )
}

/// The Lambda's one entry: an SQS batch of shards, or the schedule.
pub async fn handle(ctx: &Ctx, payload: Value, fan_out: bool) -> Value {
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        let mut failures = Vec::new();
        for r in records {
            let id = r["messageId"].as_str().unwrap_or_default().to_owned();
            let parsed = r["body"]
                .as_str()
                .and_then(|b| serde_json::from_str::<ShardMessage>(b).ok());
            // A failed shard (or a body that is not one) is redelivered and,
            // past the queue's receive limit, dead-lettered: never dropped.
            let ok = match parsed {
                Some(msg) => match shard(ctx, &msg).await {
                    Ok(v) => {
                        tracing::info!(result = %v, "reconciliation shard finished");
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %e, psp = %msg.psp, date = %msg.date, shard = msg.shard, "reconciliation shard failed");
                        false
                    }
                },
                None => {
                    tracing::error!(message_id = %id, "not a reconciliation shard message");
                    false
                }
            };
            if !ok {
                failures.push(json!({"itemIdentifier": id}));
            }
        }
        return json!({"batchItemFailures": failures});
    }
    let req = serde_json::from_value::<RunRequest>(payload["detail"].clone()).unwrap_or_default();
    match scheduled(ctx, &req, fan_out, ctx.clock.today()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "reconciliation run refused");
            json!({"status": "error", "code": e.row().code, "message": e.to_string()})
        }
    }
}

/// `POST /v1/recon/runs` `{psp, date, shards?, source?}` (platform key):
/// reconcile one PSP-day now, in this process, and answer its report.
/// Mounted by `payloop serve` only: in AWS the day runs in the
/// reconciliation function, not behind API Gateway's time limit.
pub fn local_router(ctx: Ctx) -> axum::Router {
    axum::Router::new()
        .route("/v1/recon/runs", axum::routing::post(run_now))
        .with_state(ctx)
}

async fn run_now(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    headers: axum::http::HeaderMap,
    payloop::edge::RawBody(raw): payloop::edge::RawBody,
) -> Result<axum::Json<Value>, payloop::edge::ApiError> {
    let operator = payloop::edge::authenticate(&headers, &ctx.config.platform_keys)?;
    let req = RunRequest::parse_run(&payloop::edge::parse_body(&raw)?)?;
    let plan = plan(&ctx, &req, ctx.clock.today())?;
    let mut reports = Vec::new();
    for psp in &plan.psps {
        let src = source_for(&plan.source, psp, plan.day);
        tracing::info!(operator, psp = %psp, date = %plan.day, "reconciliation run requested");
        let report = run::reconcile_day(&ctx, psp, plan.day, plan.shards, &src, &mut Quiet).await?;
        reports.push(as_json(&report)?);
    }
    Ok(axum::Json(reports.pop().unwrap_or(Value::Null)))
}
