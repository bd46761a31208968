//! # devicetrust-core
//!
//! The SDK a banking app embeds to sign card holders in with a password and
//! a one-time code the first time, and with a fingerprint or face after that.
//!
//! - [`DeviceTrust`] runs the journey against the devicetrust server: password
//!   sign-in as a series of [`SignInStep`]s (enrolment, second factor, signed
//!   in), enabling biometric sign-in, biometric sign-in, sessions that
//!   refresh themselves, trusted devices, the password policy and creating
//!   an account from a card. Account management is on
//!   [`DeviceTrust::account`] ([`Account`]), the "forgot user ID / password"
//!   flows on [`DeviceTrust::recovery`] ([`Recovery`]).
//! - [`PlatformKeyStore`] is where the private key lives: implemented by the
//!   app in Kotlin (Android Keystore) or Swift (Secure Enclave); the key never
//!   enters Rust. [`SoftwareKeyStore`] serves desktop apps and tests.
//! - [`DeviceTrustError`] is the one error type; each variant says what the
//!   app should offer next.
//!
//! Several accounts can be signed in on one phone, one session each, one of
//! them active ([`DeviceTrust::accounts`], [`DeviceTrust::switch_account`]).
//! Sessions live in memory only unless the app gives a [`SessionSealer`]
//! ([`DeviceTrust::set_session_sealer`]): then the refresh token is sealed
//! by the platform's key and a restart keeps the user signed in. The local
//! state folder holds no secret in clear.
//!
//! The whole first sign-in, then biometric sign-ins:
//!
//! ```no_run
//! use std::sync::Arc;
//! use devicetrust_core::*;
//!
//! # async fn run(key_store: Arc<dyn PlatformKeyStore>) -> Result<(), DeviceTrustError> {
//! let config = Config::new("https://auth.example.com", "https://auth.example.com", "/data/app/devicetrust");
//! let sdk = DeviceTrust::new(config, key_store)?;
//!
//! let mut step = sdk.sign_in_with_password("jane.doe", "correct horse").await?;
//! if let SignInStep::EnrolmentRequired { name, email, .. } = &step {
//!     println!("Is this you? {name} <{email}>");
//!     step = sdk.complete_enrolment("135790", Some("+447700900123".into())).await?;
//! }
//! if let SignInStep::SecondFactorRequired { otp_options, .. } = &step {
//!     let sent = sdk.send_otp(otp_options[0].channel).await?;
//!     println!("We sent a code to {}", sent.destination);
//!     step = sdk.verify_otp("123456").await?;
//! }
//! assert!(matches!(step, SignInStep::SignedIn { .. }));
//!
//! let prompt = PromptText::new("Turn on fingerprint sign-in");
//! sdk.enable_biometric_sign_in("Jane's Pixel", UserVerification::Biometric, prompt).await?;
//!
//! // Next launch: no password, no code.
//! match sdk.sign_in_with_biometric("jane.doe", PromptText::new("Sign in")).await {
//!     Ok(SignInStep::SignedIn { session }) => println!("welcome back {}", session.user_id),
//!     Ok(SignInStep::SecondFactorRequired { .. }) => { /* risk step-up: send and verify an OTP */ }
//!     Err(DeviceTrustError::BiometricsChanged) => { /* password + OTP, then enable again */ }
//!     Err(DeviceTrustError::ReauthorisationRequired) => { /* password + OTP renews the trust */ }
//!     Err(e) => eprintln!("{e}"),
//!     _ => {}
//! }
//!
//! // Account changes want a recent strong sign-in (code or biometric).
//! match sdk.account().change_password("correct horse", "Another strong Passw0rd").await {
//!     Ok(()) => println!("password changed"),
//!     Err(DeviceTrustError::RecentSignInRequired) => { /* confirm with the biometric, then repeat */ }
//!     Err(DeviceTrustError::PasswordRejected { reasons }) => println!("{reasons:?}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! The password rules the phone can check as the user types:
//!
//! ```
//! use devicetrust_core::{check_password, PasswordPolicy, PasswordRule};
//! let policy = PasswordPolicy { min_length: 8, max_length: 128, classes_required: 3, description: String::new() };
//! assert_eq!(check_password(&policy, "my jane.doe", "Jane.Doe"),
//!            vec![PasswordRule::TooFewClasses, PasswordRule::ContainsUserId]);
//! assert!(check_password(&policy, "Another strong Passw0rd", "jane.doe").is_empty());
//! ```
//!
//! With the feature `uniffi`, everything an app uses is exported to Kotlin,
//! Swift and Python where it is defined (`DeviceTrust`, `Account` and
//! `Recovery` as objects, records, enums, errors, the key-store traits), in
//! one uniffi namespace, `devicetrust`: Kotlin package `com.devicetrust.sdk`,
//! Swift module `DeviceTrust`, Python module `devicetrust` (core/uniffi.toml).
//! The `devicetrust-ffi` crate only links it into the mobile library.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("devicetrust");

mod client;
mod config;
mod error;
mod http;
mod input;
mod keystore;
mod model;
mod password;
mod signature;
#[cfg(feature = "software-keystore")]
mod software_keystore;
#[cfg(feature = "software-keystore")]
mod software_sealer;
mod state;
#[cfg(test)]
mod test_server;
mod wire;

pub use client::{Account, DeviceTrust, KnownAccount, Recovery, MAX_ACCOUNTS};
pub use config::{
    Config, Platform, DEFAULT_KEY_STORE_PROMPT_TIMEOUT_MS, DEFAULT_KEY_STORE_TIMEOUT_MS,
};
pub use error::DeviceTrustError;
pub use keystore::{
    app_attest_client_data_hash, GeneratedKey, KeyAttestation, KeyStorage, PlatformKeyError,
    PlatformKeyStore, PromptText, SessionObserver, SessionSealer, UserVerification,
};
pub use model::{
    AttestationFormat, AuthMethod, LinkedCard, OtpChannel, OtpOption, OtpSent, PasswordPolicy,
    PasswordRecovery, PasswordRule, PendingContactChange, Profile, SecurityEvent,
    SecurityEventType, SessionInfo, SignInStep, StepUpReason, TrustedDevice, VerifiedAttestation,
};
pub use password::check_password;
pub use signature::der_to_jws_signature;
#[cfg(feature = "software-keystore")]
pub use software_keystore::{SoftwareKeyStore, UserPresence};
#[cfg(feature = "software-keystore")]
pub use software_sealer::SoftwareSessionSealer;
pub use state::LocalEnrolment;

/// 128 random bits, base64url: key aliases.
pub(crate) fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // Failure of the OS generator leaves an alias collision possible, never a
    // weak key: keys are generated by the key store.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    signature::b64(b)
}
