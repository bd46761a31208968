//! Key attestation over HTTP: the policies (`off`, `verify`, `require`), a
//! synthetic Android chain to a test root given as an extra root, the
//! device's `attestation`, the audit line of a failed check, and `amr`
//! (`hwk` for attested or claimed hardware, `swk` for a software key, which
//! cannot register another device).

use std::sync::Arc;

use devicetrust_e2e::attestation::TestAttestationCa;
use devicetrust_e2e::*;
use devicetrust_server::app::Settings;
use devicetrust_server::attestation::android::encode::Description;
use devicetrust_server::attestation::{Config, Policy};
use serde_json::{json, Value};

const APP_ID: &str = "ABCDE12345.com.bank.app";

/// A server whose attestation policy is `policy`, trusting `ca`'s root
/// beside Google's and Apple's, for the app `APP_ID`.
async fn server(policy: Policy, ca: &TestAttestationCa) -> TestServer {
    let mut config = Config::with_builtin_roots(policy);
    config.android.roots.push(ca.trusted_key());
    config.apple.roots.push(ca.trusted_key());
    config.apple.app_id = Some(APP_ID.into());
    let defaults = Options::default();
    TestServer::start_with(Options {
        settings: Settings {
            attestation: Arc::new(config),
            ..defaults.settings
        },
        ..Options::default()
    })
    .await
}

/// Makes an attestation for a key and the registration's challenge bytes.
type Attest<'a> = dyn Fn(&DeviceKey, &[u8]) -> Value + 'a;

/// A registration for the session's user with `key_storage` and, when
/// given, an attestation made by `attest(key, challenge bytes)`.
async fn register(
    srv: &TestServer,
    session: &Value,
    key_storage: &str,
    attest: Option<&Attest<'_>>,
) -> (Answer, DeviceKey) {
    let platform = if key_storage == "secure_enclave" {
        "ios"
    } else {
        "android"
    };
    let token = session["access_token"].as_str().expect("token");
    let user_id = session["user_id"].as_str().expect("user_id");
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    assert_eq!(reg.status, 200, "registration: {:?}", reg.body);
    let challenge = reg.body["challenge"].as_str().expect("challenge");
    let key = DeviceKey::generate();
    let mut body = json!({
        "registration_id": reg.body["registration_id"],
        "proof": key.register_proof(RP_ID, user_id, challenge),
        "name": "Jane's Pixel",
        "platform": platform,
        "key_storage": key_storage,
        "user_verification": "biometric",
    });
    if let Some(attest) = attest {
        let bytes = base64_url_decode(challenge);
        body["attestation"] = attest(&key, &bytes);
    }
    let a = srv.post("/v1/devices", body, Some(token)).await;
    (a, key)
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

async fn signed_in(srv: &TestServer, user_id: &str) -> Value {
    srv.add_user(user_id, "GB", None).await;
    srv.sign_in_with_otp(user_id, None).await
}

/// The reasons of the user's `device_attestation_failed` audit lines.
async fn failures(srv: &TestServer, user_id: &str) -> Vec<String> {
    srv.store
        .audit_events(user_id)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.event == "device_attestation_failed")
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn require_refuses_a_registration_without_attestation() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Require, &ca).await;
    let session = signed_in(&srv, "req.none").await;
    let (a, _) = register(&srv, &session, "tee", None).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert_eq!(a.code(), "attestation_invalid");
    assert_eq!(
        failures(&srv, "req.none").await,
        vec!["attestation_missing"]
    );
    srv.stop().await;
}

#[tokio::test]
async fn require_accepts_an_attested_tee_key_which_signs_in_with_hwk() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Require, &ca).await;
    let session = signed_in(&srv, "req.tee").await;
    let attest = |key: &DeviceKey, challenge: &[u8]| ca.android(key, &Description::tee(challenge));
    let (a, key) = register(&srv, &session, "tee", Some(&attest)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let device = &a.body["device"];
    assert_eq!(device["attestation"]["format"], "android-key");
    assert_eq!(device["attestation"]["security_level"], "tee");
    assert_eq!(device["attestation"]["verified_at"], srv.now());
    let device_id = device["device_id"].as_str().expect("id");
    let listed = srv
        .get("/v1/devices", session["access_token"].as_str())
        .await;
    assert_eq!(
        listed.body["devices"][0]["attestation"],
        device["attestation"]
    );
    let s = srv.device_sign_in(device_id, &key, "req.tee").await;
    assert_eq!(s.status, 200, "{:?}", s.body);
    assert_eq!(s.body["session"]["amr"], json!(["hwk", "bio"]));
    srv.stop().await;
}

