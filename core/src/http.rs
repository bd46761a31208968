//! HTTP to the server: reqwest over rustls with ring (no OpenSSL, no
//! aws-lc: it cross-compiles to Android and iOS with nothing but cargo),
//! Mozilla's roots (webpki-roots) plus optional SPKI pins, timeouts, and
//! retries with back-off for requests that are safe to repeat.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
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
    client: reqwest::Client,
    base: String,
}

/// Checks the chain as usual, then requires one of its certificates to
/// carry a pinned public key.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

fn spki_sha256(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Some(out)
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
        if self.pins.is_empty() {
            return Ok(verified);
        }
        let matched = std::iter::once(end_entity)
            .chain(intermediates.iter())
            .filter_map(spki_sha256)
            .any(|h| self.pins.contains(&h));
        if matched {
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
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| DeviceTrustError::invalid(format!("TLS roots: {e}")))?;
    let verifier = PinningVerifier { inner, pins };
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
fn is_tls_failure(err: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
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

fn transport_error(err: reqwest::Error) -> DeviceTrustError {
    if let Some(tls) = is_tls_failure(&err) {
        return DeviceTrustError::network(false, format!("TLS: {tls}"));
    }
    if err.is_timeout() {
        return DeviceTrustError::network(true, "the server did not answer in time");
    }
    if err.is_connect() {
        return DeviceTrustError::network(true, "the server cannot be reached");
    }
    if err.is_builder() {
        return DeviceTrustError::network(false, format!("request not sent: {err}"));
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
        // reqwest insists on a process-wide rustls provider even when it is
        // handed a complete config; install ring unless the app chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(config)?)
            .https_only(!config.allow_insecure_http)
            .timeout(config.request_timeout())
            .connect_timeout(config.connect_timeout())
            .user_agent(concat!("devicetrust-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeviceTrustError::invalid(format!("HTTP client: {e}")))?;
        Ok(Http { client, base })
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
        let exchange: Pin<Box<dyn Future<Output = Result<(u16, Vec<u8>), CallError>> + Send + '_>> =
            Box::pin(self.exchange(method, path, body, token, repeat));
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
        let mut attempt = 1;
        loop {
            let result = self.once(method.clone(), path, body, token).await;
            let transient = match &result {
                Err(CallError::Transport(DeviceTrustError::Network { retryable, .. })) => {
                    *retryable
                }
                Err(CallError::Api(e)) => matches!(e.status, 502..=504),
                _ => false,
            };
            if repeat == Repeat::Once || !transient || attempt >= MAX_ATTEMPTS {
                return result;
            }
            let wait = Duration::from_millis(200 * 2u64.pow(attempt - 1));
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
    ) -> Result<(u16, Vec<u8>), CallError> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(transport_error(e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Transport(transport_error(e)))?;
        if !(200..300).contains(&status) {
            return Err(CallError::Api(ServerError::from_body(status, &bytes)));
        }
        Ok((status, Vec::from(bytes)))
    }
}

fn unreadable(status: u16, e: serde_json::Error) -> CallError {
    CallError::Transport(DeviceTrustError::Server {
        status,
        code: "unreadable_response".into(),
        reason: e.to_string(),
    })
}
