//! What the bank's service team does for a card holder (docs/CONSOLE.md),
//! over the `Store`: the console calls these with the signed-in operator.
//! Every function checks the operator's role itself (a page that forgot
//! would still be refused) and every action is audited with the
//! operator's name; the card holder's own event list shows the change as
//! made by the service team.

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::flows::events::{self, SecurityEvent};
use crate::flows::operators::Actor;
use crate::flows::recovery::{self, CallerCheck};
use crate::notify::Channel;
use crate::secrets::Secret;
use crate::storage::{
    AuditEvent, AuditFilter, Card, Device, LockoutPolicy, MarketSummary, SessionRecord,
    UnlockScope, User, UserSearch,
};
use crate::validate;

/// Search results and audit lines per page.
pub const PAGE: i64 = 25;

/// Failed caller checks one operator may make in a day, across all card
/// holders, on top of each holder's own security-code limit.
fn operator_check_policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 20,
        duration_s: 24 * 3600,
        memory_s: 24 * 3600,
    }
}

/// How an operator searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchBy {
    UserId,
    Email,
    Last4,
}

impl SearchBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_id" => Some(SearchBy::UserId),
            "email" => Some(SearchBy::Email),
            "last4" => Some(SearchBy::Last4),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SearchBy::UserId => "user_id",
            SearchBy::Email => "email",
            SearchBy::Last4 => "last4",
        }
    }
}

/// One page of card holders; `next` is the cursor of the following page.
pub struct SearchPage {
    pub users: Vec<User>,
    pub next: Option<String>,
}

/// Card holders by user ID (prefix), e-mail (exact, any case) or the last
/// four digits of a linked card; `PAGE` at a time after `after`.
pub async fn search(
    app: &AppState,
    actor: &Actor,
    by: SearchBy,
    raw: &str,
    after: Option<&str>,
) -> Result<SearchPage, ApiError> {
    let raw = raw.trim();
    let search = match by {
        SearchBy::UserId => UserSearch::UserIdPrefix(validate::user_id(raw)?),
        SearchBy::Email => UserSearch::Email(validate::email(raw)?),
        SearchBy::Last4 => {
            if raw.len() != 4 || !raw.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid(
                    "the last 4 digits of a card are 4 digits",
                ));
            }
            UserSearch::Last4(raw.to_owned())
        }
    };
    let after = after.map(validate::user_id).transpose()?;
    let mut users = app
        .store()
        .find_users(&search, after.as_deref(), PAGE + 1)
        .await?;
    let next = if users.len() as i64 > PAGE {
        users.truncate(PAGE as usize);
        users.last().map(|u| u.user_id.clone())
    } else {
        None
    };
    app.audit_by(
        &actor.name,
        "holder_searched",
        None,
        None,
        None,
        Some(&format!("by={} results={}", by.as_str(), users.len())),
    )
    .await?;
    Ok(SearchPage { users, next })
}

/// Everything the card-holder page shows.
pub struct Holder {
    pub user: User,
    /// Sign-in lock (password and OTP failures), until when.
    pub locked_until: Option<i64>,
    /// Security-code checks (recovery, callers) stopped, until when.
    pub code_checks_blocked_until: Option<i64>,
    pub market_requires_second_factor: bool,
    pub devices: Vec<Device>,
    pub sessions: Vec<SessionRecord>,
    pub events: Vec<SecurityEvent>,
    pub cards: Vec<Card>,
}

async fn user(app: &AppState, raw_user_id: &str) -> Result<User, ApiError> {
    let user_id = validate::user_id(raw_user_id)?;
    app.store().user(&user_id).await?.ok_or(ApiError::NotFound)
}

