//! Every secret the server makes or checks: ids and tokens from the OS CSPRNG,
//! token hashes, OTP codes and their HMACs, and argon2id on a bounded pool.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// A string that must never be printed: passwords, codes, tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS CSPRNG failing leaves nothing safe to do.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random number generator failed");
    buf
}

/// A 128-bit identifier, base64url (22 characters).
pub fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A 128-bit identifier, base64url (22 characters), that clusters by
/// creation: 48 bits of milliseconds since 1970, then 80 random bits, so ids
/// made within the same few milliseconds share their first characters. For
/// the keys of rows written at a high rate (sessions): the ids of one group
/// commit land on the same B-tree page of every index keyed by them (the
/// session's own, the tokens' by session), so the commit writes one page
/// there instead of one per sign-in (issue 14). Not a secret: the time it
/// carries is the row's `created_at`. A clock that steps back only costs
/// that locality.
pub fn new_time_ordered_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    id[6..].copy_from_slice(&random_bytes::<10>());
    URL_SAFE_NO_PAD.encode(id)
}

/// 32 random bytes, base64url: device challenges.
pub fn new_challenge() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A 256-bit bearer token with a readable prefix so leaked tokens are easy to
/// recognise in scanners (`dta_` access, `dtr_` refresh).
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// How tokens are stored: SHA-256 suffices for 256-bit random values.
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A key used for HMACs of OTP codes, loaded or created by storage.
pub struct OtpKey(hmac::Key);

impl OtpKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        OtpKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    pub fn generate_bytes() -> Vec<u8> {
        random_bytes::<32>().to_vec()
    }

    /// Six digits, uniform (rejection sampling avoids modulo bias).
    pub fn new_code() -> String {
        loop {
            let n = u32::from_le_bytes(random_bytes::<4>());
            // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
            if n < 4_294_000_000 {
                return format!("{:06}", n % 1_000_000);
            }
        }
    }

    /// The HMAC binds the code to its login so a stolen table row cannot be
    /// replayed against another login.
    pub fn mac(&self, login_id: &str, code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(login_id.as_bytes());
        ctx.update(b"\0");
        ctx.update(code.as_bytes());
        ctx.sign().as_ref().to_vec()
    }
}

/// argon2id with the OWASP parameters, run on a bounded pool of dedicated
/// threads at a lower scheduling priority (nice [`HASH_NICE`]): by default
/// the pool has a thread per core so idle cores are used for hashing, while
/// device sign-ins, on normal-priority threads, preempt it. A flood of
/// password attempts queues here and is turned away once the queue is full.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    params: Params,
    /// Hashes computed at once; a permit travels with its blocking job, so a
    /// request whose client went away still holds its slot until the hash is
    /// done and cannot make room for more concurrent hashing than configured.
    permits: Arc<Semaphore>,
    /// Places in the queue (waiting or computing). A permit is returned when
    /// it is dropped, on every path: an answer, an error, or a client that
    /// disconnected while waiting (its future is dropped).
    queue: Arc<Semaphore>,
    queue_size: usize,
    dummy_hash: String,
    /// Working memory of the hashes in flight, kept for the next ones.
    blocks: BlockPool,
    /// Where the time spent waiting for a slot is reported (metrics).
    waits: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
    /// Feeds the hashing threads; dropping it (with the last `Hasher`) ends them.
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The nice value of the hashing threads: below normal work, so a device
/// sign-in is never queued behind a password hash on the same core.
pub const HASH_NICE: i32 = 10;

/// Starts `n` hashing threads taking jobs from one queue. At most `n` jobs
/// are ever queued (the permits), so each finds a free thread at once.
fn start_pool(n: usize) -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while taking a job, not running it.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panicking job must not shrink the pool; its
                        // caller sees the dropped answer as an internal error.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                }
            })?;
    }
    Ok(tx)
}

/// Lowers the calling thread's priority to [`HASH_NICE`] (never raises it:
/// a process started under `nice 15` stays there). On Linux a nice value is
/// per thread, so this leaves the runtime's threads alone.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id, no memory shared.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        let target = if *libc::__errno_location() == 0 {
            now.max(HASH_NICE)
        } else {
            HASH_NICE
        };
        if libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0 {
            tracing::warn!("could not lower the priority of a password-hashing thread");
        }
    }
}

