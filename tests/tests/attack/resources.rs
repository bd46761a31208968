//! Resources: what a client can hold, exhaust or make grow. Dropped
//! requests give their place back, slow clients are cut off, connections are
//! capped, shutdown has a deadline, SMS sends are capped, tables are pruned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use devicetrust_e2e::*;
use devicetrust_server::app::Settings;
use devicetrust_server::http_server::ConnectionLimits;
use devicetrust_server::secrets::HasherConfig;
use devicetrust_server::storage::Retention;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn options(connections: ConnectionLimits) -> Options {
    let base = Options::default();
    Options {
        settings: Settings {
            connections,
            ..base.settings
        },
        ..base
    }
}

/// Reads until the server closes the connection (or `limit` passes);
/// returns what it sent and how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept a slow connection open for {limit:?}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// Hole 1: the argon2id queue counted a waiter in and never out when its
/// client disconnected; a few hundred dropped requests turned every later
/// password sign-in away with 429 until restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_password_requests_never_exhaust_the_hash_queue() {
    let srv = Arc::new(
        TestServer::start_with(Options {
            hasher: HasherConfig {
                concurrency: 1,
                max_waiting: 32,
                ..HasherConfig::default()
            },
            ..Options::default()
        })
        .await,
    );
    srv.add_user("queue.owner", "GB", None).await;
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let srv = srv.clone();
            tokio::spawn(async move {
                srv.send_and_vanish(
                    "/v1/login/password",
                    json!({"user_id": format!("nobody{i}"), "password": "guess"}),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // The queue drains (every counted attempt is still evaluated) and the
    // owner gets in.
    let start = Instant::now();
    loop {
        let a = srv.password("queue.owner", PASSWORD, None).await;
        if a.status == 200 {
            break;
        }
        assert_eq!(a.code(), "rate_limited", "{:?}", a.body);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still turned away after a minute: the queue leaked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every place is given back once the work is done.
    while srv.state().hasher().queued() > 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "places leaked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hole 7: a client that trickles its headers is cut off.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let srv = TestServer::start_with(options(ConnectionLimits {
        header_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /v1/login/password HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // An idle connection that never sends a byte is cut off too.
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    read_until_closed(&mut idle, Duration::from_secs(5)).await;
}

/// A connection that has sent a password step's head, announcing a
/// 100-byte body, and the first bytes of that body, and no more.
async fn body_begun(srv: &TestServer, body: &[u8]) -> TcpStream {
    let mut request = b"POST /v1/login/password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".to_vec();
    request.extend_from_slice(body);
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(&request).await.unwrap();
    s
}

/// Hole 7: a body that stops arriving gets 408 `request_timeout`.
#[tokio::test]
async fn a_half_sent_body_times_out() {
    let srv = TestServer::start_with(options(ConnectionLimits {
        body_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut s = body_begun(&srv, b"{\"user_id\":").await;
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// Issue 14's outside review: the body timeout restarted at every chunk,
/// so a body sent a byte at a time held its connection (and, 4,096 times
/// over, every slot) indefinitely. The deadline is for the whole body.
#[tokio::test]
async fn a_trickled_body_times_out_at_its_deadline() {
    let srv = TestServer::start_with(options(ConnectionLimits {
        body_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut s = body_begun(&srv, b"").await;
    let start = Instant::now();
    // A byte every 200 ms, each well inside the timeout: 4 s of body.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "answered only after {:?}",
        start.elapsed()
    );
}

/// Hole 7: a half-sent body blocked graceful shutdown forever; now shutdown
/// waits at most its grace period.
#[tokio::test]
async fn a_half_sent_body_does_not_block_shutdown() {
    let srv = TestServer::start_with(options(ConnectionLimits {
        body_timeout: Duration::from_secs(300),
        shutdown_grace: Duration::from_secs(1),
        ..ConnectionLimits::default()
    }))
    .await;
    let _s = body_begun(&srv, b"{").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), srv.stop())
        .await
        .expect("shutdown finished within its grace period");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// Hole 7: connections beyond the cap are closed on accept; a freed slot
/// serves again.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let srv = TestServer::start_with(options(ConnectionLimits {
        max_connections: 4,
        header_timeout: Duration::from_secs(30),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(srv.addr).await.unwrap();
    let (answer, took) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(answer.is_empty() && took < Duration::from_secs(2));
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = srv.get("/healthz", None).await;
    assert_eq!(a.status, 200);
}

/// Hole 6: SMS pumping. A correct password opened a fresh login with five
/// sends each time: twenty SMS in under a second to one number. Sends are
/// capped per user across logins, and per destination across users.
#[tokio::test]
async fn otp_sends_are_capped_per_user_and_per_destination() {
    let srv = TestServer::start().await;
    srv.add_user("pumped", "GB", Some("+447700900123")).await;
    srv.add_user("pumped.too", "GB", Some("+447700900123"))
        .await;
    for user in ["pumped", "pumped.too"] {
        srv.sign_in_with_otp(user, None).await;
    }
    let send = |user: &'static str| {
        let srv = &srv;
        async move {
            let p = srv.password(user, PASSWORD, None).await;
            assert_eq!(p.status, 200, "{:?}", p.body);
            srv.post(
                "/v1/login/otp/send",
                json!({"login_id": p.body["login_id"], "channel": "sms"}),
                None,
            )
            .await
        }
    };
    // Each user signed in once by e-mail (one send each, to two different
    // addresses). Eight SMS for one user and two for the other fill the
    // number's hourly ten: the next SMS to it is refused, whoever asks.
    for _ in 0..8 {
        assert_eq!(send("pumped").await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(send("pumped.too").await.status, 200);
    }
    let a = send("pumped.too").await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"), "{:?}", a.body);
    let retry = a.body["error"]["retry_after_s"].as_i64().unwrap();
    assert!(retry > 0 && retry <= 3600);
    // The user's own cap: "pumped" has had nine sends; one more e-mail
    // reaches ten and the next is refused, though its address is fresh.
    for expected in [200, 429] {
        let p = srv.password("pumped", PASSWORD, None).await;
        let a = srv
            .post(
                "/v1/login/otp/send",
                json!({"login_id": p.body["login_id"], "channel": "email"}),
                None,
            )
            .await;
        assert_eq!(a.status, expected, "{:?}", a.body);
    }
    srv.clock.advance(3601);
    assert_eq!(send("pumped").await.status, 200);
}

/// Unbounded tables: counts for every id ever tried, expired challenges,
/// logins, sessions, sends and old audit lines are pruned.
#[tokio::test]
async fn housekeeping_prunes_what_is_not_needed() {
    let srv = TestServer::start().await;
    let (session, device_id, key) = srv.user_with_device("pruned").await;
    for i in 0..50 {
        srv.password(&format!("sprayed{i}"), "guess", None).await;
        // Issuing writes nothing; a redeemed token leaves a row until it expires.
        srv.challenge(&device_id).await;
    }
    for _ in 0..5 {
        let a = srv.device_sign_in(&device_id, &key, "pruned").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    srv.password("pruned", PASSWORD, None).await;
    let count = |table: &str| srv.sql_i64_owned(format!("SELECT COUNT(*) FROM {table}"));
    assert!(count("attempts").await >= 50);
    assert_eq!(count("used_challenges").await, 5);
    let retention = Retention {
        audit_s: 30 * 24 * 3600,
        attempts_s: 24 * 3600,
        send_window_s: 3600,
    };
    srv.clock.advance(31 * 24 * 3600);
    srv.store.purge_expired(srv.now(), retention).await.unwrap();
    for table in [
        "attempts",
        "challenges",
        "used_challenges",
        "logins",
        "otps",
        "otp_sends",
        "sessions",
        "access_tokens",
        "refresh_tokens",
        "audit",
    ] {
        assert_eq!(count(table).await, 0, "{table} was not pruned");
    }
    // The user and the device stay.
    assert_eq!(count("users").await, 1);
    assert_eq!(count("devices").await, 1);
    let a = srv.get("/v1/me", session["access_token"].as_str()).await;
    assert_eq!(
        a.status, 401,
        "the session ended with its absolute lifetime"
    );
}
