//! Account changes on a strong session, and the user's security events.
//! The rules live in `flows::account` and `flows::events`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::types::*;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth, ClientIp, EmptyBody, StrongAuth};
use crate::flows::account::{self, NewContact};
use crate::flows::events;

#[utoipa::path(
    post, path = "/v1/account/password", tag = "account",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        (status = 400, description = "invalid_request, password_rejected with `reasons`", body = ErrorBody),
        (status = 401, description = "unauthorized, invalid_credentials (counts toward the lock)", body = ErrorBody),
        (status = 403, description = "forbidden: not a strong session", body = ErrorBody),
        (status = 423, description = "account_locked", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn change_password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    account::change_password(&app, &session, &req.current_password, &req.new_password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/account/contact", tag = "account",
    security(("bearer" = [])),
    request_body = ContactChangeRequest,
    responses(
        (status = 200, description = "A code went to the new address", body = ContactChangeResponse),
        (status = 400, description = "invalid_request (not exactly one field, malformed address)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not a strong session", body = ErrorBody),
        (status = 429, description = "rate_limited (hourly caps on codes)", body = ErrorBody),
        (status = 502, description = "delivery_failed: nothing was counted", body = ErrorBody),
    )
)]
pub async fn change_contact(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    ApiJson(req): ApiJson<ContactChangeRequest>,
) -> Result<Json<ContactChangeResponse>, ApiError> {
    let contact = match req {
        ContactChangeRequest::Email(e) => NewContact::Email(e.email),
        ContactChangeRequest::Mobile(m) => NewContact::Mobile(m.mobile),
    };
    let started = account::start_contact_change(&app, &session, contact, ip).await?;
    Ok(Json(ContactChangeResponse {
        change_id: started.change_id,
        destination: started.destination,
        expires_at: started.sent.expires_at,
    }))
}

#[utoipa::path(
    post, path = "/v1/account/contact/verify", tag = "account",
    security(("bearer" = [])),
    request_body = ContactVerifyRequest,
    responses(
        (status = 200, description = "Changed", body = MeResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized, login_expired, otp_invalid (attempts_left), otp_expired", body = ErrorBody),
        (status = 403, description = "forbidden: not a strong session", body = ErrorBody),
    )
)]
pub async fn verify_contact(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    ApiJson(req): ApiJson<ContactVerifyRequest>,
) -> Result<Json<MeResponse>, ApiError> {
    let user =
        account::verify_contact_change(&app, &session, &req.change_id, &req.code, ip).await?;
    Ok(Json(user.into()))
}

#[utoipa::path(
    delete, path = "/v1/account/mobile", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not a strong session", body = ErrorBody),
        (status = 404, description = "not_found: no mobile on file", body = ErrorBody),
    )
)]
pub async fn remove_mobile(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    _body: EmptyBody,
) -> Result<StatusCode, ApiError> {
    account::remove_mobile(&app, &session, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/account/security-code", tag = "account",
    security(("bearer" = [])),
    request_body = SecurityCodeRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "invalid_request (security code rules)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not a strong session", body = ErrorBody),
        (status = 429, description = "rate_limited: the hashing queue is full", body = ErrorBody),
    )
)]
pub async fn change_security_code(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    ApiJson(req): ApiJson<SecurityCodeRequest>,
) -> Result<StatusCode, ApiError> {
    account::change_security_code(&app, &session, &req.security_code, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/v1/account/events", tag = "account",
    security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "The user's security events, newest first", body = EventList),
        (status = 400, description = "invalid_request (limit not 1-200)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(app): State<AppState>,
    Auth(session): Auth,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let list = events::list(&app, &session.user_id, q.limit.unwrap_or(50)).await?;
    Ok(Json(EventList {
        events: list
            .into_iter()
            .map(|e| SecurityEventBody {
                kind: e.kind,
                at: e.at,
                ip: e.ip,
                device_id: e.device_id,
                device_name: e.device_name,
                changed_by: e.changed_by,
            })
            .collect(),
    }))
}