/// The calling thread's nice value (Linux; for tests).
#[cfg(all(test, target_os = "linux"))]
fn current_nice() -> i32 {
    // SAFETY: as in `lower_priority`.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

/// Settings for the hashing pool.
#[derive(Debug, Clone, Copy)]
pub struct HasherConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once.
    pub concurrency: usize,
    /// Requests allowed to wait for a slot before `rate_limited`.
    pub max_waiting: usize,
}

impl Default for HasherConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        HasherConfig {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            // Every core: the hashing threads run at a lower priority, so
            // device sign-ins still get a core when they need one.
            concurrency: cores.max(1),
            max_waiting: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 parameters rejected: {0}")]
    Params(String),
    #[error("could not start the password-hashing threads: {0}")]
    Threads(String),
}

impl Hasher {
    pub fn new(cfg: HasherConfig) -> Result<Self, HashError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let concurrency = cfg.concurrency.max(1);
        let queue_size = cfg.max_waiting + concurrency;
        let mut hasher = HasherInner {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            queue: Arc::new(Semaphore::new(queue_size)),
            queue_size,
            dummy_hash: String::new(),
            blocks: BlockPool::default(),
            waits: std::sync::OnceLock::new(),
            jobs: start_pool(concurrency).map_err(|e| HashError::Threads(e.to_string()))?,
        };
        // A real hash of a random secret: verifying against it costs what a
        // real user's verification costs, so unknown users cannot be timed.
        hasher.dummy_hash = hash_blocking(&hasher.params, &new_token(""))
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Hasher {
            inner: Arc::new(hasher),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Params) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let inner = self.inner.clone();
        // RAII: whatever happens to this future, the place is given back.
        let place = inner
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::RateLimited { retry_after_s: 1 })?;
        let waited = std::time::Instant::now();
        let permit = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal)?;
        if let Some(h) = inner.waits.get() {
            h.observe(waited.elapsed().as_secs_f64());
        }
        let params = inner.params.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        inner
            .jobs
            .send(Box::new(move || {
                let held = (place, permit);
                let out = job(&params);
                // The slot is free before the caller hears the answer (and
                // on a panic, `held` unwinds before `tx`).
                drop(held);
                let _ = tx.send(out);
            }))
            .map_err(|_| ApiError::Internal)?;
        // A job that panicked drops `tx`: an internal error, not a hang.
        rx.await.map_err(|_| ApiError::Internal)
    }

    /// Reports each hash's wait for a slot to `histogram` (the first one
    /// given; a hasher shared by several states reports to the first).
    pub fn report_waits(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.inner.waits.set(histogram);
    }

    /// Requests waiting for or computing a hash now (for tests and metrics).
    pub fn queued(&self) -> usize {
        self.inner.queue_size - self.inner.queue.available_permits()
    }

    /// Hashes a new secret (PHC string).
    pub async fn hash(&self, secret: &Secret) -> Result<String, ApiError> {
        let secret = secret.clone();
        let blocks = self.inner.blocks.clone();
        self.run(move |params| hash_pooled(&blocks, params, secret.expose()))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "argon2 hashing failed");
                ApiError::Internal
            })
    }

    /// Verifies `secret` against `stored`, or against the dummy hash when
    /// there is no stored hash, so both paths take the same time.
    pub async fn verify(&self, stored: Option<String>, secret: &Secret) -> Result<bool, ApiError> {
        let secret = secret.clone();
        let exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let blocks = self.inner.blocks.clone();
        let ok = self
            .run(move |params| verify_pooled(&blocks, params, &phc, secret.expose()))
            .await?;
        Ok(exists && ok)
    }

    /// Synchronous hashing for the operator CLI.
    pub fn hash_now(&self, secret: &Secret) -> Result<String, HashError> {
        hash_blocking(&self.inner.params, secret.expose())
            .map_err(|e| HashError::Params(e.to_string()))
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, secret: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())?;
    Ok(argon(params)
        .hash_password(secret.as_bytes(), &salt)?
        .to_string())
}

