//! The application: settings, shared state, the router and the serve loop.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Response};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::Router;
use ring::hmac;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api;
use crate::api::types::{Session, UserVerification};
use crate::attestation::Policy;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::http_server::{self, ConnectionLimits};
use crate::notify::{AlertQueue, AlertTask, Channel, Message, Notifier, Purpose};
use crate::ratelimit::IpRateLimit;
use crate::risk::RiskPolicy;
use crate::secrets::{new_id, new_token, token_hash, Hasher, OtpKey};
use crate::server_key::{self, ServerKey};
use crate::storage::{AuditEvent, Retention, SessionRecord, Store, TokenPair, User};

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
    /// OTP sends per user, and per destination, in any hour, across logins.
    pub otp_sends_per_hour: i64,
    /// A failure count that has not moved for this long is forgotten.
    pub attempt_memory_s: i64,
    /// A session ends this long after its sign-in, whatever its refreshes.
    pub session_max_age_s: i64,
    /// Audit lines older than this are deleted.
    pub audit_retention_s: i64,
    /// Connection cap and timeouts of the accept loop.
    pub connections: ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` is believed (`--trust-proxy`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The name users know the service by (`--brand-name`).
    pub brand_name: String,
    /// What a new password must be (`GET /v1/password-policy`).
    pub password_policy: crate::password_policy::PasswordPolicy,
    /// Key attestation: policy, roots, status list, expected app.
    pub attestation: Arc<crate::attestation::Config>,
    /// The support console under `/console` on the API's listener
    /// (`--console`); `--console-listen` serves it on its own instead.
    pub console_shared: bool,
    /// `GET /metrics` on the API listener, behind the admin token; off when
    /// metrics have a listener of their own (`--metrics-listen`).
    pub metrics_on_api: bool,
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
            otp_sends_per_hour: 10,
            attempt_memory_s: 24 * 3600,
            session_max_age_s: 12 * 3600,
            audit_retention_s: 400 * 24 * 3600,
            connections: ConnectionLimits::default(),
            trusted_proxies: Vec::new(),
            brand_name: "devicetrust".into(),
            password_policy: crate::password_policy::PasswordPolicy::default(),
            attestation: Arc::new(crate::attestation::Config::with_builtin_roots(
                crate::attestation::Policy::Verify,
            )),
            console_shared: false,
            metrics_on_api: true,
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
    /// Hides OTP destinations in the send log.
    pub(crate) destination_key: hmac::Key,
    /// Peppers security codes: a database copy alone cannot be searched.
    pub(crate) security_code_key: hmac::Key,
    /// Keyed hashes of card numbers and card IDs.
    pub(crate) card_key: hmac::Key,
    pub(crate) rate: IpRateLimit,
    /// Alerts go out off the request path, with retries.
    pub(crate) alerts: AlertQueue,
    /// Places for user-ID reminders worked on off the request path.
    pub(crate) reminders: Arc<tokio::sync::Semaphore>,
    alert_task: std::sync::Mutex<Option<AlertTask>>,
    /// SHA-256 of the admin token, compared in constant time.
    pub(crate) admin_token_hash: Option<Vec<u8>>,
    /// Seals operators' TOTP secrets at rest (AES-256-GCM).
    pub(crate) totp_key: ring::aead::LessSafeKey,
    /// Keys the support console's CSRF tokens.
    pub(crate) console_key: hmac::Key,
    /// Keys of device sign-in challenge tokens.
    pub(crate) challenge_keys: crate::challenge_token::ChallengeKeys,
    /// Prometheus metrics (docs/OPERATIONS.md).
    pub(crate) metrics: Arc<crate::ops::metrics::Metrics>,
    /// `/readyz`'s last answer, shared by the probes of the next second.
    pub(crate) readiness: crate::ops::health::ReadinessCache,
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
    /// The server key, kept outside the database (see `server_key`).
    pub server_key: ServerKey,
}

impl AppState {
    pub async fn new(c: Components) -> Result<Self, crate::storage::StorageError> {
        let metrics = Arc::new(crate::ops::metrics::Metrics::new());
        // Every storage call the handlers make is timed (the risk policy
        // holds the store it was given, unwrapped).
        let store = crate::ops::metered_store::MeteredStore::wrap(c.store, metrics.clone());
        c.hasher.report_waits(metrics.hash_wait());
        let c = Components { store, ..c };
        // One key per database: an instance with another key would refuse
        // every code and security code the others made.
        let check = c.server_key.derive(server_key::Purpose::KeyCheck);
        if !c.store.server_key_check(&check).await? {
            return Err(crate::storage::StorageError::KeyMismatch);
        }
        if c.store.take_legacy_secret().await?.is_some() {
            tracing::warn!(
                "removed the OTP key that schema v1 kept in the database; the server key now \
                 lives outside it (codes sent before this upgrade no longer verify)"
            );
        }
        let admin_token_hash = c.settings.admin_token.as_deref().map(token_hash);
        let (alerts, worker) = AlertQueue::new(c.notifier.clone());
        let alert_task = std::sync::Mutex::new(Some(worker.spawn()));
        let rate = IpRateLimit::new(c.settings.ip_rate_limit_per_minute);
        Ok(AppState(Arc::new(Inner {
            settings: c.settings,
            store: c.store,
            clock: c.clock,
            notifier: c.notifier,
            risk: c.risk,
            hasher: c.hasher,
            otp_key: OtpKey::from_bytes(&c.server_key.derive(server_key::Purpose::OtpMac)),
            destination_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &c.server_key.derive(server_key::Purpose::Destination),
            ),
            security_code_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &c.server_key.derive(server_key::Purpose::SecurityCode),
            ),
            card_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &c.server_key.derive(server_key::Purpose::Card),
            ),
            rate,
            alerts,
            alert_task,
            reminders: Arc::new(tokio::sync::Semaphore::new(
                crate::flows::recovery::REMINDERS_AT_ONCE,
            )),
            admin_token_hash,
            totp_key: crate::flows::operators::totp_key(
                &c.server_key.derive(server_key::Purpose::OperatorTotp),
            ),
            console_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &c.server_key.derive(server_key::Purpose::ConsoleCsrf),
            ),
            challenge_keys: crate::challenge_token::ChallengeKeys::new(
                &c.server_key.derive(server_key::Purpose::ChallengeMac),
                &c.server_key.derive(server_key::Purpose::ChallengeNonce),
            ),
            metrics,
            readiness: Default::default(),
        })))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn hasher(&self) -> &Hasher {
        &self.0.hasher
    }

    /// The server's metrics (for the metrics listener and tests).
    pub fn metrics(&self) -> &Arc<crate::ops::metrics::Metrics> {
        &self.0.metrics
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
        let (record, minted, tokens) = self.new_session(user_id, device_id, amr, auth_time);
        let session = self.session(minted, &record);
        self.store.create_session(record, tokens).await?;
        Ok(session)
    }

    /// A session record and its first tokens, not yet stored.
    pub(crate) fn new_session(
        &self,
        user_id: &str,
        device_id: Option<String>,
        amr: Vec<String>,
        auth_time: i64,
    ) -> (SessionRecord, MintedTokens, TokenPair) {
        let now = self.now();
        let record = SessionRecord {
            session_id: crate::secrets::new_time_ordered_id(),
            user_id: user_id.to_owned(),
            device_id,
            amr,
            auth_time,
            created_at: now,
            expires_at: now + self.settings.session_max_age_s,
        };
        let (minted, tokens) = self.mint_tokens(now);
        (record, minted, tokens)
    }

    /// Keyed hash of an OTP destination, for the per-destination send cap.
    pub(crate) fn destination_hash(&self, destination: &str) -> Vec<u8> {
        hmac::sign(&self.destination_key, destination.as_bytes())
            .as_ref()
            .to_vec()
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

    /// The `Session` a client receives for `record` with freshly minted
    /// tokens; no token outlives the session's absolute end.
    pub(crate) fn session(&self, minted: MintedTokens, record: &SessionRecord) -> Session {
        let s = &self.settings;
        let left = (record.expires_at - self.now()).max(0);
        Session {
            access_token: minted.access,
            token_type: "Bearer",
            expires_in: s.access_ttl_s.min(left),
            refresh_token: minted.refresh,
            refresh_expires_in: s.refresh_ttl_s.min(left),
            user_id: record.user_id.clone(),
            amr: record.amr.clone(),
            auth_time: record.auth_time,
        }
    }

    /// Records what a service-team operator did, with the operator's name.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit_by(
        &self,
        actor: &str,
        event: &str,
        user_id: Option<&str>,
        device_id: Option<&str>,
        ip: Option<IpAddr>,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        tracing::info!(
            event,
            actor,
            user_id = user_id.unwrap_or("-"),
            device_id = device_id.unwrap_or("-"),
            reason = reason.unwrap_or("-"),
            "operator action"
        );
        self.record_event(Some(actor), event, user_id, device_id, ip, reason)
            .await
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
        let ip_text = ip.map(|i| i.to_string());
        log_security_event(event, user_id, device_id, ip_text.as_deref(), reason);
        self.record_event(None, event, user_id, device_id, ip, reason)
            .await
    }

    /// The log line and metrics of a security event whose audit row the
    /// caller wrote in its own transaction (a device sign-in), once that
    /// transaction committed.
    pub(crate) fn announce_event(&self, e: &AuditEvent) {
        log_security_event(
            &e.event,
            e.user_id.as_deref(),
            e.device_id.as_deref(),
            e.ip.as_deref(),
            e.reason.as_deref(),
        );
        self.metrics.observe_event(&e.event, e.reason.as_deref());
    }

    /// The audit row and the metrics of an event, whoever caused it: one
    /// path, so an operator's actions are counted like the holder's own.
    async fn record_event(
        &self,
        actor: Option<&str>,
        event: &str,
        user_id: Option<&str>,
        device_id: Option<&str>,
        ip: Option<IpAddr>,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        self.metrics.observe_event(event, reason);
        self.store
            .audit(AuditEvent {
                at: self.now(),
                event: event.to_owned(),
                user_id: user_id.map(str::to_owned),
                device_id: device_id.map(str::to_owned),
                ip: ip.map(|i| i.to_string()),
                reason: reason.map(str::to_owned),
                actor: actor.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    /// Sends a security alert for `event` to the user's e-mail. A failed
    /// alert is logged, never fatal: the event it reports has happened.
    pub(crate) async fn alert(&self, user: &User, event: &str, detail: String) {
        self.alert_to(&user.user_id, event, Channel::Email, &user.email, &detail)
            .await;
    }

    /// Sends a security alert to one address (an old e-mail, a mobile).
    pub(crate) async fn alert_to(
        &self,
        user_id: &str,
        event: &str,
        channel: Channel,
        to: &str,
        detail: &str,
    ) {
        let text = crate::messages::alert(&self.settings.brand_name, event, detail);
        let message = Message {
            channel,
            to: to.to_owned(),
            user_id: user_id.to_owned(),
            purpose: Purpose::Alert,
            code: None,
            event: Some(event.to_owned()),
            subject: text.subject,
            text: text.body,
            sent_at: self.now(),
            message_id: new_id(),
        };
        // Never fails the request: queued, retried for about a minute.
        self.alerts.enqueue(message);
    }

    /// Alerts queued or being delivered (tests wait for them to settle).
    pub fn pending_alerts(&self) -> usize {
        self.alerts.pending()
    }

    /// At shutdown: delivers what is queued for at most `grace`.
    pub async fn finish_alerts(&self, grace: Duration) {
        let task = self
            .alert_task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            task.finish(grace).await;
        }
    }
}

/// What a device key proves (RFC 8176): `hwk` for a key the server
/// believes is in hardware — attested, or (under `off` and `verify`) claimed
/// without an attestation — else `swk`, which is not a strong sign-in.
pub(crate) fn key_method(device: &crate::storage::Device, policy: Policy) -> &'static str {
    let software = crate::api::types::wire_name(&crate::api::types::KeyStorage::Software);
    let hardware = device.attestation.is_some()
        || (policy != Policy::Require && device.key_storage != software);
    if hardware {
        "hwk"
    } else {
        "swk"
    }
}

/// The `amr` of a sign-in with a device key.
pub(crate) fn device_amr(device: &crate::storage::Device, policy: Policy) -> Vec<String> {
    let bio = crate::api::types::wire_name(&UserVerification::Biometric);
    let key = key_method(device, policy).to_owned();
    if device.user_verification == bio {
        vec![key, "bio".into()]
    } else {
        vec![key]
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
        (name = "account", description = "Online enrolment from a card, account changes, cards, security events, password policy"),
        (name = "recovery", description = "Recovery with the security code"),
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
        .routes(routes!(api::password_policy::policy))
        .routes(routes!(api::accounts::create_card))
        .routes(routes!(api::accounts::activate_card))
        .routes(routes!(api::accounts::create_account))
        .routes(routes!(api::accounts::list_cards, api::accounts::link_card))
        .routes(routes!(api::recovery::user_id))
        .routes(routes!(api::recovery::password))
        .routes(routes!(api::recovery::complete))
        .routes(routes!(api::account::change_password))
        .routes(routes!(api::account::change_contact))
        .routes(routes!(api::account::verify_contact))
        .routes(routes!(api::account::remove_mobile))
        .routes(routes!(api::account::change_security_code))
        .routes(routes!(api::account::list_events))
        .routes(routes!(api::health::healthz))
        .routes(routes!(crate::ops::health::readyz))
        .routes(routes!(api::health::openapi));
    let (router, mut doc) = router.split_for_parts();
    utoipa::Modify::modify(&CommonResponses, &mut doc);
    (router, doc)
}

/// What the layers around every handler add to its documented answers:
/// `x-request-id` on every response, `Retry-After` with 423 and 429, 500
/// `internal` anywhere, and on operations that read a body (POST, PUT) 408
/// `request_timeout` and 413 `payload_too_large`.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
        let request_id = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "The request's id: the client's own x-request-id, else a generated UUID",
            ))
            .build();
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some(
                "Seconds until a retry can succeed; the same as retry_after_s",
            ))
            .build();
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, false),
                (&mut item.options, false),
                (&mut item.head, false),
                (&mut item.patch, true),
                (&mut item.trace, false),
            ];
            for (operation, reads_body) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let responses = &mut operation.responses.responses;
                if reads_body {
                    responses.entry("408".into()).or_insert_with(|| {
                        error("request_timeout: the body did not arrive in time")
                    });
                    responses
                        .entry("413".into())
                        .or_insert_with(|| error("payload_too_large: the body exceeds 16 KiB"));
                }
                responses
                    .entry("500".into())
                    .or_insert_with(|| error("internal: an unexpected server fault"));
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response
                        .headers
                        .insert("x-request-id".into(), request_id.clone());
                    if status == "423" || status == "429" {
                        response
                            .headers
                            .insert("Retry-After".into(), retry_after.clone());
                    }
                }
            }
        }
    }
}

/// The OpenAPI document the server serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router_and_openapi().1
}

/// The complete service: routes, JSON fallbacks, limits and tracing.
pub fn router(state: AppState) -> Router {
    let (router, doc) = router_and_openapi();
    let router = if state.settings.console_shared {
        router.nest_service(
            crate::console::PREFIX,
            crate::console::service(state.clone(), crate::console::Mount::Shared),
        )
    } else {
        router
    };
    let doc = api::health::OpenApiJson(doc.to_json().unwrap_or_else(|_| String::from("{}")).into());
    let router = if state.settings.metrics_on_api {
        router.route(
            "/metrics",
            axum::routing::get(crate::ops::health::metrics_with_token),
        )
    } else {
        router
    };
    let router = router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::Extension(doc));
    let metrics = state.metrics.clone();
    let trusted = state.settings().trusted_proxies.clone();
    request_layers(router.with_state(state), metrics, &trusted, internal_error)
}

fn internal_error() -> AxumResponse {
    ApiError::Internal.into_response()
}

/// The layers around every request of every listener's router: the API's
/// (`router`) and the console's own (`console::router`), so neither can
/// forget one. Innermost first:
///
/// - run to completion: the handler runs in a task of its own, whatever the
///   client does (a counted attempt always reaches its audit line);
/// - the 16 KiB body cap;
/// - a panic becomes `internal` (500), answered by `internal`;
/// - metrics, the exported span (`ops::trace`), request ids and a log span
///   with method, path and id only.
///
/// The body timeout (408 after `body_timeout`) is the accept loop's
/// (`http_server::run_with_tls`), with the listener's limits, so it covers
/// whatever router is served. Method-not-allowed and not-found answers are
/// each router's own (JSON for the API, a page for the console).
pub fn request_layers(
    router: Router,
    metrics: Arc<crate::ops::metrics::Metrics>,
    trusted_proxies: &[ipnet::IpNet],
    internal: fn() -> AxumResponse,
) -> Router {
    let router = router.layer(middleware::from_fn_with_state(internal, run_to_completion));
    // The exported span, when export is on (`--otlp-endpoint`, installed
    // before any router is built); a trusted proxy's `traceparent` is its
    // parent. Off, the layer is not there at all: nothing to pay per request.
    let router = if crate::ops::trace::enabled() {
        router.layer(middleware::from_fn_with_state(
            Arc::<[ipnet::IpNet]>::from(trusted_proxies),
            crate::ops::trace::server_span,
        ))
    } else {
        router
    };
    router
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CatchPanicLayer::custom(move |_| internal()))
        // Inside the router, where the matched route template is known.
        .layer(middleware::from_fn_with_state(
            metrics,
            crate::ops::metrics::track,
        ))
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
        .layer(middleware::from_fn(drop_unsafe_request_id))
}

/// Each request runs in a task of its own, to completion, even when its
/// client disconnects and hyper drops the connection's future: a counted
/// attempt always reaches its failure handler and its audit line, and a
/// consumed challenge always gets its session or its error recorded.
async fn run_to_completion(
    axum::extract::State(internal): axum::extract::State<fn() -> AxumResponse>,
    req: axum::extract::Request,
    next: Next,
) -> AxumResponse {
    let task = tokio::spawn(next.run(req).instrument(tracing::Span::current()));
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            internal()
        }
    }
}

/// A client's `x-request-id` is echoed and logged only when it is a plain
/// token (1–64 of `A-Z a-z 0-9 . _ : -`); anything else (newlines, ANSI
/// escapes, quotes: log forging) is replaced by a generated one.
async fn drop_unsafe_request_id(mut req: axum::extract::Request, next: Next) -> AxumResponse {
    let safe = req
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 64
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
        })
        .collect::<Vec<_>>();
    if safe.len() != 1 || !safe[0] {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(state, listener, None, shutdown).await
}

/// `serve`, over TLS when `tls` is given (`--tls-cert`, docs/OPERATIONS.md).
pub async fn serve_with_tls(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let limits = state.settings.connections;
    let app = router(state);
    let result = http_server::run_with_tls(app, listener, limits, tls, shutdown).await;
    housekeeping.abort();
    result
}

/// Purges what expired, once a minute.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let s = &state.settings;
        let retention = Retention {
            audit_s: s.audit_retention_s,
            attempts_s: s.attempt_memory_s,
            send_window_s: 3600,
        };
        match state.store.purge_expired(state.now(), retention).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        state.rate.housekeep();
    }
}

/// The log line of a holder's security event: one format whether its audit
/// row is written by `audit` or inside a sign-in's own transaction.
fn log_security_event(
    event: &str,
    user_id: Option<&str>,
    device_id: Option<&str>,
    ip: Option<&str>,
    reason: Option<&str>,
) {
    tracing::info!(
        event,
        user_id = user_id.unwrap_or("-"),
        device_id = device_id.unwrap_or("-"),
        ip = %ip.unwrap_or_default(),
        reason = reason.unwrap_or("-"),
        "security event"
    );
}
