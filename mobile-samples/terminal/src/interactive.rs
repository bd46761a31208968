//! The interactive commands: `login`, `enable-device`, `unlock`, `devices`,
//! `remove-device`, `status`, and the `devicetrust>` prompt. Keys and local
//! state persist in the state folder; a session lives only while one command
//! runs, and each command signs out (revoking it on the server) before it
//! exits. Account commands (`register`, recovery, the prompt's account
//! changes) are in `account.rs`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use devicetrust_core::{
    Config, DeviceTrust, DeviceTrustError, OtpChannel, PlatformKeyError, PromptText, SignInStep,
    SoftwareKeyStore, StepUpReason, UserPresence, UserVerification,
};
use ring::rand::SecureRandom;

use crate::account;

/// Where and how to reach the server.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Server URL; http:// only for 127.0.0.1 or localhost.
    #[arg(
        long,
        env = "DEVICETRUST_SERVER_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// The server's relying-party id (its --rp-id).
    #[arg(
        long,
        env = "DEVICETRUST_RP_ID",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub rp_id: String,
    /// Folder for keys and local state (default: ~/.devicetrust).
    #[arg(long, env = "DEVICETRUST_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

/// Why a command failed, with the exit status scripts can branch on.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub mod exit {
    /// Wrong credentials (password, security code, card details), lock,
    /// wrong or expired code.
    pub const AUTH: i32 = 3;
    /// Biometric sign-in not enabled, cancelled, or the device is no longer trusted.
    pub const DEVICE: i32 = 4;
    /// The server cannot be reached.
    pub const NETWORK: i32 = 5;
    /// Anything else.
    pub const FAILED: i32 = 1;
}

impl From<DeviceTrustError> for Failure {
    fn from(e: DeviceTrustError) -> Self {
        use DeviceTrustError as E;
        let code = match &e {
            E::InvalidCredentials
            | E::CardNotRecognized
            | E::AccountLocked { .. }
            | E::OtpInvalid { .. }
            | E::OtpExpired
            | E::SignInExpired => exit::AUTH,
            E::NotEnrolledOnThisDevice
            | E::BiometricCancelled
            | E::BiometricsChanged
            | E::DeviceNotRecognized
            | E::ReauthorisationRequired => exit::DEVICE,
            E::Network { .. } => exit::NETWORK,
            _ => exit::FAILED,
        };
        let hint = match &e {
            E::AccountLocked { retry_after_secs } => format!(
                " (try again in {} min, or call the number on your card)",
                retry_after_secs.div_ceil(60)
            ),
            E::DeviceNotRecognized | E::ReauthorisationRequired | E::BiometricsChanged => {
                "; run `devicetrust login` with your password".into()
            }
            E::NotEnrolledOnThisDevice => "; run `devicetrust enable-device` first".into(),
            E::CardAlreadyEnrolled => {
                " (`devicetrust login`, or `devicetrust forgot-user-id`)".into()
            }
            E::RecentSignInRequired => ": sign in again, then repeat the command".into(),
            _ => String::new(),
        };
        Failure {
            code,
            message: format!("{e}{hint}"),
        }
    }
}

pub(crate) fn failed(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::FAILED,
        message: message.into(),
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// A line typed by the user.
pub(crate) fn ask(question: &str) -> Outcome<String> {
    print!("{question}");
    std::io::stdout()
        .flush()
        .map_err(|e| failed(e.to_string()))?;
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| failed(e.to_string()))?;
    if n == 0 {
        return Err(failed("no input (stdin closed)"));
    }
    Ok(line.trim().to_owned())
}

/// A secret typed without echo.
pub(crate) fn ask_secret(question: &str) -> Outcome<String> {
    rpassword::prompt_password(question)
        .map_err(|e| failed(format!("reading from the terminal: {e}")))
}

/// "Biometric" for a terminal: the user types `yes`.
struct TypedConfirmation;