/// argon2id's working memory (m KiB in 1 KiB blocks: 19 MiB), kept for
/// reuse. Allocating it afresh for every hash made glibc's malloc, whose
/// mmap threshold rises to the largest block freed, keep freed 19 MiB
/// blocks in its heaps: 1.3 to 2.7 GB of RSS after a few hundred password
/// attempts (docs/PERFORMANCE.md, issue 14). The pool holds at most one
/// buffer per hash computed at once (the pool's permits bound those).
#[derive(Clone, Default)]
struct BlockPool(Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>);

impl BlockPool {
    /// Runs `f` on `count` blocks from the pool (or new ones), and keeps
    /// them for the next hash. Their contents are overwritten by each hash.
    fn with<T>(&self, count: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
        let taken = {
            let mut free = self.0.lock().unwrap_or_else(|p| p.into_inner());
            free.iter()
                .position(|b| b.len() == count)
                .map(|i| free.swap_remove(i))
        };
        let mut blocks = taken.unwrap_or_else(|| vec![argon2::Block::default(); count]);
        let out = f(&mut blocks);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(blocks);
        out
    }
}

/// `hash_blocking` on pooled memory: the same PHC string.
fn hash_pooled(
    pool: &BlockPool,
    params: &Params,
    secret: &str,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    pool.with(params.block_count(), |blocks| {
        argon(params).hash_password_into_with_memory(
            secret.as_bytes(),
            salt_bytes,
            &mut out,
            blocks,
        )
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out)?),
    }
    .to_string())
}

