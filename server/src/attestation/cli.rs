//! The `serve` flags of key attestation, kept beside the module rather than
//! in `cli`: they build an `attestation::Config`.

use std::path::PathBuf;

use clap::Args;

use super::android::StatusList;
use super::chain::TrustedKey;
use super::{Config, Policy};

/// Key attestation (docs/ATTESTATION.md).
#[derive(Debug, Args)]
pub struct AttestationArgs {
    /// off: attestations are ignored; verify: any given must verify;
    /// require: every registration needs one.
    #[arg(long = "attestation", env = "DEVICETRUST_ATTESTATION", value_enum, default_value_t = Policy::Verify)]
    pub policy: Policy,
    /// PEM file of more roots an Android chain may end at, beside Google's.
    #[arg(long, env = "DEVICETRUST_ANDROID_ATTESTATION_ROOTS")]
    pub android_attestation_roots: Option<PathBuf>,
    /// Google's attestation status list (JSON), refreshed by the operator;
    /// re-read whenever the file changes.
    #[arg(long, env = "DEVICETRUST_ANDROID_ATTESTATION_STATUS")]
    pub android_attestation_status: Option<PathBuf>,
    /// The app's package name the attestation must name.
    #[arg(long, env = "DEVICETRUST_ANDROID_PACKAGE")]
    pub android_package: Option<String>,
    /// SHA-256 (hex) of the app's signing certificate; comma-separated for
    /// more than one (key rotation).
    #[arg(
        long,
        env = "DEVICETRUST_ANDROID_SIGNING_CERT_SHA256",
        value_delimiter = ','
    )]
    pub android_signing_cert_sha256: Vec<String>,
    /// TEAMID.BUNDLE of the iOS app; without it App Attest attestations fail.
    #[arg(long, env = "DEVICETRUST_APPLE_APP_ID")]
    pub apple_app_id: Option<String>,
    /// Accept App Attest's development environment (`appattestdevelop`).
    #[arg(long, env = "DEVICETRUST_APPLE_APP_ATTEST_DEVELOPMENT")]
    pub apple_app_attest_development: bool,
}

impl AttestationArgs {
    /// The configuration, with every file read now: a missing or broken
    /// file stops the start (the error is a usage message).
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config::with_builtin_roots(self.policy);
        if let Some(path) = &self.android_attestation_roots {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("--android-attestation-roots {}: {e}", path.display()))?;
            let extra = TrustedKey::from_pem(&pem, &path.display().to_string())?;
            config.android.roots.extend(extra);
        }
        if let Some(path) = &self.android_attestation_status {
            config.android.status = Some(StatusList::load(path)?);
        } else if self.policy != Policy::Off {
            // Leaked factory keys ("keyboxes") sign genuine-looking chains
            // for any key; Google's status list is what revokes them.
            tracing::warn!(
                "attestation is checked without --android-attestation-status: \
                 revoked (leaked) attestation keys are not refused"
            );
        }
        config.android.package = self.android_package.clone();
        config.android.signing_cert_sha256 = self
            .android_signing_cert_sha256
            .iter()
            .map(|h| parse_sha256_hex(h))
            .collect::<Result<_, _>>()?;
        if let Some(id) = &self.apple_app_id {
            let valid = id
                .split_once('.')
                .is_some_and(|(team, bundle)| !team.is_empty() && !bundle.is_empty());
            if !valid {
                return Err(
                    "--apple-app-id must be TEAMID.BUNDLE (e.g. ABCDE12345.com.bank.app)".into(),
                );
            }
        }
        config.apple.app_id = self.apple_app_id.clone();
        config.apple.development = self.apple_app_attest_development;
        Ok(config)
    }
}

/// 64 hex digits (colons allowed, as keytool prints them).
fn parse_sha256_hex(raw: &str) -> Result<Vec<u8>, String> {
    let hex: String = raw.trim().chars().filter(|c| *c != ':').collect();
    let bad = || format!("--android-signing-cert-sha256: {raw:?} is not 64 hex digits");
    if hex.len() != 64 {
        return Err(bad());
    }
    (0..32)
        .map(|i| {
            u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn signing_certificate_digests_are_64_hex_digits() {
        let d = super::parse_sha256_hex(&format!("{}CD", "AB:".repeat(31))).unwrap();
        assert_eq!(d.len(), 32);
        assert_eq!(d[31], 0xcd);
        assert!(super::parse_sha256_hex("abcd").is_err());
        assert!(super::parse_sha256_hex(&"zz".repeat(32)).is_err());
    }
}
