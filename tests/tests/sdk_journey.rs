//! The SDK core driven through the whole card-holder journey against the real
//! server, with the software key store behind a scriptable "platform".

use std::sync::Arc;

use devicetrust_core::*;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;

/// Password → enrolment → e-mail OTP → signed in, through the SDK.
async fn first_sign_in(srv: &TestServer, phone: &Phone, user: &str) -> SessionInfo {
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
    match phone
        .sdk
        .verify_otp(&srv.last_otp(user))
        .await
        .expect("verify")
    {
        SignInStep::SignedIn { session } => session,
        other => panic!("expected signed in, got {other:?}"),
    }
}

async fn enabled_phone(srv: &TestServer, user: &str) -> Phone {
    srv.add_user(user, "GB", None).await;
    let phone = Phone::new(&srv.base);
    first_sign_in(srv, &phone, user).await;
    phone
        .sdk
        .enable_biometric_sign_in(
            "Jane's Pixel",
            UserVerification::Biometric,
            prompt("Turn on fingerprint sign-in"),
        )
        .await
        .expect("enable");
    phone
}

#[tokio::test]
async fn the_whole_journey_through_the_sdk() {
    let srv = TestServer::start().await;
    srv.add_user("Jane.Doe", "GB", Some("+447700900123")).await;
    let phone = Phone::new(&srv.base);
    assert!(!phone
        .sdk
        .is_biometric_sign_in_available("jane.doe")
        .await
        .unwrap());

    // Password: enrolment with the pre-filled profile.
    let step = phone
        .sdk
        .sign_in_with_password("Jane.Doe", PASSWORD)
        .await
        .unwrap();
    let SignInStep::EnrolmentRequired {
        name,
        email,
        expires_at,
    } = step
    else {
        panic!("{step:?}")
    };
    assert_eq!(
        (name.as_str(), email.as_str()),
        ("Jane Doe", "jane.doe@example.com")
    );
    // A point in time: a few minutes ahead.
    assert!(expires_at > std::time::SystemTime::now());
    // Local rule check before any round trip.
    assert!(matches!(
        phone.sdk.complete_enrolment("123456", None).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    let step = phone
        .sdk
        .complete_enrolment("24680135", None)
        .await
        .unwrap();
    let SignInStep::SecondFactorRequired {
        otp_options,
        this_device_can_approve,
        ..
    } = step
    else {
        panic!()
    };
    assert!(!this_device_can_approve);
    assert_eq!(
        otp_options.iter().map(|o| o.channel).collect::<Vec<_>>(),
        vec![OtpChannel::Email, OtpChannel::Sms]
    );
    let sent = phone.sdk.send_otp(OtpChannel::Sms).await.unwrap();
    assert_eq!(sent.destination, "+44•••••••123");
    assert_eq!(sent.resend_after_secs, 30);
    let step = phone
        .sdk
        .verify_otp(&srv.last_otp("jane.doe"))
        .await
        .unwrap();
    let SignInStep::SignedIn { session } = step else {
        panic!()
    };
    assert_eq!(amr(&session), vec!["pwd", "otp"]);
    assert_eq!(phone.sdk.profile().await.unwrap().primary_market, "GB");
    // The pending sign-in is finished.
    assert_eq!(
        phone.sdk.send_otp(OtpChannel::Email).await,
        Err(DeviceTrustError::NoSignInInProgress)
    );

    // Enable biometric sign-in: key created, proof signed after the prompt.
    let device = phone
        .sdk
        .enable_biometric_sign_in(
            "Jane's Pixel",
            UserVerification::Biometric,
            prompt("Turn on fingerprint sign-in"),
        )
        .await
        .unwrap();
    assert!(device.is_this_device);
    assert_eq!(device.key_storage, Some(KeyStorage::Software));
    assert_eq!(device.platform, Platform::Android);
    assert_eq!(phone.keys.prompts(), vec!["Turn on fingerprint sign-in"]);
    assert_eq!(phone.keys.key_count(), 1);
    let local = phone
        .sdk
        .local_enrolment("JANE.DOE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(local.device_id, device.device_id);
    assert_eq!(local.trusted_until, device.trusted_until);
    assert!(phone
        .sdk
        .is_biometric_sign_in_available("jane.doe")
        .await
        .unwrap());

    // Sign out, then biometric sign-in: the app's prompt words pass through.
    phone.sdk.sign_out().await.unwrap();
    assert_eq!(
        phone.sdk.profile().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    let step = phone
        .sdk
        .sign_in_with_biometric("jane.doe", prompt("Sign in to Amex"))
        .await
        .unwrap();
    let SignInStep::SignedIn { session } = step else {
        panic!()
    };
    // The software key store's key is no hardware key: `swk` (RFC 8176).
    assert_eq!(amr(&session), vec!["swk", "bio"]);
    assert_eq!(phone.keys.prompts().last().unwrap(), "Sign in to Amex");
    let devices = phone.sdk.trusted_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].is_this_device);
    assert!(devices[0].last_used_at.is_some());

    // Password on this trusted phone: approve with the biometric instead of an OTP.
    let step = phone
        .sdk
        .sign_in_with_password("jane.doe", PASSWORD)
        .await
        .unwrap();
    let SignInStep::SecondFactorRequired {
        this_device_can_approve,
        ..
    } = step
    else {
        panic!()
    };
    assert!(this_device_can_approve);
    let step = phone
        .sdk
        .approve_with_this_device(prompt("Approve sign-in"))
        .await
        .unwrap();
    let SignInStep::SignedIn { session } = step else {
        panic!()
    };
    assert_eq!(amr(&session), vec!["pwd", "swk"]);

    // Remove this phone: key deleted, local state cleared, session ended.
    phone.sdk.remove_device(&device.device_id).await.unwrap();
    assert_eq!(phone.keys.key_count(), 0);
    assert!(phone
        .sdk
        .local_enrolment("jane.doe")
        .await
        .unwrap()
        .is_none());
    assert!(phone.sdk.session().await.is_none());
    assert_eq!(
        phone
            .sdk
            .sign_in_with_biometric("jane.doe", prompt("x"))
            .await,
        Err(DeviceTrustError::NotEnrolledOnThisDevice)
    );
    srv.stop().await;
}

#[tokio::test]
async fn password_errors_carry_what_the_ui_needs() {
    let srv = TestServer::start().await;
    srv.add_user("err", "GB", None).await;
    let phone = Phone::new(&srv.base);
    assert_eq!(
        phone.sdk.sign_in_with_password("err", "wrong").await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    assert!(matches!(
        phone.sdk.sign_in_with_password("", "x").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    assert_eq!(
        phone.sdk.verify_otp("123456").await,
        Err(DeviceTrustError::NoSignInInProgress)
    );
    assert!(matches!(
        phone.sdk.verify_otp("12").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));

    first_sign_in(&srv, &phone, "err").await;
    phone
        .sdk
        .sign_in_with_password("err", PASSWORD)
        .await
        .unwrap();
    phone.sdk.send_otp(OtpChannel::Email).await.unwrap();
    let code = srv.last_otp("err");
    let wrong = wrong_code(&code);
    assert_eq!(
        phone.sdk.verify_otp(wrong).await,
        Err(DeviceTrustError::OtpInvalid { attempts_left: 4 })
    );
    // Resend too soon.
    assert_eq!(
        phone.sdk.send_otp(OtpChannel::Email).await,
        Err(DeviceTrustError::RateLimited {
            retry_after_secs: 30
        })
    );
    // SMS without a mobile on file.
    assert!(matches!(
        phone.sdk.send_otp(OtpChannel::Sms).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    for _ in 0..4 {
        let _ = phone.sdk.sign_in_with_password("err", "wrong").await;
    }
    match phone.sdk.sign_in_with_password("err", PASSWORD).await {
        Err(DeviceTrustError::AccountLocked { retry_after_secs }) => {
            assert!(retry_after_secs > 1700)
        }
        other => panic!("{other:?}"),
    }
    // An expired sign-in is reported and dropped.
    srv.post(
        "/admin/v1/users/err/unlock",
        serde_json::json!({}),
        Some(ADMIN_TOKEN),
    )
    .await;
    phone
        .sdk
        .sign_in_with_password("err", PASSWORD)
        .await
        .unwrap();
    srv.clock.advance(601);
    assert_eq!(
        phone.sdk.send_otp(OtpChannel::Email).await,
        Err(DeviceTrustError::SignInExpired)
    );
    assert_eq!(
        phone.sdk.send_otp(OtpChannel::Email).await,
        Err(DeviceTrustError::NoSignInInProgress)
    );
    srv.stop().await;
}

#[tokio::test]
async fn cancel_unavailable_and_lockout_change_nothing() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "careful").await;
    phone.sdk.sign_out().await.unwrap();
    for (b, expected) in [
        (Behaviour::Cancel, DeviceTrustError::BiometricCancelled),
        (
            Behaviour::Unavailable("no fingerprint enrolled".into()),
            DeviceTrustError::BiometricUnavailable {
                reason: "no fingerprint enrolled".into(),
            },
        ),
        (Behaviour::LockedOut, DeviceTrustError::BiometricLockedOut),
    ] {
        phone.keys.set(b);
        assert_eq!(
            phone
                .sdk
                .sign_in_with_biometric("careful", prompt("Sign in"))
                .await,
            Err(expected)
        );
        assert!(phone
            .sdk
            .local_enrolment("careful")
            .await
            .unwrap()
            .is_some());
        assert_eq!(phone.keys.key_count(), 1);
    }
    phone.keys.set(Behaviour::Normal);
    assert!(matches!(
        phone
            .sdk
            .sign_in_with_biometric("careful", prompt("Sign in"))
            .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    srv.stop().await;
}

#[tokio::test]
async fn biometrics_changed_forgets_the_key_and_removes_the_device_at_next_sign_in() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "changed").await;
    let device_id = phone
        .sdk
        .local_enrolment("changed")
        .await
        .unwrap()
        .unwrap()
        .device_id;
    phone.sdk.sign_out().await.unwrap();

    phone.keys.set(Behaviour::BiometricsChanged);
    assert_eq!(
        phone
            .sdk
            .sign_in_with_biometric("changed", prompt("Sign in"))
            .await,
        Err(DeviceTrustError::BiometricsChanged)
    );
    assert!(phone
        .sdk
        .local_enrolment("changed")
        .await
        .unwrap()
        .is_none());
    assert_eq!(phone.keys.key_count(), 0);
    // Signed out: the server still lists it until the next sign-in...
    assert!(srv
        .store
        .device(&device_id)
        .await
        .unwrap()
        .unwrap()
        .removed_at
        .is_none());
    phone.keys.set(Behaviour::Normal);
    first_sign_in(&srv, &phone, "changed").await;
    // ...which removes it.
    assert!(srv
        .store
        .device(&device_id)
        .await
        .unwrap()
        .unwrap()
        .removed_at
        .is_some());
    assert!(phone.sdk.trusted_devices().await.unwrap().is_empty());
    // The app re-enrols after password + OTP.
    phone
        .sdk
        .enable_biometric_sign_in("Pixel", UserVerification::Biometric, prompt("Turn on"))
        .await
        .unwrap();
    assert_eq!(phone.sdk.trusted_devices().await.unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn biometrics_changed_while_signed_in_removes_the_device_at_once() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "now").await;
    let device_id = phone
        .sdk
        .local_enrolment("now")
        .await
        .unwrap()
        .unwrap()
        .device_id;
    // Still signed in (password + OTP): approving a second sign-in hits the dead key.
    phone
        .sdk
        .sign_in_with_password("now", PASSWORD)
        .await
        .unwrap();
    phone.keys.set(Behaviour::BiometricsChanged);
    // The first session was replaced only on success; sign in again to hold one.
    assert_eq!(
        phone.sdk.approve_with_this_device(prompt("Approve")).await,
        Err(DeviceTrustError::BiometricsChanged)
    );
    assert!(srv
        .store
        .device(&device_id)
        .await
        .unwrap()
        .unwrap()
        .removed_at
        .is_some());
    srv.stop().await;
}

#[tokio::test]
async fn enabling_is_all_or_nothing() {
    let srv = TestServer::start().await;
    srv.add_user("atomic", "GB", None).await;
    let phone = Phone::new(&srv.base);
    first_sign_in(&srv, &phone, "atomic").await;
    // The user cancels the confirmation prompt: the new key is deleted.
    phone.keys.set(Behaviour::Cancel);
    let r = phone
        .sdk
        .enable_biometric_sign_in("P", UserVerification::Biometric, prompt("Turn on"))
        .await;
    assert_eq!(r, Err(DeviceTrustError::BiometricCancelled));
    assert_eq!(phone.keys.key_count(), 0);
    assert!(phone.sdk.local_enrolment("atomic").await.unwrap().is_none());
    // Key creation fails.
    phone.keys.set(Behaviour::GenerateFails);
    let r = phone
        .sdk
        .enable_biometric_sign_in("P", UserVerification::Biometric, prompt("Turn on"))
        .await;
    assert!(matches!(r, Err(DeviceTrustError::KeyStore { .. })));
    // The server refuses (device limit): the key is deleted too.
    phone.keys.set(Behaviour::Normal);
    let session = srv.sign_in_with_otp("atomic", None).await;
    for _ in 0..10 {
        srv.register_device(&session, "biometric").await;
    }
    let r = phone
        .sdk
        .enable_biometric_sign_in("P", UserVerification::Biometric, prompt("Turn on"))
        .await;
    assert_eq!(r, Err(DeviceTrustError::DeviceLimitReached));
    assert_eq!(phone.keys.key_count(), 0);
    assert!(phone.sdk.local_enrolment("atomic").await.unwrap().is_none());
    // Bad name: refused before a key is made.
    assert!(matches!(
        phone
            .sdk
            .enable_biometric_sign_in(" ", UserVerification::None, prompt("x"))
            .await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    // Too old a sign-in.
    srv.clock.advance(601);
    let r = phone
        .sdk
        .enable_biometric_sign_in("P", UserVerification::Biometric, prompt("Turn on"))
        .await;
    assert_eq!(r, Err(DeviceTrustError::RecentSignInRequired));
    assert_eq!(phone.keys.key_count(), 0);
    srv.stop().await;
}

#[tokio::test]
async fn a_device_removed_from_another_phone_is_forgotten() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "two.phones").await;
    let device_id = phone
        .sdk
        .local_enrolment("two.phones")
        .await
        .unwrap()
        .unwrap()
        .device_id;
    // Another phone signs in and removes the first one.
    let other = Phone::new(&srv.base);
    first_sign_in(&srv, &other, "two.phones").await;
    let list = other.sdk.trusted_devices().await.unwrap();
    assert!(!list[0].is_this_device);
    other.sdk.remove_device(&device_id).await.unwrap();
    // The first phone's session died with its device.
    assert_eq!(
        phone.sdk.profile().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    assert_eq!(
        phone
            .sdk
            .sign_in_with_biometric("two.phones", prompt("Sign in"))
            .await,
        Err(DeviceTrustError::DeviceNotRecognized)
    );
    assert!(phone
        .sdk
        .local_enrolment("two.phones")
        .await
        .unwrap()
        .is_none());
    assert_eq!(phone.keys.key_count(), 0);
    srv.stop().await;
}

#[tokio::test]
async fn trust_expiry_and_renewal_by_password_and_otp() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "trust").await;
    phone.sdk.sign_out().await.unwrap();
    srv.clock.advance(91 * 86400);
    assert_eq!(
        phone
            .sdk
            .sign_in_with_biometric("trust", prompt("Sign in"))
            .await,
        Err(DeviceTrustError::ReauthorisationRequired)
    );
    // The key is kept; password + OTP on this phone renews the trust.
    assert_eq!(phone.keys.key_count(), 1);
    let step = phone
        .sdk
        .sign_in_with_password("trust", PASSWORD)
        .await
        .unwrap();
    let SignInStep::SecondFactorRequired {
        this_device_can_approve,
        ..
    } = step
    else {
        panic!()
    };
    assert!(!this_device_can_approve, "an expired device cannot approve");
    phone.sdk.send_otp(OtpChannel::Email).await.unwrap();
    phone.sdk.verify_otp(&srv.last_otp("trust")).await.unwrap();
    let local = phone.sdk.local_enrolment("trust").await.unwrap().unwrap();
    assert_eq!(
        local.trusted_until,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs((srv.now() + 90 * 86400) as u64),
        "local record follows the server"
    );
    phone.sdk.sign_out().await.unwrap();
    assert!(matches!(
        phone
            .sdk
            .sign_in_with_biometric("trust", prompt("Sign in"))
            .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    srv.stop().await;
}

#[tokio::test]
async fn server_down_and_back() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "offline").await;
    phone.sdk.sign_out().await.unwrap();
    srv.pause().await;
    match phone
        .sdk
        .sign_in_with_biometric("offline", prompt("Sign in"))
        .await
    {
        Err(DeviceTrustError::Network {
            retryable: true, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        phone
            .sdk
            .local_enrolment("offline")
            .await
            .unwrap()
            .is_some(),
        "an outage forgets nothing"
    );
    srv.resume().await;
    assert!(matches!(
        phone
            .sdk
            .sign_in_with_biometric("offline", prompt("Sign in"))
            .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    srv.stop().await;
}

#[tokio::test]
async fn local_state_survives_an_app_restart() {
    let srv = TestServer::start().await;
    let mut phone = enabled_phone(&srv, "restart").await;
    let before = phone.sdk.local_enrolment("restart").await.unwrap();
    phone.restart(&srv.base);
    assert!(
        phone.sdk.session().await.is_none(),
        "sessions are memory-only"
    );
    assert_eq!(phone.sdk.local_enrolment("restart").await.unwrap(), before);
    assert_eq!(phone.sdk.local_enrolments().await.unwrap().len(), 1);
    assert!(matches!(
        phone
            .sdk
            .sign_in_with_biometric("restart", prompt("Sign in"))
            .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    // No secret in the state folder: no token is ever written there.
    let session = srv.sign_in_with_otp("restart", None).await;
    let state = std::fs::read(phone.dir.path().join("state/devicetrust-state.json")).unwrap();
    let needle = &session["refresh_token"].as_str().unwrap().as_bytes()[..12];
    assert!(!state.windows(needle.len()).any(|w| w == needle));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_calls_racing_a_refresh_share_one() {
    let mut opts = Options::default();
    // Tokens fresh for only ~1 s beyond the SDK's 60 s refresh margin.
    opts.settings.access_ttl_s = 61;
    let srv = TestServer::start_with(opts).await;
    srv.add_user("racy", "GB", None).await;
    let phone = Arc::new(Phone::new(&srv.base));
    first_sign_in(&srv, &phone, "racy").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let phone = phone.clone();
            tokio::spawn(async move { phone.sdk.profile().await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().user_id, "racy");
    }
    // Had two refreshes raced with one token, reuse detection would have
    // revoked the session.
    assert!(phone.sdk.profile().await.is_ok());
    assert!(!srv
        .audit_events("racy")
        .await
        .iter()
        .any(|e| e == "refresh_reuse"));
    srv.stop().await;
}

#[tokio::test]
async fn a_risk_step_up_is_finished_with_an_otp() {
    use devicetrust_server::risk::{Assessment, Flow, RiskContext, RiskDecision, RiskResult};
    struct StepUp;
    #[async_trait::async_trait]
    impl devicetrust_server::risk::RiskPolicy for StepUp {
        async fn assess(&self, ctx: &RiskContext<'_>) -> RiskResult<Assessment> {
            Ok(match ctx.flow {
                Flow::Device => Assessment {
                    decision: RiskDecision::StepUp,
                    signals: vec!["new_network".into()],
                    score: 0,
                    basis: None,
                },
                Flow::Password => Assessment::allow(),
            })
        }
    }
    let srv = TestServer::start_with(Options {
        risk: Risk::Policy(Arc::new(StepUp)),
        ..Options::default()
    })
    .await;
    let phone = enabled_phone(&srv, "stepup").await;
    let step = phone
        .sdk
        .sign_in_with_biometric("stepup", prompt("Sign in"))
        .await
        .unwrap();
    let SignInStep::SecondFactorRequired {
        otp_options,
        this_device_can_approve,
        reasons,
        ..
    } = step
    else {
        panic!()
    };
    assert!(!this_device_can_approve);
    // The app can say why it asks.
    assert_eq!(reasons, vec![StepUpReason::NewNetwork]);
    phone.sdk.send_otp(otp_options[0].channel).await.unwrap();
    let SignInStep::SignedIn { session } =
        phone.sdk.verify_otp(&srv.last_otp("stepup")).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(amr(&session), vec!["swk", "bio", "otp"]);
    srv.stop().await;
}

#[test]
fn configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ScriptedKeyStore::new(&dir.path().join("k"));
    let state = dir.path().join("s");
    let cfg = Config::new("http://127.0.0.1:1", RP_ID, state.to_str().unwrap());
    assert!(
        matches!(
            DeviceTrust::new(cfg, keys.clone()),
            Err(DeviceTrustError::InvalidInput { .. })
        ),
        "http needs the opt-in"
    );
    let mut cfg = Config::new("https://auth.example.com", RP_ID, state.to_str().unwrap());
    cfg.tls_pins = vec!["not base64!".into()];
    assert!(matches!(
        DeviceTrust::new(cfg, keys.clone()),
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    let cfg = Config::new("ftp://x", RP_ID, state.to_str().unwrap());
    assert!(DeviceTrust::new(cfg, keys).is_err());
}

/// Brings a paused server back after `ms` milliseconds.
fn resume_after(srv: &Arc<TestServer>, ms: u64) -> tokio::task::JoinHandle<()> {
    let srv = srv.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        srv.resume().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_requests_are_retried_with_back_off_and_unsafe_ones_are_not() {
    let srv = Arc::new(TestServer::start().await);
    let phone = enabled_phone(&srv, "flaky").await;
    // Down, and back 300 ms later: a list of devices (safe to repeat) rides
    // out the outage on its retries (after 200 ms, then 400 ms).
    srv.pause().await;
    let back = resume_after(&srv, 300);
    assert_eq!(phone.sdk.trusted_devices().await.unwrap().len(), 1);
    back.await.unwrap();
    // A password attempt counts on the server, so it is never repeated.
    srv.pause().await;
    let back = resume_after(&srv, 300);
    assert!(matches!(
        phone.sdk.sign_in_with_password("flaky", PASSWORD).await,
        Err(DeviceTrustError::Network {
            retryable: true,
            ..
        })
    ));
    back.await.unwrap();
}

#[tokio::test]
async fn a_sign_in_dropped_during_the_prompt_keeps_no_session() {
    let srv = TestServer::start().await;
    let phone = enabled_phone(&srv, "drop.me").await;
    phone.sdk.sign_out().await.unwrap();
    phone
        .keys
        .set(Behaviour::Slow(std::time::Duration::from_millis(400)));
    // The app gives up (a cancelled coroutine drops the future the same way).
    let attempt = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        phone
            .sdk
            .sign_in_with_biometric("drop.me", prompt("Sign in")),
    )
    .await;
    assert!(attempt.is_err(), "{attempt:?}");
    assert_eq!(
        phone.keys.dropped_signs(),
        1,
        "the key store's call was dropped"
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(phone.sdk.session().await, None);
    assert_eq!(
        phone.sdk.access_token().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    // Nothing was left half-done: the next sign-in works.
    phone.keys.set(Behaviour::Normal);
    let step = phone
        .sdk
        .sign_in_with_biometric("drop.me", prompt("Sign in"))
        .await
        .unwrap();
    assert!(matches!(step, SignInStep::SignedIn { .. }), "{step:?}");
    srv.stop().await;
}

#[tokio::test]
async fn an_unanswered_prompt_times_out() {
    let srv = TestServer::start().await;
    let mut phone = enabled_phone(&srv, "slow.prompt").await;
    phone.sdk.sign_out().await.unwrap();
    let mut config = Config::new(
        &srv.base,
        RP_ID,
        phone.dir.path().join("state").to_str().unwrap(),
    );
    config.allow_insecure_http = true;
    config.key_store_prompt_timeout_ms = 150;
    phone.sdk = DeviceTrust::new(config, phone.keys.clone()).unwrap();
    phone
        .keys
        .set(Behaviour::Slow(std::time::Duration::from_secs(30)));
    let err = phone
        .sdk
        .sign_in_with_biometric("slow.prompt", prompt("Sign in"))
        .await
        .unwrap_err();
    assert_eq!(err, DeviceTrustError::KeyStoreTimeout { after_ms: 150 });
    assert_eq!(phone.keys.dropped_signs(), 1);
    assert_eq!(phone.sdk.session().await, None);
    // The key is kept: a timeout is not a broken key.
    assert_eq!(phone.keys.key_count(), 1);
    srv.stop().await;
}