/// The card holder's page. Looking is audited too (who saw whose data).
pub async fn holder(app: &AppState, actor: &Actor, raw_user_id: &str) -> Result<Holder, ApiError> {
    let user = user(app, raw_user_id).await?;
    let store = app.store();
    let now = app.now();
    let holder = Holder {
        locked_until: store
            .locked_until(&validate::lockout_key(&user.user_id), now)
            .await?,
        code_checks_blocked_until: recovery::code_checks_blocked_until(app, &user.user_id).await?,
        market_requires_second_factor: store
            .market_requires_second_factor(&user.primary_market)
            .await?,
        devices: store
            .devices(&user.user_id)
            .await?
            .into_iter()
            .filter(|d| d.removed_at.is_none())
            .collect(),
        sessions: store.user_sessions(&user.user_id, now).await?,
        events: events::list(app, &user.user_id, 20).await?,
        cards: store.cards_of(&user.user_id).await?,
        user,
    };
    app.audit_by(
        &actor.name,
        "holder_viewed",
        Some(&holder.user.user_id),
        None,
        None,
        None,
    )
    .await?;
    Ok(holder)
}

/// How recent this operator's own match of the holder's security code
/// must be for an unlock to clear the security-code count as well.
pub const CALLER_VERIFIED_WINDOW_S: i64 = 5 * 60;

/// Whether `actor` matched the holder's security code (`caller_verified`)
/// within `CALLER_VERIFIED_WINDOW_S`.
async fn verified_recently(app: &AppState, actor: &Actor, user_id: &str) -> Result<bool, ApiError> {
    let filter = AuditFilter {
        user_id: Some(user_id.to_owned()),
        event: Some("caller_verified".into()),
        actor: Some(actor.name.clone()),
        ..AuditFilter::default()
    };
    let newest = app.store().audit_page(&filter, 1).await?;
    Ok(newest
        .first()
        .is_some_and(|(_, e)| e.at >= app.now() - CALLER_VERIFIED_WINDOW_S))
}

/// Lifts the sign-in lock and clears the sign-in failure count; the card
/// holder is told by e-mail. The security-code count (recovery, caller
/// checks) is cleared too only when this operator matched the caller's
/// security code in the last 5 minutes and the checks are not stopped: an
/// unlock is no way around the code limit. A running stop is lifted only
/// by an admin (`lift_code_stop`).
pub async fn unlock(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let user = user(app, raw_user_id).await?;
    let verified = verified_recently(app, actor, &user.user_id).await?
        && recovery::code_checks_blocked_until(app, &user.user_id)
            .await?
            .is_none();
    let scope = if verified {
        UnlockScope::Both
    } else {
        UnlockScope::SignIn
    };
    app.store()
        .unlock(&validate::lockout_key(&user.user_id), scope)
        .await?;
    app.audit_by(
        &actor.name,
        "unlocked",
        Some(&user.user_id),
        None,
        Some(ip),
        verified.then_some("caller_verified"),
    )
    .await?;
    app.alert(
        &user,
        "unlocked",
        "Our service team lifted the lock on your sign-in.".into(),
    )
    .await;
    Ok(())
}

/// Admin: lifts a card holder's security-code stop (recovery and caller
/// checks, by user ID and e-mail) — a deliberate, audited act of its own,
/// never a side effect of an unlock; the card holder is told by e-mail.
pub async fn lift_code_stop(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    ip: IpAddr,
) -> Result<(), ApiError> {
    actor.require_admin()?;
    let user = user(app, raw_user_id).await?;
    app.store()
        .unlock(
            &validate::lockout_key(&user.user_id),
            UnlockScope::CodeChecks,
        )
        .await?;
    app.audit_by(
        &actor.name,
        "code_checks_lifted",
        Some(&user.user_id),
        None,
        Some(ip),
        None,
    )
    .await?;
    app.alert(
        &user,
        "code_checks_lifted",
        "Our service team lifted the stop on security-code checks (recovery) for your account. \
         If you did not ask for this, call the number on your card."
            .into(),
    )
    .await;
    Ok(())
}

