//! The SDK's v1.1 calls against the real server: password policy, account
//! changes (password, e-mail, mobile, security code) with their strong-session
//! rule, security events, "forgot user ID", the password reset with the
//! security code, and online enrolment from a card.

use std::time::Duration;

use devicetrust_core::*;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;
use serde_json::{json, Value};

/// A new password that satisfies the default policy.
const NEW_PASSWORD: &str = "Another strong Passw0rd";

/// Password → enrolment → e-mail OTP → signed in, through the SDK.
async fn sign_in_with_code(srv: &TestServer, phone: &Phone, user: &str, password: &str) {
    let step = phone
        .sdk
        .sign_in_with_password(user, password)
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
    let SignInStep::SecondFactorRequired { .. } = step else {
        panic!("expected a second factor, got {step:?}");
    };
    phone.sdk.send_otp(OtpChannel::Email).await.expect("send");
    let step = phone
        .sdk
        .verify_otp(&srv.last_otp(user))
        .await
        .expect("verify");
    assert!(matches!(step, SignInStep::SignedIn { .. }), "{step:?}");
}

/// A card holder signed in with password + code on a new phone.
async fn signed_in_phone(srv: &TestServer, user: &str, mobile: Option<&str>) -> Phone {
    srv.add_user(user, "GB", mobile).await;
    let phone = Phone::new(&srv.base);
    sign_in_with_code(srv, &phone, user, PASSWORD).await;
    phone
}

async fn enable(phone: &Phone) {
    phone
        .sdk
        .enable_biometric_sign_in(
            "Jane's Pixel",
            UserVerification::Biometric,
            prompt("Turn on fingerprint sign-in"),
        )
        .await
        .expect("enable");
}

/// The outbox messages of `purpose`, waiting (bounded) for at least one:
/// messages off the request path may be sent asynchronously.
async fn wait_for_messages(srv: &TestServer, purpose: &str, to: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for _ in 0..100 {
        found = srv
            .outbox_messages()
            .into_iter()
            .filter(|m| m["purpose"] == purpose && m["to"] == to)
            .collect();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}

/// A 16-digit card number with a valid Luhn check digit.
fn card_number(prefix15: &str) -> String {
    assert_eq!(prefix15.len(), 15);
    let sum: u32 = prefix15
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will sit at the right: these positions double first.
            if i % 2 == 0 {
                let t = d * 2;
                if t > 9 {
                    t - 9
                } else {
                    t
                }
            } else {
                d
            }
        })
        .sum();
    format!("{prefix15}{}", (10 - sum % 10) % 10)
}

