//! The invariants checked after every scenario, against the PSP's truth and
//! what the clients heard:
//! 1. per player: balance = sum of ledger entries (the audit), and the
//!    balance is exactly what the PSP and the game rounds say it must be;
//!    held = the payouts still in flight;
//! 2. every payout is final, or held in `review` (flagged), or on the
//!    sweep's schedule;
//! 3. every refund a client saw accepted reached the PSP; a refund is failed
//!    only where the PSP refused or failed it; none is left requested;
//! 4. every capture is credited exactly once (the PSP's captures = our
//!    credits); idempotent answers are checked live by the clients;
//! 5. no status moved backwards;
//! 6. deposit limits are exact: what each period counts is the sum of its
//!    captured deposits (gross), no final payment still holds part of a
//!    limit; and after the self-exclusion no deposit intent or bet of that
//!    player went through.
//!
//! 7. risk: every payment and payout has its stored decision; no review is
//!    left open; an approved deposit is opened at the PSP (or refused by
//!    the limits with the reason recorded), a declined one never reaches
//!    the PSP; an approved payout left its hold for the PSP, a declined one
//!    released its funds.
//!
//! And: the queues are drained and the day reconciles with no mismatch but
//! the healed ones.

use std::collections::{BTreeMap, BTreeSet};

use payloop::domain::deposits::payment::PaymentStatus;
use payloop::domain::payouts::{Payout, PayoutStatus};
use payloop::domain::recon::report::DayReport;
use payloop::ids::{PaymentId, PlayerId};
use payloop::schema::keys;
use payloop::store::{Attr, Item, ItemExt, Key, Query, SkRange};
use serde_json::Value;

use super::psp::{ChargeStatus, OpKind, OpStatus};
use super::scenario::{eur, Flow, Scenario};

const PAGE: usize = 500;
const MAX_PAGES: usize = 100;

/// Every item of a partition (bounded), through the unfaulted store.
async fn partition(s: &Scenario, pk: &str, prefix: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut q = Query::new(pk, SkRange::Prefix(prefix.into()), PAGE);
    for _ in 0..MAX_PAGES {
        let Ok(page) = s.world.raw.store.query(&q).await else {
            break;
        };
        out.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    out
}

async fn get(s: &Scenario, key: &Key) -> Option<Item> {
    s.world.raw.store.get(key).await.ok().flatten()
}

pub async fn all(s: &mut Scenario) {
    let mut v = Vec::new();
    wallets(s, &mut v).await;
    payouts(s, &mut v).await;
    refunds(s, &mut v).await;
    payments(s, &mut v).await;
    limits(s, &mut v).await;
    excluded(s, &mut v).await;
    reviews(s, &mut v).await;
    drained(s, &mut v).await;
    s.violations.extend(v);
}

/// What the PSP and the clients say each wallet must hold (total, held).
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    total: i64,
    held: i64,
}

async fn wallets(s: &Scenario, v: &mut Vec<String>) {
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    psp_truth(s, &mut expected).await;
    game_truth(s, &mut expected);
    for player in &s.players {
        let Ok(id) = PlayerId::parse(player) else {
            continue;
        };
        let want = expected.get(player).copied().unwrap_or_default();
        let want = payout_truth(s, &id, want, v).await;
        match payloop::domain::wallet::ledger::audit(&s.world.raw, &id).await {
            Ok(a) if !a.holds() => v.push(format!("{player}: ledger audit fails: {a:?}")),
            Ok(_) => {}
            Err(e) => v.push(format!("{player}: audit failed: {e}")),
        }
        let bal = get(s, &keys::balance(&id, eur())).await;
        let n = |k: &str| bal.as_ref().and_then(|b| b.int_attr(k)).unwrap_or(0);
        let (available, held) = (n("available"), n("held"));
        let got = Expected {
            total: available + held,
            held,
        };
        if got != want {
            v.push(format!(
                "{player}: wallet {got:?} (available {available}), expected {want:?}"
            ));
        }
        let negative_explained = bal
            .as_ref()
            .and_then(|b| b.get("flagged_negative"))
            .and_then(Attr::as_bool)
            .unwrap_or(false);
        if available < 0 && !negative_explained {
            v.push(format!("{player}: available {available} < 0, not flagged"));
        }
    }
}

