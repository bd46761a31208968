//! Synthetic chains (a test root, an intermediate, a leaf with a
//! KeyDescription encoded here) for every check, and the real chains and
//! App Attest object published by Google and Apple, checked offline.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::digest::{digest, SHA256};

use super::android::encode::Description;
use super::android::{self, StatusList};
use super::apple;
use super::chain::{self, TrustedKey};
use super::*;

/// 2026-09-15, inside the synthetic certificates' dates.
const NOW: i64 = 1_789_430_400;
const CHALLENGE: &[u8] = b"registration-challenge-32-bytes!";
const KEY_DESCRIPTION: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17];

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key")
}

fn ca_params(name: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.serial_number = Some(SerialNumber::from(serial));
    p
}

/// A test PKI: root → intermediate → leaf.
struct Pki {
    root_der: Vec<u8>,
    root_key_spki: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        Self::with_intermediate(|_| {})
    }

    fn with_intermediate(tweak: impl FnOnce(&mut CertificateParams)) -> Self {
        let root_key = key();
        let root_params = ca_params("Test Attestation Root", 1);
        let root = root_params.self_signed(&root_key).expect("root");
        let root_der = root.der().to_vec();
        let root_key_spki = {
            use rcgen::PublicKeyData;
            root_key.subject_public_key_info()
        };
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_key = key();
        let mut inter_params = ca_params("Test Attestation Intermediate", 0x1234_5678_9abc);
        tweak(&mut inter_params);
        let inter = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        Pki {
            root_der,
            root_key_spki,
            intermediate_der: inter.der().to_vec(),
            intermediate: Issuer::new(inter_params, inter_key),
        }
    }

    fn trusted(&self) -> Vec<TrustedKey> {
        vec![TrustedKey {
            spki: self.root_key_spki.clone(),
            name: "test".into(),
        }]
    }

    /// A leaf for `subject` carrying `description`, and the chain with the
    /// root included.
    fn chain(&self, subject: &KeyPair, description: &Description) -> Vec<Vec<u8>> {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, "Android Keystore Key");
        p.custom_extensions.push(CustomExtension::from_oid_content(
            KEY_DESCRIPTION,
            description.der(),
        ));
        let leaf = p.signed_by(subject, &self.intermediate).expect("leaf");
        vec![
            leaf.der().to_vec(),
            self.intermediate_der.clone(),
            self.root_der.clone(),
        ]
    }
}

fn config(pki: &Pki) -> android::Config {
    android::Config {
        roots: pki.trusted(),
        ..android::Config::default()
    }
}

fn expected<'a>(public_key: &'a [u8]) -> android::Expected<'a> {
    android::Expected {
        challenge: CHALLENGE,
        public_key,
        user_auth_required: true,
        now: NOW,
    }
}

/// Builds a chain for `description` and verifies it for the leaf's key.
fn check(description: Description) -> Result<android::Verified, AttestationError> {
    let pki = Pki::new();
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &description);
    android::verify(&config(&pki), &ders, &expected(leaf_key.public_key_raw()))
}

#[test]
fn a_valid_tee_chain_passes() {
    let v = check(Description::tee(CHALLENGE)).expect("valid");
    assert_eq!(v.security_level, SecurityLevel::Tee);
    assert_eq!(v.description.attestation_version, 300);
}

#[test]
fn a_valid_strongbox_chain_passes() {
    let mut d = Description::tee(CHALLENGE);
    d.attestation_level = 2;
    d.keymint_level = 2;
    let v = check(d).expect("valid");
    assert_eq!(v.security_level, SecurityLevel::Strongbox);
}

#[test]
fn every_attestation_version_from_3_to_400_parses() {
    for version in [3, 4, 100, 200, 300, 400] {
        let mut d = Description::tee(CHALLENGE);
        d.version = version;
        let v = check(d).expect("valid");
        assert_eq!(v.description.attestation_version, version);
        assert_eq!(v.description.keymint_version, version);
    }
}

