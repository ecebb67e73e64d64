//! Routing one deposit: the rules' candidates, reordered by stickiness and
//! filtered by circuit state, offered in turn until a PSP opens a session.
//! Every decision (chosen, skipped, failed, probed) is kept with its reason
//! and stored on the payment.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::error::Error;
use crate::ids::{new_ulid, PaymentId, PspId};
use crate::psp::health::Circuit;
use crate::psp::routing::{Candidate, RiskLevel, RouteRequest};
use crate::psp::{PspError, Session, SessionRequest};
use crate::store::{item, Attr, ItemExt, Write, TTL};

use crate::domain::deposits::InitRequest;
use crate::domain::observe::CallOutcome;
use crate::domain::Ctx;
use crate::schema::keys;

/// How long a session or bank stays on its route.
pub const STICKY_TTL_S: i64 = 3600;

/// The outcome of routing: the PSP that opened a session, and every attempt.
pub struct Routed {
    pub psp: PspId,
    pub session: Session,
    pub reason: String,
    pub attempts: Vec<Attempt>,
    pub risk: RiskLevel,
}

pub struct Attempt {
    pub id: String,
    pub psp: PspId,
    pub outcome: AttemptOutcome,
    pub detail: String,
}

/// What one route did with the deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Not tried: its circuit is open, or it has no connector.
    Skipped,
    /// The PSP opened the checkout session: the deposit goes here.
    SessionOpened,
    /// The PSP was down or timed out: the next route is tried.
    Unavailable,
    /// The PSP refused the request: the next route is tried.
    Rejected,
}

impl AttemptOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptOutcome::Skipped => "skipped",
            AttemptOutcome::SessionOpened => "session_opened",
            AttemptOutcome::Unavailable => "unavailable",
            AttemptOutcome::Rejected => "rejected",
        }
    }
}

impl Routed {
    /// The routing decision as stored on the payment.
    pub fn record(&self) -> Attr {
        let attempts = self
            .attempts
            .iter()
            .map(|a| {
                let mut m = BTreeMap::new();
                m.insert("attempt_id".to_owned(), Attr::from(a.id.as_str()));
                m.insert("psp".to_owned(), Attr::from(a.psp.as_str()));
                m.insert("outcome".to_owned(), Attr::from(a.outcome.as_str()));
                m.insert("detail".to_owned(), Attr::from(a.detail.as_str()));
                Attr::M(m)
            })
            .collect();
        let mut m = BTreeMap::new();
        m.insert("reason".to_owned(), Attr::from(self.reason.as_str()));
        m.insert("risk_level".to_owned(), Attr::from(self.risk.as_str()));
        m.insert("attempts".to_owned(), Attr::L(attempts));
        Attr::M(m)
    }
}

/// The sticky key of a request: its checkout session, else its bank.
fn sticky_key(req: &InitRequest) -> Option<crate::store::Key> {
    match (&req.session_id, &req.bank) {
        (Some(s), _) => Some(keys::sticky("session", s)),
        (None, Some(b)) => Some(keys::sticky("bank", b)),
        (None, None) => None,
    }
}

/// The PSP this session/bank started on, if still remembered.
async fn sticky_psp(ctx: &Ctx, req: &InitRequest) -> Result<Option<PspId>, Error> {
    let Some(key) = sticky_key(req) else {
        return Ok(None);
    };
    let found = ctx.store.get(&key).await?;
    let live = found
        .as_ref()
        .filter(|it| it.int_attr(TTL).is_none_or(|t| t > ctx.now_ms() / 1000));
    Ok(live
        .and_then(|it| it.str_attr("psp"))
        .and_then(|p| PspId::parse(p).ok()))
}

