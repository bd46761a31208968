//! The PostgreSQL backend: any number of server instances on one database.
//!
//! tokio-postgres with a deadpool pool (why not sqlx: docs/SERVER.md,
//! "Storage backends"), statements prepared once per connection, versioned
//! migrations applied at start under an advisory lock, rustls (ring) when
//! the URL asks for TLS.
//!
//! Concurrency. Every transaction runs at READ COMMITTED and takes the row
//! locks its rule needs, in one order (user, then device, then the rest):
//! single use is a `DELETE … RETURNING` or `UPDATE … RETURNING` (of racing
//! requests, on any instance, one gets the row); counts that must not be
//! overtaken (lockout, device limit, OTP caps, refresh rotation) lock their
//! row (`FOR UPDATE`) or an advisory lock before they read. A deadlock or
//! serialization failure is retried by `transaction!`, the one helper every
//! multi-statement method goes through.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::*;

/// As in `sqlite`: no attempt takes longer than this from count to verdict.
const IN_FLIGHT_S: i64 = 60;

/// Connections per instance unless the URL says `pool_max_size=N`.
const DEFAULT_POOL_SIZE: usize = 16;

/// Tries of a transaction that hit a deadlock or serialization failure.
const MAX_TRIES: u32 = 6;

/// Versioned schema. Append new migrations; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "risk, attestation, login network",
        include_str!("migrations/postgres/0002_risk_attestation_network.sql"),
    ),
    (
        3,
        "support console",
        include_str!("migrations/postgres/0003_console.sql"),
    ),
    (
        4,
        "used challenge tokens",
        include_str!("migrations/postgres/0004_used_challenges.sql"),
    ),
];

/// Serialises schema changes of instances starting at once (any constant
/// unique to devicetrust; "dtschema" in ASCII).
const MIGRATION_LOCK: i64 = 0x6474_7363_6865_6d61;

/// The tables, in an order that respects foreign keys (for `migrate`).
pub const TABLES: &[&str] = &[
    "risk_profiles",
    "server_secrets",
    "users",
    "markets",
    "attempts",
    "logins",
    "otps",
    "otp_sends",
    "devices",
    "challenges",
    "used_challenges",
    "registrations",
    "sessions",
    "access_tokens",
    "refresh_tokens",
    "cards",
    "audit",
    "operators",
    "console_sessions",
];

type PgError = tokio_postgres::Error;
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What a step inside a transaction failed with.
#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Store(#[from] StorageError),
    /// A row this transaction relied on vanished between two statements.
    #[error("a concurrent transaction changed the row; try again")]
    Raced,
    /// The connection was lost while COMMIT was under way: whether it
    /// committed is unknown, so it is not run again.
    #[error("connection lost during commit: {0}")]
    CommitUnknown(PgError),
}

impl Fail {
    /// Another transaction got in the way; the whole transaction may be
    /// run again.
    fn retryable(&self) -> bool {
        match self {
            // A pooled connection that died (a database restart or
            // failover) before COMMIT: nothing was committed, so the
            // transaction runs again on a fresh connection.
            Fail::Pg(e) if e.is_closed() => true,
            Fail::Pg(e) => e.code().is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            }),
            Fail::Raced => true,
            Fail::Store(_) | Fail::CommitUnknown(_) => false,
        }
    }

    fn at_commit(e: PgError) -> Fail {
        if e.is_closed() {
            Fail::CommitUnknown(e)
        } else {
            Fail::Pg(e)
        }
    }
}

impl From<PgError> for StorageError {
    fn from(e: PgError) -> Self {
        // Class 23 (integrity constraint violation), as SQLite's
        // constraint errors: a key that exists, a reference that does not.
        if e.code().is_some_and(|c| c.code().starts_with("23")) {
            return StorageError::Conflict;
        }
        // Class 08 (connection exception) and 57P01-57P03 (shutting down,
        // crash shutdown, cannot connect now), or a connection that closed:
        // the database is restarting or failing over.
        let unavailable = e.is_closed()
            || e.code().is_some_and(|c| {
                let c = c.code();
                c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
            });
        if unavailable {
            return StorageError::Unavailable(pg_message(&e));
        }
        StorageError::Database(pg_message(&e))
    }
}

impl From<Fail> for StorageError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Pg(e) => e.into(),
            Fail::Store(e) => e,
            Fail::Raced => {
                StorageError::Database("a concurrent transaction changed the row".into())
            }
            Fail::CommitUnknown(e) => {
                StorageError::Database(format!("connection lost during commit: {}", pg_message(&e)))
            }
        }
    }
}

/// The server's message when there is one (tokio-postgres' Display says
/// only "db error").
fn pg_message(e: &PgError) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            // The causes too: "error performing TLS handshake" alone does
            // not say that the certificate was not trusted.
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                msg.push_str(": ");
                msg.push_str(&cause.to_string());
                source = cause.source();
            }
            msg
        }
    }
}

/// How a transaction's body ends.
enum End<T> {
    Commit(T),
    /// Nothing it changed is kept (SQLite's backend drops its transaction).
    Rollback(T),
}

/// Runs `$body` (an expression using `$tx`, a `deadpool_postgres::Transaction`,
/// evaluating to `Result<End<T>, Fail>`) in a READ COMMITTED transaction on a
/// pooled connection, and runs it again from the start, up to `MAX_TRIES`,
/// when PostgreSQL aborted it for a deadlock or a serialization failure, or
/// its connection died before COMMIT (see `Fail::retryable`).
/// Methods added later (the risk profile's read-modify-write, say) use it
/// the same way.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0u32;
        loop {
            tries += 1;
            let mut client = $store.client().await?;
            let outcome: Result<_, Fail> = async {
                let $tx = client.transaction().await?;
                let end: Result<End<_>, Fail> = async { $body }.await;
                match end? {
                    End::Commit(v) => {
                        $tx.commit().await.map_err(Fail::at_commit)?;
                        Ok(v)
                    }
                    End::Rollback(v) => {
                        $tx.rollback().await?;
                        Ok(v)
                    }
                }
            }
            .await;
            match outcome {
                Ok(v) => break Ok(v),
                Err(e) if e.retryable() && tries < MAX_TRIES => {
                    tracing::debug!(error = %e, tries, "transaction retried");
                    backoff(tries).await;
                }
                Err(e) => break Err(StorageError::from(e)),
            }
        }
    }};
}

