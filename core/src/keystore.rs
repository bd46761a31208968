//! The platform key store: where the private key lives. Kotlin (Android
//! Keystore + PromptText) and Swift (Secure Enclave + LocalAuthentication)
//! implement it; `SoftwareKeyStore` serves desktop
//! apps and tests. The private key never passes through this interface.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who must be present for the key to sign.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Strong biometrics only; the key dies if biometrics are re-enrolled.
    Biometric,
    /// Biometrics, or the phone's passcode/PIN as fallback.
    BiometricOrDeviceCredential,
    /// The phone's passcode / PIN / pattern only: for a phone with no
    /// enrolled biometric, so biometric sign-in still has a hardware key
    /// gated by the user (Android `AUTH_DEVICE_CREDENTIAL`, iOS
    /// `.devicePasscode`).
    DeviceCredential,
    /// No user verification (desktop, tests).
    None,
}

/// Where the key lives, as the platform reports it.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The platform's proof of where the key lives, made with the
    /// registration challenge `generate_key` was given; `None` where the
    /// platform cannot attest (software keys, old phones, a failed App
    /// Attest call). The server decides what a missing one means
    /// (`--attestation verify` accepts it, `require` refuses it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub attestation: Option<KeyAttestation>,
}

/// A hardware key attestation, as the platform returns it (sent to the
/// server as the registration's `attestation`, every byte string base64url).
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAttestation {
    /// Android Key Attestation: `KeyStore.getCertificateChain(alias)` of a
    /// key generated with `setAttestationChallenge(challenge)`, each
    /// certificate DER (`Certificate.getEncoded()`), leaf first.
    AndroidKey { certificate_chain: Vec<Vec<u8>> },
    /// Apple App Attest: the App Attest key's identifier (the 32 bytes
    /// `DCAppAttestService.generateKey` returns base64-encoded, decoded)
    /// and the attestation object `attestKey(_:clientDataHash:)` returned,
    /// with `clientDataHash` = `app_attest_client_data_hash` of the
    /// challenge and the signing key.
    AppleAppAttest {
        key_id: Vec<u8>,
        attestation_object: Vec<u8>,
    },
}

/// The `clientDataHash` an iOS key store passes to App Attest's
/// `attestKey(_:clientDataHash:)`: SHA-256(`challenge` ‖ the RFC 7638 JWK
/// thumbprint of `public_key`), the thumbprint as its 32 raw bytes. This is
/// what binds the Secure Enclave signing key (the registered `jwk`) to the
/// App Attest key, which signs nothing else. `public_key` is the
/// uncompressed SEC1 point `generate_key` returns (65 bytes).
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn app_attest_client_data_hash(
    challenge: Vec<u8>,
    public_key: Vec<u8>,
) -> Result<Vec<u8>, PlatformKeyError> {
    let thumbprint =
        crate::signature::jwk_thumbprint(&public_key).map_err(|e| PlatformKeyError::Other {
            reason: e.to_string(),
        })?;
    let mut data = challenge;
    data.extend_from_slice(&thumbprint);
    Ok(ring::digest::digest(&ring::digest::SHA256, &data)
        .as_ref()
        .to_vec())
}

/// The words of the system prompt (biometric or passcode) the key store
/// shows before the key signs, chosen by the app. Named `PromptText`, not
/// `BiometricPrompt`, so it never clashes with Android's class. Every field
/// has a default so `PromptText()` works in Kotlin and Swift.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptText {
    #[cfg_attr(feature = "uniffi", uniffi(default = "Sign in"))]
    pub title: String,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub subtitle: Option<String>,
    /// Android's negative button / iOS fallback title.
    #[cfg_attr(feature = "uniffi", uniffi(default = "Cancel"))]
    pub cancel_label: String,
}

impl PromptText {
    pub fn new(title: impl Into<String>) -> Self {
        PromptText {
            title: title.into(),
            ..PromptText::default()
        }
    }
}

impl Default for PromptText {
    fn default() -> Self {
        PromptText {
            title: "Sign in".into(),
            subtitle: None,
            cancel_label: "Cancel".into(),
        }
    }
}

/// How a key-store operation failed.
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
#[cfg_attr(feature = "uniffi", uniffi::export(Display))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformKeyError {
    /// The user dismissed the prompt.
    #[error("cancelled by the user")]
    Cancelled,
    /// The key was permanently invalidated (biometrics re-enrolled).
    #[error("key permanently invalidated")]
    KeyInvalidated,
    /// No biometric hardware, none enrolled, or not available now.
    #[error("biometric unavailable: {}", crate::error::said(reason))]
    BiometricUnavailable { reason: String },
    /// Too many failed biometric attempts.
    #[error("biometric locked out")]
    BiometricLockedOut,
    /// No key under that alias.
    #[error("no such key")]
    KeyNotFound,
    /// Anything else, in the platform's words.
    #[error("{}", crate::error::said(reason))]
    Other { reason: String },
}