/// Feeds a card to the server through the admin API; returns its `card_ref`.
async fn add_card(
    srv: &TestServer,
    number: &str,
    card_id: &str,
    name: &str,
    activated: bool,
) -> String {
    let a = srv
        .post(
            "/admin/v1/cards",
            json!({
                "card_number": number,
                "card_id": card_id,
                "name": name,
                "email": "card.holder@example.com",
                "mobile": null,
                "primary_market": "GB",
                "activated": activated,
            }),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(a.status, 201, "add card: {:?}", a.body);
    a.body["card_ref"].as_str().expect("card_ref").to_owned()
}

#[tokio::test]
async fn the_password_policy_is_read_and_checked_locally() {
    let srv = TestServer::start().await;
    let phone = Phone::new(&srv.base);
    let policy = phone.sdk.password_policy().await.expect("policy");
    assert_eq!(
        (
            policy.min_length,
            policy.max_length,
            policy.classes_required
        ),
        (8, 128, 3)
    );
    assert!(!policy.description.is_empty());
    assert!(check_password(&policy, NEW_PASSWORD, "jane.doe").is_empty());
    assert_eq!(
        check_password(&policy, "short", ""),
        vec![PasswordRule::TooShort, PasswordRule::TooFewClasses]
    );
    assert_eq!(
        policy.check("Jane.Doe Passw0rd", "jane.doe"),
        vec![PasswordRule::ContainsUserId]
    );
    srv.stop().await;
}

#[tokio::test]
async fn changing_the_password_revokes_other_sessions_and_replaces_the_old_one() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "pw.change", None).await;
    let other = Phone::new(&srv.base);
    sign_in_with_code(&srv, &other, "pw.change", PASSWORD).await;
    let account = phone.sdk.account();

    // Refused before any round trip, and by the server's policy.
    assert_eq!(
        account.change_password(PASSWORD, PASSWORD).await,
        Err(DeviceTrustError::PasswordRejected {
            reasons: vec![PasswordRule::SameAsCurrent]
        })
    );
    match account.change_password(PASSWORD, "password").await {
        Err(DeviceTrustError::PasswordRejected { reasons }) => {
            assert!(
                reasons.contains(&PasswordRule::TooFewClasses),
                "{reasons:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        account.change_password(PASSWORD, "Password1").await,
        Err(DeviceTrustError::PasswordRejected {
            reasons: vec![PasswordRule::Common]
        })
    );
    match account.change_password(PASSWORD, "My pw.change 2024").await {
        Err(DeviceTrustError::PasswordRejected { reasons }) => {
            assert!(
                reasons.contains(&PasswordRule::ContainsUserId),
                "{reasons:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A wrong current password is a failed sign-in.
    assert_eq!(
        account
            .change_password("not my password", NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::InvalidCredentials)
    );

    account
        .change_password(PASSWORD, NEW_PASSWORD)
        .await
        .expect("change");
    // This phone stays signed in; the other one is signed out.
    assert_eq!(
        account.profile().await.expect("profile").user_id,
        "pw.change"
    );
    assert_eq!(
        other.sdk.profile().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    // The old password no longer works, the new one does.
    phone.sdk.sign_out().await.unwrap();
    assert_eq!(
        phone.sdk.sign_in_with_password("pw.change", PASSWORD).await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    sign_in_with_code(&srv, &phone, "pw.change", NEW_PASSWORD).await;
    srv.stop().await;
}

#[tokio::test]
async fn account_changes_need_a_recent_strong_sign_in() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "strong", None).await;
    enable(&phone).await;
    let account = phone.sdk.account();
    // Eleven minutes later the session is valid but no longer strong enough.
    srv.clock.advance(11 * 60);
    assert_eq!(phone.sdk.profile().await.unwrap().user_id, "strong");
    assert_eq!(
        account.change_security_code("24680135").await,
        Err(DeviceTrustError::RecentSignInRequired)
    );
    assert_eq!(
        account.change_password(PASSWORD, NEW_PASSWORD).await,
        Err(DeviceTrustError::RecentSignInRequired)
    );
    assert_eq!(
        account.change_email("new@example.com").await,
        Err(DeviceTrustError::RecentSignInRequired)
    );
    // The software key store's biometric sign-in is `swk`: not strong
    // enough (key attestation's rule), however recent.
    let step = phone
        .sdk
        .sign_in_with_biometric("strong", prompt("Confirm it's you"))
        .await
        .unwrap();
    assert!(matches!(step, SignInStep::SignedIn { .. }), "{step:?}");
    assert_eq!(
        account.change_security_code("24680135").await,
        Err(DeviceTrustError::RecentSignInRequired)
    );
    // Password and a code make it strong again.
    sign_in_with_code(&srv, &phone, "strong", PASSWORD).await;
    account
        .change_security_code("24680135")
        .await
        .expect("after re-authentication");
    // Signed out: every account call says so.
    phone.sdk.sign_out().await.unwrap();
    assert_eq!(
        account.change_security_code("24680135").await,
        Err(DeviceTrustError::NotSignedIn)
    );
    assert_eq!(
        account.security_events(10).await,
        Err(DeviceTrustError::NotSignedIn)
    );
    srv.stop().await;
}

#[tokio::test]
async fn changing_the_email_is_confirmed_with_a_code_sent_to_the_new_address() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "mail.change", None).await;
    let account = phone.sdk.account();
    assert!(matches!(
        account.confirm_contact_change("123456").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    assert!(matches!(
        account.change_email("not an address").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));

    let pending = account
        .change_email("jane.new@example.org")
        .await
        .expect("change e-mail");
    assert_eq!(pending.channel, OtpChannel::Email);
    assert!(pending.destination.ends_with("@example.org"), "{pending:?}");
    assert!(
        !pending.destination.contains("jane.new"),
        "masked: {pending:?}"
    );
    let code = srv.last_otp("mail.change");
    let otp_to = srv
        .outbox_messages()
        .into_iter()
        .rev()
        .find(|m| m["purpose"] == "otp")
        .expect("otp message");
    assert_eq!(otp_to["to"], "jane.new@example.org");
    assert_eq!(
        account.confirm_contact_change(wrong_code(&code)).await,
        Err(DeviceTrustError::OtpInvalid { attempts_left: 4 })
    );
    let profile = account
        .confirm_contact_change(&code)
        .await
        .expect("confirm");
    assert_eq!(profile.email, "jane.new@example.org");
    assert_eq!(
        phone.sdk.profile().await.unwrap().email,
        "jane.new@example.org"
    );
    // The change is used up.
    assert!(matches!(
        account.confirm_contact_change(&code).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    srv.stop().await;
}

#[tokio::test]
async fn the_mobile_can_be_changed_and_removed() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "mobile.change", Some("+447700900123")).await;
    let account = phone.sdk.account();
    assert!(matches!(
        account.change_mobile("07700 900999").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    let pending = account
        .change_mobile("+447700900999")
        .await
        .expect("change mobile");
    assert_eq!(pending.channel, OtpChannel::Sms);
    assert!(pending.destination.ends_with("999"), "{pending:?}");
    let profile = account
        .confirm_contact_change(&srv.last_otp("mobile.change"))
        .await
        .expect("confirm");
    assert_eq!(profile.mobile.as_deref(), Some("+447700900999"));

    account.remove_mobile().await.expect("remove mobile");
    assert_eq!(account.profile().await.unwrap().mobile, None);
    srv.stop().await;
}

#[tokio::test]
async fn a_new_security_code_replaces_the_old_one_for_recovery() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "code.change", None).await;
    let account = phone.sdk.account();
    assert!(matches!(
        account.change_security_code("123456").await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    account
        .change_security_code("97531864")
        .await
        .expect("change security code");
    phone.sdk.sign_out().await.unwrap();
    let recovery = phone.sdk.recovery();
    assert_eq!(
        recovery
            .start_password_recovery("code.change", SECURITY_CODE)
            .await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    let started = recovery
        .start_password_recovery("code.change", "97531864")
        .await
        .expect("recovery with the new code");
    assert!(!started.otp_options.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn security_events_list_what_happened_newest_first() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "events", None).await;
    enable(&phone).await;
    let account = phone.sdk.account();
    srv.clock.advance(1);
    account
        .change_password(PASSWORD, NEW_PASSWORD)
        .await
        .expect("change");
    assert!(matches!(
        account.security_events(0).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    assert!(matches!(
        account.security_events(201).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    let events = account.security_events(50).await.expect("events");
    let types: Vec<_> = events.iter().map(|e| e.event_type.clone()).collect();
    for expected in [
        SecurityEventType::Enrolled,
        SecurityEventType::SignIn,
        SecurityEventType::DeviceAdded,
        SecurityEventType::PasswordChanged,
    ] {
        assert!(types.contains(&expected), "{expected:?} in {types:?}");
    }
    assert!(
        events.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first: {events:?}"
    );
    assert_eq!(types[0], SecurityEventType::PasswordChanged, "{types:?}");
    let added = events
        .iter()
        .find(|e| e.event_type == SecurityEventType::DeviceAdded)
        .unwrap();
    let local = phone.sdk.local_enrolment("events").await.unwrap().unwrap();
    assert_eq!(added.device_id.as_deref(), Some(local.device_id.as_str()));
    assert_eq!(account.security_events(1).await.unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn forgot_user_id_emails_it_and_never_says_whether_anything_matched() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "Forgetful.One", None).await;
    phone.sdk.sign_out().await.unwrap();
    let recovery = phone.sdk.recovery();
    // Wrong code, unknown e-mail: the same quiet success.
    recovery
        .forgot_user_id("forgetful.one@example.com", "97531864")
        .await
        .expect("wrong code");
    recovery
        .forgot_user_id("nobody@example.com", SECURITY_CODE)
        .await
        .expect("unknown e-mail");
    assert!(matches!(
        recovery.forgot_user_id("nobody", SECURITY_CODE).await,
        Err(DeviceTrustError::InvalidInput { .. })
    ));
    recovery
        .forgot_user_id("Forgetful.One@Example.com", SECURITY_CODE)
        .await
        .expect("match");
    let sent = wait_for_messages(&srv, "recovery", "forgetful.one@example.com").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("forgetful.one"),
        "{sent:?}"
    );
    assert!(wait_for_messages(&srv, "recovery", "nobody@example.com")
        .await
        .is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn forgot_password_end_to_end() {
    let srv = TestServer::start().await;
    let phone = signed_in_phone(&srv, "reset.me", None).await;
    enable(&phone).await;
    phone.sdk.sign_out().await.unwrap();
    let other = Phone::new(&srv.base);
    sign_in_with_code(&srv, &other, "reset.me", PASSWORD).await;
    let recovery = phone.sdk.recovery();

    assert_eq!(
        recovery
            .complete_password_recovery("123456", NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::NoRecoveryInProgress)
    );
    assert_eq!(
        recovery
            .start_password_recovery("reset.me", "97531864")
            .await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    assert_eq!(
        recovery
            .start_password_recovery("nobody.here", SECURITY_CODE)
            .await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    let started = recovery
        .start_password_recovery("reset.me", SECURITY_CODE)
        .await
        .expect("start");
    assert_eq!(started.otp_options[0].channel, OtpChannel::Email);
    // The code goes out through the same call as a sign-in's.
    let sent = phone.sdk.send_otp(OtpChannel::Email).await.expect("send");
    assert_eq!(sent.destination, started.otp_options[0].destination);
    assert_eq!(
        phone.sdk.verify_otp("123456").await,
        Err(DeviceTrustError::NoSignInInProgress)
    );
    // A rejected password keeps the recovery open.
    match recovery
        .complete_password_recovery(&srv.last_otp("reset.me"), "password")
        .await
    {
        Err(DeviceTrustError::PasswordRejected { reasons }) => {
            assert!(
                reasons.contains(&PasswordRule::TooFewClasses),
                "{reasons:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    srv.clock.advance(31);
    recovery.send_otp(OtpChannel::Email).await.expect("resend");
    let code = srv.last_otp("reset.me");
    assert_eq!(
        recovery
            .complete_password_recovery(wrong_code(&code), NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::OtpInvalid { attempts_left: 4 })
    );
    recovery
        .complete_password_recovery(&code, NEW_PASSWORD)
        .await
        .expect("complete");
    assert_eq!(
        recovery
            .complete_password_recovery(&code, NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::NoRecoveryInProgress)
    );

    // Every session is gone; the phone's trust must be renewed.
    assert_eq!(
        other.sdk.profile().await,
        Err(DeviceTrustError::NotSignedIn)
    );
    assert!(!phone
        .sdk
        .is_biometric_sign_in_available("reset.me")
        .await
        .unwrap());
    assert_eq!(
        phone
            .sdk
            .sign_in_with_biometric("reset.me", prompt("Sign in"))
            .await,
        Err(DeviceTrustError::ReauthorisationRequired)
    );
    assert_eq!(phone.keys.key_count(), 1, "the key is kept");
    assert_eq!(
        phone.sdk.sign_in_with_password("reset.me", PASSWORD).await,
        Err(DeviceTrustError::InvalidCredentials)
    );
    // Password + code on this phone renews its trust.
    sign_in_with_code(&srv, &phone, "reset.me", NEW_PASSWORD).await;
    assert!(phone
        .sdk
        .is_biometric_sign_in_available("reset.me")
        .await
        .unwrap());
    phone.sdk.sign_out().await.unwrap();
    assert!(matches!(
        phone
            .sdk
            .sign_in_with_biometric("reset.me", prompt("Sign in"))
            .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    let events = phone.sdk.account().security_events(20).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.event_type == SecurityEventType::RecoveryUsed));
    srv.stop().await;
}

#[tokio::test]
async fn an_account_is_created_from_a_card_then_enrolled() {
    let srv = TestServer::start().await;
    let phone = Phone::new(&srv.base);
    let number = card_number("374245455400126");
    let card_ref = add_card(&srv, &number, "4321", "Jane Doe", false).await;

    // Typos cost no request.
    for (n, id) in [("4111111111111112", "4321"), (number.as_str(), "432")] {
        assert!(matches!(
            phone
                .sdk
                .create_account(n, id, "Jane Doe", "jane.card", NEW_PASSWORD)
                .await,
            Err(DeviceTrustError::InvalidInput { .. })
        ));
    }
    assert_eq!(
        phone
            .sdk
            .create_account(&number, "4321", "Jane Doe", "jane.card", NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::CardNotActivated)
    );
    let a = srv
        .post(
            &format!("/admin/v1/cards/{card_ref}/activate"),
            json!({}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(a.status, 204, "activate: {:?}", a.body);
    for (id, name) in [("1234", "Jane Doe"), ("4321", "John Doe")] {
        assert_eq!(
            phone
                .sdk
                .create_account(&number, id, name, "jane.card", NEW_PASSWORD)
                .await,
            Err(DeviceTrustError::CardNotRecognized),
            "{id} {name}"
        );
    }
    match phone
        .sdk
        .create_account(&number, "4321", "Jane Doe", "jane.card", "password")
        .await
    {
        Err(DeviceTrustError::PasswordRejected { reasons }) => {
            assert!(
                reasons.contains(&PasswordRule::TooFewClasses),
                "{reasons:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    srv.add_user("taken.id", "GB", None).await;
    assert_eq!(
        phone
            .sdk
            .create_account(&number, "4321", "Jane Doe", "taken.id", NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::UserIdTaken)
    );

    // Spaces as printed, the name in other case and punctuation.
    let spaced = format!("{} {} {}", &number[..4], &number[4..10], &number[10..]);
    let user = phone
        .sdk
        .create_account(&spaced, "4321", "JANE  doe.", "Jane.Card", NEW_PASSWORD)
        .await
        .expect("create account");
    assert!(user.eq_ignore_ascii_case("jane.card"), "{user}");
    assert_eq!(
        phone
            .sdk
            .create_account(&number, "4321", "Jane Doe", "jane.card2", NEW_PASSWORD)
            .await,
        Err(DeviceTrustError::CardAlreadyEnrolled)
    );

    // The new user signs in and enrols like any other.
    let step = phone
        .sdk
        .sign_in_with_password("jane.card", NEW_PASSWORD)
        .await
        .expect("sign in");
    let SignInStep::EnrolmentRequired { name, email, .. } = step else {
        panic!("{step:?}")
    };
    assert_eq!(name, "Jane Doe");
    assert_eq!(email, "card.holder@example.com");
    srv.stop().await;
}

#[tokio::test]
async fn a_second_card_is_linked_and_listed() {
    let srv = TestServer::start().await;
    let phone = Phone::new(&srv.base);
    let first = card_number("371449635398431");
    let second = card_number("378734493671000");
    let stranger = card_number("601111111111111");
    add_card(&srv, &first, "1111", "Jane Doe", true).await;
    add_card(&srv, &second, "2222", "Jane Doe", true).await;
    add_card(&srv, &stranger, "3333", "Someone Else", true).await;
    phone
        .sdk
        .create_account(&first, "1111", "Jane Doe", "two.cards", NEW_PASSWORD)
        .await
        .expect("create account");
    sign_in_with_code(&srv, &phone, "two.cards", NEW_PASSWORD).await;
    let account = phone.sdk.account();

    let cards = account.linked_cards().await.expect("cards");
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].last4, &first[12..]);

    assert_eq!(
        account.link_card(&second, "9999").await,
        Err(DeviceTrustError::CardNotRecognized)
    );
    assert_eq!(
        account.link_card(&stranger, "3333").await,
        Err(DeviceTrustError::CardNotRecognized)
    );
    assert_eq!(
        account.link_card(&first, "1111").await,
        Err(DeviceTrustError::CardAlreadyEnrolled)
    );
    let linked = account.link_card(&second, "2222").await.expect("link");
    assert_eq!(linked.last4, &second[12..]);
    let cards = account.linked_cards().await.expect("cards");
    assert_eq!(cards.len(), 2);
    assert!(cards.iter().any(|c| c.card_ref == linked.card_ref));

    // Linking wants a strong session too.
    srv.clock.advance(11 * 60);
    assert_eq!(
        account.link_card(&stranger, "3333").await,
        Err(DeviceTrustError::RecentSignInRequired)
    );
    srv.stop().await;
}
