//! Request extractors that answer in the contract's error format: JSON
//! bodies, empty bodies, bearer sessions, the admin token, the client IP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;
use crate::secrets::{ct_eq, token_hash};
use crate::storage::SessionRecord;

/// A JSON body: wrong content type, bad JSON, unknown or missing fields → 400;
/// over 16 KiB → 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Whether a body error was the body timeout (a client that stopped sending).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    if timed_out(&rejection) {
        return ApiError::RequestTimeout;
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::invalid("Content-Type must be application/json")
        }
        JsonRejection::JsonDataError(e) => ApiError::invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid(e.body_text()),
        other => ApiError::invalid(other.body_text()),
    }
}

/// A path parameter; a malformed one (e.g. not UTF-8) is 400 in the
/// contract's error format, not axum's plain-text rejection.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(ApiError::invalid("a path parameter is malformed")),
        }
    }
}

/// The body of an endpoint that takes none: empty, or the JSON object `{}`.
pub struct EmptyBody;

impl<S: Send + Sync> FromRequest<S> for EmptyBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else if timed_out(&r) {
                ApiError::RequestTimeout
            } else {
                ApiError::invalid("unreadable body")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(EmptyBody);
        }
        match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
            Ok(map) if map.is_empty() => Ok(EmptyBody),
            _ => Err(ApiError::invalid("this endpoint takes no body (or {})")),
        }
    }
}

/// The caller's address: the TCP peer's, unless the peer is one of the
/// proxies named by `--trust-proxy`; then the rightmost address of
/// `X-Forwarded-For` that is not itself a trusted proxy. A header from any
/// other peer is ignored, so it cannot dodge the per-IP limit or change
/// the network the risk policy sees.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &state.settings().trusted_proxies,
        )))
    }
}

/// The client behind a chain of trusted proxies (see `ClientIp`). A
/// malformed `X-Forwarded-For` from a trusted proxy counts as no header:
/// the proxy itself is the client.
pub fn client_ip(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for hop in text.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                Err(_) => return peer,
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// The `User-Agent` header, for the risk policy.
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent(
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
        ))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A caller with a valid access token.
pub struct Auth(pub SessionRecord);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let session = state
            .store()
            .session_for_access(&token_hash(token), state.now())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Auth(session))
    }
}

/// A caller with a strong session: `amr` with `otp` or `hwk`, `auth_time`
/// within the strong-auth window (10 minutes); else 403 `forbidden`.
pub struct StrongAuth(pub SessionRecord);

impl FromRequestParts<AppState> for StrongAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth(session) = Auth::from_request_parts(parts, state).await?;
        if !session.amr.iter().any(|m| m == "otp" || m == "hwk") {
            return Err(ApiError::Forbidden(
                "this needs a sign-in with a one-time code or a trusted device",
            ));
        }
        if session.auth_time + state.settings().strong_auth_window_s < state.now() {
            return Err(ApiError::Forbidden(
                "this needs a sign-in within the last 10 minutes: sign in again",
            ));
        }
        Ok(StrongAuth(session))
    }
}

/// Query parameters; malformed or unknown ones are 400 in the error format.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// A caller with the server's admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let expected = state
            .admin_token_hash
            .as_deref()
            .ok_or(ApiError::Unauthorized)?;
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if ct_eq(&token_hash(token), expected) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