#[tokio::test]
async fn verify_accepts_a_registration_without_attestation_as_null() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Verify, &ca).await;
    let session = signed_in(&srv, "ver.none").await;
    let (a, key) = register(&srv, &session, "strongbox", None).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["device"]["attestation"], Value::Null);
    // Claimed hardware without an attestation is believed under `verify`.
    let device_id = a.body["device"]["device_id"].as_str().expect("id");
    let s = srv.device_sign_in(device_id, &key, "ver.none").await;
    assert_eq!(s.body["session"]["amr"], json!(["hwk", "bio"]));
    srv.stop().await;
}

#[tokio::test]
async fn a_software_key_signs_in_with_swk_and_cannot_add_a_device() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Verify, &ca).await;
    let session = signed_in(&srv, "soft.key").await;
    let (a, key) = register(&srv, &session, "software", None).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let device_id = a.body["device"]["device_id"].as_str().expect("id");
    let s = srv.device_sign_in(device_id, &key, "soft.key").await;
    assert_eq!(s.status, 200, "{:?}", s.body);
    assert_eq!(s.body["session"]["amr"], json!(["swk", "bio"]));
    // `swk` is not a strong sign-in: no new device from this session.
    let token = s.body["session"]["access_token"].as_str().expect("token");
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    assert_eq!(reg.status, 403, "{:?}", reg.body);
    assert_eq!(reg.code(), "forbidden");
    // The device method of a password sign-in says `swk` too.
    let p = srv.password("soft.key", PASSWORD, Some(device_id)).await;
    let c = p.body["methods"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["type"] == "device"))
        .cloned()
        .expect("a device method");
    let proof = key.login_proof(
        RP_ID,
        device_id,
        "soft.key",
        c["challenge"].as_str().expect("challenge"),
    );
    let d = srv
        .post(
            "/v1/login/device",
            json!({ "challenge_id": c["challenge_id"], "proof": proof }),
            None,
        )
        .await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(d.body["session"]["amr"], json!(["pwd", "swk"]));
    srv.stop().await;
}

#[tokio::test]
async fn a_failed_check_is_attestation_invalid_with_its_reason_audited() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Verify, &ca).await;
    let session = signed_in(&srv, "bad.chain").await;

    // The chain names another challenge.
    let wrong = |key: &DeviceKey, _: &[u8]| ca.android(key, &Description::tee(b"stale"));
    let (a, _) = register(&srv, &session, "tee", Some(&wrong)).await;
    assert_eq!(
        (a.status, a.code()),
        (400, "attestation_invalid"),
        "{:?}",
        a.body
    );

    // Claimed StrongBox, attested TEE.
    let tee = |key: &DeviceKey, challenge: &[u8]| ca.android(key, &Description::tee(challenge));
    let (a, _) = register(&srv, &session, "strongbox", Some(&tee)).await;
    assert_eq!(
        (a.status, a.code()),
        (400, "attestation_invalid"),
        "{:?}",
        a.body
    );

    // Claimed software, with an attestation.
    let (a, _) = register(&srv, &session, "software", Some(&tee)).await;
    assert_eq!(
        (a.status, a.code()),
        (400, "attestation_invalid"),
        "{:?}",
        a.body
    );

    // A chain from an unknown root.
    let stranger = TestAttestationCa::new();
    let other =
        |key: &DeviceKey, challenge: &[u8]| stranger.android(key, &Description::tee(challenge));
    let (a, _) = register(&srv, &session, "tee", Some(&other)).await;
    assert_eq!(
        (a.status, a.code()),
        (400, "attestation_invalid"),
        "{:?}",
        a.body
    );

    assert_eq!(
        failures(&srv, "bad.chain").await,
        vec![
            "challenge_mismatch",
            "security_level_mismatch",
            "security_level_mismatch",
            "untrusted_root"
        ]
    );
    // A valid StrongBox attestation for a StrongBox claim passes.
    let strongbox = |key: &DeviceKey, challenge: &[u8]| {
        let mut d = Description::tee(challenge);
        d.attestation_level = 2;
        d.keymint_level = 2;
        ca.android(key, &d)
    };
    let (a, _) = register(&srv, &session, "strongbox", Some(&strongbox)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(
        a.body["device"]["attestation"]["security_level"],
        "strongbox"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_malformed_attestation_is_invalid_request() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Verify, &ca).await;
    let session = signed_in(&srv, "malformed").await;
    for bad in [
        json!({"format": "android-key", "certificate_chain": ["not base64!"]}),
        json!({"format": "android-key", "certificate_chain": []}),
        json!({"format": "android-key"}),
        json!({"format": "tpm", "certificate_chain": ["AA"]}),
        json!({"format": "apple-appattest", "key_id": "AA", "attestation_object": "AA"}),
        json!("android-key"),
    ] {
        let (a, _) = register(
            &srv,
            &session,
            "tee",
            Some(&|_: &DeviceKey, _: &[u8]| bad.clone()),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_request"),
            "{bad}: {:?}",
            a.body
        );
    }
    assert!(failures(&srv, "malformed").await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn off_ignores_attestations() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Off, &ca).await;
    let session = signed_in(&srv, "policy.off").await;
    let stranger = TestAttestationCa::new();
    let other =
        |key: &DeviceKey, challenge: &[u8]| stranger.android(key, &Description::tee(challenge));
    let (a, _) = register(&srv, &session, "tee", Some(&other)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["device"]["attestation"], Value::Null);
    srv.stop().await;
}

