//! Input: odd Unicode, oversize and deeply nested bodies, forged request
//! ids. Every answer is a clear 4xx with a stable code, never a 5xx.

use devicetrust_e2e::*;
use serde_json::json;

/// Smaller finding: a client's `x-request-id` was logged unescaped (log
/// forging). Only plain tokens are kept; anything else is replaced.
#[tokio::test]
async fn request_ids_cannot_forge_log_lines() {
    let srv = TestServer::start().await;
    let send = |id: &'static [u8]| {
        let srv = &srv;
        async move {
            let resp = srv
                .http
                .get(format!("{}/healthz", srv.base))
                .header(
                    "x-request-id",
                    reqwest::header::HeaderValue::from_bytes(id).unwrap(),
                )
                .send()
                .await
                .unwrap();
            resp.headers()["x-request-id"]
                .to_str()
                .unwrap_or("")
                .to_owned()
        }
    };
    assert_eq!(send(b"abc-123.x_y:z").await, "abc-123.x_y:z");
    for forged in [
        &b"a\tb"[..],
        b"a b",
        b"id\" user_id=\"admin",
        b"\xc3\xa9t\xc3\xa9",
        &[b'a'; 65][..],
    ] {
        let echoed = send(forged).await;
        assert_ne!(echoed.as_bytes(), forged);
        assert!(
            echoed.len() == 36 && echoed.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "replaced by a generated id: {echoed:?}"
        );
    }
}

/// Bodies built to break parsers: every one answered 400 or 413 with the
/// contract's error body.
#[tokio::test]
async fn hostile_bodies_get_clear_errors() {
    let srv = TestServer::start().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(
        "{{\"user_id\":{}1{},\"password\":\"x\"}}",
        "{\"a\":".repeat(2000),
        "}".repeat(2000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (deep.into_bytes(), 413),
        (deep_obj.into_bytes(), 400),
        (vec![b'{'; 10_000], 400),
        (
            b"{\"user_id\":\"\\ud800\",\"password\":\"x\"}".to_vec(),
            400,
        ),
        (
            b"{\"user_id\":\"a\",\"user_id\":\"b\",\"password\":\"x\"}".to_vec(),
            400,
        ),
        (b"\xff\xfe{}".to_vec(), 400),
        (b"{\"user_id\":1e999,\"password\":\"x\"}".to_vec(), 400),
        (vec![b' '; 20_000], 413),
    ];
    for (body, status) in cases {
        let a = srv
            .post_raw("/v1/login/password", "application/json", body)
            .await;
        assert_eq!(a.status, status, "{:?}", a.body);
        assert!(!a.code().is_empty());
    }
}

/// Look-alike and invisible characters in ids and names are refused, not
/// normalised into someone else's account.
#[tokio::test]
async fn odd_unicode_is_refused() {
    let srv = TestServer::start().await;
    let (session, _, _) = srv.user_with_device("unicode").await;
    for user_id in [
        "unic\u{043E}de",  // Cyrillic o
        "unicode\u{200B}", // zero-width space
        "\u{FF55}nicode",  // full-width u
        "unicode\u{0000}", // NUL
        "UNICODE\u{0301}", // combining accent
    ] {
        let a = srv.password(user_id, PASSWORD, None).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_request"),
            "{user_id:?}"
        );
    }
    let token = session["access_token"].as_str().unwrap();
    let reg = srv
        .post("/v1/devices/registration", json!({}), Some(token))
        .await;
    for name in ["phone\u{202E}evil", "\u{0007}bell", "  ", "a\nb"] {
        let a = srv
            .post(
                "/v1/devices",
                json!({
                    "registration_id": reg.body["registration_id"],
                    "proof": "x.y.z",
                    "name": name,
                    "platform": "android",
                    "key_storage": "tee",
                    "user_verification": "biometric",
                }),
                Some(token),
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{name:?}");
    }
}

/// Review finding: a malformed path parameter got axum's plain-text 400.
#[tokio::test]
async fn malformed_path_parameters_get_the_error_body() {
    let srv = TestServer::start().await;
    srv.add_user("paths", "GB", None).await;
    let s = srv.sign_in_with_otp("paths", None).await;
    let token = s["access_token"].as_str();
    let a = srv.delete("/v1/devices/%FF", token).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = srv
        .post("/admin/v1/users/%FF/unlock", json!({}), Some(ADMIN_TOKEN))
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = srv
        .put(
            "/admin/v1/markets/%FF",
            json!({"second_factor": "off"}),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
}
