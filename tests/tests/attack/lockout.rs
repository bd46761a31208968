//! Lockout: a lock always has an end, every counted attempt is audited even
//! when its client vanished, and only a completed sign-in resets the count.

use std::sync::Arc;

use devicetrust_e2e::*;
use devicetrust_server::storage::LockoutPolicy;
use serde_json::json;

const LOCK_S: i64 = 30 * 60;

fn wrong_password(user_id: &str) -> serde_json::Value {
    json!({"user_id": user_id, "password": "not the password"})
}

/// Hole 3: the client resets the connection on its 5th guess. The attempt
/// was counted but its failure handler never ran: 423 forever, with a false
/// `retry_after_s`. Now the request runs to completion: audited, locked, and
/// the lock ends.
#[tokio::test]
async fn a_vanished_fifth_guess_is_audited_and_its_lock_ends() {
    let srv = TestServer::start().await;
    srv.add_user("vanish", "GB", None).await;
    for _ in 0..4 {
        let a = srv.password("vanish", "not the password", None).await;
        assert_eq!(a.code(), "invalid_credentials");
    }
    srv.send_and_vanish("/v1/login/password", wrong_password("vanish"))
        .await;
    assert_eq!(srv.wait_for_audit("vanish", "signin_failed", 5).await, 5);
    assert_eq!(srv.wait_for_audit("vanish", "account_locked", 1).await, 1);
    let a = srv.password("vanish", PASSWORD, None).await;
    assert_eq!((a.status, a.code()), (423, "account_locked"));
    let retry = a.body["error"]["retry_after_s"].as_i64().unwrap();
    assert!(retry > 0 && retry <= LOCK_S, "retry_after_s {retry}");
    srv.clock.advance(retry);
    let a = srv.password("vanish", PASSWORD, None).await;
    assert_eq!(a.status, 200, "the lock ended when it said: {:?}", a.body);
}

/// Attempts that were counted and never finished (a crash between counting
/// and the verdict) leave the count at the threshold with no lock. While
/// they could still be in flight the answer is 429 (their verdict decides);
/// after that they become a real lock with a true end.
#[tokio::test]
async fn a_count_left_at_the_limit_by_unfinished_attempts_ends() {
    let srv = TestServer::start().await;
    srv.add_user("stuck", "GB", None).await;
    let policy = LockoutPolicy {
        threshold: 5,
        duration_s: LOCK_S,
        memory_s: 24 * 3600,
    };
    for _ in 0..5 {
        srv.store
            .reserve_attempt("stuck", srv.now(), policy)
            .await
            .unwrap();
    }
    let a = srv.password("stuck", PASSWORD, None).await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"), "{:?}", a.body);
    assert_eq!(a.body["error"]["retry_after_s"], 1);
    srv.clock.advance(61);
    let a = srv.password("stuck", PASSWORD, None).await;
    assert_eq!((a.status, a.code()), (423, "account_locked"));
    let retry = a.body["error"]["retry_after_s"].as_i64().unwrap();
    assert_eq!(
        retry,
        LOCK_S - 61,
        "the lock ends a lock's length after the count moved"
    );
    srv.clock.advance(retry - 1);
    assert_eq!(srv.password("stuck", PASSWORD, None).await.status, 423);
    srv.clock.advance(1);
    let a = srv.password("stuck", PASSWORD, None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// Review finding: a 423 told a time the lock would not keep (a lock that
/// had not started yet, or never would). A 423 now always names a lock that
/// exists, and its `retry_after_s` is exact to the second.
#[tokio::test]
async fn every_423_names_a_real_lock_to_the_second() {
    let srv = TestServer::start().await;
    srv.add_user("exact", "GB", None).await;
    for _ in 0..5 {
        srv.password("exact", "not the password", None).await;
    }
    srv.clock.advance(100);
    let a = srv.password("exact", PASSWORD, None).await;
    assert_eq!(a.body["error"]["retry_after_s"], LOCK_S - 100);
    srv.clock.advance(LOCK_S - 101);
    assert_eq!(srv.password("exact", PASSWORD, None).await.status, 423);
    srv.clock.advance(1);
    assert_eq!(srv.password("exact", PASSWORD, None).await.status, 200);
}

/// Review finding: each request against a locked id wrote an audit row
/// (1,240 rows/s from one client, kept 400 days). A refusal now writes
/// nothing, and an unknown id's failures never store the string typed.
#[tokio::test]
async fn refusals_write_nothing_and_unknown_ids_are_not_stored() {
    let srv = TestServer::start().await;
    srv.add_user("flooded", "GB", None).await;
    for _ in 0..5 {
        srv.password("flooded", "not the password", None).await;
    }
    let before = srv.sql_i64("SELECT COUNT(*) FROM audit").await;
    for _ in 0..200 {
        let a = srv.password("flooded", "not the password", None).await;
        assert_eq!(a.code(), "account_locked");
    }
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM audit").await, before);
    srv.password("Hunter2-typed-in-the-wrong-field", "x", None)
        .await;
    assert_eq!(
        srv.sql_i64(
            "SELECT COUNT(*) FROM audit WHERE user_id LIKE '%hunter2%' OR reason LIKE '%hunter2%'"
        )
        .await,
        0
    );
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM audit WHERE event = 'signin_failed' AND user_id IS NULL")
            .await,
        1
    );
}

/// Hole 3, second form: the owner's right password races wrong guesses and
/// is refunded, leaving the count at the limit without a lock. Whatever the
/// interleaving, every lock ends when it says, and then the owner gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_racing_guesses_never_leaves_an_endless_lock() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("racer.owner", "GB", None).await;
    for round in 0..12 {
        let barrier = Arc::new(tokio::sync::Barrier::new(6));
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let (srv, barrier) = (srv.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let pw = if i == 0 { PASSWORD } else { "not the password" };
                    srv.password("racer.owner", pw, None).await
                })
            })
            .collect();
        for t in tasks {
            let a = t.await.unwrap();
            // 429: refused while the others were still being evaluated.
            assert!(
                matches!(a.status, 200 | 401 | 423 | 429),
                "round {round}: {:?}",
                a.body
            );
        }
        let a = srv.password("racer.owner", PASSWORD, None).await;
        if a.status == 423 {
            let retry = a.body["error"]["retry_after_s"].as_i64().unwrap();
            assert!(retry > 0 && retry <= LOCK_S, "round {round}: {retry}");
            srv.clock.advance(retry);
            let a = srv.password("racer.owner", PASSWORD, None).await;
            assert_eq!(a.status, 200, "round {round}: {:?}", a.body);
        } else {
            assert_eq!(a.status, 200, "round {round}: {:?}", a.body);
        }
        // Start the next round from a clean count.
        srv.store
            .unlock(
                "racer.owner",
                devicetrust_server::storage::UnlockScope::Both,
            )
            .await
            .unwrap();
    }
}

