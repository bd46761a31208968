//! The `devicetrust-server` command: `serve`, and operator commands that
//! work on the same database (`user add`, `user unlock`, `market set`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::admin::new_user;
use crate::api::types::CreateUserRequest;
use crate::app::{self, AppState, Components, Settings};
use crate::clock::{Clock, SystemClock};
use crate::error::ApiError;
use crate::flows::operators::{new_operator, Role};
use crate::http_server::ConnectionLimits;
use crate::notify::DeliveryConfig;
use crate::password_policy::PasswordPolicy;
use crate::risk::{
    AllowAll, FailMode, HabitsConfig, HabitsPolicy, HttpScorer, RiskPolicy, ScorerConfig,
};
use crate::secrets::{Hasher, HasherConfig, Secret};
use crate::server_key::{KeyError, ServerKey};
use crate::storage::{self, StorageError, Store};
use crate::validate;

#[derive(Debug, Parser)]
#[command(
    name = "devicetrust-server",
    version = crate::ops::VERSION,
    about = "devicetrust sign-in server"
)]
pub struct Cli {
    /// A TOML file of settings, keyed by long flag name; a flag or an
    /// environment variable overrides it (docs/OPERATIONS.md).
    #[arg(long, env = "DEVICETRUST_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Database: sqlite://PATH (one instance; PATH verbatim, sqlite:///var/x.db
    /// is absolute) or postgres://USER@HOST:PORT/DB (any number of instances;
    /// docs/DEPLOYMENT.md). Its value is never shown: it may hold a password.
    #[arg(
        long,
        env = "DEVICETRUST_DATABASE",
        hide_env_values = true,
        default_value = "sqlite://devicetrust.db",
        global = true
    )]
    pub database: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API until SIGTERM or SIGINT.
    Serve(Box<ServeArgs>),
    /// Manage card holders.
    #[command(subcommand)]
    User(UserCommand),
    /// Configure markets.
    #[command(subcommand)]
    Market(MarketCommand),
    /// Manage the service team's support-console operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Copy a single-node SQLite installation into an empty PostgreSQL
    /// database, checked table by table (docs/DEPLOYMENT.md). Stop the
    /// server first; the server key file stays as it is.
    Migrate {
        /// The SQLite database: sqlite://PATH.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: postgres://USER@HOST:PORT/DB.
        #[arg(long)]
        to: String,
    },
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate `--config FILE` (with the environment, as `serve` would see
    /// them) without opening the database or a port: exit 0 when it would
    /// start, 2 with the reason when not.
    Check,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEVICETRUST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Relying-party id that device proofs must name in `aud`.
    #[arg(
        long,
        env = "DEVICETRUST_RP_ID",
        default_value = "http://127.0.0.1:8080"
    )]
    pub rp_id: String,
    /// Bearer token for /admin/v1 (at least 32 characters); without it the
    /// administration API is disabled. Prefer --admin-token-file: a command
    /// line is visible to every user of the machine.
    #[arg(long, env = "DEVICETRUST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the admin token (its first line).
    #[arg(
        long,
        env = "DEVICETRUST_ADMIN_TOKEN_FILE",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,
    /// Append every outgoing message (OTPs, alerts) to this file as JSON lines.
    #[arg(long, env = "DEVICETRUST_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// E-mail and SMS delivery (boxed: it keeps `Command` small).
    #[command(flatten)]
    pub delivery: Box<DeliveryArgs>,
    /// The name users know the service by.
    #[arg(long, env = "DEVICETRUST_BRAND_NAME", default_value = "devicetrust")]
    pub brand_name: String,
    /// Sign-in requests per minute from one IP address; 0 turns it off.
    #[arg(long, env = "DEVICETRUST_IP_RATE_LIMIT", default_value_t = 60)]
    pub ip_rate_limit: u32,
    /// The server key (at least 32 characters), e.g. from a secret manager;
    /// purpose keys (OTP HMACs, destination hashes) are derived from it.
    #[arg(
        long,
        env = "DEVICETRUST_SERVER_KEY",
        hide_env_values = true,
        conflicts_with = "server_key_file"
    )]
    pub server_key: Option<String>,
    /// File holding the server key, created (mode 0600) with a random key on
    /// first start. Default: the SQLite database's path plus `.key`. Keep it
    /// outside the database's backups.
    #[arg(long, env = "DEVICETRUST_SERVER_KEY_FILE")]
    pub server_key_file: Option<PathBuf>,
    /// OTP sends per user, and per destination, in any hour, across logins.
    #[arg(long, env = "DEVICETRUST_OTP_SENDS_PER_HOUR", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub otp_sends_per_hour: i64,
    /// Hours after a sign-in that its session ends, whatever its refreshes.
    #[arg(long, env = "DEVICETRUST_SESSION_MAX_AGE_HOURS", default_value_t = 12, value_parser = clap::value_parser!(i64).range(1..=2160))]
    pub session_max_age_hours: i64,
    /// Hours after which an idle failure count is forgotten.
    #[arg(long, env = "DEVICETRUST_ATTEMPT_MEMORY_HOURS", default_value_t = 24, value_parser = clap::value_parser!(i64).range(1..=8760))]
    pub attempt_memory_hours: i64,
    /// Days the audit trail is kept.
    #[arg(long, env = "DEVICETRUST_AUDIT_RETENTION_DAYS", default_value_t = 400, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub audit_retention_days: i64,
    /// Connections open at once; more are closed on accept.
    #[arg(long, env = "DEVICETRUST_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "DEVICETRUST_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "DEVICETRUST_BODY_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_timeout: u64,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    #[arg(long, env = "DEVICETRUST_SHUTDOWN_GRACE", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub shutdown_grace: u64,
    /// Proxies (CIDR ranges or addresses, comma-separated) whose
    /// `X-Forwarded-For` is believed; from any other peer it is ignored.
    #[arg(long, env = "DEVICETRUST_TRUST_PROXY", value_delimiter = ',', value_parser = parse_proxy)]
    pub trust_proxy: Vec<ipnet::IpNet>,
    /// Failed passwords/OTPs in a row that lock a user id.
    #[arg(long, env = "DEVICETRUST_LOCKOUT_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=100))]
    pub lockout_threshold: i64,
    /// Minutes a lock lasts.
    #[arg(long, env = "DEVICETRUST_LOCKOUT_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=10080))]
    pub lockout_minutes: i64,
    /// Days a device stays trusted after its last password + OTP sign-in.
    #[arg(long, env = "DEVICETRUST_TRUST_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub trust_days: i64,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "DEVICETRUST_ACCESS_TTL", default_value_t = 900, value_parser = clap::value_parser!(i64).range(60..=86400))]
    pub access_ttl: i64,
    /// Password hashes computed at once (default: every core; the hashing
    /// threads run at nice 10, below device sign-ins).
    #[arg(long, env = "DEVICETRUST_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    #[command(flatten)]
    pub password_policy: PasswordPolicyArgs,
    /// Serve the support console under /console on --listen (behind TLS).
    #[arg(long, env = "DEVICETRUST_CONSOLE", conflicts_with = "console_listen")]
    pub console: bool,
    /// Serve the support console on its own address (e.g. an internal
    /// network only), under /console; off unless this or --console is given.
    #[arg(long, env = "DEVICETRUST_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub risk: RiskArgs,
    /// Key attestation (boxed: it keeps `Command` small).
    #[command(flatten)]
    pub attestation: Box<crate::attestation::cli::AttestationArgs>,
    // ---- Operations (docs/OPERATIONS.md) ----
    /// Serve `GET /metrics` (Prometheus) on this address, open to whoever
    /// reaches it: keep it on loopback or a management network. Without it
    /// `/metrics` is on the API listener, behind the admin token.
    #[arg(long, env = "DEVICETRUST_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); reloaded,
    /// with the key, on SIGHUP.
    #[arg(long, env = "DEVICETRUST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "DEVICETRUST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Export traces over OTLP/HTTP (protobuf) to this collector base URL
    /// (e.g. http://127.0.0.1:4318; `/v1/traces` is appended). Off by default.
    #[arg(long, env = "DEVICETRUST_OTLP_ENDPOINT", value_parser = crate::ops::trace::EndpointParser)]
    pub otlp_endpoint: Option<reqwest::Url>,
}

