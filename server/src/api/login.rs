//! Sign-in: password, enrolment, OTP, and device (biometric) sign-in.

use axum::extract::State;
use axum::Json;

use crate::api::types::*;
use crate::app::{device_amr, key_method, AppState};
use crate::challenge_token::ChallengeKeys;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientIp, UserAgent};
use crate::flows;
use crate::flows::otp::CodeCheck;
use crate::notify::Channel;
use crate::proof::{Expected, Jws, ProofError, TYP_LOGIN};
use crate::risk::{network_of, Assessment, Flow, RiskContext, SignedIn};
use crate::secrets::{new_challenge, new_id};
use crate::storage::{
    self, Challenge, ChallengeKey, ChallengeOutcome, EnrolOutcome, Login, LoginStage, Redemption,
    User,
};
use crate::validate;

/// The OTP methods a user can receive. A mobile given at enrolment is not
/// one until a sign-in completed with a code sent to the e-mail on file.
pub(crate) fn otp_methods(app: &AppState, user: &User) -> Vec<Method> {
    let mut methods = Vec::new();
    if app.notifier.supports(Channel::Email) {
        methods.push(Method::Otp {
            channel: OtpChannel::Email,
            destination: validate::mask_email(&user.email),
        });
    }
    let sms = app.notifier.supports(Channel::Sms);
    if let Some(mobile) = user.mobile.as_ref().filter(|_| user.mobile_verified && sms) {
        methods.push(Method::Otp {
            channel: OtpChannel::Sms,
            destination: validate::mask_mobile(mobile),
        });
    }
    methods
}

/// The user's active, still-trusted device with this id, if any.
async fn trusted_device(
    app: &AppState,
    user_id: &str,
    device_id: Option<&str>,
) -> Result<Option<storage::Device>, ApiError> {
    let Some(id) = device_id else {
        return Ok(None);
    };
    let device = app.store().device(id).await?;
    Ok(device.filter(|d| d.user_id == user_id && d.removed_at.is_none()))
}

/// A device that may sign in now: not removed, still trusted.
async fn signing_device(
    app: &AppState,
    device_id: &str,
    now: i64,
) -> Result<storage::Device, ApiError> {
    let device = app
        .store()
        .device(device_id)
        .await?
        .filter(|d| d.removed_at.is_none())
        .ok_or(ApiError::DeviceNotRecognized)?;
    if device.trusted_until <= now {
        return Err(ApiError::ReauthorisationRequired);
    }
    Ok(device)
}

/// `second_factor_required` for a login: OTP channels, plus the device
/// method when the login names a still-trusted device and risk allows it.
async fn second_factor(
    app: &AppState,
    login: &Login,
    user: &User,
    risk: &Assessment,
) -> Result<LoginResponse, ApiError> {
    let now = app.now();
    let mut methods = Vec::new();
    let mut reasons = Vec::new();
    let device = trusted_device(app, &user.user_id, login.device_id.as_deref()).await?;
    if let Some(device) = device.filter(|d| d.trusted_until > now) {
        if risk.step_up() {
            reasons = password_reasons(risk);
        } else {
            let challenge = Challenge {
                challenge_id: new_id(),
                device_id: device.device_id,
                challenge: new_challenge(),
                login_id: Some(login.login_id.clone()),
                expires_at: (now + app.settings().challenge_ttl_s).min(login.expires_at),
            };
            app.store().create_challenge(challenge.clone()).await?;
            methods.push(Method::Device {
                challenge_id: challenge.challenge_id,
                challenge: challenge.challenge,
                expires_at: challenge.expires_at,
            });
        }
    }
    methods.extend(otp_methods(app, user));
    Ok(LoginResponse::SecondFactorRequired {
        login_id: login.login_id.clone(),
        expires_at: login.expires_at,
        methods,
        reasons,
    })
}

