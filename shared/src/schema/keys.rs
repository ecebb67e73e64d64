//! The single-table key layout, in one place: every key builder of the
//! domain and the PSP layer is here (the embedded queue adapter keeps its
//! own storage keys).
//!
//! | item                     | pk                     | sk                    |
//! |--------------------------|------------------------|-----------------------|
//! | payment (intent)         | `PAY#<payment_id>`     | `A`                   |
//! | accepted webhook event   | `PAY#<payment_id>`     | `EVT#<psp>#<event_id>`|
//! | other webhook deliveries | `PAY#<payment_id>`     | `DLV#<ulid>`          |
//! | unverified deliveries    | `UNV#<claimed id>`     | `DLV#<ulid>`          |
//! | mismatch case            | `PAY#<payment_id>`     | `CASE#<psp>#<event_id>`|
//! | idempotency record       | `IDEM#<scope>#<key>`   | `A`                   |
//! | wallet balance           | `WAL#<player_id>`      | `BAL#<currency>`      |
//! | ledger entry             | `WAL#<player_id>`      | `TXN#<txn_id>`        |
//! | player profile (risk)    | `PLAYER#<player_id>`   | `PROFILE`             |
//! | sticky route             | `STICKY#<kind>#<value>`| `A`                   |
//! | operating modes          | `MODES`                | `A`                   |
//! | route health (psp::health)| `HEALTH#<psp>`        | `B#<ms>` / `CIRCUIT`  |
//! | payout                   | `PAYOUT#<id>`          | `A`                   |
//! | accepted payout event    | `PAYOUT#<id>`          | `EVT#<psp>#<event_id>`|
//! | payout case              | `PAYOUT#<id>`          | `CASE#<psp>#<event_id>`|
//! | day's payout total       | `WAL#<player_id>`      | `PODAY#<cur>#<day>`   |
//! | payouts' due work        | `PAYOUTQ`              | `<due ms>#<id>`       |
//! | refund                   | `PAY#<payment_id>`     | `REF#<refund_id>`     |
//! | refunds' due work        | `REFUNDQ`              | `<due ms>#<pay>#<ref>`|
//! | round / round txn        | `ROUND#<round_id>`     | `A` / `TXN#<txn_id>`  |
//! | notification outbox      | `OUTBOX`               | `<due ms>#<id>`       |
//! | reconciliation index     | `RECON#<psp>#<day>#<b>`| `<match key>`         |
//! | reconciliation case      | `RCASES#<day>#<psp>`   | `<case id>`           |
//! | reconciliation run       | `RECONRUN#<psp>#<day>` | `SHARD#<of>#<n>` / `REPORT` |
//! | velocity (one movement)  | `VEL#<flow>#<dim>#<v>` | `T#<ms>#<id>`         |
//! | risk decision            | `RISKDEC#<player_id>`  | `T#<ms>#<subject>`    |
//! | risk review              | `REVIEW#<subject>`     | `A`                   |
//! | open reviews             | `REVIEWQ`              | `<ms>#<subject>`      |
//! | identifier link          | `LINK#<kind>#<value>`  | `<other value>`       |
//! | player first seen        | `PLAYER#<player_id>`   | `SEEN`                |
//! | AML alert                | `ALERT#<alert_id>`     | `A`                   |
//! | player's alerts          | `PLAYER#<player_id>`   | `ALERT#<alert_id>`    |
//! | open alerts              | `ALERTQ`               | `<alert_id>`          |
//! | Google redirect payment  | `GSP#<account>`        | `REDIRECT#<request id>` |
//! | Google remittance statement | `GSP#<account>`     | `STATEMENT#<statement id>` |
//! | Google call made once    | `GSP#<account>`        | `OUT#<request id>`    |
//! | Google payment's origin  | `PAY#<payment_id>`     | `GSP`                 |
//! | Google refund's origin   | `PAY#<payment_id>`     | `GSPREF#<refund_id>`  |
//! | cashier session          | `CASHIER#<sha256(token)>` | `A`                |

use crate::ids::{EventId, IdempotencyKey, PaymentId, PlayerId, PspId, TxnId};
use crate::money::Currency;
use crate::store::Key;