/// Which risk policy judges sign-ins (docs/RISK.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RiskMode {
    /// The card holder's own habits (networks, devices, hours, pace).
    Habits,
    /// Nothing is stepped up.
    Off,
    /// The bank's fraud engine, over HTTP (`--risk-scorer-url`).
    Http,
}

/// The risk engine's flags; defaults are `HabitsConfig::default()`'s,
/// documented in docs/RISK.md.
#[derive(Debug, Args)]
pub struct RiskArgs {
    /// Risk policy: habits (default), off, or http.
    #[arg(long = "risk", env = "DEVICETRUST_RISK", value_enum, default_value_t = RiskMode::Habits)]
    pub mode: RiskMode,
    /// Days a network or device stays known without being seen.
    #[arg(long, env = "DEVICETRUST_RISK_MEMORY_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub risk_memory_days: i64,
    /// Completed sign-ins the engine only learns from (the next is judged).
    #[arg(long, env = "DEVICETRUST_RISK_LEARNING_SIGN_INS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub risk_learning_sign_ins: u32,
    /// Weight of a device not seen lately.
    #[arg(long, env = "DEVICETRUST_RISK_WEIGHT_NEW_DEVICE", default_value_t = 1)]
    pub risk_weight_new_device: u32,
    /// Weight of an hour far from the holder's usual ones.
    #[arg(
        long,
        env = "DEVICETRUST_RISK_WEIGHT_UNUSUAL_HOUR",
        default_value_t = 1
    )]
    pub risk_weight_unusual_hour: u32,
    /// Weight of many sign-ins in a short time.
    #[arg(long, env = "DEVICETRUST_RISK_WEIGHT_VELOCITY", default_value_t = 2)]
    pub risk_weight_velocity: u32,
    /// Weight of failures since the last successful sign-in.
    #[arg(
        long,
        env = "DEVICETRUST_RISK_WEIGHT_RECENT_FAILURES",
        default_value_t = 2
    )]
    pub risk_weight_recent_failures: u32,
    /// Summed weight that steps up a sign-in on a known network from a
    /// device not seen lately.
    #[arg(long, env = "DEVICETRUST_RISK_STEP_UP_SCORE", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub risk_step_up_score: u32,
    /// Sign-ins within the velocity window that count as many.
    #[arg(long, env = "DEVICETRUST_RISK_VELOCITY_COUNT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=32))]
    pub risk_velocity_count: u32,
    /// The velocity window, in seconds.
    #[arg(long, env = "DEVICETRUST_RISK_VELOCITY_WINDOW", default_value_t = 600, value_parser = clap::value_parser!(i64).range(10..=86400))]
    pub risk_velocity_window: i64,
    /// Failures since the last success that count as a signal.
    #[arg(long, env = "DEVICETRUST_RISK_FAILURES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub risk_failures: u32,
    /// Sign-ins before the hour-of-day profile is trusted.
    #[arg(long, env = "DEVICETRUST_RISK_HOUR_MIN_SIGN_INS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub risk_hour_min_sign_ins: u32,
    /// An hour is unusual when less than this percentage of sign-ins fell
    /// within two hours of it.
    #[arg(long, env = "DEVICETRUST_RISK_HOUR_MIN_PERCENT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub risk_hour_min_percent: u32,
    /// Lock a fresh account sooner under a burst of failures from many
    /// networks (docs/RISK.md); off by default.
    #[arg(long, env = "DEVICETRUST_RISK_ADAPTIVE_LOCKOUT")]
    pub risk_adaptive_lockout: bool,
    /// `--risk http`: the scorer's URL.
    #[arg(long, env = "DEVICETRUST_RISK_SCORER_URL")]
    pub risk_scorer_url: Option<String>,
    /// `--risk http`: milliseconds the scorer has to answer.
    #[arg(long, env = "DEVICETRUST_RISK_SCORER_TIMEOUT_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub risk_scorer_timeout_ms: u64,
    /// `--risk http`: what an unanswered sign-in gets: closed steps it up
    /// (the holder still signs in, with a code), open allows it.
    #[arg(long, env = "DEVICETRUST_RISK_SCORER_FAIL", value_enum, default_value_t = FailMode::Closed)]
    pub risk_scorer_fail: FailMode,
    /// `--risk http`: secret of the request's X-Devicetrust-Signature.
    #[arg(long, env = "DEVICETRUST_RISK_SCORER_SECRET", hide_env_values = true)]
    pub risk_scorer_secret: Option<String>,
}

