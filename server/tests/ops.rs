//! Operations, on the real binary: the configuration file's precedence and
//! `config check`, the metrics listener, `--version`, TLS with a
//! certificate reloaded on SIGHUP while the process and its connections
//! carry on, and the OTLP endpoint's precedence and flush on exit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_devicetrust-server");
const ADMIN: &str = "ops-test-admin-token-0123456789abcdef";

struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    /// `scheme://addr` of the API.
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    /// Waits until the log contains `needle`.
    fn wait_for_log(&self, needle: &str) {
        for _ in 0..100 {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{needle:?} never logged:\n{}", self.log());
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// Starts `serve` with `args` and `env` on a fresh SQLite database in `dir`.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env(
            "DEVICETRUST_DATABASE",
            format!("sqlite://{}", dir.join("dt.db").display()),
        )
        .env("DEVICETRUST_OUTBOX", dir.join("outbox.jsonl"))
        .env("DEVICETRUST_ADMIN_TOKEN", ADMIN)
        .env("DEVICETRUST_LOG", "info")
        .env_remove("DEVICETRUST_CONFIG")
        .env_remove("DEVICETRUST_METRICS_LISTEN")
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn server");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("server did not start:\n{}", log.lock().unwrap()));
    Server { child, log, base }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DEVICETRUST_CONFIG")
        .env_remove("DEVICETRUST_METRICS_LISTEN")
        .env_remove("DEVICETRUST_MAX_CONNECTIONS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[test]
fn version_names_the_commit() {
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("devicetrust-server 0."), "{out}");
    assert!(out.contains("(commit "), "{out}");
    assert!(!out.contains("(commit )"), "{out}");
}

#[test]
fn config_check_accepts_a_good_file_and_names_what_is_wrong_in_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good = write(
        "good.toml",
        &format!(
            "database = \"sqlite://{}/dt.db\"\nrp-id = \"https://rp.example\"\n\
             outbox = \"{}/outbox.jsonl\"\nmax-connections = 100\n\
             trust-proxy = [\"10.0.0.0/8\"]\nrisk-adaptive-lockout = true\n",
            dir.path().display(),
            dir.path().display()
        ),
    );
    let (code, out, err) = run(&["config", "check", "--config", &good], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    // Nothing was created: no database, no key file.
    assert!(!dir.path().join("dt.db").exists());

    for (name, text, expected) in [
        ("unknown.toml", "rp_id = \"x\"\n", "unknown key `rp_id`"),
        ("range.toml", "max-connections = 0\n", "0 is not in 1..=1000000"),
        ("type.toml", "lockout-threshold = \"five\"\n", "five"),
        ("toml.toml", "rp-id = \"unterminated\n", "not valid TOML"),
        (
            "tls.toml",
            "tls-cert = \"/nonexistent/c.pem\"\ntls-key = \"/nonexistent/k.pem\"\noutbox = \"/tmp/x\"\n",
            "could not read the TLS certificate",
        ),
        (
            "half-tls.toml",
            "tls-cert = \"/nonexistent/c.pem\"\n",
            "--tls-key",
        ),
        (
            "mail.toml",
            "rp-id = \"https://rp.example\"\n",
            "no e-mail delivery is configured",
        ),
    ] {
        let path = write(name, text);
        let (code, out, err) = run(&["config", "check", "--config", &path], &[]);
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!out.contains("configuration OK"), "{name}");
    }
    // Without a file: a usage error, not a panic.
    let (code, _, err) = run(&["config", "check"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("needs --config"), "{err}");
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn config_precedence_in_a_real_process_and_the_metrics_listener() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let config = dir.path().join("devicetrust.toml");

    // File over default: the file asks for a metrics listener (default: none).
    std::fs::write(&config, "metrics-listen = \"127.0.0.1:0\"\n").unwrap();
    let cfg = config.display().to_string();
    let srv = start(dir.path(), &["--config", &cfg], &[]);
    srv.wait_for_log("metrics on http://");
    let metrics_url = srv
        .log()
        .split("metrics on ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (status, text) = get(&http, &metrics_url, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("devicetrust_argon2_queue_depth 0"), "{text}");
    assert!(
        text.contains("devicetrust_storage_call_duration_seconds_count{op=\"server_key_check\",result=\"ok\"} 1"),
        "{text}"
    );
    // With a metrics listener, /metrics is not on the API listener at all.
    let (status, _) = get(&http, &format!("{}/metrics", srv.base), Some(ADMIN)).await;
    assert_eq!(status, 404);
    // Readiness on a fresh, migrated database.
    let (status, body) = get(&http, &format!("{}/readyz", srv.base), None).await;
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ready\"}"));
    drop(srv);

    // Environment over file: the file names an address that cannot be
    // bound; the variable's is used.
    std::fs::write(&config, "metrics-listen = \"192.0.2.1:9\"\n").unwrap();
    let srv = start(
        dir.path(),
        &["--config", &cfg],
        &[("DEVICETRUST_METRICS_LISTEN", "127.0.0.1:0")],
    );
    srv.wait_for_log("metrics on http://127.0.0.1:");
    drop(srv);

    // Flag over environment (and file): the variable is not even an
    // address; the flag's value is used.
    let srv = start(
        dir.path(),
        &["--config", &cfg, "--metrics-listen", "127.0.0.1:0"],
        &[("DEVICETRUST_METRICS_LISTEN", "not an address")],
    );
    srv.wait_for_log("metrics on http://127.0.0.1:");
    drop(srv);

    // No metrics listener: /metrics is on the API listener, behind the
    // admin token.
    std::fs::write(&config, "").unwrap();
    let srv = start(dir.path(), &["--config", &cfg], &[]);
    let (status, _) = get(&http, &format!("{}/metrics", srv.base), None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&http, &format!("{}/metrics", srv.base), Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, text) = get(&http, &format!("{}/metrics", srv.base), Some(ADMIN)).await;
    assert_eq!(status, 200);
    // The two requests above were counted under their route template.
    assert!(
        text.contains(
            "devicetrust_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"} 2"
        ),
        "{text}"
    );
}

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn pair() -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pair {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().to_vec(),
    }
}

