//! Device sign-in challenges are authenticated tokens issued without a
//! write (issue 14): what a forged, tampered, expired, crossed, replayed or
//! orphaned token gets, and that what single use keeps is purged.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use devicetrust_e2e::*;
use devicetrust_server::storage::Retention;
use serde_json::{json, Value};

async fn redeem(srv: &TestServer, challenge_id: &Value, proof: String) -> Answer {
    srv.post(
        "/v1/login/device",
        json!({"challenge_id": challenge_id, "proof": proof}),
        None,
    )
    .await
}

const RETENTION: Retention = Retention {
    audit_s: 1_000_000_000,
    attempts_s: 1_000_000_000,
    send_window_s: 3_600,
};

#[tokio::test]
async fn issuing_a_challenge_writes_nothing() {
    let srv = TestServer::start().await;
    let (_, device_id, _) = srv.user_with_device("no.write").await;
    for _ in 0..3 {
        let c = srv.challenge(&device_id).await;
        assert_eq!(c.status, 200, "{:?}", c.body);
        let id = c.body["challenge_id"].as_str().unwrap();
        // ≤ 64 characters of base64url, as every server id.
        assert!(id.len() <= 64 && id.len() >= 22, "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(c.body["challenge"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM challenges").await, 0);
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 0);
}

#[tokio::test]
async fn forged_truncated_tampered_and_expired_tokens_are_challenge_invalid() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("token.forge").await;
    let c = srv.challenge(&device_id).await;
    let id = c.body["challenge_id"].as_str().unwrap().to_owned();
    let nonce = c.body["challenge"].as_str().unwrap().to_owned();
    let proof = key.login_proof(RP_ID, &device_id, "token.forge", &nonce);
    let raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
    let mut tampered_expiry = raw.clone();
    // The expiry sits after 16 random bytes: a later one, same MAC.
    tampered_expiry[16] ^= 0x01;
    let mut tampered_mac = raw.clone();
    let last = tampered_mac.len() - 1;
    tampered_mac[last] ^= 0x80;
    let mut tampered_random = raw.clone();
    tampered_random[0] ^= 0x01;
    let forged = [
        URL_SAFE_NO_PAD.encode(vec![0u8; raw.len()]),
        URL_SAFE_NO_PAD.encode(&tampered_expiry),
        URL_SAFE_NO_PAD.encode(&tampered_mac),
        URL_SAFE_NO_PAD.encode(&tampered_random),
        // Truncated: one character, and one byte.
        id[..id.len() - 1].to_owned(),
        URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]),
        // A well-formed id that was never issued (the stored kind's length).
        URL_SAFE_NO_PAD.encode([7u8; 16]),
    ];
    for (i, f) in forged.iter().enumerate() {
        let a = redeem(&srv, &json!(f), proof.clone()).await;
        assert_eq!(
            (a.status, a.code()),
            (401, "challenge_invalid"),
            "forgery {i}"
        );
    }
    // None of them spent the real one.
    let a = redeem(&srv, &json!(id), proof.clone()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // Used: a replay is refused.
    let a = redeem(&srv, &json!(id), proof).await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));

    // Expired: past the challenge's lifetime, a correct proof is refused.
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "token.forge",
        c.body["challenge"].as_str().unwrap(),
    );
    srv.clock.advance(121);
    let a = redeem(&srv, &c.body["challenge_id"], proof).await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));
}

#[tokio::test]
async fn a_token_for_device_a_is_refused_with_device_b_proof() {
    let srv = TestServer::start().await;
    let (_, dev_a, key_a) = srv.user_with_device("cross.a").await;
    let (_, dev_b, key_b) = srv.user_with_device("cross.b").await;
    let c = srv.challenge(&dev_a).await;
    let nonce = c.body["challenge"].as_str().unwrap();
    // B signs A's nonce under its own kid: the token is bound to A.
    let b_proof = key_b.login_proof(RP_ID, &dev_b, "cross.b", nonce);
    let a = redeem(&srv, &c.body["challenge_id"], b_proof).await;
    assert_eq!((a.status, a.code()), (401, "challenge_invalid"));
    // A's own proof still redeems it.
    let a_proof = key_a.login_proof(RP_ID, &dev_a, "cross.a", nonce);
    let a = redeem(&srv, &c.body["challenge_id"], a_proof).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_of_one_token_open_one_session() {
    let srv = Arc::new(TestServer::start().await);
    let (_, device_id, key) = srv.user_with_device("token.race").await;
    let sessions_before = srv.sql_i64("SELECT COUNT(*) FROM sessions").await;
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "token.race",
        c.body["challenge"].as_str().unwrap(),
    );
    let body = json!({"challenge_id": c.body["challenge_id"], "proof": proof});
    let wins = race_device_proof(std::slice::from_ref(&srv), body, 20).await;
    assert_eq!(wins, 1);
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM sessions").await,
        sessions_before + 1
    );
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 1);
}

