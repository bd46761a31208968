//! Every error code of the contract, and the input rules, over real HTTP.

use std::sync::Arc;

use devicetrust_e2e::*;
use devicetrust_server::app::Settings;
use devicetrust_server::risk::{Assessment, RiskContext, RiskDecision, RiskPolicy, RiskResult};
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_are_invalid_request_never_500() {
    let srv = TestServer::start().await;
    let cases = [
        json!({}),
        json!({"user_id": "jane"}),
        json!({"user_id": "jane", "password": 123}),
        json!({"user_id": "jane", "password": "x", "extra": 1}),
        json!({"user_id": null, "password": "x"}),
        json!({"user_id": "", "password": "x"}),
        json!({"user_id": "a".repeat(65), "password": "x"}),
        json!({"user_id": "jane doe", "password": "x"}),
        json!({"user_id": "jane", "password": ""}),
        json!({"user_id": "jane", "password": "x", "device_id": "not an id!"}),
        json!([1, 2]),
        json!("text"),
    ];
    for body in cases {
        let a = srv.post("/v1/login/password", body.clone(), None).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}");
        assert!(!a.body["error"]["message"].as_str().unwrap().is_empty());
    }
    // `null` in an optional field means absent.
    srv.add_user("jane", "GB", None).await;
    let ok = srv
        .post(
            "/v1/login/password",
            json!({"user_id": "jane", "password": PASSWORD, "device_id": null}),
            None,
        )
        .await;
    assert_eq!(ok.status, 200);
    // Wrong content type and broken JSON.
    let a = srv
        .post_raw("/v1/login/password", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = srv
        .post_raw(
            "/v1/login/password",
            "application/json",
            b"{\"user_id\":".to_vec(),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    // Endpoints without a body take empty or {} only.
    let s = srv.sign_in_with_otp("jane", None).await;
    let t = s["access_token"].as_str().unwrap();
    let a = srv
        .post("/v1/devices/registration", json!({"x": 1}), Some(t))
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = srv
        .http
        .post(format!("{}/v1/devices/registration", srv.base))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 200, "empty body accepted");
    srv.stop().await;
}

