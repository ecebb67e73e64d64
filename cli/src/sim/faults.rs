//! The fault layer: decorators of the store, queue and PSP ports that, at a
//! chosen call of one invocation, fail the call before it happens, crash
//! after it happened (durable, but the caller never hears, and every later
//! call of that invocation fails too: the Lambda died), or time out (the call
//! may or may not have happened; the caller hears an error and carries on).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use payloop::clock::Day;
use payloop::ids::PspId;
use payloop::psp::event::Inbound;
use payloop::psp::signature::{Rejection, Verified, Window};
use payloop::psp::{
    Operation, PayoutRequest, PspConnector, PspError, RefundRequest, RemoteStatus, ReportChunks,
    Session, SessionRequest,
};
use payloop::queue::{Message, Queue, QueueError, QueueName};
use payloop::store::{Item, Key, Page, Query, Store, StoreError, Write};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The call fails before it happens (a 5xx).
    FailBefore,
    /// The call happens, then the invocation dies: nobody hears.
    CrashAfter,
    /// The caller hears a timeout; the call happened or not (seeded).
    Timeout,
}

impl FaultKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FaultKind::FailBefore => "fail-before",
            FaultKind::CrashAfter => "crash-after",
            FaultKind::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Store,
    Queue,
    Psp,
}

impl Layer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Layer::Store => "store",
            Layer::Queue => "queue",
            Layer::Psp => "psp",
        }
    }
}

/// The fault plan of one invocation: each port call, until one faults,
/// faults with this chance (so faults land at every call position, on every
/// layer), with a kind drawn from the scenario's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub per_mille: u32,
}

struct State {
    rng: StdRng,
    /// Two invocations run at once: every port call first yields a seeded
    /// number of times, so their steps interleave in a seeded order.
    interleave: bool,
    plan: Option<Plan>,
    fired: bool,
    dead: bool,
    injected: BTreeMap<(Layer, FaultKind), u64>,
}

/// What a decorated call does.
enum Decision {
    Run,
    /// Fail without running.
    Fail,
    /// Run, then report an error.
    RunThenFail,
}

/// Shared by every decorator of one scenario.
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults {
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
                interleave: false,
                plan: None,
                fired: false,
                dead: false,
                injected: BTreeMap::new(),
            }),
        }
    }

    /// A new invocation begins, with this fault plan (or none).
    pub fn begin(&self, plan: Option<Plan>) {
        if let Ok(mut s) = self.state.lock() {
            s.plan = plan;
            s.fired = false;
            s.dead = false;
        }
    }

    /// The invocation ended; did it die?
    pub fn end(&self) -> bool {
        match self.state.lock() {
            Ok(mut s) => {
                let dead = s.dead;
                s.plan = None;
                s.dead = false;
                dead
            }
            Err(_) => true,
        }
    }

    pub fn interleave(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.interleave = on;
        }
    }

    /// How often the next port call yields before it runs.
    fn yields(&self) -> u32 {
        match self.state.lock() {
            Ok(mut s) if s.interleave => s.rng.random_range(0..3),
            _ => 0,
        }
    }

    pub fn injected(&self) -> BTreeMap<(Layer, FaultKind), u64> {
        self.state
            .lock()
            .map(|s| s.injected.clone())
            .unwrap_or_default()
    }

    fn decide(&self, layer: Layer) -> Decision {
        let Ok(mut s) = self.state.lock() else {
            return Decision::Fail;
        };
        if s.dead {
            return Decision::Fail;
        }
        let Some(plan) = s.plan.filter(|_| !s.fired) else {
            return Decision::Run;
        };
        if s.rng.random_range(0..1000) >= plan.per_mille {
            return Decision::Run;
        }
        s.fired = true;
        let kind = match s.rng.random_range(0..3) {
            0 => FaultKind::FailBefore,
            1 => FaultKind::CrashAfter,
            _ => FaultKind::Timeout,
        };
        let applied = s.rng.random_bool(0.5);
        *s.injected.entry((layer, kind)).or_default() += 1;
        match kind {
            FaultKind::FailBefore => Decision::Fail,
            FaultKind::Timeout if applied => Decision::RunThenFail,
            FaultKind::Timeout => Decision::Fail,
            FaultKind::CrashAfter => {
                s.dead = true;
                Decision::RunThenFail
            }
        }
    }
}