async fn remember_sticky(ctx: &Ctx, req: &InitRequest, psp: &PspId) {
    let Some(key) = sticky_key(req) else {
        return;
    };
    let it = item(
        &key,
        [
            ("psp", Attr::from(psp.as_str())),
            (TTL, Attr::N(ctx.now_ms() / 1000 + STICKY_TTL_S)),
        ],
    );
    // Losing this costs stickiness, never money: log and go on.
    if let Err(e) = ctx
        .store
        .write(Write::Put {
            item: it,
            cond: None,
        })
        .await
    {
        tracing::warn!(error = %e, psp = %psp, "could not remember the sticky route");
    }
}

/// FNV-1a of the payment id: spreads weighted routes, stable per payment.
fn seed_of(id: &PaymentId) -> u64 {
    id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Put the sticky PSP first, if the rules allow it for this payment.
fn apply_sticky(candidates: &mut Vec<Candidate>, sticky: Option<&PspId>) {
    let Some(psp) = sticky else { return };
    if let Some(i) = candidates.iter().position(|c| &c.psp == psp) {
        let mut c = candidates.remove(i);
        c.reason = format!("sticky: session started on {psp}; {}", c.reason);
        candidates.insert(0, c);
    }
}

/// How one candidate is to be treated, from its circuit.
enum Gate {
    Try,
    Probe,
    Skip(String),
}

async fn gate(ctx: &Ctx, psp: &PspId, now: i64) -> Gate {
    let health = ctx.psps.health.state(psp);
    if health.circuit == Circuit::Closed {
        return Gate::Try;
    }
    if health.probe_due(ctx.psps.health.policy(), now)
        && ctx
            .psps
            .health
            .claim_probe(ctx.store.as_ref(), psp, now)
            .await
    {
        return Gate::Probe;
    }
    Gate::Skip(format!(
        "circuit {}: {}",
        health.circuit.as_str(),
        health.reason
    ))
}

/// Offer the payment to each candidate PSP in turn until one opens a
/// session. An unavailable PSP cascades to the next; a refusal stops. Routes
/// whose circuit is open are skipped, unless every candidate is.
pub async fn route_and_open(ctx: &Ctx, req: &InitRequest, id: &PaymentId) -> Result<Routed, Error> {
    let now = ctx.now_ms();
    refuse_slow_method_if_degraded(ctx, req, now).await?;
    ctx.psps
        .health
        .maybe_sync(ctx.store.as_ref(), ctx.psps.ids(), now)
        .await;
    let risk = crate::domain::players::profile(ctx, &req.player)
        .await?
        .risk;
    let sticky = sticky_psp(ctx, req).await?;
    let mut candidates = ctx.psps.router.candidates(&RouteRequest {
        country: req.country.as_deref(),
        amount: req.amount,
        method: &req.method,
        risk,
        seed: seed_of(id),
    });
    if candidates.is_empty() {
        return Err(Error::NoRoute);
    }
    apply_sticky(&mut candidates, sticky.as_ref());
    let session_req = SessionRequest {
        payment_id: id,
        amount: req.amount,
        method: &req.method,
        return_url: &req.return_url,
    };
    let mut cascade = Cascade {
        ctx,
        id,
        req: &session_req,
        attempts: Vec::new(),
        risk,
    };
    let Some(done) = cascade.run(candidates, now).await? else {
        return Err(Error::Unavailable(format!(
            "{} payment route attempt(s) failed",
            cascade.attempts.len()
        )));
    };
    remember_if_new(ctx, req, sticky.as_ref(), &done.psp).await;
    Ok(done)
}

/// In degradation mode only the fast methods are offered.
async fn refuse_slow_method_if_degraded(
    ctx: &Ctx,
    req: &InitRequest,
    now: i64,
) -> Result<(), Error> {
    let modes = ctx.psps.modes.current(ctx.store.as_ref(), now).await?;
    if modes.degraded && !ctx.psps.router.is_fast_method(&req.method) {
        return Err(Error::MethodUnavailable {
            method: req.method.clone(),
            available: ctx.psps.router.fast_methods().map(str::to_owned).collect(),
        });
    }
    Ok(())
}

async fn remember_if_new(ctx: &Ctx, req: &InitRequest, sticky: Option<&PspId>, psp: &PspId) {
    if sticky != Some(psp) {
        remember_sticky(ctx, req, psp).await;
    }
}

struct Cascade<'a> {
    ctx: &'a Ctx,
    id: &'a PaymentId,
    req: &'a SessionRequest<'a>,
    attempts: Vec<Attempt>,
    risk: RiskLevel,
}

