//! The card holder's whole journey over real HTTP: first sign-in with
//! enrolment and OTP, enabling biometric sign-in, biometric sign-ins,
//! devices, refresh and sign-out.

use devicetrust_e2e::*;
use serde_json::json;

#[tokio::test]
async fn first_sign_in_enrols_then_otp_then_device_then_biometric() {
    let srv = TestServer::start().await;
    srv.add_user("Jane.Doe", "GB", Some("+447700900123")).await;

    // 1. Password (user id in any case): enrolment required, profile pre-filled.
    let a = srv.password("JANE.DOE", PASSWORD, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "enrolment_required");
    assert_eq!(a.body["profile"]["name"], "Jane Doe");
    assert_eq!(a.body["profile"]["email"], "jane.doe@example.com");
    let login_id = a.body["login_id"].as_str().unwrap().to_owned();
    assert!(a.body["expires_at"].as_i64().unwrap() > srv.now());

    // OTP cannot be asked for before enrolment.
    let early = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "email"}),
            None,
        )
        .await;
    assert_eq!((early.status, early.code()), (400, "invalid_request"));

    // 2. Enrol: security code, mobile kept. Same login continues.
    let e = srv
        .post(
            "/v1/login/enrol",
            json!({"login_id": login_id, "security_code": "24680135", "mobile": null}),
            None,
        )
        .await;
    assert_eq!(e.status, 200, "{:?}", e.body);
    assert_eq!(e.body["status"], "second_factor_required");
    assert_eq!(e.body["login_id"], login_id.as_str());
    let methods = e.body["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2, "email and sms: {methods:?}");
    assert_eq!(
        methods[0],
        json!({"type": "otp", "channel": "email", "destination": "j•••@example.com"})
    );
    assert_eq!(
        methods[1],
        json!({"type": "otp", "channel": "sms", "destination": "+44•••••••123"})
    );

    // Enrolment is single-use.
    let again = srv
        .post(
            "/v1/login/enrol",
            json!({"login_id": login_id, "security_code": "24680135"}),
            None,
        )
        .await;
    assert_eq!((again.status, again.code()), (401, "login_expired"));

    // 3. OTP by SMS, read from the outbox, verified.
    let sent = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": login_id, "channel": "sms"}),
            None,
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(sent.body["destination"], "+44•••••••123");
    assert_eq!(sent.body["resend_after_s"], 30);
    assert_eq!(sent.body["expires_at"].as_i64().unwrap(), srv.now() + 300);
    let msg = srv.outbox_messages().into_iter().last().unwrap();
    assert_eq!(msg["channel"], "sms");
    assert_eq!(msg["to"], "+447700900123");
    assert_eq!(msg["purpose"], "otp");
    let code = msg["code"].as_str().unwrap().to_owned();
    assert!(msg["text"].as_str().unwrap().contains(&code));
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    assert_eq!(v.body["status"], "authenticated");
    let session = v.body["session"].clone();
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    assert_eq!(session["user_id"], "jane.doe");
    assert_eq!(session["amr"], json!(["pwd", "otp"]));
    let token = session["access_token"].as_str().unwrap().to_owned();

    // The login is spent: the same code cannot open a second session.
    let replay = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!((replay.status, replay.code()), (401, "login_expired"));

    let me = srv.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body,
        json!({"user_id": "jane.doe", "name": "Jane Doe", "email": "jane.doe@example.com",
        "mobile": "+447700900123", "primary_market": "GB", "enrolled": true})
    );

    // 4. Enable biometric sign-in on this phone.
    let (device_id, key) = srv.register_device(&session, "biometric").await;
    let list = srv.get("/v1/devices", Some(&token)).await;
    let devices = list.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d["device_id"], device_id.as_str());
    assert_eq!(d["name"], "Jane's phone");
    assert_eq!(d["platform"], "android");
    assert_eq!(d["key_storage"], "tee");
    assert_eq!(
        d["attestation"],
        serde_json::Value::Null,
        "no attestation given"
    );
    assert_eq!(d["user_verification"], "biometric");
    assert_eq!(
        d["current"], true,
        "the registering session belongs to the new device"
    );
    assert_eq!(d["trusted_until"].as_i64().unwrap(), srv.now() + 90 * 86400);
    assert!(d["last_used_at"].is_null());
    srv.settle().await;
    let alert = srv.outbox_messages().into_iter().last().unwrap();
    assert_eq!(alert["purpose"], "alert");
    assert_eq!(alert["event"], "device_added");
    assert!(alert["text"].as_str().unwrap().contains("Jane's phone"));

    // 5. Biometric sign-in: no password, no OTP.
    let b = srv.device_sign_in(&device_id, &key, "jane.doe").await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    assert_eq!(b.body["session"]["amr"], json!(["hwk", "bio"]));
    let bio_token = b.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = srv.get("/v1/devices", Some(&bio_token)).await;
    assert_eq!(list.body["devices"][0]["current"], true);
    assert_eq!(
        list.body["devices"][0]["last_used_at"].as_i64().unwrap(),
        srv.now()
    );

    // 6. Password on the trusted device offers the device method first.
    let p = srv.password("jane.doe", PASSWORD, Some(&device_id)).await;
    assert_eq!(p.body["status"], "second_factor_required", "{:?}", p.body);
    let m0 = &p.body["methods"][0];
    assert_eq!(m0["type"], "device");
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "jane.doe",
        m0["challenge"].as_str().unwrap(),
    );
    let r = srv
        .post(
            "/v1/login/device",
            json!({"challenge_id": m0["challenge_id"], "proof": proof}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["session"]["amr"], json!(["pwd", "hwk"]));
    // Redeeming the device method spent the login: its OTP path is closed.
    let closed = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": p.body["login_id"], "channel": "email"}),
            None,
        )
        .await;
    assert_eq!((closed.status, closed.code()), (401, "login_expired"));

    // 7. Refresh keeps amr and auth_time, rotates both tokens.
    let refreshed = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": b.body["session"]["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["amr"], json!(["hwk", "bio"]));
    assert_eq!(refreshed.body["auth_time"], b.body["session"]["auth_time"]);
    assert_ne!(
        refreshed.body["access_token"],
        b.body["session"]["access_token"]
    );
    let new_token = refreshed.body["access_token"].as_str().unwrap();
    assert_eq!(srv.get("/v1/me", Some(new_token)).await.status, 200);

    // 8. Sign out revokes the session's tokens.
    let out = srv
        .post("/v1/session/logout", json!({}), Some(new_token))
        .await;
    assert_eq!(out.status, 204);
    let after = srv.get("/v1/me", Some(new_token)).await;
    assert_eq!((after.status, after.code()), (401, "unauthorized"));
    let old_refresh = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": refreshed.body["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(old_refresh.status, 401);

    // The audit trail recorded the journey.
    let events = srv.audit_events("jane.doe").await;
    for e in [
        "password_ok",
        "enrolled",
        "otp_sent",
        "signin_ok",
        "device_added",
        "logout",
    ] {
        assert!(events.iter().any(|x| x == e), "audit lacks {e}: {events:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn market_without_second_factor_signs_in_with_password_alone() {
    let srv = TestServer::start().await;
    srv.set_market("US", "off").await;
    srv.add_user("sam", "us", None).await;
    let a = srv.password("sam", PASSWORD, None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["status"], "authenticated");
    assert_eq!(a.body["session"]["amr"], json!(["pwd"]));
    // A password-only session is too weak to register a device.
    let token = a.body["session"]["access_token"].as_str().unwrap();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    assert_eq!((reg.status, reg.code()), (403, "forbidden"));

    // The market switches on: the same user now enrols and gets an OTP.
    srv.set_market("US", "required").await;
    let b = srv.password("sam", PASSWORD, None).await;
    assert_eq!(b.body["status"], "enrolment_required");
    // Markets never configured require a second factor.
    srv.add_user("mia", "SG", None).await;
    assert_eq!(
        srv.password("mia", PASSWORD, None).await.body["status"],
        "enrolment_required"
    );
    srv.stop().await;
}

#[tokio::test]
async fn removing_a_device_revokes_its_sessions_and_stops_its_sign_ins() {
    let srv = TestServer::start().await;
    let (session, device_id, key) = srv.user_with_device("rob").await;
    let bio = srv.device_sign_in(&device_id, &key, "rob").await;
    let bio_token = bio.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second device, removed from the first one's session.
    let (other_id, other_key) = srv
        .register_device(&bio.body["session"], "biometric_or_device_credential")
        .await;
    let other = srv.device_sign_in(&other_id, &other_key, "rob").await;
    assert_eq!(
        other.body["session"]["amr"],
        json!(["hwk"]),
        "no `bio` without biometric-only keys"
    );
    let other_token = other.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let del = srv
        .delete(&format!("/v1/devices/{other_id}"), Some(&bio_token))
        .await;
    assert_eq!(del.status, 204, "{:?}", del.body);
    assert_eq!(
        srv.get("/v1/me", Some(&other_token)).await.code(),
        "unauthorized"
    );
    assert_eq!(
        srv.get("/v1/me", Some(&bio_token)).await.status,
        200,
        "other sessions live on"
    );
    let c = srv.challenge(&other_id).await;
    assert_eq!((c.status, c.code()), (401, "device_not_recognized"));
    let list = srv.get("/v1/devices", Some(&bio_token)).await;
    assert_eq!(list.body["devices"].as_array().unwrap().len(), 1);

    // Removing again, or someone else's device, is not found.
    assert_eq!(
        srv.delete(&format!("/v1/devices/{other_id}"), Some(&bio_token))
            .await
            .code(),
        "not_found"
    );
    srv.add_user("eve", "GB", None).await;
    let eve = srv.sign_in_with_otp("eve", None).await;
    let eve_token = eve["access_token"].as_str().unwrap();
    let steal = srv
        .delete(&format!("/v1/devices/{device_id}"), Some(eve_token))
        .await;
    assert_eq!((steal.status, steal.code()), (404, "not_found"));
    assert_eq!(
        srv.device_sign_in(&device_id, &key, "rob").await.status,
        200
    );

    // Removing the current device signs this session out too.
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(
        srv.delete(&format!("/v1/devices/{device_id}"), Some(token))
            .await
            .status,
        204
    );
    assert_eq!(srv.get("/v1/me", Some(token)).await.code(), "unauthorized");
    assert!(srv
        .audit_events("rob")
        .await
        .iter()
        .any(|e| e == "device_removed"));
    srv.stop().await;
}

#[tokio::test]
async fn trust_expires_and_password_plus_otp_on_the_device_renews_it() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("tess").await;
    srv.clock.advance(90 * 86400 + 1);
    let c = srv.challenge(&device_id).await;
    assert_eq!((c.status, c.code()), (401, "reauthorisation_required"));
    // A password sign-in naming the expired device offers OTP only.
    let p = srv.password("tess", PASSWORD, Some(&device_id)).await;
    let types: Vec<_> = p.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].clone())
        .collect();
    assert_eq!(types, vec![json!("otp")]);
    // Password + OTP naming the device renews its trust for 90 days.
    let session = srv.sign_in_with_otp("tess", Some(&device_id)).await;
    assert_eq!(session["amr"], json!(["pwd", "otp"]));
    let list = srv
        .get("/v1/devices", session["access_token"].as_str())
        .await;
    assert_eq!(
        list.body["devices"][0]["trusted_until"].as_i64().unwrap(),
        srv.now() + 90 * 86400
    );
    assert_eq!(list.body["devices"][0]["current"], true);
    assert_eq!(
        srv.device_sign_in(&device_id, &key, "tess").await.status,
        200
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_challenge_issued_before_expiry_is_refused_after_it() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("uma").await;
    srv.clock.advance(90 * 86400 - 30);
    let c = srv.challenge(&device_id).await;
    assert_eq!(c.status, 200);
    srv.clock.advance(60);
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "uma",
        c.body["challenge"].as_str().unwrap(),
    );
    let r = srv
        .post(
            "/v1/login/device",
            json!({"challenge_id": c.body["challenge_id"], "proof": proof}),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "reauthorisation_required"));
    srv.stop().await;
}
