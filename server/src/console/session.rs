//! Console browser sessions: cookies, CSRF tokens, the signed-in operator.
//!
//! - The session cookie holds 256 random bits; the database keeps only
//!   their SHA-256. `Secure; HttpOnly; SameSite=Strict`, with the `__Host-`
//!   prefix and `Path=/` on the console's own listener, `__Secure-` and
//!   `Path=/console` when it shares the API's listener (the API paths never
//!   see it).
//! - A new session id at each stage: password → code → signed in (no
//!   fixation); sign-out deletes it server-side.
//! - CSRF: every form carries HMAC(console key, session id), checked in
//!   constant time; before sign-in, HMAC of a random pre-session cookie.
//!   Cross-site POSTs (`Sec-Fetch-Site`) are refused before any of that.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::app::AppState;
use crate::flows::operators::{Actor, Role};
use crate::secrets::{ct_eq, new_token, token_hash};
use crate::storage::ConsoleSession;

/// A signed-in session ends this long after sign-in, whatever its use.
pub const SESSION_MAX_AGE_S: i64 = 8 * 3600;
/// ... or after this long unused.
pub const SESSION_IDLE_S: i64 = 15 * 60;
/// Between the password and the code (or TOTP enrolment).
pub const PENDING_S: i64 = 5 * 60;

/// Where the console is served, which decides its cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// Its own listener (`--console-listen`): `__Host-` cookies, `Path=/`.
    OwnListener,
    /// Under `/console` on the API's listener (`--console`): `__Secure-`
    /// cookies scoped to `Path=/console`.
    Shared,
}

impl Mount {
    fn session_cookie(self) -> &'static str {
        match self {
            Mount::OwnListener => "__Host-dtc_session",
            Mount::Shared => "__Secure-dtc_session",
        }
    }
    fn pre_cookie(self) -> &'static str {
        match self {
            Mount::OwnListener => "__Host-dtc_pre",
            Mount::Shared => "__Secure-dtc_pre",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Mount::OwnListener => "/",
            Mount::Shared => "/console",
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes it.
    fn cookie(self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let v = format!(
            "{name}={value}; Path={}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict",
            self.path()
        );
        // Names and values are ours: base64url and ASCII.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
    }

    pub fn set_session(self, headers: &mut HeaderMap, token: &str, max_age: i64) {
        headers.append(
            SET_COOKIE,
            self.cookie(self.session_cookie(), token, max_age),
        );
    }
    pub fn clear_session(self, headers: &mut HeaderMap) {
        headers.append(SET_COOKIE, self.cookie(self.session_cookie(), "", 0));
    }
    pub fn set_pre(self, headers: &mut HeaderMap, nonce: &str) {
        headers.append(SET_COOKIE, self.cookie(self.pre_cookie(), nonce, 600));
    }
}

/// The value of cookie `name` in the request, if exactly one is there.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        // Two (a planted one beside ours): trust neither.
                        return None;
                    }
                    found = Some(val);
                }
            }
        }
    }
    found.filter(|v| v.len() <= 64)
}

fn mac(key: &hmac::Key, purpose: &str, value: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(purpose.as_bytes());
    ctx.update(b"\0");
    ctx.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// The CSRF token of a session (or pre-session) value.
pub fn csrf_token(app: &AppState, purpose: &str, value: &str) -> String {
    mac(&app.console_key, purpose, value)
}

/// Whether a submitted CSRF token is the one for `value`.
pub fn csrf_ok(app: &AppState, purpose: &str, value: &str, submitted: &str) -> bool {
    ct_eq(
        csrf_token(app, purpose, value).as_bytes(),
        submitted.as_bytes(),
    )
}

/// The pre-session nonce in the request, or a fresh one (to set).
pub fn pre_session(headers: &HeaderMap, mount: Mount) -> (String, bool) {
    match cookie(headers, mount.pre_cookie()) {
        Some(v) if !v.is_empty() => (v.to_owned(), false),
        _ => (new_token(""), true),
    }
}

/// The pre-session nonce, only if the browser sent one.
pub fn pre_session_sent(headers: &HeaderMap, mount: Mount) -> Option<String> {
    cookie(headers, mount.pre_cookie()).map(str::to_owned)
}

/// Starts a session at `stage` for `operator`; returns the cookie's value.
pub async fn start(
    app: &AppState,
    operator: &str,
    stage: &str,
    max_age: i64,
) -> Result<String, crate::error::ApiError> {
    let token = new_token("");
    let now = app.now();
    app.store()
        .create_console_session(ConsoleSession {
            session_hash: token_hash(&token),
            operator: operator.to_owned(),
            stage: stage.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + max_age,
        })
        .await?;
    Ok(token)
}

/// The session the request's cookie names (any stage), if alive.
pub async fn current(
    app: &AppState,
    headers: &HeaderMap,
    mount: Mount,
) -> Result<Option<(String, ConsoleSession)>, crate::error::ApiError> {
    let Some(token) = cookie(headers, mount.session_cookie()) else {
        return Ok(None);
    };
    let idle = SESSION_IDLE_S.max(PENDING_S);
    let session = app
        .store()
        .console_session(&token_hash(token), app.now(), idle)
        .await?;
    Ok(session.map(|s| (token.to_owned(), s)))
}

/// Ends the request's session server-side, if any.
pub async fn end(
    app: &AppState,
    headers: &HeaderMap,
    mount: Mount,
) -> Result<(), crate::error::ApiError> {
    if let Some(token) = cookie(headers, mount.session_cookie()) {
        app.store()
            .delete_console_session(&token_hash(token))
            .await?;
    }
    Ok(())
}

/// A signed-in operator (stage `full`, not disabled), with the session's
/// CSRF token. Anything else is sent to the sign-in page.
pub struct SignedIn {
    pub actor: Actor,
    pub csrf: String,
    token: String,
}

impl SignedIn {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, app: &AppState, submitted: &str) -> Result<(), super::Failure> {
        if csrf_ok(app, "csrf", &self.token, submitted) {
            Ok(())
        } else {
            Err(super::Failure::Csrf)
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mount = parts
            .extensions
            .get::<Mount>()
            .copied()
            .unwrap_or(Mount::Shared);
        let to_sign_in = || Redirect::to(&super::url(mount, "/sign-in")).into_response();
        let found = current(app, &parts.headers, mount)
            .await
            .map_err(|e| super::Failure::Api(e).into_response())?;
        let Some((token, session)) = found else {
            return Err(to_sign_in());
        };
        if session.stage != "full" {
            return Err(to_sign_in());
        }
        let operator = app
            .store()
            .operator(&session.operator)
            .await
            .map_err(|e| super::Failure::Api(e.into()).into_response())?;
        let Some(operator) = operator.filter(|o| o.disabled_at.is_none()) else {
            return Err(to_sign_in());
        };
        let Some(role) = Role::parse(&operator.role) else {
            return Err(to_sign_in());
        };
        Ok(SignedIn {
            actor: Actor {
                name: operator.name,
                role,
            },
            csrf: csrf_token(app, "csrf", &token),
            token,
        })
    }
}