#[tokio::test]
async fn an_app_attest_attestation_registers_a_secure_enclave_key() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Require, &ca).await;
    let session = signed_in(&srv, "ios.user").await;
    let attest = |key: &DeviceKey, challenge: &[u8]| ca.apple(key, challenge, APP_ID);
    let (a, key) = register(&srv, &session, "secure_enclave", Some(&attest)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["device"]["attestation"]["format"], "apple-appattest");
    assert_eq!(
        a.body["device"]["attestation"]["security_level"],
        "secure_enclave"
    );
    let device_id = a.body["device"]["device_id"].as_str().expect("id");
    let s = srv.device_sign_in(device_id, &key, "ios.user").await;
    assert_eq!(s.body["session"]["amr"], json!(["hwk", "bio"]));

    // Another app's attestation, and one vouching for another key.
    let other_app =
        |key: &DeviceKey, challenge: &[u8]| ca.apple(key, challenge, "ABCDE12345.com.other.app");
    let (a, _) = register(&srv, &session, "secure_enclave", Some(&other_app)).await;
    assert_eq!((a.status, a.code()), (400, "attestation_invalid"));
    let other_key =
        |_: &DeviceKey, challenge: &[u8]| ca.apple(&DeviceKey::generate(), challenge, APP_ID);
    let (a, _) = register(&srv, &session, "secure_enclave", Some(&other_key)).await;
    assert_eq!((a.status, a.code()), (400, "attestation_invalid"));
    // An App Attest object claimed for a TEE key on Android.
    let (a, _) = register(&srv, &session, "tee", Some(&attest)).await;
    assert_eq!((a.status, a.code()), (400, "attestation_invalid"));
    assert_eq!(
        failures(&srv, "ios.user").await,
        vec!["rp_id_mismatch", "nonce_mismatch", "platform_mismatch"]
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_failed_attestation_spends_its_registration() {
    let ca = TestAttestationCa::new();
    let srv = server(Policy::Verify, &ca).await;
    let session = signed_in(&srv, "spent.reg").await;
    let token = session["access_token"].as_str().unwrap();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    let challenge = reg.body["challenge"].as_str().unwrap();
    let key = DeviceKey::generate();
    let body = |attestation: Value| {
        json!({
            "registration_id": reg.body["registration_id"],
            "proof": key.register_proof(RP_ID, "spent.reg", challenge),
            "name": "Jane's Pixel",
            "platform": "android",
            "key_storage": "tee",
            "user_verification": "biometric",
            "attestation": attestation,
        })
    };
    let stale = ca.android(&key, &Description::tee(b"stale"));
    let a = srv.post("/v1/devices", body(stale), Some(token)).await;
    assert_eq!(a.code(), "attestation_invalid", "{:?}", a.body);
    // The right attestation on the same registration: it is gone.
    let right = ca.android(&key, &Description::tee(&base64_url_decode(challenge)));
    let again = srv.post("/v1/devices", body(right), Some(token)).await;
    assert_eq!(again.code(), "challenge_invalid", "{:?}", again.body);
    assert_eq!(failures(&srv, "spent.reg").await.len(), 1);
    srv.stop().await;
}