impl RiskArgs {
    pub fn habits(&self) -> HabitsConfig {
        HabitsConfig {
            memory_s: self.risk_memory_days * 86_400,
            learning_sign_ins: self.risk_learning_sign_ins,
            weight_new_device: self.risk_weight_new_device,
            weight_unusual_hour: self.risk_weight_unusual_hour,
            weight_velocity: self.risk_weight_velocity,
            weight_recent_failures: self.risk_weight_recent_failures,
            step_up_score: self.risk_step_up_score,
            velocity_count: self.risk_velocity_count,
            velocity_window_s: self.risk_velocity_window,
            failures: self.risk_failures,
            hour_min_sign_ins: self.risk_hour_min_sign_ins,
            hour_min_percent: self.risk_hour_min_percent,
            adaptive_lockout: self.risk_adaptive_lockout,
        }
    }

    /// The configured policy over `store`.
    pub fn policy(&self, store: Arc<dyn Store>) -> Result<Arc<dyn RiskPolicy>, CliError> {
        if self.mode != RiskMode::Http && self.risk_scorer_url.is_some() {
            return Err(CliError::Usage(
                "--risk-scorer-url needs --risk http".into(),
            ));
        }
        Ok(match self.mode {
            RiskMode::Habits => Arc::new(HabitsPolicy::new(store, self.habits())),
            RiskMode::Off => Arc::new(AllowAll),
            RiskMode::Http => {
                let url = self
                    .risk_scorer_url
                    .clone()
                    .ok_or_else(|| CliError::Usage("--risk http needs --risk-scorer-url".into()))?;
                Arc::new(
                    HttpScorer::new(ScorerConfig {
                        url,
                        timeout: std::time::Duration::from_millis(self.risk_scorer_timeout_ms),
                        fail: self.risk_scorer_fail,
                        secret: self.risk_scorer_secret.clone(),
                    })
                    .map_err(|e| CliError::Usage(e.to_string()))?,
                )
            }
        })
    }
}

