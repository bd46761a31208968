//! Trusted devices: registration with a proof of the new key, list, removal.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::types::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::app::AppState;
use crate::attestation::{self, Policy};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, ClientIp, EmptyBody};
use crate::proof::{Expected, Jws, ProofError, TYP_REGISTER};
use crate::secrets::{new_challenge, new_id};
use crate::storage::{self, Registration, RegistrationOutcome, SessionRecord};
use crate::validate;

/// Registration needs a recent strong sign-in: `amr` with `otp` or `hwk`
/// (a software key's `swk` is not enough), `auth_time` within the window.
fn require_strong(app: &AppState, session: &SessionRecord) -> Result<(), ApiError> {
    let strong = session.amr.iter().any(|m| m == "otp" || m == "hwk");
    if !strong {
        return Err(ApiError::Forbidden(
            "registering a device needs a sign-in with a one-time code or a trusted device",
        ));
    }
    if session.auth_time + app.settings().strong_auth_window_s < app.now() {
        return Err(ApiError::Forbidden(
            "registering a device needs a sign-in within the last 10 minutes",
        ));
    }
    Ok(())
}

/// The attestation policy for a registration whose proof verified: `None`
/// when nothing was verified (none given, or `--attestation off`), the
/// verified attestation, or `attestation_invalid` with the failing check in
/// the audit trail. A malformed `attestation` is `invalid_request`.
async fn check_attestation(
    app: &AppState,
    req: &RegisterDeviceRequest,
    registration: &storage::Registration,
    public_key: &[u8],
    ip: std::net::IpAddr,
    session: &SessionRecord,
) -> Result<Option<attestation::Verified>, ApiError> {
    let config = &app.settings().attestation;
    let given = match (&req.attestation, config.policy) {
        (_, Policy::Off) => return Ok(None),
        (None, Policy::Verify) => return Ok(None),
        (None, Policy::Require) => None,
        (Some(a), _) => Some(a),
    };
    let outcome = match given {
        None => Err("attestation_missing"),
        Some(a) => {
            let decoded = a.decode().map_err(ApiError::invalid)?;
            let challenge = URL_SAFE_NO_PAD
                .decode(&registration.challenge)
                .map_err(|_| ApiError::Internal)?;
            let platform_ok = matches!(
                (&decoded, req.platform),
                (attestation::Decoded::Android(_), Platform::Android)
                    | (attestation::Decoded::Apple { .. }, Platform::Ios)
            );
            let reg = attestation::Registration {
                challenge: &challenge,
                public_key,
                user_auth_required: req.user_verification != UserVerification::None,
                now: app.now(),
            };
            if !platform_ok {
                Err("platform_mismatch")
            } else {
                match config.verify(&decoded, &reg) {
                    Err(e) => Err(e.reason()),
                    // `software` (or another level) claimed: the attested
                    // level must be the one the device says it has.
                    Ok(v)
                        if !attestation::matches_claim(
                            v.security_level,
                            &wire_name(&req.key_storage),
                        ) =>
                    {
                        Err("security_level_mismatch")
                    }
                    Ok(v) => Ok(v),
                }
            }
        }
    };
    match outcome {
        Ok(v) => {
            app.metrics.attestation_verified();
            Ok(Some(v))
        }
        Err(reason) => {
            // A failed attestation spends the registration: each new try
            // needs a new registration (a strong session's request), so
            // failures cannot be repeated without bound against one.
            app.store()
                .spend_registration(&registration.registration_id)
                .await?;
            app.audit(
                "device_attestation_failed",
                Some(&session.user_id),
                None,
                Some(ip),
                Some(reason),
            )
            .await?;
            Err(ApiError::AttestationInvalid)
        }
    }
}

#[utoipa::path(
    post, path = "/v1/devices/registration", tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A registration challenge, 5-minute life", body = RegistrationResponse),
        (status = 400, description = "invalid_request: a body other than none or {}", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: sign-in too weak or too old", body = ErrorBody),
    )
)]
pub async fn start_registration(
    State(app): State<AppState>,
    Auth(session): Auth,
    _body: EmptyBody,
) -> Result<Json<RegistrationResponse>, ApiError> {
    require_strong(&app, &session)?;
    let registration = Registration {
        registration_id: new_id(),
        user_id: session.user_id,
        challenge: new_challenge(),
        expires_at: app.now() + app.settings().registration_ttl_s,
    };
    app.store()
        .create_registration(registration.clone())
        .await?;
    Ok(Json(RegistrationResponse {
        registration_id: registration.registration_id,
        challenge: registration.challenge,
        expires_at: registration.expires_at,
    }))
}

