//! Synthetic Android Key Attestation chains for end-to-end tests: a test
//! root (passed to the server as an extra root), an intermediate, and a leaf
//! for the device's key carrying a KeyDescription.

use devicetrust_server::attestation::android::encode::Description;
use devicetrust_server::attestation::chain::TrustedKey;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};
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
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, "Android Keystore Key");
        p.custom_extensions.push(CustomExtension::from_oid_content(
            KEY_DESCRIPTION,
            description.der(),
        ));
        let leaf = p
            .signed_by(&SubjectKey(key.public_point()), &self.intermediate)
            .expect("leaf");
        json!({
            "format": "android-key",
            "certificate_chain": [b64(leaf.der()), b64(&self.intermediate_der), b64(&self.root_der)],
        })
    }
}