const INJECTED: &str = "injected fault";

/// Run `call` as the fault plan decides; `err` builds the error heard.
async fn faulted<T, E, F>(
    faults: &Faults,
    layer: Layer,
    err: fn(String) -> E,
    call: F,
) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    for _ in 0..faults.yields() {
        tokio::task::yield_now().await;
    }
    match faults.decide(layer) {
        Decision::Run => call.await,
        Decision::Fail => Err(err(INJECTED.into())),
        Decision::RunThenFail => {
            let _ = call.await;
            Err(err(INJECTED.into()))
        }
    }
}

pub struct FaultStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Store for FaultStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        faulted(
            &self.faults,
            Layer::Store,
            StoreError::Unavailable,
            self.inner.get(key),
        )
        .await
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        faulted(
            &self.faults,
            Layer::Store,
            StoreError::Unavailable,
            self.inner.query(q),
        )
        .await
    }
    async fn write(&self, w: Write) -> Result<(), StoreError> {
        faulted(
            &self.faults,
            Layer::Store,
            StoreError::Unavailable,
            self.inner.write(w),
        )
        .await
    }
    async fn transact(&self, ws: Vec<Write>) -> Result<(), StoreError> {
        faulted(
            &self.faults,
            Layer::Store,
            StoreError::Unavailable,
            self.inner.transact(ws),
        )
        .await
    }
}

pub struct FaultQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Queue for FaultQueue {
    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let call = self.inner.depth(queue);
        faulted(&self.faults, Layer::Queue, QueueError::Unavailable, call).await
    }
    async fn send(&self, queue: QueueName, body: &str) -> Result<String, QueueError> {
        faulted(
            &self.faults,
            Layer::Queue,
            QueueError::Unavailable,
            self.inner.send(queue, body),
        )
        .await
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let call = self.inner.receive(queue, max, visibility, wait);
        faulted(&self.faults, Layer::Queue, QueueError::Unavailable, call).await
    }
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let call = self.inner.delete(queue, receipt);
        faulted(&self.faults, Layer::Queue, QueueError::Unavailable, call).await
    }
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let call = self.inner.change_visibility(queue, receipt, visibility);
        faulted(&self.faults, Layer::Queue, QueueError::Unavailable, call).await
    }
}

pub struct FaultPsp {
    pub inner: Arc<dyn PspConnector>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl PspConnector for FaultPsp {
    fn id(&self) -> &PspId {
        self.inner.id()
    }
    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError> {
        let call = self.inner.create_session(req);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn start_payout(&self, req: &PayoutRequest<'_>) -> Result<Operation, PspError> {
        let call = self.inner.start_payout(req);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn start_refund(&self, req: &RefundRequest<'_>) -> Result<Operation, PspError> {
        let call = self.inner.start_refund(req);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn payout_status(&self, reference: &str) -> Result<Operation, PspError> {
        let call = self.inner.payout_status(reference);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn refund_status(&self, reference: &str) -> Result<Operation, PspError> {
        let call = self.inner.refund_status(reference);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn payment_status(&self, reference: &str) -> Result<RemoteStatus, PspError> {
        let call = self.inner.payment_status(reference);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    async fn settlement_report(&self, day: Day) -> Result<Box<dyn ReportChunks>, PspError> {
        let call = self.inner.settlement_report(day);
        faulted(&self.faults, Layer::Psp, PspError::Unavailable, call).await
    }
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw: &[u8],
        window: Window,
    ) -> Result<Verified, Rejection> {
        self.inner.verify_webhook(headers, raw, window)
    }
    fn normalise_webhook(
        &self,
        raw: &[u8],
        signed_at_s: Option<i64>,
    ) -> Result<Inbound, payloop::Error> {
        self.inner.normalise_webhook(raw, signed_at_s)
    }
}

/// A settlement report already in memory, handed out in one chunk.
pub struct OneChunk(pub Option<Bytes>);

#[async_trait]
impl ReportChunks for OneChunk {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        Ok(self.0.take())
    }
}
