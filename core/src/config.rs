//! How an app configures the SDK.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The platform an app runs on, reported with each device.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    /// Desktop, tests, or a platform this version of the SDK does not know.
    #[serde(other)]
    Other,
}

impl Platform {
    /// The platform the library was compiled for.
    pub fn current() -> Self {
        if cfg!(target_os = "ios") {
            Platform::Ios
        } else if cfg!(target_os = "android") {
            Platform::Android
        } else {
            Platform::Other
        }
    }
}

/// The prompt timeout's default: five minutes for the user to find their
/// phone, read the prompt and touch the sensor.
pub const DEFAULT_KEY_STORE_PROMPT_TIMEOUT_MS: u64 = 300_000;
/// Key-store calls without a prompt: key generation (with App Attest's
/// round trip to Apple on iOS), deletion, existence checks.
pub const DEFAULT_KEY_STORE_TIMEOUT_MS: u64 = 30_000;

/// Settings fixed for the life of a DeviceTrust object. Only `server_url`,
/// `rp_id` and `state_dir` have no default.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the server, e.g. `https://auth.example.com`.
    pub server_url: String,
    /// The relying-party id the server is configured with (`--rp-id`).
    pub rp_id: String,
    /// A folder the SDK owns for its local state.
    pub state_dir: String,
    /// The platform reported with each device; empty: the one the library
    /// was compiled for (iOS, Android, else Other).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub platform: Option<Platform>,
    /// Base64 (standard, padded) SHA-256 digests of the DER
    /// SubjectPublicKeyInfo of certificates to pin: the `pin-sha256` values
    /// of RFC 7469. When any are given, a connection succeeds only if a
    /// certificate of the verified chain (leaf, intermediate or trust
    /// anchor) matches one of them (besides normal checks).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub tls_pins: Vec<String>,
    /// Extra trust anchors (DER), for private PKI and tests; the Mozilla root
    /// set is always trusted.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Allows `http://` URLs. Only for development against a local server.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub allow_insecure_http: bool,
    /// Whole-call timeout, in milliseconds (default 15 s): connecting,
    /// sending, reading the answer, and any retries of a safe request.
    #[cfg_attr(feature = "uniffi", uniffi(default = 15000))]
    pub request_timeout_ms: u64,
    /// Connection timeout, in milliseconds (default 5 s).
    #[cfg_attr(feature = "uniffi", uniffi(default = 5000))]
    pub connect_timeout_ms: u64,
    /// How long a key-store call that shows the system prompt (signing) may
    /// take, in milliseconds (default 5 minutes). When it runs out the SDK
    /// drops the call, which dismisses the prompt, and fails with
    /// `KeyStoreTimeout`.
    #[cfg_attr(feature = "uniffi", uniffi(default = 300000))]
    pub key_store_prompt_timeout_ms: u64,
    /// How long the other key-store calls (generate, delete, exists) may
    /// take, in milliseconds (default 30 s).
    #[cfg_attr(feature = "uniffi", uniffi(default = 30000))]
    pub key_store_timeout_ms: u64,
}

impl Config {
    /// A configuration with the defaults (HTTPS only, no pins, 15 s
    /// requests, 5 s connects, 5 min for a prompt, 30 s for other key-store
    /// calls), as the bindings' `Config(serverUrl, rpId, stateDir)` has.
    ///
    /// ```
    /// use devicetrust_core::{Config, Platform};
    /// let mut config = Config::new("https://auth.example.com", "https://auth.example.com", "/data/devicetrust");
    /// config.platform = Some(Platform::Android);
    /// config.tls_pins = vec!["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into()];
    /// ```
    pub fn new(server_url: &str, rp_id: &str, state_dir: &str) -> Self {
        Config {
            server_url: server_url.to_owned(),
            rp_id: rp_id.to_owned(),
            state_dir: state_dir.to_owned(),
            platform: None,
            tls_pins: Vec::new(),
            extra_root_certificates: Vec::new(),
            allow_insecure_http: false,
            request_timeout_ms: 15_000,
            connect_timeout_ms: 5_000,
            key_store_prompt_timeout_ms: DEFAULT_KEY_STORE_PROMPT_TIMEOUT_MS,
            key_store_timeout_ms: DEFAULT_KEY_STORE_TIMEOUT_MS,
        }
    }

    /// The server URL without a trailing slash (foreign callers build the
    /// record without `new`).
    pub(crate) fn base_url(&self) -> &str {
        self.server_url.trim_end_matches('/')
    }

    pub(crate) fn platform(&self) -> Platform {
        self.platform.unwrap_or_else(Platform::current)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    pub(crate) fn key_store_prompt_timeout(&self) -> Duration {
        Duration::from_millis(self.key_store_prompt_timeout_ms.max(1))
    }

    pub(crate) fn key_store_timeout(&self) -> Duration {
        Duration::from_millis(self.key_store_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_has_the_documented_defaults() {
        let c = Config::new("https://a.example/", "https://a.example", "/tmp/x");
        assert_eq!(c.base_url(), "https://a.example");
        assert_eq!(c.platform(), Platform::current());
        assert_eq!(c.request_timeout(), Duration::from_secs(15));
        assert_eq!(c.key_store_prompt_timeout(), Duration::from_secs(300));
        assert_eq!(c.key_store_timeout(), Duration::from_secs(30));
        assert!(!c.allow_insecure_http && c.tls_pins.is_empty());
    }
}
