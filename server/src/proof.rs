//! Device proofs: compact ES256 JWS signed by the phone's key, checked with
//! ring. Registration proofs carry the new public key as a JWK; sign-in
//! proofs name the device in `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde::Deserialize;

use crate::secrets::ct_eq;

pub const TYP_REGISTER: &str = "devicetrust-register+jwt";
pub const TYP_LOGIN: &str = "devicetrust-login+jwt";

/// Longest proof accepted; real ones are about 600 bytes.
const MAX_PROOF_LEN: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// Not three base64url parts of JSON, or the wrong header.
    #[error("proof is malformed: {0}")]
    Malformed(&'static str),
    /// The JWK is not a valid P-256 public key (a client error: 400).
    #[error("public key is invalid: {0}")]
    InvalidKey(&'static str),
    #[error("proof claims do not match: {0}")]
    WrongClaims(&'static str),
    #[error("signature does not verify")]
    BadSignature,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    jwk: Option<Jwk>,
    /// Present only to refuse it: no extension is understood.
    crit: Option<serde_json::Value>,
}

/// A public P-256 key as JWK.
#[derive(Debug, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    /// Present only to refuse it: a private key must never be sent.
    d: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    aud: String,
    sub: String,
    nonce: String,
}

/// What the proof must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub rp_id: &'a str,
    pub user_id: &'a str,
    pub nonce: &'a str,
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub struct Jws<'a> {
    header: Header,
    signing_input: &'a [u8],
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    pub fn parse(compact: &'a str, typ: &str) -> Result<Self, ProofError> {
        if compact.len() > MAX_PROOF_LEN {
            return Err(ProofError::Malformed("too long"));
        }
        let mut parts = compact.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofError::Malformed("not a compact JWS"));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| ProofError::Malformed("not base64url"))
        };
        let header: Header = serde_json::from_slice(&decode(h)?)
            .map_err(|_| ProofError::Malformed("header is not the expected JSON"))?;
        if header.alg != "ES256" {
            return Err(ProofError::Malformed("alg must be ES256"));
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(ProofError::Malformed("wrong typ"));
        }
        if header.crit.is_some() {
            return Err(ProofError::Malformed("crit is not supported"));
        }
        let signature = decode(s)?;
        if signature.len() != 64 {
            return Err(ProofError::Malformed("signature must be 64-byte r||s"));
        }
        Ok(Jws {
            header,
            signing_input: &compact.as_bytes()[..h.len() + 1 + p.len()],
            payload: decode(p)?,
            signature,
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The embedded JWK as an uncompressed SEC1 point, validated.
    pub fn jwk_point(&self) -> Result<Vec<u8>, ProofError> {
        match &self.header.jwk {
            Some(jwk) => jwk_to_point(jwk),
            None => Err(ProofError::Malformed("jwk missing")),
        }
    }

    /// Checks the signature with `public_key` (uncompressed SEC1), then the claims.
    pub fn verify(&self, public_key: &[u8], expected: Expected<'_>) -> Result<(), ProofError> {
        if !verify_es256(public_key, self.signing_input, &self.signature) {
            return Err(ProofError::BadSignature);
        }
        let claims: Claims = serde_json::from_slice(&self.payload)
            .map_err(|_| ProofError::WrongClaims("payload is not the expected JSON"))?;
        if claims.aud != expected.rp_id {
            return Err(ProofError::WrongClaims("aud"));
        }
        // User ids are compared case-insensitively everywhere.
        if !claims.sub.eq_ignore_ascii_case(expected.user_id) {
            return Err(ProofError::WrongClaims("sub"));
        }
        if !ct_eq(claims.nonce.as_bytes(), expected.nonce.as_bytes()) {
            return Err(ProofError::WrongClaims("nonce"));
        }
        Ok(())
    }
}

/// ES256 over `message`: `signature` is the fixed 64-byte r‖s; high-S is
/// accepted because phones do not normalise S.
pub fn verify_es256(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(message, signature)
        .is_ok()
}

/// Validates a JWK as a P-256 point (right lengths, on the curve, not the
/// identity) and returns it as uncompressed SEC1 bytes.
pub fn jwk_to_point(jwk: &Jwk) -> Result<Vec<u8>, ProofError> {
    if jwk.kty != "EC" || jwk.crv != "P-256" {
        return Err(ProofError::InvalidKey("kty must be EC and crv P-256"));
    }
    if jwk.d.is_some() {
        return Err(ProofError::InvalidKey("a private key was sent"));
    }
    let x = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .map_err(|_| ProofError::InvalidKey("x is not base64url"))?;
    let y = URL_SAFE_NO_PAD
        .decode(&jwk.y)
        .map_err(|_| ProofError::InvalidKey("y is not base64url"))?;
    if x.len() != 32 || y.len() != 32 {
        return Err(ProofError::InvalidKey("x and y must be 32 bytes each"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    validate_point(&point)?;
    Ok(point)
}

/// An uncompressed SEC1 point that lies on P-256 and is not the identity.
/// ring has no stand-alone point check, so p256's arithmetic does it.
pub fn validate_point(sec1: &[u8]) -> Result<(), ProofError> {
    if sec1.len() != 65 || sec1[0] != 0x04 {
        return Err(ProofError::InvalidKey("not an uncompressed point"));
    }
    p256::PublicKey::from_sec1_bytes(sec1)
        .map(|_| ())
        .map_err(|_| ProofError::InvalidKey("not a point on P-256"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_wrong_shapes() {
        assert_eq!(
            Jws::parse("a.b", TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("not a compact JWS")
        );
        assert_eq!(
            Jws::parse("a.b.c.d", TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("not a compact JWS")
        );
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"devicetrust-login+jwt"}"#);
        assert_eq!(
            Jws::parse(&format!("{header}.e30."), TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("alg must be ES256")
        );
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"devicetrust-register+jwt"}"#);
        assert_eq!(
            Jws::parse(&format!("{header}.e30.AA"), TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("wrong typ")
        );
        let header = URL_SAFE_NO_PAD
            .encode(br#"{"alg":"ES256","typ":"devicetrust-login+jwt","crit":["x"]}"#);
        assert_eq!(
            Jws::parse(&format!("{header}.e30.AA"), TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("crit is not supported")
        );
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"devicetrust-login+jwt"}"#);
        assert_eq!(
            Jws::parse(&format!("{header}.e30.AAAA"), TYP_LOGIN).unwrap_err(),
            ProofError::Malformed("signature must be 64-byte r||s")
        );
    }

    #[test]
    fn jwk_refuses_private_keys_and_wrong_curves() {
        let jwk = |kty: &str, crv: &str, d: Option<&str>| Jwk {
            kty: kty.into(),
            crv: crv.into(),
            x: URL_SAFE_NO_PAD.encode([1u8; 32]),
            y: URL_SAFE_NO_PAD.encode([2u8; 32]),
            d: d.map(|v| serde_json::Value::String(v.into())),
        };
        assert!(matches!(
            jwk_to_point(&jwk("RSA", "P-256", None)),
            Err(ProofError::InvalidKey(_))
        ));
        assert!(matches!(
            jwk_to_point(&jwk("EC", "P-384", None)),
            Err(ProofError::InvalidKey(_))
        ));
        assert!(matches!(
            jwk_to_point(&jwk("EC", "P-256", Some("x"))),
            Err(ProofError::InvalidKey(_))
        ));
        // (1, 2) is not on the curve.
        assert_eq!(
            jwk_to_point(&jwk("EC", "P-256", None)),
            Err(ProofError::InvalidKey("not a point on P-256"))
        );
    }
}
