//! The `devicetrust-server` binary as an operator runs it: operator
//! commands, `serve` with its flags, SIGTERM, restart on the same database,
//! and logs free of secrets.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_devicetrust-server");
const ADMIN: &str = "binary-test-admin-token-0123456789abcdef";
const PASSWORD: &str = "s3cret-Pa55word!";

struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("dt.db").display())
}

fn start(dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rp-id",
            "https://rp.test",
        ])
        .env("DEVICETRUST_DATABASE", db_url(dir))
        .env("DEVICETRUST_OUTBOX", dir.join("outbox.jsonl"))
        .env("DEVICETRUST_ADMIN_TOKEN", ADMIN)
        .env("DEVICETRUST_IP_RATE_LIMIT", "0")
        .env("DEVICETRUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let base = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("server logs its address");
    Server { child, base, log }
}

impl Server {
    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        (exit.code().unwrap_or(-1), log)
    }
}

fn cli(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DEVICETRUST_DATABASE", db_url(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("cli output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An HTTP client. The workspace builds reqwest with rustls but without a
/// built-in provider (the SDK brings ring), so one is installed here.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(base: &str, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut req = http().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn last_otp(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("outbox.jsonl")).expect("outbox");
    let line = text.lines().last().expect("a message");
    let v: Value = serde_json::from_str(line).expect("json");
    v["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn operator_commands_serve_sigterm_and_restart_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Operator commands on the database before the server ever ran.
    let (code, out, _) = cli(
        d,
        &[
            "user",
            "add",
            "--user-id",
            "Ann",
            "--name",
            "Ann Lee",
            "--email",
            "ann@example.com",
            "--market",
            "fr",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0);
    assert!(out.contains("added user ann"), "{out}");
    let (code, _, err) = cli(
        d,
        &[
            "user",
            "add",
            "--user-id",
            "ANN",
            "--name",
            "X",
            "--email",
            "x@example.com",
            "--market",
            "FR",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 3, "duplicate user: {err}");
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = cli(
        d,
        &[
            "user",
            "add",
            "--user-id",
            "bad id",
            "--name",
            "X",
            "--email",
            "x@example.com",
            "--market",
            "FR",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = cli(d, &["market", "set", "us", "--second-factor", "off"], "");
    assert_eq!(code, 0);
    assert!(out.contains("market US: second factor off"), "{out}");

    let srv = start(d);
    let health = http()
        .get(format!("{}/healthz", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // Ann (FR, second factor required) enrols and gets an OTP...
    let (_, a) = post(
        &srv.base,
        "/v1/login/password",
        json!({"user_id": "ann", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(a["status"], "enrolment_required");
    let login_id = a["login_id"].clone();
    let (s, _) = post(
        &srv.base,
        "/v1/login/enrol",
        json!({"login_id": login_id, "security_code": "2468013"}),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &srv.base,
        "/v1/login/otp/send",
        json!({"login_id": login_id, "channel": "email"}),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let code = last_otp(d);
    // ...a US user signs in with password alone; the admin API works.
    let (s, _) = post(
        &srv.base,
        "/admin/v1/users",
        json!({"user_id": "bo", "name": "Bo", "email": "bo@example.com",
        "primary_market": "US", "password": PASSWORD}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 201);
    let (_, b) = post(
        &srv.base,
        "/v1/login/password",
        json!({"user_id": "bo", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(b["status"], "authenticated", "{b}");
    let token = b["session"]["access_token"].as_str().unwrap().to_owned();
    let refresh = b["session"]["refresh_token"].as_str().unwrap().to_owned();
    // Bo locks himself out.
    for _ in 0..5 {
        post(
            &srv.base,
            "/v1/login/password",
            json!({"user_id": "bo", "password": "nope"}),
            None,
        )
        .await;
    }
    let (s, _) = post(
        &srv.base,
        "/v1/login/password",
        json!({"user_id": "bo", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(s, 423);

    let (exit, log) = srv.terminate();
    assert_eq!(exit, 0, "SIGTERM exits 0");
    assert!(log.contains("shut down cleanly"), "{log}");
    // Nothing secret reached the log.
    for secret in [PASSWORD, token.as_str(), refresh.as_str(), ADMIN] {
        assert!(!log.contains(secret), "log leaks a secret");
    }
    // Six-digit codes can occur by chance in timestamps; look for them as values.
    for short in [code.as_str(), "2468013"] {
        for pattern in [
            format!("\"{short}\""),
            format!("={short}"),
            format!("is {short}"),
        ] {
            assert!(!log.contains(&pattern), "log leaks a code");
        }
    }

    // The operator unlocks Bo while the server is down.
    let (c, out, _) = cli(d, &["user", "unlock", "BO"], "");
    assert_eq!(c, 0, "{out}");

    // Restart on the same database: sessions, logins, OTP key and users survive.
    let srv = start(d);
    let me = http()
        .get(format!("{}/v1/me", srv.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200, "session survives restart");
    let (s, v) = post(
        &srv.base,
        "/v1/login/otp/verify",
        json!({"login_id": login_id, "code": code}),
        None,
    )
    .await;
    assert_eq!(s, 200, "OTP sent before restart verifies after it: {v}");
    assert_eq!(v["session"]["amr"], json!(["pwd", "otp"]));
    let (s, _) = post(
        &srv.base,
        "/admin/v1/users",
        json!({"user_id": "bo", "name": "Bo", "email": "bo@example.com",
        "primary_market": "US", "password": PASSWORD}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 409);
    let (_, b) = post(
        &srv.base,
        "/v1/login/password",
        json!({"user_id": "bo", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        b["status"], "authenticated",
        "unlocked by the operator: {b}"
    );
    let (exit, _) = srv.terminate();
    assert_eq!(exit, 0);
}

#[test]
fn serve_refuses_to_start_without_delivery_or_with_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("DEVICETRUST_DATABASE", db_url(dir.path()))
            .env_remove("DEVICETRUST_OUTBOX")
            .env_remove("DEVICETRUST_ADMIN_TOKEN")
            .output()
            .expect("run")
    };
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--outbox"));
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--outbox",
        "o.jsonl",
        "--admin-token",
        "short",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 characters"));
    let out = run(&[
        "--database",
        "postgres://dt:secret@127.0.0.1:1/dt",
        "user",
        "unlock",
        "x",
    ]);
    // Port 1: nothing listens. The message names the database, not its password.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PostgreSQL at postgres://dt:***@127.0.0.1:1/dt"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    let out = run(&["--database", "mysql://x", "user", "unlock", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["serve", "--ip-rate-limit", "lots"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    // The risk policy's flags are checked before anything starts.
    let serve = ["serve", "--listen", "127.0.0.1:0", "--outbox", "o.jsonl"];
    for (extra, says) in [
        (&["--risk", "sometimes"][..], "invalid value"),
        (&["--risk", "http"][..], "--risk-scorer-url"),
        (
            &["--risk-scorer-url", "http://127.0.0.1:9/score"][..],
            "--risk http",
        ),
        (
            &["--risk", "http", "--risk-scorer-url", "ftp://x/"][..],
            "http:// or https://",
        ),
        (&["--risk-step-up-score", "0"][..], "invalid value"),
    ] {
        let out = run(&[&serve[..], extra].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    }
}

#[test]
fn sigterm_right_after_start_and_a_closed_log_pipe_still_exit_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for wait_ms in [0, 500] {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DEVICETRUST_DATABASE", db_url(dir.path()))
            .env("DEVICETRUST_OUTBOX", dir.path().join("o.jsonl"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        assert!(lines.any(|l| l.map(|l| l.contains("listening on")).unwrap_or(false)));
        // The reader goes away: later log lines hit a closed pipe.
        drop(lines);
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert_eq!(
            child.wait().expect("wait").code(),
            Some(0),
            "after {wait_ms} ms"
        );
    }
}

/// Hole 5: every file was 0644 and the OTP key lived in the database.
/// Now the database, its WAL and SHM, the outbox and the key file are
/// owner-only, the key is outside the database, a key file others can read
/// is refused, and the admin token can come from a file.
#[cfg(unix)]
#[tokio::test]
async fn files_are_private_and_the_server_key_lives_outside_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // An outbox an older version left world-readable is narrowed.
    std::fs::write(dir.path().join("outbox.jsonl"), "").unwrap();
    std::fs::set_permissions(
        dir.path().join("outbox.jsonl"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, _, err) = cli(
        dir.path(),
        &[
            "user",
            "add",
            "--user-id",
            "files",
            "--name",
            "F",
            "--email",
            "f@example.com",
            "--market",
            "GB",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let server = start(dir.path());
    let (status, body) = post(
        &server.base,
        "/v1/login/password",
        json!({"user_id": "files", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for name in [
        "dt.db",
        "dt.db-wal",
        "dt.db-shm",
        "outbox.jsonl",
        "dt.db.key",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    let conn = rusqlite::Connection::open(dir.path().join("dt.db")).unwrap();
    let secrets: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM server_secrets WHERE name != 'key_check'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The key's check value (a one-way derivation under its own label) is
    // the only row: it tells whether a key is the right one, nothing more.
    assert_eq!(secrets, 0, "no secret is kept in the database");
    let (exit, _) = server.terminate();
    assert_eq!(exit, 0);

    // A key file others can read is refused, with the fix in the message.
    std::fs::set_permissions(
        dir.path().join("dt.db.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DEVICETRUST_DATABASE", db_url(dir.path()))
        .env("DEVICETRUST_OUTBOX", dir.path().join("outbox.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(
        dir.path().join("dt.db.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    // The admin token from a file (first line), not the command line.
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token-file"])
        .arg(&token_file)
        .env("DEVICETRUST_DATABASE", db_url(dir.path()))
        .env("DEVICETRUST_OUTBOX", dir.path().join("outbox.jsonl"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let base = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split("listening on ").nth(1).map(|a| a.trim().to_owned()))
        .expect("listening");
    let resp = http()
        .post(format!("{base}/admin/v1/users/files/unlock"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let _ = child.kill();
    let _ = child.wait();
}

/// v1.1: online enrolment from a card, a forgotten password and a password
/// change through the real binary; no card number, card ID, password,
/// security code or code sent appears in any log line.
#[tokio::test]
async fn card_enrolment_and_recovery_leave_no_secret_in_the_log() {
    const CARD: &str = "4111111111111111";
    const CARD_ID: &str = "7395";
    const SECURITY: &str = "2468135";
    const NEW_PASSWORD: &str = "Recovered Passw0rd 7";
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let base = server.base.clone();
    let (status, body) = post(
        &base,
        "/admin/v1/cards",
        json!({"card_number": CARD, "card_id": CARD_ID, "name": "Card Holder",
               "email": "holder@example.com", "primary_market": "GB", "activated": true}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &base,
        "/v1/accounts",
        json!({"card_number": CARD, "card_id": CARD_ID, "name": "card holder",
               "user_id": "holder", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Enrol, e-mail code, session.
    let (_, p) = post(
        &base,
        "/v1/login/password",
        json!({"user_id": "holder", "password": PASSWORD}),
        None,
    )
    .await;
    let login = p["login_id"].clone();
    post(
        &base,
        "/v1/login/enrol",
        json!({"login_id": login, "security_code": SECURITY}),
        None,
    )
    .await;
    post(
        &base,
        "/v1/login/otp/send",
        json!({"login_id": login, "channel": "email"}),
        None,
    )
    .await;
    let mut codes = vec![last_otp(dir.path())];
    let (status, v) = post(
        &base,
        "/v1/login/otp/verify",
        json!({"login_id": login, "code": codes[0]}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // Forgot password: security code, e-mail code, new password.
    let (status, r) = post(
        &base,
        "/v1/recovery/password",
        json!({"user_id": "holder", "security_code": SECURITY}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    post(
        &base,
        "/v1/login/otp/send",
        json!({"login_id": r["recovery_id"], "channel": "email"}),
        None,
    )
    .await;
    codes.push(last_otp(dir.path()));
    let (status, done) = post(
        &base,
        "/v1/recovery/password/complete",
        json!({"recovery_id": r["recovery_id"], "code": codes[1], "new_password": NEW_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let (status, _) = post(
        &base,
        "/v1/login/password",
        json!({"user_id": "holder", "password": NEW_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (exit, log) = server.terminate();
    assert_eq!(exit, 0);
    for secret in [CARD, "4111 1111", SECURITY, PASSWORD, NEW_PASSWORD] {
        assert!(!log.contains(secret), "log leaks {secret:?}");
    }
    // Short numbers can occur by chance in timestamps; look for them as values.
    for short in codes.iter().map(String::as_str).chain([CARD_ID]) {
        for pattern in [
            format!("\"{short}\""),
            format!("={short}"),
            format!("is {short}"),
        ] {
            assert!(!log.contains(&pattern), "log leaks {short:?}");
        }
    }
}

#[test]
fn another_server_key_than_the_databases_first_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // The first start keeps a check value of its key (here, the key file's).
    let (code, _) = start(dir.path()).terminate();
    assert_eq!(code, 0);
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rp-id",
            "https://rp.test",
        ])
        .args(["--server-key", "another-key-of-at-least-32-characters-0000"])
        .env("DEVICETRUST_DATABASE", db_url(dir.path()))
        .env("DEVICETRUST_OUTBOX", dir.path().join("outbox.jsonl"))
        .env_remove("DEVICETRUST_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the server started with another key");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("server key is not the one"), "{stderr}");
    // The right key still starts.
    let (code, _) = start(dir.path()).terminate();
    assert_eq!(code, 0);
}
