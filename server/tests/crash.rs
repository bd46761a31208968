//! Crash safety: the real binary is SIGKILLed at a random moment while
//! clients sign in with their device, refresh, register and remove devices,
//! guess a victim's password and sign in with password + e-mail OTP. After
//! each kill the database must pass SQLite's integrity and foreign-key
//! checks; once the server is back on it, everything a client was answered
//! before the kill must hold: answered sessions work, single-use things
//! (device challenges, registrations, OTP logins, refresh tokens) stay
//! spent, a device exists exactly when its registration was consumed, and
//! the failure counter never goes back.
//!
//! Only timing is random (the moment of the kill); every assertion is
//! exact. A request that fails because of the kill is never recorded as
//! answered: a connection that could not even be opened means the server
//! never saw the request (it must then have had no effect); any other
//! failure leaves its outcome unknown, and the checks allow both.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use ring::rand::SecureRandom;
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_devicetrust-server");
const ADMIN: &str = "crash-test-admin-token-0123456789abcdef";
const RP_ID: &str = "https://rp.crash.test";
const PASSWORD: &str = "Correct horse battery 9";
const WRONG_PASSWORD: &str = "not the password";
const SECURITY_CODE: &str = "135790";
/// Kills (and restarts) in one test run.
const ROUNDS: usize = 6;
/// Card holders with a trusted device: device sign-ins, refreshes,
/// registrations and removals.
const HOLDERS: usize = 3;
/// Card holders signing in with password + e-mail OTP.
const OTP_USERS: usize = 2;
/// The user id whose password is guessed; it never signs in.
const VICTIM: &str = "victim";
/// Concurrent password guessers.
const GUESSERS: usize = 2;
/// The server's limit of active devices per user.
const MAX_DEVICES: usize = 10;
/// Lockout threshold passed to the server (its maximum), so the victim's
/// count keeps growing for a while before the lock.
const LOCKOUT_THRESHOLD: &str = "100";
/// The kill comes this long after the clients start (uniform).
const KILL_AFTER_MS: (u64, u64) = (150, 1500);
/// Hard bound for the clients to notice the kill and stop.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Checks in flight at once after a restart.
const CHECK_CONCURRENCY: usize = 16;

fn db_path(dir: &Path) -> PathBuf {
    dir.join("devicetrust.db")
}

/// The server process; SIGKILLed when dropped, so no run leaks one.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut command = Command::new(BIN);
        // Only the settings below: nothing inherited from the environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DEVICETRUST_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("--database")
            .arg(format!("sqlite://{}", db_path(dir).display()))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rp-id",
                RP_ID,
                "--admin-token",
                ADMIN,
                "--ip-rate-limit",
                "0",
                "--lockout-threshold",
                LOCKOUT_THRESHOLD,
                // The OTP users sign in again and again.
                "--otp-sends-per-hour",
                "1000",
            ])
            .arg("--outbox")
            .arg(dir.join("outbox.jsonl"))
            .env("DEVICETRUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        // The last lines of the log, for a failure message.
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut log = sink.lock().unwrap();
                if log.len() == 200 {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => server.base = base,
            Err(_) => panic!(
                "the server did not log its address; log:\n{}",
                server.log_tail()
            ),
        }
        server
    }

    /// SIGKILL (`Child::kill` on unix), and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A software P-256 key standing in for the phone's secure hardware.
struct DeviceKey {
    key: SigningKey,
}

impl DeviceKey {
    fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        loop {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes).expect("random");
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return DeviceKey { key };
            }
        }
    }

    /// Uncompressed SEC1 point, as the server stores it.
    fn public_point(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().expect("x")),
            "y": b64(point.y().expect("y")),
        })
    }

    fn sign_jws(&self, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(header).expect("json")),
            b64(serde_json::to_vec(payload).expect("json"))
        );
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.to_bytes()))
    }

    fn register_proof(&self, sub: &str, nonce: &str) -> String {
        self.sign_jws(
            &json!({ "alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": self.jwk() }),
            &json!({ "aud": RP_ID, "sub": sub, "nonce": nonce }),
        )
    }

    fn login_proof(&self, kid: &str, sub: &str, nonce: &str) -> String {
        self.sign_jws(
            &json!({ "alg": "ES256", "typ": "devicetrust-login+jwt", "kid": kid }),
            &json!({ "aud": RP_ID, "sub": sub, "nonce": nonce }),
        )
    }
}

/// How the server stores a token: its SHA-256.
fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Milliseconds uniform in `[lo, hi]`, from the OS RNG.
fn random_ms(lo: u64, hi: u64) -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("random");
    lo + u64::from_le_bytes(b) % (hi - lo + 1)
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// No connection could be opened: the server never saw the request.
    NotDelivered,
    /// Sent, maybe processed, but no (complete) answer came back.
    Unknown,
}