pub const MAIN_SK: &str = "A";
pub const EVENT_PREFIX: &str = "EVT#";
pub const DELIVERY_PREFIX: &str = "DLV#";
pub const CASE_PREFIX: &str = "CASE#";
pub const BALANCE_PREFIX: &str = "BAL#";
pub const LEDGER_PREFIX: &str = "TXN#";

pub fn payment(id: &PaymentId) -> Key {
    Key::new(format!("PAY#{id}"), MAIN_SK)
}
pub fn payment_pk(id: &str) -> String {
    format!("PAY#{id}")
}
pub fn accepted_event(id: &PaymentId, psp: &PspId, event: &EventId) -> Key {
    Key::new(
        payment_pk(id.as_str()),
        format!("{EVENT_PREFIX}{psp}#{event}"),
    )
}
pub fn delivery(payment_id: &str, delivery_id: &str) -> Key {
    Key::new(
        payment_pk(payment_id),
        format!("{DELIVERY_PREFIX}{delivery_id}"),
    )
}
/// Deliveries that failed verification, under the payment id their body
/// CLAIMS: kept out of the payment's own partition, so forged traffic can
/// never crowd or throttle the writes that move money.
pub fn unverified_delivery(claimed_payment: &str, delivery_id: &str) -> Key {
    Key::new(
        unverified_pk(claimed_payment),
        format!("{DELIVERY_PREFIX}{delivery_id}"),
    )
}
pub fn unverified_pk(claimed_payment: &str) -> String {
    format!("UNV#{claimed_payment}")
}
pub fn case(id: &PaymentId, psp: &PspId, event: &EventId) -> Key {
    Key::new(
        payment_pk(id.as_str()),
        format!("{CASE_PREFIX}{psp}#{event}"),
    )
}
/// The sort key of a due-work item (payouts, refunds, the outbox): the due
/// time, fixed-width so string order is time order, then what is due.
pub fn due_sk(due_ms: i64, what: &str) -> String {
    format!("{:015}#{what}", due_ms.max(0))
}
/// The range of due-work items due at or before `now_ms`.
pub fn due_until(now_ms: i64) -> crate::store::SkRange {
    crate::store::SkRange::Between(String::new(), due_sk(now_ms, "~"))
}
/// A Google remittance statement (its id is the notifying request's id).
pub fn gsp_statement(account: &str, statement_id: &str) -> Key {
    Key::new(
        format!("GSP#{account}"),
        format!("STATEMENT#{statement_id}"),
    )
}
/// The payment a Google redirect request (its requestId) opened.
pub fn gsp_redirect(account: &str, request_id: &str) -> Key {
    Key::new(format!("GSP#{account}"), format!("REDIRECT#{request_id}"))
}
/// A call payloop makes to Google, its body kept from the first attempt
/// (a result never changes once sent).
pub fn gsp_outbound(account: &str, request_id: &str) -> Key {
    Key::new(format!("GSP#{account}"), format!("OUT#{request_id}"))
}
/// Which Google account and redirect request opened a payment.
pub fn gsp_payment(payment: &PaymentId) -> Key {
    Key::new(payment_pk(payment.as_str()), "GSP")
}
/// Which Google account and asynchronousRefund request asked for a refund.
pub fn gsp_refund(payment: &PaymentId, refund_id: &str) -> Key {
    Key::new(payment_pk(payment.as_str()), format!("GSPREF#{refund_id}"))
}
pub fn idempotency(scope: &str, key: &IdempotencyKey) -> Key {
    Key::new(format!("IDEM#{scope}#{}", key.as_str()), MAIN_SK)
}
pub fn wallet_pk(player: &PlayerId) -> String {
    format!("WAL#{player}")
}
pub fn balance(player: &PlayerId, currency: crate::money::Currency) -> Key {
    Key::new(
        wallet_pk(player),
        format!("{BALANCE_PREFIX}{}", currency.code()),
    )
}
pub fn ledger(player: &PlayerId, txn: &TxnId) -> Key {
    Key::new(wallet_pk(player), format!("{LEDGER_PREFIX}{txn}"))
}
/// The ledger sort key bounding `<kind>_<ulid>` txn ids at `at_ms` (their
/// ULID orders them by time): the lowest id of that millisecond, or
/// (`upper`) the highest.
pub fn ledger_time_sk(kind: &str, at_ms: i64, upper: bool) -> String {
    let ms = u64::try_from(at_ms.clamp(0, (1 << 48) - 1)).unwrap_or(0);
    let random = if upper { u128::MAX } else { 0 };
    let id = ulid::Ulid::from_parts(ms, random);
    format!("{LEDGER_PREFIX}{kind}_{id}")
}
pub fn balance_currency(sk: &str) -> Option<Currency> {
    sk.strip_prefix(BALANCE_PREFIX)
        .and_then(|c| Currency::parse(c).ok())
}
pub fn player_profile(player: &PlayerId) -> Key {
    Key::new(player_pk(player), "PROFILE")
}
pub fn player_pk(player: &PlayerId) -> String {
    format!("PLAYER#{player}")
}
/// A player's deposit limits in one currency, with their usage.
pub fn player_limits(player: &PlayerId, currency: Currency) -> Key {
    Key::new(
        player_pk(player),
        format!("{LIMITS_PREFIX}{}", currency.code()),
    )
}
pub const LIMITS_PREFIX: &str = "LIMITS#";
pub fn self_exclusion(player: &PlayerId) -> Key {
    Key::new(player_pk(player), "SELFEXCL")
}
/// The route a checkout session (`kind` = `session`) or bank (`bank`)
/// started on.
pub fn sticky(kind: &str, value: &str) -> Key {
    Key::new(format!("STICKY#{kind}#{value}"), MAIN_SK)
}
/// A cashier session, under the SHA-256 of its token (the token itself is
/// never stored).
pub fn cashier_session(token_sha256_hex: &str) -> Key {
    Key::new(format!("CASHIER#{token_sha256_hex}"), MAIN_SK)
}
pub fn modes() -> Key {
    Key::new("MODES", MAIN_SK)
}

