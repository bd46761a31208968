//! The `devicetrust-server` command: `serve`, and operator commands that
//! work on the same database (`user add`, `user unlock`, `market set`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::admin::new_user;
use crate::api::types::CreateUserRequest;
use crate::app::{self, AppState, Components, Settings};
use crate::clock::{Clock, SystemClock};
use crate::notify::Outbox;
use crate::risk::AllowAll;
use crate::secrets::{Hasher, HasherConfig, Secret};
use crate::storage::{self, StorageError};
use crate::validate;

#[derive(Debug, Parser)]
#[command(
    name = "devicetrust-server",
    version,
    about = "devicetrust sign-in server"
)]
pub struct Cli {
    /// Database: sqlite://PATH (PATH verbatim; sqlite:///var/x.db is absolute).
    #[arg(
        long,
        env = "DEVICETRUST_DATABASE",
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
    Serve(ServeArgs),
    /// Manage card holders.
    #[command(subcommand)]
    User(UserCommand),
    /// Configure markets.
    #[command(subcommand)]
    Market(MarketCommand),
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
    /// administration API is disabled.
    #[arg(long, env = "DEVICETRUST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Append every outgoing message (OTPs, alerts) to this file as JSON lines.
    #[arg(long, env = "DEVICETRUST_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// Sign-in requests per minute from one IP address; 0 turns it off.
    #[arg(long, env = "DEVICETRUST_IP_RATE_LIMIT", default_value_t = 60)]
    pub ip_rate_limit: u32,
    /// HMAC key for OTP codes (at least 32 characters); without it a random
    /// key is created on first start and kept in the database.
    #[arg(long, env = "DEVICETRUST_OTP_SECRET", hide_env_values = true)]
    pub otp_secret: Option<String>,
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
    /// Password hashes computed at once (default: half the cores).
    #[arg(long, env = "DEVICETRUST_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
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
    },
    /// Lift a lock and clear the failure count.
    Unlock { user_id: String },
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
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Rejected(_) => 3,
            CliError::Storage(_) | CliError::Io(..) => 1,
        }
    }
}

impl ServeArgs {
    pub fn settings(&self) -> Result<Settings, CliError> {
        if self.rp_id.trim().is_empty() {
            return Err(CliError::Usage("--rp-id must not be empty".into()));
        }
        if let Some(t) = &self.admin_token {
            if t.len() < 32 {
                return Err(CliError::Usage(
                    "--admin-token must be at least 32 characters".into(),
                ));
            }
        }
        Ok(Settings {
            rp_id: self.rp_id.clone(),
            admin_token: self.admin_token.clone(),
            access_ttl_s: self.access_ttl,
            trust_period_s: self.trust_days * 24 * 3600,
            lockout_threshold: self.lockout_threshold,
            lockout_duration_s: self.lockout_minutes * 60,
            ip_rate_limit_per_minute: self.ip_rate_limit,
            ..Settings::default()
        })
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve(&cli.database, args).await,
        Command::User(UserCommand::Add {
            user_id,
            name,
            email,
            mobile,
            market,
        }) => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(|e| CliError::Io("read the password from stdin", e))?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
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
            let user = new_user(&hasher, SystemClock.now(), req)
                .await
                .map_err(|e| CliError::Rejected(e.to_string()))?;
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
            store.unlock(&user_id).await?;
            println!("unlocked {user_id}");
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

async fn serve(database: &str, args: ServeArgs) -> Result<(), CliError> {
    let settings = args.settings()?;
    let Some(outbox) = &args.outbox else {
        return Err(CliError::Usage(
            "no delivery is configured: pass --outbox PATH (DEVICETRUST_OUTBOX) so OTP codes can reach users".into(),
        ));
    };
    let otp_secret = match &args.otp_secret {
        Some(s) if s.len() < 32 => {
            return Err(CliError::Usage(
                "--otp-secret must be at least 32 characters".into(),
            ))
        }
        Some(s) => Some(s.as_bytes().to_vec()),
        None => None,
    };
    let mut hash_cfg = HasherConfig::default();
    if let Some(n) = args.hash_concurrency {
        hash_cfg.concurrency = n.max(1);
    }
    let hasher = Hasher::new(hash_cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let store = storage::open(database).await?;
    let state = AppState::new(Components {
        settings,
        store,
        clock: Arc::new(SystemClock),
        notifier: Arc::new(Outbox::new(outbox)),
        risk: Arc::new(AllowAll),
        hasher,
        otp_secret,
    })
    .await?;
    let shutdown = shutdown_signal().map_err(|e| CliError::Io("install signal handlers", e))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Io("bind the listen address", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Io("read the listen address", e))?;
    tracing::info!("listening on http://{addr}");
    app::serve(state, listener, shutdown)
        .await
        .map_err(|e| CliError::Io("serve", e))?;
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
