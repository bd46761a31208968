//! Recovery with the security code: the user ID by e-mail, a new password
//! after a one-time code. The rules live in `flows::recovery`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::login::otp_methods;
use crate::api::types::*;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::flows::recovery;
use crate::validate;

#[utoipa::path(
    post, path = "/v1/recovery/user-id", tag = "recovery",
    request_body = UserIdRecoveryRequest,
    responses(
        (status = 202, description = "Always: whoever's e-mail and security code match gets their user ID by e-mail", body = Accepted),
        (status = 400, description = "invalid_request (not an e-mail address, not 6-9 digits)", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn user_id(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<UserIdRecoveryRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    app.rate.check(ip)?;
    let email = validate::email(&req.email)?;
    validate::security_code_shape(req.security_code.expose())?;
    recovery::remind_user_id(&app, email, req.security_code, ip);
    Ok((StatusCode::ACCEPTED, Json(Accepted {})))
}

#[utoipa::path(
    post, path = "/v1/recovery/password", tag = "recovery",
    request_body = PasswordRecoveryRequest,
    responses(
        (status = 200, description = "Send a code on `recovery_id` with /v1/login/otp/send", body = PasswordRecoveryResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "invalid_credentials: the same body and similar timing whether or not the user exists", body = ErrorBody),
        (status = 423, description = "account_locked: recovery stopped for this user ID for 24 hours", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<PasswordRecoveryRequest>,
) -> Result<Json<PasswordRecoveryResponse>, ApiError> {
    app.rate.check(ip)?;
    let started =
        recovery::start_password_recovery(&app, &req.user_id, &req.security_code, ip).await?;
    Ok(Json(PasswordRecoveryResponse {
        recovery_id: started.login.login_id,
        expires_at: started.login.expires_at,
        methods: otp_methods(&app, &started.user),
    }))
}

#[utoipa::path(
    post, path = "/v1/recovery/password/complete", tag = "recovery",
    request_body = CompleteRecoveryRequest,
    responses(
        (status = 200, description = "The password is replaced; sessions revoked; devices need re-authorisation", body = PasswordChangedResponse),
        (status = 400, description = "invalid_request, password_rejected with `reasons`", body = ErrorBody),
        (status = 401, description = "login_expired, otp_invalid (attempts_left), otp_expired", body = ErrorBody),
        (status = 423, description = "account_locked: recovery stopped for this user ID for 24 hours", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn complete(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CompleteRecoveryRequest>,
) -> Result<Json<PasswordChangedResponse>, ApiError> {
    app.rate.check(ip)?;
    recovery::complete_password_recovery(&app, &req.recovery_id, &req.code, &req.new_password, ip)
        .await?;
    Ok(Json(PasswordChangedResponse {
        status: "password_changed",
    }))
}