impl UserPresence for TypedConfirmation {
    fn confirm(&self, prompt: &PromptText) -> Result<(), PlatformKeyError> {
        match ask(&format!("{}: type yes to confirm: ", prompt.title)) {
            Ok(answer) if answer.eq_ignore_ascii_case("yes") => Ok(()),
            _ => Err(PlatformKeyError::Cancelled),
        }
    }
}

fn state_dir(target: &Target) -> Outcome<PathBuf> {
    match &target.state_dir {
        Some(d) => Ok(d.clone()),
        None => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".devicetrust"))
            .ok_or_else(|| failed("set --state-dir (no HOME)")),
    }
}

/// The key-encryption key of the software key store: 32 random bytes in a
/// file only the user can read — the terminal's stand-in for an OS keychain.
fn key_encryption_key(dir: &Path) -> Outcome<Vec<u8>> {
    let path = dir.join("key-encryption-key");
    if let Ok(bytes) = std::fs::read(&path) {
        return Ok(bytes);
    }
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    let mut kek = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut kek)
        .map_err(|_| failed("no randomness"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| failed(e.to_string()))?;
    file.write_all(&kek).map_err(|e| failed(e.to_string()))?;
    Ok(kek.to_vec())
}

pub fn sdk(target: &Target) -> Outcome<DeviceTrust> {
    let dir = state_dir(target)?;
    let kek = key_encryption_key(&dir)?;
    let keys = SoftwareKeyStore::new(dir.join("keys"), &kek)
        .map_err(|e| failed(e.to_string()))?
        .with_user_presence(Arc::new(TypedConfirmation));
    let mut config = Config::new(
        &target.server,
        &target.rp_id,
        &dir.join("state").to_string_lossy(),
    );
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    config.allow_insecure_http = loopback.iter().any(|p| target.server.starts_with(p));
    Ok(DeviceTrust::new(config, Arc::new(keys))?)
}

pub(crate) async fn user_or_ask(sdk: &DeviceTrust, user: Option<String>) -> Outcome<String> {
    if let Some(u) = user {
        return Ok(u);
    }
    let enrolled = sdk.local_enrolments().await?;
    if let [only] = enrolled.as_slice() {
        return Ok(only.user_id.clone());
    }
    ask("User ID: ")
}

/// Password sign-in, through enrolment and the second factor.
pub async fn password_sign_in(sdk: &DeviceTrust, user: &str) -> Outcome {
    password_sign_in_with(sdk, user, None).await
}

