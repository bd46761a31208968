//! The server key: the one secret the server holds, kept outside the
//! database so that a copy of the database alone does not recover live OTP
//! codes. Purpose keys (the OTP HMAC key, the key that hides OTP
//! destinations) are derived from it with HKDF-SHA256.
//!
//! It comes from `--server-key` (a secret manager's value in the
//! environment) or from `--server-key-file`, a file created with mode 0600
//! on first start. A key file readable by group or others is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::private_files;

/// The server key's material (at least 32 bytes).
#[derive(Clone)]
pub struct ServerKey(Vec<u8>);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the server key must be at least 32 characters")]
    TooShort,
    #[error("could not {0} the server key file {1}: {2}")]
    Io(&'static str, PathBuf, std::io::Error),
    #[error(
        "the server key file {0} can be read by others (mode {1:o}): run chmod 600 on it, or make a new one"
    )]
    Exposed(PathBuf, u32),
    #[error("the OS random number generator failed")]
    Random,
}

/// Purposes a key is derived for; each gets its own HKDF `info`.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// HMAC of OTP codes at rest.
    OtpMac,
    /// Keyed hash of OTP destinations in the send log.
    Destination,
    /// Pepper of security codes before argon2id.
    SecurityCode,
    /// Keyed hashes of card numbers and card IDs.
    Card,
    /// The check value kept in the database, so an instance started with
    /// another key than the database was first used with refuses to start.
    KeyCheck,
    /// AES-256-GCM key sealing operators' TOTP secrets at rest.
    OperatorTotp,
    /// HMAC key of the support console's CSRF tokens.
    ConsoleCsrf,
    /// MAC of device sign-in challenge tokens (`challenge_token`).
    ChallengeMac,
    /// Derives a challenge token's nonce from its id.
    ChallengeNonce,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::OtpMac => b"devicetrust otp-mac v1",
            Purpose::Destination => b"devicetrust destination v1",
            Purpose::SecurityCode => b"devicetrust security-code v1",
            Purpose::Card => b"devicetrust card v1",
            Purpose::KeyCheck => b"devicetrust key-check v1",
            Purpose::OperatorTotp => b"devicetrust operator-totp v1",
            Purpose::ConsoleCsrf => b"devicetrust console-csrf v1",
            Purpose::ChallengeMac => b"devicetrust challenge-mac v1",
            Purpose::ChallengeNonce => b"devicetrust challenge-nonce v1",
        }
    }
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl ServerKey {
    /// A key given as a value (environment, flag): at least 32 characters.
    pub fn from_value(value: &str) -> Result<Self, KeyError> {
        let value = value.trim();
        if value.len() < 32 {
            return Err(KeyError::TooShort);
        }
        Ok(ServerKey(value.as_bytes().to_vec()))
    }

    /// A fresh random key (tests, and the content of a new key file).
    pub fn generate() -> Result<Self, KeyError> {
        Ok(ServerKey(new_key_text()?.into_bytes()))
    }

    /// Reads the key file, or creates it (mode 0600) with a new random key.
    /// Returns the key and whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Ok((Self::from_value(&text)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = new_key_text()?;
                let mut file = private_files::create_new(path)
                    .map_err(|e| KeyError::Io("create", path.to_owned(), e))?;
                file.write_all(format!("{text}\n").as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(|e| KeyError::Io("write", path.to_owned(), e))?;
                Ok((Self::from_value(&text)?, true))
            }
            Err(e) => Err(KeyError::Io("read", path.to_owned(), e)),
        }
    }

    /// The 32-byte key for one purpose.
    pub fn derive(&self, purpose: Purpose) -> [u8; 32] {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"devicetrust server key");
        let prk = salt.extract(&self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit: neither call can fail.
        let info = [purpose.info()];
        if let Ok(okm) = prk.expand(&info, Len32) {
            let _ = okm.fill(&mut out);
        }
        out
    }
}

fn new_key_text() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn check_private(path: &Path) -> Result<(), KeyError> {
    match private_files::exposed_mode(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(KeyError::Exposed(path.to_owned(), mode)),
        Err(e) => Err(KeyError::Io("inspect", path.to_owned(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let (a, created) = ServerKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = ServerKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.derive(Purpose::OtpMac), b.derive(Purpose::OtpMac));
        assert_ne!(a.derive(Purpose::OtpMac), a.derive(Purpose::Destination));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                ServerKey::load_or_create(&path),
                Err(KeyError::Exposed(..))
            ));
        }
    }

    #[test]
    fn short_values_are_refused_and_keys_do_not_print() {
        assert!(matches!(
            ServerKey::from_value("short"),
            Err(KeyError::TooShort)
        ));
        let key = ServerKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "ServerKey(***)");
    }
}
