//! Apple App Attest: the attestation object `DCAppAttestService.attestKey`
//! returns, verified in the order of Apple's "Validating apps that connect
//! to your server", each step a named check (an `AttestationError`).
//!
//! The App Attest key is not the device's signing key (that one lives in the
//! Secure Enclave and is the registered `jwk`): the attested app instance
//! vouches for the `jwk` through `clientDataHash` = SHA-256(challenge bytes ‖
//! RFC 7638 thumbprint of the `jwk`), the 32-byte thumbprint itself.

use ciborium::Value;
use ring::digest::{digest, SHA256};
use x509_parser::asn1_rs::{Any, Class, FromDer};
use x509_parser::certificate::X509Certificate;

use super::chain::{self, TrustedKey};
use super::AttestationError;

/// Apple's App Attestation Root CA (P-384, valid 2020 to 2045). Source:
/// https://www.apple.com/certificateauthority/Apple_App_Attestation_Root_CA.pem
/// (see roots/README.md for its fingerprint).
const APPLE_ROOT: &str = include_str!("roots/apple_app_attestation_root_ca.pem");

/// The credential certificate's nonce extension.
pub const NONCE_OID: &str = "1.2.840.113635.100.8.2";

/// `aaguid` of production and of development attestations.
pub const AAGUID_PRODUCTION: &[u8; 16] = b"appattest\0\0\0\0\0\0\0";
pub const AAGUID_DEVELOPMENT: &[u8; 16] = b"appattestdevelop";

/// The largest attestation object accepted (Apple's are about 5.5 KB).
pub const MAX_OBJECT: usize = 12 * 1024;

/// What the operator configured for iOS.
#[derive(Debug)]
pub struct Config {
    /// Apple's root, or a test root.
    pub roots: Vec<TrustedKey>,
    /// `--apple-app-id TEAMID.BUNDLE`; without it no App Attest
    /// attestation verifies.
    pub app_id: Option<String>,
    /// `--apple-app-attest-development`: accept `appattestdevelop`.
    pub development: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            roots: apple_roots(),
            app_id: None,
            development: false,
        }
    }
}

/// The built-in Apple root's key.
pub fn apple_roots() -> Vec<TrustedKey> {
    // Built-in data, tested below: a failure here is a build mistake.
    TrustedKey::from_pem(APPLE_ROOT, "apple-app-attestation").unwrap_or_default()
}

/// What a registration expects of the attestation.
pub struct Expected<'a> {
    /// The key identifier the app got from `generateKey`.
    pub key_id: &'a [u8],
    /// SHA-256(challenge bytes ‖ thumbprint of the `jwk`); Apple's sample
    /// uses other bytes, hence no fixed length.
    pub client_data_hash: Vec<u8>,
    pub now: i64,
}

/// The parts of `authData` the checks read.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    counter: u32,
    aaguid: &'a [u8],
    credential_id: &'a [u8],
}

fn parse_auth_data(data: &[u8]) -> Result<AuthData<'_>, AttestationError> {
    // rpIdHash 32, flags 1, signCount 4, aaguid 16, credentialIdLength 2,
    // credentialId, credentialPublicKey (COSE, not read: the certificate
    // carries the key).
    let bad = || AttestationError::AuthDataMalformed;
    if data.len() < 55 {
        return Err(bad());
    }
    let id_len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    let credential_id = data.get(55..55 + id_len).ok_or_else(bad)?;
    Ok(AuthData {
        rp_id_hash: &data[0..32],
        counter: u32::from_be_bytes([data[33], data[34], data[35], data[36]]),
        aaguid: &data[37..53],
        credential_id,
    })
}

/// The attestation object's parts.
struct Object {
    x5c: Vec<Vec<u8>>,
    auth_data: Vec<u8>,
}

fn parse_object(bytes: &[u8]) -> Result<Object, AttestationError> {
    let bad = || AttestationError::ObjectMalformed;
    if bytes.len() > MAX_OBJECT {
        return Err(bad());
    }
    let value: Value = ciborium::from_reader(bytes).map_err(|_| bad())?;
    let map = value.into_map().map_err(|_| bad())?;
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v.clone())
    };
    if field("fmt").and_then(|f| f.into_text().ok()).as_deref() != Some("apple-appattest") {
        return Err(AttestationError::WrongFormat);
    }
    let statement = field("attStmt")
        .and_then(|s| s.into_map().ok())
        .ok_or_else(bad)?;
    let x5c = statement
        .into_iter()
        .find(|(k, _)| k.as_text() == Some("x5c"))
        .and_then(|(_, v)| v.into_array().ok())
        .ok_or_else(bad)?
        .into_iter()
        .map(|c| c.into_bytes().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    let auth_data = field("authData")
        .and_then(|a| a.into_bytes().ok())
        .ok_or_else(bad)?;
    Ok(Object { x5c, auth_data })
}

