//! Several accounts on one phone, and sessions that survive a restart with
//! a `SessionSealer`, against the real server.

use std::future::Future;
use std::sync::{Arc, Mutex};

use devicetrust_core::*;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;

const NEW_PASSWORD: &str = "Orbit lantern 7 quietly";

/// Password → (enrolment) → e-mail OTP → signed in.
async fn sign_in(srv: &TestServer, sdk: &DeviceTrust, user: &str) -> SessionInfo {
    let mut step = sdk.sign_in_with_password(user, PASSWORD).await.expect("pw");
    if let SignInStep::EnrolmentRequired { .. } = step {
        step = sdk
            .complete_enrolment(SECURITY_CODE, None)
            .await
            .expect("enrol");
    }
    let SignInStep::SecondFactorRequired { .. } = step else {
        panic!("expected a second factor, got {step:?}");
    };
    sdk.send_otp(OtpChannel::Email).await.expect("send");
    match sdk.verify_otp(&srv.last_otp(user)).await.expect("verify") {
        SignInStep::SignedIn { session } => session,
        other => panic!("{other:?}"),
    }
}

async fn biometric(sdk: &DeviceTrust, user: &str) -> SessionInfo {
    match sdk
        .sign_in_with_biometric(user, prompt("Sign in"))
        .await
        .expect("biometric")
    {
        SignInStep::SignedIn { session } => session,
        other => panic!("{other:?}"),
    }
}

fn sealer() -> Arc<dyn SessionSealer> {
    Arc::new(SoftwareSessionSealer::new(&[5u8; 32]).expect("sealer"))
}

/// Records `(user_id, has a session)`, and checks from inside the callback
/// that the SDK has settled and holds no lock: the account is listed as
/// the change says (an account whose slot is still locked shows as signed
/// in), and the registry answers.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, bool)>>,
    sdk: std::sync::OnceLock<DeviceTrust>,
}

impl SessionObserver for Recorder {
    fn session_changed(&self, user_id: String, session: Option<SessionInfo>) {
        if let Some(sdk) = self.sdk.get() {
            // Synchronous context: `accounts()` must answer without waiting
            // (it never waits on an account's lock).
            let mut listing = std::pin::pin!(sdk.accounts());
            let std::task::Poll::Ready(listed) = listing
                .as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
            else {
                panic!("accounts() waited inside the observer");
            };
            let listed = listed.expect("accounts from the observer");
            if let Some(account) = listed.iter().find(|a| a.user_id == user_id) {
                assert_eq!(account.signed_in, session.is_some(), "told before settled");
            }
            let _ = sdk.active_account();
        }
        self.seen.lock().unwrap().push((user_id, session.is_some()));
    }
}

impl Recorder {
    fn seen(&self) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A recorder on `sdk` (it keeps a clone of it: a test-only cycle).
fn observe(sdk: &DeviceTrust) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let _ = recorder.sdk.set(sdk.clone());
    sdk.set_session_observer(recorder.clone());
    recorder
}