/// `verify_blocking` on pooled memory: the algorithm, version, parameters,
/// salt and output length all come from the PHC string, as argon2's own
/// verifier takes them; the outputs are compared in constant time.
fn verify_pooled(pool: &BlockPool, params: &Params, phc: &str, secret: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(stored) = Params::try_from(&parsed) else {
        return false;
    };
    // Hashes made with other parameters (before a cost change) take
    // argon2's own path; only the configured size is pooled.
    if stored.block_count() != params.block_count() {
        return verify_blocking(params, phc, secret);
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = pool.with(stored.block_count(), |blocks| {
        Argon2::new(algorithm, version, stored.clone())
            .hash_password_into_with_memory(secret.as_bytes(), salt_bytes, &mut out, blocks)
            .is_ok()
    });
    computed && ct_eq(&out, expected.as_bytes())
}

fn verify_blocking(params: &Params, phc: &str, secret: &str) -> bool {
    match PasswordHash::new(phc) {
        // The parameters stored in the PHC string win, so raising the cost
        // later still verifies old hashes.
        Ok(parsed) => argon(params)
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_carry_the_time_and_80_random_bits() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let (a, b) = (new_time_ordered_id(), new_time_ordered_id());
        assert_eq!((a.len(), b.len()), (22, 22));
        assert_ne!(a, b);
        let decode = |id: &str| URL_SAFE_NO_PAD.decode(id).unwrap();
        let (da, db) = (decode(&a), decode(&b));
        let ms = |d: &[u8]| {
            let mut be = [0u8; 8];
            be[2..].copy_from_slice(&d[..6]);
            u64::from_be_bytes(be)
        };
        assert!(
            ms(&da) >= before && ms(&da) < before + 60_000,
            "{}",
            ms(&da)
        );
        assert!(ms(&db) >= ms(&da));
        // Made a moment apart: the same leading characters (36 bits of
        // milliseconds: unless a 4-second boundary fell between), different tails.
        if ms(&da) >> 12 == ms(&db) >> 12 {
            assert_eq!(a[..6], b[..6]);
        }
        assert_ne!(da[6..], db[6..]);
    }

    #[test]
    fn the_pool_defaults_to_every_core() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(HasherConfig::default().concurrency, cores);
    }

    /// The hashing runs on threads below normal priority, and only there:
    /// the caller's own priority is untouched.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let hasher = Hasher::new(HasherConfig {
            memory_kib: 64,
            iterations: 1,
            concurrency: 2,
            ..HasherConfig::default()
        })
        .unwrap();
        let caller = current_nice();
        let (name, nice) = hasher
            .run(|_| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, current_nice())
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("argon2-"));
        assert_eq!(nice, caller.max(HASH_NICE));
        assert_eq!(current_nice(), caller);
    }

    /// A job that panics answers `Internal` and leaves the pool whole.
    #[tokio::test]
    async fn a_panicking_job_does_not_shrink_the_pool() {
        let hasher = Hasher::new(HasherConfig {
            memory_kib: 64,
            iterations: 1,
            concurrency: 1,
            ..HasherConfig::default()
        })
        .unwrap();
        let failed = hasher.run(|_| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(ApiError::Internal)));
        assert_eq!(hasher.run(|_| 7u8).await.unwrap(), 7);
        assert_eq!(hasher.queued(), 0);
    }

    #[test]
    fn ids_and_tokens_carry_enough_entropy() {
        assert_eq!(URL_SAFE_NO_PAD.decode(new_id()).unwrap().len(), 16);
        assert_eq!(URL_SAFE_NO_PAD.decode(new_challenge()).unwrap().len(), 32);
        let t = new_token("dta_");
        assert_eq!(URL_SAFE_NO_PAD.decode(&t[4..]).unwrap().len(), 32);
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn otp_codes_are_six_digits_and_macs_bind_the_login() {
        for _ in 0..200 {
            let c = OtpKey::new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let key = OtpKey::from_bytes(&OtpKey::generate_bytes());
        assert_eq!(key.mac("a", "123456"), key.mac("a", "123456"));
        assert_ne!(key.mac("a", "123456"), key.mac("b", "123456"));
        assert_ne!(key.mac("a", "123456"), key.mac("a", "123457"));
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    /// Hole: a waiter whose client vanished was never counted out, and
    /// enough of them turned every later password away with 429.
    #[tokio::test]
    async fn dropped_waiters_give_their_place_back() {
        let hasher = Hasher::new(HasherConfig {
            concurrency: 1,
            max_waiting: 8,
            ..HasherConfig::default()
        })
        .unwrap();
        for _round in 0..50 {
            let mut waiting = Vec::new();
            for _ in 0..9 {
                let h = hasher.clone();
                waiting.push(tokio::spawn(async move {
                    h.verify(None, &Secret::new("guess")).await
                }));
            }
            tokio::task::yield_now().await;
            // The clients go away while their requests wait.
            for task in &waiting {
                task.abort();
            }
            for task in waiting {
                let _ = task.await;
            }
        }
        // Jobs already computing finish; then every place is free again.
        for _ in 0..200 {
            if hasher.queued() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(hasher.queued(), 0);
        assert!(hasher.verify(None, &Secret::new("x")).await.is_ok());
    }

    /// The pooled paths are argon2's own, bit for bit: what one makes the
    /// other verifies, and neither accepts another password.
    #[test]
    fn pooled_hashing_agrees_with_argon2s_own() {
        let params = Params::new(256, 2, 1, None).unwrap();
        let pool = BlockPool::default();
        for round in 0..3 {
            let pw = format!("password {round}");
            let own = hash_blocking(&params, &pw).unwrap();
            let pooled = hash_pooled(&pool, &params, &pw).unwrap();
            assert!(pooled.starts_with("$argon2id$v=19$m=256,t=2,p=1$"));
            assert!(verify_blocking(&params, &pooled, &pw));
            assert!(verify_pooled(&pool, &params, &own, &pw));
            assert!(verify_pooled(&pool, &params, &pooled, &pw));
            assert!(!verify_pooled(&pool, &params, &own, "not it"));
            assert!(!verify_blocking(&params, &pooled, "not it"));
        }
        // A hash with other parameters still verifies (argon2's own path).
        let older = hash_blocking(&Params::new(128, 1, 1, None).unwrap(), "old").unwrap();
        assert!(verify_pooled(&pool, &params, &older, "old"));
        assert!(!verify_pooled(&pool, &params, &older, "new"));
        // Garbage is refused, never a panic.
        for bad in [
            "",
            "$argon2id$",
            "$argon2i$v=19$m=256,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            assert!(!verify_pooled(&pool, &params, bad, "x"), "{bad}");
        }
        // One buffer reused throughout: the pool never grew past it.
        assert_eq!(pool.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn argon2id_round_trip_and_dummy_path() {
        let hasher = Hasher::new(HasherConfig::default()).unwrap();
        let pw = Secret::new("correct horse");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(Some(phc.clone()), &pw).await.unwrap());
        assert!(!hasher
            .verify(Some(phc), &Secret::new("wrong"))
            .await
            .unwrap());
        assert!(!hasher.verify(None, &pw).await.unwrap());
    }
}
