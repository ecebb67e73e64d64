//! The console's pages: each GET reads through the domain and renders;
//! each POST checks the session's CSRF token, makes one domain call, logs
//! who did it and redirects back with what happened.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use payloop::clock::Day;
use payloop::domain::deposits::{self, Shown};
use payloop::domain::operator::{self, DegradationRequest};
use payloop::domain::recon::cases;
use payloop::domain::request::Body;
use payloop::domain::risk::{aml, decision, review};
use payloop::domain::{reviews, wallet};
use payloop::ids::{PaymentId, PlayerId};
use payloop::metrics::MetricsView;
use payloop::queue::{self, QueueName};
use payloop::Error;
use serde_json::{json, Value};

use super::charts::{bars, Bar};
use super::html::{self, cell, escape, post_form, pre, table, time};
use super::{Operator, Posted, St, Viewer};

type Q = Query<HashMap<String, String>>;

/// Dead letters listed (and scanned for a replay of one).
pub const DLQ_SHOWN: usize = 50;
/// Dead letters one "replay all" moves.
pub const REPLAY_ALL_MAX: usize = 1000;

fn render(
    title: &str,
    current: &str,
    op: &Operator,
    q: &HashMap<String, String>,
    body: &str,
) -> Response {
    let flash = html::flash(
        q.get("done").map(String::as_str),
        q.get("error").map(String::as_str),
    );
    Html(html::page(
        title,
        current,
        Some((&op.name, &op.csrf)),
        &format!("{flash}{body}"),
    ))
    .into_response()
}

