//! Certificate chains, leaf first: each certificate's signature checked with
//! the next one's key (ring), up to a trusted key. Both platforms use it.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::AttestationError;

/// Content octets of the named-curve OIDs (RFC 5480).
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A public key trusted as the end of a chain, compared by its
/// SubjectPublicKeyInfo: a root re-issued with the same key (Google's RSA
/// root exists as several certificates) stays trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// Where it came from, for logs (`google-rsa`, a file name).
    pub name: String,
}

impl TrustedKey {
    /// The key of every certificate in a PEM text.
    pub fn from_pem(pem: &str, name: &str) -> Result<Vec<TrustedKey>, String> {
        let ders = pem_certificates(pem)?;
        if ders.is_empty() {
            return Err(format!("{name}: no CERTIFICATE block"));
        }
        ders.iter()
            .map(|der| {
                let (_, cert) = X509Certificate::from_der(der)
                    .map_err(|e| format!("{name}: a certificate does not parse: {e}"))?;
                Ok(TrustedKey {
                    spki: cert.public_key().raw.to_vec(),
                    name: name.to_owned(),
                })
            })
            .collect()
    }
}

/// The DER of every `CERTIFICATE` block in a PEM text.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (line, &mut body) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b)) => {
                out.push(
                    STANDARD
                        .decode(b.as_bytes())
                        .map_err(|e| format!("bad base64 in a certificate: {e}"))?,
                );
                body = None;
            }
            (l, Some(b)) => b.push_str(l),
            _ => {}
        }
    }
    if body.is_some() {
        return Err("a CERTIFICATE block has no END line".into());
    }
    Ok(out)
}

/// Parses every certificate of a chain; the whole DER must be one
/// certificate (no trailing bytes).
pub fn parse_all(ders: &[Vec<u8>]) -> Result<Vec<X509Certificate<'_>>, AttestationError> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| match X509Certificate::from_der(der) {
            Ok(([], cert)) => Ok(cert),
            _ => Err(AttestationError::CertificateUnparsable(i)),
        })
        .collect()
}

/// Verifies `cert`'s signature with `issuer`'s key.
pub fn signed_by(cert: &X509Certificate<'_>, issuer: &SubjectPublicKeyInfo<'_>) -> bool {
    let Some(alg) = algorithm(cert, issuer) else {
        return false;
    };
    let key = UnparsedPublicKey::new(alg, issuer.subject_public_key.data.as_ref());
    key.verify(
        cert.tbs_certificate.as_ref(),
        cert.signature_value.data.as_ref(),
    )
    .is_ok()
}

/// ring's algorithm for the certificate's signature algorithm and the
/// issuer's key type; `None` for anything else (SHA-1, unknown curves).
fn algorithm(
    cert: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> Option<&'static dyn VerificationAlgorithm> {
    let sig = cert.signature_algorithm.algorithm.to_id_string();
    let key = issuer.algorithm.algorithm.to_id_string();
    let curve = issuer.algorithm.parameters.as_ref().map(|p| p.data);
    match (sig.as_str(), key.as_str(), curve) {
        // sha{256,384,512}WithRSAEncryption over an rsaEncryption key.
        ("1.2.840.113549.1.1.11", "1.2.840.113549.1.1.1", _) => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA256)
        }
        ("1.2.840.113549.1.1.12", "1.2.840.113549.1.1.1", _) => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA384)
        }
        ("1.2.840.113549.1.1.13", "1.2.840.113549.1.1.1", _) => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA512)
        }
        // ecdsa-with-SHA256 / SHA384 over an id-ecPublicKey on P-256 or P-384.
        ("1.2.840.10045.4.3.2", "1.2.840.10045.2.1", Some(P256)) => {
            Some(&signature::ECDSA_P256_SHA256_ASN1)
        }
        ("1.2.840.10045.4.3.2", "1.2.840.10045.2.1", Some(P384)) => {
            Some(&signature::ECDSA_P384_SHA256_ASN1)
        }
        ("1.2.840.10045.4.3.3", "1.2.840.10045.2.1", Some(P256)) => {
            Some(&signature::ECDSA_P256_SHA384_ASN1)
        }
        ("1.2.840.10045.4.3.3", "1.2.840.10045.2.1", Some(P384)) => {
            Some(&signature::ECDSA_P384_SHA384_ASN1)
        }
        _ => None,
    }
}

/// The uncompressed P-256 point of a key, if it is one.
pub fn p256_point(spki: &SubjectPublicKeyInfo<'_>) -> Option<Vec<u8>> {
    let is_ec = spki.algorithm.algorithm.to_id_string() == "1.2.840.10045.2.1";
    let curve = spki.algorithm.parameters.as_ref().map(|p| p.data);
    let point = spki.subject_public_key.data.as_ref();
    (is_ec && curve == Some(P256) && point.len() == 65 && point[0] == 4).then(|| point.to_vec())
}

/// How a verified chain ended.
pub struct Anchored {
    /// How many certificates of the chain are below the trusted key (the
    /// last one given, when it carries the trusted key, is not among them).
    pub below_anchor: usize,
}

/// Checks each certificate's signature by the next and that the chain ends
/// at a trusted key: either the last certificate carries one (it is the
/// root, its own signature and dates then do not matter: the key is what is
/// trusted), or a trusted key signed the last certificate (the root was
/// left out).
pub fn verify_chain(
    certs: &[X509Certificate<'_>],
    trusted: &[TrustedKey],
) -> Result<Anchored, AttestationError> {
    for (i, pair) in certs.windows(2).enumerate() {
        if !signed_by(&pair[0], pair[1].public_key()) {
            return Err(AttestationError::BadSignature(i));
        }
    }
    let last = certs.last().ok_or(AttestationError::EmptyChain)?;
    if trusted.iter().any(|t| t.spki == last.public_key().raw) {
        // A lone root vouches for nothing: something must be below it.
        if certs.len() < 2 {
            return Err(AttestationError::UntrustedRoot);
        }
        return Ok(Anchored {
            below_anchor: certs.len() - 1,
        });
    }
    for t in trusted {
        if let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&t.spki) {
            if signed_by(last, &spki) {
                return Ok(Anchored {
                    below_anchor: certs.len(),
                });
            }
        }
    }
    Err(AttestationError::UntrustedRoot)
}

/// Whether `now` is within the certificate's validity dates.
pub fn valid_at(cert: &X509Certificate<'_>, now: i64) -> bool {
    let v = cert.validity();
    v.not_before.timestamp() <= now && now <= v.not_after.timestamp()
}

/// The serial number as Google's status list writes it: lower-case hex
/// without leading zeros.
pub fn serial_hex(cert: &X509Certificate<'_>) -> String {
    cert.tbs_certificate.serial.to_str_radix(16)
}
