//! Races: of any number of concurrent redemptions of one single-use thing,
//! exactly one wins; parallel guesses never get more evaluations than allowed.

use std::sync::Arc;

use devicetrust_e2e::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_redemptions_of_one_challenge_have_one_winner() {
    let srv = Arc::new(TestServer::start().await);
    let (_, device_id, key) = srv.user_with_device("racer").await;
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "racer",
        c.body["challenge"].as_str().unwrap(),
    );
    let body = json!({"challenge_id": c.body["challenge_id"], "proof": proof});
    let wins = race_device_proof(std::slice::from_ref(&srv), body, 32).await;
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_otp_verifications_open_one_session() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("otp.race", "GB", None).await;
    srv.sign_in_with_otp("otp.race", None).await;
    let (login_id, code) = srv.pending_otp("otp.race").await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let srv = srv.clone();
            let body = json!({"login_id": login_id, "code": code});
            tokio::spawn(async move { srv.post("/v1/login/otp/verify", body, None).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        let a = t.await.unwrap();
        if a.status == 200 {
            wins += 1;
        } else {
            assert_eq!(a.code(), "login_expired", "{:?}", a.body);
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_guesses_get_at_most_five_evaluations() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("target", "GB", None).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let srv = srv.clone();
            tokio::spawn(async move { srv.password("target", &format!("guess {i}"), None).await })
        })
        .collect();
    let (mut evaluated, mut locked) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match a.code() {
            "invalid_credentials" => evaluated += 1,
            // Refused without evaluation: locked, or the allowance in use
            // by attempts still being evaluated.
            "account_locked" | "rate_limited" => locked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(evaluated <= 5, "{evaluated} guesses were evaluated");
    assert_eq!(evaluated + locked, 20);
    assert_eq!(
        srv.password("target", PASSWORD, None).await.code(),
        "account_locked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_otp_guesses_get_at_most_five_evaluations() {
    let mut opts = Options::default();
    opts.settings.lockout_threshold = 100;
    let srv = Arc::new(TestServer::start_with(opts).await);
    srv.add_user("guessed", "GB", None).await;
    srv.sign_in_with_otp("guessed", None).await;
    let (login_id, code) = srv.pending_otp("guessed").await;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let srv = srv.clone();
            let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
            let body = json!({"login_id": login_id, "code": guess});
            tokio::spawn(async move { srv.post("/v1/login/otp/verify", body, None).await })
        })
        .collect();
    let mut invalid = 0;
    for t in tasks {
        let a = t.await.unwrap();
        match a.code() {
            "otp_invalid" => invalid += 1,
            "otp_expired" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(invalid, 5, "exactly the five allowed tries were evaluated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_one_winner() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("refresher", "GB", None).await;
    let s = srv.sign_in_with_otp("refresher", None).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let srv = srv.clone();
            let body = json!({"refresh_token": s["refresh_token"]});
            tokio::spawn(async move { srv.post("/v1/session/refresh", body, None).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().status == 200 {
            wins += 1;
        }
    }
    // One rotation wins; the others present a used token, which is reuse.
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_with_one_registration_id_create_one_device() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("twice", "GB", None).await;
    let s = srv.sign_in_with_otp("twice", None).await;
    let t = s["access_token"].as_str().unwrap().to_owned();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(&t))
        .await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let srv = srv.clone();
            let key = DeviceKey::generate();
            let body = json!({"registration_id": reg.body["registration_id"],
                "proof": key.register_proof(RP_ID, "twice", reg.body["challenge"].as_str().unwrap()),
                "name": "P", "platform": "ios", "key_storage": "secure_enclave", "user_verification": "biometric"});
            let t = t.clone();
            tokio::spawn(async move { srv.post("/v1/devices", body, Some(&t)).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let a = task.await.unwrap();
        if a.status == 201 {
            created += 1;
        } else {
            assert_eq!(a.code(), "challenge_invalid");
        }
    }
    assert_eq!(created, 1);
    let list = srv.get("/v1/devices", Some(&t)).await;
    assert_eq!(list.body["devices"].as_array().unwrap().len(), 1);
}