/// A restarted app on `phone`'s state and keys, with the given sealer.
fn restart(srv: &TestServer, phone: &Phone, with: Option<Arc<dyn SessionSealer>>) -> DeviceTrust {
    let sdk = Phone::sdk(&srv.base, phone.dir.path(), phone.keys.clone());
    if let Some(sealer) = with {
        sdk.set_session_sealer(sealer);
    }
    sdk
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[tokio::test]
async fn two_accounts_on_one_phone_each_with_its_session_and_biometric_sign_in() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    srv.add_user("Bob", "GB", None).await;
    let phone = Phone::new(&srv.base);
    let sdk = &phone.sdk;
    let recorder = observe(sdk);

    sign_in(&srv, sdk, "Ann").await;
    sdk.enable_biometric_sign_in("Pixel", UserVerification::Biometric, prompt("On"))
        .await
        .expect("ann enables");
    assert_eq!(sdk.profile().await.unwrap().user_id, "ann");
    // Bob's password sign-in keeps Ann's session; Bob becomes active.
    sign_in(&srv, sdk, "Bob").await;
    sdk.enable_biometric_sign_in("Pixel", UserVerification::Biometric, prompt("On"))
        .await
        .expect("bob enables");
    assert_eq!(sdk.active_account().as_deref(), Some("bob"));
    assert_eq!(sdk.profile().await.unwrap().user_id, "bob");
    let bob_token = sdk.access_token().await.unwrap();
    sdk.switch_account("ann").await.expect("switch");
    assert_eq!(sdk.profile().await.unwrap().user_id, "ann");
    assert_ne!(sdk.access_token().await.unwrap(), bob_token);
    assert_eq!(sdk.account().profile().await.unwrap().user_id, "ann");

    let listed = sdk.accounts().await.unwrap();
    let mut users: Vec<&str> = listed.iter().map(|a| a.user_id.as_str()).collect();
    users.sort();
    assert_eq!(users, vec!["ann", "bob"]);
    for account in &listed {
        assert!(account.signed_in && account.biometric_enabled && account.biometric_available);
        // `profile()` was called for both: the picker has their names.
        assert_eq!(account.name.as_deref(), Some("Jane Doe"));
        assert_eq!(
            account.email.as_deref(),
            Some(format!("{}@example.com", account.user_id).as_str())
        );
        assert!(account.last_sign_in_at.is_some());
        assert_eq!(account.active, account.user_id == "ann");
    }

    // Signing Ann out leaves Bob signed in (and nobody active).
    sdk.sign_out().await.unwrap();
    assert_eq!(sdk.active_account(), None);
    assert_eq!(sdk.profile().await, Err(DeviceTrustError::NotSignedIn));
    sdk.switch_account("bob")
        .await
        .expect("bob is still signed in");
    assert_eq!(sdk.profile().await.unwrap().user_id, "bob");

    // The picker: biometric sign-in for the one picked.
    assert_eq!(biometric(sdk, "ann").await.user_id, "ann");
    assert_eq!(sdk.active_account().as_deref(), Some("ann"));
    assert_eq!(sdk.profile().await.unwrap().user_id, "ann");

    // Removing Bob's device (this phone) ends Bob's session only.
    sdk.switch_account("bob").await.unwrap();
    let bob_device = sdk.local_enrolment("bob").await.unwrap().unwrap().device_id;
    sdk.remove_device(&bob_device).await.unwrap();
    assert_eq!(sdk.active_account(), None);
    assert_eq!(
        sdk.switch_account("bob").await,
        Err(DeviceTrustError::NotSignedIn)
    );
    sdk.switch_account("ann").await.expect("ann kept");
    assert_eq!(sdk.profile().await.unwrap().user_id, "ann");
    let listed = sdk.accounts().await.unwrap();
    let bob = listed.iter().find(|a| a.user_id == "bob").unwrap();
    assert!(!bob.signed_in && !bob.biometric_enabled);

    // Sign everyone out; both stay listed for the picker.
    sdk.sign_out_all().await.unwrap();
    assert!(sdk.accounts().await.unwrap().iter().all(|a| !a.signed_in));
    assert_eq!(srv.wait_for_audit("ann", "logout", 2).await, 2);

    // Removing Ann from the phone removes her device on the server too.
    biometric(sdk, "ann").await;
    sdk.remove_account("ann").await.unwrap();
    assert!(sdk
        .accounts()
        .await
        .unwrap()
        .iter()
        .all(|a| a.user_id != "ann"));
    assert_eq!(phone.keys.key_count(), 0);
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM devices WHERE user_id = 'ann' AND removed_at IS NULL")
            .await,
        0
    );

    // The observer heard every sign-in and sign-out, per account.
    let seen = recorder.seen();
    assert!(seen.contains(&("ann".into(), true)) && seen.contains(&("bob".into(), true)));
    assert!(seen.contains(&("ann".into(), false)) && seen.contains(&("bob".into(), false)));
    srv.stop().await;
}

#[tokio::test]
async fn a_restart_restores_the_session_with_a_sealer_and_not_without() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    let phone = Phone::new(&srv.base);
    phone.sdk.set_session_sealer(sealer());
    sign_in(&srv, &phone.sdk, "Ann").await;
    let before = phone.sdk.access_token().await.unwrap();

    let plain = restart(&srv, &phone, None);
    assert_eq!(plain.profile().await, Err(DeviceTrustError::NotSignedIn));
    drop(plain);

    let sdk = restart(&srv, &phone, Some(sealer()));
    let recorder = observe(&sdk);
    assert_eq!(sdk.active_account().as_deref(), Some("ann"));
    // The first call refreshes (the access token was not kept).
    assert_eq!(sdk.profile().await.unwrap().user_id, "ann");
    assert_ne!(sdk.access_token().await.unwrap(), before);
    assert_eq!(recorder.seen(), vec![("ann".into(), true)]);
    // The same session: its strength and time survive.
    let session = sdk.session().await.unwrap();
    assert_eq!(
        session.auth_methods,
        vec![AuthMethod::Password, AuthMethod::Otp]
    );

    // And again: the rotated token was sealed in place of the spent one.
    let again = restart(&srv, &phone, Some(sealer()));
    assert_eq!(again.profile().await.unwrap().user_id, "ann");
    assert!(!srv
        .audit_events("ann")
        .await
        .contains(&"refresh_reuse".to_owned()));
    srv.stop().await;
}

#[tokio::test]
async fn a_session_revoked_while_the_app_was_closed_is_signed_out_and_told() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    let phone = Phone::new(&srv.base);
    phone.sdk.set_session_sealer(sealer());
    sign_in(&srv, &phone.sdk, "Ann").await;

    // Meanwhile, on another phone, the password changes: every other
    // session is revoked.
    let other = Phone::new(&srv.base);
    sign_in(&srv, &other.sdk, "Ann").await;
    other
        .sdk
        .account()
        .change_password(PASSWORD, NEW_PASSWORD)
        .await
        .expect("change");

    let sdk = restart(&srv, &phone, Some(sealer()));
    let recorder = observe(&sdk);
    assert!(sdk.accounts().await.unwrap()[0].signed_in, "not opened yet");
    assert_eq!(sdk.access_token().await, Err(DeviceTrustError::NotSignedIn));
    assert_eq!(recorder.seen(), vec![("ann".into(), false)]);
    assert_eq!(sdk.active_account(), None);
    assert!(!sdk.accounts().await.unwrap()[0].signed_in);
    // No loop: later calls are signed out without a word to anyone.
    assert_eq!(sdk.profile().await, Err(DeviceTrustError::NotSignedIn));
    assert_eq!(recorder.seen().len(), 1);
    let fresh = restart(&srv, &phone, Some(sealer()));
    assert_eq!(fresh.active_account(), None);
    assert_eq!(fresh.session().await, None);
    srv.stop().await;
}

