//! Recovery with the security code (seed 000: "the security code will
//! enable us to retrieve your account credentials"): the user ID by e-mail,
//! and a new password after a one-time code.
//!
//! Security-code failures and wrong recovery codes count per lower-cased
//! user ID or e-mail, separately from password failures: 5 within a day
//! stop recovery for that ID or e-mail for a day. A password lock does not
//! stop recovery: recovery is how a locked-out user gets back in.

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::messages;
use crate::notify::{Channel, Message, Purpose};
use crate::secrets::{new_id, Secret};

use super::otp::{check_code, CodeCheck};
use crate::storage::{LockoutPolicy, Login, LoginStage};
use crate::validate;

const DAY: i64 = 24 * 3600;

fn recovery_policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 5,
        duration_s: DAY,
        memory_s: DAY,
    }
}

fn user_key(user_id: &str) -> String {
    format!("recovery:user:{}", user_id.to_ascii_lowercase())
}

fn email_key(email: &str) -> String {
    format!("recovery:email:{}", email.to_lowercase())
}

/// `POST /v1/recovery/user-id`: answered 202 at once, whatever happens; the
/// work runs off the request path so that neither the answer nor its timing
/// tells whether anything matched. Every user whose e-mail and security
/// code match gets their user ID by e-mail.
///
/// The work is bounded: at most `REMINDERS_AT_ONCE` reminders run at a time;
/// beyond that a request is dropped before anything is counted (a flood
/// cannot queue unbounded work, nor spend a real user's tries).
pub fn remind_user_id(app: &AppState, email: String, code: Secret, ip: IpAddr) {
    let Ok(permit) = app.reminders.clone().try_acquire_owned() else {
        tracing::debug!("user-id reminder dropped: too many at once");
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = remind(&app, &email, &code, ip).await {
            tracing::debug!(error = %e, "user-id reminder not sent");
        }
    });
}

/// Reminders worked on at once.
pub const REMINDERS_AT_ONCE: usize = 16;