#[test]
fn a_chain_without_its_root_passes() {
    let pki = Pki::new();
    let leaf_key = key();
    let mut ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    ders.pop();
    android::verify(&config(&pki), &ders, &expected(leaf_key.public_key_raw()))
        .expect("root left out");
}

#[test]
fn an_untrusted_root_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    let err =
        android::verify(&config(&other), &ders, &expected(leaf_key.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::UntrustedRoot);
    // Google's roots do not vouch for a test chain either.
    let err = android::verify(
        &android::Config::google(),
        &ders,
        &expected(leaf_key.public_key_raw()),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "untrusted_root");
}

#[test]
fn a_root_alone_is_refused() {
    let pki = Pki::new();
    let err =
        android::verify_chain_and_parse(&config(&pki), std::slice::from_ref(&pki.root_der), NOW)
            .unwrap_err();
    assert_eq!(err, AttestationError::UntrustedRoot);
}

#[test]
fn a_chain_for_another_key_is_refused() {
    let pki = Pki::new();
    let leaf_key = key();
    let registered = key();
    let ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    let err =
        android::verify(&config(&pki), &ders, &expected(registered.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::KeyMismatch);
}

#[test]
fn a_wrong_challenge_is_refused() {
    let err = check(Description::tee(b"another challenge")).unwrap_err();
    assert_eq!(err, AttestationError::ChallengeMismatch);
}

#[test]
fn a_software_level_is_refused() {
    let mut d = Description::tee(CHALLENGE);
    d.attestation_level = 0;
    assert_eq!(check(d).unwrap_err(), AttestationError::SoftwareLevel);
    let mut d = Description::tee(CHALLENGE);
    d.keymint_level = 0;
    assert_eq!(check(d).unwrap_err(), AttestationError::SoftwareLevel);
}

#[test]
fn a_wrong_purpose_is_refused() {
    let mut d = Description::tee(CHALLENGE);
    d.purposes = vec![0, 1];
    assert_eq!(check(d).unwrap_err(), AttestationError::WrongPurpose);
    let mut d = Description::tee(CHALLENGE);
    d.purposes = vec![2, 6];
    assert_eq!(check(d).unwrap_err(), AttestationError::WrongPurpose);
    let mut d = Description::tee(CHALLENGE);
    d.purposes = vec![2, 3];
    check(d).expect("sign and verify");
}

#[test]
fn a_wrong_origin_is_refused() {
    let mut d = Description::tee(CHALLENGE);
    d.origin = 2; // IMPORTED
    assert_eq!(check(d).unwrap_err(), AttestationError::WrongOrigin);
}

#[test]
fn all_applications_is_refused() {
    let mut d = Description::tee(CHALLENGE);
    d.all_applications = true;
    assert_eq!(check(d).unwrap_err(), AttestationError::AllApplications);
}

#[test]
fn no_user_authentication_is_refused_unless_none_was_claimed() {
    let mut d = Description::tee(CHALLENGE);
    d.no_auth_required = true;
    d.user_auth_type = None;
    assert_eq!(check(d.clone()).unwrap_err(), AttestationError::NoUserAuth);
    let pki = Pki::new();
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &d);
    let mut e = expected(leaf_key.public_key_raw());
    e.user_auth_required = false;
    android::verify(&config(&pki), &ders, &e).expect("user_verification none");
}

#[test]
fn a_user_auth_type_of_none_gates_nothing() {
    // Present but NONE (0): not a biometric or password gate.
    let mut d = Description::tee(CHALLENGE);
    d.user_auth_type = Some(0);
    assert_eq!(check(d).unwrap_err(), AttestationError::NoUserAuth);
    // Password (1) or biometric (2) alone is a gate.
    for t in [1, 2, 3] {
        let mut d = Description::tee(CHALLENGE);
        d.user_auth_type = Some(t);
        check(d).unwrap_or_else(|e| panic!("userAuthType {t}: {e:?}"));
    }
}

