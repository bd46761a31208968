//! The support console (docs/CONSOLE.md): server-rendered pages for the
//! bank's service team, on its own listener (`--console-listen`) or under
//! `/console` on the API's (`--console`); off unless configured.
//!
//! Handlers are thin: they read the form, check the session's CSRF token
//! and call the flow layer (`flows::support`, `flows::operators`), which
//! checks the operator's role and audits. Every answer carries a CSP
//! without any script, `frame-ancestors 'none'`, `no-store` and
//! `no-referrer`; a cross-site POST is refused before any handler runs.

mod pages;
pub mod session;

use std::net::IpAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::flows::operators::{self, Actor, PasswordOutcome};
use crate::flows::recovery::CallerCheck;
use crate::flows::support::{self, SearchBy};
use crate::secrets::Secret;
use crate::storage::AuditFilter;
use pages::{Chrome, Notice};
pub use session::Mount;

/// The console's path prefix on either listener.
pub const PREFIX: &str = "/console";

const CSS: &str = include_str!("console.css");

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A console path.
pub fn url(_mount: Mount, path: &str) -> String {
    if path == "/" {
        format!("{PREFIX}/")
    } else {
        format!("{PREFIX}{path}")
    }
}

/// Why a console request failed, shown as a page (never a stack trace).
pub enum Failure {
    Api(ApiError),
    Csrf,
    BadForm(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl Failure {
    fn status_and_text(&self) -> (StatusCode, String) {
        match self {
            Failure::Csrf => (
                StatusCode::FORBIDDEN,
                "This form expired or did not come from the console. Go back, reload the page \
                 and try again."
                    .into(),
            ),
            Failure::BadForm(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Failure::Api(e) => {
                let text = match e {
                    ApiError::InvalidRequest(m) => m.clone(),
                    ApiError::InvalidCredentials => "Wrong name, password or code.".into(),
                    ApiError::AccountLocked { retry_after_s } => format!(
                        "Too many failed attempts: stopped for another {} min.",
                        (retry_after_s + 59) / 60
                    ),
                    ApiError::RateLimited { retry_after_s } => {
                        format!("Too busy; try again in {retry_after_s} s.")
                    }
                    ApiError::Forbidden(m) => format!("Not allowed: {m}."),
                    ApiError::NotFound => "No such card holder, device or operator.".into(),
                    ApiError::PasswordRejected { reasons } => {
                        format!("Password rejected: {}", reasons.join(", "))
                    }
                    ApiError::Unavailable => "The database is unavailable; try again.".into(),
                    ApiError::MethodNotAllowed => "That page cannot be used this way.".into(),
                    ApiError::RequestTimeout => {
                        "The form did not arrive in time; try again.".into()
                    }
                    ApiError::PayloadTooLarge => "The form is too large.".into(),
                    _ => "Something went wrong; it was logged.".into(),
                };
                (e.status(), text)
            }
        }
    }
}

impl Failure {
    /// Seconds until a retry can succeed (423, 429).
    fn retry_after(&self) -> Option<i64> {
        match self {
            Failure::Api(
                ApiError::AccountLocked { retry_after_s } | ApiError::RateLimited { retry_after_s },
            ) => Some((*retry_after_s).max(1)),
            _ => None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after();
        let (status, text) = self.status_and_text();
        let body = html_page("Could not do that", &text);
        let mut res = (status, Html(body)).into_response();
        if let Some(s) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

fn html_page(title: &str, text: &str) -> String {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href=(format!("{PREFIX}/static/console.css")); }
        body { main { h1 { (title) } p.notice.warn { (text) } a href=(format!("{PREFIX}/")) { "Back to the console" } } } }
    }
    .into_string()
}

/// The console on its own listener: `/console/...`, and `/` sends there.
/// The same request layers as the API's router (`app::request_layers`:
/// run to completion, body cap, panic catcher, request ids, tracing); the
/// accept loop adds the body timeout.
pub fn router(state: AppState, mount: Mount) -> Router {
    let metrics = state.metrics().clone();
    let trusted = state.settings().trusted_proxies.clone();
    let router = Router::new()
        .nest_service(PREFIX, service(state, mount))
        .route("/", get(|| async { Redirect::to(&format!("{PREFIX}/")) }))
        .fallback(|| async { Failure::Api(ApiError::NotFound) })
        .method_not_allowed_fallback(|| async { Failure::Api(ApiError::MethodNotAllowed) })
        .layer(middleware::from_fn(guard));
    crate::app::request_layers(router, metrics, &trusted, internal_error_page)
}

fn internal_error_page() -> Response {
    Failure::Api(ApiError::Internal).into_response()
}

/// The console's routes (to be nested under `/console`) for `mount`.
pub fn service(state: AppState, mount: Mount) -> Router {
    Router::new()
        .route("/", get(search_page))
        .route("/static/console.css", get(css))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-in/code", get(code_page).post(code))
        .route("/sign-in/enrol", get(enrol_page).post(enrol))
        .route("/sign-in/enrol-code", post(enrolment_code))
        .route("/sign-out", post(sign_out))
        .route("/holders/{user_id}", get(holder_page))
        .route("/holders/{user_id}/unlock", post(unlock))
        .route("/holders/{user_id}/code-checks/lift", post(lift_code_stop))
        .route("/holders/{user_id}/verify", post(verify))
        .route("/holders/{user_id}/devices/remove", post(remove_device))
        .route(
            "/holders/{user_id}/sign-out-everywhere",
            post(sign_out_everywhere),
        )
        .route("/holders/{user_id}/profile", post(profile))
        .route("/markets", get(markets_page).post(set_market))
        .route("/audit", get(audit_page))
        .route("/operators", get(operators_page))
        .route("/operators/{action}", post(operator_action))
        .fallback(|| async { Failure::Api(ApiError::NotFound) })
        .method_not_allowed_fallback(|| async { Failure::Api(ApiError::MethodNotAllowed) })
        .layer(middleware::from_fn(guard))
        .layer(Extension(mount))
        .layer(DefaultBodyLimit::max(crate::app::MAX_BODY))
        .with_state(state)
}

/// Security headers on every answer; cross-site unsafe requests refused.
async fn guard(req: axum::extract::Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    let site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut res = if unsafe_method && site.as_deref().is_some_and(|s| s != "same-origin") {
        Failure::Csrf.into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

fn chrome<'a>(app: &'a AppState, mount: Mount, who: Option<&'a session::SignedIn>) -> Chrome<'a> {
    Chrome {
        mount,
        brand: &app.settings().brand_name,
        actor: who.map(|w| &w.actor),
        csrf: who.map_or("", |w| w.csrf.as_str()),
        now: app.now(),
    }
}

fn render(c: &Chrome<'_>, title: &str, notice: Option<&Notice>, body: maud::Markup) -> Response {
    Html(pages::layout(c, title, notice, body).into_string()).into_response()
}

/// A form, or a clear 400 page (never axum's plain-text rejection).
fn form<T>(f: Result<Form<T>, FormRejection>) -> Result<T, Failure> {
    match f {
        Ok(Form(v)) => Ok(v),
        // A body that stopped arriving (the accept loop's body timeout) or
        // was too large is not a malformed form.
        Err(e) if crate::extract::timed_out(&e) => Err(ApiError::RequestTimeout.into()),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::PayloadTooLarge.into())
        }
        Err(e) => Err(Failure::BadForm(format!(
            "The form was not understood: {}",
            e.body_text()
        ))),
    }
}

// ---- sign-in ----------------------------------------------------------

async fn sign_in_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    headers: HeaderMap,
) -> Response {
    sign_in_with(&app, mount, &headers, None, StatusCode::OK)
}

fn sign_in_with(
    app: &AppState,
    mount: Mount,
    headers: &HeaderMap,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let (nonce, fresh) = session::pre_session(headers, mount);
    let csrf = session::csrf_token(app, "pre", &nonce);
    let c = chrome(app, mount, None);
    let mut res = render(&c, "Sign in", notice.as_ref(), pages::sign_in(&csrf, mount));
    *res.status_mut() = status;
    if fresh {
        mount.set_pre(res.headers_mut(), &nonce);
    }
    res
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    name: String,
    password: Secret,
}

async fn sign_in(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, Failure> {
    // The card holders' per-IP limit (`--ip-rate-limit`): each attempt
    // costs an argon2id hash on the shared pool, a row and an audit line.
    app.rate.check(ip)?;
    let f = form(f)?;
    let nonce = session::pre_session_sent(&headers, mount).ok_or(Failure::Csrf)?;
    if !session::csrf_ok(&app, "pre", &nonce, &f.csrf) {
        return Err(Failure::Csrf);
    }
    // Whatever session the browser had ends here (no fixation).
    session::end(&app, &headers, mount).await?;
    let outcome = match operators::check_password(&app, &f.name, &f.password, ip).await {
        Ok(o) => o,
        Err(e @ (ApiError::InvalidCredentials | ApiError::AccountLocked { .. })) => {
            let (status, text) = Failure::Api(e).status_and_text();
            return Ok(sign_in_with(
                &app,
                mount,
                &headers,
                Some(Notice::Warn(text)),
                status,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let (operator, stage, next) = match outcome {
        PasswordOutcome::CodeNext(op) => (op, "totp", "/sign-in/code"),
        PasswordOutcome::EnrolmentCodeNext(op) => (op, "enrol-code", "/sign-in/enrol"),
    };
    let token = session::start(&app, &operator.name, stage, session::PENDING_S).await?;
    let mut res = Redirect::to(&url(mount, next)).into_response();
    mount.set_session(res.headers_mut(), &token, session::PENDING_S);
    Ok(res)
}

/// The pending session at `stage` (after the password), with its CSRF token.
async fn pending(
    app: &AppState,
    headers: &HeaderMap,
    mount: Mount,
    stage: &str,
) -> Result<Option<(String, crate::storage::ConsoleSession)>, Failure> {
    Ok(session::current(app, headers, mount)
        .await?
        .filter(|(_, s)| s.stage == stage))
}

async fn code_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let Some((token, _)) = pending(&app, &headers, mount, "totp").await? else {
        return Ok(Redirect::to(&url(mount, "/sign-in")).into_response());
    };
    let csrf = session::csrf_token(&app, "csrf", &token);
    let c = chrome(&app, mount, None);
    Ok(render(&c, "Second factor", None, pages::code(&csrf, mount)))
}

async fn enrol_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    if let Some((token, _)) = pending(&app, &headers, mount, "enrol-code").await? {
        let csrf = session::csrf_token(&app, "csrf", &token);
        let c = chrome(&app, mount, None);
        return Ok(render(
            &c,
            "Set up your second factor",
            None,
            pages::enrolment_code(&csrf, mount),
        ));
    }
    let Some((token, s)) = pending(&app, &headers, mount, "enrol").await? else {
        return Ok(Redirect::to(&url(mount, "/sign-in")).into_response());
    };
    let operator = app
        .store()
        .operator(&s.operator)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound)?;
    let (secret, uri) = operators::enrolment_secret(&app, &operator)?;
    let qr = pages::qr_data_uri(&uri).ok_or(ApiError::Internal)?;
    let csrf = session::csrf_token(&app, "csrf", &token);
    let c = chrome(&app, mount, None);
    Ok(render(
        &c,
        "Set up your second factor",
        None,
        pages::enrol(&csrf, mount, &secret, &qr),
    ))
}

#[derive(Deserialize)]
struct EnrolmentCodeForm {
    csrf: String,
    enrolment_code: Secret,
}

/// The one-time enrolment code (first sign-in, or after a reset of the
/// second factor); a right one moves to a new session at stage `enrol`,
/// whose page shows the authenticator key.
async fn enrolment_code(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<EnrolmentCodeForm>, FormRejection>,
) -> Result<Response, Failure> {
    app.rate.check(ip)?;
    let f = form(f)?;
    let Some((token, s)) = pending(&app, &headers, mount, "enrol-code").await? else {
        return Ok(Redirect::to(&url(mount, "/sign-in")).into_response());
    };
    if !session::csrf_ok(&app, "csrf", &token, &f.csrf) {
        return Err(Failure::Csrf);
    }
    match operators::check_enrolment_code(&app, &s.operator, &f.enrolment_code, ip).await {
        Ok(_) => {}
        Err(e @ (ApiError::InvalidCredentials | ApiError::AccountLocked { .. })) => {
            let (status, text) = Failure::Api(e).status_and_text();
            let c = chrome(&app, mount, None);
            let text = format!(
                "{text} An enrolment code is valid for 24 hours; an admin can issue a new one \
                 (reset second factor)."
            );
            let body = pages::enrolment_code(&session::csrf_token(&app, "csrf", &token), mount);
            let mut res = render(
                &c,
                "Set up your second factor",
                Some(&Notice::Warn(text)),
                body,
            );
            *res.status_mut() = status;
            return Ok(res);
        }
        Err(e) => return Err(e.into()),
    }
    session::end(&app, &headers, mount).await?;
    let token = session::start(&app, &s.operator, "enrol", session::PENDING_S).await?;
    let mut res = Redirect::to(&url(mount, "/sign-in/enrol")).into_response();
    mount.set_session(res.headers_mut(), &token, session::PENDING_S);
    Ok(res)
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: Secret,
}

async fn code(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, Failure> {
    finish_sign_in(app, mount, ip, headers, form(f)?, "totp").await
}

async fn enrol(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, Failure> {
    finish_sign_in(app, mount, ip, headers, form(f)?, "enrol").await
}

async fn finish_sign_in(
    app: AppState,
    mount: Mount,
    ip: IpAddr,
    headers: HeaderMap,
    f: CodeForm,
    stage: &str,
) -> Result<Response, Failure> {
    app.rate.check(ip)?;
    let Some((token, s)) = pending(&app, &headers, mount, stage).await? else {
        return Ok(Redirect::to(&url(mount, "/sign-in")).into_response());
    };
    if !session::csrf_ok(&app, "csrf", &token, &f.csrf) {
        return Err(Failure::Csrf);
    }
    match operators::check_code(&app, &s.operator, &f.code, stage == "enrol", ip).await {
        Ok(_) => {}
        Err(e @ (ApiError::InvalidCredentials | ApiError::InvalidRequest(_))) => {
            let (status, text) = Failure::Api(e).status_and_text();
            let csrf = session::csrf_token(&app, "csrf", &token);
            let c = chrome(&app, mount, None);
            let body = if stage == "enrol" {
                pages::message("Sign in again to see a new key.")
            } else {
                pages::code(&csrf, mount)
            };
            let mut res = render(&c, "Second factor", Some(&Notice::Warn(text)), body);
            *res.status_mut() = status;
            return Ok(res);
        }
        Err(e) => return Err(e.into()),
    }
    // The pending session ends; a new id is the signed-in one.
    session::end(&app, &headers, mount).await?;
    let token = session::start(&app, &s.operator, "full", session::SESSION_MAX_AGE_S).await?;
    let mut res = Redirect::to(&url(mount, "/")).into_response();
    mount.set_session(res.headers_mut(), &token, session::SESSION_MAX_AGE_S);
    Ok(res)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
    headers: HeaderMap,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    who.check_csrf(&app, &form(f)?.csrf)?;
    session::end(&app, &headers, mount).await?;
    app.audit_by(
        &who.actor.name,
        "operator_signed_out",
        None,
        None,
        None,
        None,
    )
    .await?;
    let mut res = Redirect::to(&url(mount, "/sign-in")).into_response();
    mount.clear_session(res.headers_mut());
    Ok(res)
}

// ---- card holders -----------------------------------------------------

#[derive(Deserialize)]
struct SearchQuery {
    by: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

async fn search_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| Failure::BadForm(e.body_text()))?;
    let by = match q.by.as_deref() {
        None => SearchBy::UserId,
        Some(s) => SearchBy::parse(s).ok_or_else(|| Failure::BadForm("unknown search".into()))?,
    };
    let text = q.q.unwrap_or_default();
    let c = chrome(&app, mount, Some(&who));
    let (page, notice) = if text.trim().is_empty() {
        (None, None)
    } else {
        match support::search(&app, &who.actor, by, &text, q.after.as_deref()).await {
            Ok(p) => (Some(p), None),
            Err(ApiError::InvalidRequest(m)) => (None, Some(Notice::Warn(m))),
            Err(e) => return Err(e.into()),
        }
    };
    Ok(render(
        &c,
        "Card holders",
        notice.as_ref(),
        pages::search(mount, by, &text, page.as_ref()),
    ))
}

async fn show_holder(
    app: &AppState,
    mount: Mount,
    who: &session::SignedIn,
    user_id: &str,
    notice: Option<Notice>,
) -> Result<Response, Failure> {
    let h = support::holder(app, &who.actor, user_id).await?;
    let c = chrome(app, mount, Some(who));
    let title = format!("{} ({})", h.user.name, h.user.user_id);
    Ok(render(&c, &title, notice.as_ref(), pages::holder(&c, &h)))
}

async fn holder_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
    Path(user_id): Path<String>,
) -> Result<Response, Failure> {
    show_holder(&app, mount, &who, &user_id, None).await
}

async fn unlock(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    who.check_csrf(&app, &form(f)?.csrf)?;
    support::unlock(&app, &who.actor, &user_id, ip).await?;
    let notice = Notice::Ok("Unlocked; the card holder was told by e-mail.".into());
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

async fn lift_code_stop(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    who.check_csrf(&app, &form(f)?.csrf)?;
    support::lift_code_stop(&app, &who.actor, &user_id, ip).await?;
    let notice = Notice::Ok(
        "Security-code checks allowed again; the card holder was told by e-mail.".into(),
    );
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

#[derive(Deserialize)]
struct VerifyForm {
    csrf: String,
    security_code: Secret,
}

async fn verify(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<VerifyForm>, FormRejection>,
) -> Result<Response, Failure> {
    let f = form(f)?;
    who.check_csrf(&app, &f.csrf)?;
    let notice = match support::verify_caller(&app, &who.actor, &user_id, &f.security_code, ip)
        .await
    {
        Ok(CallerCheck::Match) => Notice::Ok("Match: the security code is right.".into()),
        Ok(CallerCheck::NoMatch { left }) => Notice::Warn(format!(
            "No match. {left} more wrong codes today stop recovery and caller checks for a day."
        )),
        Ok(CallerCheck::NoMatchNowBlocked) => Notice::Warn(
            "No match. That was the last try: recovery and caller checks are stopped for a day."
                .into(),
        ),
        Err(e @ (ApiError::InvalidRequest(_) | ApiError::AccountLocked { .. })) => {
            Notice::Warn(Failure::Api(e).status_and_text().1)
        }
        Err(e) => return Err(e.into()),
    };
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf: String,
    device_id: String,
}

async fn remove_device(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<DeviceForm>, FormRejection>,
) -> Result<Response, Failure> {
    let f = form(f)?;
    who.check_csrf(&app, &f.csrf)?;
    let notice = if support::remove_device(&app, &who.actor, &user_id, &f.device_id, ip).await? {
        Notice::Ok("Device removed; the card holder was told by e-mail.".into())
    } else {
        Notice::Warn("That device was already removed (perhaps by someone else just now).".into())
    };
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

async fn sign_out_everywhere(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    who.check_csrf(&app, &form(f)?.csrf)?;
    let n = support::sign_out_everywhere(&app, &who.actor, &user_id, ip).await?;
    let notice = Notice::Ok(format!("Signed out everywhere ({n} sessions ended)."));
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

#[derive(Deserialize)]
struct ProfileForm {
    csrf: String,
    expected_name: String,
    expected_email: String,
    name: String,
    email: String,
}

async fn profile(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(user_id): Path<String>,
    f: Result<Form<ProfileForm>, FormRejection>,
) -> Result<Response, Failure> {
    let f = form(f)?;
    who.check_csrf(&app, &f.csrf)?;
    let notice = match support::correct_profile(
        &app,
        &who.actor,
        &user_id,
        &f.expected_name,
        &f.expected_email,
        &f.name,
        &f.email,
        ip,
    )
    .await
    {
        Ok(true) => Notice::Ok("Saved.".into()),
        Ok(false) => Notice::Warn(
            "Not saved: the name or e-mail changed since this page was shown. Check the new \
             values below."
                .into(),
        ),
        Err(ApiError::InvalidRequest(m)) => Notice::Warn(m),
        Err(e) => return Err(e.into()),
    };
    show_holder(&app, mount, &who, &user_id, Some(notice)).await
}

// ---- markets, audit, operators ----------------------------------------

async fn markets_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
) -> Result<Response, Failure> {
    markets_with(&app, mount, &who, None).await
}

async fn markets_with(
    app: &AppState,
    mount: Mount,
    who: &session::SignedIn,
    notice: Option<Notice>,
) -> Result<Response, Failure> {
    let list = support::markets(app, &who.actor).await?;
    let c = chrome(app, mount, Some(who));
    Ok(render(
        &c,
        "Markets",
        notice.as_ref(),
        pages::markets(&c, &list),
    ))
}

#[derive(Deserialize)]
struct MarketForm {
    csrf: String,
    /// `GB:off` from a row's button.
    switch: Option<String>,
    market: Option<String>,
    second_factor: Option<String>,
}

async fn set_market(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    f: Result<Form<MarketForm>, FormRejection>,
) -> Result<Response, Failure> {
    let f = form(f)?;
    who.check_csrf(&app, &f.csrf)?;
    let (market, setting) = match (&f.switch, &f.market, &f.second_factor) {
        (Some(s), _, _) => s
            .split_once(':')
            .map(|(m, s)| (m.to_owned(), s.to_owned()))
            .ok_or_else(|| Failure::BadForm("switch is MARKET:SETTING".into()))?,
        (None, Some(m), Some(s)) => (m.clone(), s.clone()),
        _ => {
            return Err(Failure::BadForm(
                "market and second_factor are needed".into(),
            ))
        }
    };
    let required = match setting.as_str() {
        "required" => true,
        "off" => false,
        _ => return Err(Failure::BadForm("second_factor is required or off".into())),
    };
    let n = support::set_market(&app, &who.actor, &market, required, ip).await?;
    let notice = Notice::Ok(format!(
        "{}: second factor {} for {n} card holders.",
        market.to_ascii_uppercase(),
        if required { "required" } else { "off" }
    ));
    markets_with(&app, mount, &who, Some(notice)).await
}

#[derive(Deserialize)]
struct AuditQuery {
    user_id: Option<String>,
    event: Option<String>,
    operator: Option<String>,
    operators_only: Option<String>,
    before: Option<i64>,
}

async fn audit_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| Failure::BadForm(e.body_text()))?;
    let filter = AuditFilter {
        user_id: q.user_id,
        event: q.event,
        actor: q.operator,
        operators_only: q.operators_only.is_some_and(|v| !v.is_empty()),
        before_id: q.before,
    };
    let page = support::audit(&app, &who.actor, filter.clone()).await?;
    let c = chrome(&app, mount, Some(&who));
    Ok(render(
        &c,
        "Audit trail",
        None,
        pages::audit(&c, &filter, &page),
    ))
}

async fn operators_page(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    who: session::SignedIn,
) -> Result<Response, Failure> {
    operators_with(&app, mount, &who, None).await
}

async fn operators_with(
    app: &AppState,
    mount: Mount,
    who: &session::SignedIn,
    notice: Option<Notice>,
) -> Result<Response, Failure> {
    let list = operators::list(app, &who.actor).await?;
    let c = chrome(app, mount, Some(who));
    Ok(render(
        &c,
        "Operators",
        notice.as_ref(),
        pages::operators(&c, &list),
    ))
}

#[derive(Deserialize)]
struct OperatorForm {
    csrf: String,
    name: String,
}

async fn operator_action(
    State(app): State<AppState>,
    Extension(mount): Extension<Mount>,
    ClientIp(ip): ClientIp,
    who: session::SignedIn,
    Path(action): Path<String>,
    f: Result<Form<OperatorForm>, FormRejection>,
) -> Result<Response, Failure> {
    let f = form(f)?;
    who.check_csrf(&app, &f.csrf)?;
    let actor: &Actor = &who.actor;
    let done = match action.as_str() {
        "disable" => {
            operators::set_disabled(&app, actor, &f.name, true, ip).await?;
            "disabled; their sessions ended".to_owned()
        }
        "enable" => {
            operators::set_disabled(&app, actor, &f.name, false, ip).await?;
            "enabled".to_owned()
        }
        "reset-totp" => {
            let code = operators::reset_totp(&app, actor, &f.name, ip).await?;
            // Shown once, in the answer to this POST only (no-store).
            format!(
                "their sessions ended; they enrol a new second factor at next sign-in with \
                 their password and the enrolment code {} (shown only now, valid 24 hours)",
                code.expose()
            )
        }
        _ => return Err(ApiError::NotFound.into()),
    };
    let notice = Notice::Ok(format!("{}: {done}.", f.name));
    operators_with(&app, mount, &who, Some(notice)).await
}
