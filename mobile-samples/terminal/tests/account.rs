//! The account commands through a real pseudo-terminal (rexpect), as a
//! person types them, against a real server: `register` from a card, the
//! prompt's `password`, `contact`, `security-code`, `events` and `cards`,
//! `forgot-user-id` and `forgot-password`.

use std::process::Command;
use std::time::Duration;

use devicetrust_e2e::{TestServer, ADMIN_TOKEN, PASSWORD, RP_ID, SECURITY_CODE};
use rexpect::session::{spawn_command, PtySession};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_devicetrust");
/// A new password that satisfies the policy.
const NEW_PASSWORD: &str = "Another strong Passw0rd";
/// Passes every rule the terminal can check, but is in the server's list of
/// common passwords.
const COMMON: &str = "P@ssw0rd";
const TIMEOUT_MS: Option<u64> = Some(20_000);

fn command(base: &str, state: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--server", base, "--rp-id", RP_ID, "--state-dir"])
        .arg(state)
        .args(args);
    c
}

fn exit_code(p: &mut PtySession) -> i32 {
    match p.process().wait().expect("wait") {
        rexpect::process::WaitStatus::Exited(_, code) => code,
        other => panic!("{other:?}"),
    }
}

/// A 16-digit card number with a valid Luhn check digit.
fn card_number(prefix15: &str) -> String {
    let sum: u32 = prefix15
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let t = d * 2;
                if t > 9 {
                    t - 9
                } else {
                    t
                }
            } else {
                d
            }
        })
        .sum();
    format!("{prefix15}{}", (10 - sum % 10) % 10)
}