#[test]
fn a_claimed_strongbox_attested_as_tee_is_refused() {
    let v = check(Description::tee(CHALLENGE)).expect("valid");
    assert!(matches_claim(v.security_level, "tee"));
    assert!(!matches_claim(v.security_level, "strongbox"));
    assert!(!matches_claim(v.security_level, "software"));
    assert!(matches_claim(SecurityLevel::Strongbox, "strongbox"));
    assert!(matches_claim(
        SecurityLevel::SecureEnclave,
        "secure_enclave"
    ));
}

#[test]
fn an_expired_intermediate_is_refused() {
    let pki = Pki::with_intermediate(|p| {
        p.not_after = rcgen::date_time_ymd(2025, 1, 1);
    });
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    let err =
        android::verify(&config(&pki), &ders, &expected(leaf_key.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::CertificateExpired(1));
}

#[test]
fn a_bad_signature_is_refused() {
    let pki = Pki::new();
    let leaf_key = key();
    let mut ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    // The signature is the last bytes of the DER (an ECDSA INTEGER).
    let last = ders[0].len() - 1;
    ders[0][last] ^= 0x01;
    let err =
        android::verify(&config(&pki), &ders, &expected(leaf_key.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::BadSignature(0));
}

#[test]
fn a_revoked_serial_is_refused() {
    let pki = Pki::new();
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    let status = StatusList::from_json(
        r#"{"entries": {"123456789abc": {"status": "REVOKED", "reason": "KEY_COMPROMISE"}}}"#,
    )
    .expect("list");
    let cfg = android::Config {
        status: Some(status),
        ..config(&pki)
    };
    let err = android::verify(&cfg, &ders, &expected(leaf_key.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::Revoked(1, "REVOKED".into()));
}

#[test]
fn the_status_list_is_reread_when_the_file_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("status.json");
    std::fs::write(&path, r#"{"entries": {}}"#).expect("write");
    let list = StatusList::load(&path).expect("load");
    assert_eq!(list.status("abc"), None);
    // A later modification time, as a refresh by `mv` gives.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let tmp = dir.path().join("status.json.new");
    std::fs::write(
        &tmp,
        r#"{"entries": {"0ABC": {"status": "SUSPENDED", "reason": "SOFTWARE_FLAW"}}}"#,
    )
    .expect("write");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    std::fs::rename(&tmp, &path).expect("rename");
    assert_eq!(list.status("abc").as_deref(), Some("SUSPENDED"));
    // A broken refresh keeps the last good list.
    std::fs::write(&path, "{not json").expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(later + std::time::Duration::from_secs(5))
        .expect("mtime");
    assert_eq!(list.status("abc").as_deref(), Some("SUSPENDED"));
    assert!(StatusList::load(&dir.path().join("missing.json")).is_err());
}

#[test]
fn googles_published_status_list_parses() {
    // The format of https://android.googleapis.com/attestation/status
    // (sample from google/android-key-attestation's test resources).
    let list = StatusList::from_json(
        r#"{"entries": {
            "6681152659205225093": {"status": "REVOKED", "reason": "KEY_COMPROMISE"},
            "cc66e9a93713b6e643b26c15879786f7": {"status": "SUSPENDED", "reason": "KEY_COMPROMISE", "comment": "Entry for testing only"}
        }}"#,
    )
    .expect("list");
    assert_eq!(
        list.status("6681152659205225093").as_deref(),
        Some("REVOKED")
    );
    assert_eq!(
        list.status("cc66e9a93713b6e643b26c15879786f7").as_deref(),
        Some("SUSPENDED")
    );
    assert_eq!(list.status("1"), None);
}

fn with_package(package: Option<&str>, digest: Option<Vec<u8>>) -> Result<(), AttestationError> {
    let pki = Pki::new();
    let leaf_key = key();
    let ders = pki.chain(&leaf_key, &Description::tee(CHALLENGE));
    let cfg = android::Config {
        package: package.map(str::to_owned),
        signing_cert_sha256: digest.into_iter().collect(),
        ..config(&pki)
    };
    android::verify(&cfg, &ders, &expected(leaf_key.public_key_raw())).map(|_| ())
}

#[test]
fn the_configured_package_and_signing_certificate_pass() {
    with_package(Some("com.bank.app"), Some(vec![0xab; 32])).expect("configured app");
}

#[test]
fn a_wrong_package_is_refused() {
    assert_eq!(
        with_package(Some("com.evil.app"), None).unwrap_err(),
        AttestationError::WrongPackage
    );
}

#[test]
fn a_wrong_signing_certificate_is_refused() {
    assert_eq!(
        with_package(Some("com.bank.app"), Some(vec![0xcd; 32])).unwrap_err(),
        AttestationError::WrongSigningCert
    );
}

#[test]
fn a_key_description_above_the_leaf_is_refused() {
    // An attested key used as a CA for a leaf of its own making.
    let pki = Pki::new();
    let attested_key = key();
    let genuine = pki.chain(&attested_key, &Description::tee(CHALLENGE));
    let forged_key = key();
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.custom_extensions.push(CustomExtension::from_oid_content(
        KEY_DESCRIPTION,
        Description::tee(CHALLENGE).der(),
    ));
    let issuer_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    let issuer = Issuer::new(issuer_params, attested_key);
    let forged = p.signed_by(&forged_key, &issuer).expect("forged");
    let mut ders = vec![forged.der().to_vec()];
    ders.extend(genuine);
    let err =
        android::verify(&config(&pki), &ders, &expected(forged_key.public_key_raw())).unwrap_err();
    assert_eq!(err, AttestationError::KeyDescriptionNotInLeaf(1));
}

#[test]
fn garbage_is_refused_without_panicking() {
    let pki = Pki::new();
    let leaf_key = key();
    let e = expected(leaf_key.public_key_raw());
    let cfg = config(&pki);
    assert_eq!(
        android::verify(&cfg, &[vec![0x30, 0x03, 0x02, 0x01]], &e).unwrap_err(),
        AttestationError::CertificateUnparsable(0)
    );
    assert_eq!(
        android::verify(&cfg, &[], &e).unwrap_err(),
        AttestationError::EmptyChain
    );
    for cut in [0, 1, 5, 20] {
        let d = Description::tee(CHALLENGE).der();
        assert!(android::parse_key_description(&d[..d.len().saturating_sub(cut + 1)]).is_err());
    }
}

#[test]
fn the_built_in_roots_load() {
    let google = android::google_roots();
    assert_eq!(google.len(), 2, "Google's RSA and EC roots");
    assert_eq!(apple::apple_roots().len(), 1);
    let fingerprint = |pem: &str| {
        let der = chain::pem_certificates(pem).expect("pem").remove(0);
        hex(digest(&SHA256, &der).as_ref())
    };
    // The fingerprints Google and Apple publish (roots/README.md).
    assert_eq!(
        fingerprint(include_str!(
            "roots/google_hardware_attestation_root_rsa.pem"
        )),
        "cedb1cb6dc896ae5ec797348bce9286753c2b38ee71ce0fbe34a9a1248800dfc"
    );
    assert_eq!(
        fingerprint(include_str!("roots/google_key_attestation_ca1_ec.pem")),
        "6d9db4ce6c5c0b293166d08986e05774a8776ceb525d9e4329520de12ba4bcc0"
    );
    assert_eq!(
        fingerprint(include_str!("roots/apple_app_attestation_root_ca.pem")),
        "1cb9823ba28ba6ad2d33a006941de2ae4f513ef1d4e831b9f7e0fa7b6242c932"
    );
}

#[test]
fn the_request_decodes_and_refuses_malformed_fields() {
    let parse = |v: serde_json::Value| serde_json::from_value::<AttestationRequest>(v);
    let a = parse(serde_json::json!({"format": "android-key", "certificate_chain": ["AAEC"]}))
        .expect("android");
    assert!(matches!(a.decode(), Ok(Decoded::Android(d)) if d == vec![vec![0, 1, 2]]));
    assert!(parse(
        serde_json::json!({"format": "android-key", "certificate_chain": ["AA"], "x": 1})
    )
    .is_err());
    assert!(parse(serde_json::json!({"format": "tpm", "certificate_chain": []})).is_err());
    let empty = parse(serde_json::json!({"format": "android-key", "certificate_chain": []}))
        .expect("shape");
    assert!(empty.decode().is_err());
    let bad = parse(serde_json::json!({"format": "android-key", "certificate_chain": ["***"]}))
        .expect("shape");
    assert!(bad.decode().is_err());
    let short = parse(serde_json::json!({"format": "apple-appattest", "key_id": "AAEC", "attestation_object": "AAEC"}))
        .expect("shape");
    assert!(short.decode().is_err());
}

// ---------- real chains published by Google ----------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A chain from github.com/android/keyattestation's testdata, with Google's
/// own decoding of its KeyDescription.
fn real(name: &str) -> (Vec<Vec<u8>>, serde_json::Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/attestation/");
    let pem = std::fs::read_to_string(format!("{dir}{name}.pem")).expect("pem");
    let json = std::fs::read_to_string(format!("{dir}{name}.json")).expect("json");
    // Some of Google's files open with a `//` comment line.
    let json: String = json
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        chain::pem_certificates(&pem).expect("certificates"),
        serde_json::from_str(&json).expect("json"),
    )
}

