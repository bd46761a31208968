//! Optional trace export over OTLP (docs/OPERATIONS.md, "Traces").
//!
//! Off unless `--otlp-endpoint` is given; then each request gets one
//! `http.server` span (target [`TARGET`]) carrying only the method, the
//! route *template*, the status and the request id — never the path (it
//! holds device ids), a header, a user id or an address. Only spans of that
//! target reach the exporter: log events and any other span stay in the
//! logs, so nothing a log line says can leak into a trace.
//!
//! The span processor is the SDK's batch processor: `on_end` puts the span
//! in a bounded queue and returns, a thread of its own sends batches, so a
//! request never waits for the collector. A batch the collector does not
//! take is dropped and counted (`devicetrust_trace_spans_total`).
//!
//! A W3C `traceparent` is believed only from a `--trust-proxy` peer: from
//! anyone else it could choose our trace ids (collide with or pollute
//! another trace). The current span's context goes out as `traceparent`
//! on the SMS webhook and risk-scorer requests ([`inject`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of the spans that are exported; nothing else is.
pub const TARGET: &str = "devicetrust::trace";

/// Seconds one export may take (connect, send, answer) before the batch is
/// dropped: a collector that hangs must not hold the export thread long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once the exporter is installed, which is before any router is
/// built: while false, `app::request_layers` does not add the span layer.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpanLabels {
    result: &'static str,
}

/// Process-wide, like the exporter itself: every state's registry shows the
/// same counts (there is one exporter per process).
static SPANS: LazyLock<Family<SpanLabels, Counter>> = LazyLock::new(Family::default);

/// Adds the export counter to a state's registry.
pub(crate) fn register(registry: &mut prometheus_client::registry::Registry) {
    registry.register(
        "trace_spans",
        "Spans handed to the OTLP collector (exported) or lost because it did not take them (dropped)",
        SPANS.clone(),
    );
}

fn count(result: &'static str, n: usize) {
    SPANS
        .get_or_create(&SpanLabels { result })
        .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Whether spans are being exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("--otlp-endpoint: {0}")]
    Endpoint(String),
    #[error("the OTLP exporter could not be built: {0}")]
    Build(String),
}

/// `--otlp-endpoint`'s parser: the collector's OTLP/HTTP base URL
/// (`http://collector:4318`); `/v1/traces` is appended unless already there.
pub fn parse_endpoint(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("no query or fragment".into());
    }
    Ok(url)
}

/// `--otlp-endpoint`'s clap parser: [`parse_endpoint`], whose refusal
/// names the flag and the reason but not the value (clap's own message
/// repeats it, and a refused URL may hold the very credentials refused).
#[derive(Clone, Debug)]
pub struct EndpointParser;

impl clap::builder::TypedValueParser for EndpointParser {
    type Value = reqwest::Url;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<reqwest::Url, clap::Error> {
        let reason = match value.to_str().map(parse_endpoint) {
            Some(Ok(url)) => return Ok(url),
            Some(Err(reason)) => reason,
            None => "not UTF-8".to_owned(),
        };
        let name = arg.and_then(|a| a.get_long()).unwrap_or("otlp-endpoint");
        Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid value for '--{name}' (not shown: it may hold a secret): {reason}\n"),
        )
        .with_cmd(cmd))
    }
}

fn traces_url(base: &reqwest::Url) -> String {
    let s = base.as_str().trim_end_matches('/');
    if s.ends_with("/v1/traces") {
        s.to_owned()
    } else {
        format!("{s}/v1/traces")
    }
}

/// The installed exporter; `shutdown` flushes what is queued.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Sends what is still queued (bounded by the export timeout) and
    /// stops the export thread. Runs off the async workers: the SDK blocks
    /// the calling thread while the last batch goes out on the runtime.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "trace export did not shut down cleanly");
        }
        ENABLED.store(false, Ordering::Relaxed);
    }
}

