//! Reconciliation cases: one per mismatched line or record, with the
//! evidence of both sides. The id is derived from (PSP, day, match key,
//! class) and the case is created with a conditional put, so re-running a
//! day never opens a case twice. An operator resolves a case with a note.
//!
//! | item | pk                      | sk        |
//! |------|-------------------------|-----------|
//! | case | `RCASES#<day>#<psp>`    | `<id>`    |
//!
//! Ids read `rc_<yyyymmdd>_<16 hex>_<psp>`, so a case is found from its id.

use serde::Serialize;

use crate::store::Doc;
use sha2::{Digest, Sha256};

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::PspId;
use crate::store::{Attr, Cond, Item, ItemExt, Key, Query, SkRange, StoreError, UpdateOp, Write};

use crate::domain::cases::{
    self, BookedEvidence, CaseKind, CaseStatus, Evidence, LineEvidence, NewCase,
};
use crate::domain::recon::matcher::{Class, Theirs};
use crate::domain::Ctx;
use crate::schema::recon_index::Record;

/// Cases returned per page.
pub const MAX_PAGE: usize = 500;
/// Store pages read per PSP for one listing (a status filter skips items).
const MAX_SCAN_PAGES: usize = 100;
/// The longest resolution note kept.
pub const MAX_NOTE: usize = 2000;

pub fn case_id(psp: &PspId, day: Day, key: &str, class: Class) -> String {
    let digest = Sha256::digest(format!("{psp}|{day}|{key}|{}", class.as_str()).as_bytes());
    let compact: String = day
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("rc_{compact}_{}_{psp}", hex::encode(&digest[..8]))
}

fn partition(day: Day, psp: &PspId) -> String {
    crate::schema::keys::recon_cases_pk(day, psp)
}

/// The key of a case, from its id alone.
fn key_of(id: &str) -> Result<Key, Error> {
    let bad = || Error::validation("case_id", "is not a reconciliation case id");
    let rest = id.strip_prefix("rc_").ok_or_else(bad)?;
    let (date, rest) = rest.split_once('_').ok_or_else(bad)?;
    let (hash, psp) = rest.split_once('_').ok_or_else(bad)?;
    // All ASCII digits first: the id comes from the URL, and slicing a
    // multi-byte character in two would panic.
    if date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || hash.len() != 16
        || !hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    let (y, md) = date.split_at_checked(4).ok_or_else(bad)?;
    let (m, d) = md.split_at_checked(2).ok_or_else(bad)?;
    let day = Day::parse(&format!("{y}-{m}-{d}")).ok_or_else(bad)?;
    let psp = PspId::parse(psp).map_err(|_| bad())?;
    Ok(crate::schema::keys::recon_case(day, &psp, id))
}

fn line_evidence(t: &Theirs) -> LineEvidence {
    LineEvidence {
        line: t.line,
        kind: t.kind.as_str(),
        reference: t.reference.clone(),
        payment_id: t.payment_id.clone(),
        gross_minor: t.gross_minor,
        fee_minor: t.fee_minor,
        currency: t.currency,
    }
}

fn booked_evidence(r: &Record) -> BookedEvidence {
    BookedEvidence {
        kind: r.kind.as_str(),
        payment_id: r.payment_id.clone(),
        gross_minor: r.gross_minor,
        currency: r.currency,
        method: r.method.clone(),
        event_id: r.event_id.clone(),
    }
}

/// A reconciliation case to open: one line or record of a PSP's day.
pub struct LineCase<'a> {
    pub psp: &'a PspId,
    pub day: Day,
    pub class: Class,
    pub key: &'a str,
    pub theirs: Option<&'a Theirs>,
    pub ours: Option<&'a Record>,
    /// What we found beyond the two sides (our payment's status, the expected fee…).
    pub detail: Option<String>,
    pub healed: bool,
}

/// Open the case unless it exists (through [`cases::open`]); `true` when new.
pub async fn open(ctx: &Ctx, c: &LineCase<'_>) -> Result<bool, Error> {
    let id = case_id(c.psp, c.day, c.key, c.class);
    let case = NewCase {
        key: crate::schema::keys::recon_case(c.day, c.psp, &id),
        kind: CaseKind::Reconciliation,
        status: if c.healed {
            CaseStatus::Healed
        } else {
            CaseStatus::Open
        },
        evidence: Evidence::Settlement {
            case_id: id,
            psp: c.psp.clone(),
            date: c.day.to_string(),
            class: c.class.as_str(),
            match_key: c.key.to_owned(),
            theirs: c.theirs.map(line_evidence),
            ours: c.ours.map(booked_evidence),
            detail: c.detail.clone(),
        },
    };
    cases::open(ctx, case).await
}

/// A reconciliation case as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseView {
    pub case_id: Option<String>,
    pub kind: Option<String>,
    pub psp: Option<String>,
    pub date: Option<String>,
    pub class: Option<String>,
    pub key: Option<String>,
    pub status: Option<CaseStatus>,
    pub opened_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psp_side: Option<Doc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub our_side: Option<Doc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<i64>,
}