/// Captured deposits in, charged back and refunded ones out, per player.
async fn psp_truth(s: &Scenario, out: &mut BTreeMap<String, Expected>) {
    let Some((charges, ops)) = s
        .world
        .psp
        .book()
        .map(|b| (b.charges.clone(), b.ops.clone()))
    else {
        return;
    };
    let mut owner = BTreeMap::new();
    for c in charges.values() {
        let player = player_of(s, &c.payment_id).await;
        owner.insert(c.reference.clone(), player.clone());
        let e = out.entry(player).or_default();
        if c.status == ChargeStatus::Captured {
            e.total += c.amount.minor();
            if c.charged_back {
                e.total -= c.amount.minor();
            }
        }
    }
    for op in ops.values() {
        if op.kind == OpKind::Refund && op.status == OpStatus::Succeeded {
            let player = op
                .charge
                .as_ref()
                .and_then(|c| owner.get(c))
                .cloned()
                .unwrap_or_default();
            out.entry(player).or_default().total -= op.amount.minor();
        }
    }
}

async fn player_of(s: &Scenario, payment_id: &str) -> String {
    if let Some(p) = s.payments.get(payment_id) {
        return p.clone();
    }
    let Ok(id) = PaymentId::parse(payment_id) else {
        return String::new();
    };
    get(s, &keys::payment(&id))
        .await
        .and_then(|p| p.str_attr("player").map(str::to_owned))
        .unwrap_or_default()
}

/// Bets out, wins and rollbacks in: every request a client saw succeed.
fn game_truth(s: &Scenario, out: &mut BTreeMap<String, Expected>) {
    let bets: BTreeMap<&str, i64> = s
        .reqs
        .iter()
        .filter_map(|r| match &r.flow {
            Flow::Bet { round, minor, .. } if r.first_ok.is_some() => {
                Some((round.as_str(), *minor))
            }
            _ => None,
        })
        .collect();
    for r in s.reqs.iter().filter(|r| r.first_ok.is_some()) {
        match &r.flow {
            Flow::Bet { player, minor, .. } => {
                out.entry(player.clone()).or_default().total -= minor
            }
            Flow::Win { player, minor } => out.entry(player.clone()).or_default().total += minor,
            Flow::Rollback { player, round } => {
                let back = bets.get(round.as_str()).copied().unwrap_or(0);
                out.entry(player.clone()).or_default().total += back;
            }
            _ => {}
        }
    }
}

/// The player's payouts (from the hold entries of their ledger): money
/// paid out leaves the wallet, money in flight is held.
async fn payout_truth(
    s: &Scenario,
    player: &PlayerId,
    mut e: Expected,
    v: &mut Vec<String>,
) -> Expected {
    let entries = partition(s, &keys::wallet_pk(player), keys::LEDGER_PREFIX).await;
    let ids: BTreeSet<String> = entries
        .iter()
        .filter(|it| it.str_attr("kind") == Some("hold"))
        .filter_map(|it| it.str_attr("payout_id").map(str::to_owned))
        .collect();
    for id in ids {
        match payloop::domain::payouts::load(&s.world.raw, &id).await {
            Ok(p) if p.status == PayoutStatus::Succeeded => e.total -= p.amount.minor(),
            Ok(p) if !p.status.is_final() => e.held += p.amount.minor(),
            Ok(_) => {}
            Err(err) => v.push(format!("payout {id}: {err}")),
        }
    }
    e
}

