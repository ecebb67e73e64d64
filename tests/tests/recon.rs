//! Reconciliation end to end: deposits, refunds, chargebacks and payouts made through
//! the sandbox PSPs, then settlement reports — generated with a mismatch of
//! every class planted at a known line, or the sandbox's own — matched
//! against the wallet. Every line's class is checked, re-runs change
//! nothing, a healed capture is never credited twice, a malformed report
//! applies nothing, and the schedule → SQS shards → merge path of the
//! Lambda gives the same report as one run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use payloop::clock::Day;
use payloop::domain::recon::run::{self, Source};
use payloop::domain::recon::Class;
use payloop::ids::PspId;
use payloop::queue::QueueName;
use payloop_tests::{assert_wallet_audits, Seen, TestStack, WAIT};
use serde_json::{json, Value};

const HEADER: &str = "reference,payment_id,type,gross,fee,net,currency,settled_date";

fn sandbox() -> PspId {
    PspId::parse("sandbox").unwrap()
}

/// One report line: gross and fee as decimals, net computed.
fn line(
    reference: &str,
    payment_id: &str,
    kind: &str,
    gross: &str,
    fee: &str,
    currency: &str,
    day: Day,
) -> String {
    let cents = |s: &str| match s.strip_prefix('-') {
        Some(abs) => -payloop_tests::minor(abs),
        None => payloop_tests::minor(s),
    };
    let net = cents(gross) - cents(fee);
    let sign = if net < 0 { "-" } else { "" };
    format!(
        "{reference},{payment_id},{kind},{gross},{fee},{sign}{}.{:02},{currency},{day}",
        net.abs() / 100,
        net.abs() % 100
    )
}

