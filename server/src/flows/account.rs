//! Account changes on a strong session (a one-time code or a trusted
//! device within the last 10 minutes): password, contact details, security
//! code. Each change alerts the user at the address that was on file.

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::notify::Channel;
use crate::password_policy::{rejected, Reason};
use crate::secrets::{new_id, Secret};
use crate::storage::{Login, LoginStage, SessionRecord, User};
use crate::validate;

use super::otp::{check_code, send_code, CodeCheck, CodeSent};

async fn user_of(app: &AppState, session: &SessionRecord) -> Result<User, ApiError> {
    app.store()
        .user(&session.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// `POST /v1/account/password`. A wrong current password counts toward the
/// lock like any password failure. Every other session is revoked.
pub async fn change_password(
    app: &AppState,
    session: &SessionRecord,
    current: &Secret,
    new: &Secret,
    ip: IpAddr,
) -> Result<(), ApiError> {
    validate::password(current.expose())?;
    let user = user_of(app, session).await?;
    let password = app
        .settings()
        .password_policy
        .new_password(new, &user.user_id)?;
    let key = validate::lockout_key(&user.user_id);
    let count = app.reserve_attempt(&key).await?;
    // Stored as NFKC: what the user types is compared in that form.
    let current = crate::password_policy::normalized(current);
    let ok = match app
        .hasher()
        .verify(Some(user.password_hash.clone()), &current)
        .await
    {
        Ok(ok) => ok,
        Err(e) => {
            // Not evaluated (the hashing queue is full): not a failure.
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    if !ok {
        return Err(app
            .fail(
                &key,
                count,
                Some(&user),
                ip,
                "password",
                ApiError::InvalidCredentials,
            )
            .await);
    }
    app.refund_attempt(&key).await?;
    if app
        .hasher()
        .verify(Some(user.password_hash.clone()), &password)
        .await?
    {
        return Err(rejected(&[Reason::SameAsCurrent]));
    }
    let hash = app.hasher().hash(&password).await?;
    app.store()
        .change_password(&user.user_id, &hash, &session.session_id, app.now())
        .await?;
    app.audit(
        "password_changed",
        Some(&user.user_id),
        session.device_id.as_deref(),
        Some(ip),
        None,
    )
    .await?;
    app.alert(
        &user,
        "password_changed",
        "You are signed out everywhere else.".into(),
    )
    .await;
    Ok(())
}

/// Which address a contact change replaces.
pub enum NewContact {
    Email(String),
    Mobile(String),
}

/// A contact change waiting for its code.
pub struct ContactChangeStarted {
    pub change_id: String,
    pub destination: String,
    pub sent: CodeSent,
}

/// `POST /v1/account/contact`: a code goes to the new address; a new
/// request replaces a pending change.
pub async fn start_contact_change(
    app: &AppState,
    session: &SessionRecord,
    contact: NewContact,
    ip: IpAddr,
) -> Result<ContactChangeStarted, ApiError> {
    let user = user_of(app, session).await?;
    let (channel, to, change_email, change_mobile) = match contact {
        NewContact::Email(e) => {
            let e = validate::email(&e)?;
            (Channel::Email, e.clone(), Some(e), None)
        }
        NewContact::Mobile(m) => {
            validate::e164(&m)?;
            (Channel::Sms, m.clone(), None, Some(m))
        }
    };
    let now = app.now();
    let expires_at = now + app.settings().otp_ttl_s;
    let login = Login {
        device_id: session.device_id.clone(),
        change_email,
        change_mobile,
        ..Login::new(
            new_id(),
            &user.user_id,
            LoginStage::ContactChange,
            Vec::new(),
            expires_at,
            now,
        )
    };
    app.store().start_contact_change(login.clone()).await?;
    let sent = send_code(app, &login, channel, &to, "contact change", ip).await?;
    let destination = match channel {
        Channel::Email => validate::mask_email(&to),
        Channel::Sms => validate::mask_mobile(&to),
    };
    Ok(ContactChangeStarted {
        change_id: login.login_id,
        destination,
        sent,
    })
}

/// `POST /v1/account/contact/verify`: the code sent to the new address.
/// The alert goes to the e-mail on file before the change and, for a mobile
/// change, to the old mobile too.
pub async fn verify_contact_change(
    app: &AppState,
    session: &SessionRecord,
    change_id: &str,
    code: &Secret,
    ip: IpAddr,
) -> Result<User, ApiError> {
    let change_id = validate::server_id("change_id", change_id)?;
    validate::otp_code(code.expose())?;
    let now = app.now();
    let login = app
        .store()
        .login(change_id, now)
        .await?
        .filter(|l| l.stage == LoginStage::ContactChange && l.user_id == session.user_id)
        .ok_or(ApiError::LoginExpired)?;
    match check_code(app, change_id, code.expose()).await? {
        CodeCheck::Right { .. } => {}
        CodeCheck::Spent => return Err(ApiError::OtpExpired),
        CodeCheck::Wrong { attempts_left } => {
            app.audit(
                "signin_failed",
                Some(&login.user_id),
                None,
                Some(ip),
                Some("contact_otp"),
            )
            .await?;
            return Err(ApiError::OtpInvalid { attempts_left });
        }
    }
    let (before, after) = app
        .store()
        .apply_contact_change(change_id, &session.user_id, now)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    let what = if login.change_email.is_some() {
        "email"
    } else {
        "mobile"
    };
    app.audit(
        "contact_changed",
        Some(&after.user_id),
        session.device_id.as_deref(),
        Some(ip),
        Some(what),
    )
    .await?;
    alert_contact_change(app, &before, &after).await;
    Ok(after)
}

async fn alert_contact_change(app: &AppState, before: &User, after: &User) {
    let detail = if before.email != after.email {
        format!(
            "Your e-mail address is now {}.",
            validate::mask_email(&after.email)
        )
    } else {
        match &after.mobile {
            Some(m) => format!("Your mobile number is now {}.", validate::mask_mobile(m)),
            None => "Your mobile number was removed.".into(),
        }
    };
    // To the e-mail on file before the change.
    app.alert(before, "contact_changed", detail.clone()).await;
    if let Some(old) = before.mobile.as_deref() {
        if before.mobile != after.mobile {
            app.alert_to(
                &before.user_id,
                "contact_changed",
                Channel::Sms,
                old,
                &detail,
            )
            .await;
        }
    }
}

/// `DELETE /v1/account/mobile`.
pub async fn remove_mobile(
    app: &AppState,
    session: &SessionRecord,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let Some(before) = app.store().remove_mobile(&session.user_id).await? else {
        return Err(ApiError::NotFound);
    };
    let after = User {
        mobile: None,
        ..before.clone()
    };
    app.audit(
        "contact_changed",
        Some(&before.user_id),
        session.device_id.as_deref(),
        Some(ip),
        Some("mobile_removed"),
    )
    .await?;
    alert_contact_change(app, &before, &after).await;
    Ok(())
}

/// `POST /v1/account/security-code`.
pub async fn change_security_code(
    app: &AppState,
    session: &SessionRecord,
    code: &Secret,
    ip: IpAddr,
) -> Result<(), ApiError> {
    validate::security_code(code.expose())?;
    let user = user_of(app, session).await?;
    let hash = app.hash_security_code(code).await?;
    app.store().set_security_code(&user.user_id, &hash).await?;
    app.audit(
        "security_code_changed",
        Some(&user.user_id),
        session.device_id.as_deref(),
        Some(ip),
        None,
    )
    .await?;
    app.alert(&user, "security_code_changed", String::new())
        .await;
    Ok(())
}
