//! The habits engine, black-box over HTTP: clients on other networks are
//! other loopback source addresses (all of 127.0.0.0/8 reaches the server,
//! and each /24 is a network to the engine).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use devicetrust_e2e::*;
use devicetrust_server::risk::{AllowAll, FailMode, HabitsConfig, HttpScorer, ScorerConfig};
use serde_json::{json, Value};

const HOME: &str = "127.0.0.1";
const CAFE: &str = "127.45.0.1";
const HOTEL: &str = "127.46.0.1";
const AIRPORT: &str = "127.47.0.1";
const ABROAD: &str = "127.48.0.1";

/// A user whose first sign-in (password + OTP, from home) registered a
/// phone: one completed sign-in.
async fn holder(srv: &TestServer, user_id: &str) -> (String, DeviceKey) {
    srv.come_from(Some(HOME));
    let (_, device_id, key) = srv.user_with_device(user_id).await;
    (device_id, key)
}

async fn device_sign_in_from(
    srv: &TestServer,
    from: &str,
    device_id: &str,
    key: &DeviceKey,
    user_id: &str,
) -> Answer {
    srv.come_from(Some(from));
    srv.device_sign_in(device_id, key, user_id).await
}

/// Three completed sign-ins from home: the fourth on is judged.
async fn seasoned(srv: &TestServer, user_id: &str) -> (String, DeviceKey) {
    let (device_id, key) = holder(srv, user_id).await;
    for _ in 0..2 {
        let a = device_sign_in_from(srv, HOME, &device_id, &key, user_id).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    (device_id, key)
}

fn reasons(a: &Answer) -> Vec<String> {
    let r = &a.body["error"]["reasons"];
    let r = if r.is_null() { &a.body["reasons"] } else { r };
    r.as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn finish_step_up(srv: &TestServer, user_id: &str, a: &Answer) -> Answer {
    let login_id = a.body["error"]["login_id"].clone();
    let code = srv.send_email_otp(user_id, &login_id).await;
    srv.post(
        "/v1/login/otp/verify",
        json!({ "login_id": login_id, "code": code }),
        None,
    )
    .await
}

#[tokio::test]
async fn an_unseen_network_steps_up_a_device_sign_in_from_the_fourth_sign_in_not_before() {
    let srv = TestServer::start().await;
    let (device_id, key) = holder(&srv, "ann").await;
    // Sign-ins 2 and 3 come from new networks: the engine is still learning.
    for from in [CAFE, HOTEL] {
        let a = device_sign_in_from(&srv, from, &device_id, &key, "ann").await;
        assert_eq!(a.status, 200, "from {from}: {:?}", a.body);
    }
    // The 4th, from a network never seen: a code is asked, and why.
    let a = device_sign_in_from(&srv, AIRPORT, &device_id, &key, "ann").await;
    assert_eq!(
        (a.status, a.code()),
        (401, "step_up_required"),
        "{:?}",
        a.body
    );
    assert_eq!(reasons(&a), ["new_network"]);
    // The networks learnt while learning are known now.
    for from in [HOME, CAFE, HOTEL] {
        let a = device_sign_in_from(&srv, from, &device_id, &key, "ann").await;
        assert_eq!(a.status, 200, "from {from}: {:?}", a.body);
    }
    // The decision and its signals are in the audit trail.
    let step_ups = srv
        .store
        .audit_events("ann")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "step_up")
        .collect::<Vec<_>>();
    assert_eq!(step_ups.len(), 1);
    let reason = step_ups[0].reason.clone().unwrap_or_default();
    assert!(reason.starts_with("device step_up new_network"), "{reason}");
    assert_eq!(step_ups[0].ip.as_deref(), Some(AIRPORT));
    srv.stop().await;
}

#[tokio::test]
async fn completing_the_step_up_makes_the_network_known_and_is_a_security_event() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "ben").await;
    let a = device_sign_in_from(&srv, AIRPORT, &device_id, &key, "ben").await;
    assert_eq!(a.code(), "step_up_required");
    let v = finish_step_up(&srv, "ben", &a).await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    assert_eq!(v.body["session"]["amr"], json!(["hwk", "bio", "otp"]));
    let token = v.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = device_sign_in_from(&srv, AIRPORT, &device_id, &key, "ben").await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    // The holder sees the step-up among their security events.
    let events = srv.get("/v1/account/events?limit=50", Some(&token)).await;
    let types: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"step_up"), "{types:?}");
    srv.stop().await;
}

