//! Sessions: refresh with rotation and reuse detection, sign-out, profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::types::{MeResponse, RefreshRequest, Session};
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Auth, ClientIp, EmptyBody};
use crate::secrets::token_hash;
use crate::storage::RefreshOutcome;

#[utoipa::path(
    post, path = "/v1/session/refresh", tag = "session",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is spent", body = Session),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized: unknown, expired, revoked, or reused (the family is revoked)", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<Session>, ApiError> {
    let presented = req.refresh_token.expose();
    if presented.is_empty() || presented.len() > 256 {
        return Err(ApiError::invalid("refresh_token is malformed"));
    }
    let now = app.now();
    // The new pair is minted first so the rotation is one transaction;
    // only its hashes reach the store.
    let (minted, tokens) = app.mint_tokens(now);
    match app
        .store()
        .rotate_refresh(&token_hash(presented), tokens, now)
        .await?
    {
        RefreshOutcome::Rotated(record) => Ok(Json(app.session(minted, &record))),
        RefreshOutcome::Reused(record) => {
            app.audit(
                "refresh_reuse",
                Some(&record.user_id),
                record.device_id.as_deref(),
                Some(ip),
                Some("family revoked"),
            )
            .await?;
            if let Some(user) = app.store().user(&record.user_id).await? {
                app.alert(
                    &user,
                    "refresh_reuse",
                    "If you did not just sign in again, change your password.".into(),
                )
                .await;
            }
            Err(ApiError::Unauthorized)
        }
        RefreshOutcome::Invalid => Err(ApiError::Unauthorized),
    }
}

#[utoipa::path(
    post, path = "/v1/session/logout", tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session and its tokens are revoked"),
        (status = 400, description = "invalid_request: a body other than none or {}", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn logout(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Auth(session): Auth,
    _body: EmptyBody,
) -> Result<StatusCode, ApiError> {
    app.store()
        .revoke_session(&session.session_id, "logout", app.now())
        .await?;
    app.audit(
        "logout",
        Some(&session.user_id),
        session.device_id.as_deref(),
        Some(ip),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/v1/me", tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user's profile", body = MeResponse),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn me(
    State(app): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<MeResponse>, ApiError> {
    let user = app
        .store()
        .user(&session.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(user.into()))
}
