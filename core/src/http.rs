//! HTTP to the server: hyper's HTTP/1.1 client (hyper-util's pooled
//! client, hyper-rustls) over rustls with ring (no OpenSSL, no aws-lc: it
//! cross-compiles to Android and iOS with nothing but cargo), Mozilla's
//! roots (webpki-roots) plus optional SPKI pins, timeouts, and retries with
//! back-off for requests that are safe to repeat. Not reqwest: the SDK sends
//! a few small JSON requests to one host, and reqwest's URL parsing (IDNA
//! tables), redirects, proxies and middleware cost ~200 KB of the mobile
//! library (docs/PERFORMANCE.md, "Mobile library size").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
pub(crate) use http::Method;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;
use crate::error::DeviceTrustError;
use crate::wire::ServerError;

/// Attempts for a request that is safe to repeat.
const MAX_ATTEMPTS: u32 = 3;
const PIN_MISMATCH: &str = "certificate pin mismatch";
/// The largest answer read. The largest the API sends (200 security
/// events) is well under 100 KB; a server, or whatever answers in its name,
/// that sends more must not fill the phone's memory before the timeout.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Whether a request may be sent again after a failure that leaves its
/// outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, and writes whose repetition is harmless (a new challenge).
    Safe,
    /// Anything that counts, consumes or rotates.
    Once,
}

/// A failed call: the server's error answer, or no usable answer at all.
#[derive(Debug)]
pub(crate) enum CallError {
    Api(ServerError),
    Transport(DeviceTrustError),
}

pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    /// The whole call, retries included: connection, request, answer's body.
    timeout: Duration,
}

/// A request's outcome before decoding: status and body.
type Exchange<'a> = Pin<Box<dyn Future<Output = Result<(u16, Vec<u8>), CallError>> + Send + 'a>>;

const AGENT: &str = concat!("devicetrust-core/", env!("CARGO_PKG_VERSION"));

/// Checks the chain as usual, then requires a certificate of a chain that
/// verifies (leaf, intermediates, trust anchor) to carry a pinned public
/// key. Not merely one of the certificates sent: a man in the middle with a
/// certificate the phone trusts could send the real server's certificate
/// (its key is public) beside his chain.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

