//! Review items: a decision of `review` holds its deposit intent (unopened
//! at any PSP) or its payout (funds held) until an operator decides. The
//! review is written in the same transaction that holds the movement, and
//! is on the open-reviews list until decided. How a decision is carried
//! out lives with each movement (`domain::reviews`); this module keeps the
//! items.

use serde::Serialize;
use serde_json::Value;

use crate::domain::request::Body;
use crate::error::{Error, ErrorCode};
use crate::ids::PlayerId;
use crate::schema::keys;
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, UpdateOp, Write};

use crate::domain::risk::decision::StoredDecision;
use crate::domain::risk::rules::Flow;
use crate::domain::Ctx;

pub const MAX_NOTE: usize = 1000;
/// Open reviews listed at most.
pub const MAX_LISTED: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    Approved,
    Declined,
}

impl ReviewStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReviewStatus::Open => "open",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Declined => "declined",
        }
    }
    fn parse(s: &str) -> Option<ReviewStatus> {
        [
            ReviewStatus::Open,
            ReviewStatus::Approved,
            ReviewStatus::Declined,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// `{"decision": "approve"|"decline", "note": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideRequest {
    pub approve: bool,
    pub note: String,
}

impl DecideRequest {
    pub fn parse(b: &Body) -> Result<DecideRequest, Error> {
        b.only(&["decision", "note"])?;
        let approve = match b.str("decision")? {
            "approve" => true,
            "decline" => false,
            _ => return Err(Error::validation("decision", "must be approve or decline")),
        };
        let note = b.opt_str("note")?.unwrap_or_default();
        if note.len() > MAX_NOTE || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::validation(
                "note",
                format!("must be at most {MAX_NOTE} characters of text"),
            ));
        }
        Ok(DecideRequest {
            approve,
            note: note.to_owned(),
        })
    }

    pub fn status(&self) -> ReviewStatus {
        if self.approve {
            ReviewStatus::Approved
        } else {
            ReviewStatus::Declined
        }
    }
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub id: String,
    pub flow: Flow,
    pub player: PlayerId,
    pub status: ReviewStatus,
    pub opened_ms: i64,
    /// A held deposit's init request (the body it came with), to open it
    /// when approved.
    pub request: Option<Value>,
    pub note: Option<String>,
    pub decided_ms: Option<i64>,
    pub decided_by: Option<String>,
    /// What carrying out the decision did (a deposit the limits refused
    /// on approval, …).
    pub result: Option<String>,
}

impl Review {
    fn from_item(it: &Item) -> Result<Review, Error> {
        let bad = |what: &str| Error::Internal(format!("stored review lacks {what}"));
        Ok(Review {
            id: it
                .str_attr("review_id")
                .ok_or_else(|| bad("id"))?
                .to_owned(),
            flow: it
                .str_attr("flow")
                .and_then(Flow::parse)
                .ok_or_else(|| bad("flow"))?,
            player: it
                .str_attr("player")
                .and_then(|p| PlayerId::parse(p).ok())
                .ok_or_else(|| bad("player"))?,
            status: it
                .str_attr("status")
                .and_then(ReviewStatus::parse)
                .ok_or_else(|| bad("status"))?,
            opened_ms: it.int_attr("opened_ms").unwrap_or(0),
            request: it
                .str_attr("request_json")
                .and_then(|r| serde_json::from_str(r).ok()),
            note: it.str_attr("note").map(str::to_owned),
            decided_ms: it.int_attr("decided_ms"),
            decided_by: it.str_attr("decided_by").map(str::to_owned),
            result: it.str_attr("result").map(str::to_owned),
        })
    }
}

/// The writes that open a review of `d` (for the movement's own transaction).
pub fn open_writes(
    d: &StoredDecision,
    player: &PlayerId,
    request: Option<&Value>,
    now: i64,
) -> Vec<Write> {
    let mut it = item(
        &keys::risk_review(&d.decision_id),
        [
            ("review_id", Attr::from(d.decision_id.as_str())),
            ("flow", Attr::from(d.flow.as_str())),
            ("player", Attr::from(player.as_str())),
            ("status", Attr::from(ReviewStatus::Open.as_str())),
            ("opened_ms", Attr::N(now)),
            ("score", Attr::N(d.score)),
            ("version", Attr::from(d.version.as_str())),
        ],
    );
    if let Some(r) = request {
        it.insert("request_json".into(), Attr::from(r.to_string()));
    }
    vec![
        Write::Put {
            item: it,
            cond: Some(Cond::NotExists),
        },
        Write::Put {
            item: item(
                &keys::review_queue(now, &d.decision_id),
                [
                    ("review_id", Attr::from(d.decision_id.as_str())),
                    ("flow", Attr::from(d.flow.as_str())),
                ],
            ),
            cond: None,
        },
    ]
}