#[tokio::test]
async fn bodies_over_16_kib_are_413() {
    let srv = TestServer::start().await;
    let big = json!({"user_id": "jane", "password": "x".repeat(17 * 1024)});
    let a = srv.post("/v1/login/password", big, None).await;
    assert_eq!((a.status, a.code()), (413, "payload_too_large"));
    // The same for endpoints that take no body.
    srv.add_user("big", "GB", None).await;
    let s = srv.sign_in_with_otp("big", None).await;
    let resp = srv
        .http
        .post(format!("{}/v1/session/logout", srv.base))
        .bearer_auth(s["access_token"].as_str().unwrap())
        .body(vec![b' '; 17 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    srv.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let srv = TestServer::start().await;
    let a = srv.get("/v1/nothing", None).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = srv.get("/v1/login/password", None).await;
    assert_eq!((a.status, a.code()), (405, "method_not_allowed"));
    srv.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let srv = TestServer::start().await;
    srv.add_user("jane", "GB", None).await;
    let wrong = srv.password("jane", "wrong password", None).await;
    let unknown = srv.password("nobody", "wrong password", None).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    srv.stop().await;
}

#[tokio::test]
async fn five_failures_lock_for_thirty_minutes_then_unlock() {
    let srv = TestServer::start().await;
    srv.add_user("lock.me", "GB", None).await;
    for i in 1..=4 {
        let a = srv.password("LOCK.ME", "bad", None).await;
        assert_eq!(a.code(), "invalid_credentials", "attempt {i}");
    }
    // The failure that reaches the limit answers with its own error...
    let fifth = srv.password("lock.me", "bad", None).await;
    assert_eq!(fifth.code(), "invalid_credentials");
    // ...later attempts, even with the right password, are locked.
    let locked = srv.password("lock.me", PASSWORD, None).await;
    assert_eq!((locked.status, locked.code()), (423, "account_locked"));
    let retry = locked.body["error"]["retry_after_s"].as_i64().unwrap();
    assert!((1..=1800).contains(&retry), "{retry}");
    srv.settle().await;
    let alert = srv.outbox_messages().into_iter().last().unwrap();
    assert_eq!(alert["purpose"], "alert");
    assert_eq!(alert["event"], "account_locked");
    assert!(alert["text"].as_str().unwrap().contains("locked"));
    assert!(srv
        .audit_events("lock.me")
        .await
        .iter()
        .any(|e| e == "account_locked"));

    // 30 minutes later the lock is over and the count starts again.
    srv.clock.advance(1800);
    assert_eq!(srv.password("lock.me", PASSWORD, None).await.status, 200);

    // Unknown user ids lock the same way: a lock reveals nothing.
    for _ in 0..5 {
        srv.password("ghost", "bad", None).await;
    }
    assert_eq!(
        srv.password("ghost", "bad", None).await.code(),
        "account_locked"
    );

    // The operator unlocks.
    for _ in 0..5 {
        srv.password("lock.me", "bad", None).await;
    }
    assert_eq!(
        srv.password("lock.me", PASSWORD, None).await.code(),
        "account_locked"
    );
    let u = srv
        .post(
            "/admin/v1/users/Lock.Me/unlock",
            json!({}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(u.status, 204);
    assert_eq!(srv.password("lock.me", PASSWORD, None).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn password_and_otp_failures_count_together_and_a_session_resets_them() {
    let srv = TestServer::start().await;
    srv.add_user("mix", "GB", None).await;
    srv.sign_in_with_otp("mix", None).await;
    for _ in 0..3 {
        srv.password("mix", "bad", None).await;
    }
    let (login_id, code) = srv.pending_otp("mix").await;
    let wrong = wrong_code(&code);
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": wrong}),
            None,
        )
        .await;
    assert_eq!(
        (a.code(), a.body["error"]["attempts_left"].as_i64()),
        ("otp_invalid", Some(4))
    );
    // Fifth failure in a row: its own error, then the lock.
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": wrong}),
            None,
        )
        .await;
    assert_eq!(a.code(), "otp_invalid");
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(
        a.code(),
        "account_locked",
        "even the right code is refused while locked"
    );
    let a = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "email"}),
            None,
        )
        .await;
    assert_eq!(a.code(), "account_locked");

    // A completed sign-in resets the count.
    srv.post("/admin/v1/users/mix/unlock", json!({}), Some(ADMIN_TOKEN))
        .await;
    for _ in 0..4 {
        srv.password("mix", "bad", None).await;
    }
    srv.sign_in_with_otp("mix", None).await;
    for _ in 0..4 {
        assert_eq!(
            srv.password("mix", "bad", None).await.code(),
            "invalid_credentials"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_lock_does_not_stop_the_owners_device_sign_in() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("owner").await;
    for _ in 0..6 {
        srv.password("owner", "attacker guess", None).await;
    }
    assert_eq!(
        srv.password("owner", PASSWORD, None).await.code(),
        "account_locked"
    );
    let b = srv.device_sign_in(&device_id, &key, "owner").await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    // ...and the device sign-in did not lift the lock others caused.
    assert_eq!(
        srv.password("owner", PASSWORD, None).await.code(),
        "account_locked"
    );
    srv.stop().await;
}

#[tokio::test]
async fn otp_rules_tries_expiry_resend_spacing_and_cap() {
    let srv = TestServer::start().await;
    srv.add_user("otp.user", "GB", None).await;
    srv.sign_in_with_otp("otp.user", None).await;
    let p = srv.password("otp.user", PASSWORD, None).await;
    let login_id = p.body["login_id"].clone();
    let send = || {
        srv.post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "email"}),
            None,
        )
    };

    // Verify before any send: nothing to check.
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": "123456"}),
            None,
        )
        .await;
    assert_eq!(a.code(), "otp_expired");
    // No mobile on file: sms is a bad request.
    let a = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "sms"}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "fax"}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));

    assert_eq!(send().await.status, 200);
    let first = srv.last_otp("otp.user");
    // Resends are spaced.
    let a = send().await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"));
    assert_eq!(a.body["error"]["retry_after_s"], 30);
    srv.clock.advance(30);
    assert_eq!(send().await.status, 200);
    let second = srv.last_otp("otp.user");
    // A new send replaces the old code.
    if first != second {
        let a = srv
            .post(
                "/v1/login/otp/verify",
                json!({"login_id": login_id, "code": first}),
                None,
            )
            .await;
        assert_eq!(a.code(), "otp_invalid");
    }
    // Malformed codes are bad requests, not guesses.
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": "12345"}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    // The code expires after 5 minutes.
    srv.clock.advance(301);
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": second}),
            None,
        )
        .await;
    assert_eq!(a.code(), "otp_expired");
    // Cap: 5 sends per login.
    for _ in 0..3 {
        srv.clock.advance(30);
        assert_eq!(send().await.status, 200);
    }
    srv.clock.advance(30);
    let a = send().await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"), "{:?}", a.body);
    // The login itself expires after 10 minutes.
    srv.clock.advance(600);
    assert_eq!(send().await.code(), "login_expired");
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": "AAAAAAAAAAAAAAAAAAAAAA", "code": "123456"}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (401, "login_expired"));
    srv.stop().await;
}

