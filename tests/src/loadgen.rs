//! The load generator's logic (the `loadgen` binary is a thin CLI over it):
//! a seeded population of users and devices whose keys anyone with the seed
//! can derive, four load modes against servers on loopback, the raw ring and
//! argon2id rates of the same run, and the report (text and a markdown row).
//!
//! Loopback only: every URL is checked by [`loopback_base`] before a request
//! is made, and every run is bounded in count and time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use devicetrust_server::secrets::{Hasher, HasherConfig, Secret};
use devicetrust_server::storage::{Device, Registration, StorageError, Store, User};
use hdrhistogram::Histogram;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error(
        "{0}: not a loopback address; the load generator only talks to 127.0.0.0/8, ::1 or \
         localhost (start the server with --listen 127.0.0.1:PORT)"
    )]
    NotLoopback(String),
    #[error("{0}")]
    Usage(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Setup(String),
}

/// What each worker does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Device sign-ins: challenge, sign with ring, proof.
    Device,
    /// Password steps for unknown users: each one a full argon2id.
    Password,
    /// Refresh-token rotations of device sessions.
    Refresh,
    /// Device sign-ins while password tasks keep argon2id busy.
    Mixed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Device => "device",
            Mode::Password => "password",
            Mode::Refresh => "refresh",
            Mode::Mixed => "mixed",
        }
    }
}

/// Checks that `url` is `http://` to a loopback address and returns its
/// base (`http://HOST:PORT`, no trailing slash, no path).
pub fn loopback_base(url: &str) -> Result<String, LoadgenError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| LoadgenError::Usage(format!("--url {url:?}: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(LoadgenError::Usage(format!(
            "--url {url:?}: only http:// (the server on loopback needs no TLS)"
        )));
    }
    let raw_host = parsed.host_str().unwrap_or("");
    let ip = if raw_host.eq_ignore_ascii_case("localhost") {
        // `localhost` could resolve elsewhere through /etc/hosts: pin it.
        Some(std::net::IpAddr::from([127, 0, 0, 1]))
    } else {
        raw_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok()
    };
    let ip = match ip {
        Some(ip) if ip.is_loopback() => ip,
        _ => return Err(LoadgenError::NotLoopback(url.to_owned())),
    };
    if parsed.path() != "/" || parsed.query().is_some() || !parsed.username().is_empty() {
        return Err(LoadgenError::Usage(format!(
            "--url {url:?}: give the server's base only, e.g. http://127.0.0.1:8080"
        )));
    }
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| LoadgenError::Usage(format!("--url {url:?}: no port")))?;
    let host = match ip {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    Ok(format!("http://{host}:{port}"))
}

/// Users `lg0…lg{users-1}`, each with `devices_per_user` trusted devices
/// whose ids and P-256 keys are derived from `seed`: `loadgen seed` writes
/// them into a database, a run derives the same keys to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    pub users: u64,
    pub devices_per_user: u64,
    pub seed: String,
}

/// One seeded device, ready to sign login proofs with ring.
pub struct SeededDevice {
    pub user_id: String,
    pub device_id: String,
    key: EcdsaKeyPair,
    /// The proof's header, base64url: it never changes for a device.
    header: String,
}

impl Population {
    pub fn total(&self) -> u64 {
        self.users * self.devices_per_user
    }

    pub fn user_id(&self, user: u64) -> String {
        format!("lg{user}")
    }