fn sha256(spki: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `SEQUENCE { contents }` in DER: a trust anchor keeps its SPKI's contents
/// only, a pin is over the whole SPKI.
fn der_sequence(contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

impl PinningVerifier {
    /// Whether a chain from `end_entity` that verifies has a pinned key.
    fn pinned_path(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let pinned = |path: &webpki::VerifiedPath<'_>| {
            let mut spkis = vec![sha256(path.end_entity().subject_public_key_info().as_ref())];
            spkis.extend(
                path.intermediate_certificates()
                    .map(|c| sha256(c.subject_public_key_info().as_ref())),
            );
            spkis.push(sha256(&der_sequence(
                path.anchor().subject_public_key_info.as_ref(),
            )));
            if spkis.iter().any(|h| self.pins.contains(h)) {
                Ok(())
            } else {
                // Any non-fatal error: path building tries the other chains.
                Err(webpki::Error::UnknownIssuer)
            }
        };
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&pinned),
        )
        .is_ok()
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.pins.is_empty() || self.pinned_path(end_entity, intermediates, now) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(PIN_MISMATCH.into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, DeviceTrustError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in &config.extra_root_certificates {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| DeviceTrustError::invalid(format!("extra root certificate: {e}")))?;
    }
    let pins = config
        .tls_pins
        .iter()
        .map(|p| {
            STANDARD
                .decode(p)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    DeviceTrustError::invalid(format!(
                        "tls pin {p:?} is not a base64 SHA-256 digest"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let roots = Arc::new(roots);
    let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| DeviceTrustError::invalid(format!("TLS roots: {e}")))?;
    let verifier = PinningVerifier {
        inner,
        pins,
        roots,
        provider: provider.clone(),
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(provider as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()
            .map_err(|e| DeviceTrustError::invalid(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    )
}

/// Whether an error's chain holds a TLS failure (retrying cannot fix it).
fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // io::Error's `source` skips the error it wraps; step into it instead.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn transport_error(err: &(dyn std::error::Error + 'static)) -> DeviceTrustError {
    if let Some(tls) = tls_failure(err) {
        return DeviceTrustError::network(false, format!("TLS: {tls}"));
    }
    let connect = err
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect());
    if connect {
        return DeviceTrustError::network(true, "the server cannot be reached");
    }
    DeviceTrustError::network(true, format!("the connection failed: {err}"))
}

impl Http {
    pub fn new(config: &Config) -> Result<Self, DeviceTrustError> {
        let base = config.base_url().to_owned();
        let is_http = base.starts_with("http://");
        if !(is_http || base.starts_with("https://")) {
            return Err(DeviceTrustError::invalid(
                "server_url must start with https://",
            ));
        }
        if is_http && !config.allow_insecure_http {
            return Err(DeviceTrustError::invalid(
                "server_url must use https:// (allow_insecure_http is for local development only)",
            ));
        }
        // hyper's `Uri` takes ASCII only (no IDNA tables in the library).
        let Some(uri) = base
            .parse::<http::Uri>()
            .ok()
            .filter(|u| u.host().is_some())
        else {
            return Err(DeviceTrustError::invalid(
                "server_url is not a URL with an ASCII (punycode) host name",
            ));
        };
        // API paths are appended to the URL: a query or fragment would
        // swallow them, and user info hides the real host
        // (`https://auth.bank.example@evil.example` is evil.example).
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) || base.contains(['?', '#']) {
            return Err(DeviceTrustError::invalid(
                "server_url must have no user info, query or fragment",
            ));
        }
        let mut tcp = HttpConnector::new();
        // The scheme is the TLS layer's business (below).
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(config.connect_timeout()));
        tcp.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_config(config)?);
        let tls = if config.allow_insecure_http {
            tls.https_or_http()
        } else {
            tls.https_only()
        };
        let connector = tls.enable_http1().wrap_connector(tcp);
        // Idle connections close after hyper-util's default 90 s; the timer
        // is what enforces it.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Http {
            client,
            base,
            timeout: config.request_timeout(),
        })
    }

    /// Sends one request; repeats it with back-off only when `repeat` says
    /// that is safe and the failure is transient; reads a JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        repeat: Repeat,
    ) -> Result<T, CallError> {
        // Only the last step is per answer type: the request, retries and
        // transport are compiled once, behind a boxed future, instead of once
        // per type (26 copies of ~3 KB in the mobile library otherwise).
        let exchange: Exchange<'_> = Box::pin(self.exchange(method, path, body, token, repeat));
        let (status, bytes) = exchange.await?;
        // 204 has no body; callers that expect none ask for `Value`.
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| unreadable(status, e))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        repeat: Repeat,
    ) -> Result<(u16, Vec<u8>), CallError> {
        // One deadline for the call: what the app waits is the configured
        // timeout, not that times the attempts (a server trickling bytes
        // would otherwise hold a safe call three times as long).
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut attempt = 1;
        loop {
            let result = self.once(method.clone(), path, body, token, deadline).await;
            let transient = match &result {
                Err(CallError::Transport(DeviceTrustError::Network { retryable, .. })) => {
                    *retryable
                }
                Err(CallError::Api(e)) => matches!(e.status, 502..=504),
                _ => false,
            };
            let wait = Duration::from_millis(200 * 2u64.pow(attempt - 1));
            if repeat == Repeat::Once
                || !transient
                || attempt >= MAX_ATTEMPTS
                || tokio::time::Instant::now() + wait >= deadline
            {
                return result;
            }
            tracing::debug!(path, attempt, ?wait, "retrying a safe request");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<(u16, Vec<u8>), CallError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(USER_AGENT, AGENT)
            .header(ACCEPT, "application/json");
        let payload = match body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        if let Some(t) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                CallError::Transport(DeviceTrustError::network(
                    false,
                    "request not sent: the token is not a header value",
                ))
            })?;
            // Kept out of hyper's debug output.
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let req = req.body(Full::new(payload)).map_err(|e| {
            CallError::Transport(DeviceTrustError::network(
                false,
                format!("request not sent: {e}"),
            ))
        })?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| CallError::Transport(transport_error(&e)))?;
            let status = resp.status().as_u16();
            let too_large = || {
                CallError::Transport(DeviceTrustError::Server {
                    status,
                    code: "response_too_large".into(),
                    reason: format!("the server's answer is over {MAX_RESPONSE_BYTES} bytes"),
                })
            };
            if resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
            {
                return Err(too_large());
            }
            // Read chunk by chunk: a missing or lying content-length is bounded too.
            let mut body = resp.into_body();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| CallError::Transport(transport_error(&e)))?;
                if let Ok(chunk) = frame.into_data() {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
            Ok::<_, CallError>((status, bytes))
        };
        let (status, bytes) =
            tokio::time::timeout_at(deadline, exchange)
                .await
                .map_err(|_| {
                    CallError::Transport(DeviceTrustError::network(
                        true,
                        "the server did not answer in time",
                    ))
                })??;
        if !(200..300).contains(&status) {
            return Err(CallError::Api(ServerError::from_body(status, &bytes)));
        }
        Ok((status, bytes))
    }
}

