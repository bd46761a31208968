//! Key attestation: the server checks what the phone claims about its key
//! (the contract's "Key attestation"; docs/ATTESTATION.md).
//!
//! - `android`: Android Key Attestation chains to Google's roots.
//! - `apple`: Apple App Attest attestation objects to Apple's root.
//! - `chain`: certificate-chain checks both use.
//!
//! The policy (`--attestation off|verify|require`) decides what happens to a
//! registration with or without an attestation; `verify` runs every check
//! and names the first that fails, for the audit trail.

pub mod android;
pub mod apple;
pub mod chain;
pub mod cli;

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `--attestation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Policy {
    /// Attestations are not read; claimed hardware counts as hardware.
    Off,
    /// Any attestation given must verify; registrations without one are
    /// accepted (their claimed hardware still counts).
    #[default]
    Verify,
    /// Every registration needs an attestation that verifies; only attested
    /// keys count as hardware.
    Require,
}

/// Everything attestation needs from the operator.
#[derive(Debug, Default)]
pub struct Config {
    pub policy: Policy,
    pub android: android::Config,
    pub apple: apple::Config,
}

impl Config {
    /// The built-in roots, `verify`, nothing else configured.
    pub fn with_builtin_roots(policy: Policy) -> Self {
        Config {
            policy,
            android: android::Config::google(),
            apple: apple::Config::default(),
        }
    }
}

/// The verified security level of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    Strongbox,
    Tee,
    SecureEnclave,
}

impl SecurityLevel {
    /// The name stored and sent; the same as the `key_storage` it proves.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Strongbox => "strongbox",
            SecurityLevel::Tee => "tee",
            SecurityLevel::SecureEnclave => "secure_enclave",
        }
    }
}

/// Whether an attested level is the claimed `key_storage` (`tee` ↔
/// TrustedEnvironment, `strongbox` ↔ StrongBox, `secure_enclave` for App
/// Attest); `software` with an attestation matches nothing.
pub fn matches_claim(level: SecurityLevel, key_storage: &str) -> bool {
    level.as_str() == key_storage
}

/// The `attestation` of `POST /v1/devices`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "format", deny_unknown_fields)]
pub enum AttestationRequest {
    /// Android Keystore: `getCertificateChain()` of the new key, generated
    /// with `setAttestationChallenge(challenge bytes)`.
    #[serde(rename = "android-key")]
    AndroidKey {
        /// DER certificates, each base64url, leaf first; the root may be
        /// left out. At most 8.
        #[schema(max_items = 8, min_items = 1)]
        certificate_chain: Vec<String>,
    },
    /// DeviceCheck App Attest: `attestKey` with `clientDataHash` =
    /// SHA-256(challenge bytes ‖ the RFC 7638 thumbprint of `jwk`).
    #[serde(rename = "apple-appattest")]
    AppleAppAttest {
        /// The App Attest key identifier, base64url (32 bytes).
        key_id: String,
        /// The attestation object, base64url (CBOR).
        attestation_object: String,
    },
}

impl AttestationRequest {
    pub fn format(&self) -> &'static str {
        match self {
            AttestationRequest::AndroidKey { .. } => "android-key",
            AttestationRequest::AppleAppAttest { .. } => "apple-appattest",
        }
    }

    /// Decodes the base64url fields; a field that is not base64url, an
    /// empty or over-long chain, or a key id of the wrong length is a
    /// malformed request (400 `invalid_request`), not a failed check.
    pub fn decode(&self) -> Result<Decoded, String> {
        let b64 = |what: &str, s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|_| format!("attestation.{what} is not base64url"))
        };
        match self {
            AttestationRequest::AndroidKey { certificate_chain } => {
                if certificate_chain.is_empty() || certificate_chain.len() > android::MAX_CHAIN {
                    return Err(format!(
                        "attestation.certificate_chain must hold 1 to {} certificates",
                        android::MAX_CHAIN
                    ));
                }
                let ders = certificate_chain
                    .iter()
                    .map(|c| b64("certificate_chain", c))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Decoded::Android(ders))
            }
            AttestationRequest::AppleAppAttest {
                key_id,
                attestation_object,
            } => {
                let key_id = b64("key_id", key_id)?;
                if key_id.len() != 32 {
                    return Err("attestation.key_id must be 32 bytes".into());
                }
                let object = b64("attestation_object", attestation_object)?;
                Ok(Decoded::Apple { key_id, object })
            }
        }
    }
}

/// An attestation with its fields decoded.
pub enum Decoded {
    Android(Vec<Vec<u8>>),
    Apple { key_id: Vec<u8>, object: Vec<u8> },
}

/// What a registration must match.
pub struct Registration<'a> {
    /// The registration's challenge, base64url-decoded.
    pub challenge: &'a [u8],
    /// The registered key (uncompressed P-256 point).
    pub public_key: &'a [u8],
    /// `user_verification` is not `none`.
    pub user_auth_required: bool,
    pub now: i64,
}

/// A verified attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub format: &'static str,
    pub security_level: SecurityLevel,
}

impl Config {
    /// Runs every check for `attestation`; the first one that fails is the
    /// error.
    pub fn verify(
        &self,
        attestation: &Decoded,
        reg: &Registration<'_>,
    ) -> Result<Verified, AttestationError> {
        match attestation {
            Decoded::Android(ders) => {
                let v = android::verify(
                    &self.android,
                    ders,
                    &android::Expected {
                        challenge: reg.challenge,
                        public_key: reg.public_key,
                        user_auth_required: reg.user_auth_required,
                        now: reg.now,
                    },
                )?;
                Ok(Verified {
                    format: "android-key",
                    security_level: v.security_level,
                })
            }
            Decoded::Apple { key_id, object } => {
                let client_data_hash = apple::client_data_hash(reg.challenge, reg.public_key)
                    .ok_or(AttestationError::KeyMismatch)?;
                apple::verify(
                    &self.apple,
                    object,
                    &apple::Expected {
                        key_id,
                        client_data_hash: client_data_hash.to_vec(),
                        now: reg.now,
                    },
                )?;
                Ok(Verified {
                    format: "apple-appattest",
                    security_level: SecurityLevel::SecureEnclave,
                })
            }
        }
    }
}

/// A failed check. `reason()` is what the audit trail records; the client
/// only ever sees `attestation_invalid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error("the certificate chain is empty")]
    EmptyChain,
    #[error("the certificate chain is too long")]
    ChainTooLong,
    #[error("certificate {0} does not parse")]
    CertificateUnparsable(usize),
    #[error("certificate {0}'s signature does not verify with the next one's key")]
    BadSignature(usize),
    #[error("the chain does not end at a trusted root")]
    UntrustedRoot,
    #[error("certificate {0} is outside its validity dates")]
    CertificateExpired(usize),
    #[error("certificate {0}'s serial is {1} in the status list")]
    Revoked(usize, String),
    #[error("the leaf has no KeyDescription")]
    KeyDescriptionMissing,
    #[error("certificate {0} above the leaf has a KeyDescription")]
    KeyDescriptionNotInLeaf(usize),
    #[error("the KeyDescription does not parse")]
    KeyDescriptionMalformed,
    #[error("the attested key is not the registered key")]
    KeyMismatch,
    #[error("the attestation challenge is not the registration's")]
    ChallengeMismatch,
    #[error("the key is not in a TEE or StrongBox")]
    SoftwareLevel,
    #[error("the key's purposes are not signing")]
    WrongPurpose,
    #[error("the key was not generated in the secure hardware")]
    WrongOrigin,
    #[error("the key is usable by all applications")]
    AllApplications,
    #[error("the key does not require user authentication")]
    NoUserAuth,
    #[error("the attesting application is not the configured package")]
    WrongPackage,
    #[error("the attesting application's signing certificate is not the configured one")]
    WrongSigningCert,
    #[error("App Attest is not configured (--apple-app-id)")]
    AppleNotConfigured,
    #[error("the attestation object does not parse")]
    ObjectMalformed,
    #[error("the attestation object's format is not apple-appattest")]
    WrongFormat,
    #[error("the authenticator data does not parse")]
    AuthDataMalformed,
    #[error("the nonce is not SHA-256(authData ‖ clientDataHash)")]
    NonceMismatch,
    #[error("the key id is not SHA-256 of the attested key")]
    KeyIdMismatch,
    #[error("the RP id hash is not that of the configured app id")]
    RpIdMismatch,
    #[error("the counter is not 0")]
    CounterNotZero,
    #[error("the AAGUID is not the accepted environment's")]
    WrongAaguid,
    #[error("the credential id is not the key id")]
    CredentialIdMismatch,
}

