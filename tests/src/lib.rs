//! Test harness for devicetrust end-to-end tests: a real server on
//! 127.0.0.1:0 over real HTTP, a software P-256 device key, and helpers that
//! walk the contract's flows.
//!
//! The backend is a matrix: by default each server gets a new SQLite file;
//! with `DEVICETRUST_TEST_DATABASE=postgres://…` (a throwaway cluster, see
//! `scripts/postgres`) each gets a new schema of its own in that database,
//! so the same tests prove both backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use devicetrust_server::app::{self, AppState, Components, Settings};
use devicetrust_server::clock::{Clock, ManualClock};
use devicetrust_server::notify::{Message, Notifier, NotifyError, Outbox};
use devicetrust_server::risk::{HabitsConfig, HabitsPolicy, RiskPolicy};
use devicetrust_server::secrets::{Hasher, HasherConfig};
use devicetrust_server::server_key::ServerKey;
use devicetrust_server::storage::{postgres::PostgresStore, sqlite::SqliteStore, Store};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use ring::rand::SecureRandom;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};

pub const RP_ID: &str = "https://auth.devicetrust.test";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789abcdef";
pub const PASSWORD: &str = "Correct horse battery 9";
pub const SECURITY_CODE: &str = "135790";

/// Options for a test server.
/// The risk policy a test server runs: the server's default (the habits
/// engine over the test's own store) unless a test brings its own.
pub enum Risk {
    Habits(HabitsConfig),
    Policy(Arc<dyn RiskPolicy>),
}

pub struct Options {
    pub settings: Settings,
    pub risk: Risk,
    pub hasher: HasherConfig,
    /// While set, every message fails as a refusing carrier would.
    pub carrier_down: Arc<AtomicBool>,
    /// A PostgreSQL URL to share with other servers (see `fresh_database`);
    /// `None`: a database of this server's own, of the backend under test.
    pub database: Option<String>,
    /// The server key; servers sharing a database must share it.
    pub server_key: Option<ServerKey>,
    /// The clock; servers sharing a database share one.
    pub clock: Option<ManualClock>,
    /// SQLite whatever the matrix says (the source of a `migrate`).
    pub sqlite: bool,
    /// A notifier of the test's own instead of the outbox (e.g. a real
    /// SMS webhook to an in-test gateway); `carrier_down` does not apply.
    pub notifier: Option<Arc<dyn Notifier>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: Settings {
                rp_id: RP_ID.into(),
                admin_token: Some(ADMIN_TOKEN.into()),
                ip_rate_limit_per_minute: 0,
                ..Settings::default()
            },
            risk: Risk::Habits(HabitsConfig::default()),
            hasher: HasherConfig::default(),
            carrier_down: Arc::new(AtomicBool::new(false)),
            database: None,
            server_key: None,
            clock: None,
            sqlite: false,
            notifier: None,
        }
    }
}

/// The PostgreSQL database the tests run against, if any.
pub fn test_database() -> Option<String> {
    std::env::var("DEVICETRUST_TEST_DATABASE")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Under PostgreSQL: a new, empty schema in the test database, and the URL
/// that makes it the connection's only schema. `None` under SQLite.
pub async fn fresh_database() -> Option<String> {
    let base = test_database()?;
    let mut id = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .expect("random");
    let schema = format!(
        "t_{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let client = pg_connect(&base).await;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create the test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    // Named after the schema, so a test can find its servers' connections.
    Some(format!(
        "{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
    ))
}

/// Says that a test skips, and why, where it is seen: straight to the
/// process's stderr, past the test harness's capture of `eprintln!`.
pub fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipping: {reason}");
}

/// A plain connection to a test database (loopback, no TLS).
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// The outbox, behind a switch that makes the carrier refuse.
struct SwitchedOutbox {
    outbox: Outbox,
    down: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Notifier for SwitchedOutbox {
    async fn send(&self, message: Message) -> Result<(), NotifyError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(NotifyError::Io(std::io::Error::other(
                "carrier down (test)",
            )));
        }
        self.outbox.send(message).await
    }
}