/// What a password step is told of a step-up: whether the network or the
/// device is new, nothing about the holder's pace, hours or failures (whoever
/// holds only the password learns nothing of the holder's activity).
fn password_reasons(risk: &Assessment) -> Vec<String> {
    risk.reasons()
        .into_iter()
        .filter(|r| r == "new_network" || r == "new_device")
        .collect()
}

#[utoipa::path(
    post, path = "/v1/login/password", tag = "login",
    request_body = PasswordLoginRequest,
    responses(
        (status = 200, description = "Next step of the sign-in", body = LoginResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 423, description = "account_locked", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    ApiJson(req): ApiJson<PasswordLoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    app.rate.check(ip)?;
    let user_id = validate::user_id(&req.user_id)?;
    validate::password(req.password.expose())?;
    let device_id = req
        .device_id
        .as_deref()
        .map(|d| validate::server_id("device_id", d))
        .transpose()?;
    let key = validate::lockout_key(&req.user_id);

    let count = app.reserve_attempt(&key).await?;
    let user = app.store().user(&user_id).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Passwords are kept as their NFKC form (see password_policy).
    let typed = crate::password_policy::normalized(&req.password);
    let verified = match app.hasher.verify(stored, &typed).await {
        Ok(v) => v,
        Err(e) => {
            // Not evaluated (hashing pool full): the attempt does not count.
            app.refund_attempt(&key).await?;
            return Err(e);
        }
    };
    let user = match user {
        Some(user) if verified => user,
        user => {
            return Err(app
                .fail(
                    &key,
                    count,
                    user.as_ref(),
                    ip,
                    "password",
                    ApiError::InvalidCredentials,
                )
                .await)
        }
    };
    // A right password is not a failure; only a session resets the count.
    app.refund_attempt(&key).await?;

    let now = app.now();
    let known_device = trusted_device(&app, &user.user_id, device_id).await?;
    let requires_2fa = app
        .store()
        .market_requires_second_factor(&user.primary_market)
        .await?;
    let risk_ctx = RiskContext {
        flow: Flow::Password,
        user_id: &user.user_id,
        device_id: known_device.as_ref().map(|d| d.device_id.as_str()),
        ip,
        user_agent: ua.as_deref(),
        now,
        second_factor_market: requires_2fa,
    };
    let risk = app.assess_risk(&risk_ctx).await?;
    app.record_risk(&risk_ctx, &risk).await?;

    // A policy's step-up makes even a market without the second factor ask
    // for one (the habits engine never asks it there: seed 000).
    if !requires_2fa && !risk.step_up() {
        let amr = vec!["pwd".to_owned()];
        let device_id = known_device.map(|d| d.device_id);
        let session = app
            .issue_session(&user.user_id, device_id.clone(), amr.clone(), now)
            .await?;
        app.store().reset_attempts(&key, now).await?;
        app.signed_in(&user.user_id, device_id.as_deref(), ip, &amr, true)
            .await?;
        return Ok(Json(LoginResponse::Authenticated { session }));
    }

    let stage = if user.enrolled_at.is_some() {
        LoginStage::SecondFactor
    } else {
        LoginStage::Enrolment
    };
    let expires_at = now + app.settings().login_ttl_s;
    let login = Login {
        device_id: known_device.map(|d| d.device_id),
        network: network_of(ip),
        ..Login::new(
            new_id(),
            &user.user_id,
            stage,
            vec!["pwd".into()],
            expires_at,
            now,
        )
    };
    app.store().create_login(login.clone()).await?;
    app.audit(
        "password_ok",
        Some(&user.user_id),
        login.device_id.as_deref(),
        Some(ip),
        Some(stage.as_str()),
    )
    .await?;
    match stage {
        LoginStage::Enrolment => Ok(Json(LoginResponse::EnrolmentRequired {
            login_id: login.login_id,
            expires_at: login.expires_at,
            profile: Profile {
                name: user.name,
                email: user.email,
            },
        })),
        // The password step makes only the first two stages.
        _ => Ok(Json(second_factor(&app, &login, &user, &risk).await?)),
    }
}

#[utoipa::path(
    post, path = "/v1/login/enrol", tag = "login",
    request_body = EnrolRequest,
    responses(
        (status = 200, description = "Enrolled; the sign-in continues as for an enrolled user", body = LoginResponse),
        (status = 400, description = "invalid_request (security code or mobile rules)", body = ErrorBody),
        (status = 401, description = "login_expired", body = ErrorBody),
        (status = 429, description = "rate_limited: per-IP limit, or the hashing queue is full", body = ErrorBody),
    )
)]
pub async fn enrol(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    app.rate.check(ip)?;
    let login_id = validate::server_id("login_id", &req.login_id)?;
    validate::security_code(req.security_code.expose())?;
    if let Some(mobile) = &req.mobile {
        validate::e164(mobile)?;
    }
    let now = app.now();
    // Checked before the costly hash; `enrol` below re-checks atomically.
    let pending = app
        .store()
        .login(login_id, now)
        .await?
        .filter(|l| l.stage == LoginStage::Enrolment)
        .ok_or(ApiError::LoginExpired)?;
    let on_file = app
        .store()
        .user(&pending.user_id)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    if on_file.enrolled_at.is_some() {
        return Err(ApiError::LoginExpired);
    }
    // Enrolment proves only the password: it may not replace the mobile the
    // bank has on file (the OTP would then go to whoever enrolled).
    if req.mobile.is_some() && on_file.mobile.is_some() {
        return Err(mobile_on_file());
    }
    let code_hash = app.hash_security_code(&req.security_code).await?;
    let login = match app
        .store()
        .enrol(login_id, &code_hash, req.mobile.as_deref(), now)
        .await?
    {
        EnrolOutcome::Enrolled(login) => login,
        EnrolOutcome::LoginGone => return Err(ApiError::LoginExpired),
        EnrolOutcome::MobileOnFile => return Err(mobile_on_file()),
    };
    let user = app
        .store()
        .user(&login.user_id)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    app.audit(
        "enrolled",
        Some(&user.user_id),
        None,
        Some(ip),
        Some(if req.mobile.is_some() {
            "with_mobile"
        } else {
            "without_mobile"
        }),
    )
    .await?;
    let mobile_note = match &req.mobile {
        Some(m) => format!(
            " You added the mobile number {}; it can receive codes once you have signed in \
             with a code sent to this e-mail address.",
            validate::mask_mobile(m)
        ),
        None => String::new(),
    };
    app.alert(
        &user,
        "enrolled",
        format!("You created a security code.{mobile_note}"),
    )
    .await;
    // Enrolment happens once, before any habit exists: the policy is asked
    // as at the password step, for the device method of a named device.
    let risk_ctx = RiskContext {
        flow: Flow::Password,
        user_id: &user.user_id,
        device_id: login.device_id.as_deref(),
        ip,
        user_agent: ua.as_deref(),
        now,
        second_factor_market: true,
    };
    let risk = app.assess_risk(&risk_ctx).await?;
    app.record_risk(&risk_ctx, &risk).await?;
    let login = Login {
        stage: LoginStage::SecondFactor,
        ..login
    };
    Ok(Json(second_factor(&app, &login, &user, &risk).await?))
}