/// A short randomised pause before a retry, so the colliding transactions
/// do not collide again in step.
async fn backoff(tries: u32) {
    let mut b = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    let ms = (u64::from(tries) * 5) + u64::from(b[0] % 10);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Statements on a pooled client or in a transaction, prepared once per
/// connection (deadpool's statement cache) and then only bound and run.
trait Exec: Sync {
    async fn rows(&self, sql: &str, p: Params<'_>) -> Result<Vec<Row>, PgError>;
    async fn opt(&self, sql: &str, p: Params<'_>) -> Result<Option<Row>, PgError>;
    async fn one(&self, sql: &str, p: Params<'_>) -> Result<Row, PgError>;
    async fn exec(&self, sql: &str, p: Params<'_>) -> Result<u64, PgError>;
}

macro_rules! impl_exec {
    ($t:ty) => {
        impl Exec for $t {
            async fn rows(&self, sql: &str, p: Params<'_>) -> Result<Vec<Row>, PgError> {
                let s = self.prepare_cached(sql).await?;
                self.query(&s, p).await
            }
            async fn opt(&self, sql: &str, p: Params<'_>) -> Result<Option<Row>, PgError> {
                let s = self.prepare_cached(sql).await?;
                self.query_opt(&s, p).await
            }
            async fn one(&self, sql: &str, p: Params<'_>) -> Result<Row, PgError> {
                let s = self.prepare_cached(sql).await?;
                self.query_one(&s, p).await
            }
            async fn exec(&self, sql: &str, p: Params<'_>) -> Result<u64, PgError> {
                let s = self.prepare_cached(sql).await?;
                self.execute(&s, p).await
            }
        }
    };
}

impl_exec!(deadpool_postgres::Client);
impl_exec!(deadpool_postgres::Transaction<'_>);

pub struct PostgresStore {
    pool: Pool,
}

/// A `postgres://` URL taken apart: what tokio-postgres understands, and
/// the parameters this backend reads itself.
struct Target {
    config: tokio_postgres::Config,
    tls: bool,
    root_cert: Option<String>,
    pool_size: usize,
}

/// Reads the URL. `sslmode=require` (or `verify-ca`, `verify-full`) turns
/// TLS on, and the server's certificate is then always verified (against
/// Mozilla's roots, plus `sslrootcert=PATH`): a bank's database link is not
/// left to whoever answers. Without it (or with `disable`/`prefer`) the
/// link is plain, for a database on loopback or a private socket.
fn parse_target(url: &str) -> Result<Target, StorageError> {
    let bad = |why: &str| StorageError::UnsupportedUrl(format!("{}: {why}", redact(url)));
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut tls = false;
    let mut root_cert = None;
    let mut pool_size = DEFAULT_POOL_SIZE;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => match v {
                "disable" | "prefer" | "allow" => tls = false,
                "require" | "verify-ca" | "verify-full" => tls = true,
                other => return Err(bad(&format!("sslmode={other} is not known"))),
            },
            "sslrootcert" => root_cert = Some(v.to_owned()),
            "pool_max_size" => {
                pool_size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad("pool_max_size must be 1 to 1000"))?;
            }
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| bad(&e.to_string()))?;
    config.ssl_mode(if tls {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    if config.get_application_name().is_none() {
        config.application_name("devicetrust-server");
    }
    config.connect_timeout(Duration::from_secs(10));
    Ok(Target {
        config,
        tls,
        root_cert,
        pool_size,
    })
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn tls_connector(
    root_cert: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StorageError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = root_cert {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(path)
            .map_err(|e| StorageError::UnsupportedUrl(format!("sslrootcert {path}: {e}")))?;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| StorageError::UnsupportedUrl(format!("sslrootcert {path}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StorageError::UnsupportedUrl(format!("sslrootcert {path}: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StorageError::Database(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn build_pool(target: Target) -> Result<Pool, StorageError> {
    let mc = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if target.tls {
        let tls = tls_connector(target.root_cert.as_deref())?;
        Manager::from_config(target.config, tls, mc)
    } else {
        Manager::from_config(target.config, tokio_postgres::NoTls, mc)
    };
    Pool::builder(manager)
        .max_size(target.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(30)))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| StorageError::Pool(e.to_string()))
}

impl PostgresStore {
    /// Connects to the database `url` names and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let pool = build_pool(parse_target(url)?)?;
        let store = PostgresStore { pool };
        store.migrate().await.map_err(|e| match e {
            // The first connection: say which database could not be reached.
            StorageError::Pool(msg) | StorageError::Unavailable(msg) => {
                StorageError::Pool(format!("PostgreSQL at {}: {msg}", redact(url)))
            }
            other => other,
        })?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StorageError> {
        // No connection to be had: the database is restarting or failing
        // over (or down), which a client may retry; not a server bug.
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StorageError::Unavailable(pg_message(&e)),
            other => StorageError::Unavailable(other.to_string()),
        })
    }

    /// Applies what is missing of `MIGRATIONS`, all in one transaction,
    /// under an advisory lock: of instances starting at once one migrates,
    /// the others wait and find the schema current. A database migrated by a
    /// newer version is used as it is (migrations only add: see
    /// docs/DEPLOYMENT.md, "Upgrades").
    async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let step = async {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            // Quiet: "already exists, skipping" on every start is noise.
            tx.batch_execute("SET LOCAL client_min_messages = warning")
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS devicetrust_schema (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM devicetrust_schema",
                    &[],
                )
                .await?;
            let current: i32 = row.try_get(0)?;
            for (version, name, sql) in MIGRATIONS {
                if *version <= current {
                    continue;
                }
                tx.batch_execute(sql).await.map_err(|e| {
                    StorageError::Migration(format!("{version:04}_{name}: {}", pg_message(&e)))
                })?;
                tx.execute(
                    "INSERT INTO devicetrust_schema (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await?;
                tracing::info!(version, name, "PostgreSQL schema migrated");
            }
            if let Some((latest, _, _)) = MIGRATIONS.last() {
                if current > *latest {
                    tracing::warn!(
                        database = current,
                        this_version = latest,
                        "the database schema is newer than this server's; running on it"
                    );
                }
            }
            Ok::<_, Fail>(())
        }
        .await;
        match step {
            Ok(()) => Ok(tx.commit().await?),
            Err(Fail::Store(e)) => Err(e),
            Err(Fail::Pg(e)) => Err(StorageError::Migration(pg_message(&e))),
            Err(e @ (Fail::Raced | Fail::CommitUnknown(_))) => {
                Err(StorageError::Migration(e.to_string()))
            }
        }
    }

    /// Row counts of every table, for `migrate`'s check.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let client = self.client().await?;
        let mut out = Vec::new();
        for table in TABLES {
            let row = client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await?;
            out.push(((*table).to_owned(), row.try_get(0)?));
        }
        Ok(out)
    }

    /// A pooled connection, for `migrate`'s bulk copy.
    pub(crate) async fn raw_client(&self) -> Result<deadpool_postgres::Client, StorageError> {
        self.client().await
    }
}

fn user_from_row(r: &Row) -> Result<User, PgError> {
    Ok(User {
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        mobile: r.try_get("mobile")?,
        primary_market: r.try_get("primary_market")?,
        password_hash: r.try_get("password_hash")?,
        security_code_hash: r.try_get("security_code_hash")?,
        enrolled_at: r.try_get("enrolled_at")?,
        created_at: r.try_get("created_at")?,
        mobile_verified: r.try_get("mobile_verified")?,
    })
}

fn login_from_row(r: &Row) -> Result<Login, PgError> {
    let stage: String = r.try_get("stage")?;
    let amr: String = r.try_get("amr")?;
    Ok(Login {
        login_id: r.try_get("login_id")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        stage: LoginStage::parse(&stage).unwrap_or(LoginStage::SecondFactor),
        amr: split_amr(&amr),
        expires_at: r.try_get("expires_at")?,
        otp_sends: r.try_get("otp_sends")?,
        last_send_at: r.try_get("last_send_at")?,
        created_at: r.try_get("created_at")?,
        pending_mobile: r.try_get("pending_mobile")?,
        change_email: r.try_get("change_email")?,
        change_mobile: r.try_get("change_mobile")?,
        network: r.try_get("network")?,
    })
}

/// Stores `w.new` if the user's document is still `w.expected` (see the
/// SQLite twin); false if another write came first.
async fn swap_risk_profile(tx: &impl Exec, w: &RiskWrite, now: i64) -> Result<bool, PgError> {
    let n = match &w.expected {
        Some(expected) => {
            tx.exec(
                "UPDATE risk_profiles SET profile = $2, updated_at = $4
                 WHERE user_id = $1 AND profile = $3",
                &[&w.user_id, &w.new, expected, &now],
            )
            .await?
        }
        None => {
            tx.exec(
                "INSERT INTO risk_profiles (user_id, profile, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO NOTHING",
                &[&w.user_id, &w.new, &now],
            )
            .await?
        }
    };
    Ok(n == 1)
}

fn challenge_from_row(r: &Row) -> Result<Challenge, PgError> {
    Ok(Challenge {
        challenge_id: r.try_get("challenge_id")?,
        device_id: r.try_get("device_id")?,
        challenge: r.try_get("challenge")?,
        login_id: r.try_get("login_id")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn device_from_row(r: &Row) -> Result<Device, PgError> {
    Ok(Device {
        device_id: r.try_get("device_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        platform: r.try_get("platform")?,
        key_storage: r.try_get("key_storage")?,
        user_verification: r.try_get("user_verification")?,
        public_key: r.try_get("public_key")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        trusted_until: r.try_get("trusted_until")?,
        removed_at: r.try_get("removed_at")?,
        registered_by: r.try_get("registered_by")?,
        attestation: match (
            r.try_get::<_, Option<String>>("attestation_format")?,
            r.try_get::<_, Option<String>>("attestation_level")?,
            r.try_get::<_, Option<i64>>("attestation_verified_at")?,
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

fn audit_from_row(r: &Row) -> Result<AuditEvent, PgError> {
    Ok(AuditEvent {
        at: r.try_get("at")?,
        event: r.try_get("event")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        ip: r.try_get("ip")?,
        reason: r.try_get("reason")?,
        actor: r.try_get("actor")?,
    })
}

fn operator_from_row(r: &Row) -> Result<Operator, PgError> {
    Ok(Operator {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        totp_sealed: r.try_get("totp_sealed")?,
        totp_enrolled: r.try_get("totp_enrolled")?,
        totp_last_step: r.try_get("totp_last_step")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
        enrolment_code_hash: r.try_get("enrolment_code_hash")?,
        enrolment_expires_at: r.try_get("enrolment_expires_at")?,
    })
}

fn console_session_from_row(r: &Row) -> Result<ConsoleSession, PgError> {
    Ok(ConsoleSession {
        session_hash: r.try_get("session_hash")?,
        operator: r.try_get("operator")?,
        stage: r.try_get("stage")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn card_from_row(r: &Row) -> Result<Card, PgError> {
    Ok(Card {
        card_ref: r.try_get("card_ref")?,
        number_hash: r.try_get("number_hash")?,
        card_id_hash: r.try_get("card_id_hash")?,
        last4: r.try_get("last4")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        mobile: r.try_get("mobile")?,
        primary_market: r.try_get("primary_market")?,
        activated_at: r.try_get("activated_at")?,
        created_at: r.try_get("created_at")?,
        user_id: r.try_get("user_id")?,
        linked_at: r.try_get("linked_at")?,
    })
}

fn session_from_row(r: &Row) -> Result<SessionRecord, PgError> {
    let amr: String = r.try_get("amr")?;
    Ok(SessionRecord {
        session_id: r.try_get("session_id")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        amr: split_amr(&amr),
        auth_time: r.try_get("auth_time")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn opt_map<T>(row: Option<Row>, f: fn(&Row) -> Result<T, PgError>) -> Result<Option<T>, PgError> {
    row.as_ref().map(f).transpose()
}

fn all_map<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, PgError>) -> Result<Vec<T>, PgError> {
    rows.iter().map(f).collect()
}

const LOGIN_COLS: &str = "login_id, user_id, device_id, stage, amr, expires_at, otp_sends, \
                          last_send_at, created_at, pending_mobile, change_email, change_mobile, \
                          network";
const SESSION_COLS: &str =
    "s.session_id, s.user_id, s.device_id, s.amr, s.auth_time, s.created_at, s.expires_at";

async fn insert_user(c: &impl Exec, u: &User) -> Result<u64, PgError> {
    // ON CONFLICT DO NOTHING, not an error: an error would abort the
    // transaction the caller may still want to answer from.
    c.exec(
        "INSERT INTO users (user_id, name, email, mobile, primary_market, password_hash,
                            security_code_hash, enrolled_at, created_at, mobile_verified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (user_id) DO NOTHING",
        &[
            &u.user_id,
            &u.name,
            &u.email,
            &u.mobile,
            &u.primary_market,
            &u.password_hash,
            &u.security_code_hash,
            &u.enrolled_at,
            &u.created_at,
            &u.mobile_verified,
        ],
    )
    .await
}

async fn user_in(c: &impl Exec, user_id: &str) -> Result<Option<User>, PgError> {
    opt_map(
        c.opt("SELECT * FROM users WHERE user_id = $1", &[&user_id])
            .await?,
        user_from_row,
    )
}

/// Locks the user's row: the per-user rules (enrolment once, the device
/// limit, one pending contact change, removal's cascade) are decided by one
/// transaction at a time, on whichever instance. `NO KEY UPDATE` leaves
/// inserts that merely reference the user (audit, sessions) unblocked.
async fn lock_user(c: &impl Exec, user_id: &str) -> Result<bool, PgError> {
    Ok(c.opt(
        "SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE",
        &[&user_id],
    )
    .await?
    .is_some())
}

async fn insert_login(c: &impl Exec, l: &Login) -> Result<(), PgError> {
    c.exec(
        "INSERT INTO logins (login_id, user_id, device_id, stage, amr, expires_at,
                             otp_sends, last_send_at, created_at, pending_mobile,
                             change_email, change_mobile, network)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &l.login_id,
            &l.user_id,
            &l.device_id,
            &l.stage.as_str(),
            &join_amr(&l.amr),
            &l.expires_at,
            &l.otp_sends,
            &l.last_send_at,
            &l.created_at,
            &l.pending_mobile,
            &l.change_email,
            &l.change_mobile,
            &l.network,
        ],
    )
    .await?;
    Ok(())
}

/// A session and its first tokens. The device is share-locked while the
/// session is bound to it: a removal running at the same time either
/// committed first (the device is dropped from the session) or waits for
/// this one and then revokes the session it finds.
async fn insert_audit(c: &impl Exec, e: &AuditEvent) -> Result<(), PgError> {
    c.exec(
        "INSERT INTO audit (at, event, user_id, device_id, ip, reason, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &e.at,
            &e.event,
            &e.user_id,
            &e.device_id,
            &e.ip,
            &e.reason,
            &e.actor,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_session(
    c: &impl Exec,
    s: &SessionRecord,
    tokens: &TokenPair,
) -> Result<(), PgError> {
    let device: Option<String> = match &s.device_id {
        None => None,
        Some(id) => c
            .opt(
                "SELECT device_id FROM devices WHERE device_id = $1 AND removed_at IS NULL
                 FOR SHARE",
                &[id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
    };
    c.exec(
        "INSERT INTO sessions (session_id, user_id, device_id, amr, auth_time, created_at,
                               expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &s.session_id,
            &s.user_id,
            &device,
            &join_amr(&s.amr),
            &s.auth_time,
            &s.created_at,
            &s.expires_at,
        ],
    )
    .await?;
    insert_tokens(c, &s.session_id, tokens).await
}

async fn insert_tokens(c: &impl Exec, session_id: &str, t: &TokenPair) -> Result<(), PgError> {
    c.exec(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[&t.access_hash, &session_id, &t.access_expires_at],
    )
    .await?;
    c.exec(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[&t.refresh_hash, &session_id, &t.refresh_expires_at],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn migrations_pending(&self) -> Result<bool, StorageError> {
        let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        let c = self.client().await?;
        let row = c
            .one(
                "SELECT COALESCE(MAX(version), 0) FROM devicetrust_schema",
                &[],
            )
            .await?;
        let applied: i32 = row.try_get(0)?;
        Ok(applied < latest)
    }

    async fn take_legacy_secret(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "DELETE FROM server_secrets WHERE name = 'otp_hmac_key' RETURNING value",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn server_key_check(&self, check: &[u8]) -> Result<bool, StorageError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO server_secrets (name, value) VALUES ('key_check', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&check],
        )
        .await?;
        let kept: Vec<u8> = c
            .one(
                "SELECT value FROM server_secrets WHERE name = 'key_check'",
                &[],
            )
            .await?
            .try_get(0)?;
        // Compared once at start, not by any request: no timing to hide.
        Ok(kept == check)
    }

    async fn create_user(&self, u: User) -> Result<(), StorageError> {
        let c = self.client().await?;
        match insert_user(&c, &u).await? {
            1 => Ok(()),
            _ => Err(StorageError::Conflict),
        }
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StorageError> {
        let c = self.client().await?;
        Ok(user_in(&c, user_id).await?)
    }

    async fn set_market(&self, market: &str, second_factor: bool) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO markets (market, second_factor) VALUES ($1, $2)
             ON CONFLICT (market) DO UPDATE SET second_factor = excluded.second_factor",
            &[&market, &if second_factor { "required" } else { "off" }],
        )
        .await?;
        Ok(())
    }

    async fn market_requires_second_factor(&self, market: &str) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT second_factor FROM markets WHERE market = $1",
                &[&market],
            )
            .await?;
        let setting: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        Ok(setting.as_deref() != Some("off"))
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: i64,
        policy: LockoutPolicy,
    ) -> Result<Reservation, StorageError> {
        // A running lock is answered from a plain read: a flood against a
        // locked id writes nothing and waits for no row lock.
        if let Some(until) = self.locked_until(key, now).await? {
            return Ok(Reservation::Locked { until });
        }
        transaction!(self, |tx| {
            // The row locked (created at zero if new): reservations for one
            // key are counted one at a time across every instance.
            const READ: &str = "SELECT count, locked_until, updated_at FROM attempts
                                WHERE user_key = $1 FOR UPDATE";
            let row = match tx.opt(READ, &[&key]).await? {
                Some(row) => row,
                None => {
                    tx.exec(
                        "INSERT INTO attempts (user_key, count, locked_until, updated_at)
                         VALUES ($1, 0, NULL, $2) ON CONFLICT (user_key) DO NOTHING",
                        &[&key, &now],
                    )
                    .await?;
                    tx.opt(READ, &[&key]).await?.ok_or(Fail::Raced)?
                }
            };
            let n: i64 = row.try_get(0)?;
            let locked_until: Option<i64> = row.try_get(1)?;
            let updated_at: i64 = row.try_get(2)?;
            let mut count = 0;
            match locked_until {
                Some(until) if until > now => {
                    return Ok(End::Rollback(Reservation::Locked { until }))
                }
                // A lock that ran out starts the count afresh.
                Some(_) => {}
                None => {
                    let stale = updated_at + policy.memory_s <= now;
                    if stale {
                        // Forgotten: start afresh.
                    } else if n < policy.threshold {
                        count = n;
                    } else if now < updated_at + IN_FLIGHT_S {
                        // Attempts still being evaluated use up the allowance.
                        return Ok(End::Rollback(Reservation::InFlight));
                    } else if updated_at + policy.duration_s > now {
                        // They never finished: a real lock with a true end.
                        let until = updated_at + policy.duration_s;
                        tx.exec(
                            "UPDATE attempts SET locked_until = $2 WHERE user_key = $1",
                            &[&key, &until],
                        )
                        .await?;
                        return Ok(End::Commit(Reservation::Locked { until }));
                    }
                }
            }
            count += 1;
            tx.exec(
                "UPDATE attempts SET count = $2, locked_until = NULL, updated_at = $3
                 WHERE user_key = $1",
                &[&key, &count, &now],
            )
            .await?;
            Ok(End::Commit(Reservation::Counted(count)))
        })
    }

    async fn refund_attempt(&self, key: &str) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            // A row taken back to zero is deleted.
            tx.exec(
                "DELETE FROM attempts WHERE user_key = $1 AND locked_until IS NULL AND count <= 1",
                &[&key],
            )
            .await?;
            tx.exec(
                "UPDATE attempts SET count = count - 1
                 WHERE user_key = $1 AND locked_until IS NULL AND count > 1",
                &[&key],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    async fn lock(&self, key: &str, until: i64) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE attempts SET locked_until = $2 WHERE user_key = $1",
            &[&key, &until],
        )
        .await?;
        Ok(())
    }

    async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT locked_until FROM attempts WHERE user_key = $1 AND locked_until > $2",
                &[&key, &now],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn reset_attempts(&self, key: &str, now: i64) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "DELETE FROM attempts
             WHERE user_key = $1 AND (locked_until IS NULL OR locked_until <= $2)",
            &[&key, &now],
        )
        .await?;
        Ok(())
    }

    async fn unlock(&self, key: &str, scope: UnlockScope) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "DELETE FROM attempts WHERE ($2::BOOLEAN AND user_key = $1::TEXT)
                OR ($3::BOOLEAN AND user_key IN (
                 'recovery:user:' || $1::TEXT,
                 (SELECT 'recovery:email:' || lower(email) FROM users WHERE user_id = $1::TEXT)))",
            &[&key, &scope.sign_in(), &scope.code_checks()],
        )
        .await?;
        Ok(())
    }

    async fn create_login(&self, l: Login) -> Result<(), StorageError> {
        let c = self.client().await?;
        insert_login(&c, &l).await?;
        Ok(())
    }

    async fn login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                &format!("SELECT {LOGIN_COLS} FROM logins WHERE login_id = $1 AND expires_at > $2"),
                &[&login_id, &now],
            )
            .await?;
        Ok(opt_map(row, login_from_row)?)
    }

    async fn enrol(
        &self,
        login_id: &str,
        security_code_hash: &str,
        mobile: Option<&str>,
        now: i64,
    ) -> Result<EnrolOutcome, StorageError> {
        transaction!(self, |tx| {
            let owner = tx
                .opt(
                    "SELECT user_id FROM logins WHERE login_id = $1",
                    &[&login_id],
                )
                .await?;
            let Some(owner) = owner else {
                return Ok(End::Rollback(EnrolOutcome::LoginGone));
            };
            let user_id: String = owner.try_get(0)?;
            // The user first (the lock order), then the login.
            let user = tx
                .opt(
                    "SELECT enrolled_at, mobile FROM users WHERE user_id = $1 FOR NO KEY UPDATE",
                    &[&user_id],
                )
                .await?;
            let Some(user) = user else {
                return Ok(End::Rollback(EnrolOutcome::LoginGone));
            };
            let enrolled_at: Option<i64> = user.try_get(0)?;
            let on_file: Option<String> = user.try_get(1)?;
            let login = tx
                .opt(
                    &format!(
                        "UPDATE logins SET stage = 'second_factor', pending_mobile = $3
                         WHERE login_id = $1 AND stage = 'enrolment' AND expires_at > $2
                         RETURNING {LOGIN_COLS}"
                    ),
                    &[&login_id, &now, &mobile.is_some()],
                )
                .await?;
            let Some(login) = opt_map(login, login_from_row)? else {
                return Ok(End::Rollback(EnrolOutcome::LoginGone));
            };
            if enrolled_at.is_some() {
                return Ok(End::Rollback(EnrolOutcome::LoginGone));
            }
            if mobile.is_some() && on_file.is_some() {
                return Ok(End::Rollback(EnrolOutcome::MobileOnFile));
            }
            tx.exec(
                "UPDATE users SET security_code_hash = $2, enrolled_at = $3,
                                  mobile = COALESCE($4::TEXT, mobile),
                                  mobile_verified = CASE WHEN $4::TEXT IS NULL
                                                         THEN mobile_verified ELSE FALSE END
                 WHERE user_id = $1",
                &[&login.user_id, &security_code_hash, &now, &mobile],
            )
            .await?;
            // Enrolment happens once: every other enrolment login dies.
            tx.exec(
                "DELETE FROM logins WHERE user_id = $1 AND stage = 'enrolment'",
                &[&login.user_id],
            )
            .await?;
            Ok(End::Commit(EnrolOutcome::Enrolled(login)))
        })
    }

    async fn confirm_mobile(&self, user_id: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE users SET mobile_verified = TRUE WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        Ok(())
    }

    async fn consume_login(&self, login_id: &str, now: i64) -> Result<Option<Login>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                &format!(
                    "DELETE FROM logins WHERE login_id = $1 AND expires_at > $2
                     RETURNING {LOGIN_COLS}"
                ),
                &[&login_id, &now],
            )
            .await?;
        Ok(opt_map(row, login_from_row)?)
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
        transaction!(self, |tx| {
            // The login's row locked: its spacing and cap, one send at a time.
            let row = tx
                .opt(
                    "SELECT otp_sends, last_send_at, user_id FROM logins
                     WHERE login_id = $1 AND expires_at > $2 AND stage != 'enrolment'
                     FOR UPDATE",
                    &[&login_id, &now],
                )
                .await?;
            let Some(row) = row else {
                return Ok(End::Rollback(OtpSendOutcome::LoginGone));
            };
            let sends: i64 = row.try_get(0)?;
            let last: Option<i64> = row.try_get(1)?;
            let user_id: String = row.try_get(2)?;
            if let Some(last) = last {
                let wait = last + resend_after_s - now;
                if wait > 0 {
                    return Ok(End::Rollback(OtpSendOutcome::TooSoon(wait)));
                }
            }
            if sends >= max_sends {
                return Ok(End::Rollback(OtpSendOutcome::CapReached));
            }
            // The hourly caps across logins and instances: sends to one user,
            // and to one destination, are counted one at a time (always the
            // user's lock first, so two of them never wait on each other).
            tx.exec(
                "SELECT pg_advisory_xact_lock(hashtextextended('otp-user:' || $1::TEXT, 0))",
                &[&user_id],
            )
            .await?;
            tx.exec(
                "SELECT pg_advisory_xact_lock(
                     hashtextextended('otp-destination:' || encode($1::BYTEA, 'hex'), 0))",
                &[&caps.destination_key],
            )
            .await?;
            let window_start = now - 3600;
            for (n, oldest) in [
                {
                    let r = tx
                        .one(
                            "SELECT COUNT(*), MIN(at) FROM otp_sends WHERE user_id = $1 AND at > $2",
                            &[&user_id, &window_start],
                        )
                        .await?;
                    (r.try_get::<_, i64>(0)?, r.try_get::<_, Option<i64>>(1)?)
                },
                {
                    let r = tx
                        .one(
                            "SELECT COUNT(*), MIN(at) FROM otp_sends
                             WHERE destination = $1 AND at > $2",
                            &[&caps.destination_key, &window_start],
                        )
                        .await?;
                    (r.try_get::<_, i64>(0)?, r.try_get::<_, Option<i64>>(1)?)
                },
            ] {
                if n >= caps.per_hour {
                    let wait = oldest.map(|t| t + 3600 - now).unwrap_or(3600);
                    return Ok(End::Rollback(OtpSendOutcome::HourlyCapReached(wait.max(1))));
                }
            }
            let id: i64 = tx
                .one(
                    "INSERT INTO otp_sends (user_id, destination, at) VALUES ($1, $2, $3)
                     RETURNING id",
                    &[&user_id, &caps.destination_key, &now],
                )
                .await?
                .try_get(0)?;
            tx.exec(
                "UPDATE logins SET otp_sends = otp_sends + 1, last_send_at = $2 WHERE login_id = $1",
                &[&login_id, &now],
            )
            .await?;
            // A new send replaces the old code and its tries.
            tx.exec(
                "INSERT INTO otps (login_id, channel, mac, attempts, expires_at)
                 VALUES ($1, $2, $3, 0, $4)
                 ON CONFLICT (login_id) DO UPDATE SET
                   channel = excluded.channel, mac = excluded.mac,
                   attempts = 0, expires_at = excluded.expires_at",
                &[&login_id, &channel, &mac, &expires_at],
            )
            .await?;
            Ok(End::Commit(OtpSendOutcome::Sent {
                taken_back: SendUndo {
                    send_id: id,
                    previous_last_send_at: last,
                },
            }))
        })
    }

    async fn unsend_otp(&self, login_id: &str, undo: SendUndo) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            tx.exec(
                "UPDATE logins SET otp_sends = GREATEST(otp_sends - 1, 0), last_send_at = $2
                 WHERE login_id = $1",
                &[&login_id, &undo.previous_last_send_at],
            )
            .await?;
            tx.exec("DELETE FROM otps WHERE login_id = $1", &[&login_id])
                .await?;
            tx.exec("DELETE FROM otp_sends WHERE id = $1", &[&undo.send_id])
                .await?;
            Ok(End::Commit(()))
        })
    }

    async fn try_otp(&self, login_id: &str) -> Result<Option<OtpTry>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "UPDATE otps SET attempts = attempts + 1 WHERE login_id = $1
                 RETURNING channel, mac, attempts, expires_at",
                &[&login_id],
            )
            .await?;
        Ok(opt_map(row, |r| {
            Ok(OtpTry {
                channel: r.try_get(0)?,
                mac: r.try_get(1)?,
                attempts: r.try_get(2)?,
                expires_at: r.try_get(3)?,
            })
        })?)
    }

    async fn create_challenge(&self, ch: Challenge) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO challenges (challenge_id, device_id, challenge, login_id, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &ch.challenge_id,
                &ch.device_id,
                &ch.challenge,
                &ch.login_id,
                &ch.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn challenge(
        &self,
        challenge_id: &str,
        now: i64,
    ) -> Result<Option<Challenge>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT * FROM challenges WHERE challenge_id = $1 AND expires_at > $2",
                &[&challenge_id, &now],
            )
            .await?;
        Ok(opt_map(row, challenge_from_row)?)
    }

    async fn redeem_challenge(
        &self,
        key: ChallengeKey,
        now: i64,
        redemption: Redemption,
    ) -> Result<ChallengeOutcome, StorageError> {
        transaction!(self, |tx| {
            // Which device (ids never change), to lock it before the
            // challenge, in the order a removal takes them.
            let device_id: Option<String> = match &key {
                ChallengeKey::Stored(challenge_id) => tx
                    .opt(
                        "SELECT device_id FROM challenges WHERE challenge_id = $1",
                        &[challenge_id],
                    )
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?,
                ChallengeKey::Token { device_id, .. } => Some(device_id.clone()),
            };
            let Some(device_id) = device_id else {
                return Ok(End::Rollback(ChallengeOutcome::Gone));
            };
            // A removal either committed before (seen here) or waits until
            // this commits and then revokes the session made here.
            let device = tx
                .opt(
                    "SELECT removed_at, trusted_until FROM devices WHERE device_id = $1
                     FOR NO KEY UPDATE",
                    &[&device_id],
                )
                .await?;
            // Of racing redemptions, on any instance, one deletes the row
            // (a stored challenge) or inserts it (a token: the second
            // insert waits for the first to commit, then finds it).
            let login_id = match &key {
                ChallengeKey::Stored(challenge_id) => {
                    let consumed = tx
                        .opt(
                            "DELETE FROM challenges WHERE challenge_id = $1 AND expires_at > $2
                             RETURNING *",
                            &[challenge_id, &now],
                        )
                        .await?;
                    let Some(ch) = opt_map(consumed, challenge_from_row)? else {
                        return Ok(End::Rollback(ChallengeOutcome::Gone));
                    };
                    ch.login_id
                }
                ChallengeKey::Token {
                    hash, expires_at, ..
                } => {
                    if *expires_at <= now {
                        return Ok(End::Rollback(ChallengeOutcome::Gone));
                    }
                    let fresh = tx
                        .exec(
                            "INSERT INTO used_challenges (token_hash, expires_at)
                             VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            &[hash, expires_at],
                        )
                        .await?;
                    if fresh == 0 {
                        return Ok(End::Rollback(ChallengeOutcome::Gone));
                    }
                    None
                }
            };
            let device: Option<(Option<i64>, i64)> = device
                .map(|r| Ok::<_, PgError>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()?;
            if let Some(refused) = ChallengeOutcome::refusal_for_device(device, now) {
                return Ok(End::Rollback(refused));
            }
            let login = match &login_id {
                None => None,
                Some(login_id) => {
                    let login = tx
                        .opt(
                            &format!(
                                "DELETE FROM logins WHERE login_id = $1 AND expires_at > $2
                                 RETURNING {LOGIN_COLS}"
                            ),
                            &[login_id, &now],
                        )
                        .await?;
                    let login = opt_map(login, login_from_row)?;
                    // The login finished another way (OTP): nothing is kept.
                    if login.is_none() {
                        return Ok(End::Rollback(ChallengeOutcome::Gone));
                    }
                    login
                }
            };
            let mut risk_written = false;
            tx.exec(
                "UPDATE devices SET last_used_at = $2 WHERE device_id = $1",
                &[&device_id, &now],
            )
            .await?;
            match &redemption {
                Redemption::Session {
                    record,
                    tokens,
                    reset_key,
                    risk,
                    audit,
                } => {
                    insert_session(&tx, record, tokens).await?;
                    if let Some(e) = audit {
                        insert_audit(&tx, e).await?;
                    }
                    if let Some(w) = risk {
                        risk_written = swap_risk_profile(&tx, w, now).await?;
                    }
                    // A completed sign-in restarts the count; a running lock runs on.
                    tx.exec(
                        "DELETE FROM attempts
                         WHERE user_key = $1 AND (locked_until IS NULL OR locked_until <= $2)",
                        &[reset_key, &now],
                    )
                    .await?;
                }
                Redemption::StepUp(l) => insert_login(&tx, l).await?,
            }
            Ok(End::Commit(ChallengeOutcome::Consumed {
                login,
                risk_written,
            }))
        })
    }

    async fn spend_registration(&self, registration_id: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "DELETE FROM registrations WHERE registration_id = $1",
            &[&registration_id],
        )
        .await?;
        Ok(())
    }

    async fn create_registration(&self, reg: Registration) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO registrations (registration_id, user_id, challenge, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &reg.registration_id,
                &reg.user_id,
                &reg.challenge,
                &reg.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn registration(
        &self,
        registration_id: &str,
        now: i64,
    ) -> Result<Option<Registration>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT registration_id, user_id, challenge, expires_at FROM registrations
                 WHERE registration_id = $1 AND expires_at > $2",
                &[&registration_id, &now],
            )
            .await?;
        Ok(opt_map(row, |r| {
            Ok(Registration {
                registration_id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                challenge: r.try_get(2)?,
                expires_at: r.try_get(3)?,
            })
        })?)
    }

    async fn finish_registration(
        &self,
        registration_id: &str,
        session_id: &str,
        d: Device,
        max_devices: i64,
        now: i64,
    ) -> Result<RegistrationOutcome, StorageError> {
        transaction!(self, |tx| {
            // The device limit is counted by one registration at a time.
            lock_user(&tx, &d.user_id).await?;
            let deleted = tx
                .exec(
                    "DELETE FROM registrations
                     WHERE registration_id = $1 AND user_id = $2 AND expires_at > $3",
                    &[&registration_id, &d.user_id, &now],
                )
                .await?;
            if deleted != 1 {
                return Ok(End::Rollback(RegistrationOutcome::Gone));
            }
            let active: i64 = tx
                .one(
                    "SELECT COUNT(*) FROM devices WHERE user_id = $1 AND removed_at IS NULL",
                    &[&d.user_id],
                )
                .await?
                .try_get(0)?;
            if active >= max_devices {
                // The registration was used, even if refused.
                return Ok(End::Commit(RegistrationOutcome::DeviceLimit));
            }
            tx.exec(
                "INSERT INTO devices (device_id, user_id, name, platform, key_storage,
                     user_verification, public_key, created_at, last_used_at, trusted_until,
                     removed_at, registered_by, attestation_format, attestation_level,
                     attestation_verified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, $14)",
                &[
                    &d.device_id,
                    &d.user_id,
                    &d.name,
                    &d.platform,
                    &d.key_storage,
                    &d.user_verification,
                    &d.public_key,
                    &d.created_at,
                    &d.last_used_at,
                    &d.trusted_until,
                    &d.registered_by,
                    &d.attestation.as_ref().map(|a| a.format.clone()),
                    &d.attestation.as_ref().map(|a| a.security_level.clone()),
                    &d.attestation.as_ref().map(|a| a.verified_at),
                ],
            )
            .await?;
            tx.exec(
                "UPDATE sessions SET device_id = $2 WHERE session_id = $1 AND device_id IS NULL",
                &[&session_id, &d.device_id],
            )
            .await?;
            Ok(End::Commit(RegistrationOutcome::Created))
        })
    }

    async fn device(&self, device_id: &str) -> Result<Option<Device>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt("SELECT * FROM devices WHERE device_id = $1", &[&device_id])
            .await?;
        Ok(opt_map(row, device_from_row)?)
    }

    async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT * FROM devices WHERE user_id = $1 AND removed_at IS NULL
                 ORDER BY created_at, device_id",
                &[&user_id],
            )
            .await?;
        Ok(all_map(rows, device_from_row)?)
    }

    async fn remove_device(
        &self,
        user_id: &str,
        device_id: &str,
        now: i64,
    ) -> Result<Vec<Device>, StorageError> {
        transaction!(self, |tx| {
            // One removal or registration of the user at a time: the
            // family tree read below is the one that is removed.
            lock_user(&tx, user_id).await?;
            let rows = tx
                .rows(
                    "WITH RECURSIVE fallen(device_id) AS (
                         SELECT device_id FROM devices
                          WHERE device_id = $1 AND user_id = $2 AND removed_at IS NULL
                         UNION
                         SELECT d.device_id FROM devices d
                           JOIN fallen f ON d.registered_by = f.device_id
                          WHERE d.removed_at IS NULL
                     )
                     UPDATE devices SET removed_at = $3
                      WHERE device_id IN (SELECT device_id FROM fallen) AND removed_at IS NULL
                     RETURNING *",
                    &[&device_id, &user_id, &now],
                )
                .await?;
            let removed = all_map(rows, device_from_row)?;
            for d in &removed {
                tx.exec(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'device_removed'
                     WHERE device_id = $1 AND revoked_at IS NULL",
                    &[&d.device_id, &now],
                )
                .await?;
                tx.exec(
                    "DELETE FROM challenges WHERE device_id = $1",
                    &[&d.device_id],
                )
                .await?;
            }
            Ok(End::Commit(removed))
        })
    }

    async fn renew_trust(&self, device_id: &str, until: i64) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE devices SET trusted_until = $2 WHERE device_id = $1 AND removed_at IS NULL",
            &[&device_id, &until],
        )
        .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        s: SessionRecord,
        tokens: TokenPair,
    ) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            insert_session(&tx, &s, &tokens).await?;
            Ok(End::Commit(()))
        })
    }

    async fn session_for_access(
        &self,
        access_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                &format!(
                    "SELECT {SESSION_COLS} FROM access_tokens a
                     JOIN sessions s ON s.session_id = a.session_id
                     WHERE a.token_hash = $1 AND a.expires_at > $2 AND s.revoked_at IS NULL
                       AND s.expires_at > $2"
                ),
                &[&access_hash, &now],
            )
            .await?;
        Ok(opt_map(row, session_from_row)?)
    }

    async fn rotate_refresh(
        &self,
        refresh_hash: &[u8],
        tokens: TokenPair,
        now: i64,
    ) -> Result<RefreshOutcome, StorageError> {
        transaction!(self, |tx| {
            // Locked: of two instances rotating one token, the second sees
            // it used and treats it as the reuse it is.
            let row = tx
                .opt(
                    "SELECT session_id, used_at, expires_at FROM refresh_tokens
                     WHERE token_hash = $1 FOR UPDATE",
                    &[&refresh_hash],
                )
                .await?;
            let Some(row) = row else {
                return Ok(End::Rollback(RefreshOutcome::Invalid));
            };
            let session_id: String = row.try_get(0)?;
            let used_at: Option<i64> = row.try_get(1)?;
            let expires_at: i64 = row.try_get(2)?;
            let session = tx
                .opt(
                    &format!(
                        "SELECT {SESSION_COLS} FROM sessions s
                         WHERE s.session_id = $1 AND s.revoked_at IS NULL"
                    ),
                    &[&session_id],
                )
                .await?;
            let Some(session) = opt_map(session, session_from_row)? else {
                return Ok(End::Rollback(RefreshOutcome::Invalid));
            };
            if used_at.is_some() {
                // A used token came back: someone holds a copy. Revoke the family.
                tx.exec(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_reuse'
                     WHERE session_id = $1",
                    &[&session_id, &now],
                )
                .await?;
                return Ok(End::Commit(RefreshOutcome::Reused(session)));
            }
            if expires_at <= now || session.expires_at <= now {
                return Ok(End::Rollback(RefreshOutcome::Invalid));
            }
            tx.exec(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                &[&refresh_hash, &now],
            )
            .await?;
            insert_tokens(&tx, &session_id, &tokens).await?;
            Ok(End::Commit(RefreshOutcome::Rotated(session)))
        })
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3
             WHERE session_id = $1 AND revoked_at IS NULL",
            &[&session_id, &now, &reason],
        )
        .await?;
        Ok(())
    }

    async fn create_card(&self, card: Card) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO cards (card_ref, number_hash, card_id_hash, last4, name, email, mobile,
                                primary_market, activated_at, created_at, user_id, linked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)",
            &[
                &card.card_ref,
                &card.number_hash,
                &card.card_id_hash,
                &card.last4,
                &card.name,
                &card.email,
                &card.mobile,
                &card.primary_market,
                &card.activated_at,
                &card.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn activate_card(&self, card_ref: &str, now: i64) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE cards SET activated_at = COALESCE(activated_at, $2) WHERE card_ref = $1",
                &[&card_ref, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn card_by_number(&self, number_hash: &[u8]) -> Result<Option<Card>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT * FROM cards WHERE number_hash = $1",
                &[&number_hash],
            )
            .await?;
        Ok(opt_map(row, card_from_row)?)
    }

    async fn create_user_from_card(
        &self,
        user: User,
        card_ref: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError> {
        transaction!(self, |tx| {
            if insert_user(&tx, &user).await? != 1 {
                return Ok(End::Rollback(CardLinkOutcome::UserExists));
            }
            // Of two linking the same card, the second waits for the
            // first's row lock and then finds the card taken.
            let n = tx
                .exec(
                    "UPDATE cards SET user_id = $2, linked_at = $3
                     WHERE card_ref = $1 AND user_id IS NULL",
                    &[&card_ref, &user.user_id, &now],
                )
                .await?;
            if n != 1 {
                return Ok(End::Rollback(CardLinkOutcome::AlreadyEnrolled));
            }
            Ok(End::Commit(CardLinkOutcome::Linked))
        })
    }

    async fn link_card(
        &self,
        card_ref: &str,
        user_id: &str,
        now: i64,
    ) -> Result<CardLinkOutcome, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE cards SET user_id = $2, linked_at = $3
                 WHERE card_ref = $1 AND user_id IS NULL",
                &[&card_ref, &user_id, &now],
            )
            .await?;
        Ok(if n == 1 {
            CardLinkOutcome::Linked
        } else {
            CardLinkOutcome::AlreadyEnrolled
        })
    }

    async fn cards_of(&self, user_id: &str) -> Result<Vec<Card>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT * FROM cards WHERE user_id = $1 ORDER BY linked_at, card_ref",
                &[&user_id],
            )
            .await?;
        Ok(all_map(rows, card_from_row)?)
    }

    async fn users_by_email(&self, email: &str) -> Result<Vec<User>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT * FROM users WHERE lower(email) = lower($1)
                 ORDER BY user_id LIMIT 20",
                &[&email],
            )
            .await?;
        Ok(all_map(rows, user_from_row)?)
    }

    async fn complete_recovery(
        &self,
        recovery_id: &str,
        password_hash: &str,
        lockout_key: &str,
        now: i64,
    ) -> Result<Option<PasswordReset>, StorageError> {
        transaction!(self, |tx| {
            let login = tx
                .opt(
                    &format!(
                        "DELETE FROM logins WHERE login_id = $1 AND stage = 'recovery'
                           AND expires_at > $2 RETURNING {LOGIN_COLS}"
                    ),
                    &[&recovery_id, &now],
                )
                .await?;
            let Some(login) = opt_map(login, login_from_row)? else {
                return Ok(End::Rollback(None));
            };
            tx.exec(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&login.user_id, &password_hash],
            )
            .await?;
            // Recovery is how a locked-out user gets back in.
            tx.exec("DELETE FROM attempts WHERE user_key = $1", &[&lockout_key])
                .await?;
            let sessions_revoked = tx
                .exec(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'recovery'
                     WHERE user_id = $1 AND revoked_at IS NULL",
                    &[&login.user_id, &now],
                )
                .await? as usize;
            let devices_to_reauthorise = tx
                .exec(
                    "UPDATE devices SET trusted_until = LEAST(trusted_until, $2)
                     WHERE user_id = $1 AND removed_at IS NULL",
                    &[&login.user_id, &now],
                )
                .await? as usize;
            // Every other step in progress for the user ends too.
            tx.exec("DELETE FROM logins WHERE user_id = $1", &[&login.user_id])
                .await?;
            let user = user_in(&tx, &login.user_id)
                .await?
                .ok_or(StorageError::Conflict)?;
            Ok(End::Commit(Some(PasswordReset {
                user,
                sessions_revoked,
                devices_to_reauthorise,
            })))
        })
    }

    async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            tx.exec(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user_id, &password_hash],
            )
            .await?;
            tx.exec(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = 'password_changed'
                 WHERE user_id = $1 AND session_id != $2 AND revoked_at IS NULL",
                &[&user_id, &keep_session, &now],
            )
            .await?;
            // Sign-ins and recoveries begun before the change end too.
            tx.exec(
                "DELETE FROM logins WHERE user_id = $1 AND stage != 'contact_change'",
                &[&user_id],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    async fn set_security_code(&self, user_id: &str, hash: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE users SET security_code_hash = $2 WHERE user_id = $1",
            &[&user_id, &hash],
        )
        .await?;
        Ok(())
    }

    async fn start_contact_change(&self, login: Login) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            // One pending change per user, whichever instance asked.
            lock_user(&tx, &login.user_id).await?;
            tx.exec(
                "DELETE FROM logins WHERE user_id = $1 AND stage = 'contact_change'",
                &[&login.user_id],
            )
            .await?;
            insert_login(&tx, &login).await?;
            Ok(End::Commit(()))
        })
    }

    async fn apply_contact_change(
        &self,
        change_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Option<(User, User)>, StorageError> {
        transaction!(self, |tx| {
            lock_user(&tx, user_id).await?;
            let login = tx
                .opt(
                    &format!(
                        "DELETE FROM logins WHERE login_id = $1 AND user_id = $2
                           AND stage = 'contact_change' AND expires_at > $3
                         RETURNING {LOGIN_COLS}"
                    ),
                    &[&change_id, &user_id, &now],
                )
                .await?;
            let Some(login) = opt_map(login, login_from_row)? else {
                return Ok(End::Rollback(None));
            };
            let Some(before) = user_in(&tx, user_id).await? else {
                return Ok(End::Rollback(None));
            };
            if let Some(email) = &login.change_email {
                tx.exec(
                    "UPDATE users SET email = $2 WHERE user_id = $1",
                    &[&user_id, email],
                )
                .await?;
            }
            if let Some(mobile) = &login.change_mobile {
                // Proven by the code sent to it.
                tx.exec(
                    "UPDATE users SET mobile = $2, mobile_verified = TRUE WHERE user_id = $1",
                    &[&user_id, mobile],
                )
                .await?;
            }
            let after = user_in(&tx, user_id).await?.ok_or(StorageError::Conflict)?;
            Ok(End::Commit(Some((before, after))))
        })
    }

    async fn remove_mobile(&self, user_id: &str) -> Result<Option<User>, StorageError> {
        transaction!(self, |tx| {
            lock_user(&tx, user_id).await?;
            let before = user_in(&tx, user_id).await?.filter(|u| u.mobile.is_some());
            if before.is_none() {
                return Ok(End::Rollback(None));
            }
            tx.exec(
                "UPDATE users SET mobile = NULL, mobile_verified = TRUE WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            Ok(End::Commit(before))
        })
    }

    async fn security_events(
        &self,
        user_id: &str,
        types: &[&str],
        limit: i64,
    ) -> Result<Vec<(AuditEvent, Option<String>)>, StorageError> {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT a.at, a.event, a.user_id, a.device_id, a.ip, a.reason, a.actor,
                        d.name AS device_name
                   FROM audit a LEFT JOIN devices d ON d.device_id = a.device_id
                  WHERE a.user_id = $1 AND a.event = ANY($2::TEXT[])
                  ORDER BY a.id DESC LIMIT $3",
                &[&user_id, &types, &limit],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((audit_from_row(r)?, r.try_get("device_name")?));
        }
        Ok(out)
    }

    async fn sign_ins_since(&self, user_id: &str, since: i64) -> Result<i64, StorageError> {
        let c = self.client().await?;
        let n: i64 = c
            .one(
                "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND created_at > $2",
                &[&user_id, &since],
            )
            .await?
            .try_get(0)?;
        Ok(n)
    }

    async fn risk_profile(&self, user_id: &str) -> Result<Option<String>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "SELECT profile FROM risk_profiles WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn update_risk_profile(
        &self,
        user_id: &str,
        now: i64,
        update: RiskUpdate,
    ) -> Result<(), StorageError> {
        // The change runs once; a transaction retried after it ran (its
        // connection died) gives up rather than guess.
        let update = std::sync::Mutex::new(Some(update));
        transaction!(self, |tx| {
            // Per user, whether or not the row exists yet: two first
            // sign-ins at once must not both insert.
            tx.exec(
                "SELECT pg_advisory_xact_lock(hashtextextended('risk:' || $1, 0))",
                &[&user_id],
            )
            .await?;
            let old: Option<String> = tx
                .opt(
                    "SELECT profile FROM risk_profiles WHERE user_id = $1",
                    &[&user_id],
                )
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let change = update
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or(Fail::Raced)?;
            let new = change(old.as_deref());
            tx.exec(
                "INSERT INTO risk_profiles (user_id, profile, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET
                   profile = excluded.profile, updated_at = excluded.updated_at",
                &[&user_id, &new, &now],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    async fn create_operator(&self, o: Operator) -> Result<(), StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "INSERT INTO operators (name, role, password_hash, totp_sealed, totp_enrolled,
                                        totp_last_step, disabled_at, created_at,
                                        enrolment_code_hash, enrolment_expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
                &[
                    &o.name,
                    &o.role,
                    &o.password_hash,
                    &o.totp_sealed,
                    &o.totp_enrolled,
                    &o.totp_last_step,
                    &o.disabled_at,
                    &o.created_at,
                    &o.enrolment_code_hash,
                    &o.enrolment_expires_at,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StorageError::Conflict);
        }
        Ok(())
    }

    async fn operator(&self, name: &str) -> Result<Option<Operator>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt("SELECT * FROM operators WHERE name = $1", &[&name])
            .await?;
        Ok(row.as_ref().map(operator_from_row).transpose()?)
    }

    async fn operators(&self) -> Result<Vec<Operator>, StorageError> {
        let c = self.client().await?;
        let rows = c.rows("SELECT * FROM operators ORDER BY name", &[]).await?;
        Ok(all_map(rows, operator_from_row)?)
    }

    async fn set_operator_totp(
        &self,
        name: &str,
        sealed: Option<Vec<u8>>,
        enrolled: bool,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE operators SET totp_sealed = $2, totp_enrolled = $3 WHERE name = $1",
            &[&name, &sealed, &enrolled],
        )
        .await?;
        Ok(())
    }

    async fn set_operator_enrolment(
        &self,
        name: &str,
        code_hash: Option<Vec<u8>>,
        expires_at: Option<i64>,
    ) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE operators SET enrolment_code_hash = $2, enrolment_expires_at = $3
                  WHERE name = $1",
                &[&name, &code_hash, &expires_at],
            )
            .await?;
        Ok(n == 1)
    }

    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE operators SET totp_last_step = $2 WHERE name = $1 AND totp_last_step < $2",
                &[&name, &step],
            )
            .await?;
        Ok(n == 1)
    }

    async fn set_operator_disabled(
        &self,
        name: &str,
        disabled_at: Option<i64>,
    ) -> Result<bool, StorageError> {
        transaction!(self, |tx| {
            let n = tx
                .exec(
                    "UPDATE operators SET disabled_at = $2 WHERE name = $1",
                    &[&name, &disabled_at],
                )
                .await?;
            if disabled_at.is_some() {
                tx.exec("DELETE FROM console_sessions WHERE operator = $1", &[&name])
                    .await?;
            }
            Ok(End::Commit(n == 1))
        })
    }

    async fn create_console_session(&self, s: ConsoleSession) -> Result<(), StorageError> {
        transaction!(self, |tx| {
            tx.exec(
                "INSERT INTO console_sessions (session_hash, operator, stage, created_at,
                                               last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &s.session_hash,
                    &s.operator,
                    &s.stage,
                    &s.created_at,
                    &s.last_seen_at,
                    &s.expires_at,
                ],
            )
            .await?;
            // Signed-in and pending sessions are capped apart: a password
            // alone never ends a signed-in session.
            tx.exec(
                "DELETE FROM console_sessions
                  WHERE operator = $1 AND (stage = 'full') = ($3::TEXT = 'full')
                    AND session_hash NOT IN (
                     SELECT session_hash FROM console_sessions
                      WHERE operator = $1 AND (stage = 'full') = ($3::TEXT = 'full')
                      ORDER BY created_at DESC, session_hash LIMIT $2)",
                &[&s.operator, &CONSOLE_SESSIONS_PER_OPERATOR, &s.stage],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    async fn end_operator_sessions(&self, name: &str) -> Result<usize, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec("DELETE FROM console_sessions WHERE operator = $1", &[&name])
            .await?;
        Ok(n as usize)
    }

    async fn console_session(
        &self,
        session_hash: &[u8],
        now: i64,
        idle_s: i64,
    ) -> Result<Option<ConsoleSession>, StorageError> {
        let c = self.client().await?;
        let row = c
            .opt(
                "UPDATE console_sessions SET last_seen_at = $2
                  WHERE session_hash = $1 AND expires_at > $2 AND last_seen_at > $2 - $3
                 RETURNING *",
                &[&session_hash, &now, &idle_s],
            )
            .await?;
        Ok(row.as_ref().map(console_session_from_row).transpose()?)
    }

    async fn delete_console_session(&self, session_hash: &[u8]) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.exec(
            "DELETE FROM console_sessions WHERE session_hash = $1",
            &[&session_hash],
        )
        .await?;
        Ok(())
    }

    async fn find_users(
        &self,
        search: &UserSearch,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StorageError> {
        let c = self.client().await?;
        let after = after.unwrap_or("");
        if let UserSearch::UserIdPrefix(prefix) = search {
            // A bounded range in byte order (`COLLATE "C"`, served by the
            // index `users_by_user_id_c`): a locale's collation would not
            // keep a prefix's strings together, and without the upper bound
            // a rare prefix reads to the end of the table.
            let end = prefix_end(prefix);
            let rows = c
                .rows(
                    r#"SELECT * FROM users
                        WHERE user_id COLLATE "C" >= $1
                          AND ($4::TEXT IS NULL OR user_id COLLATE "C" < $4::TEXT)
                          AND left(user_id, length($1)) = $1
                          AND user_id COLLATE "C" > $2
                        ORDER BY user_id COLLATE "C" LIMIT $3"#,
                    &[prefix, &after, &limit, &end],
                )
                .await?;
            return Ok(all_map(rows, user_from_row)?);
        }
        let (sql, value) = match search {
            UserSearch::UserIdPrefix(_) => unreachable!("answered above"),
            UserSearch::Email(email) => (
                "SELECT * FROM users WHERE lower(email) = lower($1)
                   AND user_id > $2 ORDER BY user_id LIMIT $3",
                email,
            ),
            UserSearch::Last4(last4) => (
                "SELECT * FROM users WHERE user_id IN
                     (SELECT user_id FROM cards WHERE last4 = $1 AND user_id IS NOT NULL)
                   AND user_id > $2 ORDER BY user_id LIMIT $3",
                last4,
            ),
        };
        let rows = c.rows(sql, &[value, &after, &limit]).await?;
        Ok(all_map(rows, user_from_row)?)
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                &format!(
                    "SELECT {SESSION_COLS} FROM sessions s
                      WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                      ORDER BY s.created_at DESC LIMIT 100"
                ),
                &[&user_id, &now],
            )
            .await?;
        Ok(all_map(rows, session_from_row)?)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<usize, StorageError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3
                  WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                &[&user_id, &now, &reason],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn correct_profile(
        &self,
        user_id: &str,
        expected: (&str, &str),
        name: &str,
        email: &str,
    ) -> Result<Option<User>, StorageError> {
        let (old_name, old_email) = expected;
        transaction!(self, |tx| {
            let before = tx
                .opt(
                    "SELECT * FROM users WHERE user_id = $1 AND name = $2 AND email = $3
                     FOR UPDATE",
                    &[&user_id, &old_name, &old_email],
                )
                .await?;
            let before = before.as_ref().map(user_from_row).transpose()?;
            if before.is_some() {
                tx.exec(
                    "UPDATE users SET name = $2, email = $3 WHERE user_id = $1",
                    &[&user_id, &name, &email],
                )
                .await?;
            }
            Ok(End::Commit(before))
        })
    }

    async fn markets(&self) -> Result<Vec<MarketSummary>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT m.market AS market, k.second_factor AS second_factor,
                        (SELECT count(*) FROM users u WHERE u.primary_market = m.market) AS users
                   FROM (SELECT market FROM markets UNION SELECT primary_market FROM users) m
                   LEFT JOIN markets k ON k.market = m.market
                  ORDER BY m.market LIMIT 500",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let setting: Option<String> = r.try_get("second_factor")?;
            out.push(MarketSummary {
                market: r.try_get("market")?,
                configured: setting.map(|s| s != "off"),
                users: r.try_get("users")?,
            });
        }
        Ok(out)
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEvent)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT id, at, event, user_id, device_id, ip, reason, actor FROM audit
                  WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2::TEXT IS NULL OR event = $2)
                    AND ($3::TEXT IS NULL OR actor = $3) AND (NOT $4 OR actor IS NOT NULL)
                    AND ($5::BIGINT IS NULL OR id < $5)
                  ORDER BY id DESC LIMIT $6",
                &[
                    &filter.user_id,
                    &filter.event,
                    &filter.actor,
                    &filter.operators_only,
                    &filter.before_id,
                    &limit,
                ],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get("id")?, audit_from_row(&r)?));
        }
        Ok(out)
    }

    async fn audit(&self, e: AuditEvent) -> Result<(), StorageError> {
        let c = self.client().await?;
        insert_audit(&c, &e).await?;
        Ok(())
    }

    async fn audit_events(&self, user_id: &str) -> Result<Vec<AuditEvent>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .rows(
                "SELECT at, event, user_id, device_id, ip, reason, actor FROM audit
                 WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await?;
        Ok(all_map(rows, audit_from_row)?)
    }

    async fn purge_expired(&self, now: i64, retention: Retention) -> Result<u64, StorageError> {
        transaction!(self, |tx| {
            let mut n = 0u64;
            for (sql, before) in [
                ("DELETE FROM challenges WHERE expires_at <= $1", now),
                (
                    "DELETE FROM used_challenges WHERE expires_at <= $1",
                    now - crate::challenge_token::USED_ROW_GRACE_S,
                ),
                ("DELETE FROM registrations WHERE expires_at <= $1", now),
                ("DELETE FROM logins WHERE expires_at <= $1", now),
                ("DELETE FROM access_tokens WHERE expires_at <= $1", now),
                // Used refresh tokens are kept until they expire: reuse
                // detection needs them.
                ("DELETE FROM refresh_tokens WHERE expires_at <= $1", now),
                (
                    "DELETE FROM access_tokens WHERE session_id IN
                       (SELECT session_id FROM sessions WHERE expires_at <= $1)",
                    now,
                ),
                (
                    "DELETE FROM refresh_tokens WHERE session_id IN
                       (SELECT session_id FROM sessions WHERE expires_at <= $1)",
                    now,
                ),
                ("DELETE FROM sessions WHERE expires_at <= $1", now),
                ("DELETE FROM console_sessions WHERE expires_at <= $1", now),
                (
                    "DELETE FROM otp_sends WHERE at <= $1",
                    now - retention.send_window_s,
                ),
                (
                    "DELETE FROM attempts WHERE updated_at <= $1
                       AND (locked_until IS NULL OR locked_until <= $1)",
                    now - retention.attempts_s,
                ),
                ("DELETE FROM audit WHERE at <= $1", now - retention.audit_s),
            ] {
                n += tx.exec(sql, &[&before]).await?;
            }
            Ok(End::Commit(n))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_never_repeated() {
        let t = parse_target("postgres://dt@db.example:5433/devicetrust").unwrap();
        assert!(!t.tls);
        assert_eq!(t.pool_size, DEFAULT_POOL_SIZE);
        let t = parse_target(
            "postgres://dt:pw@db.example/devicetrust?sslmode=require&pool_max_size=4&sslrootcert=/x",
        )
        .unwrap();
        assert!(t.tls);
        assert_eq!(t.pool_size, 4);
        assert_eq!(t.root_cert.as_deref(), Some("/x"));
        assert!(parse_target("postgres://db.example/d?sslmode=sometimes").is_err());
        assert!(parse_target("postgres://db.example/d?pool_max_size=0").is_err());
        assert_eq!(
            redact("postgres://dt:secret@db.example/d"),
            "postgres://dt:***@db.example/d"
        );
        let e = parse_target("postgres://dt:secret@db.example/d?pool_max_size=x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("secret"), "{e}");
    }
}