/// Password sign-in with a password already typed (`register`), or asked.
pub(crate) async fn password_sign_in_with(
    sdk: &DeviceTrust,
    user: &str,
    password: Option<&str>,
) -> Outcome {
    let password = match password {
        Some(p) => p.to_owned(),
        None => ask_secret("Password: ")?,
    };
    println!("Signing in…");
    let mut step = sdk.sign_in_with_password(user, &password).await?;
    loop {
        step = match step {
            SignInStep::EnrolmentRequired { name, email, .. } => {
                println!("First sign-in on devicetrust: confirm your details.");
                println!("  Name:   {name}");
                println!("  E-mail: {email}");
                if !ask("Are these correct? [y/N] ")?.eq_ignore_ascii_case("y") {
                    return Err(failed(
                        "please ask your programme administrator to correct your details",
                    ));
                }
                let code = ask_secret("Create a security code (6-9 digits): ")?;
                let mobile = ask("Mobile number for codes by SMS (E.164, or empty): ")?;
                let mobile = (!mobile.is_empty()).then_some(mobile);
                sdk.complete_enrolment(&code, mobile).await?
            }
            SignInStep::SecondFactorRequired {
                otp_options,
                this_device_can_approve,
                reasons,
                ..
            } => {
                if !reasons.is_empty() {
                    println!("We ask for a code this time because of {}.", why(&reasons));
                }
                let mut choices: Vec<String> = Vec::new();
                if this_device_can_approve {
                    choices.push("approve with biometric sign-in on this computer".into());
                }
                for o in &otp_options {
                    choices.push(format!(
                        "code by {} to {}",
                        if o.channel == OtpChannel::Sms {
                            "SMS"
                        } else {
                            "e-mail"
                        },
                        o.destination
                    ));
                }
                println!("Verify it's you:");
                for (i, c) in choices.iter().enumerate() {
                    println!("  {}) {c}", i + 1);
                }
                let pick: usize = ask("Choose [1]: ")?.parse().unwrap_or(1);
                let index = pick.clamp(1, choices.len().max(1)) - 1;
                if this_device_can_approve && index == 0 {
                    sdk.approve_with_this_device(PromptText::new("Approve sign-in"))
                        .await?
                } else {
                    let option = &otp_options[index - usize::from(this_device_can_approve)];
                    let sent = sdk.send_otp(option.channel).await?;
                    println!(
                        "Code sent to {} (valid until {}).",
                        sent.destination,
                        account::utc(sent.expires_at)
                    );
                    loop {
                        let code = ask_secret("Code: ")?;
                        match sdk.verify_otp(&code).await {
                            Ok(s) => break s,
                            Err(DeviceTrustError::OtpInvalid { attempts_left })
                                if attempts_left > 0 =>
                            {
                                println!("That code is wrong; {attempts_left} tries left.");
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
            SignInStep::SignedIn { session } => {
                println!("Signed in as {} ({}).", session.user_id, amr(&session));
                return Ok(());
            }
        }
    }
}

/// Biometric sign-in (typed confirmation); a step-up continues with a code.
pub async fn biometric_sign_in(sdk: &DeviceTrust, user: &str) -> Outcome {
    println!("Signing in with biometric sign-in…");
    match sdk
        .sign_in_with_biometric(user, PromptText::new("Sign in to devicetrust"))
        .await?
    {
        SignInStep::SignedIn { session } => {
            println!("Signed in as {} ({}).", session.user_id, amr(&session));
            Ok(())
        }
        SignInStep::SecondFactorRequired {
            otp_options,
            reasons,
            ..
        } => {
            let option = otp_options
                .first()
                .ok_or_else(|| failed("no way to verify"))?;
            let sent = sdk.send_otp(option.channel).await?;
            if reasons.is_empty() {
                println!("Extra verification: code sent to {}.", sent.destination);
            } else {
                println!(
                    "Extra verification because of {}: code sent to {}.",
                    why(&reasons),
                    sent.destination
                );
            }
            sdk.verify_otp(&ask_secret("Code: ")?).await?;
            println!("Signed in as {user}.");
            Ok(())
        }
        SignInStep::EnrolmentRequired { .. } => Err(failed("unexpected enrolment")),
    }
}

/// Signs in the best available way: biometric if enabled here, else password.
pub(crate) async fn sign_in(sdk: &DeviceTrust, user: &str) -> Outcome {
    if sdk.is_biometric_sign_in_available(user).await? {
        biometric_sign_in(sdk, user).await
    } else {
        password_sign_in(sdk, user).await
    }
}

async fn finish(sdk: &DeviceTrust, result: Outcome) -> Outcome {
    // The session ends with the command: revoke it on the server too.
    let _ = sdk.sign_out().await;
    result
}

pub async fn login(target: &Target, user: Option<String>, enable: bool) -> Outcome {
    let sdk = sdk(target)?;
    let user = user_or_ask(&sdk, user).await?;
    login_with(&sdk, &user, None, enable).await
}

/// Password sign-in (with `password` if already typed), the offer to enable
/// biometric sign-in, then the prompt; signs out at the end.
pub(crate) async fn login_with(
    sdk: &DeviceTrust,
    user: &str,
    password: Option<&str>,
    enable: bool,
) -> Outcome {
    let result = async {
        password_sign_in_with(sdk, user, password).await?;
        if enable {
            return enable_here(sdk).await;
        }
        if !sdk.is_biometric_sign_in_available(user).await?
            && ask("Enable biometric sign-in on this computer? [y/N] ")?.eq_ignore_ascii_case("y")
        {
            enable_here(sdk).await?;
        }
        shell(sdk, user).await
    }
    .await;
    finish(sdk, result).await
}

const COMMANDS: &str = "Commands: devices, remove-device ID, enable-device, profile, \
     password, contact [email|mobile|remove-mobile], security-code, events [N], \
     cards, cards link, status, logout.";

/// While signed in at a terminal: a prompt for commands that use the
/// session, until `logout` (or end of input). Scripts (stdin not a terminal)
/// get one-shot commands instead.
async fn shell(sdk: &DeviceTrust, user: &str) -> Outcome {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(());
    }
    println!("{COMMANDS}");
    // End of input signs out as `logout` does.
    while let Ok(line) = ask("devicetrust> ") {
        let mut words = line.split_whitespace();
        let outcome: Outcome = match (words.next(), words.next()) {
            (None, _) => Ok(()),
            (Some("logout" | "exit" | "quit"), _) => break,
            (Some("devices"), _) => list_devices(sdk).await,
            (Some("remove-device"), Some(id)) => match sdk.remove_device(id).await {
                Ok(()) => {
                    println!("Removed {id}.");
                    if sdk.session().await.is_none() {
                        println!("That was this computer: you are signed out.");
                        return Ok(());
                    }
                    Ok(())
                }
                Err(e) => Err(e.into()),
            },
            (Some("enable-device"), _) => enable_here(sdk).await,
            (Some("profile"), _) => match sdk.profile().await {
                Ok(p) => {
                    println!(
                        "{} <{}>, market {}, mobile {}",
                        p.name,
                        p.email,
                        p.primary_market,
                        p.mobile.as_deref().unwrap_or("none")
                    );
                    Ok(())
                }
                Err(e) => Err(e.into()),
            },
            (Some("status"), _) => print_status(sdk).await,
            (Some("password"), _) => account::change_password(sdk, user).await,
            (Some("contact"), what) => account::change_contact(sdk, user, what).await,
            (Some("security-code"), _) => account::change_security_code(sdk, user).await,
            (Some("events"), n) => account::events(sdk, n).await,
            (Some("cards"), None) => account::cards(sdk).await,
            (Some("cards"), Some("link")) => account::link_card(sdk, user).await,
            (Some("help"), _) => {
                println!("{COMMANDS}");
                Ok(())
            }
            (Some(other), _) => {
                println!("Unknown command {other:?}. {COMMANDS}");
                Ok(())
            }
        };
        if let Err(f) = outcome {
            println!("{}", f.message);
            if sdk.session().await.is_none() {
                return Err(f);
            }
        }
    }
    sdk.sign_out().await?;
    println!("Signed out of {user}.");
    Ok(())
}

async fn enable_here(sdk: &DeviceTrust) -> Outcome {
    let name = ask("Name for this computer [Terminal]: ")?;
    let name = if name.is_empty() {
        "Terminal".to_owned()
    } else {
        name
    };
    let device = sdk
        .enable_biometric_sign_in(
            &name,
            UserVerification::Biometric,
            PromptText::new("Turn on biometric sign-in"),
        )
        .await?;
    println!(
        "Biometric sign-in enabled: device {} trusted until {}.",
        device.device_id,
        account::utc(device.trusted_until)
    );
    Ok(())
}

pub async fn unlock(target: &Target, user: Option<String>) -> Outcome {
    let sdk = sdk(target)?;
    let user = user_or_ask(&sdk, user).await?;
    let result = async {
        biometric_sign_in(&sdk, &user).await?;
        shell(&sdk, &user).await
    }
    .await;
    finish(&sdk, result).await
}

pub async fn devices(target: &Target, user: Option<String>) -> Outcome {
    let sdk = sdk(target)?;
    let user = user_or_ask(&sdk, user).await?;
    let result = async {
        sign_in(&sdk, &user).await?;
        list_devices(&sdk).await
    }
    .await;
    finish(&sdk, result).await
}

async fn list_devices(sdk: &DeviceTrust) -> Outcome {
    let list = sdk.trusted_devices().await?;
    if list.is_empty() {
        println!("No trusted devices.");
    }
    for d in list {
        let this = if d.is_this_device {
            "  (this computer)"
        } else {
            ""
        };
        println!(
            "{}  {}  {}  trusted until {}{this}",
            d.device_id,
            d.name,
            d.key_storage
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|| "unknown storage".into()),
            account::utc(d.trusted_until)
        );
    }
    Ok(())
}

pub async fn remove_device(target: &Target, user: Option<String>, device_id: String) -> Outcome {
    let sdk = sdk(target)?;
    let user = user_or_ask(&sdk, user).await?;
    let result = async {
        sign_in(&sdk, &user).await?;
        sdk.remove_device(&device_id).await?;
        println!("Removed {device_id}.");
        Ok(())
    }
    .await;
    finish(&sdk, result).await
}

pub async fn status(target: &Target) -> Outcome {
    print_status(&sdk(target)?).await
}

async fn print_status(sdk: &DeviceTrust) -> Outcome {
    let enrolled = sdk.local_enrolments().await?;
    if enrolled.is_empty() {
        println!("Biometric sign-in is not enabled on this computer.");
    }
    for e in enrolled {
        let available = sdk.is_biometric_sign_in_available(&e.user_id).await?;
        println!(
            "{}: device {} ({}), trusted until {}{}",
            e.user_id,
            e.device_id,
            e.device_name,
            account::utc(e.trusted_until),
            if available {
                ""
            } else {
                " (expired: sign in with your password)"
            }
        );
    }
    Ok(())
}

/// The risk engine's reasons in words ("a new network and an unusual hour").
pub(crate) fn why(reasons: &[StepUpReason]) -> String {
    let words: Vec<String> = reasons
        .iter()
        .map(|r| match r {
            StepUpReason::NewNetwork => "a new network".to_owned(),
            StepUpReason::NewDevice => "a device not used lately".to_owned(),
            StepUpReason::UnusualHour => "an unusual time of day".to_owned(),
            StepUpReason::Velocity => "many sign-ins in a short time".to_owned(),
            StepUpReason::RecentFailures => "recent failed attempts".to_owned(),
            StepUpReason::ScorerUnavailable => "a check that could not be made".to_owned(),
            StepUpReason::Other { name } => name.replace('_', " "),
        })
        .collect();
    match words.split_last() {
        None => "extra care".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How the user proved themselves, by the short RFC 8176 names ("pwd+otp").
fn amr(session: &devicetrust_core::SessionInfo) -> String {
    amr_names(session).join("+")
}

/// The session's methods by their RFC 8176 names (`pwd`, `otp`, …).
pub(crate) fn amr_names(session: &devicetrust_core::SessionInfo) -> Vec<String> {
    use devicetrust_core::AuthMethod as M;
    session
        .auth_methods
        .iter()
        .map(|m| match m {
            M::Password => "pwd".to_owned(),
            M::Otp => "otp".to_owned(),
            M::HardwareKey => "hwk".to_owned(),
            M::SoftwareKey => "swk".to_owned(),
            M::Biometric => "bio".to_owned(),
            M::Other { name } => name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod why_tests {
    use super::*;

    #[test]
    fn reasons_read_as_a_sentence() {
        assert_eq!(why(&[StepUpReason::NewNetwork]), "a new network");
        assert_eq!(
            why(&[
                StepUpReason::NewNetwork,
                StepUpReason::UnusualHour,
                StepUpReason::Other {
                    name: "mule_pattern".into()
                }
            ]),
            "a new network, an unusual time of day and mule pattern"
        );
    }
}