fn check_real(name: &str, at: i64, level: u64) {
    let (ders, json) = real(name);
    let (d, leaf_key) = android::verify_chain_and_parse(&android::Config::google(), &ders, at)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let challenge = STANDARD
        .decode(json["attestationChallenge"].as_str().expect("challenge"))
        .expect("base64");
    assert_eq!(d.challenge, challenge, "{name}");
    assert_eq!(
        d.attestation_version.to_string(),
        json["attestationVersion"].as_str().expect("version"),
        "{name}"
    );
    assert_eq!(d.attestation_security_level, level, "{name}");
    assert_eq!(d.keymint_security_level, level, "{name}");
    assert_eq!(d.hardware.origin, Some(android::ORIGIN_GENERATED), "{name}");
    assert!(
        d.hardware.purposes.contains(&android::PURPOSE_SIGN),
        "{name}"
    );
    assert!(
        d.hardware.no_auth_required,
        "{name}: Google's samples need no auth"
    );
    let app = android::parse_application_id(
        d.software
            .attestation_application_id
            .as_ref()
            .expect("application id"),
    )
    .expect("application id parses");
    let digest = STANDARD
        .decode(
            json["softwareEnforced"]["attestationApplicationId"]["signatures"][0]
                .as_str()
                .expect("signature"),
        )
        .expect("base64");
    assert_eq!(app.signature_digests, vec![digest], "{name}");
    assert_eq!(leaf_key.len(), 65);

    // The whole policy with the chain's own challenge and key: everything
    // passes but user authentication, which Google's sample keys lack.
    let cfg = android::Config::google();
    let e = android::Expected {
        challenge: &challenge,
        public_key: &leaf_key,
        user_auth_required: false,
        now: at,
    };
    android::verify(&cfg, &ders, &e).unwrap_or_else(|e| panic!("{name}: {e}"));
    let e = android::Expected {
        user_auth_required: true,
        ..e
    };
    assert_eq!(
        android::verify(&cfg, &ders, &e).unwrap_err(),
        AttestationError::NoUserAuth
    );
}