/// The writes that record the operator's decision and who made it (once:
/// only from open) and take the review off the open list, except an
/// approved deposit's: it stays listed until it is opened (or refused), so
/// an opening a crash interrupted is in view and a repeat resumes it.
pub fn decide_writes(r: &Review, req: &DecideRequest, actor: &str, now: i64) -> Vec<Write> {
    let mut writes = vec![Write::Update {
        key: keys::risk_review(&r.id),
        ops: vec![
            UpdateOp::set("status", req.status().as_str()),
            UpdateOp::set("note", req.note.as_str()),
            UpdateOp::set("decided_ms", Attr::N(now)),
            UpdateOp::set("decided_by", actor),
        ],
        cond: Some(Cond::eq("status", ReviewStatus::Open.as_str())),
    }];
    if !(r.flow == Flow::Deposit && req.approve) {
        writes.push(unlist(r));
    }
    writes
}

/// The write that takes a review off the open list.
fn unlist(r: &Review) -> Write {
    Write::Delete {
        key: keys::review_queue(r.opened_ms, &r.id),
        cond: None,
    }
}

/// Record what carrying out an approval did, and take it off the list.
pub async fn set_result(ctx: &Ctx, r: &Review, result: &str) -> Result<(), Error> {
    let writes = vec![
        Write::Update {
            key: keys::risk_review(&r.id),
            ops: vec![UpdateOp::set("result", result)],
            cond: Some(Cond::Exists),
        },
        unlist(r),
    ];
    ctx.store.transact(writes).await.map_err(Error::from)
}

pub async fn find(ctx: &Ctx, id: &str) -> Result<Option<Review>, Error> {
    match ctx.store.get(&keys::risk_review(id)).await? {
        Some(it) => Review::from_item(&it).map(Some),
        None => Ok(None),
    }
}

pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = (id.starts_with("pay_") || id.starts_with("po_"))
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "review_id",
            "must be the payment or payout id under review (pay_… or po_…)",
        ))
    }
}

pub async fn load(ctx: &Ctx, id: &str) -> Result<Review, Error> {
    check_id(id)?;
    find(ctx, id)
        .await?
        .ok_or(Error::NotFound { what: "review" })
}

/// A decision that contradicts the recorded one.
pub fn already_decided(r: &Review) -> Error {
    Error::Conflict {
        code: ErrorCode::ReviewDecided,
        reason: format!("this review was already decided: {}", r.status.as_str()),
    }
}

/// A review as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewView {
    pub review_id: String,
    pub flow: Flow,
    pub player_id: String,
    pub status: ReviewStatus,
    pub opened_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
    pub result: Option<String>,
    pub decision: Option<StoredDecision>,
}

pub async fn view(ctx: &Ctx, r: &Review) -> Result<ReviewView, Error> {
    let decision = crate::domain::risk::decision::find(ctx, &r.player, &r.id).await?;
    Ok(ReviewView {
        review_id: r.id.clone(),
        flow: r.flow,
        player_id: r.player.as_str().to_owned(),
        status: r.status,
        opened_at_ms: r.opened_ms,
        decided_at_ms: r.decided_ms,
        decided_by: r.decided_by.clone(),
        note: r.note.clone(),
        result: r.result.clone(),
        decision,
    })
}

/// `GET /v1/risk/reviews`: the open reviews (and approved deposits not yet
/// opened), oldest first.
pub async fn list_open(ctx: &Ctx) -> Result<Vec<ReviewView>, Error> {
    let q = Query::new(keys::REVIEW_QUEUE_PK, SkRange::All, MAX_LISTED);
    let page = ctx.store.query(&q).await?;
    let mut out = Vec::new();
    for id in page.items.iter().filter_map(|it| it.str_attr("review_id")) {
        if let Some(r) = find(ctx, id).await? {
            out.push(view(ctx, &r).await?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_body_is_checked() {
        let parse = |v: serde_json::Value| {
            DecideRequest::parse(&Body::from_json(v.to_string().as_bytes()).unwrap())
        };
        assert!(
            parse(serde_json::json!({"decision": "approve", "note": "ok"}))
                .unwrap()
                .approve
        );
        let named = |v| match parse(v) {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(serde_json::json!({"decision": "maybe"})), "decision");
        assert_eq!(
            named(serde_json::json!({"decision": "decline", "note": "x".repeat(1001)})),
            "note"
        );
        assert_eq!(
            named(serde_json::json!({"decision": "decline", "extra": 1})),
            "extra"
        );
    }
}
