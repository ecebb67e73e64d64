//! The values a stored payment's `status` attribute takes, which may follow
//! which (so conditional writes can be generated from it), and the payment
//! methods. Shared by the PSP layer (its events carry a status) and the
//! domain (it moves payments through them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Authorized,
    Captured,
    Failed,
    Canceled,
    /// A captured payment the player's bank took back.
    ChargedBack,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::Failed,
        PaymentStatus::Canceled,
        PaymentStatus::ChargedBack,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::ChargedBack => "charged_back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    fn rank(&self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Authorized => 1,
            PaymentStatus::Captured | PaymentStatus::Failed | PaymentStatus::Canceled => 2,
            PaymentStatus::ChargedBack => 3,
        }
    }

    /// The PSP's outcome is known (a chargeback may still follow a capture).
    pub fn is_final(&self) -> bool {
        self.rank() >= 2
    }

    /// May a payment in `self` move to `next`? Only strictly forward, and a
    /// chargeback only from captured.
    pub fn can_move_to(&self, next: PaymentStatus) -> bool {
        match next {
            PaymentStatus::ChargedBack => *self == PaymentStatus::Captured,
            _ => next.rank() > self.rank(),
        }
    }

    /// Every status from which `next` is reachable: the condition of the
    /// conditional write that moves a payment.
    pub fn predecessors(next: PaymentStatus) -> Vec<PaymentStatus> {
        Self::ALL
            .into_iter()
            .filter(|s| s.can_move_to(next))
            .collect()
    }
}

/// Payment methods a deposit can use.
pub const METHODS: [&str; 5] = ["card", "bank_transfer", "ewallet", "pay_by_bank", "p2p"];

/// A player's KYC level (set by operators; asked for by payouts and risk rules).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KycLevel {
    #[default]
    None,
    Basic,
    Full,
}

impl KycLevel {
    pub fn parse(s: &str) -> Option<KycLevel> {
        match s {
            "none" => Some(KycLevel::None),
            "basic" => Some(KycLevel::Basic),
            "full" => Some(KycLevel::Full),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            KycLevel::None => "none",
            KycLevel::Basic => "basic",
            KycLevel::Full => "full",
        }
    }
}