#[tokio::test]
async fn a_token_redeemed_after_its_device_was_removed_is_refused() {
    let srv = TestServer::start().await;
    let (session, device_id, key) = srv.user_with_device("token.removed").await;
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "token.removed",
        c.body["challenge"].as_str().unwrap(),
    );
    let token = session["access_token"].as_str().unwrap();
    let gone = srv
        .delete(&format!("/v1/devices/{device_id}"), Some(token))
        .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    let sessions = srv.sql_i64("SELECT COUNT(*) FROM sessions").await;
    let a = redeem(&srv, &c.body["challenge_id"], proof).await;
    assert_eq!((a.status, a.code()), (401, "device_not_recognized"));
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM sessions").await, sessions);
}

#[tokio::test]
async fn the_sign_in_and_its_audit_line_are_one_commit() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("token.audit").await;
    let before = srv.audit_events("token.audit").await;
    let a = srv.device_sign_in(&device_id, &key, "token.audit").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let after = srv.audit_events("token.audit").await;
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after.last().map(String::as_str), Some("signin_ok"));
}

#[tokio::test]
async fn used_tokens_are_purged_once_expired() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("token.purge").await;
    for _ in 0..3 {
        let a = srv.device_sign_in(&device_id, &key, "token.purge").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 3);
    let now = devicetrust_server::clock::Clock::now(&srv.clock);
    // Still within their lifetime: kept (a replay must find them).
    srv.store.purge_expired(now, RETENTION).await.unwrap();
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 3);
    // Expired, but within the margin kept for clocks a little apart.
    srv.store.purge_expired(now + 121, RETENTION).await.unwrap();
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 3);
    let grace = devicetrust_server::challenge_token::USED_ROW_GRACE_S;
    srv.store
        .purge_expired(now + 121 + grace, RETENTION)
        .await
        .unwrap();
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM used_challenges").await, 0);
}

/// Another instance's purge job, whose clock runs a little ahead (or this
/// instance's, before NTP steps its clock back), must not free a used token
/// that a clock a little behind still accepts: the purge keeps a margin.
#[tokio::test]
async fn a_purge_by_a_clock_slightly_ahead_does_not_free_a_used_token() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("token.skew").await;
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "token.skew",
        c.body["challenge"].as_str().unwrap(),
    );
    // Redeemed in the last seconds of its life.
    srv.clock.advance(118);
    let first = redeem(&srv, &c.body["challenge_id"], proof.clone()).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    // A purge by a clock 5 s ahead: the token has expired by that clock.
    let now = devicetrust_server::clock::Clock::now(&srv.clock);
    srv.store.purge_expired(now + 5, RETENTION).await.unwrap();
    let sessions = srv.sql_i64("SELECT COUNT(*) FROM sessions").await;
    let replay = redeem(&srv, &c.body["challenge_id"], proof).await;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "challenge_invalid"),
        "{:?}",
        replay.body
    );
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM sessions").await, sessions);
}

/// A client that sends its proof and vanishes before the answer: the
/// sign-in runs to completion anyway (one session, one `signin_ok`, the
/// token spent), so the proof cannot be replayed by whoever saw it, and
/// the vanished client's request left nothing half done.
#[tokio::test]
async fn a_proof_whose_client_vanished_is_spent_and_its_sign_in_whole() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("token.vanish").await;
    let sessions_before = srv
        .sql_i64("SELECT COUNT(*) FROM sessions WHERE user_id = 'token.vanish'")
        .await;
    let signed_in_before = srv.wait_for_audit("token.vanish", "signin_ok", 0).await;
    let c = srv.challenge(&device_id).await;
    let nonce = c.body["challenge"].as_str().unwrap().to_owned();
    let proof = key.login_proof(RP_ID, &device_id, "token.vanish", &nonce);
    srv.send_and_vanish(
        "/v1/login/device",
        json!({"challenge_id": c.body["challenge_id"], "proof": proof}),
    )
    .await;
    assert_eq!(
        srv.wait_for_audit("token.vanish", "signin_ok", signed_in_before + 1)
            .await,
        signed_in_before + 1
    );
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM sessions WHERE user_id = 'token.vanish'")
            .await,
        sessions_before + 1,
        "the session was opened, once"
    );
    let again = redeem(&srv, &c.body["challenge_id"], proof).await;
    assert_eq!((again.status, again.code()), (401, "challenge_invalid"));
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM sessions WHERE user_id = 'token.vanish'")
            .await,
        sessions_before + 1
    );
}