/// The password policy's limits; `serve` and `user add` read the same flags
/// and environment, so both apply one policy.
#[derive(Debug, Args)]
pub struct PasswordPolicyArgs {
    /// Shortest password accepted, in Unicode code points after NFKC.
    #[arg(long, env = "DEVICETRUST_PASSWORD_MIN_LENGTH", default_value_t = 8, value_parser = clap::value_parser!(u32).range(6..=64))]
    pub password_min_length: u32,
    /// Longest password accepted, in Unicode code points after NFKC.
    #[arg(long, env = "DEVICETRUST_PASSWORD_MAX_LENGTH", default_value_t = 128, value_parser = clap::value_parser!(u32).range(16..=1024))]
    pub password_max_length: u32,
    /// How many of the classes lower-case, upper-case, digit and other a
    /// password must mix.
    #[arg(long, env = "DEVICETRUST_PASSWORD_CLASSES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub password_classes: u32,
}

impl PasswordPolicyArgs {
    pub fn policy(&self) -> Result<PasswordPolicy, CliError> {
        if self.password_min_length > self.password_max_length {
            return Err(CliError::Usage(
                "--password-min-length must not exceed --password-max-length".into(),
            ));
        }
        Ok(PasswordPolicy {
            min_length: self.password_min_length,
            max_length: self.password_max_length,
            classes_required: self.password_classes,
        })
    }
}

/// The delivery flags of `serve` (docs/SERVER.md, "Delivery").
#[derive(Args)]
pub struct DeliveryArgs {
    /// E-mail relay: smtp://HOST:PORT (plain, a local relay),
    /// smtp+starttls://… or smtps://…, with user:password@ (percent-encoded)
    /// for AUTH.
    #[arg(long, env = "DEVICETRUST_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The e-mails' From address (`Bank <no-reply@bank.example>` or a bare
    /// address).
    #[arg(long, env = "DEVICETRUST_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// PEM file of extra roots trusted for the relay's TLS certificate
    /// (e.g. an internal CA), beside Mozilla's.
    #[arg(long, env = "DEVICETRUST_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// SMS gateway: each SMS is a signed JSON POST to this URL.
    #[arg(long, env = "DEVICETRUST_SMS_WEBHOOK")]
    pub sms_webhook: Option<String>,
    /// Secret (at least 16 characters) of the webhook's
    /// X-Devicetrust-Signature (HMAC-SHA256 of the body).
    #[arg(long, env = "DEVICETRUST_SMS_WEBHOOK_SECRET", hide_env_values = true)]
    pub sms_webhook_secret: Option<String>,
}

