//! The embedded SQLite backend: rusqlite (bundled), WAL, a small r2d2 pool,
//! calls on tokio's blocking pool (point reads by key inline), versioned migrations.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use super::group_commit::Step;
use super::*;

/// No attempt takes longer than this from its count to its verdict (the
/// hashing queue holds at most a few seconds of work); a count at the
/// threshold older than this belongs to attempts that never finished.
const IN_FLIGHT_S: i64 = 60;

/// Connections in the pool: SQLite has one writer at a time, so more would
/// only add contention; readers run beside the writer under WAL.
const POOL_SIZE: u32 = 8;

/// Rows the purge job deletes per transaction: small enough that a sign-in
/// waiting for the writer waits milliseconds, not the whole purge.
const PURGE_CHUNK: i64 = 1_000;

/// Statements the writer connection keeps prepared (rusqlite's default is
/// 16; a device sign-in's batch alone runs a dozen distinct ones).
const WRITER_STATEMENTS: usize = 128;

/// Connections for point reads on the runtime's threads: one per worker
/// thread of a large machine is plenty (a read holds one for microseconds).
const INLINE_POOL_SIZE: u32 = 4;

/// Versioned schema. Append new migrations; never edit one that has shipped.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_initial.sql")),
        M::up(include_str!("migrations/0002_hardening.sql")),
        M::up(include_str!("migrations/0003_review.sql")),
        M::up(include_str!("migrations/0004_accounts.sql")),
        M::up(include_str!("migrations/0005_risk.sql")),
        M::up(include_str!("migrations/0006_attestation.sql")),
        M::up(include_str!("migrations/0007_login_network.sql")),
        M::up(include_str!("migrations/0008_console.sql")),
        M::up(include_str!("migrations/0009_used_challenges.sql")),
        M::up(include_str!("migrations/0010_token_indexes.sql")),
    ])
}

/// The `user_version` a fully migrated database has: learnt once by
/// migrating an empty in-memory database, so it cannot drift from the list.
fn latest_version() -> Result<i64, StorageError> {
    static LATEST: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    if let Some(v) = LATEST.get() {
        return Ok(*v);
    }
    let mut conn = Connection::open_in_memory()?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|e| StorageError::Migration(e.to_string()))?;
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(*LATEST.get_or_init(|| v))
}

pub struct SqliteStore {
    /// Readers run concurrently under WAL.
    readers: Pool<SqliteConnectionManager>,
    /// SQLite admits one writer at a time; queueing writers on a mutex here
    /// is fairer and faster than letting them spin in SQLite's busy handler.
    writer: Arc<Mutex<Connection>>,
    /// Device sign-ins' redemptions, batched into shared commits.
    group: super::group_commit::GroupCommit,
    /// Connections for point reads run on the caller's thread
    /// ([`SqliteStore::point_read`]): they never wait on a lock.
    inline: Pool<SqliteConnectionManager>,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(err, _)
                if err.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StorageError::Conflict
            }
            other => StorageError::Database(other.to_string()),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &str) -> Result<Self, StorageError> {
        if path.is_empty() {
            return Err(StorageError::UnsupportedUrl(
                "sqlite:// needs a path, e.g. sqlite://devicetrust.db".into(),
            ));
        }
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| StorageError::Task(e.to_string()))?
    }

    fn open_blocking(path: &str) -> Result<Self, StorageError> {
        // The database holds personal data and hashes: owner-only. SQLite
        // gives its -wal and -shm files the database file's mode.
        if path != ":memory:" {
            let p = std::path::Path::new(path);
            crate::private_files::ensure_private(p)
                .map_err(|e| StorageError::Database(format!("{path}: {e}")))?;
            for suffix in ["-wal", "-shm"] {
                let mut side = p.as_os_str().to_owned();
                side.push(suffix);
                crate::private_files::narrow(std::path::Path::new(&side))
                    .map_err(|e| StorageError::Database(format!("{path}{suffix}: {e}")))?;
            }
        }
        // Journal mode and schema are set up once, on one connection, before
        // the pool opens its connections concurrently.
        {
            let mut conn = Connection::open(path)?;
            conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")?;
            migrations()
                .to_latest(&mut conn)
                .map_err(|e| StorageError::Migration(e.to_string()))?;
        }
        // FULL sync: a bank does not lose a committed device or revocation
        // on power loss. WAL lets readers run beside the writer.
        const INIT: &str = "PRAGMA busy_timeout = 10000;
                            PRAGMA synchronous = FULL;
                            PRAGMA foreign_keys = ON;";
        let manager = SqliteConnectionManager::file(path).with_init(|c| c.execute_batch(INIT));
        let readers = Pool::builder()
            .max_size(POOL_SIZE)
            .build(manager)
            .map_err(|e| StorageError::Pool(e.to_string()))?;
        // busy_timeout 0: a point read that meets a lock (rare under WAL:
        // a checkpoint resetting the log, a recovery) gives way to the pool
        // at once instead of sleeping on a runtime thread.
        let inline = Pool::builder()
            .max_size(INLINE_POOL_SIZE)
            // A local file connection does not go stale; a check per
            // checkout would cost a statement per read.
            .test_on_check_out(false)
            .build(SqliteConnectionManager::file(path).with_init(|c| {
                c.execute_batch("PRAGMA busy_timeout = 0; PRAGMA foreign_keys = ON;")
            }))
            .map_err(|e| StorageError::Pool(e.to_string()))?;
        let writer = Connection::open(path)?;
        writer.execute_batch(INIT)?;
        // A group commit runs each sign-in in a SAVEPOINT; the savepoints'
        // journal (the pages' old contents) stays in memory instead of
        // spilling past 64 KiB into a temporary file created, written and
        // unlinked for most batches (issue 14's trace: one per ~4 sign-ins).
        writer.execute_batch("PRAGMA temp_store = MEMORY;")?;
        // Room for every statement a write runs, so that none is parsed again.
        writer.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let writer = Arc::new(Mutex::new(writer));
        Ok(SqliteStore {
            inline,
            readers,
            group: super::group_commit::GroupCommit::start(writer.clone())?,
            writer,
        })
    }

    /// A read, on a pooled connection, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| StorageError::Pool(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }

    /// A point read by key (a device, a risk profile, a session) on the
    /// caller's own thread. Such a read is a few B-tree pages, almost always
    /// in SQLite's or the OS's cache: microseconds of CPU, like the
    /// signature check the same request does inline, and far less than the
    /// two thread hand-offs of `spawn_blocking` (issue 14's profile: ~24
    /// futex calls per device sign-in). It never waits: with no idle inline
    /// connection, or when SQLite reports a lock, it runs on the pool
    /// instead. Only for statements that read a handful of rows by key.
    async fn point_read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    {
        if let Some(conn) = self.inline.try_get() {
            match f(&conn) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) => {}
                done => return Ok(done?),
            }
        }
        self.read(move |c| Ok(f(c)?)).await
    }

    /// Runs `chunk` in one writer transaction after another until it looks
    /// at fewer than PURGE_CHUNK rows; `chunk` answers (rows it looked at,
    /// rows it deleted), and returns the rows deleted in all.
    async fn purge_in_chunks<F>(&self, chunk: F) -> Result<u64, StorageError>
    where
        F: Fn(&Connection) -> Result<(usize, usize), StorageError> + Clone + Send + 'static,
    {
        let mut deleted = 0u64;
        loop {
            let chunk = chunk.clone();
            let (seen, done) = self
                .run(move |c| {
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let counts = chunk(&tx)?;
                    tx.commit()?;
                    Ok(counts)
                })
                .await?;
            deleted += done as u64;
            if seen < PURGE_CHUNK as usize {
                return Ok(deleted);
            }
        }
    }

    /// A write, on the single writer connection, off the async runtime.
    async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            // After a panic under the lock the connection is still sound:
            // an unfinished transaction rolls back when it is dropped.
            let mut conn = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        user_id: r.get("user_id")?,
        name: r.get("name")?,
        email: r.get("email")?,
        mobile: r.get("mobile")?,
        primary_market: r.get("primary_market")?,
        password_hash: r.get("password_hash")?,
        security_code_hash: r.get("security_code_hash")?,
        enrolled_at: r.get("enrolled_at")?,
        created_at: r.get("created_at")?,
        mobile_verified: r.get("mobile_verified")?,
    })
}