#[tokio::test]
async fn each_code_allows_five_tries_then_otp_expired() {
    let mut opts = Options::default();
    // A higher lock threshold isolates the per-code limit.
    opts.settings = Settings {
        lockout_threshold: 20,
        ..opts.settings
    };
    let srv = TestServer::start_with(opts).await;
    srv.add_user("tries", "GB", None).await;
    srv.sign_in_with_otp("tries", None).await;
    let (login_id, code) = srv.pending_otp("tries").await;
    let wrong = wrong_code(&code);
    for left in (0..5).rev() {
        let a = srv
            .post(
                "/v1/login/otp/verify",
                json!({"login_id": login_id, "code": wrong}),
                None,
            )
            .await;
        assert_eq!(
            (a.code(), a.body["error"]["attempts_left"].as_i64()),
            ("otp_invalid", Some(left))
        );
    }
    let a = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(
        a.code(),
        "otp_expired",
        "out of tries: even the right code needs a new send"
    );
    srv.stop().await;
}

#[tokio::test]
async fn enrolment_rules_are_enforced() {
    let srv = TestServer::start().await;
    srv.add_user("new.user", "GB", None).await;
    let p = srv.password("new.user", PASSWORD, None).await;
    let login_id = p.body["login_id"].clone();
    for bad in [
        "12345",
        "1234567890",
        "111111",
        "123456",
        "987654",
        "12a456",
        "",
    ] {
        let a = srv
            .post(
                "/v1/login/enrol",
                json!({"login_id": login_id, "security_code": bad}),
                None,
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    for bad in ["07700900123", "+44 7700 900123", "+0123456789"] {
        let a = srv
            .post(
                "/v1/login/enrol",
                json!({"login_id": login_id, "security_code": "135790", "mobile": bad}),
                None,
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    // Until enrolment completes, every password sign-in asks for it.
    assert_eq!(
        srv.password("new.user", PASSWORD, None).await.body["status"],
        "enrolment_required"
    );
    let a = srv
        .post(
            "/v1/login/enrol",
            json!({"login_id": login_id, "security_code": "9081726", "mobile": "+15551234567"}),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // A mobile given at enrolment is no OTP channel until this sign-in
    // completes with a code sent to the e-mail on file.
    assert_eq!(a.body["methods"].as_array().map(Vec::len), Some(1));
    assert_eq!(a.body["methods"][0]["channel"], "email");
    let code = srv.send_email_otp("new.user", &login_id).await;
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    let p = srv.password("new.user", PASSWORD, None).await;
    assert_eq!(p.body["status"], "second_factor_required");
    assert_eq!(p.body["methods"][1]["channel"], "sms");
    let a = srv
        .post(
            "/v1/login/enrol",
            json!({"login_id": "AAAAAAAAAAAAAAAAAAAAAA", "security_code": "135790"}),
            None,
        )
        .await;
    assert_eq!(a.code(), "login_expired");
    // The security code is stored hashed.
    let user = srv.store.user("new.user").await.unwrap().unwrap();
    // Peppered with a key derived from the server key, then argon2id.
    assert!(user
        .security_code_hash
        .unwrap()
        .starts_with("p1$$argon2id$"));
    srv.stop().await;
}

#[tokio::test]
async fn device_proof_errors() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("proof").await;
    let c = srv.challenge(&device_id).await;
    let ch = c.body["challenge"].as_str().unwrap().to_owned();
    let cid = c.body["challenge_id"].clone();
    let try_proof = |proof: String| {
        srv.post(
            "/v1/login/device",
            json!({"challenge_id": cid, "proof": proof}),
            None,
        )
    };

    let other = DeviceKey::generate();
    let bad = [
        (
            "wrong nonce",
            key.login_proof(RP_ID, &device_id, "proof", "AAAA"),
        ),
        (
            "wrong aud",
            key.login_proof("https://evil.example", &device_id, "proof", &ch),
        ),
        (
            "wrong sub",
            key.login_proof(RP_ID, &device_id, "someone", &ch),
        ),
        (
            "wrong key",
            other.login_proof(RP_ID, &device_id, "proof", &ch),
        ),
        (
            "wrong typ",
            key.sign_jws(
                &json!({"alg": "ES256", "typ": "devicetrust-register+jwt", "kid": device_id}),
                &json!({"aud": RP_ID, "sub": "proof", "nonce": ch}),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"devicetrust-login+jwt"}"#),
                b64(b"{}")
            ),
        ),
        ("garbage", "not.a.jws".to_owned()),
        ("DER signature", {
            let p = key.login_proof(RP_ID, &device_id, "proof", &ch);
            let (input, _) = p.rsplit_once('.').unwrap();
            format!("{input}.{}", b64([0x30u8; 70]))
        }),
    ];
    for (what, proof) in bad {
        let a = try_proof(proof).await;
        assert_eq!((a.status, a.code()), (401, "signature_invalid"), "{what}");
    }
    // Another kid: the challenge was issued to this device, not that one.
    let a = try_proof(key.login_proof(RP_ID, "AAAAAAAAAAAAAAAAAAAAAA", "proof", &ch)).await;
    assert_eq!(
        (a.status, a.code()),
        (401, "challenge_invalid"),
        "wrong kid"
    );
    // Failed proofs do not burn the owner's challenge.
    let good = key.login_proof(RP_ID, &device_id, "proof", &ch);
    assert_eq!(try_proof(good.clone()).await.status, 200);
    // Replay: the challenge is spent.
    let a = try_proof(good).await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));
    // Unknown and expired challenges.
    let a = srv
        .post(
            "/v1/login/device",
            json!({"challenge_id": "AAAAAAAAAAAAAAAAAAAAAA", "proof": "a.b.c"}),
            None,
        )
        .await;
    assert_eq!(a.code(), "challenge_invalid");
    let c = srv.challenge(&device_id).await;
    srv.clock.advance(121);
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "proof",
        c.body["challenge"].as_str().unwrap(),
    );
    let a = srv
        .post(
            "/v1/login/device",
            json!({"challenge_id": c.body["challenge_id"], "proof": proof}),
            None,
        )
        .await;
    assert_eq!(a.code(), "challenge_invalid");
    // Unknown device.
    let a = srv.challenge("AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((a.status, a.code()), (401, "device_not_recognized"));
    // Bad proofs never lock the owner's password sign-in.
    assert_eq!(srv.password("proof", PASSWORD, None).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn registration_errors() {
    let srv = TestServer::start().await;
    srv.add_user("reg", "GB", None).await;
    let s = srv.sign_in_with_otp("reg", None).await;
    let t = s["access_token"].as_str().unwrap().to_owned();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(&t))
        .await;
    let rid = reg.body["registration_id"].clone();
    let ch = reg.body["challenge"].as_str().unwrap().to_owned();
    let key = DeviceKey::generate();
    let body = |proof: String| {
        json!({"registration_id": rid, "proof": proof, "name": "Phone",
        "platform": "ios", "key_storage": "secure_enclave", "user_verification": "biometric"})
    };

    let a = srv
        .post(
            "/v1/devices",
            body(key.register_proof(RP_ID, "reg", "AAAA")),
            Some(&t),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (401, "signature_invalid"),
        "wrong nonce"
    );
    let a = srv
        .post(
            "/v1/devices",
            body(key.register_proof(RP_ID, "other", &ch)),
            Some(&t),
        )
        .await;
    assert_eq!(a.code(), "signature_invalid", "wrong sub");
    // A proof whose JWK is not the signing key.
    let other = DeviceKey::generate();
    let forged = other.sign_jws(
        &json!({"alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": key.jwk()}),
        &json!({"aud": RP_ID, "sub": "reg", "nonce": ch}),
    );
    assert_eq!(
        srv.post("/v1/devices", body(forged), Some(&t)).await.code(),
        "signature_invalid"
    );
    // Bad enum values and names.
    let mut b = body(key.register_proof(RP_ID, "reg", &ch));
    b["platform"] = json!("windows");
    assert_eq!(
        srv.post("/v1/devices", b, Some(&t)).await.code(),
        "invalid_request"
    );
    let mut b = body(key.register_proof(RP_ID, "reg", &ch));
    b["name"] = json!("   ");
    assert_eq!(
        srv.post("/v1/devices", b, Some(&t)).await.code(),
        "invalid_request"
    );
    // No token, and another user's registration.
    assert_eq!(
        srv.post(
            "/v1/devices",
            body(key.register_proof(RP_ID, "reg", &ch)),
            None
        )
        .await
        .code(),
        "unauthorized"
    );
    srv.add_user("other", "GB", None).await;
    let os = srv.sign_in_with_otp("other", None).await;
    let a = srv
        .post(
            "/v1/devices",
            body(key.register_proof(RP_ID, "other", &ch)),
            os["access_token"].as_str(),
        )
        .await;
    assert_eq!(a.code(), "challenge_invalid");
    // The right proof succeeds once; the registration is then spent.
    let good = key.register_proof(RP_ID, "reg", &ch);
    assert_eq!(
        srv.post("/v1/devices", body(good.clone()), Some(&t))
            .await
            .status,
        201
    );
    let a = srv.post("/v1/devices", body(good), Some(&t)).await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));
    // Expired registration.
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(&t))
        .await;
    srv.clock.advance(301);
    let proof = key.register_proof(RP_ID, "reg", reg.body["challenge"].as_str().unwrap());
    let a = srv
        .post(
            "/v1/devices",
            json!({"registration_id": reg.body["registration_id"], "proof": proof, "name": "P",
        "platform": "ios", "key_storage": "tee", "user_verification": "none"}),
            Some(&t),
        )
        .await;
    // 301 s is also within the 10-minute strong window: the registration itself expired.
    assert_eq!(a.code(), "challenge_invalid");
    // The strong sign-in is more than 10 minutes old now.
    srv.clock.advance(300);
    let a = srv
        .post("/v1/devices/registration", json!({}), Some(&t))
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    srv.stop().await;
}