// ---- payouts ----------------------------------------------------------

/// The partition of payouts' due work (send, ask the status, expire).
pub const PAYOUT_DUE_PK: &str = "PAYOUTQ";

pub fn payout(id: &str) -> Key {
    Key::new(format!("PAYOUT#{id}"), MAIN_SK)
}
pub fn payout_due(sk: impl Into<String>) -> Key {
    Key::new(PAYOUT_DUE_PK, sk)
}
/// A player's payouts of one currency and day (the daily limit's counter).
pub fn payout_day_total(player: &PlayerId, c: Currency, day: crate::clock::Day) -> Key {
    Key::new(wallet_pk(player), format!("PODAY#{}#{day}", c.code()))
}
pub fn payout_event(payout_id: &str, psp: &PspId, event: &EventId) -> Key {
    Key::new(
        format!("PAYOUT#{payout_id}"),
        format!("{EVENT_PREFIX}{psp}#{event}"),
    )
}
pub fn payout_case(payout_id: &str, psp: &PspId, event: &EventId) -> Key {
    Key::new(
        format!("PAYOUT#{payout_id}"),
        format!("{CASE_PREFIX}{psp}#{event}"),
    )
}

// ---- refunds ----------------------------------------------------------

/// The partition of refunds' due work (re-send, ask the status).
pub const REFUND_DUE_PK: &str = "REFUNDQ";

pub fn refund(payment: &PaymentId, refund_id: &str) -> Key {
    Key::new(payment_pk(payment.as_str()), format!("REF#{refund_id}"))
}
pub fn refund_due(sk: impl Into<String>) -> Key {
    Key::new(REFUND_DUE_PK, sk)
}

// ---- game rounds ------------------------------------------------------

pub fn round_pk(round: &str) -> String {
    format!("ROUND#{round}")
}
pub fn round(round: &str) -> Key {
    Key::new(round_pk(round), MAIN_SK)
}
pub fn round_txn(round: &str, txn: &TxnId) -> Key {
    Key::new(round_pk(round), format!("{LEDGER_PREFIX}{txn}"))
}

// ---- notifications outbox ----------------------------------------------

pub const OUTBOX_PK: &str = "OUTBOX";

pub fn outbox(due_ms: i64, id: &str) -> Key {
    Key::new(OUTBOX_PK, due_sk(due_ms, id))
}

// ---- reconciliation ---------------------------------------------------

