//! Key attestation through the SDK core: the key store gets the
//! registration challenge, returns an attestation, and the core sends it.
//! A scripted Android platform returns a synthetic chain to a test root the
//! server trusts (`require` accepts it, the device signs in with `hwk`); a
//! scripted iOS platform returns an App Attest object made with the SDK's
//! `app_attest_client_data_hash`; the software key store registers under
//! `verify` and signs in with `swk`; a missing or failed attestation is
//! `AttestationInvalid` and leaves no key behind.

use std::sync::Arc;

use devicetrust_core::*;
use devicetrust_e2e::attestation::TestAttestationCa;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;
use devicetrust_server::app::Settings;
use devicetrust_server::attestation::android::encode::Description;
use devicetrust_server::attestation::{Config as AttestationConfig, Policy};

const APP_ID: &str = "ABCDE12345.com.bank.app";

async fn server(policy: Policy, ca: &TestAttestationCa) -> TestServer {
    let mut config = AttestationConfig::with_builtin_roots(policy);
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

/// Password → enrolment → e-mail OTP → signed in, through the SDK.
async fn first_sign_in(srv: &TestServer, phone: &Phone, user: &str) {
    srv.add_user(user, "GB", None).await;
    let step = phone
        .sdk
        .sign_in_with_password(user, PASSWORD)
        .await
        .expect("password");
    let step = match step {
        SignInStep::EnrolmentRequired { .. } => phone
            .sdk
            .complete_enrolment(SECURITY_CODE, None)
            .await
            .expect("enrol"),
        other => other,
    };
    let SignInStep::SecondFactorRequired { otp_options, .. } = step else {
        panic!("expected a second factor, got {step:?}");
    };
    phone
        .sdk
        .send_otp(otp_options[0].channel)
        .await
        .expect("send");
    let step = phone
        .sdk
        .verify_otp(&srv.last_otp(user))
        .await
        .expect("verify");
    assert!(matches!(step, SignInStep::SignedIn { .. }), "{step:?}");
}

async fn enable(phone: &Phone) -> Result<TrustedDevice, DeviceTrustError> {
    phone
        .sdk
        .enable_biometric_sign_in(
            "Jane's Pixel",
            UserVerification::Biometric,
            prompt("Turn on fingerprint sign-in"),
        )
        .await
}

async fn biometric_amr(phone: &Phone, user: &str) -> Vec<String> {
    phone.sdk.sign_out().await.expect("sign out");
    match phone
        .sdk
        .sign_in_with_biometric(user, prompt("Sign in"))
        .await
        .expect("biometric sign-in")
    {
        SignInStep::SignedIn { session } => amr(&session),
        other => panic!("expected signed in, got {other:?}"),
    }
}

/// An Android platform whose keys are attested TEE keys (a synthetic
/// chain to `ca`'s root with the challenge it was given).
fn android_tee(ca: &Arc<TestAttestationCa>) -> Arc<Attester> {
    let ca = ca.clone();
    Arc::new(move |point: &[u8], challenge: &[u8]| {
        let chain = ca.android_chain(point, &Description::tee(challenge));
        (
            KeyStorage::Tee,
            Some(KeyAttestation::AndroidKey {
                certificate_chain: chain,
            }),
        )
    })
}

#[tokio::test]
async fn an_attested_android_key_registers_under_require_and_signs_in_with_hwk() {
    let ca = Arc::new(TestAttestationCa::new());
    let srv = server(Policy::Require, &ca).await;
    let phone = Phone::new(&srv.base);
    phone.keys.attest_with(android_tee(&ca));
    first_sign_in(&srv, &phone, "att.jane").await;

    let device = enable(&phone).await.expect("attested registration");
    assert_eq!(device.key_storage, Some(KeyStorage::Tee));
    let attestation = device
        .attestation
        .expect("the server's verified attestation");
    assert_eq!(attestation.format, AttestationFormat::AndroidKey);
    assert_eq!(attestation.security_level, Some(KeyStorage::Tee));
    // The key was attested with the registration's challenge: the server's
    // 32 random bytes, fetched before the key was made.
    let challenges = phone.keys.challenges();
    assert_eq!(challenges.len(), 1);
    assert_eq!(challenges[0].len(), 32);

    assert_eq!(biometric_amr(&phone, "att.jane").await, vec!["hwk", "bio"]);
    let devices = phone.sdk.trusted_devices().await.unwrap();
    assert_eq!(
        devices[0].attestation.as_ref().map(|a| a.format.clone()),
        Some(AttestationFormat::AndroidKey)
    );
}

#[tokio::test]
async fn require_refuses_a_key_without_attestation_and_deletes_it() {
    let ca = Arc::new(TestAttestationCa::new());
    let srv = server(Policy::Require, &ca).await;
    let phone = Phone::new(&srv.base);
    // A TEE claimed, nothing to show for it.
    phone
        .keys
        .attest_with(Arc::new(|_: &[u8], _: &[u8]| (KeyStorage::Tee, None)));
    first_sign_in(&srv, &phone, "att.noatt").await;
    assert_eq!(
        enable(&phone).await,
        Err(DeviceTrustError::AttestationInvalid)
    );
    assert_eq!(phone.keys.key_count(), 0, "the refused key is deleted");
    assert!(!phone
        .sdk
        .is_biometric_sign_in_available("att.noatt")
        .await
        .unwrap());
}

#[tokio::test]
async fn an_attestation_for_another_challenge_is_attestation_invalid() {
    let ca = Arc::new(TestAttestationCa::new());
    let srv = server(Policy::Verify, &ca).await;
    let phone = Phone::new(&srv.base);
    let ca2 = ca.clone();
    phone
        .keys
        .attest_with(Arc::new(move |point: &[u8], _: &[u8]| {
            let chain = ca2.android_chain(point, &Description::tee(&[0u8; 32]));
            (
                KeyStorage::Tee,
                Some(KeyAttestation::AndroidKey {
                    certificate_chain: chain,
                }),
            )
        }));
    first_sign_in(&srv, &phone, "att.replay").await;
    assert_eq!(
        enable(&phone).await,
        Err(DeviceTrustError::AttestationInvalid)
    );
    assert_eq!(phone.keys.key_count(), 0);
    assert_eq!(
        srv.wait_for_audit("att.replay", "device_attestation_failed", 1)
            .await,
        1
    );
}

#[tokio::test]
async fn the_software_key_store_registers_under_verify_and_signs_in_with_swk() {
    let ca = Arc::new(TestAttestationCa::new());
    let srv = server(Policy::Verify, &ca).await;
    let phone = Phone::new(&srv.base);
    first_sign_in(&srv, &phone, "att.soft").await;
    let device = enable(&phone).await.expect("software key under verify");
    assert_eq!(device.key_storage, Some(KeyStorage::Software));
    assert_eq!(device.attestation, None);
    assert_eq!(biometric_amr(&phone, "att.soft").await, vec!["swk", "bio"]);
}

/// An App Attest object from `ca` (test root) whose `clientDataHash` the
/// "iOS platform" computed with the SDK's `app_attest_client_data_hash`,
/// checked by the server against the JWK the SDK sends: the two sides
/// agree on the thumbprint.
#[tokio::test]
async fn an_app_attest_object_made_with_the_sdks_client_data_hash_registers() {
    let ca = Arc::new(TestAttestationCa::new());
    let srv = server(Policy::Require, &ca).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = ScriptedKeyStore::new(&dir.path().join("keys"));
    let ca2 = ca.clone();
    keys.attest_with(Arc::new(move |point: &[u8], challenge: &[u8]| {
        let hash = app_attest_client_data_hash(challenge.to_vec(), point.to_vec())
            .expect("client data hash");
        let (key_id, object) = ca2.apple_object(&hash, APP_ID);
        (
            KeyStorage::SecureEnclave,
            Some(KeyAttestation::AppleAppAttest {
                key_id,
                attestation_object: object,
            }),
        )
    }));
    let mut config = Config::new(&srv.base, RP_ID, dir.path().join("state").to_str().unwrap());
    config.allow_insecure_http = true;
    config.platform = Some(Platform::Ios);
    let phone = Phone {
        sdk: DeviceTrust::new(config, keys.clone()).unwrap(),
        keys,
        dir,
    };
    first_sign_in(&srv, &phone, "att.ios").await;
    let device = enable(&phone).await.expect("App Attest registration");
    assert_eq!(device.key_storage, Some(KeyStorage::SecureEnclave));
    let attestation = device.attestation.expect("verified");
    assert_eq!(attestation.format, AttestationFormat::AppleAppAttest);
    assert_eq!(attestation.security_level, Some(KeyStorage::SecureEnclave));
    assert_eq!(biometric_amr(&phone, "att.ios").await, vec!["hwk", "bio"]);
}