/// A running server and the handles a test needs to observe it.
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    state: AppState,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
    /// The PostgreSQL URL (its own schema) when the backend is PostgreSQL.
    pub database: Option<String>,
    pub outbox: PathBuf,
    pub http: reqwest::Client,
    /// While set, requests leave from this loopback address (all of
    /// 127.0.0.0/8 reaches the server): a client on another network.
    source: std::sync::Mutex<Option<reqwest::Client>>,
    shutdown: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer: status and JSON body (`Value::Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Self {
        install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("devicetrust.db");
        let outbox = dir.path().join("outbox.jsonl");
        let database = match opts.database {
            Some(url) => Some(url),
            None if opts.sqlite => None,
            None => fresh_database().await,
        };
        let store: Arc<dyn Store> = match &database {
            Some(url) => Arc::new(PostgresStore::open(url).await.expect("open store")),
            None => Arc::new(
                SqliteStore::open(db.to_str().expect("utf-8 path"))
                    .await
                    .expect("open store"),
            ),
        };
        let clock = opts.clock.unwrap_or_default();
        let state = AppState::new(Components {
            settings: opts.settings,
            store: store.clone(),
            clock: Arc::new(clock.clone()),
            notifier: match opts.notifier {
                Some(notifier) => notifier,
                None => Arc::new(SwitchedOutbox {
                    outbox: Outbox::new(&outbox),
                    down: opts.carrier_down.clone(),
                }),
            },
            risk: match opts.risk {
                Risk::Habits(config) => Arc::new(HabitsPolicy::new(store.clone(), config)),
                Risk::Policy(policy) => policy,
            },
            hasher: Hasher::new(opts.hasher).expect("hasher"),
            server_key: match opts.server_key {
                Some(key) => key,
                None => ServerKey::generate().expect("server key"),
            },
        })
        .await
        .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            base,
            addr,
            state,
            clock,
            store,
            database,
            outbox,
            http: reqwest::Client::new(),
            source: std::sync::Mutex::new(None),
            shutdown: std::sync::Mutex::new(Some(tx)),
            task: std::sync::Mutex::new(Some(task)),
            _dir: dir,
        }
    }

    /// Stops accepting, finishes in-flight requests, and returns.
    pub async fn stop(self) {
        self.pause().await;
    }

    /// Takes the server off the network; its data stays.
    pub async fn pause(&self) {
        if let Some(tx) = self.shutdown.lock().expect("lock").take() {
            let _ = tx.send(());
        }
        let task = self.task.lock().expect("lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Serves the same data again on the same address.
    pub async fn resume(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(app::serve(self.state.clone(), listener, async move {
            let _ = rx.await;
        }));
        *self.task.lock().expect("lock") = Some(task);
        *self.shutdown.lock().expect("lock") = Some(tx);
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The SQLite database file (under SQLite).
    pub fn db_path(&self) -> PathBuf {
        self._dir.path().join("devicetrust.db")
    }

    /// The one integer a query answers (`SELECT COUNT(*) …`), on whichever
    /// backend this server uses: for tests that inspect tables directly.
    pub async fn sql_i64(&self, sql: &str) -> i64 {
        match &self.database {
            Some(url) => pg_connect(url)
                .await
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
                .get(0),
            None => rusqlite::Connection::open(self.db_path())
                .expect("open the database")
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// `sql_i64` for a query built on the spot.
    pub async fn sql_i64_owned(&self, sql: String) -> i64 {
        self.sql_i64(&sql).await
    }

    /// The one text a query answers, on whichever backend.
    pub async fn sql_text(&self, sql: &str) -> String {
        match &self.database {
            Some(url) => pg_connect(url)
                .await
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
                .get(0),
            None => rusqlite::Connection::open(self.db_path())
                .expect("open the database")
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Everything the database holds, as text: the SQLite file and its WAL,
    /// or every row of every table of the PostgreSQL schema.
    pub async fn raw_contents(&self) -> String {
        match &self.database {
            Some(url) => {
                let client = pg_connect(url).await;
                let tables = client
                    .query(
                        "SELECT table_name::TEXT FROM information_schema.tables
                         WHERE table_schema = current_schema()",
                        &[],
                    )
                    .await
                    .expect("tables");
                let mut out = String::new();
                for t in tables {
                    let name: String = t.get(0);
                    for row in client
                        .query(&format!("SELECT t::TEXT FROM {name} t"), &[])
                        .await
                        .expect("rows")
                    {
                        out.push_str(row.get::<_, &str>(0));
                        out.push('\n');
                    }
                }
                out
            }
            None => {
                let db = std::fs::read(self.db_path()).expect("read the database");
                let wal =
                    std::fs::read(format!("{}-wal", self.db_path().display())).unwrap_or_default();
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&db),
                    String::from_utf8_lossy(&wal)
                )
            }
        }
    }

    /// The application state (its hasher, settings), for white-box checks.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON body ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer { status, body }
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        let mut req = self
            .client()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    /// Makes the following requests come from `ip` (a loopback address such
    /// as 127.45.0.1), or from 127.0.0.1 again with `None`.
    pub fn come_from(&self, ip: Option<&str>) {
        let client = ip.map(|ip| {
            reqwest::Client::builder()
                .local_address(ip.parse::<std::net::IpAddr>().expect("source address"))
                .build()
                .expect("client")
        });
        *self.source.lock().expect("source") = client;
    }

    fn client(&self) -> reqwest::Client {
        self.source
            .lock()
            .expect("source")
            .clone()
            .unwrap_or_else(|| self.http.clone())
    }

    /// POST a raw body with a chosen content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let req = self
            .client()
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        Self::answer(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.client().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.client().delete(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        let mut req = self
            .client()
            .put(format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    /// Sends a whole JSON request over a raw connection and closes it at once,
    /// without reading the answer: a client that vanishes mid-request.
    pub async fn send_and_vanish(&self, path: &str, body: Value) {
        use tokio::io::AsyncWriteExt;
        let body = serde_json::to_vec(&body).expect("json");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(&body).await.expect("write");
        // RST instead of FIN: the connection is gone at once.
        let _ = stream.set_zero_linger();
        drop(stream);
    }

    /// Waits (real time, bounded) until the user's audit trail holds `n`
    /// events named `event`; returns how many it holds.
    pub async fn wait_for_audit(&self, user_id: &str, event: &str, n: usize) -> usize {
        let mut seen = 0;
        for _ in 0..200 {
            seen = self
                .audit_events(user_id)
                .await
                .iter()
                .filter(|e| *e == event)
                .count();
            if seen >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        seen
    }

    /// Creates a card holder through the admin API.
    pub async fn add_user(&self, user_id: &str, market: &str, mobile: Option<&str>) {
        let a = self
            .post(
                "/admin/v1/users",
                json!({
                    "user_id": user_id,
                    "name": "Jane Doe",
                    "email": format!("{}@example.com", user_id.to_lowercase()),
                    "mobile": mobile,
                    "primary_market": market,
                    "password": PASSWORD,
                }),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(a.status, 201, "add_user: {:?}", a.body);
    }

    pub async fn set_market(&self, market: &str, second_factor: &str) {
        let a = self
            .put(
                &format!("/admin/v1/markets/{market}"),
                json!({ "second_factor": second_factor }),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(a.status, 204, "set_market: {:?}", a.body);
    }

    /// Waits (real time, bounded) until every queued alert has been handed
    /// to the outbox: alerts go out off the request path.
    pub async fn settle(&self) {
        for _ in 0..500 {
            if self.state.pending_alerts() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("alerts did not settle within 5 s");
    }

    /// Every message in the outbox.
    pub fn outbox_messages(&self) -> Vec<Value> {
        read_outbox(&self.outbox)
    }

    /// The newest OTP code sent to `user_id`.
    pub fn last_otp(&self, user_id: &str) -> String {
        self.outbox_messages()
            .iter()
            .rev()
            .find(|m| m["purpose"] == "otp" && m["user_id"] == user_id.to_lowercase())
            .and_then(|m| m["code"].as_str().map(str::to_owned))
            .expect("an OTP in the outbox")
    }

    pub async fn password(&self, user_id: &str, password: &str, device_id: Option<&str>) -> Answer {
        self.post(
            "/v1/login/password",
            json!({ "user_id": user_id, "password": password, "device_id": device_id }),
            None,
        )
        .await
    }

    /// Password (enrolling if asked) → e-mail OTP → session. Names
    /// `device_id` in the password step when given.
    pub async fn sign_in_with_otp(&self, user_id: &str, device_id: Option<&str>) -> Value {
        let mut a = self.password(user_id, PASSWORD, device_id).await;
        assert_eq!(a.status, 200, "password: {:?}", a.body);
        if a.body["status"] == "enrolment_required" {
            a = self
                .post(
                    "/v1/login/enrol",
                    json!({ "login_id": a.body["login_id"], "security_code": SECURITY_CODE }),
                    None,
                )
                .await;
            assert_eq!(a.status, 200, "enrol: {:?}", a.body);
        }
        assert_eq!(a.body["status"], "second_factor_required", "{:?}", a.body);
        let login_id = a.body["login_id"].clone();
        let code = self.send_email_otp(user_id, &login_id).await;
        let v = self
            .post(
                "/v1/login/otp/verify",
                json!({ "login_id": login_id, "code": code }),
                None,
            )
            .await;
        assert_eq!(v.status, 200, "otp verify: {:?}", v.body);
        v.body["session"].clone()
    }

    /// Sends an e-mail OTP for `login_id` and returns the code from the outbox.
    pub async fn send_email_otp(&self, user_id: &str, login_id: &Value) -> String {
        let sent = self
            .post(
                "/v1/login/otp/send",
                json!({ "login_id": login_id, "channel": "email" }),
                None,
            )
            .await;
        assert_eq!(sent.status, 200, "otp send: {:?}", sent.body);
        self.last_otp(user_id)
    }

    /// An enrolled user's password step, then an e-mail OTP: the login
    /// waiting for its code, and the code.
    pub async fn pending_otp(&self, user_id: &str) -> (Value, String) {
        let p = self.password(user_id, PASSWORD, None).await;
        assert_eq!(p.body["status"], "second_factor_required", "{:?}", p.body);
        let login_id = p.body["login_id"].clone();
        let code = self.send_email_otp(user_id, &login_id).await;
        (login_id, code)
    }

    /// Registers a new key as a trusted device of the session's user. It
    /// claims a TEE without an attestation, which the default policy
    /// (`verify`) counts as hardware (`hwk`).
    pub async fn register_device(&self, session: &Value, uv: &str) -> (String, DeviceKey) {
        let token = session["access_token"].as_str().expect("token");
        let user_id = session["user_id"].as_str().expect("user_id");
        let reg = self
            .post("/v1/devices/registration", json!({}), Some(token))
            .await;
        assert_eq!(reg.status, 200, "registration: {:?}", reg.body);
        let key = DeviceKey::generate();
        let proof =
            key.register_proof(RP_ID, user_id, reg.body["challenge"].as_str().unwrap_or(""));
        let a = self
            .post(
                "/v1/devices",
                json!({
                    "registration_id": reg.body["registration_id"],
                    "proof": proof,
                    "name": "Jane's phone",
                    "platform": "android",
                    "key_storage": "tee",
                    "user_verification": uv,
                }),
                Some(token),
            )
            .await;
        assert_eq!(a.status, 201, "register: {:?}", a.body);
        let device_id = a.body["device"]["device_id"]
            .as_str()
            .expect("device_id")
            .to_owned();
        (device_id, key)
    }

    pub async fn challenge(&self, device_id: &str) -> Answer {
        self.post(
            "/v1/login/device/challenge",
            json!({ "device_id": device_id }),
            None,
        )
        .await
    }

    /// Challenge → signed proof → answer of `/v1/login/device`.
    pub async fn device_sign_in(&self, device_id: &str, key: &DeviceKey, user_id: &str) -> Answer {
        let c = self.challenge(device_id).await;
        assert_eq!(c.status, 200, "challenge: {:?}", c.body);
        let proof = key.login_proof(
            RP_ID,
            device_id,
            user_id,
            c.body["challenge"].as_str().unwrap_or(""),
        );
        self.post(
            "/v1/login/device",
            json!({ "challenge_id": c.body["challenge_id"], "proof": proof }),
            None,
        )
        .await
    }

    /// An existing user (added by the caller) signed in with an OTP and with
    /// one biometric device: (session, device_id, key).
    pub async fn user_with_device_for(&self, user_id: &str) -> (Value, String, DeviceKey) {
        let session = self.sign_in_with_otp(user_id, None).await;
        let (device_id, key) = self.register_device(&session, "biometric").await;
        (session, device_id, key)
    }

    /// A fresh, enrolled user with one biometric device: (session, device_id, key).
    pub async fn user_with_device(&self, user_id: &str) -> (Value, String, DeviceKey) {
        self.add_user(user_id, "GB", None).await;
        let session = self.sign_in_with_otp(user_id, None).await;
        let (device_id, key) = self.register_device(&session, "biometric").await;
        (session, device_id, key)
    }

    /// The user's audit trail, oldest first: event names.
    pub async fn audit_events(&self, user_id: &str) -> Vec<String> {
        self.store
            .audit_events(user_id)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

/// reqwest is built with rustls but no built-in provider (the SDK brings
/// ring); plain clients in tests need ring installed process-wide.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads an outbox file: one JSON object a line.
pub fn read_outbox(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("outbox line is JSON"))
        .collect()
}

/// A six-digit code that is certainly not `code`.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A software P-256 key standing in for the phone's secure hardware.
pub struct DeviceKey {
    key: SigningKey,
}

impl DeviceKey {
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        loop {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes).expect("random");
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return DeviceKey { key };
            }
        }
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn public_point(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().expect("x")),
            "y": b64(point.y().expect("y")),
        })
    }

    /// A compact JWS over `header` and `payload`, ES256 r‖s.
    pub fn sign_jws(&self, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(header).expect("json")),
            b64(serde_json::to_vec(payload).expect("json"))
        );
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.to_bytes()))
    }

    pub fn register_proof(&self, aud: &str, sub: &str, nonce: &str) -> String {
        self.sign_jws(
            &json!({ "alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": self.jwk() }),
            &json!({ "aud": aud, "sub": sub, "nonce": nonce }),
        )
    }

    pub fn login_proof(&self, aud: &str, kid: &str, sub: &str, nonce: &str) -> String {
        self.sign_jws(
            &json!({ "alg": "ES256", "typ": "devicetrust-login+jwt", "kid": kid }),
            &json!({ "aud": aud, "sub": sub, "nonce": nonce }),
        )
    }
}

/// `../shared/testvectors/` beside the project, if present. Under CI its
/// absence fails the test; elsewhere the test says so and skips.
pub fn testvectors_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testvectors/wycheproof");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("CI=true but {} is missing", dir.display());
    }
    eprintln!(
        "skipping: {} not found (shared test vectors are not part of a clone)",
        dir.display()
    );
    None
}

pub mod attestation;
pub mod loadgen;
pub mod sdk;

/// Sends one device proof (`{"challenge_id", "proof"}`) `n` times at once,
/// the requests spread over `servers` in turn and released together by a
/// barrier; returns how many signed in. Every other answer must be
/// `401 challenge_invalid`: a race for one challenge has no third outcome.
pub async fn race_device_proof(servers: &[Arc<TestServer>], body: Value, n: usize) -> usize {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let srv = servers[i % servers.len()].clone();
            let (body, barrier) = (body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                srv.post("/v1/login/device", body, None).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        let a = t.await.expect("racing request");
        match a.status {
            200 => wins += 1,
            401 => assert_eq!(a.code(), "challenge_invalid"),
            other => panic!("unexpected {other}: {:?}", a.body),
        }
    }
    wins
}