fn mobile_on_file() -> ApiError {
    ApiError::invalid(
        "a mobile number is already on file: it can be changed in your account settings, not at enrolment",
    )
}

#[utoipa::path(
    post, path = "/v1/login/otp/send", tag = "login",
    request_body = OtpSendRequest,
    responses(
        (status = 200, description = "Code sent; it replaces any earlier one", body = OtpSendResponse),
        (status = 400, description = "invalid_request (e.g. no mobile for sms, enrolment not done)", body = ErrorBody),
        (status = 401, description = "login_expired", body = ErrorBody),
        (status = 423, description = "account_locked", body = ErrorBody),
        (status = 429, description = "rate_limited: inside resend spacing or past the cap", body = ErrorBody),
        (status = 502, description = "delivery_failed", body = ErrorBody),
    )
)]
pub async fn otp_send(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OtpSendRequest>,
) -> Result<Json<OtpSendResponse>, ApiError> {
    app.rate.check(ip)?;
    let login_id = validate::server_id("login_id", &req.login_id)?;
    let now = app.now();
    let login = app
        .store()
        .login(login_id, now)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    let what = match login.stage {
        LoginStage::Enrolment => {
            return Err(ApiError::invalid(
                "complete enrolment before asking for a code",
            ))
        }
        LoginStage::SecondFactor => "sign-in",
        LoginStage::Recovery => "password reset",
        // Its code went to the new address when the change was asked for.
        LoginStage::ContactChange => return Err(ApiError::LoginExpired),
    };
    // A lock stops password sign-ins; a device step-up and recovery stay open.
    if login.amr.iter().any(|m| m == "pwd") {
        if let Some(until) = app.store().locked_until(&login.user_id, now).await? {
            return Err(ApiError::AccountLocked {
                retry_after_s: until - now,
            });
        }
    }
    let user = app
        .store()
        .user(&login.user_id)
        .await?
        .ok_or(ApiError::LoginExpired)?;
    let (channel, to) = match req.channel {
        OtpChannel::Email => (Channel::Email, user.email.clone()),
        OtpChannel::Sms => match user.mobile.as_ref().filter(|_| user.mobile_verified) {
            Some(m) => (Channel::Sms, m.clone()),
            None => {
                return Err(ApiError::invalid(
                    "no mobile number that can receive codes is on file",
                ))
            }
        },
    };
    let sent = flows::otp::send_code(&app, &login, channel, &to, what, ip).await?;
    let destination = match req.channel {
        OtpChannel::Email => validate::mask_email(&to),
        OtpChannel::Sms => validate::mask_mobile(&to),
    };
    Ok(Json(OtpSendResponse {
        destination,
        expires_at: sent.expires_at,
        resend_after_s: sent.resend_after_s,
    }))
}

