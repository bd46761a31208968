//! A card holder's own security events (seed 001: "Alerts and
//! notifications"), from the audit trail.

use crate::app::AppState;
use crate::error::ApiError;
use crate::storage::AuditEvent;

/// Audit event names and the contract's event types they are shown as.
const SHOWN: &[(&str, &str)] = &[
    ("signin_ok", "sign_in"),
    ("signin_failed", "sign_in_failed"),
    ("account_locked", "account_locked"),
    ("step_up", "step_up"),
    ("device_added", "device_added"),
    ("device_removed", "device_removed"),
    ("password_changed", "password_changed"),
    ("contact_changed", "contact_changed"),
    ("security_code_changed", "security_code_changed"),
    ("recovery_used", "recovery_used"),
    ("refresh_reuse", "refresh_reuse"),
    ("enrolled", "enrolled"),
    // The service team (support console); shown with `changed_by`.
    ("unlocked", "unlocked"),
    ("signed_out_everywhere", "signed_out_everywhere"),
    ("caller_verified", "caller_verified"),
    ("caller_verify_failed", "caller_verify_failed"),
];

/// One event as the card holder sees it.
pub struct SecurityEvent {
    pub kind: &'static str,
    pub at: i64,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    /// `service_team` when an operator of the support console made the
    /// change (their name stays in the audit trail, not shown here).
    pub changed_by: Option<&'static str>,
}

/// The user's events, newest first; `limit` 1–200.
pub async fn list(
    app: &AppState,
    user_id: &str,
    limit: i64,
) -> Result<Vec<SecurityEvent>, ApiError> {
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 200"));
    }
    let names: Vec<&str> = SHOWN.iter().map(|(name, _)| *name).collect();
    let rows = app.store().security_events(user_id, &names, limit).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(e, device_name): (AuditEvent, Option<String>)| {
            let kind = SHOWN.iter().find(|(n, _)| *n == e.event)?.1;
            Some(SecurityEvent {
                kind,
                at: e.at,
                ip: e.ip,
                device_id: e.device_id,
                device_name,
                changed_by: e.actor.is_some().then_some("service_team"),
            })
        })
        .collect())
}
