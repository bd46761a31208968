//! Several instances on one PostgreSQL database (the contract's "Several
//! instances"): two servers, each with its own process-local state (rate
//! limiter, hashing queue, alert queue), share one schema, one server key
//! and one clock. Every single-use and counting rule must hold across them.
//!
//! PostgreSQL only: without `DEVICETRUST_TEST_DATABASE` each test says why
//! it skips. `scripts/test` always runs them under `scripts/postgres`.

use std::sync::Arc;

use devicetrust_e2e::*;
use devicetrust_server::clock::ManualClock;
use devicetrust_server::server_key::ServerKey;
use serde_json::json;

/// Two servers on one fresh schema, or `None` (and a printed reason) under SQLite.
async fn pair(test: &str) -> Option<(Arc<TestServer>, Arc<TestServer>)> {
    let Some(url) = fresh_database().await else {
        skip(&format!(
            "{test}: several instances need PostgreSQL \
             (set DEVICETRUST_TEST_DATABASE=postgres://…, or run under scripts/postgres)"
        ));
        return None;
    };
    let key = ServerKey::generate().expect("server key");
    let clock = ManualClock::new();
    let options = || Options {
        database: Some(url.clone()),
        server_key: Some(key.clone()),
        clock: Some(clock.clone()),
        ..Options::default()
    };
    let a = TestServer::start_with(options()).await;
    let b = TestServer::start_with(options()).await;
    Some((Arc::new(a), Arc::new(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_challenge_issued_by_one_is_redeemed_at_the_other_exactly_once() {
    let Some((a, b)) =
        pair("a_challenge_issued_by_one_is_redeemed_at_the_other_exactly_once").await
    else {
        return;
    };
    let (_, device_id, key) = a.user_with_device("roamer").await;

    // Issued by A, redeemed at B, then refused at A and at B.
    let c = a.challenge(&device_id).await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "roamer",
        c.body["challenge"].as_str().unwrap(),
    );
    let body = json!({"challenge_id": c.body["challenge_id"], "proof": proof});
    let won = b.post("/v1/login/device", body.clone(), None).await;
    assert_eq!(won.status, 200, "{:?}", won.body);
    for srv in [&a, &b] {
        let again = srv.post("/v1/login/device", body.clone(), None).await;
        assert_eq!((again.status, again.code()), (401, "challenge_invalid"));
    }
    // The session B opened is known to A.
    let token = won.body["session"]["access_token"].as_str().unwrap();
    assert_eq!(a.get("/v1/me", Some(token)).await.status, 200);

    // 32 racing redemptions, alternating between the instances: one winner.
    let c = b.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "roamer",
        c.body["challenge"].as_str().unwrap(),
    );
    let body = json!({"challenge_id": c.body["challenge_id"], "proof": proof});
    let wins = race_device_proof(&[a.clone(), b.clone()], body, 32).await;
    assert_eq!(wins, 1, "one winner across both instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_failures_across_both_lock_after_exactly_five_evaluations() {
    let Some((a, b)) =
        pair("parallel_password_failures_across_both_lock_after_exactly_five_evaluations").await
    else {
        return;
    };
    a.add_user("besieged", "GB", None).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(24));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let srv = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                srv.password("besieged", &format!("guess {i}"), None).await
            })
        })
        .collect();
    let (mut evaluated, mut refused) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.code() {
            "invalid_credentials" => evaluated += 1,
            // Not evaluated: locked, or the allowance in use by attempts
            // still being evaluated (on either instance).
            "account_locked" | "rate_limited" => refused += 1,
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!(evaluated, 5, "exactly the threshold was evaluated");
    assert_eq!(evaluated + refused, 24);
    // Locked on both, for the right password too.
    for srv in [&a, &b] {
        assert_eq!(
            srv.password("besieged", PASSWORD, None).await.code(),
            "account_locked"
        );
    }
    assert_eq!(
        a.sql_i64(
            "SELECT COUNT(*) FROM audit WHERE user_id = 'besieged' AND event = 'signin_failed'"
        )
        .await,
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_rotated_on_one_is_refused_as_reused_on_the_other() {
    let Some((a, b)) =
        pair("a_refresh_token_rotated_on_one_is_refused_as_reused_on_the_other").await
    else {
        return;
    };
    a.add_user("rotor", "GB", None).await;
    let s = a.sign_in_with_otp("rotor", None).await;
    let rotated = a
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let reused = b
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(reused.status, 401, "{:?}", reused.body);
    // Reuse revoked the family: the new pair is dead on both instances.
    let new_access = rotated.body["access_token"]
        .as_str()
        .or(rotated.body["session"]["access_token"].as_str())
        .unwrap()
        .to_owned();
    let new_refresh = rotated.body["refresh_token"]
        .as_str()
        .or(rotated.body["session"]["refresh_token"].as_str())
        .unwrap()
        .to_owned();
    for srv in [&a, &b] {
        assert_eq!(srv.get("/v1/me", Some(&new_access)).await.status, 401);
    }
    let again = a
        .post(
            "/v1/session/refresh",
            json!({"refresh_token": new_refresh}),
            None,
        )
        .await;
    assert_eq!(again.status, 401);
    assert!(b
        .audit_events("rotor")
        .await
        .iter()
        .any(|e| e == "refresh_reuse"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_removed_on_one_is_refused_on_the_other() {
    let Some((a, b)) = pair("a_device_removed_on_one_is_refused_on_the_other").await else {
        return;
    };
    let (session, device_id, key) = a.user_with_device("loser").await;
    let bio = b.device_sign_in(&device_id, &key, "loser").await;
    assert_eq!(bio.status, 200, "{:?}", bio.body);
    let bio_token = bio.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A challenge B issued before the removal, to be redeemed after it.
    let pending = b.challenge(&device_id).await;
    assert_eq!(pending.status, 200);

    let del = a
        .delete(
            &format!("/v1/devices/{device_id}"),
            session["access_token"].as_str(),
        )
        .await;
    assert_eq!(del.status, 204, "{:?}", del.body);

    // B refuses the device's session, a new challenge and the pending one.
    assert_eq!(
        b.get("/v1/me", Some(&bio_token)).await.code(),
        "unauthorized"
    );
    let c = b.challenge(&device_id).await;
    assert_eq!((c.status, c.code()), (401, "device_not_recognized"));
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "loser",
        pending.body["challenge"].as_str().unwrap(),
    );
    let late = b
        .post(
            "/v1/login/device",
            json!({"challenge_id": pending.body["challenge_id"], "proof": proof}),
            None,
        )
        .await;
    assert_eq!(late.status, 401, "{:?}", late.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_the_database_ends_are_replaced() {
    let Some((a, b)) = pair("connections_the_database_ends_are_replaced").await else {
        return;
    };
    let (_, device_id, key) = a.user_with_device("survivor").await;
    assert_eq!(
        b.device_sign_in(&device_id, &key, "survivor").await.status,
        200
    );
    // The database ends every connection of both instances, as a restart
    // or a failover does (only theirs: they carry this schema's name).
    let url = a.database.clone().unwrap();
    let schema = url.rsplit("application_name=").next().unwrap().to_owned();
    let admin = pg_connect(&url).await;
    let ended: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended >= 2, "{ended} connections ended");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Both instances go on, on new connections.
    for srv in [&a, &b] {
        let r = srv.device_sign_in(&device_id, &key, "survivor").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
}
