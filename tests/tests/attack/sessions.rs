//! Sessions and removal: a removed device keeps nothing alive, tokens of a
//! removed device are dead, sessions end at an absolute time.

use std::sync::Arc;

use devicetrust_e2e::*;
use devicetrust_server::secrets::token_hash;
use serde_json::json;

/// Hole 4: a device sign-in in flight while the device is removed created
/// its session after the removal revoked the old ones (9 of 30 trials).
/// Now the challenge's consumption, the device's check and the session are
/// one transaction: hundreds of racing pairs leave no live session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removal_racing_a_device_sign_in_leaves_no_live_session() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("remove.race", "GB", None).await;
    let (mut signed_in_first, mut removed_first) = (0, 0);
    for trial in 0..200 {
        // A fresh strong session each time: the session that registers a
        // device becomes that device's, and the removal revokes it. The
        // clock moves so the hourly cap on codes is not what is tested.
        srv.clock.advance(400);
        let owner = srv.sign_in_with_otp("remove.race", None).await;
        let owner_token = owner["access_token"].as_str().unwrap().to_owned();
        let (device_id, key) = srv.register_device(&owner, "biometric").await;
        let c = srv.challenge(&device_id).await;
        let proof = key.login_proof(
            RP_ID,
            &device_id,
            "remove.race",
            c.body["challenge"].as_str().unwrap(),
        );
        let body = json!({"challenge_id": c.body["challenge_id"], "proof": proof});
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let sign_in = {
            let (srv, barrier) = (srv.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                srv.post("/v1/login/device", body, None).await
            })
        };
        let removal = {
            let (srv, barrier, token) = (srv.clone(), barrier.clone(), owner_token);
            let path = format!("/v1/devices/{device_id}");
            tokio::spawn(async move {
                barrier.wait().await;
                srv.delete(&path, Some(&token)).await
            })
        };
        let (a, r) = (sign_in.await.unwrap(), removal.await.unwrap());
        assert_eq!(r.status, 204, "trial {trial}: {:?}", r.body);
        if a.status == 200 {
            signed_in_first += 1;
            let token = a.body["session"]["access_token"].as_str().unwrap();
            let me = srv.get("/v1/me", Some(token)).await;
            assert_eq!(
                me.status, 401,
                "trial {trial}: a removed device kept a live session"
            );
            let refresh = a.body["session"]["refresh_token"].clone();
            let r = srv
                .post(
                    "/v1/session/refresh",
                    json!({"refresh_token": refresh}),
                    None,
                )
                .await;
            assert_eq!(r.status, 401, "trial {trial}");
        } else {
            removed_first += 1;
            assert!(
                matches!(a.code(), "device_not_recognized" | "challenge_invalid"),
                "trial {trial}: {:?}",
                a.body
            );
        }
    }
    eprintln!("sign-in first {signed_in_first}, removal first {removed_first}");
}

/// A password + OTP sign-in naming a device that is removed before the code
/// is entered opens a session, but not one bound to the removed device.
#[tokio::test]
async fn an_otp_sign_in_naming_a_device_removed_meanwhile_is_not_bound_to_it() {
    let srv = TestServer::start().await;
    let (session, device_id, _) = srv.user_with_device("otp.removed").await;
    let p = srv
        .password("otp.removed", PASSWORD, Some(&device_id))
        .await;
    let login_id = p.body["login_id"].clone();
    let code = srv.send_email_otp("otp.removed", &login_id).await;
    let r = srv
        .delete(
            &format!("/v1/devices/{device_id}"),
            session["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status, 204);
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    let token = v.body["session"]["access_token"].as_str().unwrap();
    let record = srv
        .store
        .session_for_access(&token_hash(token), srv.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.device_id, None);
}

/// Tokens a removed device opened are refused, access and refresh.
#[tokio::test]
async fn tokens_of_a_removed_device_are_refused() {
    let srv = TestServer::start().await;
    let (owner, device_id, key) = srv.user_with_device("dead.tokens").await;
    let a = srv.device_sign_in(&device_id, &key, "dead.tokens").await;
    let s = a.body["session"].clone();
    let r = srv
        .delete(
            &format!("/v1/devices/{device_id}"),
            owner["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        srv.get("/v1/me", s["access_token"].as_str()).await.status,
        401
    );
    let r = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    // And the device cannot start a new sign-in.
    assert_eq!(
        srv.challenge(&device_id).await.code(),
        "device_not_recognized"
    );
}

/// Smaller finding: refresh slid a session forever. It now ends 12 hours
/// (the default) after its sign-in, and no token says it lives longer.
#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_whatever_the_refreshes() {
    let srv = TestServer::start().await;
    srv.add_user("long.session", "GB", None).await;
    let mut s = srv.sign_in_with_otp("long.session", None).await;
    let max_age = srv.state().settings().session_max_age_s;
    assert!(s["refresh_expires_in"].as_i64().unwrap() <= max_age);
    let mut elapsed = 0;
    while elapsed + 600 < max_age {
        srv.clock.advance(600);
        elapsed += 600;
        let r = srv
            .post(
                "/v1/session/refresh",
                json!({"refresh_token": s["refresh_token"]}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "at {elapsed}s: {:?}", r.body);
        s = r.body;
        let left = max_age - elapsed;
        assert!(s["expires_in"].as_i64().unwrap() <= left);
        assert!(s["refresh_expires_in"].as_i64().unwrap() <= left);
    }
    srv.clock.advance(max_age - elapsed);
    let r = srv
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        srv.get("/v1/me", s["access_token"].as_str()).await.status,
        401
    );
}

/// Review finding: a thief signs in with a stolen phone's key and registers
/// a device of their own, named like the owner's. Removing the stolen phone
/// left the thief's device trusted. A device now stands or falls with the
/// device whose session registered it.
#[tokio::test]
async fn a_device_added_from_a_stolen_device_falls_with_it() {
    let srv = TestServer::start().await;
    let (owner, stolen, stolen_key) = srv.user_with_device("stolen.phone").await;
    let thief = srv
        .device_sign_in(&stolen, &stolen_key, "stolen.phone")
        .await;
    assert_eq!(thief.status, 200);
    let (planted, planted_key) = srv
        .register_device(&thief.body["session"], "biometric")
        .await;
    // ... and one more generation, from the planted device's session.
    let second = srv
        .device_sign_in(&planted, &planted_key, "stolen.phone")
        .await;
    let (grandchild, grandchild_key) = srv
        .register_device(&second.body["session"], "biometric")
        .await;
    // The owner, on another strong session, removes the stolen phone.
    let owner_again = srv.sign_in_with_otp("stolen.phone", None).await;
    let r = srv
        .delete(
            &format!("/v1/devices/{stolen}"),
            owner_again["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status, 204);
    for (id, key) in [(&planted, &planted_key), (&grandchild, &grandchild_key)] {
        assert_eq!(srv.challenge(id).await.code(), "device_not_recognized");
        let _ = key;
    }
    let list = srv
        .get("/v1/devices", owner_again["access_token"].as_str())
        .await;
    assert_eq!(list.body["devices"].as_array().map(Vec::len), Some(0));
    // The owner's alert names what fell with it.
    srv.settle().await;
    let alert = srv
        .outbox_messages()
        .into_iter()
        .rev()
        .find(|m| m["purpose"] == "alert")
        .unwrap();
    assert!(
        alert["text"].as_str().unwrap().contains("removed too"),
        "{alert}"
    );
    let _ = owner;
}
