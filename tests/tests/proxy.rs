//! `--trust-proxy`: `X-Forwarded-For` is believed only from the named
//! proxies; from anyone else it is ignored, so a spoofed header can change
//! neither the per-IP limit nor the address the audit (and risk) sees.

use devicetrust_e2e::*;
use serde_json::json;

async fn start(trusted: &[&str]) -> TestServer {
    let mut opts = Options::default();
    opts.settings.ip_rate_limit_per_minute = 2;
    opts.settings.trusted_proxies = trusted.iter().map(|n| n.parse().unwrap()).collect();
    TestServer::start_with(opts).await
}

async fn password_from(srv: &TestServer, user_id: &str, forwarded: &str) -> Answer {
    let resp = srv
        .http
        .post(format!("{}/v1/login/password", srv.base))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"user_id": user_id, "password": "not the password"}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or_default();
    Answer { status, body }
}

#[tokio::test]
async fn a_spoofed_header_from_an_untrusted_peer_changes_nothing() {
    let srv = start(&[]).await;
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(
                password_from(&srv, "nobody", &format!("203.0.113.{i}"))
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(codes, [401, 401, 429], "one budget: the TCP peer's");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let srv = start(&["127.0.0.0/8"]).await;
    for i in 0..3 {
        let a = password_from(&srv, "nobody", &format!("203.0.113.{i}")).await;
        assert_eq!(a.status, 401, "client {i}");
    }
    // The rightmost address that is not a trusted proxy is the client.
    assert_eq!(
        password_from(&srv, "nobody", "198.51.100.1, 203.0.113.9")
            .await
            .status,
        401
    );
    assert_eq!(
        password_from(&srv, "nobody", "203.0.113.9, 127.0.0.5")
            .await
            .status,
        401
    );
    let third = password_from(&srv, "another", "192.0.2.1, 203.0.113.9").await;
    assert_eq!(third.code(), "rate_limited", "203.0.113.9 has had its two");
    // A hop the proxy wrote that cannot be read is an unknown client (its
    // own budget), never the proxy itself, whose budget everyone shares.
    assert_eq!(
        password_from(&srv, "someone.else", "not-an-address")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_audit_records_the_forwarded_client() {
    let srv = start(&["127.0.0.1/32"]).await;
    srv.add_user("forwarded", "GB", None).await;
    password_from(&srv, "forwarded", "203.0.113.50").await;
    let ip = srv
        .sql_text("SELECT ip FROM audit WHERE user_id = 'forwarded' AND event = 'signin_failed'")
        .await;
    assert_eq!(ip, "203.0.113.50");
}
