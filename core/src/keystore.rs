//! The platform key store: where the private key lives. Kotlin (Android
//! Keystore + BiometricPrompt) and Swift (Secure Enclave + LocalAuthentication)
//! implement it; [`SoftwareKeyStore`](crate::SoftwareKeyStore) serves desktop
//! apps and tests. The private key never passes through this interface.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who must be present for the key to sign.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Strong biometrics only; the key dies if biometrics are re-enrolled.
    Biometric,
    /// Biometrics, or the phone's passcode/PIN as fallback.
    BiometricOrDeviceCredential,
    /// No user verification (desktop, tests).
    None,
}

/// Where the key lives, as the platform reports it.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStorage {
    SecureEnclave,
    Strongbox,
    Tee,
    Software,
}

/// A key just created.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The P-256 public key, uncompressed SEC1 (65 bytes, starting 0x04).
    pub public_key: Vec<u8>,
    /// Where the platform created it.
    pub storage: KeyStorage,
}

/// The words of the biometric prompt, chosen by the app.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiometricPrompt {
    pub title: String,
    pub subtitle: Option<String>,
    /// Android's negative button / iOS fallback title.
    pub cancel_label: String,
}

impl BiometricPrompt {
    pub fn new(title: impl Into<String>) -> Self {
        BiometricPrompt {
            title: title.into(),
            subtitle: None,
            cancel_label: "Cancel".into(),
        }
    }
}

/// How a key-store operation failed.
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// The user dismissed the prompt.
    #[error("cancelled by the user")]
    Cancelled,
    /// The key was permanently invalidated (biometrics re-enrolled).
    #[error("key permanently invalidated")]
    KeyInvalidated,
    /// No biometric hardware, none enrolled, or not available now.
    #[error("biometric unavailable: {reason}")]
    BiometricUnavailable { reason: String },
    /// Too many failed biometric attempts.
    #[error("biometric locked out")]
    BiometricLockedOut,
    /// No key under that alias.
    #[error("no such key")]
    KeyNotFound,
    /// Anything else, in the platform's words.
    #[error("{reason}")]
    Other { reason: String },
}

/// A foreign implementation that broke the FFI contract (e.g. threw an
/// exception that is not a `KeyStoreError`).
#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeyStoreError::Other { reason: e.reason }
    }
}

/// Implemented by the platform. Every method may show UI (the biometric
/// prompt), so the SDK never holds a lock while calling it.
#[cfg_attr(feature = "uniffi", uniffi::export(foreign))]
#[async_trait]
pub trait PlatformKeyStore: Send + Sync {
    /// Creates a P-256 key under `alias`, gated by `user_verification` where
    /// the platform can, replacing any key of that alias.
    async fn generate_key(
        &self,
        alias: String,
        user_verification: UserVerification,
    ) -> Result<GeneratedKey, KeyStoreError>;

    /// Signs `data` with SHA-256/ECDSA after showing `prompt` when the key
    /// needs the user. Returns the signature DER-encoded, as platforms do.
    async fn sign(
        &self,
        alias: String,
        data: Vec<u8>,
        prompt: BiometricPrompt,
    ) -> Result<Vec<u8>, KeyStoreError>;

    /// Deletes the key; deleting a missing key is not an error.
    async fn delete_key(&self, alias: String) -> Result<(), KeyStoreError>;

    /// Whether a key exists under `alias` (no UI).
    async fn key_exists(&self, alias: String) -> Result<bool, KeyStoreError>;
}
