//! Enrolment proves only the password: it may not open a new way in.

use std::sync::Arc;

use devicetrust_e2e::*;
use serde_json::json;

async fn enrol(
    srv: &TestServer,
    login_id: &serde_json::Value,
    code: &str,
    mobile: Option<&str>,
) -> Answer {
    srv.post(
        "/v1/login/enrol",
        json!({"login_id": login_id, "security_code": code, "mobile": mobile}),
        None,
    )
    .await
}

fn channels(a: &Answer) -> Vec<String> {
    a.body["methods"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["channel"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Hole 2: with only the password, an attacker enrolled and replaced the
/// mobile the bank had on file; the SMS code then went to the attacker.
#[tokio::test]
async fn enrolment_may_not_replace_the_banks_mobile() {
    let srv = TestServer::start().await;
    srv.add_user("has.mobile", "GB", Some("+447700900123"))
        .await;
    let p = srv.password("has.mobile", PASSWORD, None).await;
    let a = enrol(&srv, &p.body["login_id"], "135790", Some("+15550006666")).await;
    assert_eq!(
        (a.status, a.code()),
        (400, "invalid_request"),
        "{:?}",
        a.body
    );
    let me = srv.store.user("has.mobile").await.unwrap().unwrap();
    assert_eq!(me.mobile.as_deref(), Some("+447700900123"));
    assert!(
        me.enrolled_at.is_none(),
        "a refused enrolment changes nothing"
    );
    // Without a mobile it goes through, and the bank's number is offered.
    let a = enrol(&srv, &p.body["login_id"], "135790", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(channels(&a), ["email", "sms"]);
}

/// Hole 2: an attacker who enrols with a mobile of their own cannot receive
/// codes on it: it is not a channel until the same sign-in completes with a
/// code sent to the e-mail on file, and the owner's later e-mail sign-ins in
/// other logins do not make it one either.
#[tokio::test]
async fn a_mobile_given_at_enrolment_is_no_channel_until_that_sign_in_proves_the_email() {
    let srv = TestServer::start().await;
    srv.add_user("no.mobile", "GB", None).await;
    // The attacker, with the password only.
    let p = srv.password("no.mobile", PASSWORD, None).await;
    let attacker = p.body["login_id"].clone();
    let a = enrol(&srv, &attacker, "135790", Some("+15550006666")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(channels(&a), ["email"]);
    let sms = srv
        .post(
            "/v1/login/otp/send",
            json!({"login_id": attacker, "channel": "sms"}),
            None,
        )
        .await;
    assert_eq!((sms.status, sms.code()), (400, "invalid_request"));
    assert!(srv
        .outbox_messages()
        .iter()
        .all(|m| m["to"] != "+15550006666"));
    // The owner is told, at the e-mail on file, with the number masked.
    srv.settle().await;
    let alert = srv
        .outbox_messages()
        .into_iter()
        .find(|m| m["purpose"] == "alert" && m["user_id"] == "no.mobile")
        .expect("an enrolment alert");
    assert_eq!(alert["to"], "no.mobile@example.com");
    assert!(!alert["text"].as_str().unwrap().contains("+15550006666"));
    // The owner signs in by e-mail in another login: still no SMS.
    srv.sign_in_with_otp("no.mobile", None).await;
    let p = srv.password("no.mobile", PASSWORD, None).await;
    assert_eq!(channels(&p), ["email"]);
}

/// The owner who gives a mobile at enrolment and finishes that sign-in with
/// the e-mail code gets the mobile as a channel.
#[tokio::test]
async fn the_owners_mobile_becomes_a_channel_after_the_email_code() {
    let srv = TestServer::start().await;
    srv.add_user("owner.mobile", "GB", None).await;
    let p = srv.password("owner.mobile", PASSWORD, None).await;
    let login_id = p.body["login_id"].clone();
    enrol(&srv, &login_id, "135790", Some("+447700900999")).await;
    let code = srv.send_email_otp("owner.mobile", &login_id).await;
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({"login_id": login_id, "code": code}),
            None,
        )
        .await;
    assert_eq!(v.status, 200);
    let p = srv.password("owner.mobile", PASSWORD, None).await;
    assert_eq!(channels(&p), ["email", "sms"]);
}

/// Hole 2: an enrolment `login_id` obtained before the owner enrolled still
/// worked afterwards, overwriting the security code and the mobile.
#[tokio::test]
async fn an_enrolment_login_dies_once_the_user_is_enrolled() {
    let srv = TestServer::start().await;
    srv.add_user("enrol.twice", "GB", None).await;
    let early = srv.password("enrol.twice", PASSWORD, None).await.body["login_id"].clone();
    let owner = srv.password("enrol.twice", PASSWORD, None).await.body["login_id"].clone();
    assert_eq!(enrol(&srv, &owner, "135790", None).await.status, 200);
    let before = srv.store.user("enrol.twice").await.unwrap().unwrap();
    let a = enrol(&srv, &early, "246801", Some("+15550006666")).await;
    assert_eq!((a.status, a.code()), (401, "login_expired"));
    let after = srv.store.user("enrol.twice").await.unwrap().unwrap();
    assert_eq!(after.security_code_hash, before.security_code_hash);
    assert_eq!(after.mobile, None);
}

/// Ten enrolment logins racing: exactly one enrols.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_enrolments_enrol_once() {
    let srv = Arc::new(TestServer::start().await);
    srv.add_user("enrol.race", "GB", None).await;
    let mut logins = Vec::new();
    for _ in 0..10 {
        logins.push(srv.password("enrol.race", PASSWORD, None).await.body["login_id"].clone());
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(logins.len()));
    let tasks: Vec<_> = logins
        .into_iter()
        .enumerate()
        .map(|(i, login_id)| {
            let (srv, barrier) = (srv.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mobile = format!("+1555000{:04}", i);
                enrol(&srv, &login_id, "135790", Some(&mobile)).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            200 => wins += 1,
            _ => assert_eq!(a.code(), "login_expired", "{:?}", a.body),
        }
    }
    assert_eq!(wins, 1);
    srv.settle().await;
    let alerts = srv
        .outbox_messages()
        .iter()
        .filter(|m| m["purpose"] == "alert")
        .count();
    assert_eq!(alerts, 1, "one enrolment, one alert");
}