fn login_from_row(r: &Row<'_>) -> rusqlite::Result<Login> {
    let stage: String = r.get("stage")?;
    let amr: String = r.get("amr")?;
    Ok(Login {
        login_id: r.get("login_id")?,
        user_id: r.get("user_id")?,
        device_id: r.get("device_id")?,
        stage: LoginStage::parse(&stage).unwrap_or(LoginStage::SecondFactor),
        amr: split_amr(&amr),
        expires_at: r.get("expires_at")?,
        otp_sends: r.get("otp_sends")?,
        last_send_at: r.get("last_send_at")?,
        created_at: r.get("created_at")?,
        pending_mobile: r.get("pending_mobile")?,
        change_email: r.get("change_email")?,
        change_mobile: r.get("change_mobile")?,
        network: r.get("network")?,
    })
}

fn insert_audit(c: &Connection, e: &AuditEvent) -> Result<(), StorageError> {
    c.prepare_cached(
        "INSERT INTO audit (at, event, user_id, device_id, ip, reason, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.at,
        e.event,
        e.user_id,
        e.device_id,
        e.ip,
        e.reason,
        e.actor
    ])?;
    Ok(())
}

/// Stores `w.new` if the user's document is still `w.expected`; false if
/// another write came first (the caller then applies its change again).
fn swap_risk_profile(tx: &Connection, w: &RiskWrite, now: i64) -> Result<bool, StorageError> {
    let n = match &w.expected {
        Some(expected) => tx
            .prepare_cached(
                "UPDATE risk_profiles SET profile = ?2, updated_at = ?4
             WHERE user_id = ?1 AND profile = ?3",
            )?
            .execute(params![w.user_id, w.new, expected, now])?,
        None => tx
            .prepare_cached(
                "INSERT INTO risk_profiles (user_id, profile, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO NOTHING",
            )?
            .execute(params![w.user_id, w.new, now])?,
    };
    Ok(n == 1)
}

fn challenge_from_row(r: &Row<'_>) -> rusqlite::Result<Challenge> {
    Ok(Challenge {
        challenge_id: r.get("challenge_id")?,
        device_id: r.get("device_id")?,
        challenge: r.get("challenge")?,
        login_id: r.get("login_id")?,
        expires_at: r.get("expires_at")?,
    })
}

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: r.get("device_id")?,
        user_id: r.get("user_id")?,
        name: r.get("name")?,
        platform: r.get("platform")?,
        key_storage: r.get("key_storage")?,
        user_verification: r.get("user_verification")?,
        public_key: r.get("public_key")?,
        created_at: r.get("created_at")?,
        last_used_at: r.get("last_used_at")?,
        trusted_until: r.get("trusted_until")?,
        removed_at: r.get("removed_at")?,
        registered_by: r.get("registered_by")?,
        attestation: match (
            r.get::<_, Option<String>>("attestation_format")?,
            r.get::<_, Option<String>>("attestation_level")?,
            r.get::<_, Option<i64>>("attestation_verified_at")?,
        ) {
            (Some(format), Some(security_level), Some(verified_at)) => Some(DeviceAttestation {
                format,
                security_level,
                verified_at,
            }),
            _ => None,
        },
    })
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        at: r.get("at")?,
        event: r.get("event")?,
        user_id: r.get("user_id")?,
        device_id: r.get("device_id")?,
        ip: r.get("ip")?,
        reason: r.get("reason")?,
        actor: r.get("actor")?,
    })
}

fn operator_from_row(r: &Row<'_>) -> rusqlite::Result<Operator> {
    Ok(Operator {
        name: r.get("name")?,
        role: r.get("role")?,
        password_hash: r.get("password_hash")?,
        totp_sealed: r.get("totp_sealed")?,
        totp_enrolled: r.get("totp_enrolled")?,
        totp_last_step: r.get("totp_last_step")?,
        disabled_at: r.get("disabled_at")?,
        created_at: r.get("created_at")?,
        enrolment_code_hash: r.get("enrolment_code_hash")?,
        enrolment_expires_at: r.get("enrolment_expires_at")?,
    })
}

fn console_session_from_row(r: &Row<'_>) -> rusqlite::Result<ConsoleSession> {
    Ok(ConsoleSession {
        session_hash: r.get("session_hash")?,
        operator: r.get("operator")?,
        stage: r.get("stage")?,
        created_at: r.get("created_at")?,
        last_seen_at: r.get("last_seen_at")?,
        expires_at: r.get("expires_at")?,
    })
}

fn card_from_row(r: &Row<'_>) -> rusqlite::Result<Card> {
    Ok(Card {
        card_ref: r.get("card_ref")?,
        number_hash: r.get("number_hash")?,
        card_id_hash: r.get("card_id_hash")?,
        last4: r.get("last4")?,
        name: r.get("name")?,
        email: r.get("email")?,
        mobile: r.get("mobile")?,
        primary_market: r.get("primary_market")?,
        activated_at: r.get("activated_at")?,
        created_at: r.get("created_at")?,
        user_id: r.get("user_id")?,
        linked_at: r.get("linked_at")?,
    })
}

fn insert_user(conn: &Connection, u: &User) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO users (user_id, name, email, mobile, primary_market, password_hash,
                            security_code_hash, enrolled_at, created_at, mobile_verified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u.user_id,
            u.name,
            u.email,
            u.mobile,
            u.primary_market,
            u.password_hash,
            u.security_code_hash,
            u.enrolled_at,
            u.created_at,
            u.mobile_verified
        ],
    )?;
    Ok(())
}

fn user_in(conn: &Connection, user_id: &str) -> Result<Option<User>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT * FROM users WHERE user_id = ?1",
            params![user_id],
            user_from_row,
        )
        .optional()?)
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    let amr: String = r.get("amr")?;
    Ok(SessionRecord {
        session_id: r.get("session_id")?,
        user_id: r.get("user_id")?,
        device_id: r.get("device_id")?,
        amr: split_amr(&amr),
        auth_time: r.get("auth_time")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

const LOGIN_COLS: &str = "login_id, user_id, device_id, stage, amr, expires_at, otp_sends, \
                          last_send_at, created_at, pending_mobile, change_email, change_mobile, \
                          network";
const SESSION_COLS: &str =
    "s.session_id, s.user_id, s.device_id, s.amr, s.auth_time, s.created_at, s.expires_at";

fn insert_login(conn: &Connection, l: &Login) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO logins (login_id, user_id, device_id, stage, amr, expires_at,
                             otp_sends, last_send_at, created_at, pending_mobile,
                             change_email, change_mobile, network)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            l.login_id,
            l.user_id,
            l.device_id,
            l.stage.as_str(),
            join_amr(&l.amr),
            l.expires_at,
            l.otp_sends,
            l.last_send_at,
            l.created_at,
            l.pending_mobile,
            l.change_email,
            l.change_mobile,
            l.network
        ],
    )?;
    Ok(())
}

/// A session and its first tokens. A device removed meanwhile is not bound
/// to the session: its removal has already revoked what it opened.
fn insert_session(
    conn: &Connection,
    s: &SessionRecord,
    tokens: &TokenPair,
) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO sessions (session_id, user_id, device_id, amr, auth_time, created_at,
                               expires_at)
         VALUES (?1, ?2,
                 (SELECT device_id FROM devices WHERE device_id = ?3 AND removed_at IS NULL),
                 ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        s.session_id,
        s.user_id,
        s.device_id,
        join_amr(&s.amr),
        s.auth_time,
        s.created_at,
        s.expires_at
    ])?;
    insert_tokens(conn, &s.session_id, tokens)
}

