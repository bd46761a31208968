//! How an app configures the SDK.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The platform the app runs on, reported with each device.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Other,
}

/// Settings fixed for the life of a [`DeviceTrust`](crate::DeviceTrust).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the server, e.g. `https://auth.example.com`.
    pub server_url: String,
    /// The relying-party id the server is configured with (`--rp-id`).
    pub rp_id: String,
    /// A folder the SDK owns for its local state.
    pub state_dir: String,
    pub platform: Platform,
    /// Base64 (standard, padded) SHA-256 digests of the DER
    /// SubjectPublicKeyInfo of certificates to pin — the `pin-sha256` values
    /// of RFC 7469. When any are given, a connection succeeds only if a
    /// certificate of the chain matches one of them (besides normal checks).
    pub tls_pins: Vec<String>,
    /// Extra trust anchors (DER), for private PKI and tests; the Mozilla root
    /// set is always trusted.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Allows `http://` URLs. Only for development against a local server.
    pub allow_insecure_http: bool,
    /// Whole-request timeout.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

impl Config {
    /// A configuration with safe defaults (HTTPS only, no pins, 15 s
    /// requests, 5 s connects).
    ///
    /// ```
    /// use devicetrust_core::{Config, Platform};
    /// let mut config = Config::new("https://auth.example.com", "https://auth.example.com", "/data/devicetrust");
    /// config.platform = Platform::Android;
    /// config.tls_pins = vec!["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into()];
    /// ```
    pub fn new(server_url: &str, rp_id: &str, state_dir: &str) -> Self {
        Config {
            server_url: server_url.trim_end_matches('/').to_owned(),
            rp_id: rp_id.to_owned(),
            state_dir: state_dir.to_owned(),
            platform: Platform::Other,
            tls_pins: Vec::new(),
            extra_root_certificates: Vec::new(),
            allow_insecure_http: false,
            request_timeout_ms: 15_000,
            connect_timeout_ms: 5_000,
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }
}