/// The nonce in the credential certificate: `SEQUENCE { [1] EXPLICIT
/// OCTET STRING }`.
fn certificate_nonce(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == NONCE_OID)?;
    let (_, seq) = Any::from_der(ext.value).ok()?;
    let (_, tagged) = Any::from_der(seq.data).ok()?;
    if tagged.header.class() != Class::ContextSpecific || tagged.header.tag().0 != 1 {
        return None;
    }
    let (_, octets) = Any::from_der(tagged.data).ok()?;
    (octets.header.tag().0 == 4).then(|| octets.data.to_vec())
}

/// Verifies an App Attest attestation object; on success the attestation
/// proves a genuine instance of the configured app made the key whose
/// `key_id` is given, and vouched for `clientDataHash`.
pub fn verify(
    config: &Config,
    object: &[u8],
    expected: &Expected<'_>,
) -> Result<(), AttestationError> {
    let app_id = config
        .app_id
        .as_deref()
        .ok_or(AttestationError::AppleNotConfigured)?;
    let object = parse_object(object)?;
    if object.x5c.is_empty() {
        return Err(AttestationError::EmptyChain);
    }
    if object.x5c.len() > 4 {
        return Err(AttestationError::ChainTooLong);
    }
    // Step 1: the certificates chain to Apple's root, each within its dates.
    let certs = chain::parse_all(&object.x5c)?;
    let anchored = chain::verify_chain(&certs, &config.roots)?;
    for (i, cert) in certs.iter().enumerate().take(anchored.below_anchor) {
        if !chain::valid_at(cert, expected.now) {
            return Err(AttestationError::CertificateExpired(i));
        }
    }
    let credential_cert = &certs[0];
    // Steps 2-4: nonce = SHA-256(authData ‖ clientDataHash) is the one in
    // the credential certificate.
    let mut signed = object.auth_data.clone();
    signed.extend_from_slice(&expected.client_data_hash);
    let nonce = digest(&SHA256, &signed);
    if certificate_nonce(credential_cert).as_deref() != Some(nonce.as_ref()) {
        return Err(AttestationError::NonceMismatch);
    }
    // Step 5: the key identifier is SHA-256 of the certificate's key.
    let point =
        chain::p256_point(credential_cert.public_key()).ok_or(AttestationError::KeyIdMismatch)?;
    if digest(&SHA256, &point).as_ref() != expected.key_id {
        return Err(AttestationError::KeyIdMismatch);
    }
    let auth = parse_auth_data(&object.auth_data)?;
    // Step 6: the RP id hash is SHA-256 of TEAMID.BUNDLE.
    if auth.rp_id_hash != digest(&SHA256, app_id.as_bytes()).as_ref() {
        return Err(AttestationError::RpIdMismatch);
    }
    // Step 7: a new key has signed nothing yet.
    if auth.counter != 0 {
        return Err(AttestationError::CounterNotZero);
    }
    // Step 8: production, or development where the operator allows it.
    let aaguid_ok = auth.aaguid == AAGUID_PRODUCTION
        || (config.development && auth.aaguid == AAGUID_DEVELOPMENT);
    if !aaguid_ok {
        return Err(AttestationError::WrongAaguid);
    }
    // Step 9: the credential id is the key identifier.
    if auth.credential_id != expected.key_id {
        return Err(AttestationError::CredentialIdMismatch);
    }
    Ok(())
}

/// SHA-256(challenge ‖ RFC 7638 thumbprint), the thumbprint being SHA-256
/// of `{"crv":"P-256","kty":"EC","x":…,"y":…}` (members in that order, no
/// spaces) for the uncompressed point `public_key`.
pub fn client_data_hash(challenge: &[u8], public_key: &[u8]) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    if public_key.len() != 65 || public_key[0] != 4 {
        return None;
    }
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(&public_key[1..33]),
        URL_SAFE_NO_PAD.encode(&public_key[33..65])
    );
    let thumbprint = digest(&SHA256, canonical.as_bytes());
    let mut input = challenge.to_vec();
    input.extend_from_slice(thumbprint.as_ref());
    digest(&SHA256, &input).as_ref().try_into().ok()
}
