//! A [`SessionSealer`] in software, for desktop apps and tests: AES-256-GCM
//! (ring) under a 32-byte key the app supplies (on a desktop, from the OS
//! keychain). Phones use `AndroidSessionSealer` / `KeychainSessionSealer`,
//! whose key never leaves the platform.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::keystore::{PlatformKeyError, SessionSealer};

/// First byte of every sealed blob: the format, so a later one can differ.
const VERSION: u8 = 1;
/// Bound into the tag: a blob sealed by this key for another purpose (the
/// key store's key files, were the app to reuse the key) does not open.
const AAD: &[u8] = b"devicetrust session v1";

/// Seals sessions with AES-256-GCM under a key the app keeps (e.g. in the
/// desktop's keychain). A blob carried to another machine without the key
/// does not open, so that machine is signed out.
///
/// ```
/// use devicetrust_core::{SessionSealer, SoftwareSessionSealer};
/// let sealer = SoftwareSessionSealer::new(&[7u8; 32]).unwrap();
/// let sealed = sealer.seal(b"refresh".to_vec()).unwrap();
/// assert_eq!(sealer.open(sealed).unwrap(), b"refresh");
/// ```
pub struct SoftwareSessionSealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

fn other(reason: &str) -> PlatformKeyError {
    PlatformKeyError::Other {
        reason: reason.to_owned(),
    }
}

impl SoftwareSessionSealer {
    /// A sealer under the 32-byte `key`.
    pub fn new(key: &[u8]) -> Result<Self, PlatformKeyError> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| other("the session key must be 32 bytes"))?;
        Ok(SoftwareSessionSealer {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }
}

impl SessionSealer for SoftwareSessionSealer {
    /// `VERSION ‖ nonce ‖ ciphertext ‖ tag`, a fresh random nonce each time.
    fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| other("no randomness"))?;
        let mut data = plaintext;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .map_err(|_| other("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + data.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(out)
    }

    fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(other("not a sealed session"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut data = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            // Wrong key (another machine, a new key) or altered bytes.
            .map_err(|_| other("the sealed session does not open with this key"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_refuses_what_it_must() {
        let sealer = SoftwareSessionSealer::new(&[1u8; 32]).unwrap();
        let a = sealer.seal(b"dtr_secret".to_vec()).unwrap();
        let b = sealer.seal(b"dtr_secret".to_vec()).unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.windows(10).any(|w| w == b"dtr_secret"));
        assert_eq!(sealer.open(a.clone()).unwrap(), b"dtr_secret");

        let mut altered = a.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(sealer.open(altered).is_err());
        let other_key = SoftwareSessionSealer::new(&[2u8; 32]).unwrap();
        assert!(other_key.open(a).is_err());
        assert!(sealer.open(vec![]).is_err());
        assert!(sealer.open(vec![VERSION; 5]).is_err());
        assert!(SoftwareSessionSealer::new(&[0u8; 16]).is_err());
    }
}