/// Back to `to` with a message (`done`) or a refusal (`error`).
fn back(to: &str, outcome: Result<String, String>) -> Response {
    let (k, msg) = match outcome {
        Ok(m) => ("done", m),
        Err(m) => ("error", m),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}{k}={}", urlencode(&msg))).into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An error as an operator reads it: the message of its table row (never
/// a PSP's reply or a secret: the error type renders none).
fn said(e: &Error) -> String {
    e.public_message()
}

fn error_page(op: &Operator, title: &str, current: &str, e: &Error) -> Response {
    let status = StatusCode::from_u16(e.row().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!(r#"<p class="error" role="alert">{}</p>"#, escape(&said(e)));
    (
        status,
        Html(html::page(
            title,
            current,
            Some((&op.name, &op.csrf)),
            &body,
        )),
    )
        .into_response()
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

// ------------------------------------------------------------------ overview

pub async fn overview(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let m = crate::ops::current(&c.ctx).await;
    let gauges = table(
        "Now",
        &["Figure", "Value"],
        &[
            gauge_row(&m, "Dead letters", "dlq_depth"),
            gauge_row(&m, "Reviews waiting", "reviews_open"),
            gauge_row(&m, "Payouts in review", "payouts_in_review"),
            gauge_row(&m, "AML alerts open", "aml_alerts_open"),
        ],
    );
    let charts = [
        bars(
            "deposits-by-method",
            "Deposits started by method",
            by(&m, "deposits_started", "method", count),
        ),
        bars(
            "conversion-by-method",
            "Deposit conversion by method",
            by(&m, "deposit_conversion", "method", share),
        ),
        bars(
            "conversion-by-country",
            "Deposit conversion by country",
            by(&m, "deposit_conversion", "country", share),
        ),
        bars(
            "psp-uptime",
            "PSP uptime by route",
            by(&m, "psp_uptime", "psp", share),
        ),
        bars("webhooks", "Webhooks by outcome", webhooks(&m)),
        bars(
            "recon-classes",
            "Reconciliation lines by class",
            by(&m, "recon_lines", "class", count),
        ),
    ]
    .join("");
    let body = format!(
        r#"{gauges}<h2>Since start</h2><div class="charts">{charts}</div>{timers}{shares}<p>Every figure with its definition: <code>GET /v1/ops/metrics</code> (platform key).</p>"#,
        timers = timers(&m),
        shares = shares(&m),
    );
    render("Overview", "/ops", &op, &q, &body)
}

fn gauge_row(m: &MetricsView, label: &str, metric: &str) -> Vec<String> {
    let v = m.series(metric).get(metric).copied().unwrap_or(0.0);
    vec![
        escape(label),
        format!(r#"<span id="gauge-{metric}">{v}</span>"#),
    ]
}

fn count(v: f64) -> String {
    format!("{v}")
}

fn share(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A metric's series broken down by one label: (value of the label, value).
fn by(m: &MetricsView, metric: &str, label: &str, show: fn(f64) -> String) -> Vec<Bar> {
    let prefix = format!("{metric}.{label}.");
    m.series(metric)
        .into_iter()
        .filter_map(|(name, v)| {
            let rest = name.strip_prefix(&prefix)?;
            (!rest.contains('.')).then(|| Bar {
                label: rest.to_owned(),
                value: v,
                shown: show(v),
            })
        })
        .collect()
}

fn webhooks(m: &MetricsView) -> Vec<Bar> {
    [
        "webhooks_accepted",
        "webhooks_duplicate",
        "webhooks_rejected",
    ]
    .iter()
    .filter_map(|w| {
        let v = *m.series(w).get(*w)?;
        Some(Bar {
            label: w.trim_start_matches("webhooks_").to_owned(),
            value: v,
            shown: count(v),
        })
    })
    .collect()
}

fn timers(m: &MetricsView) -> String {
    let rows: Vec<Vec<String>> = [
        ("Deposit time", "deposit_time_ms"),
        ("Payout time", "payout_time_ms"),
        ("KYC time", "kyc_time_ms"),
    ]
    .iter()
    .map(|(label, metric)| {
        let (p50, p95) = m.percentiles(metric).unwrap_or((0, 0));
        let n = m.series(metric).get(*metric).copied().unwrap_or(0.0);
        vec![
            escape(label),
            format!("{n}"),
            format!("{p50} ms"),
            format!("{p95} ms"),
        ]
    })
    .collect();
    table("Times", &["Figure", "Count", "p50", "p95"], &rows)
}

fn shares(m: &MetricsView) -> String {
    let rows: Vec<Vec<String>> = [
        ("3-D Secure failures per deposit", "three_ds_failure_share"),
        ("Cancellations per deposit", "cancellation_share"),
        ("Refunds per credited deposit", "refund_share"),
        ("Chargeback rate", "chargeback_rate"),
        ("Manual review share", "manual_review_share"),
        ("PSP native error rate", "psp_native_error_rate"),
    ]
    .iter()
    .map(|(label, metric)| {
        let v = m.series(metric).get(*metric).copied();
        vec![
            escape(label),
            v.map(share).unwrap_or_else(|| "no data".into()),
        ]
    })
    .collect();
    let cost: Vec<Vec<String>> = m
        .series("cost_per_success_minor")
        .into_iter()
        .map(|(name, v)| {
            vec![
                escape(name.trim_start_matches("cost_per_success_minor.")),
                format!("{v}"),
            ]
        })
        .collect();
    format!(
        "{}{}",
        table("Shares", &["Figure", "Value"], &rows),
        table(
            "Cost per success (minor units)",
            &["Method and currency", "Fee per credited deposit"],
            &cost
        )
    )
}

// ------------------------------------------------------------------ payments

pub async fn payments(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let search = q.get("q").map(|s| s.trim()).unwrap_or_default();
    let form = format!(
        r#"<form method="get" action="/ops/payments" role="search"><p><label for="q">Payment id or player id</label><br><input id="q" name="q" value="{}" size="40"> <button type="submit" id="search">Find</button></p></form>"#,
        escape(search)
    );
    if search.is_empty() {
        return render("Payments", "/ops/payments", &op, &q, &form);
    }
    if let Ok(id) = PaymentId::parse(search) {
        return Redirect::to(&format!("/ops/payments/{id}")).into_response();
    }
    let Ok(player) = PlayerId::parse(search) else {
        let body =
            format!(r#"{form}<p class="error" role="alert">Not a payment id or a player id.</p>"#);
        return (
            StatusCode::BAD_REQUEST,
            render("Payments", "/ops/payments", &op, &q, &body),
        )
            .into_response();
    };
    match player_page(&c.ctx, &player).await {
        Ok(found) => render(
            "Payments",
            "/ops/payments",
            &op,
            &q,
            &format!("{form}{found}"),
        ),
        Err(e) => error_page(&op, "Payments", "/ops/payments", &e),
    }
}

async fn player_page(ctx: &payloop::domain::Ctx, player: &PlayerId) -> Result<String, Error> {
    let decisions = decision::list(ctx, player, 50).await?;
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            let v = json_of(d);
            let subject = v["decision_id"].as_str().unwrap_or_default();
            let link = if subject.starts_with("pay_") {
                format!(r#"<a href="/ops/payments/{0}">{0}</a>"#, escape(subject))
            } else {
                escape(subject)
            };
            vec![
                link,
                cell(&v["flow"]),
                cell(&v["outcome"]),
                time(v["decided_at_ms"].as_i64().unwrap_or(0)),
            ]
        })
        .collect();
    let w = json_of(&wallet::wallet_view(ctx, player).await?);
    let balances: Vec<Vec<String>> = w["balances"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| {
                    vec![
                        cell(&b["currency"]),
                        cell(&b["available"]),
                        cell(&b["held"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(format!(
        "<h2>Player {}</h2>{}{}",
        escape(player.as_str()),
        table("Balances", &["Currency", "Available", "Held"], &balances),
        table(
            "Payments and payouts (latest 50, by risk decision)",
            &["Id", "Flow", "Decision", "At"],
            &rows
        )
    ))
}

pub async fn payment(
    State(c): St,
    Viewer(op): Viewer,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let id = match PaymentId::parse(&id) {
        Ok(id) => id,
        Err(e) => {
            return error_page(
                &op,
                "Payment",
                "/ops/payments",
                &Error::validation("payment_id", e.to_string()),
            )
        }
    };
    let shown = match deposits::show(&c.ctx, &id).await {
        Ok(s) => s,
        Err(e) => return error_page(&op, "Payment", "/ops/payments", &e),
    };
    let body = match shown {
        Shown::Payment(p) => {
            let v = json_of(&p);
            let deliveries = deposits::deliveries(&c.ctx, &id)
                .await
                .map(|d| json_of(&d))
                .unwrap_or(Value::Null);
            payment_body(&v, &deliveries)
        }
        Shown::Held(h) => {
            let v = json_of(&h);
            format!("<p>Held for risk review.</p>{}", pre(&v))
        }
    };
    render(&format!("Payment {id}"), "/ops/payments", &op, &q, &body)
}

fn payment_body(v: &Value, deliveries: &Value) -> String {
    let facts = format!(
        r#"<dl><dt>Status</dt><dd id="status">{}</dd><dt>Player</dt><dd><a href="/ops/payments?q={p}">{p}</a></dd><dt>Amount</dt><dd>{} {}</dd><dt>Method</dt><dd>{}</dd><dt>PSP</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Credited transaction</dt><dd>{}</dd></dl>"#,
        cell(&v["status"]),
        cell(&v["amount"]),
        cell(&v["currency"]),
        cell(&v["method"]),
        cell(&v["psp"]),
        time(v["created_at_ms"].as_i64().unwrap_or(0)),
        cell(&v["credited_txn_id"]),
        p = cell(&v["player_id"]),
    );
    let history: Vec<Vec<String>> = v["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| {
                    vec![
                        cell(&e["status"]),
                        time(e["at_ms"].as_i64().unwrap_or(0)),
                        cell(&e["event_id"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let attempts: Vec<Vec<String>> = v["routing"]["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| vec![cell(&e["psp"]), cell(&e["outcome"]), cell(&e["detail"])])
                .collect()
        })
        .unwrap_or_default();
    let delivered: Vec<Vec<String>> = deliveries["deliveries"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|e| {
                    let verified = if e["verified"] == true { "yes" } else { "no" };
                    vec![
                        cell(&e["outcome"]),
                        cell(&e["status"]),
                        cell(&e["event_id"]),
                        verified.to_owned(),
                        time(e["at_ms"].as_i64().unwrap_or(0)),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{facts}{}{}{}",
        table("Status history", &["Status", "At", "Event"], &history),
        table("Routing attempts", &["PSP", "Outcome", "Why"], &attempts),
        table(
            "Webhook deliveries",
            &["Verdict", "Status", "Event", "Signature verified", "At"],
            &delivered
        )
    )
}

// -------------------------------------------------------------- dead letters

pub async fn dead_letters(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let letters = match queue::peek(c.ctx.queue.as_ref(), QueueName::EventsDlq, DLQ_SHOWN).await {
        Ok(l) => l,
        Err(e) => return error_page(&op, "Dead letters", "/ops/dlq", &Error::from(e)),
    };
    let rows: Vec<Vec<String>> = letters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let v: Value = serde_json::from_str(&m.body).unwrap_or(Value::String(m.body.clone()));
            let subject = v
                .get("payment_id")
                .or(v.get("payout_id"))
                .cloned()
                .unwrap_or(Value::Null);
            let replay = post_form(
                &format!("/ops/dlq/{}/replay", m.id),
                &op.csrf,
                "",
                "Replay",
                &format!("replay-{i}"),
            );
            vec![
                format!("<code>{}</code>", escape(&m.id)),
                cell(&subject),
                cell(&v.get("status").cloned().unwrap_or(Value::Null)),
                format!("<details><summary>Message</summary>{}</details>", pre(&v)),
                replay,
            ]
        })
        .collect();
    let all = if letters.is_empty() {
        String::new()
    } else {
        post_form("/ops/dlq/replay", &op.csrf, "", "Replay all", "replay-all")
    };
    let body = format!(
        "<p>Events that failed {} times go here. Replaying moves them back to the events queue; applying an event twice is harmless.</p>{}{all}",
        payloop::queue::DEFAULT_MAX_RECEIVES,
        table(&format!("Dead letters (first {DLQ_SHOWN})"), &["Message", "Subject", "Status", "Body", "Action"], &rows)
    );
    render("Dead letters", "/ops/dlq", &op, &q, &body)
}

pub async fn replay_one(
    State(c): St,
    Path(id): Path<String>,
    Posted { op, .. }: Posted,
) -> Response {
    let q = c.ctx.queue.as_ref();
    let outcome = match queue::redrive_one(
        q,
        QueueName::EventsDlq,
        QueueName::Events,
        &id,
        DLQ_SHOWN,
    )
    .await
    {
        Ok(true) => {
            tracing::info!(operator = %op.name, message_id = %id, audit = "dlq_replay_one", "dead letter replayed");
            Ok(format!("Replayed message {id}."))
        }
        Ok(false) => Err(format!(
            "Message {id} is no longer in the dead-letter queue."
        )),
        Err(e) => Err(said(&Error::from(e))),
    };
    back("/ops/dlq", outcome)
}

pub async fn replay_all(State(c): St, Posted { op, .. }: Posted) -> Response {
    let q = c.ctx.queue.as_ref();
    let outcome = match queue::redrive(q, QueueName::EventsDlq, QueueName::Events, REPLAY_ALL_MAX)
        .await
    {
        Ok(n) => {
            tracing::info!(operator = %op.name, moved = n, audit = "dlq_replay_all", "dead letters replayed");
            Ok(format!("Replayed {n} message(s)."))
        }
        Err(e) => Err(said(&Error::from(e))),
    };
    back("/ops/dlq", outcome)
}

// ------------------------------------------------------------ reconciliation

pub async fn recon(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let day = match q.get("date") {
        None => Day::today(),
        Some(d) => match Day::parse(d) {
            Some(day) => day,
            None => {
                return error_page(
                    &op,
                    "Reconciliation",
                    "/ops/recon",
                    &Error::validation("date", "must be YYYY-MM-DD"),
                )
            }
        },
    };
    let filter = cases::CaseFilter {
        day,
        psps: c.ctx.psps.ids().cloned().collect(),
        status: None,
        limit: 100,
    };
    let list = match cases::list(&c.ctx, &filter).await {
        Ok(l) => json_of(&l),
        Err(e) => return error_page(&op, "Reconciliation", "/ops/recon", &e),
    };
    let back_to = format!("/ops/recon?date={day}");
    let rows: Vec<Vec<String>> = list["cases"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .enumerate()
                .map(|(i, k)| {
                    let id = k["case_id"].as_str().unwrap_or_default();
                    let action = if k["status"] == "open" {
                        let note = format!(
                            r#"<label for="note-{i}">Note</label> <input id="note-{i}" name="note" required maxlength="500"><input type="hidden" name="back" value="{}"> "#,
                            escape(&back_to)
                        );
                        post_form(&format!("/ops/recon/cases/{id}/resolve"), &op.csrf, &note, "Resolve", &format!("resolve-{i}"))
                    } else {
                        format!("{} by {}", cell(&k["note"]), cell(&k["resolved_by"]))
                    };
                    vec![
                        format!("<code>{}</code>", escape(id)),
                        cell(&k["psp"]),
                        cell(k.get("class").filter(|c| !c.is_null()).unwrap_or(&k["kind"])),
                        cell(&k["key"]),
                        format!(r#"<span class="case-status">{}</span>"#, cell(&k["status"])),
                        cell(&k["detail"]),
                        action,
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let days: String = (0..7)
        .map(|n| {
            let d = day.plus_days(-n);
            format!(r#"<li><a href="/ops/recon?date={d}">{d}</a></li>"#)
        })
        .collect();
    let body = format!(
        r#"<nav aria-label="Days"><ul>{days}</ul></nav><h2>Cases of {day}</h2>{}"#,
        table(
            &format!("Cases opened on {day}"),
            &["Case", "PSP", "Class", "Key", "Status", "Detail", "Action"],
            &rows
        )
    );
    render("Reconciliation", "/ops/recon", &op, &q, &body)
}

pub async fn resolve_case(
    State(c): St,
    Path(id): Path<String>,
    Posted { op, form: f }: Posted,
) -> Response {
    let to = f
        .get("back")
        .filter(|b| b.starts_with("/ops/recon"))
        .cloned()
        .unwrap_or_else(|| "/ops/recon".into());
    let note = f.get("note").map(String::as_str).unwrap_or_default();
    let outcome = match cases::resolve(&c.ctx, &id, note, &op.name).await {
        Ok(_) => {
            tracing::info!(operator = %op.name, case_id = %id, audit = "case_resolved", "reconciliation case resolved");
            Ok(format!("Case {id} resolved."))
        }
        Err(e) => Err(said(&e)),
    };
    back(&to, outcome)
}

// ------------------------------------------------------------------- routing

pub async fn routing(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let v = match operator::routing_view(&c.ctx).await {
        Ok(v) => json_of(&v),
        Err(e) => return error_page(&op, "Routing", "/ops/routing", &e),
    };
    let rows: Vec<Vec<String>> = v["routes"]
        .as_object()
        .map(|r| {
            r.iter()
                .map(|(psp, h)| {
                    vec![
                        escape(psp),
                        format!(r#"<span class="circuit">{}</span>"#, cell(&h["circuit"])),
                        time(h["since_ms"].as_i64().unwrap_or(0)),
                        cell(&h["reason"]),
                        cell(&h["samples"]),
                        format!("{}%", cell(&h["error_pct"])),
                        format!("{} ms", cell(&h["p95_ms"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let on = v["degraded"] == true;
    let (to, label) = if on {
        ("false", "Switch degradation off")
    } else {
        ("true", "Switch degradation on")
    };
    let fields = format!(
        r#"<input type="hidden" name="degraded" value="{to}"><label for="note">Note</label> <input id="note" name="note" maxlength="500"> "#
    );
    let body = format!(
        r#"{}<h2>Degradation mode</h2><p>Now: <strong id="degraded">{}</strong>{}. Fast methods kept: {}.</p>{}"#,
        table(
            "Circuits",
            &["PSP", "Circuit", "Since", "Why", "Calls", "Errors", "p95"],
            &rows
        ),
        if on { "on" } else { "off" },
        if v["degraded_forced"] == true {
            " (forced by an operator)"
        } else {
            ""
        },
        cell(&json!(v["fast_methods"].as_array().map(|a| a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")))),
        post_form(
            "/ops/routing/degradation",
            &op.csrf,
            &fields,
            label,
            "degradation"
        ),
    );
    render("Routing", "/ops/routing", &op, &q, &body)
}

pub async fn degradation(State(c): St, Posted { op, form: f }: Posted) -> Response {
    let body = json!({
        "degraded": f.get("degraded").map(String::as_str) == Some("true"),
        "note": f.get("note").cloned().unwrap_or_default(),
    });
    let req =
        Body::from_json(body.to_string().as_bytes()).and_then(|b| DegradationRequest::parse(&b));
    let outcome = match req {
        Ok(r) => match operator::set_degradation(&c.ctx, &r).await {
            Ok(v) => {
                tracing::warn!(operator = %op.name, degraded = v.degraded, audit = "degradation_switched", "degradation switched from the console");
                Ok(format!(
                    "Degradation mode is {}.",
                    if v.degraded { "on" } else { "off" }
                ))
            }
            Err(e) => Err(said(&e)),
        },
        Err(e) => Err(said(&e)),
    };
    back("/ops/routing", outcome)
}

// ---------------------------------------------------------------------- risk

pub async fn risk(State(c): St, Viewer(op): Viewer, Query(q): Q) -> Response {
    let open = match review::list_open(&c.ctx).await {
        Ok(r) => r,
        Err(e) => return error_page(&op, "Risk", "/ops/risk", &e),
    };
    let alerts = match aml::list(&c.ctx, None, Some("open")).await {
        Ok(a) => a,
        Err(e) => return error_page(&op, "Risk", "/ops/risk", &e),
    };
    let review_rows: Vec<Vec<String>> = open
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = json_of(r);
            let id = v["review_id"].as_str().unwrap_or_default();
            let note = format!(r#"<label for="rnote-{i}">Note</label> <input id="rnote-{i}" name="note" maxlength="500"> "#);
            let approve = post_form(&format!("/ops/risk/reviews/{id}/decide"), &op.csrf, &format!(r#"{note}<input type="hidden" name="decision" value="approve">"#), "Approve", &format!("approve-{i}"));
            let decline = post_form(&format!("/ops/risk/reviews/{id}/decide"), &op.csrf, r#"<input type="hidden" name="decision" value="decline">"#, "Decline", &format!("decline-{i}"));
            vec![format!("<code>{}</code>", escape(id)), cell(&v["flow"]), cell(&v["player_id"]), cell(&v["status"]), time(v["opened_at_ms"].as_i64().unwrap_or(0)), format!("{approve} {decline}")]
        })
        .collect();
    let alert_rows: Vec<Vec<String>> = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let note = format!(r#"<label for="anote-{i}">Note</label> <input id="anote-{i}" name="note" maxlength="500"> "#);
            let close = post_form(&format!("/ops/risk/alerts/{}/close", a.alert_id), &op.csrf, &note, "Close", &format!("close-{i}"));
            vec![format!("<code>{}</code>", escape(&a.alert_id)), escape(&a.scenario), escape(&a.player_id), time(a.opened_at_ms), close]
        })
        .collect();
    let body = format!(
        "{}{}",
        table(
            "Reviews waiting",
            &["Review", "Flow", "Player", "Status", "Opened", "Decide"],
            &review_rows
        ),
        table(
            "Open AML alerts",
            &["Alert", "Scenario", "Player", "Opened", "Action"],
            &alert_rows
        )
    );
    render("Risk", "/ops/risk", &op, &q, &body)
}

pub async fn decide_review(
    State(c): St,
    Path(id): Path<String>,
    Posted { op, form: f }: Posted,
) -> Response {
    let body = json!({
        "decision": f.get("decision").cloned().unwrap_or_default(),
        "note": f.get("note").cloned().unwrap_or_default(),
    });
    let req =
        Body::from_json(body.to_string().as_bytes()).and_then(|b| review::DecideRequest::parse(&b));
    let outcome = match (req, review::check_id(&id)) {
        (Ok(r), Ok(())) => match reviews::decide(&c.ctx, &id, &r, &op.name).await {
            Ok(_) => Ok(format!("Review {id} decided.")),
            Err(e) => Err(said(&e)),
        },
        (Err(e), _) | (_, Err(e)) => Err(said(&e)),
    };
    back("/ops/risk", outcome)
}

pub async fn close_alert(
    State(c): St,
    Path(id): Path<String>,
    Posted { op, form: f }: Posted,
) -> Response {
    let body = json!({ "note": f.get("note").cloned().unwrap_or_default() });
    let note = Body::from_json(body.to_string().as_bytes()).and_then(|b| aml::parse_close_note(&b));
    let outcome = match note {
        Ok(n) => match aml::close(&c.ctx, &id, &n, &op.name).await {
            Ok(_) => Ok(format!("Alert {id} closed.")),
            Err(e) => Err(said(&e)),
        },
        Err(e) => Err(said(&e)),
    };
    back("/ops/risk", outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_redirect() {
        assert_eq!(
            urlencode("Case a/b 1 resolved."),
            "Case%20a%2Fb%201%20resolved."
        );
    }
}
