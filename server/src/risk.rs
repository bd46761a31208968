//! The place where risk decides whether a sign-in needs more proof.
//!
//! Every password and device sign-in asks the configured `RiskPolicy` once,
//! with what the server knows about the attempt. `StepUp` turns a device
//! sign-in into `step_up_required` (finished with an OTP), removes the
//! `device` method from a password sign-in, and makes a market without a
//! second factor ask for one. The shipped default, `AllowAll`, steps up
//! nothing: real signals (network reputation, hour, device history) come with
//! the risk-engine work.

use std::net::IpAddr;

/// Which flow is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Password,
    Device,
}

/// What is known about one sign-in attempt.
#[derive(Debug, Clone)]
pub struct RiskContext<'a> {
    pub flow: Flow,
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
    pub ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskDecision {
    Allow,
    StepUp,
}

pub trait RiskPolicy: Send + Sync + 'static {
    fn assess(&self, ctx: &RiskContext<'_>) -> RiskDecision;
}

/// The default: no step-up.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl RiskPolicy for AllowAll {
    fn assess(&self, _ctx: &RiskContext<'_>) -> RiskDecision {
        RiskDecision::Allow
    }
}