/// A foreign implementation that broke the FFI contract (e.g. threw an
/// exception that is not a `PlatformKeyError`).
#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformKeyError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformKeyError::Other { reason: e.reason }
    }
}

/// Implemented by the platform. Every method may show UI (the biometric
/// prompt), so the SDK never holds a lock while calling it.
#[cfg_attr(feature = "uniffi", uniffi::export(foreign))]
#[async_trait]
pub trait PlatformKeyStore: Send + Sync {
    /// Creates a P-256 key under `alias`, gated by `user_verification` where
    /// the platform can, replacing any key of that alias, and attests it
    /// where the platform can with `attestation_challenge` (the server's
    /// registration challenge, raw bytes): Android passes it to
    /// `KeyGenParameterSpec.Builder.setAttestationChallenge` and returns
    /// `KeyAttestation.AndroidKey`; iOS attests the new key with App
    /// Attest, `clientDataHash` = `app_attest_client_data_hash(challenge,
    /// public key)`, and returns `KeyAttestation.AppleAppAttest`; a
    /// software key store returns `attestation: None`. A phone that cannot
    /// attest returns the key with `None` rather than failing.
    ///
    /// If the SDK stops waiting (the app cancelled the call, or
    /// `key_store_timeout_ms` ran out), the call is cancelled: Kotlin's
    /// coroutine, Python's task (Swift: see docs/BINDINGS.md).
    async fn generate_key(
        &self,
        alias: String,
        user_verification: UserVerification,
        attestation_challenge: Vec<u8>,
    ) -> Result<GeneratedKey, PlatformKeyError>;

    /// Signs `data` with SHA-256/ECDSA after showing `prompt` when the key
    /// needs the user. Returns the signature DER-encoded, as platforms do.
    ///
    /// When the app cancels the SDK call, or `key_store_prompt_timeout_ms`
    /// runs out, this call is cancelled (Kotlin: the coroutine, Python: the
    /// task): dismiss the prompt then (Android `CancellationSignal`,
    /// `BiometricPrompt.cancelAuthentication`; iOS `LAContext.invalidate`).
    async fn sign(
        &self,
        alias: String,
        data: Vec<u8>,
        prompt: PromptText,
    ) -> Result<Vec<u8>, PlatformKeyError>;

    /// Deletes the key; deleting a missing key is not an error.
    async fn delete_key(&self, alias: String) -> Result<(), PlatformKeyError>;

    /// Whether a key exists under `alias` (no UI).
    async fn key_exists(&self, alias: String) -> Result<bool, PlatformKeyError>;
}

/// Seals what the SDK keeps to restore a session after a restart (the
/// refresh token), with a platform key that needs no user presence:
/// Android an AES-256-GCM Android Keystore key (`AndroidSessionSealer`),
/// iOS a Keychain item `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`
/// (`KeychainSessionSealer`). Optional: without one, sessions live in
/// memory only. Called off the UI thread; shows no UI.
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
pub trait SessionSealer: Send + Sync {
    /// Encrypts and authenticates `plaintext`.
    fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError>;
    /// Reverses `seal`; fails when the key is gone
    /// (a restored backup, a reinstalled app) or the bytes were altered.
    /// The SDK then deletes the sealed session (the account is signed out),
    /// except on `BiometricUnavailable`, `BiometricLockedOut` or
    /// `Cancelled`: return one of those when the key is only out of reach
    /// *now* (iOS before the first unlock) and the SDK tries again later.
    fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError>;
}

/// Told whenever an account's session changes: a sign-in, a refresh, a
/// sign-out or a revocation the server reported (`session` is then `None`).
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
pub trait SessionObserver: Send + Sync {
    fn session_changed(&self, user_id: String, session: Option<crate::model::SessionInfo>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_store_error_without_words_still_says_something() {
        // Kotlin `message`, Swift `localizedDescription` and Python `str(e)`
        // come from this Display; a platform that gives no reason (an
        // exception without a message) must not make it empty.
        for e in [
            PlatformKeyError::Other { reason: "".into() },
            PlatformKeyError::Other {
                reason: "  ".into(),
            },
            PlatformKeyError::BiometricUnavailable { reason: "".into() },
        ] {
            let text = e.to_string();
            assert!(
                !text.trim().is_empty() && !text.trim_end().ends_with(':'),
                "{e:?} says {text:?}"
            );
        }
        assert_eq!(
            PlatformKeyError::Other {
                reason: "busy".into()
            }
            .to_string(),
            "busy"
        );
        let sdk = crate::client::map_key_error(PlatformKeyError::Other { reason: "".into() });
        assert!(!sdk.to_string().trim_end().ends_with(':'), "{sdk}");
    }

    #[test]
    fn the_client_data_hash_is_a_sha256() {
        let mut point = vec![4u8];
        point.extend([1u8; 64]);
        let hash = app_attest_client_data_hash(b"challenge".to_vec(), point).unwrap();
        assert_eq!(hash.len(), 32);
        assert!(matches!(
            app_attest_client_data_hash(vec![], vec![1, 2]),
            Err(PlatformKeyError::Other { .. })
        ));
    }
}