async fn remind(app: &AppState, email: &str, code: &Secret, ip: IpAddr) -> Result<(), ApiError> {
    let key = email_key(email);
    // Silently: a blocked e-mail gets nothing.
    let count = app.reserve_attempt_with(&key, recovery_policy()).await?;
    let users = app.store().users_by_email(email).await?;
    let matched = match matching_users(app, &users, code).await {
        Ok(m) => m,
        Err(e) => {
            // Not evaluated (the hashing queue is full): not a failure.
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    if matched.is_empty() {
        let err = ApiError::InvalidCredentials;
        failure(app, &key, count, None, ip, "security_code", err).await?;
        for user in &users {
            app.audit(
                "signin_failed",
                Some(&user.user_id),
                None,
                Some(ip),
                Some("security_code"),
            )
            .await?;
        }
        return Ok(());
    }
    app.refund_attempt(&key).await?;
    let s = app.settings();
    let text = messages::user_ids(&s.brand_name, &matched);
    let to = users[0].email.clone();
    let message = Message {
        channel: Channel::Email,
        to,
        user_id: matched.join(","),
        purpose: Purpose::Recovery,
        code: None,
        event: None,
        subject: text.subject,
        text: text.body,
        sent_at: app.now(),
        message_id: new_id(),
    };
    if let Err(e) = app.notifier.send(message).await {
        tracing::warn!(error = %e, "user-id reminder not delivered");
    }
    for user_id in &matched {
        app.audit("user_id_reminded", Some(user_id), None, Some(ip), None)
            .await?;
    }
    Ok(())
}

/// The user IDs among `users` whose security code is `code`.
async fn matching_users(
    app: &AppState,
    users: &[crate::storage::User],
    code: &Secret,
) -> Result<Vec<String>, ApiError> {
    let mut matched = Vec::new();
    if users.is_empty() {
        // The same work as one user's check.
        app.verify_security_code(None, code).await?;
    }
    for user in users {
        if app
            .verify_security_code(user.security_code_hash.as_deref(), code)
            .await?
        {
            matched.push(user.user_id.clone());
        }
    }
    Ok(matched)
}

/// A wrong security code or recovery code: audited on the user's trail
/// (their `sign_in_failed` event), counted under `key`; the failure that
/// reaches the limit stops recovery for a day. Returns the error to answer.
async fn failure(
    app: &AppState,
    key: &str,
    count: i64,
    user: Option<&crate::storage::User>,
    ip: IpAddr,
    reason: &str,
    err: ApiError,
) -> Result<ApiError, ApiError> {
    // One audit line either way (the same work whether or not the user
    // exists): on the user's trail when there is one, anonymous otherwise.
    Ok(app
        .fail_with(
            recovery_policy(),
            "recovery_blocked",
            key,
            count,
            user,
            ip,
            reason,
            err,
        )
        .await)
}

/// A recovery waiting for its code.
pub struct RecoveryStarted {
    pub login: Login,
    pub user: crate::storage::User,
}

/// `POST /v1/recovery/password`: the user ID and security code. A wrong
/// pair is `invalid_credentials`, the same body and similar timing whether
/// or not the user exists.
pub async fn start_password_recovery(
    app: &AppState,
    raw_user_id: &str,
    code: &Secret,
    ip: IpAddr,
) -> Result<RecoveryStarted, ApiError> {
    let user_id = validate::user_id(raw_user_id)?;
    validate::security_code_shape(code.expose())?;
    let key = user_key(&user_id);
    let count = app.reserve_attempt_with(&key, recovery_policy()).await?;
    let user = app.store().user(&user_id).await?;
    let stored = user.as_ref().and_then(|u| u.security_code_hash.clone());
    let ok = match app.verify_security_code(stored.as_deref(), code).await {
        Ok(ok) => ok,
        Err(e) => {
            // Not evaluated (the hashing queue is full): not a failure.
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    let user = match user {
        Some(user) if ok && stored.is_some() => user,
        user => {
            let err = ApiError::InvalidCredentials;
            return Err(failure(app, &key, count, user.as_ref(), ip, "security_code", err).await?);
        }
    };
    app.refund_attempt(&key).await?;
    let now = app.now();
    let expires_at = now + app.settings().login_ttl_s;
    let login = Login::new(
        new_id(),
        &user.user_id,
        LoginStage::Recovery,
        Vec::new(),
        expires_at,
        now,
    );
    app.store().create_login(login.clone()).await?;
    app.audit(
        "recovery_started",
        Some(&user.user_id),
        None,
        Some(ip),
        None,
    )
    .await?;
    Ok(RecoveryStarted { login, user })
}

/// `POST /v1/recovery/password/complete`: the code sent on the recovery and
/// a new password. Then the password is replaced, the failure count and any
/// lock are cleared, every session is revoked, every trusted device needs
/// re-authorisation, and the user is alerted by e-mail and SMS.
pub async fn complete_password_recovery(
    app: &AppState,
    recovery_id: &str,
    code: &Secret,
    new_password: &Secret,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let recovery_id = validate::server_id("recovery_id", recovery_id)?;
    validate::otp_code(code.expose())?;
    let now = app.now();
    let login = app
        .store()
        .login(recovery_id, now)
        .await?
        .filter(|l| l.stage == LoginStage::Recovery)
        .ok_or(ApiError::LoginExpired)?;
    let user = app
        .store()
        .user(&login.user_id)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    // The policy first: a rejected password spends no code try.
    let password = app
        .settings()
        .password_policy
        .new_password(new_password, &user.user_id)?;
    let key = user_key(&user.user_id);
    let count = app.reserve_attempt_with(&key, recovery_policy()).await?;
    match check_code(app, recovery_id, code.expose()).await? {
        CodeCheck::Right { .. } => {}
        CodeCheck::Spent => {
            app.refund_attempt(&key).await?;
            return Err(ApiError::OtpExpired);
        }
        CodeCheck::Wrong { attempts_left } => {
            let err = ApiError::OtpInvalid { attempts_left };
            return Err(failure(app, &key, count, Some(&user), ip, "recovery_otp", err).await?);
        }
    }
    app.refund_attempt(&key).await?;
    if app
        .hasher()
        .verify(Some(user.password_hash.clone()), &password)
        .await?
    {
        return Err(crate::password_policy::rejected(&[
            crate::password_policy::Reason::SameAsCurrent,
        ]));
    }
    let hash = app.hasher().hash(&password).await?;
    let lockout_key = validate::lockout_key(&user.user_id);
    let Some(reset) = app
        .store()
        .complete_recovery(recovery_id, &hash, &lockout_key, now)
        .await?
    else {
        return Err(ApiError::LoginExpired);
    };
    app.audit(
        "recovery_used",
        Some(&user.user_id),
        None,
        Some(ip),
        Some(&format!(
            "sessions_revoked={} devices_to_reauthorise={}",
            reset.sessions_revoked, reset.devices_to_reauthorise
        )),
    )
    .await?;
    let detail = "You are signed out everywhere; each trusted device asks for your password \
                  and a one-time code once before it signs in with a fingerprint or face again.";
    app.alert(&reset.user, "recovery_used", detail.into()).await;
    if let Some(mobile) = reset
        .user
        .mobile
        .as_deref()
        .filter(|_| reset.user.mobile_verified)
    {
        app.alert_to(
            &reset.user.user_id,
            "recovery_used",
            Channel::Sms,
            mobile,
            detail,
        )
        .await;
    }
    Ok(())
}

/// What the security code a caller read out to the service team says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCheck {
    Match,
    /// Wrong (or none enrolled); so many checks are left before recovery
    /// and further checks stop for a day.
    NoMatch {
        left: i64,
    },
    /// Wrong, and this check reached the limit: recovery and checks stop.
    NoMatchNowBlocked,
}

/// The support console's "verify a caller": the same security-code count as
/// recovery (`recovery:user:ID`, 5 a day), so an operator is no better an
/// oracle for guessing the code than the recovery form. Blocked checks are
/// `account_locked`. Auditing is the caller's (it knows the operator).
pub(crate) async fn check_caller(
    app: &AppState,
    user: &crate::storage::User,
    code: &Secret,
) -> Result<CallerCheck, ApiError> {
    validate::security_code_shape(code.expose())?;
    let key = user_key(&user.user_id);
    let policy = recovery_policy();
    let count = app.reserve_attempt_with(&key, policy).await?;
    let stored = user.security_code_hash.as_deref();
    let ok = match app.verify_security_code(stored, code).await {
        Ok(ok) => ok,
        Err(e) => {
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    if ok && stored.is_some() {
        app.refund_attempt(&key).await?;
        return Ok(CallerCheck::Match);
    }
    if count >= policy.threshold {
        app.store()
            .lock(&key, app.now() + policy.duration_s)
            .await?;
        return Ok(CallerCheck::NoMatchNowBlocked);
    }
    Ok(CallerCheck::NoMatch {
        left: policy.threshold - count,
    })
}

/// When security-code checks (recovery, callers) of `user_id` stop, if they do.
pub(crate) async fn code_checks_blocked_until(
    app: &AppState,
    user_id: &str,
) -> Result<Option<i64>, ApiError> {
    Ok(app
        .store()
        .locked_until(&user_key(user_id), app.now())
        .await?)
}
