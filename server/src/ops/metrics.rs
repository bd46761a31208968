//! Prometheus metrics (docs/OPERATIONS.md, "Metrics").
//!
//! One `prometheus_client` registry per application state rather than the
//! `metrics` crate's process-wide recorder: two servers in one process (the
//! end-to-end tests run dozens) each count their own traffic, and nothing
//! has to be installed before the state exists.
//!
//! Every label value is taken from a closed set written in this file (or
//! the router's own route templates), never from a request: no user id,
//! e-mail, device id, address or free text can become a label, and the
//! number of series stays bounded whatever clients send.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The label of a request no route matched: 404s for any path collapse into
/// one series.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OtpLabels {
    channel: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttestationLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    op: &'static str,
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.5 ms to about 16 s (doubling): device sign-ins
/// take a few milliseconds, password hashing tens to hundreds.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

/// Storage calls are mostly sub-millisecond: 50 µs to about 1.6 s.
fn storage_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 16,
    ))
}

/// Every metric the server exports, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    sign_ins: Family<SignInLabels, Counter>,
    locks: Family<KindLabels, Counter>,
    otp_sends: Family<OtpLabels, Counter>,
    step_ups: Family<SignalLabels, Counter>,
    attestations: Family<AttestationLabels, Counter>,
    security_events: Family<EventLabels, Counter>,
    hash_queue_depth: Gauge,
    hash_wait: Histogram,
    storage_duration: HistogramFamily<StorageLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("devicetrust");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status code",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by method and route template",
            Unit::Seconds,
            request_duration.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Sign-in steps by method (password, otp, device, card, security_code, recovery) \
             and result (success, failure, step_up)",
            sign_ins.clone(),
        );
        let locks = Family::<KindLabels, Counter>::default();
        registry.register(
            "locks",
            "Locks imposed after repeated failures, by kind (account_locked, card_locked, …)",
            locks.clone(),
        );
        let otp_sends = Family::<OtpLabels, Counter>::default();
        registry.register(
            "otp_sends",
            "One-time codes by channel (email, sms) and delivery result (sent, failed, capped)",
            otp_sends.clone(),
        );
        let step_ups = Family::<SignalLabels, Counter>::default();
        registry.register(
            "step_ups",
            "Sign-ins the risk policy stepped up, once per signal present",
            step_ups.clone(),
        );
        let attestations = Family::<AttestationLabels, Counter>::default();
        registry.register(
            "attestations",
            "Key attestations checked at device registration, by result and reason",
            attestations.clone(),
        );
        let security_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "security_events",
            "Audit-trail events, by event name",
            security_events.clone(),
        );
        let hash_queue_depth = Gauge::default();
        registry.register(
            "argon2_queue_depth",
            "Password hashes waiting for or holding a hashing slot",
            hash_queue_depth.clone(),
        );
        let hash_wait = latency_histogram();
        registry.register_with_unit(
            "argon2_queue_wait",
            "Time a password hash waited for a hashing slot",
            Unit::Seconds,
            hash_wait.clone(),
        );
        let storage_duration: HistogramFamily<StorageLabels> =
            Family::new_with_constructor(storage_histogram);
        registry.register_with_unit(
            "storage_call_duration",
            "Duration of storage calls, by operation and result (ok, error, unavailable)",
            Unit::Seconds,
            storage_duration.clone(),
        );
        crate::ops::trace::register(&mut registry);
        Metrics {
            registry,
            requests,
            request_duration,
            sign_ins,
            locks,
            otp_sends,
            step_ups,
            attestations,
            security_events,
            hash_queue_depth,
            hash_wait,
            storage_duration,
        }
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads),
    /// with the hashing queue's depth read now.
    pub fn render(&self, hash_queue_depth: usize) -> String {
        self.hash_queue_depth
            .set(i64::try_from(hash_queue_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The histogram the password hasher reports its queue waits to.
    pub fn hash_wait(&self) -> Histogram {
        self.hash_wait.clone()
    }

    pub fn observe_request(&self, method: &Method, route: String, status: u16, took: f64) {
        let method = method_label(method);
        self.request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    pub fn observe_storage(&self, op: &'static str, result: &'static str, took: Duration) {
        self.storage_duration
            .get_or_create(&StorageLabels { op, result })
            .observe(took.as_secs_f64());
    }

    /// A code that could not be delivered (no audit line records it).
    pub(crate) fn otp_delivery_failed(&self, channel: &str) {
        self.otp_sends
            .get_or_create(&OtpLabels {
                channel: pick(channel, CHANNELS),
                result: "failed",
            })
            .inc();
    }

    /// A key attestation that verified.
    pub(crate) fn attestation_verified(&self) {
        self.attestations
            .get_or_create(&AttestationLabels {
                result: "verified",
                reason: "none",
            })
            .inc();
    }

    /// A sign-in the risk policy stepped up, with its signals.
    pub(crate) fn stepped_up(&self, signals: &[String]) {
        for s in signals {
            self.step_ups
                .get_or_create(&SignalLabels {
                    signal: pick(s, SIGNALS),
                })
                .inc();
        }
    }

    /// Counts what an audit line says. The audit trail is where every
    /// security decision is already written down, so counting here covers
    /// every handler without touching them; the event and its reason are
    /// mapped onto closed sets (the reason may carry free text).
    pub fn observe_event(&self, event: &str, reason: Option<&str>) {
        let event_label = pick(event, EVENTS);
        self.security_events
            .get_or_create(&EventLabels { event: event_label })
            .inc();
        let reason = reason.unwrap_or("");
        let first = reason.split([' ', ';']).next().unwrap_or("");
        let sign_in = |method: &'static str, result: &'static str| {
            self.sign_ins
                .get_or_create(&SignInLabels { method, result })
                .inc();
        };
        match event_label {
            "signin_ok" => {
                // The reason starts with the session's amr: `hwk bio`,
                // `pwd otp`, …
                let amr: Vec<&str> = reason.split(';').next().unwrap_or("").split(' ').collect();
                let method = if amr.contains(&"hwk") || amr.contains(&"swk") {
                    "device"
                } else if amr.contains(&"otp") {
                    "otp"
                } else if amr.contains(&"card") {
                    "card"
                } else {
                    "password"
                };
                sign_in(method, "success");
            }
            "password_ok" => sign_in("password", "verified"),
            "signin_failed" => {
                let method = if first == "step_up_otp" {
                    "otp"
                } else {
                    pick(first, FAILURE_METHODS)
                };
                sign_in(method, "failure");
            }
            "device_proof_failed" => sign_in("device", "failure"),
            "step_up" => sign_in("device", "step_up"),
            "password_step_up" => sign_in("password", "step_up"),
            "otp_sent" => {
                self.otp_sends
                    .get_or_create(&OtpLabels {
                        channel: pick(first, CHANNELS),
                        result: "sent",
                    })
                    .inc();
            }
            "otp_capped" => {
                self.otp_sends
                    .get_or_create(&OtpLabels {
                        channel: "any",
                        result: "capped",
                    })
                    .inc();
            }
            "device_attestation_failed" => {
                self.attestations
                    .get_or_create(&AttestationLabels {
                        result: "failed",
                        reason: pick(first, ATTESTATION_REASONS),
                    })
                    .inc();
            }
            e if LOCK_EVENTS.contains(&e) => {
                self.locks.get_or_create(&KindLabels { kind: e }).inc();
            }
            _ => {}
        }
    }
}

/// The standard methods by name; anything else (extension methods are
/// unbounded) as `other`.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `value` as the `'static` member of `set` it equals, else `other`.
fn pick(value: &str, set: &[&'static str]) -> &'static str {
    set.iter()
        .find(|s| **s == value)
        .copied()
        .unwrap_or("other")
}

/// Every audit event the server writes (grep `audit(` in server/src).
const EVENTS: &[&str] = &[
    "account_locked",
    "card_activated",
    "card_created",
    "card_linked",
    "card_locked",
    "contact_changed",
    "device_added",
    "device_attestation_failed",
    "device_proof_failed",
    "device_removed",
    "device_trust_renewed",
    "enrolled",
    "logout",
    "mobile_confirmed",
    "otp_capped",
    "otp_sent",
    "password_changed",
    "password_ok",
    "password_step_up",
    "recovery_locked",
    "recovery_started",
    "recovery_used",
    "refresh_reuse",
    "risk_allowed",
    "security_code_changed",
    "security_code_locked",
    "signin_failed",
    "signin_ok",
    "step_up",
    "unlocked",
    "user_created",
    "user_id_reminded",
];

const LOCK_EVENTS: &[&str] = &[
    "account_locked",
    "card_locked",
    "recovery_locked",
    "security_code_locked",
];

const FAILURE_METHODS: &[&str] = &[
    "password",
    "otp",
    "card",
    "security_code",
    "recovery",
    "device",
];

const CHANNELS: &[&str] = &["email", "sms"];

/// The habits engine's signals; a scorer's own names count as `other`.
const SIGNALS: &[&str] = &[
    "new_network",
    "new_device",
    "unusual_hour",
    "velocity",
    "recent_failures",
    "learning",
];

/// `attestation::VerifyError::reason()` and the handler's own reasons.
const ATTESTATION_REASONS: &[&str] = &[
    "platform_mismatch",
    "security_level_mismatch",
    "attestation_missing",
    "empty_chain",
    "chain_too_long",
    "certificate_unparsable",
    "bad_signature",
    "untrusted_root",
    "certificate_expired",
    "revoked",
    "key_description_missing",
    "key_description_not_in_leaf",
    "key_description_malformed",
    "key_mismatch",
    "challenge_mismatch",
    "software_level",
    "wrong_purpose",
    "wrong_origin",
    "all_applications",
    "no_user_auth",
    "wrong_package",
    "wrong_signing_cert",
    "apple_not_configured",
    "object_malformed",
    "wrong_format",
    "auth_data_malformed",
    "nonce_mismatch",
    "key_id_mismatch",
    "rp_id_mismatch",
    "counter_not_zero",
    "wrong_aaguid",
];

/// The middleware that counts and times every request. It runs inside the
/// router, where `MatchedPath` holds the route template
/// (`/v1/devices/{device_id}`), never the raw path.
pub async fn track(
    State(metrics): State<std::sync::Arc<Metrics>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let res = next.run(req).await;
    metrics.observe_request(
        &method,
        route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_never_becomes_a_label() {
        let m = Metrics::new();
        m.observe_event("signin_failed", Some("alice@example.com unknown_user"));
        m.observe_event("otp_sent", Some("+447700900123"));
        m.observe_event("made_up_event", Some("x"));
        m.observe_event("device_attestation_failed", Some("Bob's phone"));
        m.stepped_up(&["scorer says: user 42".into(), "velocity".into()]);
        let text = m.render(3);
        for secret in ["alice", "example.com", "+4477", "made_up", "Bob", "42\""] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
        assert!(text.contains("devicetrust_sign_ins_total{method=\"other\",result=\"failure\"} 1"));
        assert!(text.contains("devicetrust_otp_sends_total{channel=\"other\",result=\"sent\"} 1"));
        assert!(text.contains("devicetrust_security_events_total{event=\"other\"} 1"));
        assert!(text.contains("devicetrust_step_ups_total{signal=\"velocity\"} 1"));
        assert!(text.contains("devicetrust_step_ups_total{signal=\"other\"} 1"));
        assert!(text.contains("devicetrust_argon2_queue_depth 3"));
    }

    #[test]
    fn sign_in_methods_come_from_the_amr() {
        let m = Metrics::new();
        m.observe_event("signin_ok", Some("hwk bio; risk new_network score=0"));
        m.observe_event("signin_ok", Some("pwd otp"));
        m.observe_event("signin_ok", Some("pwd"));
        let text = m.render(0);
        for line in [
            "devicetrust_sign_ins_total{method=\"device\",result=\"success\"} 1",
            "devicetrust_sign_ins_total{method=\"otp\",result=\"success\"} 1",
            "devicetrust_sign_ins_total{method=\"password\",result=\"success\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
