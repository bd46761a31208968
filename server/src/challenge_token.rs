//! Device sign-in challenges issued without a write (issue 14).
//!
//! `challenge_id` = base64url(random(16) ‖ expires_at(8, big-endian) ‖
//! HMAC-SHA256(mac key, "device-login v1" ‖ random ‖ expires_at ‖ device_id)[..16]):
//! 40 bytes, 54 characters. The 32-byte `challenge` the device signs is
//! HMAC-SHA256(nonce key, challenge_id). Both keys are derived from the
//! server key, which every instance of a deployment shares, so any instance
//! can check a token another issued. The token proves the server issued it,
//! for which device and until when; single use is enforced where the proof
//! is redeemed, by a unique row keyed by the token's hash.
//!
//! Stored challenges (ids of 22 characters) remain for the device step of a
//! password sign-in, which must die with its login.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};

use crate::secrets::ct_eq;

const RANDOM_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
/// 128 bits of MAC: forging one is as hard as guessing a random id.
const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = RANDOM_LEN + EXPIRY_LEN + MAC_LEN;
/// base64url without padding of `TOKEN_LEN` bytes.
pub const TOKEN_CHARS: usize = (TOKEN_LEN * 4).div_ceil(3);
/// How long a used token's row outlives the token. The token's expiry is
/// judged by the redeeming instance's clock and the purge by the purging
/// one's: without a margin, a purge on a clock a few seconds ahead (another
/// instance, or this one before NTP steps it back) frees a token that a
/// clock behind still accepts, and it can be redeemed again. Clocks further
/// apart than this break more than challenges (sessions, OTP lives).
pub const USED_ROW_GRACE_S: i64 = 600;
/// Domain separation: a MAC made for another use of the key never matches.
const PURPOSE: &[u8] = b"device-login v1";

/// Why a token is refused. All of them answer `challenge_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a challenge token")]
    Malformed,
    #[error("the challenge token's MAC does not match")]
    BadMac,
    #[error("the challenge token expired")]
    Expired,
}

/// A token that checked out: what redemption needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedToken {
    /// SHA-256 of the token: the key of its single-use row.
    pub hash: Vec<u8>,
    pub expires_at: i64,
    /// The nonce the proof must carry (base64url of 32 bytes).
    pub nonce: String,
}

/// The two keys; built once at start-up.
pub struct ChallengeKeys {
    mac: hmac::Key,
    nonce: hmac::Key,
}

