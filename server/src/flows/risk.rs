//! What a sign-in's risk check records, and what the risk policy learns
//! from how sign-ins end. The policy decides (`crate::risk`); this layer
//! makes every decision explainable in the audit trail and feeds outcomes
//! back, so the handlers only ask and act.

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::risk::{Assessment, Flow, RiskContext, SignedIn};
use crate::storage::{AuditEvent, RiskWrite};

impl AppState {
    /// Asks the policy about one attempt.
    pub(crate) async fn assess_risk(&self, ctx: &RiskContext<'_>) -> Result<Assessment, ApiError> {
        Ok(self.risk.assess(ctx).await?)
    }

    /// Records a decision once it took effect. A step-up is audited as
    /// `step_up` (a security event the holder sees) with its signals; an
    /// allowed attempt that showed any signal as `risk_allowed`, so every
    /// decision short of "nothing unusual" can be explained afterwards.
    pub(crate) async fn record_risk(
        &self,
        ctx: &RiskContext<'_>,
        assessment: &Assessment,
    ) -> Result<(), ApiError> {
        let event = if assessment.step_up() && ctx.flow == Flow::Device {
            "step_up"
        } else if assessment.step_up() {
            // Only the password is proven here: shown to the holder, these
            // could be used to flood their events; the OTP it leads to
            // is their notice.
            "password_step_up"
        } else if assessment.signals.is_empty() {
            return Ok(());
        } else {
            "risk_allowed"
        };
        if assessment.step_up() {
            self.metrics.stepped_up(&assessment.signals);
        }
        let reason = format!("{} {}", ctx.flow.as_str(), assessment.summary());
        self.audit(
            event,
            Some(ctx.user_id),
            ctx.device_id,
            Some(ctx.ip),
            Some(&reason),
        )
        .await
    }

    /// A completed sign-in: its audit line, and what the policy learns. The
    /// session exists already, so a policy that cannot learn is logged, not
    /// fatal (the next sign-in is judged on what it knew before).
    pub(crate) async fn signed_in(
        &self,
        user_id: &str,
        device_id: Option<&str>,
        ip: IpAddr,
        amr: &[String],
        teaches_network: bool,
    ) -> Result<(), ApiError> {
        self.audit_sign_in(user_id, device_id, ip, amr, None)
            .await?;
        self.learn_sign_in(&SignedIn {
            user_id,
            device_id,
            ip,
            amr,
            now: self.now(),
            teaches_network,
        })
        .await;
        Ok(())
    }

    /// The `signin_ok` line; an allowed decision that showed signals is
    /// recorded on it (`hwk bio; risk allow velocity score=2`) rather than
    /// in a line of its own, so judging costs the sign-in no extra write.
    pub(crate) async fn audit_sign_in(
        &self,
        user_id: &str,
        device_id: Option<&str>,
        ip: IpAddr,
        amr: &[String],
        risk: Option<&Assessment>,
    ) -> Result<(), ApiError> {
        let e = self.sign_in_event(user_id, device_id, ip, amr, risk);
        self.audit(
            &e.event,
            Some(user_id),
            device_id,
            Some(ip),
            e.reason.as_deref(),
        )
        .await
    }

    /// The `signin_ok` audit row, for a sign-in that writes it in its own
    /// transaction (then `announce_event` once committed).
    pub(crate) fn sign_in_event(
        &self,
        user_id: &str,
        device_id: Option<&str>,
        ip: IpAddr,
        amr: &[String],
        risk: Option<&Assessment>,
    ) -> AuditEvent {
        let mut reason = amr.join(" ");
        if let Some(risk) = risk.filter(|r| !r.signals.is_empty()) {
            reason.push_str("; risk ");
            reason.push_str(&risk.summary());
        }
        AuditEvent {
            at: self.now(),
            event: "signin_ok".to_owned(),
            user_id: Some(user_id.to_owned()),
            device_id: device_id.map(str::to_owned),
            ip: Some(ip.to_string()),
            reason: Some(reason),
            actor: None,
        }
    }

    /// Tells the policy about a completed sign-in.
    pub(crate) async fn learn_sign_in(&self, event: &SignedIn<'_>) {
        if let Err(e) = self.risk.signed_in(event).await {
            tracing::warn!(error = %e, "risk policy could not learn a sign-in");
        }
    }

    /// The policy's change for a sign-in about to complete, to be written
    /// in the sign-in's own transaction (see `Redemption::Session`). `Err`
    /// (logged here) means the plan failed: the caller learns the slow way
    /// afterwards rather than reading it as "nothing to learn".
    pub(crate) async fn plan_sign_in_learning(
        &self,
        event: &SignedIn<'_>,
        judged: &Assessment,
    ) -> Result<Option<RiskWrite>, ()> {
        self.risk.sign_in_write(event, judged).await.map_err(|e| {
            tracing::warn!(error = %e, "risk policy could not plan a sign-in's learning");
        })
    }

    /// A wrong password or code for an existing user, for the policy;
    /// answers the number of failures that locks the user now (the
    /// configured one unless the policy adapts it, never more).
    pub(crate) async fn risk_failure(&self, user_id: &str, ip: IpAddr, configured: i64) -> i64 {
        match self.risk.failed(user_id, ip, self.now(), configured).await {
            Ok(t) => t.clamp(1, configured),
            Err(e) => {
                tracing::warn!(error = %e, "risk policy could not learn a failure");
                configured
            }
        }
    }

    /// A device registered by its holder, for the policy.
    pub(crate) async fn risk_device_added(&self, user_id: &str, device_id: &str, ip: IpAddr) {
        if let Err(e) = self
            .risk
            .device_added(user_id, device_id, ip, self.now())
            .await
        {
            tracing::warn!(error = %e, "risk policy could not learn a device");
        }
    }
}
