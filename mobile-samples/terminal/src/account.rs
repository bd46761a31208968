//! Account commands: `register` (online access from a card), the signed-out
//! `forgot-user-id` and `forgot-password`, and the account changes of the
//! signed-in prompt (`password`, `contact`, `security-code`, `events`,
//! `cards`).
//!
//! New passwords are checked against the server's policy on this computer
//! first (`check_password`), so a broken rule costs no request; the server
//! has the last word (`common`, `same_as_current`), and its reasons are shown
//! the same way. Changes that need a recent sign-in (`RecentSignInRequired`)
//! ask the user to confirm it's them — biometric sign-in if enabled here,
//! else password and code — and then repeat the change once.

use std::future::Future;

use devicetrust_core::{
    check_password, DeviceTrust, DeviceTrustError as E, OtpChannel, OtpOption, PasswordPolicy,
    PasswordRule, SecurityEventType,
};

use crate::interactive::{
    self, ask, ask_secret, exit, failed, login_with, sdk, Failure, Outcome, Target,
};

// ---------- passwords ----------

/// A rule in words, with the policy's numbers.
fn rule_text(policy: &PasswordPolicy, rule: &PasswordRule) -> String {
    match rule {
        PasswordRule::TooShort => format!("too short: at least {} characters", policy.min_length),
        PasswordRule::TooLong => format!("too long: at most {} characters", policy.max_length),
        PasswordRule::TooFewClasses => format!(
            "mix at least {} of lower case, upper case, digits and symbols",
            policy.classes_required
        ),
        other => other.describe().to_owned(),
    }
}

fn print_broken(policy: &PasswordPolicy, header: &str, rules: &[PasswordRule]) {
    println!("{header}");
    for r in rules {
        println!("  - {}", rule_text(policy, r));
    }
}

/// Asks for a new password until one passes every rule this computer can
/// check and is typed twice the same; `None` when the user gives up (empty).
fn choose_password(policy: &PasswordPolicy, user_id: &str) -> Outcome<Option<String>> {
    loop {
        let password = ask_secret("New password (empty to give up): ")?;
        if password.is_empty() {
            return Ok(None);
        }
        let broken = check_password(policy, &password, user_id);
        if !broken.is_empty() {
            print_broken(policy, "That password breaks these rules:", &broken);
            continue;
        }
        if ask_secret("Type it again: ")? != password {
            println!("The two passwords differ.");
            continue;
        }
        return Ok(Some(password));
    }
}

async fn policy(sdk: &DeviceTrust) -> Outcome<PasswordPolicy> {
    let policy = sdk.password_policy().await?;
    println!("Password rules: {}", policy.description);
    Ok(policy)
}

const REFUSED: &str = "The server refused that password:";

// ---------- register ----------

struct CardForm {
    number: String,
    id: String,
    name: String,
    user_id: String,
}

fn ask_card_form() -> Outcome<CardForm> {
    Ok(CardForm {
        number: ask("Card number: ")?,
        id: ask_secret("Card ID (4 digits): ")?,
        name: ask("Name as on the card: ")?,
        user_id: ask("Choose a user ID: ")?,
    })
}