#[test]
fn a_real_tee_chain_to_the_ec_root_verifies() {
    // Pixel (tegu), Android 16, KeyMint 4 (attestation v400), remotely
    // provisioned, under "Key Attestation CA1"; 2026-03-01.
    check_real("tegu_sdk36_TEE_EC_2026_ROOT", 1_772_323_200, 1);
}

#[test]
fn a_real_strongbox_chain_to_the_rsa_root_verifies() {
    // Pixel 9 Pro (caiman), StrongBox, attestation v300, remotely
    // provisioned, under the RSA root; 2025-09-30.
    check_real("caiman_sdk36_SB_EC_RKP", 1_759_190_400, 2);
}

#[test]
fn a_real_factory_provisioned_v3_chain_verifies() {
    // Pixel 3 (blueline), Android 9, Keymaster 4 (attestation v3), a factory
    // key under the 2016 copy of the RSA root; 2019-01-01.
    check_real("blueline_sdk28_TEE_EC_NONE", 1_546_300_800, 1);
}

#[test]
fn a_real_remotely_provisioned_chain_expires() {
    // Its provisioned intermediate lived 9 days.
    let (ders, _) = real("caiman_sdk36_SB_EC_RKP");
    let err = android::verify_chain_and_parse(&android::Config::google(), &ders, NOW).unwrap_err();
    assert!(
        matches!(err, AttestationError::CertificateExpired(_)),
        "{err:?}"
    );
}