async fn add_card(srv: &TestServer, number: &str, card_id: &str) {
    let a = srv
        .post(
            "/admin/v1/cards",
            json!({
                "card_number": number,
                "card_id": card_id,
                "name": "Jane Doe",
                "email": "card.holder@example.com",
                "mobile": null,
                "primary_market": "GB",
                "activated": true,
            }),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(a.status, 201, "add card: {:?}", a.body);
}

/// Answers the prompt's "Code: " with the newest code sent to `user`.
fn send_code(p: &mut PtySession, srv: &TestServer, user: &str) {
    p.exp_string("Code: ").unwrap();
    p.send_line(&srv.last_otp(user)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_from_a_card_then_manage_the_account_at_the_prompt() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    let first = card_number("374245455400126");
    let second = card_number("378734493671000");
    add_card(&srv, &first, "4321").await;
    add_card(&srv, &second, "2222").await;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_path_buf();
    let s = srv.clone();

    tokio::task::spawn_blocking(move || {
        let user = "card.holder";
        let mut p = spawn_command(command(&s.base, &dir, &["register"]), TIMEOUT_MS).unwrap();
        p.exp_string("Card number: ").unwrap();
        p.send_line(&first).unwrap();
        p.exp_string("Card ID (4 digits): ").unwrap();
        p.send_line("4321").unwrap();
        p.exp_string("Name as on the card: ").unwrap();
        p.send_line("Jane Doe").unwrap();
        p.exp_string("Choose a user ID: ").unwrap();
        p.send_line(user).unwrap();
        p.exp_string("Password rules: 8 to 128 characters").unwrap();
        // Broken rules this computer sees: no request.
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line("password").unwrap();
        p.exp_string("That password breaks these rules:").unwrap();
        p.exp_string("mix at least 3 of lower case, upper case, digits and symbols")
            .unwrap();
        // What only the server knows: a common password.
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line(COMMON).unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line(COMMON).unwrap();
        p.exp_string("The server refused that password:").unwrap();
        p.exp_string("too common").unwrap();
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("Your user ID is card.holder.").unwrap();
        // Straight on to the first sign-in, with the password just chosen.
        p.exp_string("Sign in now to finish setting up? [Y/n] ")
            .unwrap();
        p.send_line("").unwrap();
        p.exp_string("Name:   Jane Doe").unwrap();
        p.exp_string("Are these correct? [y/N] ").unwrap();
        p.send_line("y").unwrap();
        p.exp_string("Create a security code (6-9 digits): ")
            .unwrap();
        p.send_line(SECURITY_CODE).unwrap();
        p.exp_string("Mobile number for codes by SMS (E.164, or empty): ")
            .unwrap();
        p.send_line("").unwrap();
        p.exp_string("Choose [1]: ").unwrap();
        p.send_line("1").unwrap();
        send_code(&mut p, &s, user);
        p.exp_string("Signed in as card.holder (pwd+otp).").unwrap();
        p.exp_string("Enable biometric sign-in on this computer? [y/N] ")
            .unwrap();
        p.send_line("n").unwrap();

        // `password`: current, then a new one.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("password").unwrap();
        p.exp_string("Current password: ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("Password rules: ").unwrap();
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Password changed.").unwrap();

        // `contact`: a new e-mail address, confirmed with the code sent there.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("contact").unwrap();
        p.exp_string("Choose [1]: ").unwrap();
        p.send_line("1").unwrap();
        p.exp_string("New e-mail address: ").unwrap();
        p.send_line("jane.new@example.org").unwrap();
        p.exp_string("@example.org: enter it to confirm the change.")
            .unwrap();
        let sent = s
            .outbox_messages()
            .into_iter()
            .rev()
            .find(|m| m["purpose"] == "otp")
            .expect("the code in the outbox");
        assert_eq!(sent["to"], "jane.new@example.org", "{sent:?}");
        send_code(&mut p, &s, user);
        p.exp_string("E-mail changed: jane.new@example.org.")
            .unwrap();
        // A mobile number added, then removed.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("contact mobile").unwrap();
        p.exp_string("New mobile number (E.164, e.g. +447700900123): ")
            .unwrap();
        p.send_line("+447700900123").unwrap();
        p.exp_string("Code sent by SMS to").unwrap();
        send_code(&mut p, &s, user);
        p.exp_string("Mobile number changed: +447700900123.")
            .unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("contact remove-mobile").unwrap();
        p.exp_string("Remove +447700900123? Codes by SMS stop. [y/N] ")
            .unwrap();
        p.send_line("y").unwrap();
        p.exp_string("Mobile number removed.").unwrap();

        // `security-code`, typed twice.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("security-code").unwrap();
        p.exp_string("New security code (6-9 digits, empty to give up): ")
            .unwrap();
        p.send_line("97531864").unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line("97531864").unwrap();
        p.exp_string("Security code changed.").unwrap();

        // `events`, newest first.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("events").unwrap();
        for event in [
            " UTC  security code changed",
            "contact changed",
            "password changed",
            "sign-in",
            "enrolled",
        ] {
            p.exp_string(event).unwrap();
        }

        // `cards`, and `cards link` for the second card.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("cards").unwrap();
        p.exp_string(&format!("Card ending {}, linked ", &first[12..]))
            .unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("cards link").unwrap();
        p.exp_string("Card number: ").unwrap();
        p.send_line(&second).unwrap();
        p.exp_string("Card ID (4 digits): ").unwrap();
        p.send_line("2222").unwrap();
        p.exp_string(&format!("Linked the card ending {}.", &second[12..]))
            .unwrap();

        // Eleven minutes on, a change wants a recent sign-in: the terminal
        // asks the user to confirm it's them, then makes the change.
        s.clock.advance(11 * 60);
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("security-code").unwrap();
        p.exp_string("New security code (6-9 digits, empty to give up): ")
            .unwrap();
        p.send_line("24681357").unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line("24681357").unwrap();
        p.exp_string("Confirm it's you: sign in again.").unwrap();
        p.exp_string("Password: ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Choose [1]: ").unwrap();
        p.send_line("1").unwrap();
        send_code(&mut p, &s, user);
        p.exp_string("Signed in as card.holder (pwd+otp).").unwrap();
        p.exp_string("Security code changed.").unwrap();

        p.exp_string("devicetrust> ").unwrap();
        p.send_line("logout").unwrap();
        p.exp_string("Signed out of card.holder.").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);

        // The card is taken now: a clear message, exit status 1.
        let mut p = spawn_command(command(&s.base, &dir, &["register"]), TIMEOUT_MS).unwrap();
        p.exp_string("Card number: ").unwrap();
        p.send_line(&first).unwrap();
        p.exp_string("Card ID (4 digits): ").unwrap();
        p.send_line("4321").unwrap();
        p.exp_string("Name as on the card: ").unwrap();
        p.send_line("Jane Doe").unwrap();
        p.exp_string("Choose a user ID: ").unwrap();
        p.send_line("jane.again").unwrap();
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("already registered for online access")
            .unwrap();
        p.exp_string("devicetrust forgot-user-id").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 1);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_user_id_and_forgot_password_then_sign_in() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    let user = "forgetful";
    srv.add_user(user, "GB", None).await;
    // Enrolled (security code) by a first sign-in elsewhere.
    srv.sign_in_with_otp(user, None).await;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_path_buf();
    let s = srv.clone();

    tokio::task::spawn_blocking(move || {
        // Forgot the user ID: the server e-mails it, and says nothing.
        let mut p = spawn_command(command(&s.base, &dir, &["forgot-user-id"]), TIMEOUT_MS).unwrap();
        p.exp_string("E-mail address: ").unwrap();
        p.send_line("forgetful@example.com").unwrap();
        p.exp_string("Security code: ").unwrap();
        p.send_line(SECURITY_CODE).unwrap();
        p.exp_string("If they match an account, we have e-mailed your user ID")
            .unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);
        // The e-mail goes out off the request path: wait for it (bounded).
        let recovery = (0..100)
            .find_map(|_| {
                let found = s
                    .outbox_messages()
                    .into_iter()
                    .find(|m| m["purpose"] == "recovery" && m["to"] == "forgetful@example.com");
                if found.is_none() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                found
            })
            .expect("the recovery e-mail in the outbox");
        assert!(
            recovery["text"].as_str().unwrap_or("").contains(user),
            "{recovery:?}"
        );

        // Forgot the password, with a wrong security code: exit status 3.
        let mut p =
            spawn_command(command(&s.base, &dir, &["forgot-password"]), TIMEOUT_MS).unwrap();
        p.exp_string("User ID: ").unwrap();
        p.send_line(user).unwrap();
        p.exp_string("Security code: ").unwrap();
        p.send_line("97531864").unwrap();
        p.exp_string("the user ID or security code is incorrect")
            .unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 3);

        // Then end to end: code by e-mail, a new password with the rules.
        let mut p =
            spawn_command(command(&s.base, &dir, &["forgot-password"]), TIMEOUT_MS).unwrap();
        p.exp_string("User ID: ").unwrap();
        p.send_line(user).unwrap();
        p.exp_string("Security code: ").unwrap();
        p.send_line(SECURITY_CODE).unwrap();
        p.exp_string("Code sent to f").unwrap();
        send_code(&mut p, &s, user);
        p.exp_string("Password rules: ").unwrap();
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line("forgetful 2026").unwrap();
        p.exp_string("That password breaks these rules:").unwrap();
        p.exp_string("must not contain your user ID").unwrap();
        p.exp_string("New password (empty to give up): ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Type it again: ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Your password has been reset").unwrap();
        p.exp_string("needs one sign-in with your password and a code")
            .unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);

        // Sign in with the new password.
        let mut p = spawn_command(
            command(&s.base, &dir, &["login", "--user", user]),
            TIMEOUT_MS,
        )
        .unwrap();
        p.exp_string("Password: ").unwrap();
        p.send_line(NEW_PASSWORD).unwrap();
        p.exp_string("Choose [1]: ").unwrap();
        p.send_line("1").unwrap();
        send_code(&mut p, &s, user);
        p.exp_string("Signed in as forgetful (pwd+otp).").unwrap();
        p.exp_string("Enable biometric sign-in on this computer? [y/N] ")
            .unwrap();
        p.send_line("y").unwrap();
        p.exp_string("Name for this computer [Terminal]: ").unwrap();
        p.send_line("Test terminal").unwrap();
        p.exp_string("Turn on biometric sign-in: type yes to confirm: ")
            .unwrap();
        p.send_line("yes").unwrap();
        p.exp_string("Biometric sign-in enabled").unwrap();
        // The events: time, type, device name, newest first.
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("events 10").unwrap();
        p.exp_string(" UTC  device added            Test terminal")
            .unwrap();
        p.exp_string("sign-in").unwrap();
        p.exp_string("password reset").unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("logout").unwrap();
        p.exp_string("Signed out of forgetful.").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);
    })
    .await
    .unwrap();
}