#[tokio::test]
async fn a_password_lock_does_not_stop_a_device_step_up() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "cat").await;
    srv.come_from(Some(ABROAD));
    for _ in 0..5 {
        srv.password("cat", "wrong password 1A", None).await;
    }
    assert_eq!(srv.password("cat", PASSWORD, None).await.status, 423);
    let a = device_sign_in_from(&srv, AIRPORT, &device_id, &key, "cat").await;
    assert_eq!(a.code(), "step_up_required");
    let v = finish_step_up(&srv, "cat", &a).await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    srv.stop().await;
}

#[tokio::test]
async fn a_known_device_on_a_known_network_is_never_stepped_up_whatever_the_hour() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "dan").await;
    // Ten sign-ins at one hour of the day build the hour profile...
    for _ in 0..10 {
        srv.clock.advance(86_400);
        let a = device_sign_in_from(&srv, HOME, &device_id, &key, "dan").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    // ...then failures since the last success, and every hour of a day,
    // some in quick succession.
    srv.clock.advance(60);
    srv.come_from(Some(ABROAD));
    for _ in 0..4 {
        srv.password("dan", "wrong password 1A", None).await;
    }
    // Failures are learnt off the response path: wait until all four are.
    for _ in 0..500 {
        let doc = srv
            .store
            .risk_profile("dan")
            .await
            .unwrap()
            .unwrap_or_default();
        if doc.matches("127.48.0.0/24").count() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Twelve hours from the habit, right after the failures.
    srv.clock.advance(12 * 3_600);
    let a = device_sign_in_from(&srv, HOME, &device_id, &key, "dan").await;
    assert_eq!(a.status, 200, "far hour: {:?}", a.body);
    for hour in 0..24 {
        srv.clock.advance(3_600);
        // Every sixth hour, a burst of sign-ins one after the other.
        let burst = if hour % 6 == 0 { 6 } else { 1 };
        for _ in 0..burst {
            let a = device_sign_in_from(&srv, HOME, &device_id, &key, "dan").await;
            assert_eq!(a.status, 200, "hour {hour}: {:?}", a.body);
        }
    }
    let events = srv.audit_events("dan").await;
    assert!(!events.contains(&"step_up".to_owned()), "{events:?}");
    // The signals were seen and recorded on the sign-ins, without friction.
    let reasons: Vec<String> = srv
        .store
        .audit_events("dan")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "signin_ok")
        .filter_map(|e| e.reason)
        .collect();
    // (Velocity is counted only where it can decide: an unseen device on
    // a known network; see the tests below.)
    for signal in ["unusual_hour", "recent_failures"] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("; risk allow") && r.contains(signal)),
            "{signal}: {reasons:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_password_step_from_an_unseen_network_offers_only_otp_methods() {
    let srv = TestServer::start().await;
    let (device_id, _) = seasoned(&srv, "eve").await;
    srv.come_from(Some(HOME));
    let home = srv.password("eve", PASSWORD, Some(&device_id)).await;
    let methods = |a: &Answer| -> Vec<String> {
        a.body["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(methods(&home), ["device", "otp"], "{:?}", home.body);
    assert!(home.body.get("reasons").is_none(), "{:?}", home.body);
    srv.come_from(Some(ABROAD));
    let away = srv.password("eve", PASSWORD, Some(&device_id)).await;
    assert_eq!(away.body["status"], "second_factor_required");
    assert_eq!(methods(&away), ["otp"], "{:?}", away.body);
    assert_eq!(reasons(&away), ["new_network"]);
    // The OTP from there completes the sign-in and teaches the network.
    let login_id = away.body["login_id"].clone();
    let code = srv.send_email_otp("eve", &login_id).await;
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({ "login_id": login_id, "code": code }),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    let again = srv.password("eve", PASSWORD, Some(&device_id)).await;
    assert_eq!(methods(&again), ["device", "otp"], "{:?}", again.body);
    srv.stop().await;
}

#[tokio::test]
async fn a_password_alone_never_makes_a_network_known() {
    let srv = TestServer::start().await;
    srv.set_market("NL", "off").await;
    srv.come_from(Some(HOME));
    srv.add_user("fay", "NL", None).await;
    // A market without the second factor: password alone, whatever the
    // network (seed 000), and nothing learnt from it.
    for from in [HOME, CAFE, HOTEL, AIRPORT] {
        srv.come_from(Some(from));
        let a = srv.password("fay", PASSWORD, None).await;
        assert_eq!(a.body["status"], "authenticated", "{:?}", a.body);
    }
    let profile = srv.store.risk_profile("fay").await.unwrap();
    assert!(profile.is_none(), "{profile:?}");
    srv.stop().await;
}

#[tokio::test]
async fn risk_off_steps_up_nothing() {
    let srv = TestServer::start_with(Options {
        risk: Risk::Policy(Arc::new(AllowAll)),
        ..Options::default()
    })
    .await;
    let (device_id, key) = seasoned(&srv, "gus").await;
    for from in [CAFE, HOTEL, AIRPORT, ABROAD] {
        let a = device_sign_in_from(&srv, from, &device_id, &key, "gus").await;
        assert_eq!(a.status, 200, "from {from}: {:?}", a.body);
    }
    srv.come_from(Some(ABROAD));
    let p = srv.password("gus", PASSWORD, Some(&device_id)).await;
    assert_eq!(p.body["methods"][0]["type"], "device");
    srv.stop().await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_cannot_change_the_risk_network() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "hal").await;
    // From an unseen network, claiming to be at home: the header is not
    // believed from an untrusted peer.
    let c = {
        srv.come_from(Some(ABROAD));
        srv.challenge(&device_id).await
    };
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "hal",
        c.body["challenge"].as_str().unwrap(),
    );
    let resp = reqwest::Client::builder()
        .local_address(ABROAD.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
        .post(format!("{}/v1/login/device", srv.base))
        .header("x-forwarded-for", HOME)
        .json(&json!({ "challenge_id": c.body["challenge_id"], "proof": proof }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "step_up_required");
    srv.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_judged() {
    let mut opts = Options::default();
    opts.settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let srv = TestServer::start_with(opts).await;
    let (device_id, key) = seasoned(&srv, "ida").await;
    srv.come_from(Some(HOME));
    let c = srv.challenge(&device_id).await;
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "ida",
        c.body["challenge"].as_str().unwrap(),
    );
    let resp = srv
        .http
        .post(format!("{}/v1/login/device", srv.base))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "challenge_id": c.body["challenge_id"], "proof": proof }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "step_up_required", "{body:?}");
    srv.stop().await;
}