async fn payouts(s: &Scenario, v: &mut Vec<String>) {
    let ids: Vec<String> = s
        .reqs
        .iter()
        .filter(|r| matches!(r.flow, Flow::Payout { .. }))
        .filter_map(|r| r.first_ok.as_ref())
        .filter_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .filter_map(|b| b["payout_id"].as_str().map(str::to_owned))
        .collect();
    let (ops, refused) = match s.world.psp.book() {
        Some(b) => (b.ops.clone(), b.refused.clone()),
        None => return,
    };
    let at_psp: BTreeMap<String, OpStatus> = ops
        .values()
        .filter(|o| o.kind == OpKind::Payout)
        .map(|o| (o.client_id.clone(), o.status))
        .collect();
    let notified = notified_payouts(s).await;
    for id in ids {
        let Ok(p) = payloop::domain::payouts::load(&s.world.raw, &id).await else {
            v.push(format!("payout {id}: accepted but not stored"));
            continue;
        };
        payout_way_forward(s, &p, v).await;
        let psp = at_psp.get(&id).copied();
        let refused = refused.contains(&id);
        let consistent = match p.status {
            PayoutStatus::Succeeded => psp == Some(OpStatus::Succeeded),
            // Failed at the PSP, refused by it, or declined in review.
            PayoutStatus::Failed => {
                psp == Some(OpStatus::Failed)
                    || refused
                    || (psp.is_none() && s.review_choices.get(&id) == Some(&false))
            }
            PayoutStatus::Review => true,
            // Held for a risk review: no PSP may have it.
            PayoutStatus::OnHold => psp.is_none(),
            PayoutStatus::Deferred | PayoutStatus::Pending => false,
        };
        if !consistent {
            v.push(format!(
                "payout {id}: ours {:?}, the PSP's {psp:?} (refused: {refused}) after settling",
                p.status
            ));
        }
        history_forward(
            s,
            &Key::new(format!("PAYOUT#{id}"), keys::MAIN_SK),
            false,
            v,
        )
        .await;
        let told = notified.contains(&id);
        if told != (p.status == PayoutStatus::Failed) {
            v.push(format!(
                "payout {id}: {:?}, player notified: {told}",
                p.status
            ));
        }
    }
}

/// The payouts whose failure the player was told of (the notifications
/// queue, which nobody consumes in the simulation).
async fn notified_payouts(s: &Scenario) -> BTreeSet<String> {
    let q = Query::new("Q#notifications", SkRange::All, 1_000);
    let Ok(page) = s.world.queue_store.query(&q).await else {
        return BTreeSet::new();
    };
    page.items
        .iter()
        .filter_map(|m| m.str_attr("body"))
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter(|n| n["type"] == "payout_failed")
        .filter_map(|n| n["payout_id"].as_str().map(str::to_owned))
        .collect()
}

/// A payout not final has a way forward: flagged review, or a due item.
async fn payout_way_forward(s: &Scenario, p: &Payout, v: &mut Vec<String>) {
    match p.status {
        PayoutStatus::Succeeded | PayoutStatus::Failed => {}
        PayoutStatus::OnHold => {
            let review = get(s, &keys::risk_review(&p.id)).await;
            if review.as_ref().and_then(|r| r.str_attr("status")) != Some("open") {
                v.push(format!("payout {}: on hold with no open review", p.id));
            }
        }
        PayoutStatus::Review => {
            let it = get(s, &Key::new(format!("PAYOUT#{}", p.id), keys::MAIN_SK)).await;
            let flagged = it
                .as_ref()
                .and_then(|i| i.get("flagged"))
                .and_then(Attr::as_bool)
                .unwrap_or(false);
            if !flagged {
                v.push(format!("payout {}: in review, not flagged", p.id));
            }
        }
        PayoutStatus::Deferred | PayoutStatus::Pending => {
            let scheduled = match &p.due_sk {
                Some(sk) => get(s, &Key::new("PAYOUTQ", sk.clone())).await.is_some(),
                None => false,
            };
            if !scheduled {
                v.push(format!(
                    "payout {}: {:?} with nothing to move it (stranded hold)",
                    p.id, p.status
                ));
            }
        }
    }
}

async fn refunds(s: &Scenario, v: &mut Vec<String>) {
    let (ops, refused) = match s.world.psp.book() {
        Some(b) => (b.ops.clone(), b.refused.clone()),
        None => return,
    };
    let at_psp: BTreeMap<String, OpStatus> = ops
        .values()
        .filter(|o| o.kind == OpKind::Refund)
        .map(|o| (o.client_id.clone(), o.status))
        .collect();
    for (payment_id, refund_id) in &s.accepted_refunds {
        if !at_psp.contains_key(refund_id) && !refused.contains(refund_id) {
            v.push(format!(
                "refund {refund_id}: accepted, never reached the PSP"
            ));
        }
        let _ = payment_id;
    }
    for payment_id in s.payments.keys() {
        for r in partition(s, &keys::payment_pk(payment_id), "REF#").await {
            let id = r.str_attr("refund_id").unwrap_or_default().to_owned();
            let psp = at_psp.get(&id).copied();
            let ok = match r.str_attr("status") {
                Some("succeeded") => psp == Some(OpStatus::Succeeded),
                Some("failed") => psp == Some(OpStatus::Failed) || refused.contains(&id),
                _ => false,
            };
            if !ok {
                v.push(format!(
                    "refund {id}: ours {:?}, the PSP's {psp:?} after settling",
                    r.str_attr("status")
                ));
            }
        }
    }
}