/// Builds the OTLP exporter and the `tracing` layer that feeds it (only
/// spans of [`TARGET`]). Must run inside the Tokio runtime: exports are
/// sent by tasks on it.
pub fn layer<S>(
    endpoint: &reqwest::Url,
) -> Result<(impl tracing_subscriber::Layer<S>, Exporter), TraceError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    // reqwest is built without a rustls provider: the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(EXPORT_TIMEOUT)
        .user_agent(concat!("devicetrust-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TraceError::Build(e.to_string()))?;
    let http = RuntimeClient {
        client,
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|e| TraceError::Build(e.to_string()))?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(http)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TraceError::Build(e.to_string()))?;
    // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read by the
    // builder; the name defaults to ours rather than `unknown_service`.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("devicetrust-server");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            crate::ops::VERSION,
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Counting(exporter)).build())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("devicetrust-server");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target() == TARGET
        }));
    ENABLED.store(true, Ordering::Relaxed);
    Ok((layer, Exporter { provider }))
}

/// The exporter's HTTP client: our reqwest (no second HTTP stack), its
/// requests run as tasks on the server's runtime because the batch
/// processor's thread has none.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let task = self.runtime.spawn(async move {
            let url = reqwest::Url::parse(&parts.uri.to_string())?;
            let response = client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            let mut answer = opentelemetry_http::Response::new(body);
            *answer.status_mut() = status;
            Ok::<_, opentelemetry_http::HttpError>(answer)
        });
        task.await?
    }
}

/// Counts what each export did with its batch.
#[derive(Debug)]
struct Counting<E>(E);

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.0.export(batch).await;
        count(
            if result.is_ok() {
                "exported"
            } else {
                "dropped"
            },
            n,
        );
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// The per-request span (a middleware inside the router, where the route
/// template is known). Does nothing while export is off.
pub async fn server_span(
    State(trusted): State<Arc<[ipnet::IpNet]>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if !enabled() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| crate::ops::metrics::UNMATCHED.to_owned());
    let method = crate::ops::metrics::method_label(req.method());
    // Already vetted by `drop_unsafe_request_id` (a plain token or ours).
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!(
        target: TARGET,
        "http.server",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        devicetrust.request_id = %request_id,
    );
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    if let Some(parent) = peer.and_then(|p| trusted_parent(p, req.headers(), &trusted)) {
        let _ = span.set_parent(parent);
    }
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The remote parent named by `traceparent`, if the peer is a trusted
/// proxy and the header is one well-formed W3C value.
pub fn trusted_parent(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<opentelemetry::Context> {
    let peer = peer.to_canonical();
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return None;
    }
    // Two `traceparent` headers are invalid (W3C Trace Context, 3.2).
    if headers.get_all("traceparent").iter().count() != 1 {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Adds the current span's `traceparent` (and `tracestate`) to an outgoing
/// request's headers; nothing while export is off or outside a traced span.
pub fn inject(headers: &mut axum::http::HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new()
            .inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let u = parse_endpoint("http://collector:4318").unwrap();
        assert_eq!(traces_url(&u), "http://collector:4318/v1/traces");
        let u = parse_endpoint("https://c.example/otlp/v1/traces").unwrap();
        assert_eq!(traces_url(&u), "https://c.example/otlp/v1/traces");
        let u = parse_endpoint("https://c.example/otlp/").unwrap();
        assert_eq!(traces_url(&u), "https://c.example/otlp/v1/traces");
        assert!(parse_endpoint("collector:4318").is_err());
        assert!(parse_endpoint("ftp://c.example").is_err());
        assert!(parse_endpoint("http://u:p@c.example").is_err());
        assert!(parse_endpoint("http://c.example/?k=v").is_err());
    }

    #[test]
    fn traceparent_only_from_trusted_proxies() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        let cx = trusted_parent(proxy, &h, &trusted).unwrap();
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        // As an IPv4-mapped IPv6 peer on a dual-stack listener, too.
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(trusted_parent(mapped, &h, &trusted).is_some());
        assert!(trusted_parent(other, &h, &trusted).is_none());
        assert!(trusted_parent(proxy, &h, &[]).is_none());
        // Malformed, all-zero or doubled headers are not a parent.
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736",
        ] {
            let mut h = axum::http::HeaderMap::new();
            h.insert("traceparent", bad.parse().unwrap());
            assert!(trusted_parent(proxy, &h, &trusted).is_none(), "{bad}");
        }
        h.append(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01"
                .parse()
                .unwrap(),
        );
        assert!(trusted_parent(proxy, &h, &trusted).is_none());
    }
}