#[tokio::test]
async fn two_refreshes_racing_for_one_account_spend_the_token_once() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    srv.add_user("Bob", "GB", None).await;
    let phone = Phone::new(&srv.base);
    phone.sdk.set_session_sealer(sealer());
    sign_in(&srv, &phone.sdk, "Ann").await;
    sign_in(&srv, &phone.sdk, "Bob").await;

    // After a restart both sessions need a refresh; many callers at once.
    let sdk = restart(&srv, &phone, Some(sealer()));
    sdk.switch_account("ann").await.unwrap();
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let sdk = sdk.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    sdk.access_token().await
                } else {
                    sdk.profile().await.map(|p| p.user_id)
                }
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        let answer = call.await.unwrap().expect("no call fails");
        if i % 2 == 0 {
            tokens.push(answer);
        } else {
            assert_eq!(answer, "ann");
        }
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one refresh, shared");
    assert!(!srv
        .audit_events("ann")
        .await
        .contains(&"refresh_reuse".to_owned()));
    // Bob's session was not touched and refreshes on its own.
    sdk.switch_account("bob").await.unwrap();
    assert_eq!(sdk.profile().await.unwrap().user_id, "bob");
    srv.stop().await;
}

#[tokio::test]
async fn a_crash_around_a_sealed_write_leaves_an_old_copy_or_a_new_one() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    let phone = Phone::new(&srv.base);
    phone.sdk.set_session_sealer(sealer());
    sign_in(&srv, &phone.sdk, "Ann").await;
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(phone.dir.path(), snapshot.path());

    // Killed after a new sign-in but before its sealed write: the state is
    // the snapshot, whose (older) session the server still honours.
    sign_in(&srv, &phone.sdk, "Ann").await;
    let old = Phone::sdk(&srv.base, snapshot.path(), phone.keys.clone());
    old.set_session_sealer(sealer());
    assert_eq!(old.profile().await.unwrap().user_id, "ann");
    drop(old);

    // Killed after the server rotated the refresh token but before the new
    // copy was written: the copy holds a spent token. The server takes it
    // for a stolen copy and revokes that session; the SDK signs out cleanly.
    let stale = tempfile::tempdir().unwrap();
    copy_dir(phone.dir.path(), stale.path());
    let sdk = restart(&srv, &phone, Some(sealer()));
    sdk.access_token().await.expect("refresh"); // rotates the token
    let crashed = Phone::sdk(&srv.base, stale.path(), phone.keys.clone());
    let recorder = observe(&crashed);
    crashed.set_session_sealer(sealer());
    assert_eq!(crashed.profile().await, Err(DeviceTrustError::NotSignedIn));
    assert_eq!(recorder.seen(), vec![("ann".into(), false)]);
    assert!(srv
        .audit_events("ann")
        .await
        .contains(&"refresh_reuse".to_owned()));
    srv.stop().await;
}

/// A sealer whose key store fails.
struct Broken;

impl SessionSealer for Broken {
    fn seal(&self, _: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
        Err(PlatformKeyError::Other {
            reason: "keystore unavailable".into(),
        })
    }
    fn open(&self, _: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
        Err(PlatformKeyError::KeyNotFound)
    }
}

#[tokio::test]
async fn a_failing_sealer_costs_the_restart_not_the_sign_in() {
    let srv = TestServer::start().await;
    srv.add_user("Ann", "GB", None).await;
    let phone = Phone::new(&srv.base);
    phone.sdk.set_session_sealer(Arc::new(Broken));
    sign_in(&srv, &phone.sdk, "Ann").await;
    assert_eq!(phone.sdk.profile().await.unwrap().user_id, "ann");
    let sdk = restart(&srv, &phone, Some(sealer()));
    assert_eq!(sdk.active_account(), None);
    assert_eq!(sdk.profile().await, Err(DeviceTrustError::NotSignedIn));

    // A state folder copied to another phone: its sealer has no key.
    phone.sdk.set_session_sealer(sealer());
    sign_in(&srv, &phone.sdk, "Ann").await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(phone.dir.path(), copy.path());
    let elsewhere = Phone::sdk(&srv.base, copy.path(), phone.keys.clone());
    let recorder = observe(&elsewhere);
    elsewhere.set_session_sealer(Arc::new(Broken));
    assert_eq!(
        elsewhere.profile().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    assert_eq!(recorder.seen(), vec![("ann".into(), false)]);
    srv.stop().await;
}
