//! The PSP port: everything payloop needs from a payment service provider
//! behind one trait. Adding a PSP is one module implementing it plus config.
//!
//! Implemented so far: hosted payment sessions. Payouts, refunds, status
//! queries and settlement reports join this trait with the issues that use
//! them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::{PaymentId, PspId};
use crate::money::Money;

pub mod routing;

/// What a PSP needs to open a hosted payment page.
#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    pub payment_id: &'a PaymentId,
    pub amount: Money,
    pub method: &'a str,
    pub return_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Where to send the player.
    pub redirect_url: String,
    /// The PSP's own id for this payment.
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// 5xx, timeout, outage: another PSP may be tried.
    #[error("PSP unavailable: {0}")]
    Unavailable(String),
    /// The PSP refused this payment: trying elsewhere would not be honest.
    #[error("PSP refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait PspConnector: Send + Sync {
    fn id(&self) -> &PspId;
    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError>;
}

/// The built-in sandbox PSP: its hosted checkout is served by `payloop
/// serve` itself. An outage switch lets tests and operators take it down.
pub struct HostedSandbox {
    id: PspId,
    public_url: String,
    outage: AtomicBool,
}

impl HostedSandbox {
    pub fn new(id: PspId, public_url: &str) -> Self {
        Self {
            id,
            public_url: public_url.trim_end_matches('/').to_owned(),
            outage: AtomicBool::new(false),
        }
    }
    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }
    pub fn in_outage(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PspConnector for HostedSandbox {
    fn id(&self) -> &PspId {
        &self.id
    }

    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError> {
        if self.in_outage() {
            return Err(PspError::Unavailable(format!("{} is in outage", self.id)));
        }
        let tail = req
            .payment_id
            .as_str()
            .strip_prefix("pay_")
            .unwrap_or(req.payment_id.as_str());
        Ok(Session {
            redirect_url: format!("{}/sandbox/checkout/{}", self.public_url, req.payment_id),
            reference: format!("{}_{tail}", self.id),
        })
    }
}

/// The connectors of this deployment and the routing rules over them.
pub struct Psps {
    connectors: BTreeMap<PspId, Arc<dyn PspConnector>>,
    pub router: routing::Router,
}

impl Psps {
    pub fn new(
        connectors: Vec<Arc<dyn PspConnector>>,
        router: routing::Router,
    ) -> Result<Psps, routing::RoutingError> {
        let connectors: BTreeMap<PspId, Arc<dyn PspConnector>> = connectors
            .into_iter()
            .map(|c| (c.id().clone(), c))
            .collect();
        router.check_connectors(|psp| connectors.contains_key(psp))?;
        Ok(Psps { connectors, router })
    }

    /// One hosted sandbox per PSP name, routed in the given order.
    pub fn sandboxes(names: &[PspId], public_url: &str) -> Psps {
        let connectors: Vec<Arc<dyn PspConnector>> = names
            .iter()
            .map(|n| Arc::new(HostedSandbox::new(n.clone(), public_url)) as Arc<dyn PspConnector>)
            .collect();
        let router = routing::Router::in_order(names);
        Psps {
            connectors: connectors
                .into_iter()
                .map(|c| (c.id().clone(), c))
                .collect(),
            router,
        }
    }

    pub fn get(&self, psp: &PspId) -> Option<&Arc<dyn PspConnector>> {
        self.connectors.get(psp)
    }
}
