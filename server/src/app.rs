//! The application: settings, shared state, the router and the serve loop.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api;
use crate::api::types::{Session, UserVerification};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::notify::{Channel, Message, Notifier, Purpose};
use crate::ratelimit::IpRateLimit;
use crate::risk::RiskPolicy;
use crate::secrets::{new_id, new_token, token_hash, Hasher, OtpKey};
use crate::storage::{AuditEvent, SessionRecord, Store, TokenPair, User};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// Policy settings; every default is the contract's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The relying-party id proofs must name in `aud`.
    pub rp_id: String,
    /// Bearer token of the administration API; `None` disables it.
    pub admin_token: Option<String>,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    /// How long a `login_id` lives between steps.
    pub login_ttl_s: i64,
    pub otp_ttl_s: i64,
    pub otp_max_tries: i64,
    pub otp_resend_after_s: i64,
    pub otp_max_sends: i64,
    pub challenge_ttl_s: i64,
    pub registration_ttl_s: i64,
    pub trust_period_s: i64,
    pub lockout_threshold: i64,
    pub lockout_duration_s: i64,
    pub max_devices: i64,
    /// How recent a strong sign-in must be to register a device.
    pub strong_auth_window_s: i64,
    pub ip_rate_limit_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rp_id: "http://127.0.0.1:8080".into(),
            admin_token: None,
            access_ttl_s: 15 * 60,
            refresh_ttl_s: 30 * 24 * 3600,
            login_ttl_s: 10 * 60,
            otp_ttl_s: 5 * 60,
            otp_max_tries: 5,
            otp_resend_after_s: 30,
            otp_max_sends: 5,
            challenge_ttl_s: 2 * 60,
            registration_ttl_s: 5 * 60,
            trust_period_s: 90 * 24 * 3600,
            lockout_threshold: 5,
            lockout_duration_s: 30 * 60,
            max_devices: 10,
            strong_auth_window_s: 10 * 60,
            ip_rate_limit_per_minute: 60,
        }
    }
}

/// Tokens in the clear, between minting and the answer that carries them.
pub(crate) struct MintedTokens {
    access: String,
    refresh: String,
}

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

/// Shared state behind `AppState`.
pub struct Inner {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) risk: Arc<dyn RiskPolicy>,
    pub(crate) hasher: Hasher,
    pub(crate) otp_key: OtpKey,
    pub(crate) rate: IpRateLimit,
    /// SHA-256 of the admin token, compared in constant time.
    pub(crate) admin_token_hash: Option<Vec<u8>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The pieces an application is made of; tests swap the clock, the notifier
/// or the risk policy.
pub struct Components {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub notifier: Arc<dyn Notifier>,
    pub risk: Arc<dyn RiskPolicy>,
    pub hasher: Hasher,
    /// HMAC key for OTPs; `None` loads (or creates and persists) the stored one.
    pub otp_secret: Option<Vec<u8>>,
}

