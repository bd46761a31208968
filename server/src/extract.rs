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
pub(crate) fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<crate::http_server::BodyDeadlineExceeded>() {
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

/// The client behind a chain of trusted proxies (see `ClientIp`).
///
/// The header is read from the right, hop by hop, and reading stops at the
/// first address that is not a trusted proxy: that is the client, and
/// whatever stands further left (the client's own say) is never parsed, so
/// it cannot change the answer. A hop a trusted proxy wrote that cannot be
/// read gives `UNKNOWN_CLIENT` (no network the risk engine knows), never
/// the proxy's own address (which every user behind it would share).
/// Addresses are compared in their canonical form, so an IPv4 proxy seen
/// as `::ffff:a.b.c.d` on a dual-stack listener is still recognised.
pub fn client_ip(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let lines: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    for line in lines.iter().rev() {
        for hop in line.rsplit(|b| *b == b',') {
            match parse_hop(hop) {
                Some(ip) if is_trusted(&ip) => continue,
                Some(ip) => return ip,
                None => return UNKNOWN_CLIENT,
            }
        }
    }
    peer
}

/// The client address given when a trusted proxy's header cannot be read.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

/// One `X-Forwarded-For` hop: an address, with or without a port
/// (`a.b.c.d:p`, `[v6]:p`, `[v6]`), canonical.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
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

#[cfg(test)]
mod client_ip_tests {
    use super::*;
    use axum::http::HeaderMap;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn from(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_ip(ip(peer), &headers, &trusted)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(from("192.0.2.1", &["198.51.100.1"], &[]), ip("192.0.2.1"));
        assert_eq!(
            from("192.0.2.1", &["198.51.100.1"], &["10.0.0.0/8"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_and_what_is_left_of_it_is_never_read() {
        let proxies = ["10.0.0.0/8"];
        assert_eq!(
            from("10.0.0.1", &["x, 198.51.100.66"], &proxies),
            ip("198.51.100.66")
        );
        assert_eq!(
            from(
                "10.0.0.1",
                &["203.0.113.1, 198.51.100.66, 10.0.0.7"],
                &proxies
            ),
            ip("198.51.100.66")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            from("10.0.0.1", &["garbage", "198.51.100.66"], &proxies),
            ip("198.51.100.66")
        );
    }

    #[test]
    fn ports_and_brackets_are_read() {
        let proxies = ["10.0.0.0/8"];
        assert_eq!(
            from("10.0.0.1", &["203.0.113.7:51234"], &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            from("10.0.0.1", &["[2001:db8::1]:443"], &proxies),
            ip("2001:db8::1")
        );
        assert_eq!(
            from("10.0.0.1", &["[2001:db8::1]"], &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn an_unreadable_hop_from_a_trusted_proxy_is_an_unknown_client_not_the_proxy() {
        let proxies = ["10.0.0.0/8"];
        for bad in ["x", "0203.0.113.7", "", "203.0.113.7:99999"] {
            assert_eq!(
                from("10.0.0.1", &[bad], &proxies),
                UNKNOWN_CLIENT,
                "{bad:?}"
            );
        }
        // No header at all: the proxy is the client (a health check).
        assert_eq!(from("10.0.0.1", &[], &proxies), ip("10.0.0.1"));
    }

    #[test]
    fn a_mapped_ipv4_peer_on_a_dual_stack_listener_is_recognised() {
        let proxies = ["127.200.0.0/24"];
        assert_eq!(
            from("::ffff:127.200.0.9", &["203.0.113.5"], &proxies),
            ip("203.0.113.5")
        );
        assert_eq!(
            from("10.0.0.1", &["::ffff:203.0.113.5"], &["10.0.0.0/8"]),
            ip("203.0.113.5")
        );
    }
}