fn view(it: &Item) -> CaseView {
    let text = |name: &str| it.str_attr(name).map(str::to_owned);
    let doc = |name: &str| it.get(name).cloned().map(Doc);
    CaseView {
        case_id: text("case_id"),
        kind: text("kind"),
        psp: text("psp"),
        date: text("date"),
        class: text("class"),
        key: text("key"),
        status: it.str_attr("status").and_then(CaseStatus::parse),
        opened_ms: it.int_attr("opened_ms"),
        line: it.int_attr("line"),
        psp_side: doc("psp_side"),
        our_side: doc("our_side"),
        detail: text("detail"),
        note: text("note"),
        resolved_by: text("resolved_by"),
        resolved_ms: it.int_attr("resolved_ms"),
    }
}

/// One page of a day's cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseList {
    pub date: String,
    pub cases: Vec<CaseView>,
    pub truncated: bool,
}

/// One page of a day's cases, optionally of one PSP and one status.
pub struct CaseFilter {
    pub day: Day,
    pub psps: Vec<PspId>,
    pub status: Option<String>,
    pub limit: usize,
}

/// `GET /v1/recon/cases`: the cases of a day, PSP by PSP, in id order.
pub async fn list(ctx: &Ctx, f: &CaseFilter) -> Result<CaseList, Error> {
    if let Some(s) = &f.status {
        if CaseStatus::parse(s).is_none() {
            return Err(Error::validation(
                "status",
                "must be open, healed or resolved",
            ));
        }
    }
    let limit = f.limit.clamp(1, MAX_PAGE);
    let mut out = Vec::new();
    let mut more = false;
    'psps: for psp in &f.psps {
        let mut q = Query::new(partition(f.day, psp), SkRange::All, limit);
        for _ in 0..MAX_SCAN_PAGES {
            let page = ctx.store.query(&q).await?;
            for it in &page.items {
                if f.status
                    .as_deref()
                    .is_some_and(|s| it.str_attr("status") != Some(s))
                {
                    continue;
                }
                if out.len() == limit {
                    more = true;
                    break 'psps;
                }
                out.push(view(it));
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => continue 'psps,
            }
        }
        // Scanned the bound without reaching the end: say the list is partial.
        more = true;
    }
    Ok(CaseList {
        date: f.day.to_string(),
        cases: out,
        truncated: more,
    })
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<CaseView, Error> {
    let key = key_of(id)?;
    let it = ctx
        .store
        .get(&key)
        .await?
        .ok_or(Error::NotFound { what: "case" })?;
    Ok(view(&it))
}

/// `POST /v1/recon/cases/{id}/resolve`: close a case with a note. Resolving
/// it again with the same note answers the same; another note is a conflict.
pub async fn resolve(ctx: &Ctx, id: &str, note: &str, by: &str) -> Result<CaseView, Error> {
    let note = note.trim();
    if note.is_empty() || note.len() > MAX_NOTE {
        return Err(Error::validation(
            "note",
            format!("must be 1 to {MAX_NOTE} characters"),
        ));
    }
    let key = key_of(id)?;
    let update = Write::Update {
        key: key.clone(),
        ops: vec![
            UpdateOp::set("status", CaseStatus::Resolved.as_str()),
            UpdateOp::set("note", note),
            UpdateOp::set("resolved_by", by),
            UpdateOp::set("resolved_ms", ctx.now_ms()),
        ],
        cond: Some(Cond::And(vec![
            Cond::Exists,
            Cond::In(
                "status".into(),
                vec![
                    Attr::from(CaseStatus::Open.as_str()),
                    Attr::from(CaseStatus::Healed.as_str()),
                ],
            ),
        ])),
    };
    match ctx.store.write(update).await {
        Ok(()) => get(ctx, id).await,
        Err(StoreError::ConditionFailed { old: None, .. }) => Err(Error::NotFound { what: "case" }),
        Err(StoreError::ConditionFailed { old: Some(old), .. }) => {
            if old.str_attr("note") == Some(note) {
                Ok(view(&old))
            } else {
                Err(Error::Conflict {
                    code: ErrorCode::CaseResolved,
                    reason: "this case was already resolved with another note".into(),
                })
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_lead_back_to_their_case() {
        let psp = PspId::parse("sandbox-b").unwrap();
        let day = Day::parse("2026-11-20").unwrap();
        let a = case_id(&psp, day, "payment:pay_1", Class::AmountMismatch);
        assert_eq!(
            a,
            case_id(&psp, day, "payment:pay_1", Class::AmountMismatch)
        );
        assert_ne!(a, case_id(&psp, day, "payment:pay_1", Class::Duplicate));
        assert!(
            a.starts_with("rc_20261120_") && a.ends_with("_sandbox-b"),
            "{a}"
        );
        assert_eq!(key_of(&a).unwrap().pk, "RCASES#2026-11-20#sandbox-b");
        assert!(key_of("rc_2026_00_x").is_err());
        assert!(key_of("pay_1").is_err());
        // 8 bytes, but a character straddles the year/month cut: refused.
        assert!(key_of("rc_202é011_0123456789abcdef_sandbox").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2048))]

        /// A case id comes from the URL: any text is refused or keyed, never a panic.
        #[test]
        fn any_id_text_is_refused_or_keyed(
            date in proptest::prop_oneof!["[0-9]{8}", ".{0,9}", "[0-9é€]{3,8}"],
            hash in proptest::prop_oneof!["[0-9a-f]{16}", ".{0,17}"],
            psp in ".{0,12}",
            raw in ".{0,40}",
        ) {
            let _ = key_of(&raw);
            let _ = key_of(&format!("rc_{date}_{hash}_{psp}"));
        }
    }
}