#[tokio::test]
async fn device_limit_is_ten() {
    let srv = TestServer::start().await;
    srv.add_user("many", "GB", None).await;
    let s = srv.sign_in_with_otp("many", None).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(srv.register_device(&s, "biometric").await.0);
    }
    let t = s["access_token"].as_str().unwrap();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(t))
        .await;
    let key = DeviceKey::generate();
    let a = srv.post("/v1/devices", json!({"registration_id": reg.body["registration_id"],
        "proof": key.register_proof(RP_ID, "many", reg.body["challenge"].as_str().unwrap()),
        "name": "Eleventh", "platform": "other", "key_storage": "software", "user_verification": "none"}), Some(t)).await;
    assert_eq!((a.status, a.code()), (409, "device_limit"));
    srv.stop().await;
}

#[tokio::test]
async fn bearer_and_admin_tokens_are_checked() {
    let srv = TestServer::start().await;
    for token in [None, Some("dta_nonsense"), Some("")] {
        let a = srv.get("/v1/me", token).await;
        assert_eq!((a.status, a.code()), (401, "unauthorized"));
        assert_eq!(srv.get("/v1/devices", token).await.code(), "unauthorized");
    }
    let a = srv
        .post("/admin/v1/users", json!({}), Some("wrong-admin-token"))
        .await;
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
    let a = srv.post("/admin/v1/users/x/unlock", json!({}), None).await;
    assert_eq!(a.code(), "unauthorized");
    // Access tokens expire after 15 minutes.
    srv.add_user("exp", "GB", None).await;
    let s = srv.sign_in_with_otp("exp", None).await;
    srv.clock.advance(901);
    assert_eq!(
        srv.get("/v1/me", s["access_token"].as_str()).await.code(),
        "unauthorized"
    );
    let r = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "a refresh token outlives the access token");
    srv.stop().await;
}