/// Parallel guesses with half the clients vanishing: never more than five
/// evaluations, each one audited, and the lock ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_with_vanishing_clients_get_five_evaluations() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("guessed", "GB", None).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let srv = srv.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    srv.send_and_vanish("/v1/login/password", wrong_password("guessed"))
                        .await;
                } else {
                    let a = srv.password("guessed", "not the password", None).await;
                    assert!(matches!(
                        a.code(),
                        "invalid_credentials" | "account_locked" | "rate_limited"
                    ));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(srv.wait_for_audit("guessed", "account_locked", 1).await, 1);
    // Let any request still in flight finish before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let failed = srv.wait_for_audit("guessed", "signin_failed", 5).await;
    assert_eq!(failed, 5, "exactly five evaluations");
    srv.clock.advance(LOCK_S);
    assert_eq!(srv.password("guessed", PASSWORD, None).await.status, 200);
}

/// Smaller finding: a biometric sign-in is a completed sign-in and resets
/// the failure count (it did not).
#[tokio::test]
async fn a_biometric_sign_in_resets_the_failure_count() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("bio.reset").await;
    for _ in 0..4 {
        srv.password("bio.reset", "not the password", None).await;
    }
    let a = srv.device_sign_in(&device_id, &key, "bio.reset").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    for _ in 0..4 {
        let a = srv.password("bio.reset", "not the password", None).await;
        assert_eq!(a.code(), "invalid_credentials");
    }
    assert_eq!(srv.password("bio.reset", PASSWORD, None).await.status, 200);
}

/// A device sign-in during a lock others caused works, and does not lift the
/// lock (an attacker's lock is not cleared as a side effect).
#[tokio::test]
async fn a_lock_never_blocks_the_owners_device_and_is_not_lifted_by_it() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("bio.locked").await;
    for _ in 0..5 {
        srv.password("bio.locked", "not the password", None).await;
    }
    let a = srv.device_sign_in(&device_id, &key, "bio.locked").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = srv.password("bio.locked", PASSWORD, None).await;
    assert_eq!(a.code(), "account_locked");
}
