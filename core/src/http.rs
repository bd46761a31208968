//! HTTP to the server: reqwest over rustls with ring (no OpenSSL, no
//! aws-lc: it cross-compiles to Android and iOS with nothing but cargo),
//! Mozilla's roots (webpki-roots) plus optional SPKI pins, timeouts, and
//! retries with back-off for requests that are safe to repeat.

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
    client: reqwest::Client,
    base: String,
}

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
    /// that is safe and the failure is transient.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        repeat: Repeat,
    ) -> Result<T, CallError> {
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

    async fn once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<T, CallError> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(transport_error(e)))?;
        let status = resp.status().as_u16();
        let too_large = || {
            CallError::Transport(DeviceTrustError::Server {
                status,
                code: "response_too_large".into(),
                reason: format!("the server's answer is over {MAX_RESPONSE_BYTES} bytes"),
            })
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        // Read chunk by chunk: a missing or lying content-length is bounded too.
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| CallError::Transport(transport_error(e)))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            return Err(CallError::Api(ServerError::from_body(status, &bytes)));
        }
        // 204 has no body; callers that expect none ask for `Value`.
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| {
            CallError::Transport(DeviceTrustError::Server {
                status,
                code: "unreadable_response".into(),
                reason: e.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
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