impl Cascade<'_> {
    /// Offer the candidates in turn (probing a half-open circuit); when every
    /// healthy one failed, also those skipped for an open circuit: better to
    /// try them than to refuse.
    async fn run(&mut self, candidates: Vec<Candidate>, now: i64) -> Result<Option<Routed>, Error> {
        let mut skipped = Vec::new();
        for c in candidates {
            let probe = match gate(self.ctx, &c.psp, now).await {
                Gate::Skip(why) => {
                    self.note(&c.psp, AttemptOutcome::Skipped, why);
                    skipped.push(c);
                    continue;
                }
                Gate::Try => false,
                Gate::Probe => true,
            };
            if let Some(done) = self.attempt(c, probe).await? {
                return Ok(Some(done));
            }
        }
        for mut c in skipped {
            c.reason = format!(
                "every healthy route failed; trying open circuit; {}",
                c.reason
            );
            if let Some(done) = self.attempt(c, false).await? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    fn note(&mut self, psp: &PspId, outcome: AttemptOutcome, detail: String) {
        self.attempts.push(Attempt {
            id: new_ulid("att"),
            psp: psp.clone(),
            outcome,
            detail,
        });
    }

    /// One PSP call. `Ok(Some)`: session opened; `Ok(None)`: try the next.
    async fn attempt(&mut self, c: Candidate, probe: bool) -> Result<Option<Routed>, Error> {
        let Some(connector) = self.ctx.psps.get(&c.psp) else {
            self.note(&c.psp, AttemptOutcome::Skipped, "no connector".into());
            return Ok(None);
        };
        let started = Instant::now();
        let result = connector.create_session(self.req).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let available = !matches!(result, Err(PspError::Unavailable(_)));
        let call = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(PspError::Unavailable(_)) => CallOutcome::Unavailable,
            Err(_) => CallOutcome::Refused,
        };
        crate::domain::observe::psp_call(self.ctx, c.psp.as_str(), self.req.method, call);
        let health = &self.ctx.psps.health;
        health.record(&c.psp, available, latency_ms);
        if probe {
            health
                .probe_result(
                    self.ctx.store.as_ref(),
                    &c.psp,
                    available,
                    self.ctx.now_ms(),
                )
                .await;
        }
        let reason = if probe {
            format!("half-open probe; {}", c.reason)
        } else {
            c.reason
        };
        match result {
            Ok(session) => {
                self.note(&c.psp, AttemptOutcome::SessionOpened, reason.clone());
                Ok(Some(Routed {
                    psp: c.psp,
                    session,
                    reason,
                    attempts: std::mem::take(&mut self.attempts),
                    risk: self.risk,
                }))
            }
            Err(PspError::Unavailable(why)) => {
                tracing::warn!(payment_id = %self.id, psp = %c.psp, "PSP unavailable; trying the next route");
                self.note(&c.psp, AttemptOutcome::Unavailable, why);
                Ok(None)
            }
            Err(e @ PspError::Refused(_)) => {
                tracing::info!(payment_id = %self.id, psp = %c.psp, error = %e, "PSP refused the payment");
                Err(e.into())
            }
            Err(e @ (PspError::Rejected(_) | PspError::NotFound(_))) => {
                tracing::error!(payment_id = %self.id, psp = %c.psp, error = %e, "PSP rejected our session request");
                self.note(&c.psp, AttemptOutcome::Rejected, e.to_string());
                Ok(None)
            }
        }
    }
}