#[tokio::test]
async fn admin_api_validates_and_refuses_duplicates() {
    let srv = TestServer::start().await;
    srv.add_user("dup", "GB", None).await;
    let a = srv
        .post(
            "/admin/v1/users",
            json!({"user_id": "DUP", "name": "X", "email": "x@example.com",
        "primary_market": "GB", "password": PASSWORD}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!((a.status, a.code()), (409, "user_exists"));
    for (field, value) in [
        ("email", json!("not-an-email")),
        ("primary_market", json!("GBR")),
        ("mobile", json!("12345")),
        ("user_id", json!("bad id")),
    ] {
        let mut body = json!({"user_id": "fresh", "name": "X", "email": "x@example.com",
            "primary_market": "GB", "password": PASSWORD});
        body[field] = value;
        let a = srv.post("/admin/v1/users", body, Some(ADMIN_TOKEN)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{field}");
    }
    // A password the policy refuses names every broken rule.
    let a = srv
        .post(
            "/admin/v1/users",
            json!({"user_id": "fresh", "name": "X", "email": "x@example.com",
                   "primary_market": "GB", "password": "short"}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "password_rejected"));
    assert_eq!(
        a.body["error"]["reasons"],
        json!(["too_short", "too_few_classes"])
    );
    let a = srv
        .put(
            "/admin/v1/markets/GBR",
            json!({"second_factor": "off"}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(a.code(), "invalid_request");
    let a = srv
        .put(
            "/admin/v1/markets/GB",
            json!({"second_factor": "maybe"}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(a.code(), "invalid_request");
    // The password is stored as argon2id.
    let user = srv.store.user("dup").await.unwrap().unwrap();
    assert!(user
        .password_hash
        .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    srv.stop().await;
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family() {
    let srv = TestServer::start().await;
    srv.add_user("reuse", "GB", None).await;
    let s = srv.sign_in_with_otp("reuse", None).await;
    let r1 = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r1.status, 200);
    // The old refresh token comes back: the whole family dies.
    let again = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!((again.status, again.code()), (401, "unauthorized"));
    assert_eq!(
        srv.get("/v1/me", r1.body["access_token"].as_str())
            .await
            .code(),
        "unauthorized"
    );
    let r2 = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": r1.body["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r2.code(), "unauthorized");
    assert!(srv
        .audit_events("reuse")
        .await
        .iter()
        .any(|e| e == "refresh_reuse"));
    let a = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": "dtr_unknown"}),
            None,
        )
        .await;
    assert_eq!(a.code(), "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn ip_rate_limit_answers_429_with_retry_after() {
    let mut opts = Options::default();
    opts.settings.ip_rate_limit_per_minute = 3;
    let srv = TestServer::start_with(opts).await;
    for _ in 0..3 {
        assert_eq!(
            srv.post(
                "/v1/login/device/challenge",
                json!({"device_id": "AAAAAAAAAAAAAAAAAAAAAA"}),
                None
            )
            .await
            .status,
            401
        );
    }
    let a = srv
        .post(
            "/v1/login/device/challenge",
            json!({"device_id": "AAAAAAAAAAAAAAAAAAAAAA"}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"));
    let retry = a.body["error"]["retry_after_s"].as_i64().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Sessions and the rest are not sign-in requests.
    assert_eq!(srv.get("/healthz", None).await.status, 200);
    srv.stop().await;
}

/// A policy that steps up every sign-in, to prove the hook is wired.
struct StepUpDevices;
#[async_trait::async_trait]
impl RiskPolicy for StepUpDevices {
    async fn assess(&self, _ctx: &RiskContext<'_>) -> RiskResult<Assessment> {
        Ok(Assessment {
            decision: RiskDecision::StepUp,
            signals: vec!["test_policy".into()],
            score: 0,
            basis: None,
        })
    }
}

#[tokio::test]
async fn a_risk_policy_can_step_up_device_sign_in_to_otp() {
    let opts = Options {
        risk: Risk::Policy(Arc::new(StepUpDevices)),
        ..Options::default()
    };
    let srv = TestServer::start_with(opts).await;
    let (_, device_id, key) = srv.user_with_device("risky").await;
    let a = srv.device_sign_in(&device_id, &key, "risky").await;
    assert_eq!(
        (a.status, a.code()),
        (401, "step_up_required"),
        "{:?}",
        a.body
    );
    let login_id = a.body["error"]["login_id"].clone();
    assert_eq!(a.body["error"]["methods"][0]["type"], "otp");
    // Password sign-in on the device: the policy removes the device method.
    let p = srv.password("risky", PASSWORD, Some(&device_id)).await;
    assert!(p.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["type"] == "otp"));
    // The step-up is finished with an OTP; amr records both factors.
    srv.post(
        "/v1/login/otp/send",
        json!({"login_id": login_id, "channel": "email"}),
        None,
    )
    .await;
    let code = srv.last_otp("risky");
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    assert_eq!(v.body["session"]["amr"], json!(["hwk", "bio", "otp"]));
    // Market off but policy steps up: a second factor is asked for.
    srv.set_market("US", "off").await;
    srv.add_user("us.user", "US", None).await;
    assert_eq!(
        srv.password("us.user", PASSWORD, None).await.body["status"],
        "enrolment_required"
    );
    srv.stop().await;
}
