//! DER → JWS `r‖s` conversion, and compact JWS assembly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::error::DeviceTrustError;

/// Converts a DER ECDSA P-256 signature (as Android Keystore and the Secure
/// Enclave return it) to the fixed 64-byte `r‖s` of JWS ES256.
///
/// The parse is strict DER: non-minimal integers, long-form lengths,
/// trailing bytes, zero or out-of-range `r`/`s` are refused, so an invalid
/// DER signature never becomes a valid `r‖s`.
///
/// ```
/// # use devicetrust_core::der_to_jws_signature;
/// assert!(der_to_jws_signature(&[0x30, 0x00]).is_err());
/// ```
pub fn der_to_jws_signature(der: &[u8]) -> Result<[u8; 64], DeviceTrustError> {
    let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| DeviceTrustError::KeyStore {
        reason: "the key store returned a malformed signature".into(),
    })?;
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    Ok(out)
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `base64url(header).base64url(payload)`: the bytes the key signs.
pub(crate) fn signing_input(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

/// A JWK for an uncompressed SEC1 P-256 point.
pub(crate) fn jwk(public_key: &[u8]) -> Result<Value, DeviceTrustError> {
    if public_key.len() != 65 || public_key[0] != 0x04 {
        return Err(DeviceTrustError::KeyStore {
            reason: "the key store returned a public key that is not an uncompressed P-256 point"
                .into(),
        });
    }
    Ok(serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64(&public_key[1..33]),
        "y": b64(&public_key[33..]),
    }))
}

/// The RFC 7638 thumbprint of [`jwk`]`(public_key)`: SHA-256 of the
/// required members in lexicographic order, no white space, as raw bytes.
pub(crate) fn jwk_thumbprint(public_key: &[u8]) -> Result<[u8; 32], DeviceTrustError> {
    let jwk = jwk(public_key)?;
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default()
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
    Ok(out)
}

/// Checks a converted signature against the public key before it leaves the
/// phone: a misbehaving key store is caught here, with a clear error.
pub(crate) fn check(
    public_key: &[u8],
    input: &[u8],
    sig: &[u8; 64],
) -> Result<(), DeviceTrustError> {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public_key)
        .verify(input, sig)
        .map_err(|_| DeviceTrustError::KeyStore {
            reason: "the key store's signature does not match its public key".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_der() {
        assert!(der_to_jws_signature(&[]).is_err());
        assert!(der_to_jws_signature(&[0u8; 64]).is_err());
        // r = 0 is never valid.
        assert!(der_to_jws_signature(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]).is_err());
    }

    #[test]
    fn jwk_needs_an_uncompressed_point() {
        assert!(jwk(&[0x02; 33]).is_err());
        let mut p = vec![0x04];
        p.extend([1u8; 64]);
        let j = jwk(&p).unwrap();
        assert_eq!(j["x"], b64([1u8; 32]));
    }

    #[test]
    fn thumbprint_is_rfc_7638() {
        // Known answer, computed apart (Python's hashlib over the canonical
        // `{"crv":"P-256","kty":"EC","x":…,"y":…}` of x = 32×0x01, y = 32×0x02).
        let mut p = vec![0x04];
        p.extend([1u8; 32]);
        p.extend([2u8; 32]);
        let hex: String = jwk_thumbprint(&p)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "90e14ac6325d3aa243e46e18bb0f9cc477bae151b2c4a10efe1a15f3741f1a3d"
        );
        assert!(jwk_thumbprint(&[0x04; 10]).is_err());
        // The clientDataHash: SHA-256("challenge" ‖ thumbprint).
        let hash = crate::app_attest_client_data_hash(b"challenge".to_vec(), p).unwrap();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "9b6cde04e1b9f6f24b7ea937c13d5d4d845feff7813b47721cd8bb68d27dc6d6"
        );
    }
}