/// Removes a trusted device (and the devices registered from it); `false`
/// when it was not an active device of this holder (e.g. another operator
/// removed it a moment ago).
pub async fn remove_device(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    raw_device_id: &str,
    ip: IpAddr,
) -> Result<bool, ApiError> {
    let user = user(app, raw_user_id).await?;
    let device_id = validate::server_id("device_id", raw_device_id)?;
    let removed = app
        .store()
        .remove_device(&user.user_id, device_id, app.now())
        .await?;
    let Some(first) = removed.first() else {
        return Ok(false);
    };
    for d in &removed {
        let reason = (d.device_id != first.device_id).then_some("registered_from_removed_device");
        app.audit_by(
            &actor.name,
            "device_removed",
            Some(&user.user_id),
            Some(&d.device_id),
            Some(ip),
            reason,
        )
        .await?;
    }
    app.alert(
        &user,
        "device_removed",
        format!(
            "Our service team removed \"{}\" from your trusted devices; it can no longer sign in.",
            first.name
        ),
    )
    .await;
    Ok(true)
}

/// Revokes every session of the holder; returns how many were active.
pub async fn sign_out_everywhere(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    ip: IpAddr,
) -> Result<usize, ApiError> {
    let user = user(app, raw_user_id).await?;
    let n = app
        .store()
        .revoke_user_sessions(&user.user_id, "service_team", app.now())
        .await?;
    app.audit_by(
        &actor.name,
        "signed_out_everywhere",
        Some(&user.user_id),
        None,
        Some(ip),
        Some(&format!("sessions={n}")),
    )
    .await?;
    app.alert(
        &user,
        "signed_out_everywhere",
        "Our service team signed you out on every device.".into(),
    )
    .await;
    Ok(n)
}

/// Checks the security code a caller reads out. Counted against the
/// holder's security-code limit (the one recovery uses) and against the
/// operator's own daily cap; every check is audited, match or not.
pub async fn verify_caller(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    code: &Secret,
    ip: IpAddr,
) -> Result<CallerCheck, ApiError> {
    let user = user(app, raw_user_id).await?;
    validate::security_code_shape(code.expose())?;
    let operator_key = format!("console:caller-checks:{}", actor.name);
    let operator_count = app
        .reserve_attempt_with(&operator_key, operator_check_policy())
        .await?;
    let outcome = match recovery::check_caller(app, &user, code).await {
        Ok(outcome) => outcome,
        Err(e) => {
            app.refund_attempt(&operator_key).await?;
            if let ApiError::AccountLocked { .. } = e {
                app.audit_by(
                    &actor.name,
                    "caller_check_refused",
                    Some(&user.user_id),
                    None,
                    Some(ip),
                    Some("security_code_checks_blocked"),
                )
                .await?;
            }
            return Err(e);
        }
    };
    let (event, reason) = match outcome {
        CallerCheck::Match => {
            app.refund_attempt(&operator_key).await?;
            ("caller_verified", None)
        }
        CallerCheck::NoMatch { .. } => ("caller_verify_failed", None),
        CallerCheck::NoMatchNowBlocked => ("caller_verify_failed", Some("limit_reached")),
    };
    app.audit_by(
        &actor.name,
        event,
        Some(&user.user_id),
        None,
        Some(ip),
        reason,
    )
    .await?;
    let policy = operator_check_policy();
    if outcome != CallerCheck::Match && operator_count >= policy.threshold {
        app.store()
            .lock(&operator_key, app.now() + policy.duration_s)
            .await?;
        app.audit_by(
            &actor.name,
            "operator_caller_checks_stopped",
            None,
            None,
            Some(ip),
            None,
        )
        .await?;
    }
    Ok(outcome)
}

