//! The interactive commands through a real pseudo-terminal (rexpect), as a
//! person types them, against a real server.

use std::process::Command;

use devicetrust_e2e::{TestServer, PASSWORD, RP_ID};
use rexpect::session::{spawn_command, PtySession};

const BIN: &str = env!("CARGO_BIN_EXE_devicetrust");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_enable_unlock_and_fail_like_a_person_would() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    srv.add_user("term", "GB", None).await;
    let state = tempfile::tempdir().unwrap();
    let base = srv.base.clone();
    let dir = state.path().to_path_buf();
    let s = srv.clone();

    tokio::task::spawn_blocking(move || {
        // First sign-in: password, enrolment, e-mail code, then enable biometric sign-in.
        let mut p = spawn_command(
            command(&base, &dir, &["enable-device", "--user", "term"]),
            Some(20_000),
        )
        .unwrap();
        p.exp_string("Password: ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("Name:   Jane Doe").unwrap();
        p.exp_string("Are these correct? [y/N] ").unwrap();
        p.send_line("y").unwrap();
        p.exp_string("Create a security code (6-9 digits): ")
            .unwrap();
        p.send_line("135790").unwrap();
        p.exp_string("Mobile number for codes by SMS (E.164, or empty): ")
            .unwrap();
        p.send_line("").unwrap();
        // (rexpect reads bytes as Latin-1, so match around the masked "•••".)
        p.exp_string("1) code by e-mail to t").unwrap();
        p.exp_string("@example.com").unwrap();
        p.exp_string("Choose [1]: ").unwrap();
        p.send_line("1").unwrap();
        p.exp_string("Code: ").unwrap();
        p.send_line(&s.last_otp("term")).unwrap();
        p.exp_string("Signed in as term (pwd+otp).").unwrap();
        p.exp_string("Name for this computer [Terminal]: ").unwrap();
        p.send_line("Test terminal").unwrap();
        p.exp_string("Turn on biometric sign-in: type yes to confirm: ")
            .unwrap();
        p.send_line("yes").unwrap();
        p.exp_string("Biometric sign-in enabled").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);

        // Status without the network.
        let out = command(&base, &dir, &["status"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("term: device"),
            "{out:?}"
        );

        // Biometric sign-in: a typed confirmation, no password; the session
        // stays open at a prompt until `logout`.
        let mut p = spawn_command(command(&base, &dir, &["unlock"]), Some(20_000)).unwrap();
        p.exp_string("Sign in to devicetrust: type yes to confirm: ")
            .unwrap();
        p.send_line("yes").unwrap();
        p.exp_string("Signed in as term (swk+bio).").unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("profile").unwrap();
        p.exp_string("Jane Doe <term@example.com>, market GB, mobile none")
            .unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("devices").unwrap();
        p.exp_string("(this computer)").unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("fly").unwrap();
        p.exp_string("Unknown command").unwrap();
        p.exp_string("devicetrust> ").unwrap();
        p.send_line("logout").unwrap();
        p.exp_string("Signed out of term.").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);

        // Declining the confirmation: exit status 4, nothing changes.
        let mut p = spawn_command(command(&base, &dir, &["unlock"]), Some(20_000)).unwrap();
        p.exp_string("type yes to confirm: ").unwrap();
        p.send_line("no").unwrap();
        p.exp_string("cancelled").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 4);

        // Devices, signed in by biometric.
        let mut p = spawn_command(command(&base, &dir, &["devices"]), Some(20_000)).unwrap();
        p.exp_string("type yes to confirm: ").unwrap();
        p.send_line("yes").unwrap();
        p.exp_string("Test terminal").unwrap();
        p.exp_string("(this computer)").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);

        // A wrong password: exit status 3.
        let mut p = spawn_command(
            command(&base, &dir, &["login", "--user", "term"]),
            Some(20_000),
        )
        .unwrap();
        p.exp_string("Password: ").unwrap();
        p.send_line("not my password").unwrap();
        p.exp_string("incorrect").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 3);

        // Remove this computer (one-shot): its key goes, status says so.
        let out = command(&base, &dir, &["status"]).output().unwrap();
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        let device_id = status
            .split("device ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a device id in the status")
            .to_owned();
        let mut p = spawn_command(
            command(&base, &dir, &["remove-device", &device_id]),
            Some(20_000),
        )
        .unwrap();
        p.exp_string("type yes to confirm: ").unwrap();
        p.send_line("yes").unwrap();
        p.exp_string(&format!("Removed {device_id}.")).unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 0);
        let out = command(&base, &dir, &["status"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("not enabled"),
            "{out:?}"
        );
        // Now `unlock` has nothing to unlock with: exit status 4.
        let out = command(&base, &dir, &["unlock", "--user", "term"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{out:?}");

        // The server is gone: exit status 5.
        let mut p = spawn_command(
            command("http://127.0.0.1:9", &dir, &["login", "--user", "term"]),
            Some(20_000),
        )
        .unwrap();
        p.exp_string("Password: ").unwrap();
        p.send_line(PASSWORD).unwrap();
        p.exp_string("cannot be reached").unwrap();
        p.exp_eof().unwrap();
        assert_eq!(exit_code(&mut p), 5);
    })
    .await
    .unwrap();
}
