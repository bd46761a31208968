//! Operations end to end: the metrics after a scripted journey (counted,
//! and free of personal data), and the SDK over the server's own TLS with a
//! test CA and an SPKI pin.

use std::collections::BTreeMap;

use base64::Engine;
use devicetrust_core::*;
use devicetrust_e2e::sdk::*;
use devicetrust_e2e::*;
use rcgen::PublicKeyData;
use serde_json::json;

/// `GET /metrics` with the admin token: the exposition text.
async fn scrape(srv: &TestServer) -> String {
    let resp = srv
        .http
        .get(format!("{}/metrics", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

/// Every sample: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Every label value of every sample.
fn label_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(labels) = line.split_once('{').and_then(|(_, r)| r.rsplit_once('}')) else {
            continue;
        };
        for pair in labels.0.split("\",") {
            if let Some((_, v)) = pair.split_once("=\"") {
                out.push(v.trim_end_matches('"').to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn metrics_count_a_journey_and_hold_no_personal_data() {
    let srv = TestServer::start().await;
    let user = "Mia.Metrics";
    let email = "mia.metrics@example.com";
    let mobile = "+447700900456";
    srv.add_user(user, "GB", Some(mobile)).await;
    // Password, enrolment, OTP, device registration, device sign-in.
    let (_session, device_id, key) = srv.user_with_device_for(user).await;
    assert_eq!(srv.device_sign_in(&device_id, &key, user).await.status, 200);
    // A device sign-in with a bad signature (another key): a failure.
    let other = DeviceKey::generate();
    assert_eq!(
        srv.device_sign_in(&device_id, &other, user).await.status,
        401
    );
    // Wrong passwords until the account locks.
    let mut statuses = Vec::new();
    for _ in 0..srv.state().settings().lockout_threshold {
        statuses.push(srv.password(user, "Wrong password 1", None).await.status);
    }
    assert_eq!(srv.password(user, PASSWORD, None).await.status, 423);
    // A path no route matches, with personal data in it.
    let _ = srv
        .http
        .get(format!("{}/v1/users/{user}/{email}", srv.base))
        .send()
        .await
        .unwrap();
    srv.settle().await;

    let text = scrape(&srv).await;
    let s = samples(&text);
    let get = |k: &str| s.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        get(r#"devicetrust_sign_ins_total{method="device",result="success"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(r#"devicetrust_sign_ins_total{method="otp",result="success"}"#),
        1.0
    );
    assert_eq!(
        get(r#"devicetrust_sign_ins_total{method="device",result="failure"}"#),
        1.0
    );
    assert_eq!(
        get(r#"devicetrust_sign_ins_total{method="password",result="failure"}"#),
        srv.state().settings().lockout_threshold as f64,
        "{statuses:?}"
    );
    assert_eq!(
        get(r#"devicetrust_locks_total{kind="account_locked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"devicetrust_otp_sends_total{channel="email",result="sent"}"#),
        1.0
    );
    assert_eq!(
        get(r#"devicetrust_security_events_total{event="device_added"}"#),
        1.0
    );
    assert_eq!(
        get(
            r#"devicetrust_http_requests_total{method="POST",route="/v1/login/device",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"devicetrust_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert!(get(r#"devicetrust_argon2_queue_wait_seconds_count"#) >= 1.0);
    assert!(
        get(
            r#"devicetrust_storage_call_duration_seconds_count{op="redeem_challenge",result="ok"}"#
        ) >= 1.0
    );
    assert!(text.contains("devicetrust_http_request_duration_seconds_bucket"));

    // No label value is or holds anything personal.
    let values = label_values(&text);
    assert!(values.len() > 50, "{values:?}");
    let personal = [
        user.to_lowercase(),
        "mia".into(),
        email.into(),
        "example.com".into(),
        mobile.into(),
        "7700900456".into(),
        device_id.to_lowercase(),
        "127.0.0.1".into(),
    ];
    for v in &values {
        let v = v.to_lowercase();
        for p in &personal {
            assert!(!v.contains(p.as_str()), "label value {v:?} holds {p:?}");
        }
    }
    // Routes are templates: the device id never appears, the route with
    // its placeholder does once a device route is used.
    let r = srv
        .delete(&format!("/v1/devices/{device_id}"), Some("dta_nonsense"))
        .await;
    assert_eq!(r.status, 401);
    let text = scrape(&srv).await;
    assert!(
        text.contains(r#"route="/v1/devices/{device_id}""#),
        "{text}"
    );
    assert!(!text.contains(&device_id));
    let _ = json!({});
    srv.stop().await;
}

struct Pki {
    ca_der: Vec<u8>,
    pin: String,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "devicetrust ops test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["localhost".into()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let spki = leaf_key.subject_public_key_info();
    let pin = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    // A key readable by every user is refused (ops::tls).
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    Pki {
        ca_der: ca_cert.der().to_vec(),
        pin,
        cert,
        key,
        _dir: dir,
    }
}

#[tokio::test]
async fn the_sdk_signs_in_over_the_servers_own_tls_with_a_test_ca_and_a_pin() {
    install_crypto_provider();
    let srv = TestServer::start().await;
    srv.add_user("tls.own", "GB", None).await;
    let pki = pki();
    // The same application, served over the server's own TLS.
    let certs = devicetrust_server::ops::tls::ReloadingCert::load(&pki.cert, &pki.key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(devicetrust_server::app::serve_with_tls(
        srv.state().clone(),
        listener,
        Some(certs.acceptor().unwrap()),
        async move {
            let _ = rx.await;
        },
    ));
    let dir = tempfile::tempdir().unwrap();
    let sdk = |pins: Vec<String>| {
        let mut config = Config::new(
            &format!("https://localhost:{port}"),
            RP_ID,
            dir.path().join("state").to_str().unwrap(),
        );
        config.extra_root_certificates = vec![pki.ca_der.clone()];
        config.tls_pins = pins;
        DeviceTrust::new(config, ScriptedKeyStore::new(&dir.path().join("keys"))).unwrap()
    };
    // The test CA and the leaf's SPKI pin: the sign-in goes through.
    assert!(matches!(
        sdk(vec![pki.pin.clone()])
            .sign_in_with_password("tls.own", PASSWORD)
            .await,
        Ok(SignInStep::EnrolmentRequired { .. })
    ));
    // A pin of another key: refused before anything is sent.
    let wrong = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    match sdk(vec![wrong])
        .sign_in_with_password("tls.own", PASSWORD)
        .await
    {
        Err(DeviceTrustError::Network {
            retryable: false,
            reason,
        }) => assert!(reason.contains("pin"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    srv.stop().await;
}