// Hand-written: the SMTP URL may hold a password, and the webhook secret.
impl std::fmt::Debug for DeliveryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryArgs")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "…"))
            .field("smtp_from", &self.smtp_from)
            .field("smtp_ca_file", &self.smtp_ca_file)
            .field("sms_webhook", &self.sms_webhook.as_ref().map(|_| "…"))
            .field(
                "sms_webhook_secret",
                &self.sms_webhook_secret.as_ref().map(|_| "…"),
            )
            .finish()
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a card holder; the password is read from the first line of stdin.
    Add {
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// E.164 mobile number.
        #[arg(long)]
        mobile: Option<String>,
        /// Primary market, ISO 3166-1 alpha-2.
        #[arg(long)]
        market: String,
        #[command(flatten)]
        password_policy: PasswordPolicyArgs,
    },
    /// Lift a lock and clear the failure count.
    Unlock { user_id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Support,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add a console operator; the password is read from the first line of
    /// stdin. The second factor (TOTP) is enrolled at first sign-in.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        password_policy: PasswordPolicyArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SecondFactorArg {
    Required,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// Require (or not) a second factor for users whose primary market this is.
    Set {
        market: String,
        #[arg(long, value_enum)]
        second_factor: SecondFactorArg,
    },
}

/// What went wrong in a command, for its one-line message and exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Rejected(String),
    #[error("could not {0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error(transparent)]
    Key(KeyError),
    #[error(transparent)]
    Migrate(#[from] storage::migrate::MigrateError),
    #[error(transparent)]
    Config(#[from] crate::ops::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::ops::tls::TlsError),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Config(_) | CliError::Tls(_) => 2,
            CliError::Rejected(_) => 3,
            CliError::Migrate(storage::migrate::MigrateError::Usage(_)) => 2,
            CliError::Migrate(
                storage::migrate::MigrateError::NotEmpty(_)
                | storage::migrate::MigrateError::Schema(_),
            ) => 3,
            CliError::Storage(_) | CliError::Io(..) | CliError::Key(_) | CliError::Migrate(_) => 1,
        }
    }
}

impl ServeArgs {
    pub fn settings(&self) -> Result<Settings, CliError> {
        if self.rp_id.trim().is_empty() {
            return Err(CliError::Usage("--rp-id must not be empty".into()));
        }
        let admin_token = match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::Io("read --admin-token-file", e))?;
                Some(text.lines().next().unwrap_or("").trim().to_owned())
            }
            (None, None) => None,
        };
        if admin_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(CliError::Usage(
                "the admin token must be at least 32 characters".into(),
            ));
        }
        // Velocity is counted from sessions, which are purged when they
        // end: a window longer than a session's life would forget sign-ins
        // it should count (outside review of issue 10).
        if self.risk.mode == RiskMode::Habits
            && self.risk.risk_velocity_window > self.session_max_age_hours * 3600
        {
            return Err(CliError::Usage(format!(
                "--risk-velocity-window ({} s) must not exceed --session-max-age-hours ({} s): \
                 velocity is counted from sessions, which are deleted when they end",
                self.risk.risk_velocity_window,
                self.session_max_age_hours * 3600
            )));
        }
        let password_policy = self.password_policy.policy()?;
        Ok(Settings {
            rp_id: self.rp_id.clone(),
            admin_token,
            access_ttl_s: self.access_ttl,
            trust_period_s: self.trust_days * 24 * 3600,
            lockout_threshold: self.lockout_threshold,
            lockout_duration_s: self.lockout_minutes * 60,
            ip_rate_limit_per_minute: self.ip_rate_limit,
            otp_sends_per_hour: self.otp_sends_per_hour,
            session_max_age_s: self.session_max_age_hours * 3600,
            attempt_memory_s: self.attempt_memory_hours * 3600,
            audit_retention_s: self.audit_retention_days * 24 * 3600,
            connections: ConnectionLimits {
                max_connections: self.max_connections as usize,
                header_timeout: Duration::from_secs(self.header_timeout),
                body_timeout: Duration::from_secs(self.body_timeout),
                shutdown_grace: Duration::from_secs(self.shutdown_grace),
            },
            trusted_proxies: self.trust_proxy.clone(),
            password_policy,
            attestation: Arc::new(self.attestation.config().map_err(CliError::Usage)?),
            metrics_on_api: self.metrics_listen.is_none(),
            ..Settings::default()
        })
    }

    /// The server key: the value given, or the key file (created on first
    /// start).
    fn server_key(&self, database: &str) -> Result<ServerKey, CliError> {
        if let Some(value) = &self.server_key {
            return ServerKey::from_value(value).map_err(|e| CliError::Usage(e.to_string()));
        }
        let path = match (&self.server_key_file, database.strip_prefix("sqlite://")) {
            (Some(path), _) => path.clone(),
            (None, Some(db)) if !db.is_empty() => PathBuf::from(format!("{db}.key")),
            _ => {
                return Err(CliError::Usage(
                    "pass --server-key-file PATH (or --server-key) for this database".into(),
                ))
            }
        };
        let (key, created) = ServerKey::load_or_create(&path).map_err(|e| match e {
            KeyError::Exposed(..) | KeyError::TooShort => CliError::Usage(e.to_string()),
            other => CliError::Key(other),
        })?;
        if created {
            tracing::info!(path = %path.display(), "created a new server key file (mode 0600)");
        }
        Ok(key)
    }
}

