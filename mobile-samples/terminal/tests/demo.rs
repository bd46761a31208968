//! `devicetrust demo` as a user runs it: the whole journey, exit status 0.

use std::process::Command;

#[test]
fn demo_walks_the_whole_journey_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_devicetrust"))
        .arg("demo")
        .output()
        .expect("run devicetrust demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "first sign-in: please confirm Jane Doe <jane@example.com>",
        "signed in (amr [\"pwd\", \"otp\"])",
        "[biometric] \"Turn on biometric sign-in\" — confirmed",
        "signed in (amr [\"swk\", \"bio\"])",
        "(this device)",
        "biometric sign-in available now: false",
        "Demo complete.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn unknown_commands_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_devicetrust"))
        .arg("fly")
        .output()
        .expect("run devicetrust");
    assert_eq!(out.status.code(), Some(2));
}