/// `devicetrust register`: card details → a user ID and password; then,
/// if the user wants, the first sign-in (enrolment, code) and the prompt.
pub async fn register(target: &Target) -> Outcome {
    let sdk = sdk(target)?;
    println!("Set up online access with your card.");
    let policy = sdk.password_policy().await?;
    let mut form = ask_card_form()?;
    let mut password: Option<String> = None;
    let user_id = loop {
        let pw = match &password {
            Some(p) => p.clone(),
            None => {
                println!("Password rules: {}", policy.description);
                match choose_password(&policy, &form.user_id)? {
                    Some(p) => p,
                    None => return Err(failed("no password chosen: nothing was set up")),
                }
            }
        };
        println!("Setting up…");
        match sdk
            .create_account(&form.number, &form.id, &form.name, &form.user_id, &pw)
            .await
        {
            Ok(user_id) => break (user_id, pw),
            Err(E::PasswordRejected { reasons }) => {
                print_broken(&policy, REFUSED, &reasons);
                password = None;
            }
            Err(E::UserIdTaken) => {
                println!("The user ID {} is taken: choose another.", form.user_id);
                form.user_id = ask("Choose a user ID: ")?;
                // Keep the password unless it now contains the user ID.
                password = check_password(&policy, &pw, &form.user_id)
                    .is_empty()
                    .then_some(pw);
            }
            Err(E::InvalidInput { reason }) => {
                println!("Please check: {reason}.");
                form = ask_card_form()?;
                password = check_password(&policy, &pw, &form.user_id)
                    .is_empty()
                    .then_some(pw);
            }
            Err(E::CardNotActivated) => {
                return Err(failed(
                    "this card is not activated yet: activate it (see the letter that came \
                     with it), then run `devicetrust register` again",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (user_id, password) = user_id;
    println!("Online access is set up. Your user ID is {user_id}.");
    if ask("Sign in now to finish setting up? [Y/n] ")?.eq_ignore_ascii_case("n") {
        println!("Sign in later with `devicetrust login --user {user_id}`.");
        return Ok(());
    }
    login_with(&sdk, &user_id, Some(&password), false).await
}

// ---------- recovery (signed out) ----------

/// `devicetrust forgot-user-id`: e-mail + security code; the server e-mails
/// the user ID if they match, and never says whether they did.
pub async fn forgot_user_id(target: &Target) -> Outcome {
    let sdk = sdk(target)?;
    let email = ask("E-mail address: ")?;
    let code = ask_secret("Security code: ")?;
    sdk.recovery().forgot_user_id(&email, &code).await?;
    println!("If they match an account, we have e-mailed your user ID to {email}.");
    Ok(())
}

fn channel_name(channel: OtpChannel) -> &'static str {
    if channel == OtpChannel::Sms {
        "SMS"
    } else {
        "e-mail"
    }
}

fn choose_channel(options: &[OtpOption]) -> Outcome<OtpChannel> {
    match options {
        [] => Err(failed("no way to send you a code")),
        [only] => Ok(only.channel),
        _ => {
            println!("Where should we send a code?");
            for (i, o) in options.iter().enumerate() {
                println!(
                    "  {}) {} to {}",
                    i + 1,
                    channel_name(o.channel),
                    o.destination
                );
            }
            let pick: usize = ask("Choose [1]: ")?.parse().unwrap_or(1);
            Ok(options[pick.clamp(1, options.len()) - 1].channel)
        }
    }
}

/// `devicetrust forgot-password`: user ID + security code → a code by
/// e-mail or SMS → a new password.
pub async fn forgot_password(target: &Target, user: Option<String>) -> Outcome {
    let sdk = sdk(target)?;
    let user = match user {
        Some(u) => u,
        None => ask("User ID: ")?,
    };
    let code = ask_secret("Security code: ")?;
    let recovery = sdk.recovery();
    let started = match recovery.start_password_recovery(&user, &code).await {
        Err(E::InvalidCredentials) => {
            return Err(Failure {
                code: exit::AUTH,
                message: "the user ID or security code is incorrect".into(),
            })
        }
        other => other?,
    };
    let channel = choose_channel(&started.otp_options)?;
    let sent = recovery.send_otp(channel).await?;
    println!("Code sent to {}.", sent.destination);
    let mut code = ask_secret("Code: ")?;
    let policy = policy(&sdk).await?;
    let mut password = None;
    loop {
        let pw = match password.take() {
            Some(p) => p,
            None => choose_password(&policy, &user)?
                .ok_or_else(|| failed("no password chosen: your password is unchanged"))?,
        };
        match recovery.complete_password_recovery(&code, &pw).await {
            Ok(()) => break,
            Err(E::PasswordRejected { reasons }) => print_broken(&policy, REFUSED, &reasons),
            Err(E::OtpInvalid { attempts_left }) if attempts_left > 0 => {
                println!("That code is wrong; {attempts_left} tries left.");
                code = ask_secret("Code: ")?;
                password = Some(pw);
            }
            Err(E::InvalidInput { reason }) => {
                println!("Please check: {reason}.");
                code = ask_secret("Code: ")?;
                password = Some(pw);
            }
            Err(E::OtpExpired) => {
                let sent = recovery.send_otp(channel).await?;
                println!(
                    "That code expired; a new one was sent to {}.",
                    sent.destination
                );
                code = ask_secret("Code: ")?;
                password = Some(pw);
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!("Your password has been reset, and every session of {user} signed out.");
    println!(
        "Sign in with `devicetrust login --user {user}` and the new password. Each trusted \
         device (this computer too, if biometric sign-in is on here) needs one sign-in with \
         your password and a code before biometric sign-in works on it again."
    );
    Ok(())
}

// ---------- the signed-in prompt ----------

/// Runs a change that needs a recent sign-in; if the server asks, confirms
/// it's the user (signing in again) and repeats it once. The outer error is
/// the confirmation's, the inner the change's.
async fn strong<T, F, Fut>(sdk: &DeviceTrust, user: &str, mut change: F) -> Outcome<Result<T, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match change().await {
        Err(E::RecentSignInRequired) => {
            println!("Confirm it's you: sign in again.");
            interactive::sign_in(sdk, user).await?;
            Ok(change().await)
        }
        other => Ok(other),
    }
}

pub async fn change_password(sdk: &DeviceTrust, user: &str) -> Outcome {
    let current = ask_secret("Current password: ")?;
    let policy = policy(sdk).await?;
    let account = sdk.account();
    loop {
        let Some(new) = choose_password(&policy, user)? else {
            return Err(failed("password unchanged"));
        };
        match strong(sdk, user, || account.change_password(&current, &new)).await? {
            Ok(()) => {
                println!("Password changed. Your other sessions were signed out.");
                return Ok(());
            }
            Err(E::PasswordRejected { reasons }) => print_broken(&policy, REFUSED, &reasons),
            Err(E::InvalidCredentials) => {
                return Err(failed(
                    "your current password is incorrect: password unchanged",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn change_contact(sdk: &DeviceTrust, user: &str, what: Option<&str>) -> Outcome {
    let what = match what {
        Some(w) => w.to_owned(),
        None => {
            println!("Change: 1) e-mail  2) mobile number  3) remove the mobile number");
            match ask("Choose [1]: ")?.as_str() {
                "2" => "mobile".into(),
                "3" => "remove-mobile".into(),
                _ => "email".into(),
            }
        }
    };
    let account = sdk.account();
    let pending = match what.as_str() {
        "email" | "e-mail" => {
            let email = ask("New e-mail address: ")?;
            strong(sdk, user, || account.change_email(&email)).await??
        }
        "mobile" => {
            let mobile = ask("New mobile number (E.164, e.g. +447700900123): ")?;
            strong(sdk, user, || account.change_mobile(&mobile)).await??
        }
        "remove-mobile" => {
            let Some(mobile) = account.profile().await?.mobile else {
                println!("You have no mobile number.");
                return Ok(());
            };
            if !ask(&format!("Remove {mobile}? Codes by SMS stop. [y/N] "))?
                .eq_ignore_ascii_case("y")
            {
                println!("Mobile number kept.");
                return Ok(());
            }
            strong(sdk, user, || account.remove_mobile()).await??;
            println!("Mobile number removed.");
            return Ok(());
        }
        other => {
            return Err(failed(format!(
                "contact {other}? Use `contact email`, `contact mobile` or `contact remove-mobile`"
            )))
        }
    };
    println!(
        "Code sent by {} to {}: enter it to confirm the change.",
        channel_name(pending.channel),
        pending.destination
    );
    let profile = loop {
        let code = ask_secret("Code: ")?;
        match account.confirm_contact_change(&code).await {
            Ok(p) => break p,
            Err(E::OtpInvalid { attempts_left }) if attempts_left > 0 => {
                println!("That code is wrong; {attempts_left} tries left.");
            }
            Err(E::OtpInvalid { .. } | E::OtpExpired) => {
                return Err(Failure {
                    code: exit::AUTH,
                    message: "the code expired or ran out of tries: run `contact` again".into(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    };
    if pending.channel == OtpChannel::Sms {
        println!(
            "Mobile number changed: {}.",
            profile.mobile.as_deref().unwrap_or("none")
        );
    } else {
        println!("E-mail changed: {}.", profile.email);
    }
    Ok(())
}

pub async fn change_security_code(sdk: &DeviceTrust, user: &str) -> Outcome {
    let account = sdk.account();
    loop {
        let code = ask_secret("New security code (6-9 digits, empty to give up): ")?;
        if code.is_empty() {
            return Err(failed("security code unchanged"));
        }
        if ask_secret("Type it again: ")? != code {
            println!("The two codes differ.");
            continue;
        }
        match strong(sdk, user, || account.change_security_code(&code)).await? {
            Ok(()) => {
                println!("Security code changed.");
                return Ok(());
            }
            Err(E::InvalidInput { reason }) => println!("Please choose another: {reason}."),
            Err(e) => return Err(e.into()),
        }
    }
}

fn event_name(t: &SecurityEventType) -> String {
    use SecurityEventType as T;
    match t {
        T::SignIn => "sign-in",
        T::SignInFailed => "failed attempt",
        T::AccountLocked => "account locked",
        T::StepUp => "extra verification",
        T::DeviceAdded => "device added",
        T::DeviceRemoved => "device removed",
        T::PasswordChanged => "password changed",
        T::ContactChanged => "contact changed",
        T::SecurityCodeChanged => "security code changed",
        T::RecoveryUsed => "password reset",
        T::RefreshReuse => "session revoked (token reuse)",
        T::Enrolled => "enrolled",
        T::Other { name } => return name.replace('_', " "),
    }
    .to_owned()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
/// A point in time from the SDK, in UTC.
pub fn utc(t: std::time::SystemTime) -> String {
    let secs = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    utc_secs(secs)
}

/// Unix seconds in UTC.
pub fn utc_secs(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

pub async fn events(sdk: &DeviceTrust, limit: Option<&str>) -> Outcome {
    let limit = match limit {
        None => 20,
        Some(n) => n
            .parse()
            .map_err(|_| failed("events N: N is how many, 1 to 200"))?,
    };
    let list = sdk.account().security_events(limit).await?;
    if list.is_empty() {
        println!("No security events.");
        return Ok(());
    }
    println!("{:<23}  {:<22}  {:<20}  from", "time", "event", "device");
    for e in list {
        let device = e.device_name.or(e.device_id).unwrap_or_else(|| "-".into());
        let line = format!(
            "{}  {:<22}  {device:<20}  {}",
            utc(e.at),
            event_name(&e.event_type),
            e.ip.as_deref().unwrap_or("-")
        );
        println!("{}", line.trim_end());
    }
    Ok(())
}

pub async fn cards(sdk: &DeviceTrust) -> Outcome {
    let cards = sdk.account().linked_cards().await?;
    if cards.is_empty() {
        println!("No cards linked.");
    }
    for c in cards {
        println!("Card ending {}, linked {}", c.last4, utc(c.linked_at));
    }
    Ok(())
}

pub async fn link_card(sdk: &DeviceTrust, user: &str) -> Outcome {
    let number = ask("Card number: ")?;
    let id = ask_secret("Card ID (4 digits): ")?;
    let account = sdk.account();
    let card = strong(sdk, user, || account.link_card(&number, &id)).await??;
    println!("Linked the card ending {}.", card.last4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_secs(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_secs(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_secs(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(utc_secs(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn rules_are_worded_with_the_policy() {
        let policy = PasswordPolicy {
            min_length: 8,
            max_length: 128,
            classes_required: 3,
            description: String::new(),
        };
        assert_eq!(
            rule_text(&policy, &PasswordRule::TooShort),
            "too short: at least 8 characters"
        );
        assert!(rule_text(&policy, &PasswordRule::Common).contains("common"));
    }
}