fn insert_tokens(
    conn: &Connection,
    session_id: &str,
    tokens: &TokenPair,
) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        tokens.access_hash,
        session_id,
        tokens.access_expires_at
    ])?;
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        tokens.refresh_hash,
        session_id,
        tokens.refresh_expires_at
    ])?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StorageError> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }

    async fn migrations_pending(&self) -> Result<bool, StorageError> {
        // rusqlite_migration keeps the applied count in `user_version`.
        let latest = latest_version()?;
        self.read(move |c| {
            let applied: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok(applied < latest)
        })
        .await
    }

    async fn take_legacy_secret(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.run(|c| {
            Ok(c.query_row(
                "DELETE FROM server_secrets WHERE name = 'otp_hmac_key' RETURNING value",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn server_key_check(&self, check: &[u8]) -> Result<bool, StorageError> {
        let check = check.to_vec();
        self.run(move |c| {
            c.execute(
                "INSERT INTO server_secrets (name, value) VALUES ('key_check', ?1)
                 ON CONFLICT (name) DO NOTHING",
                params![check],
            )?;
            let kept: Vec<u8> = c.query_row(
                "SELECT value FROM server_secrets WHERE name = 'key_check'",
                [],
                |r| r.get(0),
            )?;
            // Compared once at start, not by any request: no timing to hide.
            Ok(kept == check)
        })
        .await
    }

    async fn create_user(&self, u: User) -> Result<(), StorageError> {
        self.run(move |c| insert_user(c, &u)).await
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StorageError> {
        let user_id = user_id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached("SELECT * FROM users WHERE user_id = ?1")?
                .query_row(params![user_id], user_from_row)
                .optional()
        })
        .await
    }

    async fn set_market(&self, market: &str, second_factor: bool) -> Result<(), StorageError> {
        let market = market.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO markets (market, second_factor) VALUES (?1, ?2)
                 ON CONFLICT (market) DO UPDATE SET second_factor = excluded.second_factor",
                params![market, if second_factor { "required" } else { "off" }],
            )?;
            Ok(())
        })
        .await
    }

    async fn market_requires_second_factor(&self, market: &str) -> Result<bool, StorageError> {
        let market = market.to_owned();
        self.read(move |c| {
            let setting: Option<String> = c
                .query_row(
                    "SELECT second_factor FROM markets WHERE market = ?1",
                    params![market],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(setting.as_deref() != Some("off"))
        })
        .await
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: i64,
        policy: LockoutPolicy,
    ) -> Result<Reservation, StorageError> {
        let key = key.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, Option<i64>, i64)> = tx
                .query_row(
                    "SELECT count, locked_until, updated_at FROM attempts WHERE user_key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let mut count = 0;
            if let Some((n, locked_until, updated_at)) = row {
                match locked_until {
                    Some(until) if until > now => return Ok(Reservation::Locked { until }),
                    // A lock that ran out starts the count afresh.
                    Some(_) => {}
                    None => {
                        let stale = updated_at + policy.memory_s <= now;
                        if stale {
                            // Forgotten: start afresh.
                        } else if n < policy.threshold {
                            count = n;
                        } else if now < updated_at + IN_FLIGHT_S {
                            // Attempts still being evaluated use up the
                            // allowance; their verdict decides the lock.
                            return Ok(Reservation::InFlight);
                        } else if updated_at + policy.duration_s > now {
                            // They never finished (the server stopped
                            // between counting and the verdict): count them
                            // as the failures they may have been, as a real
                            // lock with a true end.
                            let until = updated_at + policy.duration_s;
                            tx.execute(
                                "UPDATE attempts SET locked_until = ?2 WHERE user_key = ?1",
                                params![key, until],
                            )?;
                            tx.commit()?;
                            return Ok(Reservation::Locked { until });
                        }
                    }
                }
            }
            count += 1;
            tx.execute(
                "INSERT INTO attempts (user_key, count, locked_until, updated_at)
                 VALUES (?1, ?2, NULL, ?3)
                 ON CONFLICT (user_key) DO UPDATE SET
                   count = excluded.count, locked_until = NULL, updated_at = excluded.updated_at",
                params![key, count, now],
            )?;
            tx.commit()?;
            Ok(Reservation::Counted(count))
        })
        .await
    }

    async fn refund_attempt(&self, key: &str) -> Result<(), StorageError> {
        let key = key.to_owned();
        self.run(move |c| {
            // A row taken back to zero is deleted: ids sprayed while the
            // hashing queue was full leave nothing behind.
            c.execute(
                "DELETE FROM attempts WHERE user_key = ?1 AND locked_until IS NULL AND count <= 1",
                params![key],
            )?;
            c.execute(
                "UPDATE attempts SET count = count - 1
                 WHERE user_key = ?1 AND locked_until IS NULL AND count > 1",
                params![key],
            )?;
            Ok(())
        })
        .await
    }

    async fn lock(&self, key: &str, until: i64) -> Result<(), StorageError> {
        let key = key.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE attempts SET locked_until = ?2 WHERE user_key = ?1",
                params![key, until],
            )?;
            Ok(())
        })
        .await
    }

    async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StorageError> {
        let key = key.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT locked_until FROM attempts WHERE user_key = ?1 AND locked_until > ?2",
                params![key, now],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn reset_attempts(&self, key: &str, now: i64) -> Result<(), StorageError> {
        let key = key.to_owned();
        self.run(move |c| {
            c.execute(
                "DELETE FROM attempts
                 WHERE user_key = ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
                params![key, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn unlock(&self, key: &str, scope: UnlockScope) -> Result<(), StorageError> {
        let key = key.to_owned();
        self.run(move |c| {
            // The sign-in count, and/or the recovery stops of that user id
            // (and of its e-mail).
            c.execute(
                "DELETE FROM attempts WHERE (?2 AND user_key = ?1) OR (?3 AND user_key IN (
                     'recovery:user:' || ?1,
                     (SELECT 'recovery:email:' || lower(email) FROM users WHERE user_id = ?1)))",
                params![key, scope.sign_in(), scope.code_checks()],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_login(&self, l: Login) -> Result<(), StorageError> {
        self.run(move |c| insert_login(c, &l)).await
    }

    async fn login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError> {
        let login_id = login_id.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {LOGIN_COLS} FROM logins WHERE login_id = ?1 AND expires_at > ?2"),
                params![login_id, now],
                login_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn enrol(
        &self,
        login_id: &str,
        security_code_hash: &str,
        mobile: Option<&str>,
        now: i64,
    ) -> Result<EnrolOutcome, StorageError> {
        let login_id = login_id.to_owned();
        let code_hash = security_code_hash.to_owned();
        let mobile = mobile.map(str::to_owned);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let login = tx
                .query_row(
                    &format!(
                        "UPDATE logins SET stage = 'second_factor', pending_mobile = ?3
                         WHERE login_id = ?1 AND stage = 'enrolment' AND expires_at > ?2
                         RETURNING {LOGIN_COLS}"
                    ),
                    params![login_id, now, mobile.is_some()],
                    login_from_row,
                )
                .optional()?;
            let Some(login) = login else {
                return Ok(EnrolOutcome::LoginGone);
            };
            let (enrolled_at, on_file): (Option<i64>, Option<String>) = tx.query_row(
                "SELECT enrolled_at, mobile FROM users WHERE user_id = ?1",
                params![login.user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            // Dropping `tx` rolls back the stage change.
            if enrolled_at.is_some() {
                return Ok(EnrolOutcome::LoginGone);
            }
            if mobile.is_some() && on_file.is_some() {
                return Ok(EnrolOutcome::MobileOnFile);
            }
            tx.execute(
                "UPDATE users SET security_code_hash = ?2, enrolled_at = ?3,
                                  mobile = COALESCE(?4, mobile),
                                  mobile_verified = CASE WHEN ?4 IS NULL THEN mobile_verified ELSE 0 END
                 WHERE user_id = ?1",
                params![login.user_id, code_hash, now, mobile],
            )?;
            // Enrolment happens once: every other enrolment login dies.
            tx.execute(
                "DELETE FROM logins WHERE user_id = ?1 AND stage = 'enrolment'",
                params![login.user_id],
            )?;
            tx.commit()?;
            Ok(EnrolOutcome::Enrolled(login))
        })
        .await
    }

    async fn confirm_mobile(&self, user_id: &str) -> Result<(), StorageError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE users SET mobile_verified = 1 WHERE user_id = ?1",
                params![user_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn consume_login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError> {
        let login_id = login_id.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                &format!(
                    "DELETE FROM logins WHERE login_id = ?1 AND expires_at > ?2
                     RETURNING {LOGIN_COLS}"
                ),
                params![login_id, now],
                login_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn store_otp(
        &self,
        login_id: &str,
        channel: &str,
        mac: Vec<u8>,
        expires_at: i64,
        resend_after_s: i64,
        max_sends: i64,
        caps: SendCaps,
        now: i64,
    ) -> Result<OtpSendOutcome, StorageError> {
        let login_id = login_id.to_owned();
        let channel = channel.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, Option<i64>, String)> = tx
                .query_row(
                    "SELECT otp_sends, last_send_at, user_id FROM logins
                     WHERE login_id = ?1 AND expires_at > ?2 AND stage != 'enrolment'",
                    params![login_id, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((sends, last, user_id)) = row else {
                return Ok(OtpSendOutcome::LoginGone);
            };
            if let Some(last) = last {
                let wait = last + resend_after_s - now;
                if wait > 0 {
                    return Ok(OtpSendOutcome::TooSoon(wait));
                }
            }
            if sends >= max_sends {
                return Ok(OtpSendOutcome::CapReached);
            }
            // The hourly caps across logins: per user, and per destination
            // (several user ids may share one number).
            let window_start = now - 3600;
            for (sql, key) in [
                (
                    "SELECT COUNT(*), MIN(at) FROM otp_sends WHERE user_id = ?1 AND at > ?2",
                    rusqlite::types::Value::Text(user_id.clone()),
                ),
                (
                    "SELECT COUNT(*), MIN(at) FROM otp_sends WHERE destination = ?1 AND at > ?2",
                    rusqlite::types::Value::Blob(caps.destination_key.clone()),
                ),
            ] {
                let (n, oldest): (i64, Option<i64>) =
                    tx.query_row(sql, params![key, window_start], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                if n >= caps.per_hour {
                    let wait = oldest.map(|t| t + 3600 - now).unwrap_or(3600);
                    return Ok(OtpSendOutcome::HourlyCapReached(wait.max(1)));
                }
            }
            tx.execute(
                "INSERT INTO otp_sends (user_id, destination, at) VALUES (?1, ?2, ?3)",
                params![user_id, caps.destination_key, now],
            )?;
            let undo = SendUndo {
                send_id: tx.last_insert_rowid(),
                previous_last_send_at: last,
            };
            tx.execute(
                "UPDATE logins SET otp_sends = otp_sends + 1, last_send_at = ?2 WHERE login_id = ?1",
                params![login_id, now],
            )?;
            // A new send replaces the old code and its tries.
            tx.execute(
                "INSERT INTO otps (login_id, channel, mac, attempts, expires_at)
                 VALUES (?1, ?2, ?3, 0, ?4)
                 ON CONFLICT (login_id) DO UPDATE SET
                   channel = excluded.channel, mac = excluded.mac,
                   attempts = 0, expires_at = excluded.expires_at",
                params![login_id, channel, mac, expires_at],
            )?;
            tx.commit()?;
            Ok(OtpSendOutcome::Sent { taken_back: undo })
        })
        .await
    }

    async fn unsend_otp(&self, login_id: &str, undo: SendUndo) -> Result<(), StorageError> {
        let login_id = login_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE logins SET otp_sends = MAX(otp_sends - 1, 0), last_send_at = ?2
                 WHERE login_id = ?1",
                params![login_id, undo.previous_last_send_at],
            )?;
            tx.execute("DELETE FROM otps WHERE login_id = ?1", params![login_id])?;
            tx.execute("DELETE FROM otp_sends WHERE id = ?1", params![undo.send_id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn try_otp(&self, login_id: &str) -> Result<Option<OtpTry>, StorageError> {
        let login_id = login_id.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "UPDATE otps SET attempts = attempts + 1 WHERE login_id = ?1
                 RETURNING channel, mac, attempts, expires_at",
                params![login_id],
                |r| {
                    Ok(OtpTry {
                        channel: r.get(0)?,
                        mac: r.get(1)?,
                        attempts: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn create_challenge(&self, ch: Challenge) -> Result<(), StorageError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO challenges (challenge_id, device_id, challenge, login_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    ch.challenge_id,
                    ch.device_id,
                    ch.challenge,
                    ch.login_id,
                    ch.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn challenge(
        &self,
        challenge_id: &str,
        now: i64,
    ) -> Result<Option<Challenge>, StorageError> {
        let id = challenge_id.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT * FROM challenges WHERE challenge_id = ?1 AND expires_at > ?2",
                params![id, now],
                challenge_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn redeem_challenge(
        &self,
        key: ChallengeKey,
        now: i64,
        redemption: Redemption,
    ) -> Result<ChallengeOutcome, StorageError> {
        // Group commit: this sign-in shares its COMMIT (and fsync) with the
        // others in flight; it is answered once that COMMIT returned.
        self.group
            .run(move |tx| {
                // A refusal undoes the job's changes (its savepoint), not the batch.
                let (device_id, login_id) = match key {
                    ChallengeKey::Stored(id) => {
                        let consumed = tx
                            .prepare_cached(
                                "DELETE FROM challenges WHERE challenge_id = ?1 AND expires_at > ?2
                             RETURNING *",
                            )?
                            .query_row(params![id, now], challenge_from_row)
                            .optional()?;
                        let Some(ch) = consumed else {
                            return Ok(Step::Undo(ChallengeOutcome::Gone));
                        };
                        (ch.device_id, ch.login_id)
                    }
                    ChallengeKey::Token {
                        hash,
                        device_id,
                        expires_at,
                    } => {
                        // The writer is single: of two redemptions of one token
                        // the second finds the row (and the unique key would
                        // refuse it anyway).
                        let fresh = tx
                            .prepare_cached(
                                "INSERT INTO used_challenges (token_hash, expires_at)
                             VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                            )?
                            .execute(params![hash, expires_at])?;
                        if fresh == 0 || expires_at <= now {
                            return Ok(Step::Undo(ChallengeOutcome::Gone));
                        }
                        (device_id, None)
                    }
                };
                let device: Option<(Option<i64>, i64)> = tx
                    .prepare_cached(
                        "SELECT removed_at, trusted_until FROM devices WHERE device_id = ?1",
                    )?
                    .query_row(params![device_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some(refused) = ChallengeOutcome::refusal_for_device(device, now) {
                    return Ok(Step::Undo(refused));
                }
                let mut risk_written = false;
                let login = match &login_id {
                    None => None,
                    Some(login_id) => {
                        let login = tx
                            .query_row(
                                &format!(
                                    "DELETE FROM logins WHERE login_id = ?1 AND expires_at > ?2
                                 RETURNING {LOGIN_COLS}"
                                ),
                                params![login_id, now],
                                login_from_row,
                            )
                            .optional()?;
                        // The login finished another way (OTP): the challenge
                        // dies with it, and nothing is committed.
                        if login.is_none() {
                            return Ok(Step::Undo(ChallengeOutcome::Gone));
                        }
                        login
                    }
                };
                tx.prepare_cached("UPDATE devices SET last_used_at = ?2 WHERE device_id = ?1")?
                    .execute(params![device_id, now])?;
                match redemption {
                    Redemption::Session {
                        record,
                        tokens,
                        reset_key,
                        risk,
                        audit,
                    } => {
                        insert_session(tx, &record, &tokens)?;
                        if let Some(e) = audit {
                            insert_audit(tx, &e)?;
                        }
                        if let Some(w) = risk {
                            risk_written = swap_risk_profile(tx, &w, now)?;
                        }
                        // A completed sign-in restarts the count; a running lock
                        // runs on (others' failures never block the owner's
                        // device, and the owner's device does not lift a lock).
                        tx.prepare_cached(
                            "DELETE FROM attempts
                         WHERE user_key = ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
                        )?
                        .execute(params![reset_key, now])?;
                    }
                    Redemption::StepUp(l) => insert_login(tx, &l)?,
                }
                Ok(Step::Keep(ChallengeOutcome::Consumed {
                    login,
                    risk_written,
                }))
            })
            .await
    }

    async fn spend_registration(&self, registration_id: &str) -> Result<(), StorageError> {
        let id = registration_id.to_owned();
        self.run(move |c| {
            c.execute(
                "DELETE FROM registrations WHERE registration_id = ?1",
                params![id],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_registration(&self, reg: Registration) -> Result<(), StorageError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO registrations (registration_id, user_id, challenge, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    reg.registration_id,
                    reg.user_id,
                    reg.challenge,
                    reg.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn registration(
        &self,
        registration_id: &str,
        now: i64,
    ) -> Result<Option<Registration>, StorageError> {
        let id = registration_id.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT registration_id, user_id, challenge, expires_at FROM registrations
                 WHERE registration_id = ?1 AND expires_at > ?2",
                params![id, now],
                |r| {
                    Ok(Registration {
                        registration_id: r.get(0)?,
                        user_id: r.get(1)?,
                        challenge: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn finish_registration(
        &self,
        registration_id: &str,
        session_id: &str,
        d: Device,
        max_devices: i64,
        now: i64,
    ) -> Result<RegistrationOutcome, StorageError> {
        let id = registration_id.to_owned();
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute(
                "DELETE FROM registrations
                 WHERE registration_id = ?1 AND user_id = ?2 AND expires_at > ?3",
                params![id, d.user_id, now],
            )?;
            if deleted != 1 {
                return Ok(RegistrationOutcome::Gone);
            }
            let active: i64 = tx.query_row(
                "SELECT COUNT(*) FROM devices WHERE user_id = ?1 AND removed_at IS NULL",
                params![d.user_id],
                |r| r.get(0),
            )?;
            if active >= max_devices {
                // Commit the consumed registration: it was used, even if refused.
                tx.commit()?;
                return Ok(RegistrationOutcome::DeviceLimit);
            }
            tx.execute(
                "INSERT INTO devices (device_id, user_id, name, platform, key_storage,
                     user_verification, public_key, created_at, last_used_at, trusted_until,
                     removed_at, registered_by, attestation_format, attestation_level,
                     attestation_verified_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, ?12, ?13, ?14)",
                params![
                    d.device_id,
                    d.user_id,
                    d.name,
                    d.platform,
                    d.key_storage,
                    d.user_verification,
                    d.public_key,
                    d.created_at,
                    d.last_used_at,
                    d.trusted_until,
                    d.registered_by,
                    d.attestation.as_ref().map(|a| a.format.clone()),
                    d.attestation.as_ref().map(|a| a.security_level.clone()),
                    d.attestation.as_ref().map(|a| a.verified_at)
                ],
            )?;
            tx.execute(
                "UPDATE sessions SET device_id = ?2 WHERE session_id = ?1 AND device_id IS NULL",
                params![session_id, d.device_id],
            )?;
            tx.commit()?;
            Ok(RegistrationOutcome::Created)
        })
        .await
    }

    async fn device(&self, device_id: &str) -> Result<Option<Device>, StorageError> {
        let id = device_id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached("SELECT * FROM devices WHERE device_id = ?1")?
                .query_row(params![id], device_from_row)
                .optional()
        })
        .await
    }

    async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT * FROM devices WHERE user_id = ?1 AND removed_at IS NULL
                 ORDER BY created_at, device_id",
            )?;
            let rows = stmt
                .query_map(params![user_id], device_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn remove_device(
        &self,
        user_id: &str,
        device_id: &str,
        now: i64,
    ) -> Result<Vec<Device>, StorageError> {
        let user_id = user_id.to_owned();
        let device_id = device_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The device and every active device registered from its
            // sessions, and from theirs: vouched for only by it.
            let removed = {
                let mut stmt = tx.prepare(
                    "WITH RECURSIVE fallen(device_id) AS (
                         SELECT device_id FROM devices
                          WHERE device_id = ?1 AND user_id = ?2 AND removed_at IS NULL
                         UNION
                         SELECT d.device_id FROM devices d JOIN fallen f ON d.registered_by = f.device_id
                          WHERE d.removed_at IS NULL
                     )
                     UPDATE devices SET removed_at = ?3
                      WHERE device_id IN (SELECT device_id FROM fallen)
                     RETURNING *",
                )?;
                let rows = stmt
                    .query_map(params![device_id, user_id, now], device_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            };
            for d in &removed {
                tx.execute(
                    "UPDATE sessions SET revoked_at = ?2, revoked_reason = 'device_removed'
                     WHERE device_id = ?1 AND revoked_at IS NULL",
                    params![d.device_id, now],
                )?;
                tx.execute(
                    "DELETE FROM challenges WHERE device_id = ?1",
                    params![d.device_id],
                )?;
            }
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    async fn renew_trust(&self, device_id: &str, until: i64) -> Result<(), StorageError> {
        let id = device_id.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE devices SET trusted_until = ?2 WHERE device_id = ?1 AND removed_at IS NULL",
                params![id, until],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_session(
        &self,
        s: SessionRecord,
        tokens: TokenPair,
    ) -> Result<(), StorageError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_session(&tx, &s, &tokens)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn session_for_access(
        &self,
        access_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let hash = access_hash.to_vec();
        self.read(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {SESSION_COLS} FROM access_tokens a
                     JOIN sessions s ON s.session_id = a.session_id
                     WHERE a.token_hash = ?1 AND a.expires_at > ?2 AND s.revoked_at IS NULL
                       AND s.expires_at > ?2"
                ),
                params![hash, now],
                session_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        refresh_hash: &[u8],
        tokens: TokenPair,
        now: i64,
    ) -> Result<RefreshOutcome, StorageError> {
        let hash = refresh_hash.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(String, Option<i64>, i64)> = tx
                .query_row(
                    "SELECT session_id, used_at, expires_at FROM refresh_tokens WHERE token_hash = ?1",
                    params![hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((session_id, used_at, expires_at)) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            let session = tx
                .query_row(
                    &format!(
                        "SELECT {SESSION_COLS} FROM sessions s
                         WHERE s.session_id = ?1 AND s.revoked_at IS NULL"
                    ),
                    params![session_id],
                    session_from_row,
                )
                .optional()?;
            let Some(session) = session else {
                return Ok(RefreshOutcome::Invalid);
            };
            if used_at.is_some() {
                // A used token came back: someone holds a copy. Revoke the family.
                tx.execute(
                    "UPDATE sessions SET revoked_at = ?2, revoked_reason = 'refresh_reuse'
                     WHERE session_id = ?1",
                    params![session_id, now],
                )?;
                tx.commit()?;
                return Ok(RefreshOutcome::Reused(session));
            }
            if expires_at <= now || session.expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
                params![hash, now],
            )?;
            insert_tokens(&tx, &session_id, &tokens)?;
            tx.commit()?;
            Ok(RefreshOutcome::Rotated(session))
        })
        .await
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        let id = session_id.to_owned();
        let reason = reason.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3
                 WHERE session_id = ?1 AND revoked_at IS NULL",
                params![id, now, reason],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_card(&self, card: Card) -> Result<(), StorageError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO cards (card_ref, number_hash, card_id_hash, last4, name, email, mobile,
                                    primary_market, activated_at, created_at, user_id, linked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL)",
                params![
                    card.card_ref,
                    card.number_hash,
                    card.card_id_hash,
                    card.last4,
                    card.name,
                    card.email,
                    card.mobile,
                    card.primary_market,
                    card.activated_at,
                    card.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn activate_card(&self, card_ref: &str, now: i64) -> Result<bool, StorageError> {
        let card_ref = card_ref.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE cards SET activated_at = COALESCE(activated_at, ?2) WHERE card_ref = ?1",
                params![card_ref, now],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn card_by_number(&self, number_hash: &[u8]) -> Result<Option<Card>, StorageError> {
        let hash = number_hash.to_vec();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT * FROM cards WHERE number_hash = ?1",
                params![hash],
                card_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn create_user_from_card(
        &self,
        user: User,
        card_ref: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError> {
        let card_ref = card_ref.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            match insert_user(&tx, &user) {
                Ok(()) => {}
                Err(StorageError::Conflict) => return Ok(CardLinkOutcome::UserExists),
                Err(e) => return Err(e),
            }
            let n = tx.execute(
                "UPDATE cards SET user_id = ?2, linked_at = ?3
                 WHERE card_ref = ?1 AND user_id IS NULL",
                params![card_ref, user.user_id, now],
            )?;
            if n != 1 {
                return Ok(CardLinkOutcome::AlreadyEnrolled);
            }
            tx.commit()?;
            Ok(CardLinkOutcome::Linked)
        })
        .await
    }

    async fn link_card(
        &self,
        card_ref: &str,
        user_id: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError> {
        let card_ref = card_ref.to_owned();
        let user_id = user_id.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE cards SET user_id = ?2, linked_at = ?3
                 WHERE card_ref = ?1 AND user_id IS NULL",
                params![card_ref, user_id, now],
            )?;
            Ok(if n == 1 {
                CardLinkOutcome::Linked
            } else {
                CardLinkOutcome::AlreadyEnrolled
            })
        })
        .await
    }

    async fn cards_of(&self, user_id: &str) -> Result<Vec<Card>, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            let mut stmt =
                c.prepare("SELECT * FROM cards WHERE user_id = ?1 ORDER BY linked_at, card_ref")?;
            let rows = stmt
                .query_map(params![user_id], card_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn users_by_email(&self, email: &str) -> Result<Vec<User>, StorageError> {
        let email = email.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT * FROM users WHERE email = ?1 COLLATE NOCASE ORDER BY user_id LIMIT 20",
            )?;
            let rows = stmt
                .query_map(params![email], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn complete_recovery(
        &self,
        recovery_id: &str,
        password_hash: &str,
        lockout_key: &str,
        now: i64,
    ) -> Result<Option<PasswordReset>, StorageError> {
        let id = recovery_id.to_owned();
        let hash = password_hash.to_owned();
        let key = lockout_key.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let login = tx
                .query_row(
                    &format!(
                        "DELETE FROM logins WHERE login_id = ?1 AND stage = 'recovery'
                           AND expires_at > ?2 RETURNING {LOGIN_COLS}"
                    ),
                    params![id, now],
                    login_from_row,
                )
                .optional()?;
            let Some(login) = login else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                params![login.user_id, hash],
            )?;
            // Recovery is how a locked-out user gets back in.
            tx.execute("DELETE FROM attempts WHERE user_key = ?1", params![key])?;
            let sessions_revoked = tx.execute(
                "UPDATE sessions SET revoked_at = ?2, revoked_reason = 'recovery'
                 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![login.user_id, now],
            )?;
            let devices_to_reauthorise = tx.execute(
                "UPDATE devices SET trusted_until = MIN(trusted_until, ?2)
                 WHERE user_id = ?1 AND removed_at IS NULL",
                params![login.user_id, now],
            )?;
            // Every other step in progress for the user ends too.
            tx.execute(
                "DELETE FROM logins WHERE user_id = ?1",
                params![login.user_id],
            )?;
            let user = user_in(&tx, &login.user_id)?.ok_or(StorageError::Conflict)?;
            tx.commit()?;
            Ok(Some(PasswordReset {
                user,
                sessions_revoked,
                devices_to_reauthorise,
            }))
        })
        .await
    }

    async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        let user_id = user_id.to_owned();
        let hash = password_hash.to_owned();
        let keep = keep_session.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                params![user_id, hash],
            )?;
            tx.execute(
                "UPDATE sessions SET revoked_at = ?3, revoked_reason = 'password_changed'
                 WHERE user_id = ?1 AND session_id != ?2 AND revoked_at IS NULL",
                params![user_id, keep, now],
            )?;
            // Sign-ins and recoveries begun with the old password or before
            // the change end too (a pending contact change stays: it is this
            // session's own).
            tx.execute(
                "DELETE FROM logins WHERE user_id = ?1 AND stage != 'contact_change'",
                params![user_id],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_security_code(&self, user_id: &str, hash: &str) -> Result<(), StorageError> {
        let user_id = user_id.to_owned();
        let hash = hash.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE users SET security_code_hash = ?2 WHERE user_id = ?1",
                params![user_id, hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn start_contact_change(&self, login: Login) -> Result<(), StorageError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A new request replaces a pending change.
            tx.execute(
                "DELETE FROM logins WHERE user_id = ?1 AND stage = 'contact_change'",
                params![login.user_id],
            )?;
            insert_login(&tx, &login)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn apply_contact_change(
        &self,
        change_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Option<(User, User)>, StorageError> {
        let id = change_id.to_owned();
        let user_id = user_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let login = tx
                .query_row(
                    &format!(
                        "DELETE FROM logins WHERE login_id = ?1 AND user_id = ?2
                           AND stage = 'contact_change' AND expires_at > ?3
                         RETURNING {LOGIN_COLS}"
                    ),
                    params![id, user_id, now],
                    login_from_row,
                )
                .optional()?;
            let Some(login) = login else {
                return Ok(None);
            };
            let Some(before) = user_in(&tx, &user_id)? else {
                return Ok(None);
            };
            if let Some(email) = &login.change_email {
                tx.execute(
                    "UPDATE users SET email = ?2 WHERE user_id = ?1",
                    params![user_id, email],
                )?;
            }
            if let Some(mobile) = &login.change_mobile {
                // Proven by the code sent to it.
                tx.execute(
                    "UPDATE users SET mobile = ?2, mobile_verified = 1 WHERE user_id = ?1",
                    params![user_id, mobile],
                )?;
            }
            let after = user_in(&tx, &user_id)?.ok_or(StorageError::Conflict)?;
            tx.commit()?;
            Ok(Some((before, after)))
        })
        .await
    }

    async fn remove_mobile(&self, user_id: &str) -> Result<Option<User>, StorageError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = user_in(&tx, &user_id)?.filter(|u| u.mobile.is_some());
            if before.is_some() {
                tx.execute(
                    "UPDATE users SET mobile = NULL, mobile_verified = 1 WHERE user_id = ?1",
                    params![user_id],
                )?;
                tx.commit()?;
            }
            Ok(before)
        })
        .await
    }

    async fn security_events(
        &self,
        user_id: &str,
        types: &[&str],
        limit: i64,
    ) -> Result<Vec<(AuditEvent, Option<String>)>, StorageError> {
        let user_id = user_id.to_owned();
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        self.read(move |c| {
            let placeholders = vec!["?"; types.len()].join(", ");
            let sql = format!(
                "SELECT a.at, a.event, a.user_id, a.device_id, a.ip, a.reason, a.actor, d.name AS device_name
                   FROM audit a LEFT JOIN devices d ON d.device_id = a.device_id
                  WHERE a.user_id = ? AND a.event IN ({placeholders})
                  ORDER BY a.id DESC LIMIT ?"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut values: Vec<rusqlite::types::Value> = vec![user_id.into()];
            values.extend(types.into_iter().map(rusqlite::types::Value::from));
            values.push(limit.into());
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), |r| {
                    Ok((audit_from_row(r)?, r.get("device_name")?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn sign_ins_since(&self, user_id: &str, since: i64) -> Result<i64, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sessions WHERE user_id = ?1 AND created_at > ?2",
                params![user_id, since],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn risk_profile(&self, user_id: &str) -> Result<Option<String>, StorageError> {
        let user_id = user_id.to_owned();
        self.point_read(move |c| {
            c.prepare_cached("SELECT profile FROM risk_profiles WHERE user_id = ?1")?
                .query_row(params![user_id], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn update_risk_profile(
        &self,
        user_id: &str,
        now: i64,
        update: RiskUpdate,
    ) -> Result<(), StorageError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old: Option<String> = tx
                .query_row(
                    "SELECT profile FROM risk_profiles WHERE user_id = ?1",
                    params![user_id],
                    |r| r.get(0),
                )
                .optional()?;
            let new = update(old.as_deref());
            tx.execute(
                "INSERT INTO risk_profiles (user_id, profile, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                   profile = excluded.profile, updated_at = excluded.updated_at",
                params![user_id, new, now],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_operator(&self, o: Operator) -> Result<(), StorageError> {
        self.run(move |c| {
            let n = c.execute(
                "INSERT INTO operators (name, role, password_hash, totp_sealed, totp_enrolled,
                                        totp_last_step, disabled_at, created_at,
                                        enrolment_code_hash, enrolment_expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (name) DO NOTHING",
                params![
                    o.name,
                    o.role,
                    o.password_hash,
                    o.totp_sealed,
                    o.totp_enrolled,
                    o.totp_last_step,
                    o.disabled_at,
                    o.created_at,
                    o.enrolment_code_hash,
                    o.enrolment_expires_at
                ],
            )?;
            if n == 0 {
                return Err(StorageError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn operator(&self, name: &str) -> Result<Option<Operator>, StorageError> {
        let name = name.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT * FROM operators WHERE name = ?1",
                params![name],
                operator_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn operators(&self) -> Result<Vec<Operator>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare("SELECT * FROM operators ORDER BY name")?;
            let rows = stmt
                .query_map([], operator_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn set_operator_totp(
        &self,
        name: &str,
        sealed: Option<Vec<u8>>,
        enrolled: bool,
    ) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE operators SET totp_sealed = ?2, totp_enrolled = ?3 WHERE name = ?1",
                params![name, sealed, enrolled],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_operator_enrolment(
        &self,
        name: &str,
        code_hash: Option<Vec<u8>>,
        expires_at: Option<i64>,
    ) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE operators SET enrolment_code_hash = ?2, enrolment_expires_at = ?3
                  WHERE name = ?1",
                params![name, code_hash, expires_at],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE operators SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2",
                params![name, step],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn set_operator_disabled(
        &self,
        name: &str,
        disabled_at: Option<i64>,
    ) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE operators SET disabled_at = ?2 WHERE name = ?1",
                params![name, disabled_at],
            )?;
            if disabled_at.is_some() {
                tx.execute(
                    "DELETE FROM console_sessions WHERE operator = ?1",
                    params![name],
                )?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn create_console_session(&self, s: ConsoleSession) -> Result<(), StorageError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO console_sessions (session_hash, operator, stage, created_at,
                                               last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.session_hash,
                    s.operator,
                    s.stage,
                    s.created_at,
                    s.last_seen_at,
                    s.expires_at
                ],
            )?;
            // Signed-in and pending sessions are capped apart: a password
            // alone never ends a signed-in session.
            tx.execute(
                "DELETE FROM console_sessions
                  WHERE operator = ?1 AND (stage = 'full') = (?3 = 'full')
                    AND session_hash NOT IN (
                     SELECT session_hash FROM console_sessions
                      WHERE operator = ?1 AND (stage = 'full') = (?3 = 'full')
                      ORDER BY created_at DESC, session_hash LIMIT ?2)",
                params![s.operator, CONSOLE_SESSIONS_PER_OPERATOR, s.stage],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn end_operator_sessions(&self, name: &str) -> Result<usize, StorageError> {
        let name = name.to_owned();
        self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM console_sessions WHERE operator = ?1",
                params![name],
            )?)
        })
        .await
    }

    async fn console_session(
        &self,
        session_hash: &[u8],
        now: i64,
        idle_s: i64,
    ) -> Result<Option<ConsoleSession>, StorageError> {
        let hash = session_hash.to_vec();
        self.run(move |c| {
            Ok(c.query_row(
                "UPDATE console_sessions SET last_seen_at = ?2
                  WHERE session_hash = ?1 AND expires_at > ?2 AND last_seen_at > ?2 - ?3
                 RETURNING *",
                params![hash, now, idle_s],
                console_session_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn delete_console_session(&self, session_hash: &[u8]) -> Result<(), StorageError> {
        let hash = session_hash.to_vec();
        self.run(move |c| {
            c.execute(
                "DELETE FROM console_sessions WHERE session_hash = ?1",
                params![hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_users(
        &self,
        search: &UserSearch,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StorageError> {
        let search = search.clone();
        let after = after.unwrap_or("").to_owned();
        self.read(move |c| {
            if let UserSearch::UserIdPrefix(prefix) = &search {
                // Prefix by range (no LIKE: `_` and `%` are user-id
                // characters), bounded above: a rare prefix reads its own
                // rows, not the rest of the table.
                let (sql, end) = match prefix_end(prefix) {
                    Some(end) => (
                        "SELECT * FROM users WHERE user_id >= ?1 AND user_id < ?4
                           AND substr(user_id, 1, length(?1)) = ?1
                           AND user_id > ?2 ORDER BY user_id LIMIT ?3",
                        end,
                    ),
                    None => (
                        "SELECT * FROM users WHERE user_id >= ?1 AND ?4 = ''
                           AND substr(user_id, 1, length(?1)) = ?1
                           AND user_id > ?2 ORDER BY user_id LIMIT ?3",
                        String::new(),
                    ),
                };
                let mut stmt = c.prepare(sql)?;
                let rows = stmt
                    .query_map(params![prefix, after, limit, end], user_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(rows);
            }
            let (sql, value) = match search {
                UserSearch::UserIdPrefix(_) => unreachable!("answered above"),
                UserSearch::Email(email) => (
                    "SELECT * FROM users WHERE email = ?1 COLLATE NOCASE
                       AND user_id > ?2 ORDER BY user_id LIMIT ?3",
                    email,
                ),
                UserSearch::Last4(last4) => (
                    "SELECT * FROM users WHERE user_id IN
                         (SELECT user_id FROM cards WHERE last4 = ?1 AND user_id IS NOT NULL)
                       AND user_id > ?2 ORDER BY user_id LIMIT ?3",
                    last4,
                ),
            };
            let mut stmt = c.prepare(sql)?;
            let rows = stmt
                .query_map(params![value, after, limit], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SESSION_COLS} FROM sessions s
                  WHERE s.user_id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2
                  ORDER BY s.created_at DESC LIMIT 100"
            ))?;
            let rows = stmt
                .query_map(params![user_id, now], session_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<usize, StorageError> {
        let user_id = user_id.to_owned();
        let reason = reason.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3
                  WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
                params![user_id, now, reason],
            )?;
            Ok(n)
        })
        .await
    }

    async fn correct_profile(
        &self,
        user_id: &str,
        expected: (&str, &str),
        name: &str,
        email: &str,
    ) -> Result<Option<User>, StorageError> {
        let user_id = user_id.to_owned();
        let (old_name, old_email) = (expected.0.to_owned(), expected.1.to_owned());
        let (name, email) = (name.to_owned(), email.to_owned());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = tx
                .query_row(
                    "SELECT * FROM users WHERE user_id = ?1 AND name = ?2 AND email = ?3",
                    params![user_id, old_name, old_email],
                    user_from_row,
                )
                .optional()?;
            if before.is_some() {
                tx.execute(
                    "UPDATE users SET name = ?2, email = ?3 WHERE user_id = ?1",
                    params![user_id, name, email],
                )?;
            }
            tx.commit()?;
            Ok(before)
        })
        .await
    }

    async fn markets(&self) -> Result<Vec<MarketSummary>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT m.market AS market, k.second_factor AS second_factor,
                        (SELECT count(*) FROM users u WHERE u.primary_market = m.market) AS users
                   FROM (SELECT market FROM markets UNION SELECT primary_market FROM users) m
                   LEFT JOIN markets k ON k.market = m.market
                  ORDER BY m.market LIMIT 500",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    let setting: Option<String> = r.get("second_factor")?;
                    Ok(MarketSummary {
                        market: r.get("market")?,
                        configured: setting.map(|s| s != "off"),
                        users: r.get("users")?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEvent)>, StorageError> {
        let f = filter.clone();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, at, event, user_id, device_id, ip, reason, actor FROM audit
                  WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR event = ?2)
                    AND (?3 IS NULL OR actor = ?3) AND (?4 = 0 OR actor IS NOT NULL)
                    AND (?5 IS NULL OR id < ?5)
                  ORDER BY id DESC LIMIT ?6",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        f.user_id,
                        f.event,
                        f.actor,
                        f.operators_only,
                        f.before_id,
                        limit
                    ],
                    |r| Ok((r.get("id")?, audit_from_row(r)?)),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn audit(&self, e: AuditEvent) -> Result<(), StorageError> {
        self.run(move |c| insert_audit(c, &e)).await
    }

    async fn audit_events(&self, user_id: &str) -> Result<Vec<AuditEvent>, StorageError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT at, event, user_id, device_id, ip, reason, actor FROM audit
                 WHERE user_id = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map(params![user_id], audit_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn purge_expired(&self, now: i64, retention: Retention) -> Result<u64, StorageError> {
        // In chunks of PURGE_CHUNK rows, each its own short transaction on
        // the writer: sign-ins' batches commit between them. One
        // transaction for everything held the writer for seconds at the
        // minute a day's sessions and used challenges expired (issue 14's
        // outside review).
        let mut n = 0u64;
        for (table, expired, before) in [
            ("challenges", "expires_at <= ?1", now),
            (
                "used_challenges",
                "expires_at <= ?1",
                now - crate::challenge_token::USED_ROW_GRACE_S,
            ),
            ("registrations", "expires_at <= ?1", now),
            ("logins", "expires_at <= ?1", now),
            ("access_tokens", "expires_at <= ?1", now),
            // Used refresh tokens are kept until they expire: reuse
            // detection needs them.
            ("refresh_tokens", "expires_at <= ?1", now),
            // Console sessions past their absolute end (idle ones are
            // refused on use and gone by their end too).
            ("console_sessions", "expires_at <= ?1", now),
            ("otp_sends", "at <= ?1", now - retention.send_window_s),
            (
                "attempts",
                "updated_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?1)",
                now - retention.attempts_s,
            ),
            ("audit", "at <= ?1", now - retention.audit_s),
        ] {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN
                   (SELECT rowid FROM {table} WHERE {expired} LIMIT ?2)"
            );
            n += self
                .purge_in_chunks(move |tx| {
                    let done = tx
                        .prepare_cached(&sql)?
                        .execute(params![before, PURGE_CHUNK])?;
                    Ok((done, done))
                })
                .await?;
        }
        // Sessions past their absolute end, with whatever token they still
        // have, a chunk of sessions per transaction.
        n += self
            .purge_in_chunks(move |tx| {
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT session_id FROM sessions WHERE expires_at <= ?1 LIMIT ?2",
                    )?
                    .query_map(params![now, PURGE_CHUNK], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut done = 0;
                for id in &ids {
                    for sql in [
                        "DELETE FROM access_tokens WHERE session_id = ?1",
                        "DELETE FROM refresh_tokens WHERE session_id = ?1",
                        "DELETE FROM sessions WHERE session_id = ?1",
                    ] {
                        done += tx.prepare_cached(sql)?.execute(params![id])?;
                    }
                }
                Ok((ids.len(), done))
            })
            .await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with_profile() -> (tempfile::TempDir, String, SqliteStore) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db").to_string_lossy().into_owned();
        let store = SqliteStore::open(&path).await.expect("store");
        let c = Connection::open(&path).expect("open");
        c.execute(
            "INSERT INTO risk_profiles (user_id, profile, updated_at) VALUES ('u1', '{}', 1)",
            [],
        )
        .expect("insert");
        (dir, path, store)
    }

    #[tokio::test]
    async fn a_point_read_answers_on_the_callers_thread() {
        let (_dir, _path, store) = store_with_profile().await;
        assert_eq!(
            store.risk_profile("u1").await.expect("read").as_deref(),
            Some("{}")
        );
        assert_eq!(store.risk_profile("nobody").await.expect("read"), None);
        // Every inline connection is back in its pool, and none waits on a lock.
        let c = store.inline.try_get().expect("an idle inline connection");
        let timeout: i64 = c
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(timeout, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_point_read_that_meets_a_lock_runs_again_on_the_pool() {
        let (_dir, _path, store) = store_with_profile().await;
        // Which threads the read ran on; the first attempt reports the lock
        // SQLite gives a reader that cannot wait (busy_timeout 0).
        let threads = Arc::new(Mutex::new(Vec::new()));
        let seen = threads.clone();
        let caller = std::thread::current().id();
        let read = store
            .point_read(move |c| {
                let mut seen = seen.lock().expect("threads");
                seen.push(std::thread::current().id());
                if seen.len() == 1 {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        None,
                    ));
                }
                c.query_row("SELECT profile FROM risk_profiles", [], |r| {
                    r.get::<_, String>(0)
                })
            })
            .await
            .expect("the pool's read");
        assert_eq!(read, "{}");
        let threads = threads.lock().expect("threads").clone();
        assert_eq!(threads.len(), 2, "tried inline, then on the pool");
        assert_eq!(
            threads[0], caller,
            "the first attempt is on the caller's thread"
        );
        assert_ne!(threads[1], caller, "the second is off the runtime");
    }

    #[tokio::test]
    async fn a_point_reads_other_errors_are_not_retried() {
        let (_dir, _path, store) = store_with_profile().await;
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let read = store
            .point_read(move |c| {
                *counted.lock().expect("calls") += 1;
                c.query_row("SELECT nope FROM risk_profiles", [], |r| r.get::<_, i64>(0))
            })
            .await;
        assert!(matches!(read, Err(StorageError::Database(_))), "{read:?}");
        assert_eq!(*calls.lock().expect("calls"), 1);
    }

    /// More expired rows than one chunk: all go, tokens with their
    /// sessions, live ones stay, and the foreign-key check of a session's
    /// deletion finds its tokens by index instead of scanning.
    #[tokio::test]
    async fn the_purge_deletes_in_chunks_and_finds_tokens_by_session() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("p.db").to_string_lossy().into_owned();
        let store = SqliteStore::open(&path).await.expect("store");
        let c = Connection::open(&path).expect("open");
        // Fixtures only: no users to reference.
        c.execute_batch("PRAGMA foreign_keys = OFF; BEGIN;")
            .expect("begin");
        let sessions = PURGE_CHUNK * 2 + 17;
        for i in 0..sessions + 3 {
            // The last three are live.
            let expires_at = if i < sessions { 100 } else { 10_000 };
            let id = format!("s{i}");
            c.execute(
                "INSERT INTO sessions (session_id, user_id, amr, auth_time, created_at, expires_at)
                 VALUES (?1, 'u', 'hwk', 1, 1, ?2)",
                params![id, expires_at],
            )
            .expect("session");
            for table in ["access_tokens", "refresh_tokens"] {
                c.execute(
                    &format!(
                        "INSERT INTO {table} (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)"
                    ),
                    params![format!("{table}{i}").into_bytes(), id, expires_at],
                )
                .expect("token");
            }
            c.execute(
                "INSERT INTO used_challenges (token_hash, expires_at) VALUES (?1, ?2)",
                params![format!("u{i}").into_bytes(), expires_at - 2_000],
            )
            .expect("used");
        }
        c.execute_batch("COMMIT;").expect("commit");
        let retention = Retention {
            audit_s: 1_000_000,
            attempts_s: 1_000_000,
            send_window_s: 1_000_000,
        };
        let purged = store.purge_expired(1_000, retention).await.expect("purge");
        assert_eq!(purged, (sessions * 4) as u64);
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).expect("count") };
        assert_eq!(count("SELECT COUNT(*) FROM sessions"), 3);
        assert_eq!(count("SELECT COUNT(*) FROM access_tokens"), 3);
        assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens"), 3);
        assert_eq!(count("SELECT COUNT(*) FROM used_challenges"), 3);
        for (table, index) in [
            ("access_tokens", "access_tokens_by_session"),
            ("refresh_tokens", "refresh_tokens_by_session"),
        ] {
            let plan: String = c
                .query_row(
                    &format!("EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE session_id = 's1'"),
                    [],
                    |r| r.get(3),
                )
                .expect("plan");
            assert!(plan.contains(index), "{table}: {plan}");
        }
    }

    #[tokio::test]
    async fn the_writers_savepoint_journal_stays_in_memory() {
        let (_dir, _path, store) = store_with_profile().await;
        let c = store.writer.lock().expect("writer");
        let temp_store: i64 = c
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(temp_store, 2, "MEMORY");
    }
}
