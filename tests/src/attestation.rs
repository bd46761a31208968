//! Synthetic Android Key Attestation chains for end-to-end tests: a test
//! root (passed to the server as an extra root), an intermediate, and a leaf
//! for the device's key carrying a KeyDescription.

use devicetrust_server::attestation::android::encode::{self, Description};
use devicetrust_server::attestation::chain::TrustedKey;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};
use ring::digest::{digest, SHA256};
use serde_json::{json, Value};

use crate::{b64, DeviceKey};

const KEY_DESCRIPTION: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17];

/// A device key's public half, as rcgen wants a subject key.
struct SubjectKey(Vec<u8>);

impl PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// A test attestation CA: root and intermediate.
pub struct TestAttestationCa {
    root_der: Vec<u8>,
    root_spki: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: Issuer<'static, KeyPair>,
}

impl Default for TestAttestationCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestAttestationCa {
    pub fn new() -> Self {
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        };
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let root_params = ca("Test Attestation Root");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_spki = root_key.subject_public_key_info();
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let inter_params = ca("Test Attestation Intermediate");
        let inter = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        TestAttestationCa {
            root_der: root.der().to_vec(),
            root_spki,
            intermediate_der: inter.der().to_vec(),
            intermediate: Issuer::new(inter_params, inter_key),
        }
    }

    /// The root as the server trusts it.
    pub fn trusted_key(&self) -> TrustedKey {
        TrustedKey {
            spki: self.root_spki.clone(),
            name: "test-root".into(),
        }
    }

    /// `{"format": "android-key", "certificate_chain": [...]}` for `key`,
    /// its KeyDescription `description`.
    pub fn android(&self, key: &DeviceKey, description: &Description) -> Value {
        let chain = self.android_chain(&key.public_point(), description);
        json!({
            "format": "android-key",
            "certificate_chain": chain.iter().map(b64).collect::<Vec<_>>(),
        })
    }

    /// The chain, DER, leaf first (leaf, intermediate, root), for the
    /// uncompressed P-256 point `public_point`: what an Android key store
    /// returns from `getCertificateChain`.
    pub fn android_chain(&self, public_point: &[u8], description: &Description) -> Vec<Vec<u8>> {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, "Android Keystore Key");
        p.custom_extensions.push(CustomExtension::from_oid_content(
            KEY_DESCRIPTION,
            description.der(),
        ));
        let leaf = p
            .signed_by(&SubjectKey(public_point.to_vec()), &self.intermediate)
            .expect("leaf");
        vec![
            leaf.der().to_vec(),
            self.intermediate_der.clone(),
            self.root_der.clone(),
        ]
    }

    /// `{"format": "apple-appattest", "key_id", "attestation_object"}`: a
    /// fresh App Attest key of the app `app_id`, vouching for `key` (the
    /// Secure Enclave key) through `clientDataHash` = SHA-256(challenge ‖
    /// RFC 7638 thumbprint of its JWK), computed here from the JWK itself.
    pub fn apple(&self, key: &DeviceKey, challenge: &[u8], app_id: &str) -> Value {
        let jwk = key.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().expect("x"),
            jwk["y"].as_str().expect("y")
        );
        let thumbprint = digest(&SHA256, canonical.as_bytes());
        let client_data_hash = digest(&SHA256, &[challenge, thumbprint.as_ref()].concat());
        let (key_id, bytes) = self.apple_object(client_data_hash.as_ref(), app_id);
        json!({
            "format": "apple-appattest",
            "key_id": b64(&key_id),
            "attestation_object": b64(&bytes),
        })
    }

    /// `(key_id, attestation object)` of a fresh App Attest key of the app
    /// `app_id`, attesting with `client_data_hash` as an iOS app's
    /// `attestKey(_:clientDataHash:)` does.
    pub fn apple_object(&self, client_data_hash: &[u8], app_id: &str) -> (Vec<u8>, Vec<u8>) {
        let attest_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let key_id = digest(&SHA256, attest_key.public_key_raw())
            .as_ref()
            .to_vec();
        let mut auth = digest(&SHA256, app_id.as_bytes()).as_ref().to_vec();
        auth.push(0x40); // attested credential data
        auth.extend(0u32.to_be_bytes());
        auth.extend(b"appattest\0\0\0\0\0\0\0");
        auth.extend((key_id.len() as u16).to_be_bytes());
        auth.extend(&key_id);
        auth.push(0xa0); // the COSE key, not read by the server
        let nonce = digest(&SHA256, &[auth.as_slice(), client_data_hash].concat());
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 2, 840, 113635, 100, 8, 2],
            encode::sequence(&[encode::explicit(1, encode::octets(nonce.as_ref()))]),
        ));
        let leaf = p.signed_by(&attest_key, &self.intermediate).expect("leaf");
        let object = ciborium::Value::Map(vec![
            ("fmt".into(), "apple-appattest".into()),
            (
                "attStmt".into(),
                ciborium::Value::Map(vec![
                    (
                        "x5c".into(),
                        ciborium::Value::Array(vec![
                            ciborium::Value::Bytes(leaf.der().to_vec()),
                            ciborium::Value::Bytes(self.intermediate_der.clone()),
                        ]),
                    ),
                    ("receipt".into(), ciborium::Value::Bytes(Vec::new())),
                ]),
            ),
            ("authData".into(), ciborium::Value::Bytes(auth)),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&object, &mut bytes).expect("cbor");
        (key_id, bytes)
    }
}
