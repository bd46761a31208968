//! Trace export over OTLP (docs/OPERATIONS.md, "Traces"), against an
//! in-test collector that decodes what the exporter posts: spans arrive,
//! a trusted proxy's `traceparent` is their parent and an untrusted peer's
//! is ignored, the risk scorer and the SMS webhook receive the trace, no
//! personal data is in any attribute, and a collector that hangs or fails
//! neither fails nor holds up requests (the lost spans are counted).
//!
//! One test function: the exporter is process-wide (a global `tracing`
//! subscriber) and sends on the runtime it was built in.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use devicetrust_e2e::*;
use devicetrust_server::notify::DeliveryConfig;
use devicetrust_server::risk::scorer::{FailMode, HttpScorer, ScorerConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const ANSWER: u8 = 0;
const HANG: u8 = 1;
const FAIL: u8 = 2;

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    resources: Arc<Mutex<Vec<String>>>,
    mode: Arc<AtomicU8>,
}

async fn collect(State(c): State<Collector>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match c.mode.load(Ordering::SeqCst) {
        HANG => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return StatusCode::OK;
        }
        FAIL => return StatusCode::SERVICE_UNAVAILABLE,
        _ => {}
    }
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-protobuf"
    );
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    for rs in request.resource_spans {
        if let Some(resource) = rs.resource {
            c.resources.lock().unwrap().extend(
                resource
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, text(&kv.value))),
            );
        }
        for ss in rs.scope_spans {
            c.spans.lock().unwrap().extend(ss.spans);
        }
    }
    StatusCode::OK
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(&kv.value))
}