    fn derive(&self, label: &str, user: u64, device: u64, counter: u32) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            b"devicetrust-loadgen\0".as_slice(),
            label.as_bytes(),
            b"\0",
            self.seed.as_bytes(),
            b"\0",
            &user.to_be_bytes(),
            &device.to_be_bytes(),
            &counter.to_be_bytes(),
        ] {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The `n`th device, counted user first (device 0 of every user, then
    /// device 1 of every user, …) so that consecutive indices are different
    /// users.
    fn coordinates(&self, n: u64) -> (u64, u64) {
        let n = n % self.total().max(1);
        (n % self.users.max(1), n / self.users.max(1))
    }

    fn device_id(&self, user: u64, device: u64) -> String {
        URL_SAFE_NO_PAD.encode(&self.derive("device-id", user, device, 0)[..16])
    }

    /// The private scalar (the first hash below the group order) and the
    /// uncompressed public point.
    fn key_material(&self, user: u64, device: u64) -> ([u8; 32], Vec<u8>) {
        let mut counter = 0;
        loop {
            let scalar = self.derive("device-key", user, device, counter);
            if let Ok(secret) = p256::SecretKey::from_slice(&scalar) {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let point = secret.public_key().to_encoded_point(false);
                return (scalar, point.as_bytes().to_vec());
            }
            counter += 1;
        }
    }

    /// The `n`th device with its signing key.
    pub fn device(&self, n: u64) -> Result<SeededDevice, LoadgenError> {
        let (user, device) = self.coordinates(n);
        let (scalar, point) = self.key_material(user, device);
        let key = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            &point,
            &SystemRandom::new(),
        )
        .map_err(|e| LoadgenError::Setup(format!("device key: {e}")))?;
        let device_id = self.device_id(user, device);
        let header = URL_SAFE_NO_PAD.encode(
            json!({ "alg": "ES256", "typ": "devicetrust-login+jwt", "kid": device_id }).to_string(),
        );
        Ok(SeededDevice {
            user_id: self.user_id(user),
            device_id,
            key,
            header,
        })
    }
}

impl SeededDevice {
    /// A login proof (compact JWS, ES256) for `nonce`, signed with ring.
    pub fn login_proof(&self, rp_id: &str, nonce: &str, rng: &SystemRandom) -> String {
        let payload = URL_SAFE_NO_PAD
            .encode(json!({ "aud": rp_id, "sub": self.user_id, "nonce": nonce }).to_string());
        let input = format!("{}.{payload}", self.header);
        match self.key.sign(rng, input.as_bytes()) {
            Ok(sig) => format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())),
            // Only a failing OS RNG gets here; the server will refuse the
            // proof and the run counts it as an error.
            Err(_) => format!("{input}."),
        }
    }

    pub fn public_point(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }
}