impl AppState {
    pub async fn new(c: Components) -> Result<Self, crate::storage::StorageError> {
        let otp_key = match c.otp_secret {
            Some(bytes) => bytes,
            None => c.store.otp_key(OtpKey::generate_bytes()).await?,
        };
        let admin_token_hash = c.settings.admin_token.as_deref().map(token_hash);
        let rate = IpRateLimit::new(c.settings.ip_rate_limit_per_minute);
        Ok(AppState(Arc::new(Inner {
            settings: c.settings,
            store: c.store,
            clock: c.clock,
            notifier: c.notifier,
            risk: c.risk,
            hasher: c.hasher,
            otp_key: OtpKey::from_bytes(&otp_key),
            rate,
            admin_token_hash,
        })))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Opens a session: a new refresh-token family with its first tokens.
    pub(crate) async fn issue_session(
        &self,
        user_id: &str,
        device_id: Option<String>,
        amr: Vec<String>,
        auth_time: i64,
    ) -> Result<Session, ApiError> {
        let now = self.now();
        let record = SessionRecord {
            session_id: new_id(),
            user_id: user_id.to_owned(),
            device_id,
            amr,
            auth_time,
            created_at: now,
        };
        let (minted, tokens) = self.mint_tokens(now);
        let session = self.session(minted, &record);
        self.store.create_session(record, tokens).await?;
        Ok(session)
    }

    /// A new access and refresh token; only their hashes are ever stored.
    pub(crate) fn mint_tokens(&self, now: i64) -> (MintedTokens, TokenPair) {
        let s = &self.settings;
        let minted = MintedTokens {
            access: new_token("dta_"),
            refresh: new_token("dtr_"),
        };
        let tokens = TokenPair {
            access_hash: token_hash(&minted.access),
            access_expires_at: now + s.access_ttl_s,
            refresh_hash: token_hash(&minted.refresh),
            refresh_expires_at: now + s.refresh_ttl_s,
        };
        (minted, tokens)
    }

    /// The `Session` a client receives for `record` with freshly minted tokens.
    pub(crate) fn session(&self, minted: MintedTokens, record: &SessionRecord) -> Session {
        let s = &self.settings;
        Session {
            access_token: minted.access,
            token_type: "Bearer",
            expires_in: s.access_ttl_s,
            refresh_token: minted.refresh,
            refresh_expires_in: s.refresh_ttl_s,
            user_id: record.user_id.clone(),
            amr: record.amr.clone(),
            auth_time: record.auth_time,
        }
    }

    /// Records a security event in the audit table and the log.
    pub(crate) async fn audit(
        &self,
        event: &str,
        user_id: Option<&str>,
        device_id: Option<&str>,
        ip: Option<IpAddr>,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        tracing::info!(
            event,
            user_id = user_id.unwrap_or("-"),
            device_id = device_id.unwrap_or("-"),
            ip = %ip.map(|i| i.to_string()).unwrap_or_default(),
            reason = reason.unwrap_or("-"),
            "security event"
        );
        self.store
            .audit(AuditEvent {
                at: self.now(),
                event: event.to_owned(),
                user_id: user_id.map(str::to_owned),
                device_id: device_id.map(str::to_owned),
                ip: ip.map(|i| i.to_string()),
                reason: reason.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    /// Sends a security alert by e-mail. A failed alert is logged, not fatal:
    /// the event it reports has already happened.
    pub(crate) async fn alert(&self, user: &User, text: String) {
        let message = Message {
            channel: Channel::Email,
            to: user.email.clone(),
            user_id: user.user_id.clone(),
            purpose: Purpose::Alert,
            code: None,
            text,
            sent_at: self.now(),
        };
        if let Err(e) = self.notifier.send(message).await {
            tracing::warn!(error = %e, user_id = %user.user_id, "security alert not delivered");
        }
    }

    /// A failed password or OTP: the attempt stays counted; the one that
    /// reaches the threshold locks the key and still answers `err`.
    pub(crate) async fn fail(
        &self,
        key: &str,
        count: i64,
        user: Option<&User>,
        ip: IpAddr,
        reason: &str,
        err: ApiError,
    ) -> ApiError {
        let s = &self.settings;
        let user_id = user.map(|u| u.user_id.as_str()).unwrap_or(key);
        let mut outcome = self
            .audit("signin_failed", Some(user_id), None, Some(ip), Some(reason))
            .await;
        if count >= s.lockout_threshold && outcome.is_ok() {
            let until = self.now() + s.lockout_duration_s;
            outcome = match self.store.lock(key, until).await {
                Ok(()) => {
                    self.audit(
                        "account_locked",
                        Some(user_id),
                        None,
                        Some(ip),
                        Some(reason),
                    )
                    .await
                }
                Err(e) => Err(e.into()),
            };
            if let Some(user) = user {
                self.alert(
                    user,
                    format!(
                        "Your devicetrust sign-in was locked for {} minutes after {} failed attempts. \
                         If this was not you, call the number on your card.",
                        s.lockout_duration_s / 60,
                        count
                    ),
                )
                .await;
            }
        }
        match outcome {
            Ok(()) => err,
            Err(e) => e,
        }
    }
}

/// The `amr` of a sign-in with a device key.
pub(crate) fn device_amr(user_verification: &str) -> Vec<String> {
    let bio = crate::api::types::wire_name(&UserVerification::Biometric);
    if user_verification == bio {
        vec!["hwk".into(), "bio".into()]
    } else {
        vec!["hwk".into()]
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devicetrust",
        description = "Password + OTP enrolment, trusted-device registration and biometric sign-in for card holders. Errors: HTTP status + {\"error\": {\"code\", \"message\", ...}}.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecurityAddon),
    tags(
        (name = "login", description = "Password, enrolment, OTP and device sign-in"),
        (name = "session", description = "Refresh, sign-out, profile"),
        (name = "devices", description = "Trusted devices"),
        (name = "admin", description = "Administration, with the server's admin token"),
        (name = "operations", description = "Health and description")
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and the OpenAPI document, built from the same handler list so
/// they cannot drift apart.
pub fn router_and_openapi() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::login::password))
        .routes(routes!(api::login::enrol))
        .routes(routes!(api::login::otp_send))
        .routes(routes!(api::login::otp_verify))
        .routes(routes!(api::login::device_challenge))
        .routes(routes!(api::login::device_login))
        .routes(routes!(api::session::refresh))
        .routes(routes!(api::session::logout))
        .routes(routes!(api::session::me))
        .routes(routes!(api::devices::start_registration))
        .routes(routes!(api::devices::register, api::devices::list))
        .routes(routes!(api::devices::remove))
        .routes(routes!(api::admin::create_user))
        .routes(routes!(api::admin::unlock_user))
        .routes(routes!(api::admin::set_market))
        .routes(routes!(api::health::healthz))
        .routes(routes!(api::health::openapi));
    router.split_for_parts()
}

/// The OpenAPI document the server serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router_and_openapi().1
}

/// The complete service: routes, JSON fallbacks, limits and tracing.
pub fn router(state: AppState) -> Router {
    let (router, doc) = router_and_openapi();
    let doc = api::health::OpenApiJson(doc.to_json().unwrap_or_else(|_| String::from("{}")).into());
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            ApiError::Internal.into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // Method, path and request id only: bodies and headers carry secrets.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id
                    )
                })
                .on_response(
                    |res: &Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(status = res.status().as_u16(), ?latency, "response");
                    },
                ),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let app = router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    housekeeping.abort();
    result
}

/// Purges what expired, once a minute.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match state.store.purge_expired(state.now()).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        state.rate.housekeep();
    }
}