impl Collector {
    /// Waits (bounded) for the span of the request with this id.
    async fn span_of(&self, request_id: &str) -> Span {
        for _ in 0..200 {
            let found = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|s| attr(s, "devicetrust.request_id").as_deref() == Some(request_id))
                .cloned();
            if let Some(span) = found {
                return span;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no span for request {request_id}");
    }
}

/// A stub that records the `traceparent` of each request it gets.
async fn recorder(
    path: &'static str,
    reply: serde_json::Value,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: HeaderMap| {
            let kept = kept.clone();
            let reply = reply.clone();
            async move {
                let tp = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                kept.lock().unwrap().push(tp);
                axum::Json(reply)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn trace_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or("")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

const PROXY: &str = "127.0.0.2";
const T_TRUSTED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T_UNTRUSTED: &str = "0af7651916cd43dd8448eb211c80319c";
const T_PASSWORD: &str = "11111111111111111111111111111111";
const T_SMS: &str = "22222222222222222222222222222222";
const PARENT: &str = "00f067aa0ba902b7";

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn call(
    http: &reqwest::Client,
    srv: &TestServer,
    path: &str,
    body: Option<serde_json::Value>,
    request_id: &str,
    trace: &str,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", srv.base);
    let req = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let resp = req
        .header("x-request-id", request_id)
        .header("traceparent", format!("00-{trace}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_trusted_parents_only_and_nothing_personal() {
    install_crypto_provider();
    let collector = Collector::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(collect))
        .with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Batches every 100 ms rather than 5 s, so the test does not wait.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let url = devicetrust_server::ops::trace::parse_endpoint(&endpoint).unwrap();
    let (layer, exporter) = devicetrust_server::ops::trace::layer(&url).unwrap();
    tracing_subscriber::registry().with(layer).init();

    let (scorer_url, scored) = recorder("/score", json!({"decision": "allow"})).await;
    let (sms_url, texted) = recorder("/sms", json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let delivery = DeliveryConfig {
        sms_webhook: Some(sms_url),
        sms_webhook_secret: Some("sms-secret-0123456789".into()),
        outbox: Some(dir.path().join("outbox.jsonl")),
        ..DeliveryConfig::default()
    }
    .build()
    .unwrap();
    let scorer = HttpScorer::new(ScorerConfig {
        url: scorer_url,
        timeout: Duration::from_secs(2),
        fail: FailMode::Open,
        secret: None,
    })
    .unwrap();
    let mut opts = Options {
        risk: Risk::Policy(Arc::new(scorer)),
        notifier: Some(Arc::new(delivery)),
        ..Options::default()
    };
    opts.settings.trusted_proxies = vec![format!("{PROXY}/32").parse().unwrap()];
    let srv = TestServer::start_with(opts).await;
    let proxy = client_from(PROXY);
    let direct = client_from("127.0.0.1");

    // A trusted proxy's traceparent: the server span is its child.
    let (status, _) = call(&proxy, &srv, "/healthz", None, "trusted-1", T_TRUSTED).await;
    assert_eq!(status, 200);
    let span = collector.span_of("trusted-1").await;
    assert_eq!(hex(&span.trace_id), T_TRUSTED);
    assert_eq!(hex(&span.parent_span_id), PARENT);
    assert_eq!(span.name, "GET /healthz");
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(attr(&span, "http.route").as_deref(), Some("/healthz"));
    assert_eq!(attr(&span, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(
        attr(&span, "http.response.status_code").as_deref(),
        Some("200")
    );
    let resources = collector.resources.lock().unwrap().clone();
    assert!(
        resources.contains(&"service.name=devicetrust-server".to_owned()),
        "{resources:?}"
    );
    assert!(
        resources.iter().any(|r| r.starts_with("service.version=")),
        "{resources:?}"
    );

    // Anyone else's is ignored: a trace of our own.
    let (status, _) = call(&direct, &srv, "/healthz", None, "untrusted-1", T_UNTRUSTED).await;
    assert_eq!(status, 200);
    let span = collector.span_of("untrusted-1").await;
    assert_ne!(hex(&span.trace_id), T_UNTRUSTED);
    assert!(span.parent_span_id.is_empty(), "a root span");

    // The risk scorer, asked at the password step, gets the trace.
    srv.add_user("Jane.Doe", "GB", Some("+447700900123")).await;
    let (status, a) = call(
        &proxy,
        &srv,
        "/v1/login/password",
        Some(json!({"user_id": "Jane.Doe", "password": PASSWORD})),
        "password-1",
        T_PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{a:?}");
    let login_id = a["login_id"].as_str().unwrap().to_owned();
    let seen = scored.lock().unwrap().clone();
    assert!(
        seen.iter().any(|tp| trace_of(tp) == T_PASSWORD),
        "scorer saw {seen:?}"
    );
    let span = collector.span_of("password-1").await;
    assert_eq!(hex(&span.trace_id), T_PASSWORD);
    assert_eq!(span.name, "POST /v1/login/password");

    // The SMS webhook gets it too.
    let (status, e) = call(
        &proxy,
        &srv,
        "/v1/login/enrol",
        Some(json!({"login_id": login_id, "security_code": "24680135", "mobile": null})),
        "enrol-1",
        T_PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{e:?}");
    let (status, s) = call(
        &proxy,
        &srv,
        "/v1/login/otp/send",
        Some(json!({"login_id": login_id, "channel": "sms"})),
        "sms-1",
        T_SMS,
    )
    .await;
    assert_eq!(status, 200, "{s:?}");
    let seen = texted.lock().unwrap().clone();
    let sent = seen.iter().find(|tp| trace_of(tp) == T_SMS);
    // The gateway's parent is the server span of that request.
    let span = collector.span_of("sms-1").await;
    assert_eq!(
        sent.map(String::as_str),
        Some(format!("00-{T_SMS}-{}-01", hex(&span.span_id)).as_str()),
        "gateway saw {seen:?}"
    );

    // A device path carries an id: the span names the template.
    let (status, _) = call(
        &direct,
        &srv,
        "/v1/devices/dev-4f1c-personal/challenge",
        Some(json!({})),
        "device-1",
        T_UNTRUSTED,
    )
    .await;
    assert!(status >= 400);
    let span = collector.span_of("device-1").await;
    assert!(!span.name.contains("dev-4f1c-personal"), "{}", span.name);

    // Nothing personal in any span: only these attributes, no events, and
    // none of the user's data anywhere.
    let allowed: HashSet<&str> = [
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "devicetrust.request_id",
        "busy_ns",
        "idle_ns",
    ]
    .into();
    let personal = [
        "jane",
        "Jane",
        "+4477",
        "447700900123",
        "example.com",
        "dev-4f1c-personal",
        login_id.as_str(),
        "24680135",
        "127.0.0",
    ];
    for span in collector.spans.lock().unwrap().iter() {
        assert!(span.events.is_empty(), "{span:?}");
        for kv in &span.attributes {
            assert!(allowed.contains(kv.key.as_str()), "attribute {}", kv.key);
            let v = text(&kv.value);
            for p in personal {
                assert!(!v.contains(p), "{} = {v}", kv.key);
            }
        }
        for p in personal {
            assert!(!span.name.contains(p), "{}", span.name);
        }
    }

    // A collector that hangs, then one that fails: requests are answered
    // as before (each far below the 5 s an export may take), and the spans
    // it did not take are counted as dropped.
    let dropped = || async {
        let body = reqwest::Client::new()
            .get(format!("{}/metrics", srv.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.lines()
            .find(|l| l.starts_with("devicetrust_trace_spans_total{result=\"dropped\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(dropped().await, 0);
    for (mode, n) in [(HANG, 40), (FAIL, 40)] {
        collector.mode.store(mode, Ordering::SeqCst);
        let before = dropped().await;
        let mut slowest = Duration::ZERO;
        for i in 0..n {
            let started = Instant::now();
            let (status, _) = call(
                &proxy,
                &srv,
                "/healthz",
                None,
                &format!("down-{mode}-{i}"),
                T_TRUSTED,
            )
            .await;
            assert_eq!(status, 200);
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Not a benchmark: an export on the request path would take the
        // 5 s export timeout (or the 60 s hang), not a fraction of it.
        assert!(slowest < Duration::from_secs(2), "{slowest:?}");
        let mut after = before;
        for _ in 0..200 {
            after = dropped().await;
            if after > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(after > before, "mode {mode}: dropped {before} → {after}");
    }

    // Back up: spans flow again, and shutdown flushes what is queued.
    collector.mode.store(ANSWER, Ordering::SeqCst);
    let (status, _) = call(&proxy, &srv, "/healthz", None, "last-1", T_TRUSTED).await;
    assert_eq!(status, 200);
    exporter.shutdown().await;
    let last = collector
        .spans
        .lock()
        .unwrap()
        .iter()
        .any(|s| attr(s, "devicetrust.request_id").as_deref() == Some("last-1"));
    assert!(last, "the queued span was flushed at shutdown");
    srv.stop().await;
}