/// Writes the population into `store` through the server's own `Store`:
/// each user with one argon2id hash (computed once, by the server's own
/// hasher and parameters) and each device as a finished registration.
/// `now` is the server clock's time; devices stay trusted for 90 days.
pub async fn seed(
    store: Arc<dyn Store>,
    population: &Population,
    now: i64,
    tasks: usize,
    progress: bool,
) -> Result<(), LoadgenError> {
    if population.users == 0 || population.devices_per_user == 0 {
        return Err(LoadgenError::Usage(
            "seeding needs at least one user and one device per user".into(),
        ));
    }
    // One hash for every user: a benchmark population never signs in with a
    // password (password load uses unknown users, which the server checks
    // against its own dummy hash at the same cost), so distinct salts would
    // only cost 19 MiB × t=2 of argon2id per user at seeding time.
    let hasher = Hasher::new(HasherConfig::default())
        .map_err(|e| LoadgenError::Setup(format!("hasher: {e}")))?;
    let password_hash = hasher
        .hash(&Secret::new(crate::PASSWORD))
        .await
        .map_err(|e| LoadgenError::Setup(format!("hash: {e:?}")))?;
    let population = Arc::new(population.clone());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let (store, population, next, password_hash) = (
            store.clone(),
            population.clone(),
            next.clone(),
            password_hash.clone(),
        );
        set.spawn(async move {
            loop {
                let u = next.fetch_add(1, Ordering::Relaxed);
                if u >= population.users {
                    return Ok::<(), LoadgenError>(());
                }
                if progress && u > 0 && u % 10_000 == 0 {
                    eprintln!(
                        "  {u} users seeded ({:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                seed_user(&*store, &population, u, &password_hash, now).await?;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| LoadgenError::Setup(format!("seeding task: {e}")))??;
    }
    Ok(())
}

async fn seed_user(
    store: &dyn Store,
    population: &Population,
    u: u64,
    password_hash: &str,
    now: i64,
) -> Result<(), LoadgenError> {
    let user_id = population.user_id(u);
    store
        .create_user(User {
            user_id: user_id.clone(),
            name: format!("Load {u}"),
            email: format!("{user_id}@loadgen.invalid"),
            mobile: None,
            primary_market: "GB".into(),
            password_hash: password_hash.to_owned(),
            security_code_hash: None,
            enrolled_at: Some(now),
            created_at: now,
            mobile_verified: false,
        })
        .await
        .map_err(|e| match e {
            StorageError::Conflict => LoadgenError::Usage(format!(
                "user {user_id} already exists: seed an empty database"
            )),
            other => other.into(),
        })?;
    for k in 0..population.devices_per_user {
        let (_, point) = population.key_material(u, k);
        let device_id = population.device_id(u, k);
        let registration_id = population.device_id(u, k + 1_000_000);
        store
            .create_registration(Registration {
                registration_id: registration_id.clone(),
                user_id: user_id.clone(),
                challenge: "seeded".into(),
                expires_at: now + 300,
            })
            .await?;
        // The registration is finished without a session of its own (no
        // session row has this id, so none is linked to the device).
        let outcome = store
            .finish_registration(
                &registration_id,
                "loadgen-seed",
                Device {
                    device_id,
                    user_id: user_id.clone(),
                    name: "loadgen".into(),
                    platform: "android".into(),
                    key_storage: "tee".into(),
                    user_verification: "biometric".into(),
                    public_key: point,
                    created_at: now,
                    last_used_at: None,
                    trusted_until: now + 90 * 86_400,
                    removed_at: None,
                    registered_by: None,
                    attestation: None,
                },
                i64::MAX,
                now,
            )
            .await?;
        if !matches!(
            outcome,
            devicetrust_server::storage::RegistrationOutcome::Created
        ) {
            return Err(LoadgenError::Setup(format!(
                "device {k} of {user_id} not stored: {outcome:?}"
            )));
        }
    }
    Ok(())
}

/// Seeds a new SQLite database at `target` (which must not exist): built
/// with the server's own `SqliteStore` (its migrations, its writes) in a
/// scratch file under `work_dir` — every write is fsynced, which on tmpfs
/// costs nothing — then copied compact and checkpointed (`VACUUM INTO`),
/// owner-only as the server keeps its database.
pub async fn seed_sqlite(
    target: &std::path::Path,
    work_dir: &std::path::Path,
    population: &Population,
    now: i64,
) -> Result<(), LoadgenError> {
    use std::os::unix::fs::OpenOptionsExt;
    if target.exists() {
        return Err(LoadgenError::Usage(format!(
            "{} exists: seed a database that does not exist yet",
            target.display()
        )));
    }
    let target_str = target
        .to_str()
        .ok_or_else(|| LoadgenError::Setup("database path is not UTF-8".into()))?;
    let work = tempfile::tempdir_in(work_dir)
        .map_err(|e| LoadgenError::Setup(format!("work dir {}: {e}", work_dir.display())))?;
    let scratch = work.path().join("seed.db");
    let scratch = scratch
        .to_str()
        .ok_or_else(|| LoadgenError::Setup("work dir path is not UTF-8".into()))?
        .to_owned();
    {
        let store: Arc<dyn Store> =
            Arc::new(devicetrust_server::storage::sqlite::SqliteStore::open(&scratch).await?);
        seed(store, population, now, 8, true).await?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| LoadgenError::Setup(format!("{}: {e}", target.display())))?;
    let conn = rusqlite::Connection::open(&scratch)
        .map_err(|e| LoadgenError::Setup(format!("reopen the scratch database: {e}")))?;
    conn.execute("VACUUM INTO ?1", [target_str])
        .map_err(|e| LoadgenError::Setup(format!("copy to {target_str}: {e}")))?;
    Ok(())
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub mode: Mode,
    /// Operations of the measured stream: device sign-ins (device, mixed),
    /// password attempts, or refreshes.
    pub requests: u64,
    /// Workers of the measured stream.
    pub concurrency: u64,
    /// Password tasks beside the device sign-ins (mixed only).
    pub password_tasks: u64,
    pub max_time: Duration,
    /// How long each raw rate (ring, argon2id) is measured; zero skips them.
    pub calibrate: Duration,
    pub rp_id: String,
    pub population: Population,
    /// A server process whose memory is reported (`/proc/PID/status`).
    pub server_pid: Option<u32>,
}

/// Server bases the requests go to (several: each sign-in's proof goes to
/// the next instance after its challenge's).
#[derive(Clone)]
pub struct Target {
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
}

/// An answer, or why there was none.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    /// `200`, `401 invalid_credentials`, `transport`…: how errors are counted.
    fn key(&self) -> String {
        match self.body["error"]["code"].as_str() {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

impl Target {
    /// Every base must already have passed [`loopback_base`].
    pub fn new(bases: Vec<String>) -> Result<Self, LoadgenError> {
        if bases.is_empty() {
            return Err(LoadgenError::Usage("no server to send requests to".into()));
        }
        for b in &bases {
            loopback_base(b)?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .map_err(|e| LoadgenError::Setup(format!("HTTP client: {e}")))?;
        Ok(Target {
            http,
            bases: Arc::new(bases),
        })
    }

    /// Fails clearly when a server does not answer `/healthz`.
    pub async fn preflight(&self) -> Result<(), LoadgenError> {
        for base in self.bases.iter() {
            let ok = self
                .http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if !ok {
                return Err(LoadgenError::Setup(format!(
                    "no devicetrust server answers {base}/healthz"
                )));
            }
        }
        Ok(())
    }

    async fn post(&self, instance: usize, path: &str, body: &Value) -> Result<Reply, String> {
        let base = &self.bases[instance % self.bases.len()];
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .json(body)
            .send()
            .await
            .map_err(|_| "transport".to_owned())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|_| "transport".to_owned())?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }
}

/// One stream's outcome: latencies of its successes, errors by code.
pub struct Stream {
    pub hist: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Stream {
    fn new() -> Self {
        Stream {
            // Microseconds up to an hour, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds")),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn ok(&mut self, since: Instant) {
        let us = since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        self.hist.saturating_record(us.max(1));
    }

    fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Stream) {
        let _ = self.hist.add(other.hist);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    pub fn ok_count(&self) -> u64 {
        self.hist.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn rate(&self) -> f64 {
        self.ok_count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Memory of the server process (kB), from /proc/PID/status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// A run's figures.
pub struct Report {
    pub mode: Mode,
    /// Device sign-ins, password attempts or refreshes.
    pub main: Stream,
    /// The password tasks of a mixed run.
    pub passwords: Option<Stream>,
    pub ring_verify_per_s: Option<f64>,
    pub argon2_per_s: Option<f64>,
    pub cores: usize,
    pub memory_idle: Option<Memory>,
    /// Highest VmRSS seen while the load ran (sampled every 100 ms).
    pub memory_peak_rss_kb: Option<u64>,
    pub memory_after: Option<Memory>,
}

/// Runs the configured load against `target`, then measures the raw rates.
pub async fn run(target: &Target, cfg: &RunConfig) -> Result<Report, LoadgenError> {
    if cfg.requests == 0 || cfg.concurrency == 0 {
        return Err(LoadgenError::Usage(
            "--requests and --concurrency must be at least 1".into(),
        ));
    }
    if cfg.mode == Mode::Mixed && cfg.password_tasks == 0 {
        return Err(LoadgenError::Usage(
            "--mode mixed needs --password-tasks N (N ≥ 1)".into(),
        ));
    }
    if cfg.mode != Mode::Mixed && cfg.password_tasks > 0 {
        return Err(LoadgenError::Usage(
            "--password-tasks is for --mode mixed".into(),
        ));
    }
    target.preflight().await?;
    let needs_devices = cfg.mode != Mode::Password;
    // Keys for as many distinct devices as the run can use, derived before
    // the clock starts: consecutive sign-ins are different users.
    let devices: Arc<Vec<SeededDevice>> = Arc::new(if needs_devices {
        if cfg.population.total() == 0 {
            return Err(LoadgenError::Usage(
                "this mode needs a seeded population (--users, --devices-per-user)".into(),
            ));
        }
        let wanted = match cfg.mode {
            Mode::Refresh => cfg.concurrency,
            _ => cfg.requests,
        }
        .min(cfg.population.total());
        let population = cfg.population.clone();
        tokio::task::spawn_blocking(move || {
            (0..wanted)
                .map(|n| population.device(n))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| LoadgenError::Setup(e.to_string()))??
    } else {
        Vec::new()
    });
    let memory_idle = cfg.server_pid.and_then(memory_of);
    let deadline = Instant::now() + cfg.max_time;
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = cfg.server_pid.map(|pid| {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(m) = memory_of(pid) {
                    peak.fetch_max(m.rss_kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    // A prefix no earlier run used: unknown users stay unknown, and their
    // attempt counts never reach a lock.
    let mut tag = [0u8; 6];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut tag)
        .map_err(|_| LoadgenError::Setup("the OS random number generator failed".into()))?;
    let run_tag = URL_SAFE_NO_PAD.encode(tag);
    let started = Instant::now();
    let flood: Vec<_> = (0..cfg.password_tasks)
        .map(|w| {
            let (target, stop, tag) = (target.clone(), stop.clone(), run_tag.clone());
            tokio::spawn(
                async move { password_worker(&target, w, &tag, None, &stop, deadline).await },
            )
        })
        .collect();
    let workers: Vec<_> = (0..cfg.concurrency)
        .map(|w| {
            let (target, devices, next, stop, tag) = (
                target.clone(),
                devices.clone(),
                next.clone(),
                stop.clone(),
                run_tag.clone(),
            );
            let (mode, total, rp_id) = (cfg.mode, cfg.requests, cfg.rp_id.clone());
            tokio::spawn(async move {
                let bound = Bound {
                    next: &next,
                    total,
                    deadline,
                };
                match mode {
                    Mode::Device | Mode::Mixed => {
                        device_worker(&target, &devices, &rp_id, &bound).await
                    }
                    Mode::Password => {
                        password_worker(&target, w, &tag, Some(&bound), &stop, deadline).await
                    }
                    Mode::Refresh => {
                        refresh_worker(&target, &devices[w as usize], &rp_id, w, &bound).await
                    }
                }
            })
        })
        .collect();
    let mut main = Stream::new();
    for w in workers {
        main.merge(w.await.map_err(|e| LoadgenError::Setup(e.to_string()))?);
    }
    main.elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let passwords = if flood.is_empty() {
        None
    } else {
        let mut s = Stream::new();
        for f in flood {
            s.merge(f.await.map_err(|e| LoadgenError::Setup(e.to_string()))?);
        }
        s.elapsed = started.elapsed();
        Some(s)
    };
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let memory_after = cfg.server_pid.and_then(memory_of);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (ring_verify_per_s, argon2_per_s) = if cfg.calibrate.is_zero() {
        (None, None)
    } else {
        let d = cfg.calibrate;
        let ring = tokio::task::spawn_blocking(move || ring_verify_rate(d))
            .await
            .map_err(|e| LoadgenError::Setup(e.to_string()))??;
        let argon = tokio::task::spawn_blocking(move || argon2_rate(d, cores))
            .await
            .map_err(|e| LoadgenError::Setup(e.to_string()))??;
        (Some(ring), Some(argon))
    };
    Ok(Report {
        mode: cfg.mode,
        main,
        passwords,
        ring_verify_per_s,
        argon2_per_s,
        cores,
        memory_idle,
        memory_peak_rss_kb: cfg.server_pid.map(|_| peak.load(Ordering::Relaxed)),
        memory_after,
    })
}

/// The shared bound of the measured stream: a count and a deadline.
struct Bound<'a> {
    next: &'a AtomicU64,
    total: u64,
    deadline: Instant,
}

impl Bound<'_> {
    /// The next operation's number, or `None` when the run is over.
    fn take(&self) -> Option<u64> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.total).then_some(n)
    }
}

/// Challenge → proof signed with ring → session; the session's refresh
/// token on success.
async fn device_sign_in(
    target: &Target,
    d: &SeededDevice,
    rp_id: &str,
    instance: usize,
    rng: &SystemRandom,
) -> Result<Value, String> {
    let c = target
        .post(
            instance,
            "/v1/login/device/challenge",
            &json!({ "device_id": d.device_id }),
        )
        .await?;
    if c.status != 200 {
        return Err(format!("challenge {}", c.key()));
    }
    let proof = d.login_proof(rp_id, c.body["challenge"].as_str().unwrap_or(""), rng);
    let a = target
        .post(
            instance + 1,
            "/v1/login/device",
            &json!({ "challenge_id": c.body["challenge_id"], "proof": proof }),
        )
        .await?;
    if a.status != 200 {
        return Err(a.key());
    }
    Ok(a.body)
}

async fn device_worker(
    target: &Target,
    devices: &[SeededDevice],
    rp_id: &str,
    bound: &Bound<'_>,
) -> Stream {
    let rng = SystemRandom::new();
    let mut s = Stream::new();
    while let Some(n) = bound.take() {
        let d = &devices[(n % devices.len() as u64) as usize];
        let t = Instant::now();
        match device_sign_in(target, d, rp_id, n as usize, &rng).await {
            Ok(_) => s.ok(t),
            Err(k) => s.error(k),
        }
    }
    s
}

/// Wrong passwords for user ids nobody has: every answer is a full
/// argon2id against the server's dummy hash. Success = `401
/// invalid_credentials`, the answer that cost a hash.
async fn password_worker(
    target: &Target,
    w: u64,
    tag: &str,
    bound: Option<&Bound<'_>>,
    stop: &AtomicBool,
    deadline: Instant,
) -> Stream {
    let mut s = Stream::new();
    let mut i = 0u64;
    loop {
        let n = match bound {
            Some(b) => match b.take() {
                Some(n) => n,
                None => break,
            },
            None => {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                i += 1;
                i
            }
        };
        let t = Instant::now();
        let body = json!({
            "user_id": format!("nobody-{tag}-{w}-{n}"),
            "password": "not the password",
        });
        match target.post(n as usize, "/v1/login/password", &body).await {
            Ok(r) if r.status == 401 && r.body["error"]["code"] == "invalid_credentials" => s.ok(t),
            Ok(r) => s.error(r.key()),
            Err(k) => s.error(k),
        }
    }
    s
}

/// Signs in once with its own device, then rotates the refresh token in a
/// loop, single-flight (a token is spent by its refresh; presenting it again
/// would revoke the family). A failed refresh signs in again.
async fn refresh_worker(
    target: &Target,
    d: &SeededDevice,
    rp_id: &str,
    w: u64,
    bound: &Bound<'_>,
) -> Stream {
    let rng = SystemRandom::new();
    let mut s = Stream::new();
    let mut token: Option<String> = None;
    while let Some(n) = bound.take() {
        let current = match token.take() {
            Some(t) => t,
            None => match device_sign_in(target, d, rp_id, w as usize, &rng).await {
                Ok(answer) => match answer["session"]["refresh_token"].as_str() {
                    Some(t) => t.to_owned(),
                    None => {
                        s.error("sign-in without refresh_token".into());
                        continue;
                    }
                },
                Err(k) => {
                    s.error(format!("sign-in {k}"));
                    continue;
                }
            },
        };
        let t = Instant::now();
        match target
            .post(
                n as usize,
                "/v1/session/refresh",
                &json!({ "refresh_token": current }),
            )
            .await
        {
            Ok(r) if r.status == 200 => {
                // The presented token is spent; only the new one is kept.
                token = r.body["refresh_token"].as_str().map(str::to_owned);
                s.ok(t);
            }
            Ok(r) => s.error(r.key()),
            Err(k) => s.error(k),
        }
    }
    s
}

/// Raw ring ES256 verifications per second on one core (this thread).
pub fn ring_verify_rate(d: Duration) -> Result<f64, LoadgenError> {
    let population = Population {
        users: 1,
        devices_per_user: 1,
        seed: "calibration".into(),
    };
    let device = population.device(0)?;
    let proof = device.login_proof(crate::RP_ID, "nonce", &SystemRandom::new());
    let (input, sig) = proof
        .rsplit_once('.')
        .ok_or_else(|| LoadgenError::Setup("proof".into()))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|e| LoadgenError::Setup(e.to_string()))?;
    let key = UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        device.public_point().to_vec(),
    );
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < d {
        key.verify(input.as_bytes(), &sig)
            .map_err(|_| LoadgenError::Setup("calibration signature did not verify".into()))?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Raw argon2id hashes per second on `threads` threads, with the server's
/// own parameters (`HasherConfig::default()`: memory, iterations, lanes).
pub fn argon2_rate(d: Duration, threads: usize) -> Result<f64, LoadgenError> {
    let cfg = HasherConfig::default();
    let params = argon2::Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, Some(32))
        .map_err(|e| LoadgenError::Setup(format!("argon2 parameters: {e}")))?;
    let start = Instant::now();
    let total: Result<u64, LoadgenError> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let params = params.clone();
                scope.spawn(move || {
                    let argon = argon2::Argon2::new(
                        argon2::Algorithm::Argon2id,
                        argon2::Version::V0x13,
                        params,
                    );
                    let salt = [t as u8; 16];
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    // At least one hash each, however short `d`.
                    loop {
                        argon
                            .hash_password_into(b"calibration password", &salt, &mut out)
                            .map_err(|e| LoadgenError::Setup(format!("argon2: {e}")))?;
                        n += 1;
                        if start.elapsed() >= d {
                            return Ok(n);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| LoadgenError::Setup("argon2 thread panicked".into()))?
            })
            .sum()
    });
    Ok(total? as f64 / start.elapsed().as_secs_f64())
}

/// The goals (issue 14): device sign-ins ≥ 1/3 of the raw ring rate
/// on one core; password steps ≥ 90 % of argon2id on all cores; device p99
/// < 50 ms while passwords saturate argon2id.
pub const DEVICE_GOAL: f64 = 1.0 / 3.0;
pub const PASSWORD_GOAL: f64 = 0.9;
pub const MIXED_P99_GOAL_MS: f64 = 50.0;

impl Report {
    fn stream_lines(out: &mut String, label: &str, s: &Stream) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "  {label}: {} ok in {:.2} s = {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            s.ok_count(),
            s.elapsed.as_secs_f64(),
            s.rate(),
            s.ms(0.50),
            s.ms(0.99),
            s.ms(0.999),
            s.hist.max() as f64 / 1000.0
        );
        if s.errors.is_empty() {
            let _ = writeln!(out, "    errors: none");
        } else {
            let list: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            let _ = writeln!(out, "    errors: {}", list.join(", "));
        }
    }

    /// Measured stream rate against its goal's reference, if known.
    pub fn ratio(&self) -> Option<f64> {
        match self.mode {
            Mode::Device | Mode::Mixed => Some(self.main.rate() / self.ring_verify_per_s?),
            Mode::Password => Some(self.main.rate() / self.argon2_per_s?),
            Mode::Refresh => None,
        }
    }

    fn password_ratio(&self) -> Option<f64> {
        Some(self.passwords.as_ref()?.rate() / self.argon2_per_s?)
    }

    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let what = match self.mode {
            Mode::Device => "device sign-ins (challenge + ring-signed proof)",
            Mode::Password => "password steps (unknown users: a full argon2id each)",
            Mode::Refresh => "refresh-token rotations",
            Mode::Mixed => "device sign-ins while password tasks run",
        };
        let _ = writeln!(out, "loadgen --mode {}: {what}", self.mode.name());
        Self::stream_lines(&mut out, self.mode.name(), &self.main);
        if let Some(p) = &self.passwords {
            Self::stream_lines(&mut out, "password (beside)", p);
        }
        if let Some(r) = self.ring_verify_per_s {
            let _ = writeln!(out, "  raw ring P-256 verify, 1 core, same run: {r:.0}/s");
        }
        if let Some(a) = self.argon2_per_s {
            let _ = writeln!(
                out,
                "  raw argon2id (server parameters), {} cores, same run: {a:.1}/s",
                self.cores
            );
        }
        match (self.mode, self.ratio()) {
            (Mode::Device | Mode::Mixed, Some(r)) => {
                let _ = writeln!(
                    out,
                    "  device / ring-1-core = {r:.3} (goal ≥ {DEVICE_GOAL:.3}: {})",
                    verdict(r >= DEVICE_GOAL)
                );
            }
            (Mode::Password, Some(r)) => {
                let _ = writeln!(
                    out,
                    "  password / argon2id-all-cores = {r:.3} (goal ≥ {PASSWORD_GOAL}: {})",
                    verdict(r >= PASSWORD_GOAL)
                );
            }
            _ => {}
        }
        if self.mode == Mode::Mixed {
            let p99 = self.main.ms(0.99);
            let _ = writeln!(
                out,
                "  device p99 beside passwords = {p99:.2} ms (goal < {MIXED_P99_GOAL_MS} ms: {})",
                verdict(p99 < MIXED_P99_GOAL_MS)
            );
            if let Some(r) = self.password_ratio() {
                let _ = writeln!(
                    out,
                    "  password / argon2id-all-cores = {r:.3} (saturated when ≥ {PASSWORD_GOAL})"
                );
            }
        }
        if let Some(m) = self.memory_idle {
            let _ = writeln!(
                out,
                "  server memory before load: VmRSS {:.1} MB, VmHWM {:.1} MB",
                mb(m.rss_kb),
                mb(m.hwm_kb)
            );
        }
        if let (Some(peak), Some(m)) = (self.memory_peak_rss_kb, self.memory_after) {
            let _ = writeln!(
                out,
                "  server memory under load: VmRSS peak {:.1} MB (sampled), after {:.1} MB, VmHWM {:.1} MB (goal < 100 MB: {})",
                mb(peak),
                mb(m.rss_kb),
                mb(m.hwm_kb),
                verdict(m.hwm_kb as f64 / 1024.0 < 100.0)
            );
        }
        out
    }

    pub fn markdown_header() -> &'static str {
        "| mode | ok/s | p50 | p99 | p999 | max | errors | passwords beside | ring 1 core | argon2id all cores | ratio (goal) | server RSS idle / HWM |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    }

    /// One row of [`Report::markdown_header`]'s table.
    pub fn markdown_row(&self) -> String {
        let s = &self.main;
        let errors = if s.errors.is_empty() {
            "0".to_owned()
        } else {
            s.errors
                .iter()
                .map(|(k, v)| format!("{v} × {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let beside = match &self.passwords {
            Some(p) => format!("{:.1}/s ({} errors)", p.rate(), p.error_count()),
            None => "–".into(),
        };
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}/s"),
            None => "–".into(),
        };
        let ratio = match (self.mode, self.ratio()) {
            (Mode::Password, Some(r)) => format!("{r:.3} (≥ {PASSWORD_GOAL})"),
            (Mode::Mixed, Some(r)) => format!(
                "{r:.3} (≥ 0.333); p99 {} 50 ms; pwd {:.2}",
                if s.ms(0.99) < MIXED_P99_GOAL_MS {
                    "<"
                } else {
                    "≥"
                },
                self.password_ratio().unwrap_or(0.0)
            ),
            (_, Some(r)) => format!("{r:.3} (≥ 0.333)"),
            (_, None) => "–".into(),
        };
        let memory = match (self.memory_idle, self.memory_after) {
            (Some(i), Some(a)) => format!("{:.1} / {:.1} MB", mb(i.rss_kb), mb(a.hwm_kb)),
            _ => "–".into(),
        };
        format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {errors} | {beside} | {} | {} | {ratio} | {memory} |",
            self.mode.name(),
            s.rate(),
            s.ms(0.50),
            s.ms(0.99),
            s.ms(0.999),
            s.hist.max() as f64 / 1000.0,
            opt(self.ring_verify_per_s, 0),
            opt(self.argon2_per_s, 1),
        )
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}