fn client_trusting(pairs: &[&Pair]) -> reqwest::Client {
    let mut b = reqwest::Client::builder().tls_info(true);
    for p in pairs {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(p.cert_pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// The leaf certificate the server presented, and the status.
async fn served(client: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let resp = client.get(url).send().await.expect("request");
    let cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a peer certificate")
        .to_vec();
    (resp.status().as_u16(), cert)
}

#[tokio::test]
async fn tls_certificate_reloads_on_sighup_without_a_restart() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (a, b) = (pair(), pair());
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &a.key_pem).unwrap();
    // A key readable by every user is refused (ops::tls).
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut srv = start(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(srv.base.starts_with("https://"), "{}", srv.base);
    let url = format!(
        "{}/healthz",
        srv.base.replace("https://127.0.0.1", "https://localhost")
    );
    let pid = srv.child.id();

    // A keep-alive client, trusting both certificates.
    let kept = client_trusting(&[&a, &b]);
    assert_eq!(served(&kept, &url).await, (200, a.der.clone()));
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(url.replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);

    // New files, SIGHUP: new connections get the new certificate.
    std::fs::write(&cert, &b.cert_pem).unwrap();
    std::fs::write(&key, &b.key_pem).unwrap();
    srv.signal("-HUP");
    srv.wait_for_log("TLS certificate reloaded");
    assert_eq!(
        served(&client_trusting(&[&a, &b]), &url).await,
        (200, b.der.clone())
    );
    // The connection opened before the reload was not dropped: it still
    // answers, with the certificate it was set up with.
    assert_eq!(served(&kept, &url).await, (200, a.der.clone()));

    // A bad new certificate (someone else's key): logged, and the one in
    // service stays.
    std::fs::write(&key, &a.key_pem).unwrap();
    srv.signal("-HUP");
    srv.wait_for_log("TLS certificate not reloaded");
    assert_eq!(
        served(&client_trusting(&[&a, &b]), &url).await,
        (200, b.der.clone())
    );
    // A client that trusts only the old certificate is refused now.
    assert!(client_trusting(&[&a]).get(&url).send().await.is_err());

    // The same process all along.
    assert!(srv.alive());
    assert_eq!(srv.child.id(), pid);
    assert!(!srv.log().contains("BEGIN"), "key material in the log");
}

/// A stand-in OTLP collector: counts the non-empty protobuf posts to
/// `/v1/traces` (decoding them is `tests/tests/traces.rs`'s job).
async fn collector() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    if headers.get("content-type").and_then(|v| v.to_str().ok())
                        == Some("application/x-protobuf")
                        && !body.is_empty()
                    {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_endpoint_precedence_and_the_queue_flushed_on_a_graceful_exit() {
    use std::sync::atomic::Ordering;
    provider();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (live, posts) = collector().await;
    let (other, other_posts) = collector().await;
    let config = dir.path().join("devicetrust.toml");
    std::fs::write(&config, format!("otlp-endpoint = \"{other}\"\n")).unwrap();
    let cfg = config.display().to_string();
    // The environment beats the file; batches wait a minute, so whatever
    // arrives was sent by the shutdown's flush.
    let mut srv = start(
        dir.path(),
        &["--config", &cfg],
        &[
            ("DEVICETRUST_OTLP_ENDPOINT", live.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    );
    let (status, _) = get(&http, &format!("{}/healthz", srv.base), None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(posts.load(Ordering::SeqCst), 0, "nothing before the flush");
    srv.signal("-TERM");
    let mut exited = false;
    for _ in 0..200 {
        if !srv.alive() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited, "still running:\n{}", srv.log());
    assert!(srv.log().contains("shut down cleanly"), "{}", srv.log());
    assert!(
        posts.load(Ordering::SeqCst) >= 1,
        "the queued span was flushed"
    );
    assert_eq!(other_posts.load(Ordering::SeqCst), 0);
    drop(srv);

    // A flag beats both; `config check` refuses a bad endpoint in the file.
    let srv = start(
        dir.path(),
        &["--config", &cfg, "--otlp-endpoint", &live],
        &[("DEVICETRUST_OTLP_ENDPOINT", "not a url")],
    );
    let (status, _) = get(&http, &format!("{}/healthz", srv.base), None).await;
    assert_eq!(status, 200);
    drop(srv);
    std::fs::write(
        &config,
        format!(
            "otlp-endpoint = \"collector:4318\"\nrp-id = \"https://rp.example\"\noutbox = \"{}/o.jsonl\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(&["config", "check", "--config", &cfg], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("otlp-endpoint"), "{err}");
}

/// A credential put in the OTLP endpoint is refused, and the refusal does
/// not repeat it: stderr goes to the journal, which more people read than
/// the secret's owner (the flag, the variable and the file alike).
#[test]
fn a_refused_otlp_endpoint_does_not_echo_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "https://otel-user:Sup3rS3cretPw@collector.example:4318";
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "otlp-endpoint = \"{bad}\"\nrp-id = \"https://rp.example\"\noutbox = \"{}/o.jsonl\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    for (args, env) in [
        (vec!["serve", "--otlp-endpoint", bad], vec![]),
        (vec!["serve"], vec![("DEVICETRUST_OTLP_ENDPOINT", bad)]),
        (vec!["config", "check", "--config", &cfg], vec![]),
        (vec!["serve", "--config", &cfg], vec![]),
    ] {
        let (code, out, err) = run(&args, &env);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("otlp-endpoint"), "{args:?}: {err}");
        assert!(err.contains("credentials"), "{args:?}: {err}");
        for secret in ["Sup3rS3cretPw", "otel-user"] {
            assert!(!err.contains(secret), "{args:?} echoed {secret}: {err}");
            assert!(!out.contains(secret), "{args:?} echoed {secret}: {out}");
        }
    }
}

/// `/readyz` is unauthenticated: a burst of probes must not become a burst
/// of database round trips (each probe was a ping and a schema query).
#[tokio::test]
async fn a_burst_of_readiness_probes_does_not_hammer_the_database() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let srv = start(dir.path(), &[], &[]);
    let url = format!("{}/readyz", srv.base);
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let http = http.clone();
        let url = url.clone();
        probes.spawn(async move { get(&http, &url, None).await });
    }
    while let Some(probe) = probes.join_next().await {
        let (status, body) = probe.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"ready\""), "{body}");
    }
    let (status, text) = get(&http, &format!("{}/metrics", srv.base), Some(ADMIN)).await;
    assert_eq!(status, 200);
    let count = |op: &str| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("devicetrust_storage_call_duration_seconds_count{")
                    && l.contains(&format!("op=\"{op}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    // Start-up may ping once or twice; 60 probes in well under a second
    // share at most a few checks.
    assert!(
        count("ping") <= 5,
        "ping ran {} times:\n{text}",
        count("ping")
    );
    assert!(
        count("migrations_pending") <= 5,
        "migrations_pending ran {} times",
        count("migrations_pending")
    );
}