impl AttestationError {
    /// A stable name for the audit trail.
    pub fn reason(&self) -> &'static str {
        use AttestationError::*;
        match self {
            EmptyChain => "empty_chain",
            ChainTooLong => "chain_too_long",
            CertificateUnparsable(_) => "certificate_unparsable",
            BadSignature(_) => "bad_signature",
            UntrustedRoot => "untrusted_root",
            CertificateExpired(_) => "certificate_expired",
            Revoked(..) => "revoked",
            KeyDescriptionMissing => "key_description_missing",
            KeyDescriptionNotInLeaf(_) => "key_description_not_in_leaf",
            KeyDescriptionMalformed => "key_description_malformed",
            KeyMismatch => "key_mismatch",
            ChallengeMismatch => "challenge_mismatch",
            SoftwareLevel => "software_level",
            WrongPurpose => "wrong_purpose",
            WrongOrigin => "wrong_origin",
            AllApplications => "all_applications",
            NoUserAuth => "no_user_auth",
            WrongPackage => "wrong_package",
            WrongSigningCert => "wrong_signing_cert",
            AppleNotConfigured => "apple_not_configured",
            ObjectMalformed => "object_malformed",
            WrongFormat => "wrong_format",
            AuthDataMalformed => "auth_data_malformed",
            NonceMismatch => "nonce_mismatch",
            KeyIdMismatch => "key_id_mismatch",
            RpIdMismatch => "rp_id_mismatch",
            CounterNotZero => "counter_not_zero",
            WrongAaguid => "wrong_aaguid",
            CredentialIdMismatch => "credential_id_mismatch",
        }
    }
}