fn write_report(dir: &Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = format!("{HEADER}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

async fn refund(t: &TestStack, id: &str, amount: &str) -> Value {
    let req = t
        .http
        .post(t.url(&format!("/v1/payments/{id}/refund")))
        .bearer_auth(&t.stack.secrets.platform_key)
        .header("idempotency-key", format!("rf-{id}"))
        .json(&json!({"amount": amount, "reason": "player request"}));
    let r = t.send(req).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

async fn wait_balance(t: &TestStack, player: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while t.balance_minor(player).await != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{player} never reached {want}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn cases(t: &TestStack, query: &str) -> Vec<Value> {
    let r = t.get(&format!("/v1/recon/cases?{query}"), true).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["cases"].as_array().unwrap().clone()
}

async fn credits(t: &TestStack, player: &str) -> usize {
    let w = t.get(&format!("/v1/wallet/{player}"), true).await.json();
    w["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "credit")
        .count()
}

/// A report as the JSON the API serves.
fn json(r: payloop::domain::recon::report::DayReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_mismatch_is_classified_at_its_line_and_reruns_change_nothing() {
    let t = TestStack::start().await;
    let ctx = &t.stack.ctx;
    let day = Day::today();
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = t.deposit(&format!("rc{i}"), "10.00").await;
        t.approve(&id).await;
        ids.push(id);
    }
    let pending = t.deposit("rc-pending", "25.00").await;
    let declined = t.deposit("rc-declined", "5.00").await;
    t.checkout(&declined, "decline").await;
    t.wait_status(&declined, "failed").await;
    let rf = refund(&t, &ids[6], "4.00").await;
    let rf_ref = rf["psp_reference"]
        .as_str()
        .expect("the PSP's refund reference")
        .to_owned();
    wait_balance(&t, "rc6", 600).await;
    t.charge_back(&ids[7]).await;

    let unknown = payloop::ids::new_ulid("pay");
    let planted = [
        (
            line("r0", &ids[0], "payment", "10.00", "0.15", "EUR", day),
            Class::Matched,
        ),
        (
            line("r1", &ids[1], "payment", "10.01", "0.15", "EUR", day),
            Class::AmountMismatch,
        ),
        (
            line("r2", &ids[2], "payment", "10.00", "0.15", "USD", day),
            Class::CurrencyMismatch,
        ),
        (
            line("r3", &ids[3], "payment", "10.00", "0.50", "EUR", day),
            Class::FeeMismatch,
        ),
        (
            line("r0", &ids[0], "payment", "10.00", "0.15", "EUR", day),
            Class::Duplicate,
        ),
        (
            line("rx", &unknown, "payment", "10.00", "0.15", "EUR", day),
            Class::MissingInWallet,
        ),
        (
            line("rp", &pending, "payment", "25.00", "0.38", "EUR", day),
            Class::MissingInWallet,
        ),
        (
            line("rd", &declined, "payment", "5.00", "0.08", "EUR", day),
            Class::StatusMismatch,
        ),
        (
            line("acct-fee-1", "", "fee", "0.00", "2.50", "EUR", day),
            Class::Fee,
        ),
        (
            line(&rf_ref, &ids[6], "refund", "-4.00", "0.00", "EUR", day),
            Class::Matched,
        ),
        (
            line("cb", &ids[7], "chargeback", "-10.00", "0.00", "EUR", day),
            Class::Matched,
        ),
        (
            line("r5", &ids[5], "payment", "10.00", "0.15", "EUR", day),
            Class::Matched,
        ),
        (
            line("r6", &ids[6], "payment", "10.00", "0.15", "EUR", day),
            Class::Matched,
        ),
        (
            line("r7", &ids[7], "payment", "10.00", "0.15", "EUR", day),
            Class::Matched,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = planted.iter().map(|(l, _)| l.clone()).collect();
    let src = Source::Path(write_report(dir.path(), "day.csv", &lines));
    let expected: Vec<(u64, Class)> = planted
        .iter()
        .enumerate()
        .map(|(i, (_, c))| (i as u64 + 2, *c))
        .collect();

    let mut seen = Seen::default();
    let first = run::reconcile_day(ctx, &sandbox(), day, 1, &src, &mut seen)
        .await
        .map(json)
        .unwrap();
    seen.lines.sort();
    assert_eq!(seen.lines, expected, "every line's class");
    assert_eq!(
        seen.records,
        vec![(format!("payment:{}", ids[4]), Class::MissingAtPsp)],
        "the deposit the PSP never settled"
    );
    assert_eq!(first["status"], "complete");
    assert_eq!(first["lines"], 14);
    assert_eq!(
        first["records"], 11,
        "8 captures, a refund, a chargeback, the healed capture"
    );
    assert_eq!(
        first["classes"],
        json!({"matched": 6, "amount_mismatch": 1, "currency_mismatch": 1, "missing_in_wallet": 2,
               "missing_at_psp": 1, "duplicate": 1, "status_mismatch": 1, "fee": 1, "fee_mismatch": 1})
    );
    assert_eq!(
        (first["mismatches"].clone(), first["healed"].clone()),
        (json!(8), json!(1))
    );

    // The capture the webhook never brought is in the wallet, once.
    t.wait_status(&pending, "captured").await;
    assert_eq!(t.balance_minor("rc-pending").await, 2500);

    // One case per mismatch, with both sides' evidence.
    let all = cases(&t, &format!("date={day}&psp=sandbox")).await;
    assert_eq!(all.len(), 8, "{all:#?}");
    let amount = all
        .iter()
        .find(|c| c["class"] == "amount_mismatch")
        .unwrap();
    assert_eq!(amount["line"], 3);
    assert_eq!(amount["psp_side"]["gross"], "10.01");
    assert_eq!(amount["our_side"]["gross"], "10.00");
    assert_eq!(amount["status"], "open");
    let healed: Vec<&Value> = all.iter().filter(|c| c["status"] == "healed").collect();
    assert_eq!(healed.len(), 1);
    assert_eq!(healed[0]["our_side"]["payment_id"], json!(pending));
    let fee = all.iter().find(|c| c["class"] == "fee_mismatch").unwrap();
    assert!(fee["detail"].as_str().unwrap().contains("0.15"), "{fee}");
    let missing = all.iter().find(|c| c["class"] == "missing_at_psp").unwrap();
    assert!(missing["line"].is_null());
    assert_eq!(missing["our_side"]["payment_id"], json!(ids[4]));

    // Re-run, split in four shards: the same classes, no new case, no new money.
    let mut again = Seen::default();
    let second = run::reconcile_day(ctx, &sandbox(), day, 4, &src, &mut again)
        .await
        .map(json)
        .unwrap();
    again.lines.sort();
    assert_eq!(again.lines, expected);
    assert_eq!(again.records, seen.records);
    for field in [
        "lines",
        "records",
        "classes",
        "healed",
        "methods",
        "refunds",
        "chargebacks",
        "unsettled",
    ] {
        assert_eq!(second[field], first[field], "{field}");
    }
    assert_eq!(second["shards"], 4);
    assert_eq!(cases(&t, &format!("date={day}")).await.len(), 8);
    assert_eq!(t.balance_minor("rc-pending").await, 2500);

    // The late webhook arrives: the payment is captured already, no second credit.
    t.checkout(&pending, "approve").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = t
            .get(&format!("/v1/payments/{pending}/deliveries"), true)
            .await
            .json();
        if !log["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late webhook never came"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    t.wait_idle().await;
    assert_eq!(t.balance_minor("rc-pending").await, 2500);
    assert_eq!(credits(&t, "rc-pending").await, 1);
    for i in 0..8 {
        assert_wallet_audits(ctx, &format!("rc{i}")).await;
    }
    assert_wallet_audits(ctx, "rc-pending").await;

    // Resolving: once, the same note again is the same answer, another note conflicts.
    let id = amount["case_id"].as_str().unwrap();
    let path = format!("/v1/recon/cases/{id}/resolve");
    let ok = t
        .post_platform(&path, None, r#"{"note":"PSP confirmed 10.00"}"#)
        .await;
    assert_eq!(
        (ok.status, ok.json()["status"].as_str()),
        (200, Some("resolved")),
        "{}",
        ok.text
    );
    assert_eq!(ok.json()["resolved_by"], "platform");
    let same = t
        .post_platform(&path, None, r#"{"note":"PSP confirmed 10.00"}"#)
        .await;
    assert_eq!(same.status, 200);
    let other = t
        .post_platform(&path, None, r#"{"note":"something else"}"#)
        .await;
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (409, Some("case_resolved"))
    );
    let empty = t.post_platform(&path, None, r#"{"note":"  "}"#).await;
    assert_eq!(
        (empty.status, empty.json()["details"]["field"].as_str()),
        (422, Some("note")),
        "{}",
        empty.text
    );
    let bogus = t
        .post_platform("/v1/recon/cases/pay_1/resolve", None, r#"{"note":"x"}"#)
        .await;
    assert_eq!(bogus.status, 422);
    assert_eq!(
        cases(&t, &format!("date={day}&status=resolved"))
            .await
            .len(),
        1
    );
    assert_eq!(cases(&t, &format!("date={day}&status=open")).await.len(), 6);
    let bad = t
        .get(&format!("/v1/recon/cases?date={day}&status=closed"), true)
        .await;
    assert_eq!(
        (bad.status, bad.json()["details"]["field"].as_str()),
        (422, Some("status"))
    );
    let no_date = t.get("/v1/recon/cases", true).await;
    assert_eq!(no_date.json()["details"]["field"], "date");

    // The stored report, as JSON and CSV.
    let r = t
        .get(&format!("/v1/recon/reports/sandbox/{day}"), true)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["classes"], first["classes"]);
    assert!(r.json().get("csv").is_none());
    let csv = t
        .get(&format!("/v1/recon/reports/sandbox/{day}?format=csv"), true)
        .await;
    assert_eq!(csv.header("content-type"), Some("text/csv"));
    assert!(
        csv.text
            .starts_with(payloop::domain::recon::report::CSV_HEADER),
        "{}",
        csv.text
    );
    assert!(
        csv.text.contains("class,missing_at_psp,,,1,,,,\n"),
        "{}",
        csv.text
    );
    t.shutdown().await;
}

/// Wager a player's deposit once (bet, then win it back), basic KYC, then
/// withdraw `amount` and wait for the PSP to pay it out.
async fn pay_out(t: &TestStack, player: &str, wager: &str, amount: &str) -> String {
    t.wager(player, "r", wager).await;
    let kyc = t
        .put_platform(
            &format!("/v1/admin/players/{player}/kyc"),
            json!({"kyc_level": "basic"}),
        )
        .await;
    assert_eq!(kyc.status, 200, "{}", kyc.text);
    let req = t
        .http
        .post(t.url("/v1/payouts/init"))
        .bearer_auth(&t.stack.secrets.client_key)
        .header("idempotency-key", format!("po-{player}"))
        .json(&json!({"player_id": player, "amount": amount, "currency": "EUR", "method": "card"}));
    let r = t.send(req).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["payout_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = t.get(&format!("/v1/payouts/{id}"), false).await.json();
        if p["status"] == "succeeded" {
            return id;
        }
        assert!(tokio::time::Instant::now() < deadline, "payout stuck: {p}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_report_reconciles_clean_inline_and_over_the_shard_queue() {
    let t = TestStack::start().await;
    let ctx = &t.stack.ctx;
    let day = Day::today();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = t
            .deposit(&format!("sq{i}"), &format!("{}.33", 10 + i))
            .await;
        t.approve(&id).await;
        ids.push(id);
    }
    refund(&t, &ids[0], "2.00").await;
    wait_balance(&t, "sq0", 833).await;
    t.charge_back(&ids[1]).await;
    let payout_id = pay_out(&t, "sq4", "14.33", "5.00").await;

    // `payloop reconcile` goes through this operator endpoint.
    let body = json!({"psp": "sandbox", "date": day.to_string()}).to_string();
    let r = t.post_platform("/v1/recon/runs", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    assert_eq!(
        report["lines"], 8,
        "5 payments, a refund, a chargeback, a payout: {report:#}"
    );
    assert_eq!(report["classes"]["matched"], 8, "{report:#}");
    assert_eq!(report["records"], 8);
    assert_eq!(report["mismatches"], 0);
    let card = report["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "card")
        .unwrap();
    // 10.33 … 14.33 = 61.65 gross; fees 1.5% each: 0.15+0.17+0.18+0.20+0.21 = 0.91.
    assert_eq!(card["payments"]["gross"], "61.65");
    assert_eq!(card["payments"]["fee"], "0.91");
    assert_eq!(card["refunds"]["gross"], "-2.00");
    assert_eq!(card["chargebacks"]["gross"], "-11.33");
    assert_eq!(card["net"], "47.41", "a payout is not a loss of margin");
    assert_eq!(card["margin_bps"], 7690);
    assert_eq!(card["payouts"]["gross"], "-5.00");
    assert_eq!(card["payouts"]["count"], 1);
    let cases_now = cases(&t, &format!("date={day}")).await;
    assert!(cases_now.is_empty(), "{cases_now:#?} ({payout_id})");
    for (field, why) in [
        ("psp", "is not a configured PSP"),
        ("date", "must not be in the future"),
    ] {
        let mut b = json!({"psp": "sandbox", "date": day.to_string()});
        b[field] = json!(if field == "psp" { "nope" } else { "2999-01-01" });
        let bad = t
            .post_platform("/v1/recon/runs", None, &b.to_string())
            .await;
        assert_eq!(
            (bad.status, bad.json()["details"]["field"].as_str()),
            (422, Some(field))
        );
        assert!(bad.text.contains(why), "{}", bad.text);
    }

    // The Lambda: the schedule fans the day out over the shard queue, each
    // message runs one shard, the last one merges the report.
    let req = reconciliation::RunRequest {
        psp: Some("sandbox".into()),
        date: Some(day.to_string()),
        shards: Some(3),
        source: None,
    };
    let planned = reconciliation::scheduled(ctx, &req, true, day.next())
        .await
        .unwrap();
    assert_eq!(planned["runs"][0]["status"], "queued");
    let mut handled = 0;
    while handled < 3 {
        let msgs = ctx
            .queue
            .receive(
                QueueName::Recon,
                10,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
            .await
            .unwrap();
        assert!(!msgs.is_empty(), "shard messages missing after {handled}");
        for m in msgs {
            let event = json!({"Records": [{"messageId": m.id, "body": m.body}]});
            let out = reconciliation::handle(ctx, event.clone(), true).await;
            assert_eq!(out["batchItemFailures"], json!([]), "{out}");
            if handled == 0 {
                // SQS delivers at least once: the same shard again changes nothing.
                let again = reconciliation::handle(ctx, event, true).await;
                assert_eq!(again["batchItemFailures"], json!([]), "{again}");
            }
            ctx.queue
                .delete(QueueName::Recon, &m.receipt)
                .await
                .unwrap();
            handled += 1;
        }
    }
    let merged = json(run::stored_report(ctx, &sandbox(), day).await.unwrap());
    assert_eq!(merged["shards"], 3);
    for field in ["lines", "classes", "methods", "refunds", "chargebacks"] {
        assert_eq!(merged[field], report[field], "{field}");
    }
    // A message that is not a shard is failed (redelivered, then dead-lettered), not dropped.
    let junk = reconciliation::handle(
        ctx,
        json!({"Records": [{"messageId": "m1", "body": "{}"}]}),
        true,
    )
    .await;
    assert_eq!(junk["batchItemFailures"], json!([{"itemIdentifier": "m1"}]));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_report_is_refused_with_line_numbers_and_applies_nothing() {
    let t = TestStack::start().await;
    let ctx = &t.stack.ctx;
    let day = Day::today();
    let pending = t.deposit("mf", "25.00").await;
    let heal = line("rp", &pending, "payment", "25.00", "0.38", "EUR", day);
    let dir = tempfile::tempdir().unwrap();
    let good_rest = line("rq", "pay_other", "payment", "1.00", "0.02", "EUR", day);
    let reports: Vec<(&str, String, &str)> = vec![
        (
            "header",
            format!("reference,payment_id,kind,gross,fee,net,currency,settled_date\n{heal}\n"),
            "line 1",
        ),
        (
            "amount",
            format!(
                "{HEADER}\n{heal}\n{}\n",
                good_rest.replace("1.00,0.02,0.98", "1.0x,0.02,0.98")
            ),
            "line 3: gross",
        ),
        (
            "currency",
            format!("{HEADER}\n{heal}\n{}\n", good_rest.replace("EUR", "EUX")),
            "line 3: currency",
        ),
        (
            "truncated",
            format!("{HEADER}\n{heal}\n{good_rest}"),
            "line 3: truncated",
        ),
        (
            "date",
            format!(
                "{HEADER}\n{heal}\n{}\n",
                good_rest.replace(&day.to_string(), &day.prev().to_string())
            ),
            "line 3: settled_date",
        ),
        (
            "net",
            format!("{HEADER}\n{heal}\n{}\n", good_rest.replace("0.98", "0.99")),
            "line 3: net",
        ),
    ];
    for (name, text, want) in reports {
        let path = dir.path().join(format!("{name}.csv"));
        std::fs::write(&path, text).unwrap();
        let report = run::reconcile_day(
            ctx,
            &sandbox(),
            day,
            2,
            &Source::Path(path),
            &mut Seen::default(),
        )
        .await
        .map(json)
        .unwrap();
        assert_eq!(report["status"], "malformed", "{name}: {report:#}");
        let errors = report["errors"].to_string();
        assert!(errors.contains(want), "{name}: want {want} in {errors}");
        assert!(
            cases(&t, &format!("date={day}")).await.is_empty(),
            "{name}: no case"
        );
        assert_eq!(
            t.payment(&pending).await["status"],
            "pending",
            "{name}: nothing healed"
        );
        assert_eq!(t.balance_minor("mf").await, 0);
    }
    // The same day, well formed: now the capture heals.
    let path = write_report(dir.path(), "good.csv", &[heal]);
    let report = run::reconcile_day(
        ctx,
        &sandbox(),
        day,
        1,
        &Source::Path(path),
        &mut Seen::default(),
    )
    .await
    .map(json)
    .unwrap();
    assert_eq!(
        (report["status"].as_str(), report["healed"].as_i64()),
        (Some("complete"), Some(1))
    );
    assert_eq!(t.balance_minor("mf").await, 2500);
    t.shutdown().await;
}