#[utoipa::path(
    post, path = "/v1/login/otp/verify", tag = "login",
    request_body = OtpVerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthenticatedResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "otp_invalid (attempts_left), otp_expired, login_expired", body = ErrorBody),
        (status = 423, description = "account_locked", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn otp_verify(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OtpVerifyRequest>,
) -> Result<Json<AuthenticatedResponse>, ApiError> {
    app.rate.check(ip)?;
    let login_id = validate::server_id("login_id", &req.login_id)?;
    validate::otp_code(req.code.expose())?;
    let now = app.now();
    let s = app.settings();
    let login = app
        .store()
        .login(login_id, now)
        .await?
        .filter(|l| l.stage == LoginStage::SecondFactor)
        .ok_or(ApiError::LoginExpired)?;
    let key = login.user_id.clone();
    let password_flow = login.amr.iter().any(|m| m == "pwd");
    // A step-up after a device proof is the owner's device sign-in: the
    // per-code tries bound it, and a lock others caused does not block it.
    let count = if password_flow {
        Some(app.reserve_attempt(&key).await?)
    } else {
        None
    };
    let refund = || async {
        match count {
            Some(_) => app.refund_attempt(&key).await,
            None => Ok(()),
        }
    };

    let channel = match flows::otp::check_code(&app, login_id, req.code.expose()).await? {
        CodeCheck::Right { channel } => channel,
        CodeCheck::Spent => {
            // Nothing to evaluate: this is not a guess.
            refund().await?;
            // The login may have been finished by a concurrent request meanwhile.
            return Err(match app.store().login(login_id, now).await? {
                Some(_) => ApiError::OtpExpired,
                None => ApiError::LoginExpired,
            });
        }
        CodeCheck::Wrong { attempts_left } => {
            let err = ApiError::OtpInvalid { attempts_left };
            return Err(match count {
                Some(count) => {
                    let user = app.store().user(&login.user_id).await?;
                    app.fail(&key, count, user.as_ref(), ip, "otp", err).await
                }
                None => {
                    app.audit(
                        "signin_failed",
                        Some(&login.user_id),
                        login.device_id.as_deref(),
                        Some(ip),
                        Some("step_up_otp"),
                    )
                    .await?;
                    app.risk_failure(&login.user_id, ip, app.settings().lockout_threshold)
                        .await;
                    err
                }
            });
        }
    };
    let Some(login) = app.store().consume_login(login_id, now).await? else {
        // A concurrent request finished this login first.
        refund().await?;
        return Err(ApiError::LoginExpired);
    };

    let device = trusted_device(&app, &login.user_id, login.device_id.as_deref()).await?;
    if let (Some(device), true) = (&device, password_flow) {
        // Password + OTP on a named trusted device renews its trust.
        app.store()
            .renew_trust(&device.device_id, now + s.trust_period_s)
            .await?;
        app.audit(
            "device_trust_renewed",
            Some(&login.user_id),
            Some(&device.device_id),
            Some(ip),
            None,
        )
        .await?;
    }
    // The person who gave a mobile at enrolment also holds the e-mail on
    // file: the mobile becomes an OTP channel.
    if login.pending_mobile && channel == OtpChannel::Email.as_str() {
        app.store().confirm_mobile(&login.user_id).await?;
        app.audit(
            "mobile_confirmed",
            Some(&login.user_id),
            None,
            Some(ip),
            None,
        )
        .await?;
    }
    let mut amr = login.amr.clone();
    amr.push("otp".into());
    let device_id = device.map(|d| d.device_id);
    let session = app
        .issue_session(&login.user_id, device_id.clone(), amr.clone(), now)
        .await?;
    app.store().reset_attempts(&key, now).await?;
    // A completed step-up teaches the risk policy this network, when the
    // code came back from the network the sign-in started on.
    let same_network = network_of(ip).is_some() && network_of(ip) == login.network;
    app.signed_in(&login.user_id, device_id.as_deref(), ip, &amr, same_network)
        .await?;
    Ok(Json(AuthenticatedResponse::new(session)))
}

#[utoipa::path(
    post, path = "/v1/login/device/challenge", tag = "login",
    request_body = DeviceChallengeRequest,
    responses(
        (status = 200, description = "A single-use challenge for this device, 2-minute life", body = ChallengeResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "device_not_recognized, reauthorisation_required", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn device_challenge(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<DeviceChallengeRequest>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    app.rate.check(ip)?;
    let device_id = validate::server_id("device_id", &req.device_id)?;
    let now = app.now();
    let device = signing_device(&app, device_id, now).await?;
    // An authenticated token, not a row: issuing a challenge writes nothing
    // (issue 14; single use is enforced where the proof is redeemed).
    let expires_at = now + app.settings().challenge_ttl_s;
    let (challenge_id, challenge) = app.challenge_keys.issue(&device.device_id, expires_at);
    Ok(Json(ChallengeResponse {
        challenge_id,
        challenge,
        expires_at,
    }))
}

#[utoipa::path(
    post, path = "/v1/login/device", tag = "login",
    request_body = DeviceLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthenticatedResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "challenge_invalid, signature_invalid, device_not_recognized, reauthorisation_required, step_up_required (login_id, methods)", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn device_login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    ApiJson(req): ApiJson<DeviceLoginRequest>,
) -> Result<Json<AuthenticatedResponse>, ApiError> {
    app.rate.check(ip)?;
    let challenge_id = validate::server_id("challenge_id", &req.challenge_id)?;
    let now = app.now();
    let s = app.settings();
    // What the challenge is: a token (device sign-in) checked against the
    // proof's `kid`, or a stored row (the device step of a password sign-in).
    let (key, challenge) = if ChallengeKeys::is_token(challenge_id) {
        let jws = Jws::parse(&req.proof, TYP_LOGIN).map_err(|_| ApiError::SignatureInvalid)?;
        let kid = jws.kid().ok_or(ApiError::SignatureInvalid)?;
        // Forged, tampered, expired, or issued to another device.
        let opened = app
            .challenge_keys
            .open(challenge_id, kid, now)
            .map_err(|_| ApiError::ChallengeInvalid)?;
        let challenge = Challenge {
            challenge_id: challenge_id.to_owned(),
            device_id: kid.to_owned(),
            challenge: opened.nonce,
            login_id: None,
            expires_at: opened.expires_at,
        };
        let key = ChallengeKey::Token {
            hash: opened.hash,
            device_id: kid.to_owned(),
            expires_at: opened.expires_at,
        };
        ((key, jws), challenge)
    } else {
        let challenge = app
            .store()
            .challenge(challenge_id, now)
            .await?
            .ok_or(ApiError::ChallengeInvalid)?;
        let jws = Jws::parse(&req.proof, TYP_LOGIN).map_err(|_| ApiError::SignatureInvalid)?;
        if jws.kid() != Some(challenge.device_id.as_str()) {
            return Err(ApiError::SignatureInvalid);
        }
        (
            (ChallengeKey::Stored(challenge_id.to_owned()), jws),
            challenge,
        )
    };
    let (key, jws) = key;
    let device = signing_device(&app, &challenge.device_id, now).await?;
    let expected = Expected {
        rp_id: &s.rp_id,
        user_id: &device.user_id,
        nonce: &challenge.challenge,
    };
    if let Err(e) = jws.verify(&device.public_key, expected) {
        // Audited, but never counted toward the owner's lock.
        let reason = match e {
            ProofError::BadSignature => "bad_signature",
            _ => "wrong_claims",
        };
        app.audit(
            "device_proof_failed",
            Some(&device.user_id),
            Some(&device.device_id),
            Some(ip),
            Some(reason),
        )
        .await?;
        return Err(ApiError::SignatureInvalid);
    }
    let password_login = challenge.login_id.is_some();
    let amr = if password_login {
        // The device method of a password sign-in.
        let key = key_method(&device, app.settings().attestation.policy);
        vec!["pwd".to_owned(), key.to_owned()]
    } else {
        device_amr(&device, app.settings().attestation.policy)
    };
    let risk_ctx = RiskContext {
        flow: Flow::Device,
        user_id: &device.user_id,
        device_id: Some(&device.device_id),
        ip,
        user_agent: ua.as_deref(),
        now,
        // A device sign-in is judged wherever the holder's market is.
        second_factor_market: true,
    };
    // The device method of a password sign-in was judged at the password
    // step, for the network the password came from; a proof from another
    // network is judged again (the password and the phone may be in two
    // hands), and a step-up there leaves the sign-in to its OTP methods.
    let risk = match &challenge.login_id {
        Some(login_id) => {
            let started_on = app
                .store()
                .login(login_id, now)
                .await?
                .ok_or(ApiError::ChallengeInvalid)?
                .network;
            if started_on.is_some() && started_on == network_of(ip) {
                Assessment::allow()
            } else {
                let ctx = RiskContext {
                    flow: Flow::Password,
                    ..risk_ctx.clone()
                };
                let again = app.assess_risk(&ctx).await?;
                if again.step_up() {
                    app.record_risk(&ctx, &again).await?;
                    let user = app
                        .store()
                        .user(&device.user_id)
                        .await?
                        .ok_or(ApiError::ChallengeInvalid)?;
                    return Err(ApiError::StepUpRequired {
                        login_id: login_id.clone(),
                        methods: otp_methods(&app, &user),
                        reasons: password_reasons(&again),
                    });
                }
                again
            }
        }
        None => app.assess_risk(&risk_ctx).await?,
    };
    let step_up = risk.step_up();
    let learning = SignedIn {
        user_id: &device.user_id,
        device_id: Some(&device.device_id),
        ip,
        amr: &amr,
        now,
        teaches_network: true,
    };
    // What the proof turns into is stored in the same transaction as the
    // challenge's consumption and the device's check, so a removal racing
    // this sign-in either comes first (no session) or revokes the session.
    // A failed plan learns the slow way after the sign-in.
    let (mut plan, plan_failed) = if step_up {
        (None, false)
    } else {
        match app.plan_sign_in_learning(&learning, &risk).await {
            Ok(plan) => (plan, false),
            Err(()) => (None, true),
        }
    };
    let (redemption, answer) = if step_up {
        // Only a step-up needs the user (its OTP channels).
        let user = app
            .store()
            .user(&device.user_id)
            .await?
            .ok_or(ApiError::DeviceNotRecognized)?;
        let login = step_up_login(&app, &device, amr.clone(), ip);
        let err = ApiError::StepUpRequired {
            login_id: login.login_id.clone(),
            methods: otp_methods(&app, &user),
            reasons: risk.reasons(),
        };
        (Redemption::StepUp(login), Err(err))
    } else {
        let (record, minted, tokens) = app.new_session(
            &device.user_id,
            Some(device.device_id.clone()),
            amr.clone(),
            now,
        );
        let session = app.session(minted, &record);
        let redemption = Redemption::Session {
            record,
            tokens,
            reset_key: device.user_id.clone(),
            // What the policy learns rides in the same transaction: judging
            // costs a device sign-in no write of its own.
            risk: plan.take(),
            // So does the audit line: one commit per sign-in.
            audit: Some(app.sign_in_event(
                &device.user_id,
                Some(&device.device_id),
                ip,
                &amr,
                Some(&risk),
            )),
        };
        (redemption, Ok(session))
    };
    let planned = matches!(&redemption, Redemption::Session { risk: Some(_), .. });
    let audited = match &redemption {
        Redemption::Session { audit, .. } => audit.clone(),
        Redemption::StepUp(_) => None,
    };
    let risk_written = match app.store().redeem_challenge(key, now, redemption).await? {
        ChallengeOutcome::Consumed { risk_written, .. } => risk_written,
        ChallengeOutcome::Gone => return Err(ApiError::ChallengeInvalid),
        ChallengeOutcome::DeviceRemoved => return Err(ApiError::DeviceNotRecognized),
        ChallengeOutcome::TrustEnded => return Err(ApiError::ReauthorisationRequired),
    };
    match answer {
        Ok(session) => {
            if let Some(e) = &audited {
                app.announce_event(e);
            }
            let learnt = if app.risk.learns_in_transaction() {
                // None planned: nothing to learn; planned but not written:
                // another write to the habits came first.
                !plan_failed && (!planned || risk_written)
            } else {
                false
            };
            if !learnt {
                app.learn_sign_in(&learning).await;
            }
            Ok(Json(AuthenticatedResponse::new(session)))
        }
        Err(step_up) => {
            // The decision took effect: recorded as `step_up`.
            app.record_risk(&risk_ctx, &risk).await?;
            Err(step_up)
        }
    }
}

/// A device proof the risk policy wants more for: a login waiting for an
/// OTP. Such a login is the owner's device sign-in, outside the lockout count.
fn step_up_login(
    app: &AppState,
    device: &storage::Device,
    amr: Vec<String>,
    ip: std::net::IpAddr,
) -> Login {
    let now = app.now();
    let expires_at = now + app.settings().login_ttl_s;
    Login {
        device_id: Some(device.device_id.clone()),
        network: network_of(ip),
        ..Login::new(
            new_id(),
            &device.user_id,
            LoginStage::SecondFactor,
            amr,
            expires_at,
            now,
        )
    }
}