#[test]
fn a_real_chain_with_a_revoked_serial_is_refused() {
    let (ders, _) = real("tegu_sdk36_TEE_EC_2026_ROOT");
    let serial = chain::serial_hex(&chain::parse_all(&ders[1..2]).expect("parse")[0]);
    let cfg = android::Config {
        status: Some(
            StatusList::from_json(&format!(
                r#"{{"entries": {{"{serial}": {{"status": "SUSPENDED"}}}}}}"#
            ))
            .expect("list"),
        ),
        ..android::Config::google()
    };
    let err = android::verify_chain_and_parse(&cfg, &ders, 1_772_323_200).unwrap_err();
    assert_eq!(err, AttestationError::Revoked(1, "SUSPENDED".into()));
}

// ---------- Apple App Attest ----------

/// Apple's sample attestation object from "Attestation Object Validation
/// Guide" (developer.apple.com), as nl-wallet's apple_app_attest keeps it.
#[test]
fn apples_published_attestation_object_verifies() {
    let b64 = include_str!("../../tests/data/attestation/apple_sample_attestation_object.b64");
    let object = STANDARD
        .decode(b64.split_whitespace().collect::<String>())
        .expect("base64");
    let key_id = STANDARD
        .decode("bSrEhF8TIzIvWSPwvZ0i2+UOBre4ASH84rK15m6emNY=")
        .expect("key id");
    let cfg = apple::Config {
        app_id: Some("0352187391.com.apple.example_app_attest".into()),
        ..apple::Config::default()
    };
    // The guide's clientDataHash is these bytes themselves.
    let e = apple::Expected {
        key_id: &key_id,
        client_data_hash: b"test_server_challenge".to_vec(),
        now: 1_713_441_600, // 2024-04-18T12:00Z
    };
    apple::verify(&cfg, &object, &e).expect("Apple's sample");
    // Three days later its credential certificate has expired.
    let later = apple::Expected {
        now: 1_713_700_800,
        client_data_hash: e.client_data_hash.clone(),
        ..e
    };
    assert!(matches!(
        apple::verify(&cfg, &object, &later).unwrap_err(),
        AttestationError::CertificateExpired(_)
    ));
    let other_challenge = apple::Expected {
        client_data_hash: vec![0; 32],
        key_id: &key_id,
        now: e.now,
    };
    assert_eq!(
        apple::verify(&cfg, &object, &other_challenge).unwrap_err(),
        AttestationError::NonceMismatch
    );
    let other_app = apple::Config {
        app_id: Some("0352187391.com.apple.other".into()),
        ..apple::Config::default()
    };
    assert_eq!(
        apple::verify(&other_app, &object, &e).unwrap_err(),
        AttestationError::RpIdMismatch
    );
    let development = apple::Config {
        development: true,
        ..cfg
    };
    apple::verify(&development, &object, &e).expect("production stays accepted");
}

