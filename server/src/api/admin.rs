//! Administration with the server's admin token: users, unlocks, markets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::types::{CreateUserRequest, MarketRequest, MeResponse, SecondFactor};
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ApiJson, ApiPath, EmptyBody};
use crate::password_policy::PasswordPolicy;
use crate::secrets::Hasher;
use crate::storage::{StorageError, User};
use crate::validate;

/// Validates a new user and hashes the password, NFKC-normalised, once it
/// meets `policy` (else `password_rejected` with every broken rule); shared
/// with the CLI.
pub async fn new_user(
    hasher: &Hasher,
    policy: &PasswordPolicy,
    now: i64,
    req: CreateUserRequest,
) -> Result<User, ApiError> {
    let user_id = validate::user_id(&req.user_id)?;
    let name = validate::label("name", &req.name, 128)?;
    let email = validate::email(&req.email)?;
    if let Some(m) = &req.mobile {
        validate::e164(m)?;
    }
    let market = validate::market(&req.primary_market)?;
    let password = policy.new_password(&req.password, &user_id)?;
    let password_hash = hasher.hash(&password).await?;
    Ok(User {
        user_id,
        name,
        email,
        mobile: req.mobile,
        primary_market: market,
        password_hash,
        security_code_hash: None,
        enrolled_at: None,
        created_at: now,
        // The bank provisioned it: it is an OTP channel from the start.
        mobile_verified: true,
    })
}

#[utoipa::path(
    post, path = "/admin/v1/users", tag = "admin",
    security(("admin" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created; the user enrols at first sign-in", body = MeResponse),
        (status = 400, description = "invalid_request; password_rejected with `reasons`", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
        (status = 429, description = "rate_limited: the password-hashing queue is full", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<MeResponse>), ApiError> {
    let user = new_user(&app.hasher, &app.settings().password_policy, app.now(), req).await?;
    match app.store().create_user(user.clone()).await {
        Ok(()) => {}
        Err(StorageError::Conflict) => return Err(ApiError::UserExists),
        Err(e) => return Err(e.into()),
    }
    app.audit(
        "user_created",
        Some(&user.user_id),
        None,
        None,
        Some("admin_api"),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(
    post, path = "/admin/v1/users/{user_id}/unlock", tag = "admin",
    security(("admin" = [])),
    params(("user_id" = String, Path, description = "The user id (any case)", pattern = "^[A-Za-z0-9._@+-]{1,64}$")),
    responses(
        (status = 204, description = "Lock lifted and failure count cleared"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn unlock_user(
    State(app): State<AppState>,
    _admin: Admin,
    ApiPath(user_id): ApiPath<String>,
    _body: EmptyBody,
) -> Result<StatusCode, ApiError> {
    let user_id = validate::user_id(&user_id)?;
    // The back office's admin token: the sign-in lock and the
    // security-code stops alike (docs/SECURITY.md).
    app.store()
        .unlock(&user_id, crate::storage::UnlockScope::Both)
        .await?;
    app.audit("unlocked", Some(&user_id), None, None, Some("admin_api"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/admin/v1/markets/{market}", tag = "admin",
    security(("admin" = [])),
    params(("market" = String, Path, description = "ISO 3166-1 alpha-2, any case", pattern = "^[A-Za-z]{2}$")),
    request_body = MarketRequest,
    responses(
        (status = 204, description = "Saved"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn set_market(
    State(app): State<AppState>,
    _admin: Admin,
    ApiPath(market): ApiPath<String>,
    ApiJson(req): ApiJson<MarketRequest>,
) -> Result<StatusCode, ApiError> {
    let market = validate::market(&market)?;
    app.store()
        .set_market(&market, req.second_factor == SecondFactor::Required)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