/// A trusted proxy: a CIDR range, or one address (a /32 or /128).
fn parse_proxy(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{raw:?} is not an address or a CIDR range"))
}

/// Runs a parsed command line.
impl Cli {
    /// `serve --otlp-endpoint`: where traces go, when anywhere.
    pub fn otlp_endpoint(&self) -> Option<&reqwest::Url> {
        match &self.command {
            Command::Serve(args) => args.otlp_endpoint.as_ref(),
            _ => None,
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve(&cli.database, *args).await,
        Command::Config(ConfigCommand::Check) => {
            let Some(path) = &cli.config else {
                return Err(CliError::Usage(
                    "config check needs --config FILE (or DEVICETRUST_CONFIG)".into(),
                ));
            };
            // The file was merged into `serve`'s settings while parsing;
            // here they are parsed as `serve` parses them, and checked as
            // far as can be without the database or the network.
            let argv = as_serve(std::env::args_os().collect());
            let merged = crate::ops::config::parse_from(argv, |n| std::env::var_os(n))?;
            let Command::Serve(args) = merged.command else {
                return Err(CliError::Usage(
                    "config check: not a serve configuration".into(),
                ));
            };
            check_serve(&merged.database, &args).map_err(|e| match e {
                CliError::Usage(m) => CliError::Usage(format!("{}: {m}", path.display())),
                other => other,
            })?;
            println!("{}: configuration OK", path.display());
            Ok(())
        }
        Command::User(UserCommand::Add {
            user_id,
            name,
            email,
            mobile,
            market,
            password_policy,
        }) => {
            let policy = password_policy.policy()?;
            let password = read_password()?;
            let store = storage::open(&cli.database).await?;
            let hasher =
                Hasher::new(HasherConfig::default()).map_err(|e| CliError::Usage(e.to_string()))?;
            let req = CreateUserRequest {
                user_id,
                name,
                email,
                mobile,
                primary_market: market,
                password: Secret::new(password),
            };
            let user = new_user(&hasher, &policy, SystemClock.now(), req)
                .await
                .map_err(|e| match &e {
                    ApiError::PasswordRejected { reasons } => {
                        CliError::Rejected(format!("{e}: {}", reasons.join(", ")))
                    }
                    _ => CliError::Rejected(e.to_string()),
                })?;
            match store.create_user(user.clone()).await {
                Ok(()) => {}
                Err(StorageError::Conflict) => {
                    return Err(CliError::Rejected(format!(
                        "user {} exists already",
                        user.user_id
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            println!(
                "added user {} (market {})",
                user.user_id, user.primary_market
            );
            Ok(())
        }
        Command::User(UserCommand::Unlock { user_id }) => {
            let user_id =
                validate::user_id(&user_id).map_err(|e| CliError::Usage(e.to_string()))?;
            let store = storage::open(&cli.database).await?;
            store.unlock(&user_id, storage::UnlockScope::Both).await?;
            println!("unlocked {user_id}");
            Ok(())
        }
        Command::Operator(OperatorCommand::Add {
            name,
            role,
            password_policy,
        }) => {
            let policy = password_policy.policy()?;
            let password = read_password()?;
            let store = storage::open(&cli.database).await?;
            let hasher =
                Hasher::new(HasherConfig::default()).map_err(|e| CliError::Usage(e.to_string()))?;
            let role = match role {
                RoleArg::Support => Role::Support,
                RoleArg::Admin => Role::Admin,
            };
            let (operator, enrolment_code) = new_operator(
                &hasher,
                &policy,
                SystemClock.now(),
                &name,
                role,
                &Secret::new(password),
            )
            .await
            .map_err(|e| match &e {
                ApiError::PasswordRejected { reasons } => {
                    CliError::Rejected(format!("{e}: {}", reasons.join(", ")))
                }
                _ => CliError::Rejected(e.to_string()),
            })?;
            let name = operator.name.clone();
            match store.create_operator(operator).await {
                Ok(()) => {}
                Err(StorageError::Conflict) => {
                    return Err(CliError::Rejected(format!(
                        "operator {name} exists already"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            store
                .audit(crate::storage::AuditEvent {
                    at: SystemClock.now(),
                    event: "operator_added".into(),
                    user_id: None,
                    device_id: None,
                    ip: None,
                    reason: Some(format!("operator={name} role={}", role.as_str())),
                    actor: Some("cli".into()),
                })
                .await?;
            // Shown once: only its hash is stored.
            println!(
                "added operator {name} ({}); the second factor is enrolled at first sign-in, \
                 with the password and this one-time enrolment code (valid 24 hours, shown \
                 only now): {}",
                role.as_str(),
                enrolment_code.expose()
            );
            Ok(())
        }
        Command::Migrate { from, to } => {
            let report = storage::migrate::sqlite_to_postgres(&from, &to).await?;
            println!("{:<16} {:>10} {:>10}", "table", "sqlite", "postgres");
            for c in &report {
                println!("{:<16} {:>10} {:>10}", c.table, c.source, c.target);
            }
            let rows: i64 = report.iter().map(|c| c.target).sum();
            println!(
                "migrated {rows} rows in {} tables into {}; every count matches",
                report.len(),
                storage::postgres::redact(&to)
            );
            Ok(())
        }
        Command::Market(MarketCommand::Set {
            market,
            second_factor,
        }) => {
            let market = validate::market(&market).map_err(|e| CliError::Usage(e.to_string()))?;
            let store = storage::open(&cli.database).await?;
            let required = matches!(second_factor, SecondFactorArg::Required);
            store.set_market(&market, required).await?;
            println!(
                "market {market}: second factor {}",
                if required { "required" } else { "off" }
            );
            Ok(())
        }
    }
}

/// The first line of stdin, without its line ending.
fn read_password() -> Result<String, CliError> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| CliError::Io("read the password from stdin", e))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

/// The command line of `… config check …` as that of `… serve …`, global
/// flags (`--config`, `--database`) kept.
fn as_serve(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    let mut takes_value = false;
    let mut replaced = false;
    while let Some(arg) = it.next() {
        if !replaced && !takes_value && arg == "config" && it.peek().is_some_and(|a| a == "check") {
            it.next();
            out.push("serve".into());
            replaced = true;
            continue;
        }
        takes_value = arg == "--config" || arg == "--database";
        out.push(arg);
    }
    out
}

/// What `serve` checks before it opens anything: flags that only make sense
/// together, files it must read, the database URL's scheme.
fn check_serve(database: &str, args: &ServeArgs) -> Result<(), CliError> {
    args.settings()?;
    DeliveryConfig {
        smtp_url: args.delivery.smtp_url.clone(),
        smtp_from: args.delivery.smtp_from.clone(),
        smtp_ca_file: args.delivery.smtp_ca_file.clone(),
        sms_webhook: args.delivery.sms_webhook.clone(),
        sms_webhook_secret: args.delivery.sms_webhook_secret.clone(),
        outbox: args.outbox.clone(),
    }
    .build()
    .map_err(|e| CliError::Usage(e.to_string()))?;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        crate::ops::tls::ReloadingCert::load(cert, key)?;
    }
    if let Some(value) = &args.server_key {
        ServerKey::from_value(value).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    if args.risk.mode != RiskMode::Http && args.risk.risk_scorer_url.is_some() {
        return Err(CliError::Usage(
            "--risk-scorer-url needs --risk http".into(),
        ));
    }
    if args.risk.mode == RiskMode::Http && args.risk.risk_scorer_url.is_none() {
        return Err(CliError::Usage(
            "--risk http needs --risk-scorer-url".into(),
        ));
    }
    if !(database.starts_with("sqlite://")
        || database.starts_with("postgres://")
        || database.starts_with("postgresql://"))
    {
        return Err(CliError::Usage(
            "--database: expected sqlite://PATH or postgres://…".into(),
        ));
    }
    if let Some(addr) = args.metrics_listen {
        if addr == args.listen && addr.port() != 0 {
            return Err(CliError::Usage(
                "--metrics-listen must differ from --listen".into(),
            ));
        }
    }
    Ok(())
}

async fn serve(database: &str, args: ServeArgs) -> Result<(), CliError> {
    check_serve(database, &args)?;
    let settings = Settings {
        brand_name: args.brand_name.clone(),
        console_shared: args.console,
        ..args.settings()?
    };
    let delivery = DeliveryConfig {
        smtp_url: args.delivery.smtp_url.clone(),
        smtp_from: args.delivery.smtp_from.clone(),
        smtp_ca_file: args.delivery.smtp_ca_file.clone(),
        sms_webhook: args.delivery.sms_webhook.clone(),
        sms_webhook_secret: args.delivery.sms_webhook_secret.clone(),
        outbox: args.outbox.clone(),
    }
    .build()
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let server_key = args.server_key(database)?;
    if let Some(outbox) = &args.outbox {
        crate::private_files::narrow(outbox).map_err(|e| CliError::Io("secure the outbox", e))?;
    }
    let mut hash_cfg = HasherConfig::default();
    if let Some(n) = args.hash_concurrency {
        hash_cfg.concurrency = n.max(1);
    }
    let hasher = Hasher::new(hash_cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let store = storage::open(database).await?;
    let risk = args.risk.policy(store.clone())?;
    let state = AppState::new(Components {
        settings,
        store,
        clock: Arc::new(SystemClock),
        notifier: Arc::new(delivery),
        risk,
        hasher,
        server_key,
    })
    .await?;
    let shutdown = shutdown_signal().map_err(|e| CliError::Io("install signal handlers", e))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let certs = crate::ops::tls::ReloadingCert::load(cert, key)?;
            crate::ops::reload_on_sighup(certs.clone())
                .map_err(|e| CliError::Io("install the SIGHUP handler", e))?;
            Some(certs.acceptor()?)
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Io("bind the listen address", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Io("read the listen address", e))?;
    if let Some(metrics_addr) = args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .map_err(|e| CliError::Io("bind the metrics address", e))?;
        let bound = metrics
            .local_addr()
            .map_err(|e| CliError::Io("read the metrics address", e))?;
        tracing::info!("metrics on http://{bound}/metrics");
        crate::ops::serve_metrics(state.clone(), metrics);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("devicetrust-server {}", crate::ops::VERSION);
    tracing::info!("listening on {scheme}://{addr}");
    let grace = state.settings().connections.shutdown_grace;
    let alerts = state.clone();
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let console = match args.console_listen {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| CliError::Io("bind the console address", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| CliError::Io("read the console address", e))?;
            tracing::info!("support console on {scheme}://{addr}/console/");
            let router = crate::console::router(state.clone(), crate::console::Mount::OwnListener);
            let limits = state.settings().connections;
            let done = stopped(stop_rx.clone());
            // The server's own TLS covers the console's listener too: its
            // cookies are `Secure`.
            Some(tokio::spawn(crate::http_server::run_with_tls(
                router,
                listener,
                limits,
                tls.clone(),
                done,
            )))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = app::serve_with_tls(state, listener, tls, stopped(stop_rx)).await;
    if let Some(console) = console {
        match console.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the console listener failed"),
            Err(e) => tracing::warn!(error = %e, "the console listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    served.map_err(|e| CliError::Io("serve", e))?;
    // Alerts still queued get the same grace as requests did.
    alerts.finish_alerts(grace).await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Registers the SIGINT/SIGTERM handlers now (so a signal that arrives
/// right after start-up is not lost) and resolves when one arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutdown signal received; finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received; finishing in-flight requests");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_proxy, Cli, Command};
    use clap::Parser;

    fn settings(extra: &[&str]) -> Result<super::Settings, super::CliError> {
        let mut argv = vec!["devicetrust-server", "serve", "--rp-id", "bank.example"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("parse");
        match cli.command {
            Command::Serve(args) => args.settings(),
            _ => unreachable!("serve"),
        }
    }

    /// Velocity is counted from sessions, purged when they end: a window
    /// longer than a session's life would forget sign-ins it must count.
    #[test]
    fn velocity_cannot_outlive_sessions() {
        let refused = settings(&[
            "--risk-velocity-window",
            "7200",
            "--session-max-age-hours",
            "1",
        ]);
        assert!(matches!(refused, Err(super::CliError::Usage(m)) if m.contains("velocity")));
        assert!(settings(&[
            "--risk-velocity-window",
            "3600",
            "--session-max-age-hours",
            "1"
        ])
        .is_ok());
        assert!(settings(&[
            "--risk",
            "off",
            "--risk-velocity-window",
            "7200",
            "--session-max-age-hours",
            "1"
        ])
        .is_ok());
    }

    #[test]
    fn proxies_are_ranges_or_single_addresses() {
        assert_eq!(parse_proxy("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_proxy(" 10.1.2.3 ").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(parse_proxy("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_proxy("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert!(parse_proxy("proxy.example").is_err());
        assert!(parse_proxy("10.0.0.0/33").is_err());
    }
}