impl ChallengeKeys {
    pub fn new(mac_key: &[u8; 32], nonce_key: &[u8; 32]) -> Self {
        ChallengeKeys {
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key),
            nonce: hmac::Key::new(hmac::HMAC_SHA256, nonce_key),
        }
    }

    /// A new token for `device_id`: `(challenge_id, challenge)`.
    pub fn issue(&self, device_id: &str, expires_at: i64) -> (String, String) {
        let mut raw = [0u8; TOKEN_LEN];
        // The OS CSPRNG failing leaves nothing safe to do.
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut raw[..RANDOM_LEN])
            .expect("the OS random number generator failed");
        raw[RANDOM_LEN..RANDOM_LEN + EXPIRY_LEN].copy_from_slice(&expires_at.to_be_bytes());
        let tag = self.tag(&raw[..RANDOM_LEN + EXPIRY_LEN], device_id);
        raw[RANDOM_LEN + EXPIRY_LEN..].copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        let id = URL_SAFE_NO_PAD.encode(raw);
        let nonce = self.nonce_of(&id);
        (id, nonce)
    }

    /// Whether `id` looks like a token rather than a stored challenge's id.
    pub fn is_token(id: &str) -> bool {
        id.len() == TOKEN_CHARS
    }

    /// Checks a token presented with a proof signed by `device_id`.
    pub fn open(&self, id: &str, device_id: &str, now: i64) -> Result<OpenedToken, TokenError> {
        if !Self::is_token(id) {
            return Err(TokenError::Malformed);
        }
        let mut raw = [0u8; TOKEN_LEN];
        match URL_SAFE_NO_PAD.decode_slice(id, &mut raw) {
            Ok(TOKEN_LEN) => {}
            _ => return Err(TokenError::Malformed),
        }
        // Only the canonical encoding: one token, one single-use row.
        if URL_SAFE_NO_PAD.encode(raw) != id {
            return Err(TokenError::Malformed);
        }
        let signed = &raw[..RANDOM_LEN + EXPIRY_LEN];
        let tag = self.tag(signed, device_id);
        if !ct_eq(&tag.as_ref()[..MAC_LEN], &raw[RANDOM_LEN + EXPIRY_LEN..]) {
            return Err(TokenError::BadMac);
        }
        let mut expiry = [0u8; EXPIRY_LEN];
        expiry.copy_from_slice(&raw[RANDOM_LEN..RANDOM_LEN + EXPIRY_LEN]);
        let expires_at = i64::from_be_bytes(expiry);
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(OpenedToken {
            hash: digest::digest(&digest::SHA256, id.as_bytes())
                .as_ref()
                .to_vec(),
            expires_at,
            nonce: self.nonce_of(id),
        })
    }

    fn tag(&self, signed: &[u8], device_id: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(PURPOSE);
        ctx.update(signed);
        ctx.update(device_id.as_bytes());
        ctx.sign()
    }

    fn nonce_of(&self, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.nonce, id.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ChallengeKeys {
        ChallengeKeys::new(&[1; 32], &[2; 32])
    }

    #[test]
    fn a_token_opens_for_its_device_until_it_expires() {
        let k = keys();
        let (id, nonce) = k.issue("devA", 1_000);
        assert_eq!(id.len(), TOKEN_CHARS);
        assert!(id.len() <= 64);
        assert!(crate::validate::server_id("challenge_id", &id).is_ok());
        let opened = k.open(&id, "devA", 999).unwrap();
        assert_eq!(opened.nonce, nonce);
        assert_eq!(opened.expires_at, 1_000);
        assert_eq!(URL_SAFE_NO_PAD.decode(&nonce).unwrap().len(), 32);
        assert_eq!(k.open(&id, "devA", 1_000), Err(TokenError::Expired));
        // Issued for A, presented with B's proof.
        assert_eq!(k.open(&id, "devB", 999), Err(TokenError::BadMac));
        // Another deployment's key.
        let other = ChallengeKeys::new(&[3; 32], &[2; 32]);
        assert_eq!(other.open(&id, "devA", 999), Err(TokenError::BadMac));
    }

    #[test]
    fn two_tokens_differ_and_their_nonces_too() {
        let k = keys();
        let (a, na) = k.issue("devA", 1_000);
        let (b, nb) = k.issue("devA", 1_000);
        assert_ne!(a, b);
        assert_ne!(na, nb);
    }

    #[test]
    fn tampered_truncated_and_forged_tokens_are_refused() {
        let k = keys();
        let (id, _) = k.issue("devA", 1_000);
        // Every single-character change, including the expiry's bytes.
        for i in 0..id.len() {
            let mut t = id.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert!(k.open(&t, "devA", 0).is_err(), "changed at {i}");
        }
        assert_eq!(
            k.open(&id[..id.len() - 1], "devA", 0),
            Err(TokenError::Malformed)
        );
        assert_eq!(k.open("", "devA", 0), Err(TokenError::Malformed));
        let forged = URL_SAFE_NO_PAD.encode([0u8; TOKEN_LEN]);
        assert_eq!(k.open(&forged, "devA", 0), Err(TokenError::BadMac));
        // A later expiry with the old MAC.
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        raw[RANDOM_LEN..RANDOM_LEN + EXPIRY_LEN].copy_from_slice(&i64::MAX.to_be_bytes());
        let extended = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(k.open(&extended, "devA", 2_000), Err(TokenError::BadMac));
        // Not base64url.
        let bad = "!".repeat(TOKEN_CHARS);
        assert_eq!(k.open(&bad, "devA", 0), Err(TokenError::Malformed));
    }
}