/// Every charge as the PSP ended it, and its credit: once, iff captured.
async fn payments(s: &Scenario, v: &mut Vec<String>) {
    let Some(charges) = s.world.psp.book().map(|b| b.charges.clone()) else {
        return;
    };
    for c in charges.values() {
        let Ok(id) = PaymentId::parse(&c.payment_id) else {
            continue;
        };
        let key = keys::payment(&id);
        let ours = get(s, &key)
            .await
            .and_then(|p| p.str_attr("status").and_then(PaymentStatus::parse));
        let want = match c.status {
            ChargeStatus::Captured if c.charged_back => Some(PaymentStatus::ChargedBack),
            ChargeStatus::Captured => Some(PaymentStatus::Captured),
            ChargeStatus::Failed => Some(PaymentStatus::Failed),
            ChargeStatus::Canceled => Some(PaymentStatus::Canceled),
            ChargeStatus::Open => ours.filter(|o| !o.is_final()),
        };
        if ours != want {
            v.push(format!(
                "payment {id}: ours {ours:?}, the PSP's {:?}",
                c.status
            ));
        }
        let player = player_of(s, &c.payment_id).await;
        if let Ok(pl) = PlayerId::parse(&player) {
            let credit = get(s, &keys::ledger(&pl, &id.deposit_txn_id())).await;
            if credit.is_some() != (c.status == ChargeStatus::Captured) {
                v.push(format!(
                    "payment {id}: credited {}, PSP {:?}",
                    credit.is_some(),
                    c.status
                ));
            }
            if credit.is_some() && !indexed(s, &key).await {
                v.push(format!(
                    "payment {id}: credited, but no reconciliation index record"
                ));
            }
        }
        history_forward(s, &key, true, v).await;
    }
}

/// A credited payment's reconciliation index record, put after its credit
/// (crash or not), under the day its capture event gave.
async fn indexed(s: &Scenario, payment: &Key) -> bool {
    use payloop::schema::recon_index::{bucket, match_key, partition, Kind};
    let Some(p) = get(s, payment).await else {
        return false;
    };
    let (Some(id), Some(psp), Some(at)) = (
        payment.pk.strip_prefix("PAY#"),
        p.str_attr("psp")
            .and_then(|x| payloop::ids::PspId::parse(x).ok()),
        p.int_attr("captured_occurred_ms"),
    ) else {
        return false;
    };
    let sk = match_key(Kind::Payment, id, "");
    let day = payloop::clock::Day::of_ms(at);
    get(s, &Key::new(partition(&psp, day, bucket(&sk)), sk))
        .await
        .is_some()
}