const APP_ID: &str = "TEAMID1234.com.bank.app";

/// A synthetic App Attest object for `registered` (the Secure Enclave key)
/// made by a fresh App Attest key: (object, key id).
struct AppAttest {
    counter: u32,
    aaguid: [u8; 16],
    app_id: &'static str,
    nonce_override: Option<Vec<u8>>,
}

impl Default for AppAttest {
    fn default() -> Self {
        AppAttest {
            counter: 0,
            aaguid: *apple::AAGUID_PRODUCTION,
            app_id: APP_ID,
            nonce_override: None,
        }
    }
}

impl AppAttest {
    fn build(&self, pki: &Pki, challenge: &[u8], registered: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let attest_key = key();
        let key_id = digest(&SHA256, attest_key.public_key_raw())
            .as_ref()
            .to_vec();
        let mut auth = digest(&SHA256, self.app_id.as_bytes()).as_ref().to_vec();
        auth.push(0x40);
        auth.extend(self.counter.to_be_bytes());
        auth.extend(self.aaguid);
        auth.extend((key_id.len() as u16).to_be_bytes());
        auth.extend(&key_id);
        auth.extend([0xa0]); // a COSE key the server does not read
        let client_data_hash = apple::client_data_hash(challenge, registered).expect("point");
        let mut signed = auth.clone();
        signed.extend(client_data_hash);
        let nonce = self
            .nonce_override
            .clone()
            .unwrap_or_else(|| digest(&SHA256, &signed).as_ref().to_vec());
        use android::encode::{explicit, octets, sequence};
        let ext = sequence(&[explicit(1, octets(&nonce))]);
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 2, 840, 113635, 100, 8, 2],
            ext,
        ));
        let leaf = p.signed_by(&attest_key, &pki.intermediate).expect("leaf");
        let object = ciborium::Value::Map(vec![
            ("fmt".into(), "apple-appattest".into()),
            (
                "attStmt".into(),
                ciborium::Value::Map(vec![
                    (
                        "x5c".into(),
                        ciborium::Value::Array(vec![
                            ciborium::Value::Bytes(leaf.der().to_vec()),
                            ciborium::Value::Bytes(pki.intermediate_der.clone()),
                        ]),
                    ),
                    ("receipt".into(), ciborium::Value::Bytes(vec![1, 2, 3])),
                ]),
            ),
            ("authData".into(), ciborium::Value::Bytes(auth)),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&object, &mut bytes).expect("cbor");
        (bytes, key_id)
    }
}

fn apple_config(pki: &Pki) -> apple::Config {
    apple::Config {
        roots: pki.trusted(),
        app_id: Some(APP_ID.into()),
        development: false,
    }
}

fn check_apple(
    a: AppAttest,
    cfg_tweak: impl FnOnce(&mut apple::Config),
) -> Result<Verified, AttestationError> {
    let pki = Pki::new();
    let registered = key();
    let (object, key_id) = a.build(&pki, CHALLENGE, registered.public_key_raw());
    let mut apple = apple_config(&pki);
    cfg_tweak(&mut apple);
    let cfg = Config {
        policy: Policy::Verify,
        android: android::Config::default(),
        apple,
    };
    cfg.verify(
        &Decoded::Apple { key_id, object },
        &Registration {
            challenge: CHALLENGE,
            public_key: registered.public_key_raw(),
            user_auth_required: true,
            now: NOW,
        },
    )
}

#[test]
fn a_synthetic_app_attest_object_verifies() {
    let v = check_apple(AppAttest::default(), |_| {}).expect("valid");
    assert_eq!(v.security_level, SecurityLevel::SecureEnclave);
    assert_eq!(v.format, "apple-appattest");
}

