//! `devicetrust`: the SDK from a terminal. "Biometric" confirmation is a
//! typed confirmation here; keys live in the SDK's software key store.
//!
//! Exit status: 0 done, 1 failed, 2 usage, 3 credentials (password,
//! security code, card details)/lock/code, 4 biometric sign-in unavailable
//! or no longer trusted, 5 network.
//!
//! `devicetrust demo` starts a server on a temporary database, provisions a
//! demo card holder and walks through the whole journey, printing each step.

mod account;
mod demo;
mod interactive;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "devicetrust",
    version,
    about = "Sign in with devicetrust from a terminal"
)]
struct Cli {
    #[command(flatten)]
    target: interactive::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a server on a temporary database, provision a demo user and walk
    /// through the whole journey: password, enrolment, OTP, enabling
    /// biometric sign-in, biometric sign-in, devices.
    Demo,
    /// Sign in with your password (enrolling and verifying a code as needed);
    /// at a terminal, stay signed in at a prompt until `logout`.
    Login {
        #[arg(long)]
        user: Option<String>,
    },
    /// Sign in with your password and enable biometric sign-in here.
    EnableDevice {
        #[arg(long)]
        user: Option<String>,
    },
    /// Sign in with biometric sign-in (a typed confirmation here); at a
    /// terminal, stay signed in at a prompt until `logout`.
    Unlock {
        #[arg(long)]
        user: Option<String>,
    },
    /// List your trusted devices.
    Devices {
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove a trusted device (this one too: its key is deleted).
    RemoveDevice {
        device_id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// What this computer knows, without contacting the server.
    Status,
    /// Set up online access with your card: card number, card ID and name
    /// as on the card, then a user ID and a password; then sign in.
    Register,
    /// Forgot your user ID: we e-mail it if the e-mail address and security
    /// code match.
    ForgotUserId,
    /// Forgot your password: user ID and security code, a code by e-mail or
    /// SMS, then a new password.
    ForgotPassword {
        #[arg(long)]
        user: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let t = &cli.target;
    let result = match cli.command {
        Command::Demo => demo::run().await.map_err(|message| interactive::Failure {
            code: interactive::exit::FAILED,
            message,
        }),
        Command::Login { user } => interactive::login(t, user, false).await,
        Command::EnableDevice { user } => interactive::login(t, user, true).await,
        Command::Unlock { user } => interactive::unlock(t, user).await,
        Command::Devices { user } => interactive::devices(t, user).await,
        Command::RemoveDevice { device_id, user } => {
            interactive::remove_device(t, user, device_id).await
        }
        Command::Status => interactive::status(t).await,
        Command::Register => account::register(t).await,
        Command::ForgotUserId => account::forgot_user_id(t).await,
        Command::ForgotPassword { user } => account::forgot_password(t, user).await,
    };
    if let Err(f) = result {
        eprintln!("devicetrust: {}", f.message);
        std::process::exit(f.code);
    }
}