#[tokio::test]
async fn adaptive_lockout_locks_a_fresh_account_sooner_under_a_spread_burst() {
    for (adaptive, locked_after) in [(false, 5), (true, 3)] {
        let srv = TestServer::start_with(Options {
            risk: Risk::Habits(HabitsConfig {
                adaptive_lockout: adaptive,
                ..HabitsConfig::default()
            }),
            ..Options::default()
        })
        .await;
        holder(&srv, "jon").await;
        let mut answers = Vec::new();
        for i in 0..6 {
            // Each guess from another network.
            srv.come_from(Some(&format!("127.{}.0.9", 60 + i)));
            answers.push(srv.password("jon", "wrong password 1A", None).await.status);
        }
        let expected: Vec<u16> = (0..6)
            .map(|i| if i < locked_after { 401 } else { 423 })
            .collect();
        assert_eq!(answers, expected, "adaptive {adaptive}");
        srv.stop().await;
    }
}

/// What the fraud engine was sent: bodies and their signature headers.
type Seen = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// A fraud engine on loopback: answers with `reply` after `delay`, and
/// keeps what it was sent.
async fn scorer(reply: (u16, Value), delay: Duration) -> (String, Seen) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/score",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let kept = kept.clone();
            let reply = reply.clone();
            async move {
                let sig = headers
                    .get("x-devicetrust-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                kept.lock()
                    .unwrap()
                    .push((serde_json::from_str(&body).unwrap_or(Value::Null), sig));
                tokio::time::sleep(delay).await;
                (StatusCode::from_u16(reply.0).unwrap(), axum::Json(reply.1))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/score", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn with_scorer(url: String, fail: FailMode, timeout_ms: u64) -> TestServer {
    install_crypto_provider();
    let policy = HttpScorer::new(ScorerConfig {
        url,
        timeout: Duration::from_millis(timeout_ms),
        fail,
        secret: Some("scorer-secret-0123456789".into()),
    })
    .unwrap();
    TestServer::start_with(Options {
        risk: Risk::Policy(Arc::new(policy)),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn an_http_scorer_decides_and_sees_a_signed_request() {
    let (url, seen) = scorer(
        (
            200,
            json!({"decision": "step_up", "reasons": ["mule_pattern", "Vendor Free Text"]}),
        ),
        Duration::ZERO,
    )
    .await;
    let srv = with_scorer(url, FailMode::Open, 2_000).await;
    srv.come_from(Some(HOME));
    srv.add_user("kim", "GB", None).await;
    // The password step is asked too: its step-up (no device here) changes
    // nothing but is recorded.
    let session = srv.sign_in_with_otp("kim", None).await;
    let (device_id, key) = srv.register_device(&session, "biometric").await;
    let a = device_sign_in_from(&srv, CAFE, &device_id, &key, "kim").await;
    assert_eq!(a.code(), "step_up_required");
    // Only plain codes reach the phone.
    assert_eq!(reasons(&a), ["mule_pattern"]);
    let seen = seen.lock().unwrap().clone();
    let (body, sig) = seen.last().unwrap().clone();
    assert_eq!(body["flow"], "device");
    assert_eq!(body["user_id"], "kim");
    assert_eq!(body["device_id"], device_id.as_str());
    assert_eq!(body["ip"], CAFE);
    assert_eq!(body["network"], "127.45.0.0/24");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"scorer-secret-0123456789");
    let expected: String = ring::hmac::sign(&key, body.to_string().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The signature covers the exact bytes sent; serde_json keeps the
    // object's key order, so re-serialising gives them back.
    assert_eq!(sig.as_deref(), Some(format!("sha256={expected}").as_str()));
    srv.stop().await;
}

#[tokio::test]
async fn an_unanswering_scorer_fails_closed_or_open_as_configured() {
    for (reply, delay) in [
        ((200, json!({"decision": "allow"})), Duration::from_secs(5)),
        ((503, json!({})), Duration::ZERO),
        ((200, json!({"verdict": "yes"})), Duration::ZERO),
        // An answer past 16 KB is not read to its end.
        (
            (
                200,
                json!({"decision": "allow", "reasons": vec!["x"; 10_000]}),
            ),
            Duration::ZERO,
        ),
    ] {
        let (url, _) = scorer(reply.clone(), delay).await;
        for fail in [FailMode::Closed, FailMode::Open] {
            let srv = with_scorer(url.clone(), fail, 200).await;
            srv.come_from(Some(HOME));
            srv.add_user("lee", "GB", None).await;
            let session = srv.sign_in_with_otp("lee", None).await;
            let (device_id, key) = srv.register_device(&session, "biometric").await;
            let started = std::time::Instant::now();
            let a = device_sign_in_from(&srv, HOME, &device_id, &key, "lee").await;
            match fail {
                FailMode::Closed => {
                    assert_eq!(a.code(), "step_up_required", "{reply:?}: {:?}", a.body);
                    assert_eq!(reasons(&a), ["scorer_unavailable"]);
                }
                FailMode::Open => assert_eq!(a.status, 200, "{reply:?}: {:?}", a.body),
            }
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "the timeout bounds the wait"
            );
            srv.stop().await;
        }
    }
}

// What an outside review of the engine found, each kept closed by a test.

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn racing_sign_ins_cannot_share_the_learning_passes_or_push_home_out() {
    let srv = TestServer::start().await;
    let (device_id, key) = holder(&srv, "race").await;
    // 40 challenges, then 40 proofs at once, each from its own network.
    let mut proofs = Vec::new();
    for i in 0..40 {
        srv.come_from(Some(HOME));
        let c = srv.challenge(&device_id).await;
        let proof = key.login_proof(
            RP_ID,
            &device_id,
            "race",
            c.body["challenge"].as_str().unwrap(),
        );
        proofs.push((
            format!("127.{}.0.1", 100 + i),
            c.body["challenge_id"].clone(),
            proof,
        ));
    }
    let base = srv.base.clone();
    let answers = futures_join(proofs.into_iter().map(|(from, id, proof)| {
        let base = base.clone();
        async move {
            client_from(&from)
                .post(format!("{base}/v1/login/device"))
                .json(&json!({ "challenge_id": id, "proof": proof }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let passed = answers.iter().filter(|s| **s == 200).count();
    assert_eq!(passed, 2, "one sign-in done, two passes left: {answers:?}");
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 401),
        "{answers:?}"
    );
    // Home is still home.
    let a = device_sign_in_from(&srv, HOME, &device_id, &key, "race").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    srv.stop().await;
}

async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_code_verified_from_another_network_teaches_neither() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "relay").await;
    let a = device_sign_in_from(&srv, CAFE, &device_id, &key, "relay").await;
    assert_eq!(a.code(), "step_up_required");
    let login_id = a.body["error"]["login_id"].clone();
    let code = srv.send_email_otp("relay", &login_id).await;
    srv.come_from(Some(AIRPORT));
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({ "login_id": login_id, "code": code }),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "the code is right: {:?}", v.body);
    for from in [CAFE, AIRPORT] {
        let a = device_sign_in_from(&srv, from, &device_id, &key, "relay").await;
        assert_eq!(a.code(), "step_up_required", "from {from}: {:?}", a.body);
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_device_method_of_a_password_sign_in_is_judged_where_the_proof_comes_from() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "split").await;
    srv.come_from(Some(HOME));
    let p = srv.password("split", PASSWORD, Some(&device_id)).await;
    let device = &p.body["methods"][0];
    assert_eq!(device["type"], "device", "{:?}", p.body);
    let proof = key.login_proof(
        RP_ID,
        &device_id,
        "split",
        device["challenge"].as_str().unwrap(),
    );
    srv.come_from(Some(AIRPORT));
    let a = srv
        .post(
            "/v1/login/device",
            json!({ "challenge_id": device["challenge_id"], "proof": proof }),
            None,
        )
        .await;
    assert_eq!(a.code(), "step_up_required", "{:?}", a.body);
    // The same sign-in goes on with its code, from there.
    assert_eq!(a.body["error"]["login_id"], p.body["login_id"]);
    let code = srv.send_email_otp("split", &p.body["login_id"]).await;
    let v = srv
        .post(
            "/v1/login/otp/verify",
            json!({ "login_id": p.body["login_id"], "code": code }),
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    srv.stop().await;
}

#[tokio::test]
async fn a_password_holder_cannot_use_up_the_codes_a_device_step_up_needs() {
    let mut opts = Options::default();
    opts.settings.otp_sends_per_hour = 3;
    let srv = TestServer::start_with(opts).await;
    let (device_id, key) = seasoned(&srv, "capped").await;
    // Whoever has the password asks for codes until the hourly cap.
    srv.come_from(Some(ABROAD));
    let mut capped = false;
    for _ in 0..6 {
        let p = srv.password("capped", PASSWORD, None).await;
        let sent = srv
            .post(
                "/v1/login/otp/send",
                json!({ "login_id": p.body["login_id"], "channel": "email" }),
                None,
            )
            .await;
        capped |= sent.code() == "rate_limited";
    }
    assert!(capped, "the password flow is capped");
    // The holder, on their phone somewhere new, still gets a code.
    let a = device_sign_in_from(&srv, CAFE, &device_id, &key, "capped").await;
    assert_eq!(a.code(), "step_up_required");
    let v = finish_step_up(&srv, "capped", &a).await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    srv.stop().await;
}

#[tokio::test]
async fn a_registration_does_not_teach_the_network_it_came_from() {
    let srv = TestServer::start().await;
    let (_, _) = seasoned(&srv, "token").await;
    // A fresh strong session at home; its token used from elsewhere.
    srv.come_from(Some(HOME));
    let session = srv.sign_in_with_otp("token", None).await;
    srv.come_from(Some(AIRPORT));
    let (new_device, new_key) = srv.register_device(&session, "biometric").await;
    let a = device_sign_in_from(&srv, AIRPORT, &new_device, &new_key, "token").await;
    assert_eq!(a.code(), "step_up_required", "{:?}", a.body);
    srv.stop().await;
}

#[tokio::test]
async fn password_step_ups_tell_little_and_do_not_flood_the_holders_events() {
    let srv = TestServer::start().await;
    let (device_id, key) = seasoned(&srv, "flood").await;
    // Failures and a burst first, so there would be more to tell.
    srv.come_from(Some(ABROAD));
    for _ in 0..3 {
        srv.password("flood", "wrong password 1A", None).await;
    }
    for i in 0..10 {
        srv.come_from(Some(&format!("127.{}.0.1", 150 + i)));
        let p = srv.password("flood", PASSWORD, Some(&device_id)).await;
        assert_eq!(reasons(&p), ["new_network"], "{:?}", p.body);
    }
    let a = device_sign_in_from(&srv, HOME, &device_id, &key, "flood").await;
    let token = a.body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = srv.get("/v1/account/events?limit=200", Some(&token)).await;
    let step_ups = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "step_up")
        .count();
    assert_eq!(step_ups, 0, "{:?}", events.body);
    // They are in the audit trail all the same.
    let audited = srv
        .audit_events("flood")
        .await
        .iter()
        .filter(|e| *e == "password_step_up")
        .count();
    assert_eq!(audited, 10);
    srv.stop().await;
}

// ---- outside review: velocity counted from the sessions table ----

const REVIEW_DAY: i64 = 86_400;

/// A holder with a phone and a tablet; the tablet then goes unused for
/// longer than the engine's memory (one day here) while the phone signs in
/// at home twice a day: the tablet is a "device not seen lately".
async fn holder_with_a_stale_tablet(
    srv: &TestServer,
    user_id: &str,
) -> (String, DeviceKey, String, DeviceKey) {
    srv.come_from(Some(HOME));
    let (session, phone, phone_key) = srv.user_with_device(user_id).await;
    let (tablet, tablet_key) = srv.register_device(&session, "biometric").await;
    for _ in 0..6 {
        let a = device_sign_in_from(srv, HOME, &phone, &phone_key, user_id).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        srv.clock.advance(12 * 3_600);
    }
    (phone, phone_key, tablet, tablet_key)
}

fn short_memory() -> HabitsConfig {
    HabitsConfig {
        memory_s: REVIEW_DAY,
        ..HabitsConfig::default()
    }
}

/// Positive control: nothing else in the suite drives `sign_ins_since`
/// end to end (the unit test passes the count in).
#[tokio::test]
async fn review_a_burst_of_sign_ins_steps_up_a_device_not_seen_lately() {
    let srv = TestServer::start_with(Options {
        risk: Risk::Habits(short_memory()),
        ..Options::default()
    })
    .await;
    let (phone, phone_key, tablet, tablet_key) = holder_with_a_stale_tablet(&srv, "vic").await;
    for _ in 0..5 {
        let a = device_sign_in_from(&srv, HOME, &phone, &phone_key, "vic").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    let a = device_sign_in_from(&srv, HOME, &tablet, &tablet_key, "vic").await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(reasons(&a), vec!["new_device", "velocity"]);
}

// A velocity window longer than a session's life (whose rows are purged
// when it ends) is refused at start: `cli::tests::velocity_cannot_outlive_sessions`.