/// Statuses in a history only move forward.
async fn history_forward(s: &Scenario, key: &Key, payment: bool, v: &mut Vec<String>) {
    let Some(it) = get(s, key).await else {
        return;
    };
    let statuses: Vec<String> = match it.get("history") {
        Some(Attr::L(list)) => list
            .iter()
            .filter_map(|h| match h {
                Attr::M(m) => m.get("status").and_then(|a| a.as_str()).map(str::to_owned),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for pair in statuses.windows(2) {
        let forward = if payment {
            match (
                PaymentStatus::parse(&pair[0]),
                PaymentStatus::parse(&pair[1]),
            ) {
                (Some(a), Some(b)) => a.can_move_to(b),
                _ => false,
            }
        } else {
            PayoutStatus::parse(&pair[0]).is_some_and(|a| !a.is_final())
        };
        if !forward {
            v.push(format!(
                "{}: status moved {} → {}",
                key.pk, pair[0], pair[1]
            ));
        }
    }
}

async fn drained(s: &Scenario, v: &mut Vec<String>) {
    for q in ["Q#events", "Q#events-dlq"] {
        let page = s
            .world
            .queue_store
            .query(&Query::new(q, SkRange::All, 5))
            .await;
        if let Ok(p) = page {
            for m in p.items {
                v.push(format!("{q} still holds {:?}", m.str_attr("body")));
            }
        }
    }
    if let Some(b) = s.world.psp.book() {
        let stuck = b.outbox.iter().filter(|o| !o.acknowledged).count();
        if stuck > 0 {
            v.push(format!("{stuck} webhook(s) never accepted"));
        }
    }
    let unsettled: Vec<String> = s
        .reqs
        .iter()
        .filter(|r| r.done.is_none())
        .map(|r| format!("{} {}", r.path, r.key))
        .collect();
    if !unsettled.is_empty() {
        v.push(format!(
            "requests never answered definitively: {unsettled:?}"
        ));
    }
}

/// The day's reconciliation: nothing to look at but the captures it healed.
pub fn recon_report(s: &mut Scenario, report: &DayReport) {
    if super::scenario::trace() {
        eprintln!("reconciliation report: {report:?}");
    }
    match report {
        DayReport::Complete(r) if r.mismatches == r.healed => {}
        DayReport::Complete(r) => s.violations.push(format!(
            "reconciliation: {} mismatch(es), {} healed: {:?}",
            r.mismatches, r.healed, r.classes
        )),
        DayReport::Malformed(r) => s
            .violations
            .push(format!("reconciliation: report refused: {:?}", r.errors)),
    }
}

/// Invariant 6, the limits: no final payment still holds part of a limit,
/// and what each period counts is exactly the captured deposits (charged
/// back or not: gross) of its latest period.
async fn limits(s: &Scenario, v: &mut Vec<String>) {
    use payloop::clock::Day;
    use payloop::domain::limits::{reserve::Usage, Period};
    let captured = captured_by_player(s).await;
    for (player, _) in super::scenario::LIMITS {
        let Ok(pl) = PlayerId::parse(player) else {
            continue;
        };
        let item = get(s, &keys::player_limits(&pl, eur())).await;
        let usage = Usage::from_item(item.as_ref());
        for (id, amount) in usage.holds() {
            let status = match PaymentId::parse(id) {
                Ok(id) => get(s, &keys::payment(&id))
                    .await
                    .and_then(|p| p.str_attr("status").and_then(PaymentStatus::parse)),
                Err(_) => None,
            };
            if status.is_some_and(|s| s.is_final()) {
                v.push(format!(
                    "payment {id}: {status:?} but still holds {amount} of its limits"
                ));
            }
        }
        let mine = captured.get(player).map(Vec::as_slice).unwrap_or(&[]);
        for p in Period::ALL {
            let mut per_start: BTreeMap<Day, i64> = BTreeMap::new();
            for (created_ms, amount) in mine {
                *per_start
                    .entry(p.span(Day::of_ms(*created_ms)).0)
                    .or_default() += amount;
            }
            let want = per_start.into_iter().next_back();
            if usage.counted(p) != want {
                v.push(format!(
                    "{player}: the {} limit counts {:?}, its captured deposits {want:?}",
                    p.as_str(),
                    usage.counted(p)
                ));
            }
        }
    }
}

/// Each player's captured (or charged back) deposits: when the intent was
/// created (its limits hold is dated so) and the amount.
async fn captured_by_player(s: &Scenario) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let Some(charges) = s.world.psp.book().map(|b| b.charges.clone()) else {
        return out;
    };
    for c in charges.values() {
        let Ok(id) = PaymentId::parse(&c.payment_id) else {
            continue;
        };
        let Some(p) = get(s, &keys::payment(&id)).await else {
            continue;
        };
        let status = p.str_attr("status").and_then(PaymentStatus::parse);
        if !matches!(
            status,
            Some(PaymentStatus::Captured | PaymentStatus::ChargedBack)
        ) {
            continue;
        }
        let (Some(player), Some(created), Some(amount)) = (
            p.str_attr("player"),
            p.int_attr("created_ms"),
            p.int_attr("amount"),
        ) else {
            continue;
        };
        out.entry(player.to_owned())
            .or_default()
            .push((created, amount));
    }
    out
}

/// Invariant 6, self-exclusion: nothing of the excluded player after it.
async fn excluded(s: &Scenario, v: &mut Vec<String>) {
    let Some(at) = s.excluded_at else {
        return;
    };
    let player = super::scenario::EXCLUDED;
    for (id, owner) in &s.payments {
        let Ok(pid) = PaymentId::parse(id) else {
            continue;
        };
        if owner != player {
            continue;
        }
        let created = get(s, &keys::payment(&pid))
            .await
            .and_then(|p| p.int_attr("created_ms"))
            .unwrap_or(0);
        if created > at {
            v.push(format!(
                "{player}: deposit {id} opened after the self-exclusion"
            ));
        }
    }
    let Ok(pl) = PlayerId::parse(player) else {
        return;
    };
    let entries = partition(s, &keys::wallet_pk(&pl), "").await;
    for e in entries {
        let bet = e.str_attr("reason") == Some("bet");
        if bet && e.int_attr("at_ms").unwrap_or(0) > at {
            v.push(format!(
                "{player}: a bet after the self-exclusion: {:?}",
                e.str_attr("sk")
            ));
        }
    }
}

/// Invariant 7: decisions, and reviews carried out as decided.
async fn reviews(s: &Scenario, v: &mut Vec<String>) {
    use payloop::domain::risk::{decision, review};
    let ctx = &s.world.raw;
    for (id, player) in &s.payments {
        let Ok(p) = PlayerId::parse(player) else {
            continue;
        };
        if !matches!(decision::find(ctx, &p, id).await, Ok(Some(_))) {
            v.push(format!("payment {id}: no stored risk decision"));
        }
    }
    for r in s
        .reqs
        .iter()
        .filter(|r| matches!(r.flow, Flow::Payout { .. }))
    {
        let Some((_, body)) = &r.first_ok else {
            continue;
        };
        let b: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let (Some(id), Some(player)) = (b["payout_id"].as_str(), b["player_id"].as_str()) else {
            continue;
        };
        let Ok(p) = PlayerId::parse(player) else {
            continue;
        };
        if !matches!(decision::find(ctx, &p, id).await, Ok(Some(_))) {
            v.push(format!("payout {id}: no stored risk decision"));
        }
    }
    for id in s.open_reviews().await {
        v.push(format!("review {id}: still open after settling"));
    }
    for (id, approve) in &s.review_choices {
        let Ok(Some(r)) = review::find(ctx, id).await else {
            v.push(format!("review {id}: decided but not found"));
            continue;
        };
        let want = if *approve {
            review::ReviewStatus::Approved
        } else {
            review::ReviewStatus::Declined
        };
        if r.status != want {
            v.push(format!(
                "review {id}: {:?}, the operator decided {want:?}",
                r.status
            ));
        }
        if id.starts_with("pay_") {
            let opened = PaymentId::parse(id).ok().map(|pid| keys::payment(&pid));
            let exists = match &opened {
                Some(k) => get(s, k).await.is_some(),
                None => false,
            };
            let at_psp = !s
                .world
                .psp
                .charges_where(|c| c.payment_id == *id)
                .is_empty();
            let refused = r
                .result
                .as_deref()
                .is_some_and(|x| x.starts_with("not opened"));
            if *approve && !(exists || refused) {
                v.push(format!(
                    "deposit {id}: approved, never opened ({:?})",
                    r.result
                ));
            }
            if !*approve && (exists || at_psp) {
                v.push(format!("deposit {id}: declined in review, yet opened"));
            }
        } else {
            match payloop::domain::payouts::load(ctx, id).await {
                Ok(p) if *approve && p.status == PayoutStatus::OnHold => {
                    v.push(format!("payout {id}: approved, still on hold"))
                }
                Ok(p) if !*approve && p.status != PayoutStatus::Failed => {
                    v.push(format!("payout {id}: declined in review, {:?}", p.status))
                }
                Ok(_) => {}
                Err(e) => v.push(format!("payout {id}: {e}")),
            }
        }
    }
}