/// Corrects name and e-mail. `expected` are the values the operator saw:
/// if another operator (or the holder) changed them since, nothing is
/// written and the answer says so (`Ok(false)`). A new e-mail alerts the
/// old address and the new one; nothing secret is sent.
#[allow(clippy::too_many_arguments)]
pub async fn correct_profile(
    app: &AppState,
    actor: &Actor,
    raw_user_id: &str,
    expected_name: &str,
    expected_email: &str,
    raw_name: &str,
    raw_email: &str,
    ip: IpAddr,
) -> Result<bool, ApiError> {
    let user_id = validate::user_id(raw_user_id)?;
    let name = validate::label("name", raw_name, 128)?;
    let email = validate::email(raw_email)?;
    let Some(before) = app
        .store()
        .correct_profile(&user_id, (expected_name, expected_email), &name, &email)
        .await?
    else {
        if app.store().user(&user_id).await?.is_none() {
            return Err(ApiError::NotFound);
        }
        return Ok(false);
    };
    let mut changed = Vec::new();
    if before.name != name {
        changed.push("name");
    }
    let email_changed = before.email != email;
    if email_changed {
        changed.push("email");
    }
    if changed.is_empty() {
        return Ok(true);
    }
    let reason = changed.join(",");
    app.audit_by(
        &actor.name,
        "contact_changed",
        Some(&user_id),
        None,
        Some(ip),
        Some(&reason),
    )
    .await?;
    if email_changed {
        let detail = format!(
            "Our service team changed the e-mail address on your account to {email}. \
             If you did not ask for this, call the number on your card."
        );
        app.alert_to(
            &user_id,
            "contact_changed",
            Channel::Email,
            &before.email,
            &detail,
        )
        .await;
        app.alert_to(&user_id, "contact_changed", Channel::Email, &email, &detail)
            .await;
    } else {
        app.alert(
            &before,
            "contact_changed",
            "Our service team corrected the name on your account.".into(),
        )
        .await;
    }
    Ok(true)
}

/// Every market, its second factor and how many holders it applies to.
pub async fn markets(app: &AppState, _actor: &Actor) -> Result<Vec<MarketSummary>, ApiError> {
    Ok(app.store().markets().await?)
}

/// Admin: the second factor of a market; returns how many card holders
/// the switch affects.
pub async fn set_market(
    app: &AppState,
    actor: &Actor,
    raw_market: &str,
    required: bool,
    ip: IpAddr,
) -> Result<i64, ApiError> {
    actor.require_admin()?;
    let market = validate::market(raw_market)?;
    app.store().set_market(&market, required).await?;
    let affected = app
        .store()
        .markets()
        .await?
        .into_iter()
        .find(|m| m.market == market)
        .map_or(0, |m| m.users);
    app.audit_by(
        &actor.name,
        "market_changed",
        None,
        None,
        Some(ip),
        Some(&format!(
            "market={market} second_factor={} holders={affected}",
            if required { "required" } else { "off" }
        )),
    )
    .await?;
    Ok(affected)
}

/// One page of the audit trail, newest first.
pub struct AuditPage {
    pub lines: Vec<(i64, AuditEvent)>,
    /// `before` for the next page.
    pub next: Option<i64>,
}

/// The audit trail with filters (user ID, event name, operator).
pub async fn audit(
    app: &AppState,
    _actor: &Actor,
    mut filter: AuditFilter,
) -> Result<AuditPage, ApiError> {
    if let Some(u) = filter.user_id.take().filter(|s| !s.trim().is_empty()) {
        filter.user_id = Some(validate::user_id(u.trim())?);
    }
    if let Some(e) = filter.event.take().filter(|s| !s.trim().is_empty()) {
        let e = e.trim();
        if e.len() > 64 || !e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ApiError::invalid("an event name is a-z and _"));
        }
        filter.event = Some(e.to_owned());
    }
    if let Some(a) = filter.actor.take().filter(|s| !s.trim().is_empty()) {
        filter.actor = Some(crate::flows::operators::name(a.trim())?);
    }
    let mut lines = app.store().audit_page(&filter, PAGE + 1).await?;
    let next = if lines.len() as i64 > PAGE {
        lines.truncate(PAGE as usize);
        lines.last().map(|(id, _)| *id)
    } else {
        None
    };
    Ok(AuditPage { lines, next })
}