/// One bucket of a PSP's day in the reconciliation index.
pub fn recon_index_pk(psp: &PspId, day: crate::clock::Day, bucket: u32) -> String {
    format!("RECON#{psp}#{day}#{bucket:02}")
}
/// The reconciliation cases of a PSP's day.
pub fn recon_cases_pk(day: crate::clock::Day, psp: &PspId) -> String {
    format!("RCASES#{day}#{psp}")
}
pub fn recon_case(day: crate::clock::Day, psp: &PspId, id: &str) -> Key {
    Key::new(recon_cases_pk(day, psp), id)
}
/// A reconciliation run of a PSP's day: its shards' results and its report.
pub fn recon_run_pk(psp: &PspId, day: crate::clock::Day) -> String {
    format!("RECONRUN#{psp}#{day}")
}
/// The results of a day split into `shards` shards.
pub fn recon_shard_prefix(shards: u32) -> String {
    format!("SHARD#{shards:02}#")
}
pub fn recon_shard_result(psp: &PspId, day: crate::clock::Day, shards: u32, shard: u32) -> Key {
    Key::new(
        recon_run_pk(psp, day),
        format!("{}{shard:02}", recon_shard_prefix(shards)),
    )
}
pub fn recon_day_report(psp: &PspId, day: crate::clock::Day) -> Key {
    Key::new(recon_run_pk(psp, day), "REPORT")
}

// ---- route health (psp::health) ----------------------------------------

pub fn health_pk(psp: &PspId) -> String {
    format!("HEALTH#{psp}")
}
pub fn health_circuit(psp: &PspId) -> Key {
    Key::new(health_pk(psp), "CIRCUIT")
}
/// The call tallies of one time bucket.
pub fn health_bucket(psp: &PspId, start_ms: i64) -> Key {
    Key::new(health_pk(psp), health_bucket_sk(start_ms))
}
pub fn health_bucket_sk(start_ms: i64) -> String {
    format!("B#{start_ms:015}")
}

// ---- risk, AML (domain::risk) -------------------------------------------

/// A time-ordered sort key: `T#<ms, 15 digits>#<id>`.
pub fn timed_sk(at_ms: i64, id: &str) -> String {
    format!("T#{:015}#{id}", at_ms.max(0))
}
pub fn velocity_pk(flow: &str, dim: &str, value: &str) -> String {
    format!("VEL#{flow}#{dim}#{value}")
}
pub fn velocity(flow: &str, dim: &str, value: &str, at_ms: i64, id: &str) -> Key {
    Key::new(velocity_pk(flow, dim, value), timed_sk(at_ms, id))
}
pub fn risk_decision_pk(player: &PlayerId) -> String {
    risk_decision_value_pk(player.as_str())
}
/// The decisions' partition of a player id as a velocity value names it.
pub fn risk_decision_value_pk(player: &str) -> String {
    format!("RISKDEC#{player}")
}
pub fn risk_decision(player: &PlayerId, at_ms: i64, subject: &str) -> Key {
    Key::new(risk_decision_pk(player), timed_sk(at_ms, subject))
}
pub fn risk_review(subject: &str) -> Key {
    Key::new(format!("REVIEW#{subject}"), MAIN_SK)
}
pub const REVIEW_QUEUE_PK: &str = "REVIEWQ";
pub fn review_queue(opened_ms: i64, subject: &str) -> Key {
    Key::new(REVIEW_QUEUE_PK, due_sk(opened_ms, subject))
}
pub fn risk_link_pk(kind: &str, value: &str) -> String {
    format!("LINK#{kind}#{value}")
}
pub fn risk_link(kind: &str, value: &str, other: &str) -> Key {
    Key::new(risk_link_pk(kind, value), other)
}
pub fn player_first_seen(player: &PlayerId) -> Key {
    Key::new(player_pk(player), "SEEN")
}
pub fn aml_alert(alert_id: &str) -> Key {
    Key::new(format!("ALERT#{alert_id}"), MAIN_SK)
}
pub const PLAYER_ALERT_PREFIX: &str = "ALERT#";
pub fn player_alert(player: &PlayerId, alert_id: &str) -> Key {
    Key::new(
        player_pk(player),
        format!("{PLAYER_ALERT_PREFIX}{alert_id}"),
    )
}
pub const ALERT_QUEUE_PK: &str = "ALERTQ";
pub fn open_alert(alert_id: &str) -> Key {
    Key::new(ALERT_QUEUE_PK, alert_id)
}