fn unreadable(status: u16, e: serde_json::Error) -> CallError {
    CallError::Transport(DeviceTrustError::Server {
        status,
        code: "unreadable_response".into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn config(url: &str) -> Config {
        let mut c = Config::new(url, "https://rp.test", "/nonexistent");
        c.allow_insecure_http = true;
        c.request_timeout_ms = 500;
        c.connect_timeout_ms = 500;
        c
    }

    fn reason(e: CallError) -> (bool, String) {
        match e {
            CallError::Transport(DeviceTrustError::Network { retryable, reason }) => {
                (retryable, reason)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_urls_hyper_can_reach_are_accepted() {
        for bad in [
            "https://bänk.example",
            "https://",
            "ftp://x.example",
            "https://a b",
        ] {
            let mut c = config(bad);
            c.allow_insecure_http = false;
            assert!(
                matches!(Http::new(&c), Err(DeviceTrustError::InvalidInput { .. })),
                "{bad}"
            );
        }
        let mut c = config("http://127.0.0.1:1");
        c.allow_insecure_http = false;
        assert!(matches!(
            Http::new(&c),
            Err(DeviceTrustError::InvalidInput { .. })
        ));
        assert!(Http::new(&config("https://xn--bnk-qla.example/")).is_ok());
    }

    fn json_answer(status: u16, json: &str) -> String {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
            json.len()
        )
    }

    /// Answers one request with `answer` and hands back what it read.
    async fn one_shot(answer: String) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the announced body.
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_request_carries_its_json_token_and_agent_and_reads_the_answer() {
        let (url, seen) = one_shot(json_answer(200, r#"{"ok":true}"#)).await;
        let http = Http::new(&config(&url)).unwrap();
        let body = serde_json::json!({"user_id": "ann"});
        let answer: Value = http
            .call(
                Method::POST,
                "/v1/x",
                Some(&body),
                Some("dta_tok"),
                Repeat::Once,
            )
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({"ok": true}));
        let seen = seen.await.unwrap();
        assert!(seen.starts_with("POST /v1/x HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("authorization: Bearer dta_tok\r\n"), "{seen}");
        assert!(
            seen.contains("content-type: application/json\r\n"),
            "{seen}"
        );
        assert!(seen.contains(&format!("user-agent: {AGENT}\r\n")), "{seen}");
        assert!(seen.ends_with("{\"user_id\":\"ann\"}"), "{seen}");
    }

    #[tokio::test]
    async fn no_content_reads_as_null_and_an_error_answer_as_the_servers_error() {
        let (url, _) = one_shot("HTTP/1.1 204 No Content\r\n\r\n".into()).await;
        let http = Http::new(&config(&url)).unwrap();
        let answer: Value = http
            .call(Method::DELETE, "/v1/y", None, None, Repeat::Once)
            .await
            .unwrap();
        assert_eq!(answer, Value::Null);

        let (url, _) = one_shot(json_answer(
            401,
            r#"{"error":{"code":"invalid_token","message":"expired"}}"#,
        ))
        .await;
        let http = Http::new(&config(&url)).unwrap();
        match http
            .call::<Value>(Method::GET, "/v1/z", None, None, Repeat::Safe)
            .await
        {
            Err(CallError::Api(e)) => {
                assert_eq!((e.status, e.code.as_str()), (401, "invalid_token"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        // Would carry the bearer token to another host if it were.
        let (url, seen) = one_shot(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/steal\r\ncontent-length: 0\r\n\r\n"
                .into(),
        )
        .await;
        let http = Http::new(&config(&url)).unwrap();
        match http
            .call::<Value>(Method::POST, "/v1/a", None, Some("dta_tok"), Repeat::Once)
            .await
        {
            Err(CallError::Api(e)) => assert_eq!(e.status, 307),
            other => panic!("{other:?}"),
        }
        assert!(seen.await.unwrap().starts_with("POST /v1/a "));
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_silent_server_are_retryable_network_errors() {
        // Bound then dropped: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = Http::new(&config(&format!("http://127.0.0.1:{port}"))).unwrap();
        let e = http
            .call::<Value>(Method::GET, "/", None, None, Repeat::Once)
            .await
            .unwrap_err();
        assert_eq!(reason(e), (true, "the server cannot be reached".into()));

        // Accepts, reads, never answers: the request timeout ends it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        });
        let http = Http::new(&config(&url)).unwrap();
        let started = std::time::Instant::now();
        let e = http
            .call::<Value>(Method::GET, "/", None, None, Repeat::Once)
            .await
            .unwrap_err();
        assert_eq!(
            reason(e),
            (true, "the server did not answer in time".into())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[cfg(test)]
mod answer_bounds {
    use super::*;
    use crate::test_server::{serve, Reply};

    fn http(url: &str) -> Http {
        let mut config = Config::new(url, "https://rp.test", "/nonexistent");
        config.allow_insecure_http = true;
        Http::new(&config).unwrap()
    }

    #[tokio::test]
    async fn an_answer_too_large_is_refused_not_held_in_memory() {
        // A server (or whatever answers in its name) that sends 200 and an
        // endless body must not make the phone hold it all: 64 MiB here.
        let mut huge = b"{\"devices\": [\"".to_vec();
        huge.resize(64 << 20, b'a');
        let (url, server) = serve(vec![Reply {
            status: 200,
            body: huge,
            arrived: None,
            gate: None,
        }]);
        let result = http(&url)
            .call::<Value>(Method::GET, "/v1/devices", None, None, Repeat::Once)
            .await;
        match result {
            Err(CallError::Transport(DeviceTrustError::Server { code, .. })) => {
                assert_eq!(code, "response_too_large")
            }
            other => panic!("{other:?}"),
        }
        drop(server);
    }

    #[tokio::test]
    async fn an_error_answer_too_large_is_refused_too() {
        let (url, _server) = serve(vec![Reply {
            status: 500,
            body: vec![b' '; MAX_RESPONSE_BYTES + 1],
            arrived: None,
            gate: None,
        }]);
        let result = http(&url)
            .call::<Value>(Method::GET, "/v1/me", None, None, Repeat::Once)
            .await;
        assert!(
            matches!(
                &result,
                Err(CallError::Transport(DeviceTrustError::Server { code, .. })) if code == "response_too_large"
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_trust_anchor_spki_is_wrapped_as_der() {
        assert_eq!(der_sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = der_sequence(&[0; 300]);
        assert_eq!(&long[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
        assert_eq!(&der_sequence(&[0; 0x80])[..3], &[0x30, 0x81, 0x80]);
    }

    #[tokio::test]
    async fn an_answer_within_the_bound_is_read() {
        let (url, _server) = serve(vec![Reply::json(200, r#"{"ok": true}"#)]);
        let v: Value = http(&url)
            .call(Method::GET, "/v1/me", None, None, Repeat::Once)
            .await
            .unwrap();
        assert_eq!(v["ok"], true);
    }
}

#[cfg(test)]
mod review2 {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn config(url: &str, timeout_ms: u64) -> Config {
        let mut c = Config::new(url, "https://rp.test", "/nonexistent");
        c.allow_insecure_http = true;
        c.request_timeout_ms = timeout_ms;
        c.connect_timeout_ms = timeout_ms;
        c
    }

    #[test]
    fn a_server_url_with_credentials_a_query_or_a_fragment_is_refused() {
        // `https://auth.bank.example@evil.example` goes to evil.example; a
        // query or fragment would swallow every API path appended to it.
        for bad in [
            "https://auth.bank.example@evil.example",
            "https://user:pw@auth.example",
            "https://auth.example/?tenant=1",
            "https://auth.example/#x",
            "https://auth.example/api?",
        ] {
            let mut c = config(bad, 500);
            c.allow_insecure_http = false;
            assert!(
                matches!(Http::new(&c), Err(DeviceTrustError::InvalidInput { .. })),
                "{bad}"
            );
        }
        // A path prefix (a server behind a reverse proxy) and literal IPs stay.
        for good in [
            "https://auth.example/api",
            "https://[2001:db8::1]:8443",
            "https://192.0.2.1",
        ] {
            let mut c = config(good, 500);
            c.allow_insecure_http = false;
            assert!(Http::new(&c).is_ok(), "{good}");
        }
    }

    /// Accepts every connection, reads the request, then sends an answer
    /// one byte every `every` (a slowloris server); counts connections.
    async fn trickling(every: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
                    for byte in answer.iter().chain([b' '; 1000].iter()) {
                        if socket.write_all(&[*byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(every).await;
                    }
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn a_trickling_server_is_cut_at_the_request_timeout() {
        // Every read makes progress, so only a bound on the whole exchange
        // (not an idle timeout) ends it.
        let (url, _) = trickling(Duration::from_millis(50)).await;
        let http = Http::new(&config(&url, 600)).unwrap();
        let started = std::time::Instant::now();
        let e = http
            .call::<Value>(Method::POST, "/v1/x", None, None, Repeat::Once)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            CallError::Transport(DeviceTrustError::Network { ref reason, .. })
                if reason == "the server did not answer in time"
        ));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }

    #[tokio::test]
    async fn a_safe_request_s_retries_stay_within_the_request_timeout() {
        // The app's spinner waits `request_timeout_ms`, not three times it.
        let (url, connections) = trickling(Duration::from_millis(50)).await;
        let http = Http::new(&config(&url, 600)).unwrap();
        let started = std::time::Instant::now();
        let e = http
            .call::<Value>(Method::GET, "/v1/me", None, None, Repeat::Safe)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(
            e,
            CallError::Transport(DeviceTrustError::Network { .. })
        ));
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_safe_request_is_retried_after_a_503_and_a_once_request_is_not() {
        use crate::test_server::{serve, Reply};
        let (url, server) = serve(vec![
            Reply::json(503, r#"{"error":{"code":"unavailable","message":"x"}}"#),
            Reply::json(200, r#"{"ok": true}"#),
        ]);
        let http = Http::new(&config(&url, 5000)).unwrap();
        let v: Value = http
            .call(Method::GET, "/v1/me", None, None, Repeat::Safe)
            .await
            .unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(server.join().unwrap().len(), 2);

        // A sign-in's proof is sent once: a second would be a second session.
        let (url, server) = serve(vec![
            Reply::json(503, r#"{"error":{"code":"unavailable","message":"x"}}"#),
            Reply::json(200, r#"{"ok": true}"#),
        ]);
        let http = Http::new(&config(&url, 5000)).unwrap();
        let e = http
            .call::<Value>(Method::POST, "/v1/login/device", None, None, Repeat::Once)
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Api(ref e) if e.status == 503));
        drop(http);
        // The second reply is never asked for; a connection that is not
        // coming leaves the server thread waiting, so it is not joined.
        drop(server);
    }

    #[tokio::test]
    async fn a_token_with_a_line_break_is_not_sent() {
        // A token from a tampered answer must not add a header.
        let (url, _) = trickling(Duration::from_millis(1)).await;
        let http = Http::new(&config(&url, 600)).unwrap();
        for token in ["dta\r\nx-evil: 1", "dta\nx", "dta\0"] {
            let e = http
                .call::<Value>(Method::GET, "/v1/me", None, Some(token), Repeat::Safe)
                .await
                .unwrap_err();
            assert!(matches!(
                e,
                CallError::Transport(DeviceTrustError::Network { retryable: false, ref reason })
                    if reason.contains("not a header value")
            ));
        }
    }

    #[tokio::test]
    async fn an_ipv6_literal_server_url_is_reached() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here: skipped");
            return;
        };
        let url = format!("http://{}", listener.local_addr().unwrap());
        assert!(url.starts_with("http://[::1]:"));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            let body = r#"{"ok":true}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        let http = Http::new(&config(&url, 2000)).unwrap();
        let v: Value = http
            .call(Method::GET, "/v1/me", None, None, Repeat::Once)
            .await
            .unwrap();
        assert_eq!(v["ok"], true);
        let seen = server.await.unwrap();
        assert!(seen.to_ascii_lowercase().contains("host: [::1]:"), "{seen}");
    }
}