#[utoipa::path(
    post, path = "/v1/devices", tag = "devices",
    security(("bearer" = [])),
    request_body = RegisterDeviceRequest,
    responses(
        (status = 201, description = "The device is trusted", body = DeviceResponse),
        (status = 400, description = "invalid_request (including an invalid JWK point or a malformed attestation); attestation_invalid (an attestation that fails a check or contradicts key_storage, or none under --attestation require)", body = ErrorBody),
        (status = 401, description = "unauthorized, challenge_invalid, signature_invalid", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 409, description = "device_limit", body = ErrorBody),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Auth(session): Auth,
    ApiJson(req): ApiJson<RegisterDeviceRequest>,
) -> Result<(StatusCode, Json<DeviceResponse>), ApiError> {
    require_strong(&app, &session)?;
    let registration_id = validate::server_id("registration_id", &req.registration_id)?;
    let name = validate::label("name", &req.name, 64)?;
    let now = app.now();
    let s = app.settings();
    let registration = app
        .store()
        .registration(registration_id, now)
        .await?
        .filter(|r| r.user_id == session.user_id)
        .ok_or(ApiError::ChallengeInvalid)?;
    let jws = Jws::parse(&req.proof, TYP_REGISTER).map_err(|_| ApiError::SignatureInvalid)?;
    let public_key = jws.jwk_point().map_err(|e| match e {
        ProofError::InvalidKey(why) => ApiError::invalid(format!("proof jwk: {why}")),
        _ => ApiError::SignatureInvalid,
    })?;
    let expected = Expected {
        rp_id: &s.rp_id,
        user_id: &session.user_id,
        nonce: &registration.challenge,
    };
    jws.verify(&public_key, expected)
        .map_err(|_| ApiError::SignatureInvalid)?;
    let attestation = check_attestation(&app, &req, &registration, &public_key, ip, &session)
        .await?
        .map(|v| storage::DeviceAttestation {
            format: v.format.to_owned(),
            security_level: v.security_level.as_str().to_owned(),
            verified_at: now,
        });

    let device = storage::Device {
        device_id: new_id(),
        user_id: session.user_id.clone(),
        name,
        platform: wire_name(&req.platform),
        key_storage: wire_name(&req.key_storage),
        user_verification: wire_name(&req.user_verification),
        public_key,
        created_at: now,
        last_used_at: None,
        trusted_until: now + s.trust_period_s,
        removed_at: None,
        // A device added from a device's session stands or falls with it.
        registered_by: session.device_id.clone(),
        attestation,
    };
    let outcome = app
        .store()
        .finish_registration(
            registration_id,
            &session.session_id,
            device.clone(),
            s.max_devices,
            now,
        )
        .await?;
    match outcome {
        RegistrationOutcome::Created => {}
        RegistrationOutcome::Gone => return Err(ApiError::ChallengeInvalid),
        RegistrationOutcome::DeviceLimit => return Err(ApiError::DeviceLimit),
    }
    app.audit(
        "device_added",
        Some(&session.user_id),
        Some(&device.device_id),
        Some(ip),
        Some(&device.key_storage),
    )
    .await?;
    // A strong session registered it from here: the risk policy knows it.
    app.risk_device_added(&session.user_id, &device.device_id, ip)
        .await;
    if let Some(user) = app.store().user(&session.user_id).await? {
        // Names can repeat: say which device vouched for the new one.
        let parent = match &device.registered_by {
            Some(id) => app.store().device(id).await?,
            None => None,
        };
        let from = parent
            .map(|p| format!(" It was added from \"{}\".", p.name))
            .unwrap_or_default();
        app.alert(
            &user,
            "device_added",
            format!(
                "\"{}\" can now sign in with a fingerprint or face.{from} \
                 If you do not know it, remove it in the app.",
                device.name
            ),
        )
        .await;
    }
    // The session that registered the device now belongs to it.
    let current = session.device_id.as_deref().unwrap_or(&device.device_id);
    let body = Device::from_record(device.clone(), Some(current));
    Ok((StatusCode::CREATED, Json(DeviceResponse { device: body })))
}

#[utoipa::path(
    get, path = "/v1/devices", tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's trusted devices", body = DeviceList),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = app.store().devices(&session.user_id).await?;
    let current = session.device_id.as_deref();
    Ok(Json(DeviceList {
        devices: devices
            .into_iter()
            .map(|d| Device::from_record(d, current))
            .collect(),
    }))
}

#[utoipa::path(
    delete, path = "/v1/devices/{device_id}", tag = "devices",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device to remove", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "Removed, with every device registered from its sessions; their sessions are revoked"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found: not one of the caller's devices", body = ErrorBody),
    )
)]
pub async fn remove(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Auth(session): Auth,
    ApiPath(device_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let device_id = validate::server_id("device_id", &device_id)?;
    let removed = app
        .store()
        .remove_device(&session.user_id, device_id, app.now())
        .await?;
    let Some(first) = removed.first() else {
        return Err(ApiError::NotFound);
    };
    for d in &removed {
        let reason = (d.device_id != first.device_id).then_some("registered_from_removed_device");
        app.audit(
            "device_removed",
            Some(&session.user_id),
            Some(&d.device_id),
            Some(ip),
            reason,
        )
        .await?;
    }
    if let Some(user) = app.store().user(&session.user_id).await? {
        let offspring: Vec<String> = removed[1..]
            .iter()
            .map(|d| format!("\"{}\"", d.name))
            .collect();
        let also = if offspring.is_empty() {
            String::new()
        } else {
            format!(
                " Devices added from it were removed too: {}.",
                offspring.join(", ")
            )
        };
        app.alert(
            &user,
            "device_removed",
            format!(
                "\"{}\" was removed from your trusted devices and can no longer sign in.{also}",
                first.name
            ),
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}