#[test]
fn app_attest_refuses_each_broken_step() {
    let pki_other = Pki::new();
    assert_eq!(
        check_apple(AppAttest::default(), |c| c.roots = pki_other.trusted()).unwrap_err(),
        AttestationError::UntrustedRoot
    );
    assert_eq!(
        check_apple(
            AppAttest {
                nonce_override: Some(vec![0; 32]),
                ..AppAttest::default()
            },
            |_| {}
        )
        .unwrap_err(),
        AttestationError::NonceMismatch
    );
    assert_eq!(
        check_apple(
            AppAttest {
                app_id: "TEAMID1234.com.evil.app",
                ..AppAttest::default()
            },
            |_| {}
        )
        .unwrap_err(),
        AttestationError::RpIdMismatch
    );
    assert_eq!(
        check_apple(
            AppAttest {
                counter: 1,
                ..AppAttest::default()
            },
            |_| {}
        )
        .unwrap_err(),
        AttestationError::CounterNotZero
    );
    let develop = || AppAttest {
        aaguid: *apple::AAGUID_DEVELOPMENT,
        ..AppAttest::default()
    };
    assert_eq!(
        check_apple(develop(), |_| {}).unwrap_err(),
        AttestationError::WrongAaguid
    );
    check_apple(develop(), |c| c.development = true).expect("development allowed");
    assert_eq!(
        check_apple(AppAttest::default(), |c| c.app_id = None).unwrap_err(),
        AttestationError::AppleNotConfigured
    );
}

#[test]
fn app_attest_refuses_another_key_id_or_another_jwk() {
    let pki = Pki::new();
    let registered = key();
    let (object, key_id) = AppAttest::default().build(&pki, CHALLENGE, registered.public_key_raw());
    let cfg = apple_config(&pki);
    let hash = apple::client_data_hash(CHALLENGE, registered.public_key_raw()).expect("point");
    let e = |key_id: &[u8], client_data_hash: [u8; 32]| {
        apple::verify(
            &cfg,
            &object,
            &apple::Expected {
                key_id,
                client_data_hash: client_data_hash.to_vec(),
                now: NOW,
            },
        )
    };
    e(&key_id, hash).expect("valid");
    assert_eq!(
        e(&[7; 32], hash).unwrap_err(),
        AttestationError::KeyIdMismatch
    );
    // The jwk is bound through clientDataHash: another key breaks the nonce.
    let other = apple::client_data_hash(CHALLENGE, key().public_key_raw()).expect("point");
    assert_eq!(
        e(&key_id, other).unwrap_err(),
        AttestationError::NonceMismatch
    );
}

// ---------- amr ----------

#[test]
fn only_attested_or_believed_hardware_keys_are_hwk() {
    let device = |key_storage: &str, attested: bool| crate::storage::Device {
        device_id: "d".into(),
        user_id: "u".into(),
        name: "n".into(),
        platform: "android".into(),
        key_storage: key_storage.into(),
        user_verification: "biometric".into(),
        public_key: vec![],
        created_at: 0,
        last_used_at: None,
        trusted_until: 0,
        removed_at: None,
        registered_by: None,
        attestation: attested.then(|| crate::storage::DeviceAttestation {
            format: "android-key".into(),
            security_level: key_storage.into(),
            verified_at: 0,
        }),
    };
    use crate::app::{device_amr, key_method};
    for policy in [Policy::Off, Policy::Verify] {
        assert_eq!(key_method(&device("tee", false), policy), "hwk");
        assert_eq!(key_method(&device("software", false), policy), "swk");
    }
    // Under `require` a claim alone (a device registered before the switch)
    // proves nothing.
    assert_eq!(key_method(&device("tee", false), Policy::Require), "swk");
    assert_eq!(
        key_method(&device("strongbox", true), Policy::Require),
        "hwk"
    );
    assert_eq!(
        device_amr(&device("tee", true), Policy::Require),
        vec!["hwk", "bio"]
    );
}