type Answer = Result<(u16, Value), Fail>;

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        // reqwest is built with rustls but no provider; give it ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            base: base.to_owned(),
        }
    }

    async fn send(req: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                Fail::NotDelivered
            } else {
                Fail::Unknown
            }
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|_| Fail::Unknown)?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, body))
    }

    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        let req = self.http.post(format!("{}{path}", self.base)).json(&body);
        Self::send(req, token).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        Self::send(self.http.get(format!("{}{path}", self.base)), token).await
    }

    async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        Self::send(self.http.delete(format!("{}{path}", self.base)), token).await
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// The newest OTP sent to `user`, from the outbox (a torn line is skipped).
fn last_otp(outbox: &Path, user: &str) -> Option<String> {
    let text = std::fs::read_to_string(outbox).ok()?;
    text.lines()
        .rev()
        .filter(|l| l.contains("\"otp\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["purpose"] == "otp" && m["user_id"] == user)
        .and_then(|m| m["code"].as_str().map(str::to_owned))
}

/// A card holder with a trusted device.
#[derive(Clone)]
struct Holder {
    user: String,
    /// The access token of its password + OTP sign-in (registers devices).
    token: String,
    device_id: String,
    key: Arc<DeviceKey>,
}

/// An answered session: its access token and its refresh-token family.
struct SessionRec {
    user: String,
    access: String,
    family: u64,
}

/// Something answered (a challenge, an OTP send) whose redemption never
/// reached the server before the kill: it must work after the restart.
struct Pending {
    user: String,
    id: String,
    secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    No,
    /// `DELETE` sent, no answer: resolved from the database after the kill.
    Unknown,
    Done,
}

/// A device the client registered (answered 201, or found after a lost answer).
struct Dev {
    id: String,
    registration_id: String,
    proof: String,
    removal: Removal,
}

/// `POST /v1/devices` that got no answer.
struct InFlightReg {
    registration_id: String,
    public_key: Vec<u8>,
    proof: String,
    delivered: bool,
}

struct UserDevices {
    main: String,
    extra: Vec<Dev>,
    in_flight: Vec<InFlightReg>,
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    signins: usize,
    refreshes: usize,
    registrations: usize,
    removals: usize,
    otp_signins: usize,
    guesses: usize,
    lost: usize,
    /// Challenges, OTPs and refresh tokens answered before the kill and
    /// first used after the restart.
    used_after_restart: usize,
    /// Registrations whose answer was lost: committed / not.
    lost_registrations: (usize, usize),
}

/// Everything the clients were answered.
#[derive(Default)]
struct Ledger {
    families: u64,
    sessions: Vec<SessionRec>,
    /// Families revoked by the test itself (a replayed refresh token).
    revoked: HashSet<u64>,
    /// The newest answered refresh token of a family, never presented.
    heads: HashMap<u64, (String, String)>,
    spent_refresh: Vec<(u64, String)>,
    /// (challenge_id, proof) answered 200.
    redeemed: Vec<(String, String)>,
    pending_challenges: Vec<Pending>,
    /// (login_id, code) answered 200.
    otp_used: Vec<(String, String)>,
    pending_otps: Vec<Pending>,
    devices: HashMap<String, UserDevices>,
    /// `invalid_credentials` answers for the victim (each one an evaluated,
    /// counted failure; `account_locked` answers are not evaluated).
    victim_failures: i64,
    /// Answers a healthy server never gives in this test.
    anomalies: Vec<String>,
    stats: Stats,
}

impl Ledger {
    /// Records an answered session as a new family; returns the family.
    fn new_session(&mut self, session: &Value) -> u64 {
        self.families += 1;
        let family = self.families;
        self.sessions.push(SessionRec {
            user: text(&session["user_id"]),
            access: text(&session["access_token"]),
            family,
        });
        family
    }
}

type Shared = Arc<Mutex<Ledger>>;

fn anomaly(ledger: &Shared, what: String) {
    ledger.lock().unwrap().anomalies.push(what);
}

fn lost(ledger: &Shared) {
    ledger.lock().unwrap().stats.lost += 1;
}

/// Device sign-ins, each followed by a few refreshes of its session.
async fn session_worker(api: Api, ledger: Shared, h: Holder) {
    loop {
        let c = match api
            .post(
                "/v1/login/device/challenge",
                json!({ "device_id": h.device_id }),
                None,
            )
            .await
        {
            Ok((200, c)) => c,
            Ok((s, b)) => return anomaly(&ledger, format!("challenge: {s} {b}")),
            Err(_) => return,
        };
        let challenge_id = text(&c["challenge_id"]);
        let proof = h
            .key
            .login_proof(&h.device_id, &h.user, c["challenge"].as_str().unwrap_or(""));
        let a = api
            .post(
                "/v1/login/device",
                json!({ "challenge_id": challenge_id, "proof": proof }),
                None,
            )
            .await;
        let family = match a {
            Ok((200, a)) => {
                let mut l = ledger.lock().unwrap();
                let family = l.new_session(&a["session"]);
                l.heads.insert(
                    family,
                    (h.user.clone(), text(&a["session"]["refresh_token"])),
                );
                l.redeemed.push((challenge_id, proof));
                l.stats.signins += 1;
                family
            }
            // The risk engine (on by default) may ask a holder for a code:
            // a burst of sign-ins on a device whose learning a kill cut short
            // reads as `new_device, velocity`. A decision, not a loss: the
            // challenge is spent all the same.
            Ok((401, b)) if b["error"]["code"] == "step_up_required" => {
                ledger.lock().unwrap().redeemed.push((challenge_id, proof));
                return;
            }
            Ok((s, b)) => return anomaly(&ledger, format!("device sign-in: {s} {b}")),
            Err(Fail::NotDelivered) => {
                ledger.lock().unwrap().pending_challenges.push(Pending {
                    user: h.user.clone(),
                    id: challenge_id,
                    secret: proof,
                });
                return;
            }
            Err(Fail::Unknown) => return lost(&ledger),
        };
        for _ in 0..3 {
            let refresh = ledger.lock().unwrap().heads[&family].1.clone();
            match api
                .post(
                    "/v1/session/refresh",
                    json!({ "refresh_token": refresh }),
                    None,
                )
                .await
            {
                Ok((200, s)) => {
                    let mut l = ledger.lock().unwrap();
                    l.sessions.push(SessionRec {
                        user: h.user.clone(),
                        access: text(&s["access_token"]),
                        family,
                    });
                    l.heads
                        .insert(family, (h.user.clone(), text(&s["refresh_token"])));
                    l.spent_refresh.push((family, refresh));
                    l.stats.refreshes += 1;
                }
                Ok((s, b)) => return anomaly(&ledger, format!("refresh: {s} {b}")),
                // The head stays: the server never saw it.
                Err(Fail::NotDelivered) => return,
                // Maybe spent: presenting it again would be reuse.
                Err(Fail::Unknown) => {
                    ledger.lock().unwrap().heads.remove(&family);
                    return lost(&ledger);
                }
            }
        }
    }
}

/// Registers new devices; at the device limit, removes the oldest extra one.
async fn registration_worker(api: Api, ledger: Shared, h: Holder) {
    loop {
        let (active, oldest) = {
            let l = ledger.lock().unwrap();
            let d = &l.devices[&h.user];
            let mut live = d.extra.iter().filter(|x| x.removal == Removal::No);
            let oldest = live.next().map(|x| x.id.clone());
            (1 + oldest.iter().count() + live.count(), oldest)
        };
        if active >= MAX_DEVICES {
            let id = oldest.expect("an extra device");
            let outcome = api
                .delete(&format!("/v1/devices/{id}"), Some(&h.token))
                .await;
            let removal = match outcome {
                Ok((204, _)) => Removal::Done,
                Ok((s, b)) => return anomaly(&ledger, format!("remove: {s} {b}")),
                Err(Fail::NotDelivered) => return,
                Err(Fail::Unknown) => Removal::Unknown,
            };
            let mut l = ledger.lock().unwrap();
            let dev = l
                .devices
                .get_mut(&h.user)
                .unwrap()
                .extra
                .iter_mut()
                .find(|x| x.id == id)
                .unwrap();
            dev.removal = removal;
            if removal == Removal::Unknown {
                l.stats.lost += 1;
                return;
            }
            l.stats.removals += 1;
            continue;
        }
        let reg = match api
            .post("/v1/devices/registration", json!({}), Some(&h.token))
            .await
        {
            Ok((200, r)) => r,
            Ok((s, b)) => return anomaly(&ledger, format!("registration: {s} {b}")),
            Err(_) => return,
        };
        let registration_id = text(&reg["registration_id"]);
        let key = DeviceKey::generate();
        let proof = key.register_proof(&h.user, reg["challenge"].as_str().unwrap_or(""));
        let outcome = api
            .post(
                "/v1/devices",
                json!({
                    "registration_id": registration_id,
                    "proof": proof,
                    "name": "Crash test phone",
                    "platform": "android",
                    "key_storage": "software",
                    "user_verification": "biometric",
                }),
                Some(&h.token),
            )
            .await;
        let mut l = ledger.lock().unwrap();
        match outcome {
            Ok((201, d)) => {
                l.devices.get_mut(&h.user).unwrap().extra.push(Dev {
                    id: text(&d["device"]["device_id"]),
                    registration_id,
                    proof,
                    removal: Removal::No,
                });
                l.stats.registrations += 1;
            }
            Ok((s, b)) => {
                l.anomalies.push(format!("register: {s} {b}"));
                return;
            }
            Err(fail) => {
                l.devices
                    .get_mut(&h.user)
                    .unwrap()
                    .in_flight
                    .push(InFlightReg {
                        registration_id,
                        public_key: key.public_point(),
                        proof,
                        delivered: fail == Fail::Unknown,
                    });
                if fail == Fail::Unknown {
                    l.stats.lost += 1;
                }
                return;
            }
        }
    }
}

/// Password + e-mail OTP sign-ins of one enrolled user, one after another.
async fn otp_worker(api: Api, ledger: Shared, user: String, outbox: PathBuf) {
    loop {
        let login_id = match api
            .post(
                "/v1/login/password",
                json!({ "user_id": user, "password": PASSWORD }),
                None,
            )
            .await
        {
            Ok((200, p)) if p["status"] == "second_factor_required" => text(&p["login_id"]),
            Ok((s, b)) => return anomaly(&ledger, format!("password of {user}: {s} {b}")),
            Err(_) => return,
        };
        match api
            .post(
                "/v1/login/otp/send",
                json!({ "login_id": login_id, "channel": "email" }),
                None,
            )
            .await
        {
            Ok((200, _)) => {}
            Ok((s, b)) => return anomaly(&ledger, format!("otp send: {s} {b}")),
            Err(_) => return,
        }
        let Some(code) = last_otp(&outbox, &user) else {
            return anomaly(&ledger, format!("no OTP in the outbox for {user}"));
        };
        match api
            .post(
                "/v1/login/otp/verify",
                json!({ "login_id": login_id, "code": code }),
                None,
            )
            .await
        {
            Ok((200, v)) => {
                let mut l = ledger.lock().unwrap();
                l.new_session(&v["session"]);
                l.otp_used.push((login_id, code));
                l.stats.otp_signins += 1;
            }
            Ok((s, b)) => return anomaly(&ledger, format!("otp verify: {s} {b}")),
            Err(Fail::NotDelivered) => {
                ledger.lock().unwrap().pending_otps.push(Pending {
                    user: user.clone(),
                    id: login_id,
                    secret: code,
                });
                return;
            }
            Err(Fail::Unknown) => return lost(&ledger),
        }
    }
}

/// Wrong passwords for the victim; counts the answered failures.
async fn guesser(api: Api, ledger: Shared) {
    loop {
        match api
            .post(
                "/v1/login/password",
                json!({ "user_id": VICTIM, "password": WRONG_PASSWORD }),
                None,
            )
            .await
        {
            Ok((401, b)) if error_code(&b) == "invalid_credentials" => {
                ledger.lock().unwrap().victim_failures += 1;
            }
            Ok((423, b)) if error_code(&b) == "account_locked" => {}
            // The threshold is reached by attempts still being judged, or by
            // attempts a kill left without a verdict inside the last
            // seconds: the server asks to retry instead of counting more.
            Ok((429, b)) if error_code(&b) == "rate_limited" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok((s, b)) => return anomaly(&ledger, format!("victim guess: {s} {b}")),
            Err(_) => return,
        }
        ledger.lock().unwrap().stats.guesses += 1;
    }
}

/// What the database showed of the victim after the previous kill.
#[derive(Default)]
struct VictimSeen {
    count: i64,
    locked_until: Option<i64>,
}

/// Offline checks on the database of the killed server; resolves what the
/// clients could not know (lost answers) from it.
fn check_database(db: &Path, ledger: &Shared, victim: &mut VictimSeen) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("open the database after the kill");
    let mut failures = Vec::new();

    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if integrity != ["ok"] {
        failures.push(format!("integrity_check: {integrity:?}"));
    }
    let fk: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{} rowid {:?} → {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if !fk.is_empty() {
        failures.push(format!("foreign_key_check: {fk:?}"));
    }

    let mut l = ledger.lock().unwrap();

    // The failure counter never goes back.
    let (count, locked_until): (i64, Option<i64>) = conn
        .query_row(
            "SELECT count, locked_until FROM attempts WHERE user_key = ?1",
            [VICTIM],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .unwrap()
        .unwrap_or((0, None));
    if count < l.victim_failures && locked_until.is_none() {
        failures.push(format!(
            "victim: {} failed passwords were answered, the count is {count} and no lock",
            l.victim_failures
        ));
    }
    if count < victim.count {
        failures.push(format!(
            "victim: the count went back from {} to {count}",
            victim.count
        ));
    }
    if victim.locked_until.is_some() && locked_until != victim.locked_until {
        failures.push(format!(
            "victim: the lock until {:?} became {locked_until:?}",
            victim.locked_until
        ));
    }
    *victim = VictimSeen {
        count,
        locked_until,
    };

    // Every answered session is stored, and revoked only if the test
    // revoked its family; every answered refresh spent its token.
    let mut access = conn
        .prepare(
            "SELECT s.revoked_at FROM access_tokens a JOIN sessions s USING (session_id)
             WHERE a.token_hash = ?1",
        )
        .unwrap();
    for s in &l.sessions {
        let revoked_at: Option<Option<i64>> = access
            .query_row([token_hash(&s.access)], |r| r.get(0))
            .optional()
            .unwrap();
        match revoked_at {
            None => failures.push(format!(
                "session of {} (family {}): its access token is not stored",
                s.user, s.family
            )),
            Some(Some(_)) if !l.revoked.contains(&s.family) => failures.push(format!(
                "session of {} (family {}): revoked, but nobody revoked it",
                s.user, s.family
            )),
            _ => {}
        }
    }
    drop(access);
    let mut refresh = conn
        .prepare("SELECT used_at FROM refresh_tokens WHERE token_hash = ?1")
        .unwrap();
    for (family, token) in &l.spent_refresh {
        let used_at: Option<Option<i64>> = refresh
            .query_row([token_hash(token)], |r| r.get(0))
            .optional()
            .unwrap();
        if !matches!(used_at, Some(Some(_))) {
            failures.push(format!(
                "refresh token of family {family}, spent by an answered refresh: used_at {used_at:?}"
            ));
        }
    }
    drop(refresh);

    // Devices: exactly the registrations that completed.
    let mut rows: HashMap<String, (String, Vec<u8>, Option<i64>)> = conn
        .prepare("SELECT device_id, user_id, public_key, removed_at FROM devices")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let registrations: HashSet<String> = conn
        .prepare("SELECT registration_id FROM registrations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut users: Vec<String> = l.devices.keys().cloned().collect();
    users.sort();
    let mut l_stats = l.stats;
    for user in users {
        let d = l.devices.get_mut(&user).unwrap();
        // Registrations whose answer was lost: committed or not, never half.
        for reg in std::mem::take(&mut d.in_flight) {
            let found = rows
                .iter()
                .find(|(_, (_, key, _))| *key == reg.public_key)
                .map(|(id, (owner, _, _))| (id.clone(), owner.clone()));
            let consumed = !registrations.contains(&reg.registration_id);
            match found {
                Some((id, owner)) => {
                    if owner != user {
                        failures.push(format!("device {id} of {user} stored for {owner}"));
                    }
                    if !consumed {
                        failures.push(format!(
                            "{user}: device {id} exists but its registration {} is still open",
                            reg.registration_id
                        ));
                    }
                    if !reg.delivered {
                        failures.push(format!(
                            "{user}: device {id} from a request that never reached the server"
                        ));
                    }
                    l_stats.lost_registrations.0 += 1;
                    d.extra.push(Dev {
                        id,
                        registration_id: reg.registration_id,
                        proof: reg.proof,
                        removal: Removal::No,
                    });
                }
                None if consumed => failures.push(format!(
                    "{user}: registration {} consumed but no device stored (half-registered)",
                    reg.registration_id
                )),
                None => l_stats.lost_registrations.1 += 1,
            }
        }
        let mut expected = vec![d.main.clone()];
        for dev in d.extra.iter_mut() {
            expected.push(dev.id.clone());
            let Some((owner, _, removed_at)) = rows.get(&dev.id) else {
                failures.push(format!(
                    "{user}: device {} answered 201 is not in the database",
                    dev.id
                ));
                continue;
            };
            if *owner != user {
                failures.push(format!("device {} of {user} stored for {owner}", dev.id));
            }
            if registrations.contains(&dev.registration_id) {
                failures.push(format!(
                    "{user}: device {} stored but its registration is still open",
                    dev.id
                ));
            }
            match (dev.removal, removed_at.is_some()) {
                (Removal::Unknown, true) => dev.removal = Removal::Done,
                (Removal::Unknown, false) => dev.removal = Removal::No,
                (Removal::Done, false) => failures.push(format!(
                    "{user}: device {} answered 204 to its removal is not removed",
                    dev.id
                )),
                (Removal::No, true) => failures.push(format!(
                    "{user}: device {} removed without a removal request",
                    dev.id
                )),
                _ => {}
            }
        }
        for id in expected {
            rows.remove(&id);
        }
        let active = 1 + d.extra.iter().filter(|x| x.removal == Removal::No).count();
        if active > MAX_DEVICES {
            failures.push(format!("{user}: {active} active devices"));
        }
    }
    l.stats = l_stats;
    for (id, (owner, _, _)) in rows {
        failures.push(format!(
            "device {id} of {owner} matches no registration the clients made"
        ));
    }
    failures
}

type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Runs checks, a few at a time; returns the failures.
async fn run_checks(checks: Vec<Check>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut checks = checks.into_iter();
    loop {
        while set.len() < CHECK_CONCURRENCY {
            match checks.next() {
                Some(c) => {
                    set.spawn(c);
                }
                None => break,
            }
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(f))) => failures.push(f),
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    failures
}

/// `expect` for an answer during the checks.
fn answered(a: Answer, what: &str) -> Result<(u16, Value), String> {
    a.map_err(|f| format!("{what}: no answer ({f:?})"))
}

/// Checks through the API of the restarted server.
async fn check_after_restart(api: &Api, ledger: &Shared, holders: &[Holder]) -> Vec<String> {
    let mut failures = Vec::new();

    // 1. No lost answered session; revocations stay.
    let checks: Vec<Check> = {
        let l = ledger.lock().unwrap();
        l.sessions
            .iter()
            .map(|s| {
                let api = api.clone();
                let (user, access, family) = (s.user.clone(), s.access.clone(), s.family);
                let want = if l.revoked.contains(&family) { 401 } else { 200 };
                Box::pin(async move {
                    let (st, b) = answered(api.get("/v1/me", Some(&access)).await, "/v1/me")?;
                    if st != want || (st == 200 && b["user_id"] != user.as_str()) {
                        return Err(format!(
                            "session of {user} (family {family}): /v1/me answered {st} {b}, expected {want}"
                        ));
                    }
                    Ok(())
                }) as Check
            })
            .collect()
    };
    failures.extend(run_checks(checks).await);

    // 2. Devices: listed exactly; removed ones cannot sign in; registrations
    //    that completed cannot complete again.
    let mut checks: Vec<Check> = Vec::new();
    {
        let l = ledger.lock().unwrap();
        for h in holders {
            let d = &l.devices[&h.user];
            let mut active: Vec<String> = vec![d.main.clone()];
            active.extend(
                d.extra
                    .iter()
                    .filter(|x| x.removal == Removal::No)
                    .map(|x| x.id.clone()),
            );
            active.sort();
            let (api2, token, user) = (api.clone(), h.token.clone(), h.user.clone());
            checks.push(Box::pin(async move {
                let (st, b) = answered(api2.get("/v1/devices", Some(&token)).await, "devices")?;
                let mut listed: Vec<String> = b["devices"]
                    .as_array()
                    .map(|a| a.iter().map(|d| text(&d["device_id"])).collect())
                    .unwrap_or_default();
                listed.sort();
                if st != 200 || listed != active {
                    return Err(format!(
                        "{user}: GET /v1/devices answered {st} {listed:?}, expected {active:?}"
                    ));
                }
                Ok(())
            }));
            for dev in &d.extra {
                if dev.removal == Removal::Done {
                    let (api2, id, user) = (api.clone(), dev.id.clone(), h.user.clone());
                    checks.push(Box::pin(async move {
                        let (st, b) = answered(
                            api2.post(
                                "/v1/login/device/challenge",
                                json!({ "device_id": id }),
                                None,
                            )
                            .await,
                            "challenge",
                        )?;
                        if st != 401 || error_code(&b) != "device_not_recognized" {
                            return Err(format!(
                                "{user}: removed device {id} asked for a challenge: {st} {b}"
                            ));
                        }
                        Ok(())
                    }));
                }
                let (api2, token, user) = (api.clone(), h.token.clone(), h.user.clone());
                let body = json!({
                    "registration_id": dev.registration_id,
                    "proof": dev.proof,
                    "name": "Crash test phone",
                    "platform": "android",
                    "key_storage": "software",
                    "user_verification": "biometric",
                });
                checks.push(Box::pin(async move {
                    let (st, b) = answered(
                        api2.post("/v1/devices", body, Some(&token)).await,
                        "register replay",
                    )?;
                    if st != 401 || error_code(&b) != "challenge_invalid" {
                        return Err(format!(
                            "{user}: a completed registration replayed answered {st} {b}"
                        ));
                    }
                    Ok(())
                }));
            }
        }
        // 3. Redeemed challenges and used OTP logins stay spent.
        for (challenge_id, proof) in &l.redeemed {
            let api2 = api.clone();
            let body = json!({ "challenge_id": challenge_id, "proof": proof });
            checks.push(Box::pin(async move {
                let (st, b) = answered(
                    api2.post("/v1/login/device", body.clone(), None).await,
                    "challenge replay",
                )?;
                if st != 401 || error_code(&b) != "challenge_invalid" {
                    return Err(format!(
                        "redeemed challenge {} replayed answered {st} {b}",
                        body["challenge_id"]
                    ));
                }
                Ok(())
            }));
        }
        for (login_id, code) in &l.otp_used {
            let api2 = api.clone();
            let body = json!({ "login_id": login_id, "code": code });
            checks.push(Box::pin(async move {
                let (st, b) = answered(
                    api2.post("/v1/login/otp/verify", body.clone(), None).await,
                    "otp replay",
                )?;
                if st != 401 || error_code(&b) != "login_expired" {
                    return Err(format!(
                        "used OTP login {} replayed answered {st} {b}",
                        body["login_id"]
                    ));
                }
                Ok(())
            }));
        }
    }
    failures.extend(run_checks(checks).await);

    // 4. What was answered but never redeemed before the kill still works:
    //    challenges, OTP codes, and the newest refresh token of each chain.
    let (pending_challenges, pending_otps, heads) = {
        let mut l = ledger.lock().unwrap();
        (
            std::mem::take(&mut l.pending_challenges),
            std::mem::take(&mut l.pending_otps),
            std::mem::take(&mut l.heads),
        )
    };
    for p in pending_challenges {
        let body = json!({ "challenge_id": p.id, "proof": p.secret });
        match answered(api.post("/v1/login/device", body, None).await, "pending") {
            Ok((200, a)) => {
                let mut l = ledger.lock().unwrap();
                l.new_session(&a["session"]);
                l.redeemed.push((p.id, p.secret));
                l.stats.used_after_restart += 1;
            }
            Ok((st, b)) => failures.push(format!(
                "{}: challenge answered before the kill, first redeemed after it: {st} {b}",
                p.user
            )),
            Err(e) => failures.push(e),
        }
    }
    for p in pending_otps {
        let body = json!({ "login_id": p.id, "code": p.secret });
        match answered(
            api.post("/v1/login/otp/verify", body, None).await,
            "pending",
        ) {
            Ok((200, a)) => {
                let mut l = ledger.lock().unwrap();
                l.new_session(&a["session"]);
                l.otp_used.push((p.id, p.secret));
                l.stats.used_after_restart += 1;
            }
            Ok((st, b)) => failures.push(format!(
                "{}: OTP sent before the kill, verified after it: {st} {b}",
                p.user
            )),
            Err(e) => failures.push(e),
        }
    }
    for (family, (user, refresh)) in heads {
        let body = json!({ "refresh_token": refresh });
        match answered(api.post("/v1/session/refresh", body, None).await, "head") {
            Ok((200, s)) => {
                let mut l = ledger.lock().unwrap();
                l.sessions.push(SessionRec {
                    user,
                    access: text(&s["access_token"]),
                    family,
                });
                l.spent_refresh.push((family, refresh));
                l.stats.used_after_restart += 1;
            }
            Ok((st, b)) => failures.push(format!(
                "{user}: newest refresh token of family {family}, answered before the kill, refreshed after it: {st} {b}"
            )),
            Err(e) => failures.push(e),
        }
    }

    // 5. Spent refresh tokens stay spent (and their families are revoked
    //    from now on: the next round checks that the revocation lasts).
    let checks: Vec<Check> = {
        let mut l = ledger.lock().unwrap();
        let families: Vec<u64> = l.spent_refresh.iter().map(|(f, _)| *f).collect();
        l.revoked.extend(families);
        l.spent_refresh
            .iter()
            .map(|(family, refresh)| {
                let api = api.clone();
                let (family, body) = (*family, json!({ "refresh_token": refresh }));
                Box::pin(async move {
                    let (st, b) = answered(
                        api.post("/v1/session/refresh", body, None).await,
                        "refresh replay",
                    )?;
                    if st != 401 || error_code(&b) != "unauthorized" {
                        return Err(format!(
                            "spent refresh token of family {family} replayed answered {st} {b}"
                        ));
                    }
                    Ok(())
                }) as Check
            })
            .collect()
    };
    failures.extend(run_checks(checks).await);
    failures
}

async fn admin_add_user(api: &Api, user: &str) {
    let a = api
        .post(
            "/admin/v1/users",
            json!({
                "user_id": user,
                "name": "Card Holder",
                "email": format!("{user}@example.com"),
                "primary_market": "GB",
                "password": PASSWORD,
            }),
            Some(ADMIN),
        )
        .await;
    assert!(matches!(a, Ok((201, _))), "add {user}: {a:?}");
}

/// Password → enrolment → e-mail OTP → session.
async fn first_sign_in(api: &Api, outbox: &Path, user: &str) -> Value {
    let (_, p) = api
        .post(
            "/v1/login/password",
            json!({ "user_id": user, "password": PASSWORD }),
            None,
        )
        .await
        .expect("password");
    assert_eq!(p["status"], "enrolment_required", "{p}");
    let login_id = p["login_id"].clone();
    let (s, e) = api
        .post(
            "/v1/login/enrol",
            json!({ "login_id": login_id, "security_code": SECURITY_CODE }),
            None,
        )
        .await
        .expect("enrol");
    assert_eq!(s, 200, "enrol: {e}");
    let (s, b) = api
        .post(
            "/v1/login/otp/send",
            json!({ "login_id": login_id, "channel": "email" }),
            None,
        )
        .await
        .expect("otp send");
    assert_eq!(s, 200, "otp send: {b}");
    let code = last_otp(outbox, user).expect("an OTP in the outbox");
    let (s, v) = api
        .post(
            "/v1/login/otp/verify",
            json!({ "login_id": login_id, "code": code }),
            None,
        )
        .await
        .expect("otp verify");
    assert_eq!(s, 200, "otp verify: {v}");
    v["session"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_answered_and_reuses_nothing_spent() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let outbox = d.join("outbox.jsonl");
    let ledger: Shared = Arc::new(Mutex::new(Ledger::default()));

    let mut server = Server::start(d);
    let mut api = Api::new(&server.base);
    let holder_ids: Vec<String> = (0..HOLDERS).map(|i| format!("holder{i}")).collect();
    let otp_ids: Vec<String> = (0..OTP_USERS).map(|i| format!("otp{i}")).collect();
    for user in holder_ids.iter().chain(&otp_ids) {
        admin_add_user(&api, user).await;
    }
    admin_add_user(&api, VICTIM).await;
    let mut holders = Vec::new();
    for user in &holder_ids {
        let session = first_sign_in(&api, &outbox, user).await;
        ledger.lock().unwrap().new_session(&session);
        let token = text(&session["access_token"]);
        let (_, reg) = api
            .post("/v1/devices/registration", json!({}), Some(&token))
            .await
            .expect("registration");
        let key = DeviceKey::generate();
        let proof = key.register_proof(user, reg["challenge"].as_str().unwrap_or(""));
        let (s, dev) = api
            .post(
                "/v1/devices",
                json!({
                    "registration_id": reg["registration_id"],
                    "proof": proof,
                    "name": "Main phone",
                    "platform": "ios",
                    "key_storage": "secure_enclave",
                    "user_verification": "biometric",
                }),
                Some(&token),
            )
            .await
            .expect("register");
        assert_eq!(s, 201, "register: {dev}");
        let device_id = text(&dev["device"]["device_id"]);
        ledger.lock().unwrap().devices.insert(
            user.clone(),
            UserDevices {
                main: device_id.clone(),
                extra: Vec::new(),
                in_flight: Vec::new(),
            },
        );
        holders.push(Holder {
            user: user.clone(),
            token,
            device_id,
            key: Arc::new(key),
        });
    }
    for user in &otp_ids {
        let session = first_sign_in(&api, &outbox, user).await;
        ledger.lock().unwrap().new_session(&session);
    }
    eprintln!("setup: {:.1} s", started.elapsed().as_secs_f64());

    let mut victim = VictimSeen::default();
    for round in 1..=ROUNDS {
        let round_started = Instant::now();
        ledger.lock().unwrap().stats = Stats::default();
        let mut clients = tokio::task::JoinSet::new();
        for h in &holders {
            clients.spawn(session_worker(api.clone(), ledger.clone(), h.clone()));
            clients.spawn(registration_worker(api.clone(), ledger.clone(), h.clone()));
        }
        for user in &otp_ids {
            clients.spawn(otp_worker(
                api.clone(),
                ledger.clone(),
                user.clone(),
                outbox.clone(),
            ));
        }
        for _ in 0..GUESSERS {
            clients.spawn(guesser(api.clone(), ledger.clone()));
        }

        let delay = random_ms(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        let stopped = tokio::time::timeout(ROUND_TIMEOUT, async {
            while let Some(r) = clients.join_next().await {
                if let Err(e) = r {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        })
        .await;
        assert!(
            stopped.is_ok(),
            "round {round}: clients still running {ROUND_TIMEOUT:?} after the kill"
        );
        {
            let l = ledger.lock().unwrap();
            assert!(
                l.anomalies.is_empty(),
                "round {round}: unexpected answers before the kill: {:#?}\nserver log:\n{}",
                l.anomalies,
                server.log_tail()
            );
        }

        let mut failures = check_database(&db_path(d), &ledger, &mut victim);
        server = Server::start(d);
        api = Api::new(&server.base);
        failures.extend(check_after_restart(&api, &ledger, &holders).await);
        let stats = ledger.lock().unwrap().stats;
        eprintln!(
            "round {round}: killed after {delay} ms; answered {} device sign-ins, {} refreshes, \
             {} registrations, {} removals, {} OTP sign-ins, {} victim guesses; {} answers lost \
             ({} lost registrations committed, {} not); {} answered before the kill \
             used after it; victim count {}{}; round {:.1} s",
            stats.signins,
            stats.refreshes,
            stats.registrations,
            stats.removals,
            stats.otp_signins,
            stats.guesses,
            stats.lost,
            stats.lost_registrations.0,
            stats.lost_registrations.1,
            stats.used_after_restart,
            victim.count,
            if victim.locked_until.is_some() {
                " (locked)"
            } else {
                ""
            },
            round_started.elapsed().as_secs_f64()
        );
        assert!(
            failures.is_empty(),
            "round {round}: {} failures after the kill and restart:\n{}\nlog of the restarted server:\n{}",
            failures.len(),
            failures
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            server.log_tail()
        );
    }
    let l = ledger.lock().unwrap();
    eprintln!(
        "total {:.1} s: {} sessions, {} redeemed challenges, {} spent refresh tokens checked",
        started.elapsed().as_secs_f64(),
        l.sessions.len(),
        l.redeemed.len(),
        l.spent_refresh.len()
    );
    drop(l);
    // SIGKILL the last server (its guard would too).
    server.kill();
}
