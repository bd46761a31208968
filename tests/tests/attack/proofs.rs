//! Proofs: crossed challenges, replays, forged headers, and the `sub` rule.

use devicetrust_e2e::*;
use serde_json::json;

async fn redeem(srv: &TestServer, challenge_id: &serde_json::Value, proof: String) -> Answer {
    srv.post(
        "/v1/login/device",
        json!({"challenge_id": challenge_id, "proof": proof}),
        None,
    )
    .await
}

/// Smaller finding: `sub` was compared case-sensitively while user ids are
/// case-insensitive everywhere else.
#[tokio::test]
async fn sub_is_compared_case_insensitively() {
    let srv = TestServer::start().await;
    let (_, device_id, key) = srv.user_with_device("case.sub").await;
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "Case.SUB",
        c.body["challenge"].as_str().unwrap(),
    );
    let a = redeem(&srv, &c.body["challenge_id"], proof).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// Crossed challenges, foreign keys, forged headers and replays: each is
/// refused, and none of them spends the owner's challenge.
#[tokio::test]
async fn crossed_forged_and_replayed_proofs_are_refused() {
    let srv = TestServer::start().await;
    let (_, dev_a, key_a) = srv.user_with_device("prover.a").await;
    let (_, dev_b, key_b) = srv.user_with_device("prover.b").await;
    let c = srv.challenge(&dev_a).await;
    let nonce = c.body["challenge"].as_str().unwrap();
    let id = &c.body["challenge_id"];
    // B's device answering A's challenge: the token is bound to A's device.
    let crossed = key_b.login_proof(RP_ID, &dev_b, "prover.b", nonce);
    assert_eq!(redeem(&srv, id, crossed).await.code(), "challenge_invalid");
    let attempts = [
        // A's kid, B's key.
        key_b.login_proof(RP_ID, &dev_a, "prover.a", nonce),
        // Another user's sub.
        key_a.login_proof(RP_ID, &dev_a, "prover.b", nonce),
        // Another relying party.
        key_a.login_proof("https://evil.example", &dev_a, "prover.a", nonce),
        // A registration proof where a login proof belongs.
        key_a.register_proof(RP_ID, "prover.a", nonce),
        // alg none and HS256.
        key_a.sign_jws(
            &json!({"alg": "none", "typ": "devicetrust-login+jwt", "kid": dev_a}),
            &json!({"aud": RP_ID, "sub": "prover.a", "nonce": nonce}),
        ),
        key_a.sign_jws(
            &json!({"alg": "HS256", "typ": "devicetrust-login+jwt", "kid": dev_a}),
            &json!({"aud": RP_ID, "sub": "prover.a", "nonce": nonce}),
        ),
        // A critical extension the server does not understand.
        key_a.sign_jws(
            &json!({"alg": "ES256", "typ": "devicetrust-login+jwt", "kid": dev_a, "crit": ["exp"]}),
            &json!({"aud": RP_ID, "sub": "prover.a", "nonce": nonce}),
        ),
        // Truncated and empty signatures.
        {
            let p = key_a.login_proof(RP_ID, &dev_a, "prover.a", nonce);
            p[..p.len() - 10].to_owned()
        },
        {
            let p = key_a.login_proof(RP_ID, &dev_a, "prover.a", nonce);
            p[..p.rfind('.').unwrap() + 1].to_owned()
        },
    ];
    for (i, proof) in attempts.into_iter().enumerate() {
        let a = redeem(&srv, id, proof).await;
        assert_eq!(
            (a.status, a.code()),
            (401, "signature_invalid"),
            "attempt {i}"
        );
    }
    // The owner's challenge survived all of that, and is single-use.
    let good = key_a.login_proof(RP_ID, &dev_a, "prover.a", nonce);
    assert_eq!(redeem(&srv, id, good.clone()).await.status, 200);
    assert_eq!(redeem(&srv, id, good).await.code(), "challenge_invalid");
    // Failed proofs never lock or step up the owner.
    assert_eq!(srv.password("prover.a", PASSWORD, None).await.status, 200);
}
