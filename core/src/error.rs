//! The one error type of the SDK. Every variant is a situation a card holder
//! can meet, with what the app needs to tell them what to do next; and the
//! mapping from the server's error codes to it.

use crate::model::PasswordRule;
use crate::wire::ServerError;

/// What went wrong, and what the app should offer next. Every error has a
/// message in English for logs and as a fallback (Kotlin `message`, Swift
/// `localizedDescription`, Python `str(e)`); apps show their own words per
/// variant, with its fields.
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
// Display crosses too: Kotlin `toString()`, Swift `description`; see
// docs/BINDINGS.md ("Errors") for how `message` and `str(e)` get it.
#[cfg_attr(feature = "uniffi", uniffi::export(Display))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceTrustError {
    /// The user ID or password is wrong (the server does not say which).
    /// Next: let the user try again, or offer password reset.
    #[error("the user ID or password is incorrect")]
    InvalidCredentials,

    /// Too many failed attempts. Next: wait `retry_after_secs` seconds or call
    /// the number on the card. Biometric sign-in stays available.
    #[error(
        "too many failed attempts: try again in {retry_after_secs} s or call the number on your card"
    )]
    AccountLocked { retry_after_secs: u64 },

    /// The server does not know this phone's device (removed elsewhere, or
    /// unknown). The SDK has already forgotten its key. Next: password sign-in.
    #[error("we don't recognise this device: sign in with your password")]
    DeviceNotRecognized,

    /// This phone's trust period ended. The key is kept. Next: password +
    /// one-time code on this phone, which renews the trust.
    #[error("this device needs to be re-authorised: sign in with your password and a code")]
    ReauthorisationRequired,

    /// The one-time code is wrong. `attempts_left` more tries with this code.
    #[error("the code is incorrect ({attempts_left} tries left)")]
    OtpInvalid { attempts_left: u32 },

    /// The code expired or has no tries left. Next: send a new code.
    #[error("the code has expired: ask for a new one")]
    OtpExpired,

    /// The sign-in in progress expired or was already finished. Next: start
    /// again with the password.
    #[error("this sign-in has expired: start again")]
    SignInExpired,

    /// A method was called that needs a sign-in in progress (enrolment, OTP)
    /// and there is none.
    #[error("no sign-in is in progress: start with the password")]
    NoSignInInProgress,

    /// `complete_password_recovery` (or `send_otp` for it) was called and
    /// no password recovery is in progress (never started, finished, or
    /// replaced by a sign-in). Next: start the recovery again.
    #[error("no password recovery is in progress: start again")]
    NoRecoveryInProgress,

    /// The user cancelled the biometric prompt. Nothing changed.
    #[error("biometric confirmation was cancelled")]
    BiometricCancelled,

    /// The phone's enrolled biometrics changed, which permanently invalidated
    /// the key. The SDK has forgotten it here and removes the device on the
    /// server (now if signed in, else at the next sign-in). Next: password +
    /// code, then enable biometric sign-in again.
    #[error("your fingerprints or face changed: sign in with your password to re-enable biometric sign-in")]
    BiometricsChanged,

    /// No biometric is enrolled or the hardware is unavailable. `reason` is
    /// the platform's words.
    #[error("biometric sign-in is unavailable: {}", said(reason))]
    BiometricUnavailable { reason: String },

    /// Too many failed biometric tries; the platform locked the biometric.
    /// Next: unlock the phone with its passcode, or sign in with the password.
    #[error("biometrics are locked after too many attempts")]
    BiometricLockedOut,

    /// Biometric sign-in is not set up on this phone for this user.
    #[error("biometric sign-in is not enabled on this device")]
    NotEnrolledOnThisDevice,

    /// An action needs a signed-in session, and there is none (or it ended).
    #[error("you are signed out: sign in again")]
    NotSignedIn,

    /// The call needs a *strong* session: a sign-in with a one-time code or
    /// with this device (biometric) in the last 10 minutes. Enabling
    /// biometric sign-in, every account change (password, e-mail, mobile,
    /// security code) and linking a card need one. The session itself is
    /// still valid. Next: ask the user to confirm it is them — biometric
    /// sign-in, or password + code — then repeat the call.
    #[error("please confirm it's you to continue")]
    RecentSignInRequired,

    /// The user already has the maximum number of trusted devices. Next:
    /// remove one in the device list.
    #[error("you have the maximum number of trusted devices: remove one first")]
    DeviceLimitReached,

    /// The server could not verify this phone's key attestation (the
    /// platform's proof that the key lives in secure hardware), or requires
    /// one and the key store gave none (`--attestation require`). Nothing
    /// was registered and the new key is deleted. On a genuine, unmodified
    /// phone this means the platform cannot attest (no hardware
    /// attestation, App Attest unavailable) or the app and server disagree
    /// (package, signing certificate, app id). Next: biometric sign-in is
    /// not available on this phone; keep using the password and code.
    #[error("this phone could not prove its key is kept in secure hardware: biometric sign-in is not available on it")]
    AttestationInvalid,

    /// The new password breaks the server's policy. `reasons` lists every
    /// rule it breaks (`Common` and `SameAsCurrent` only the server can
    /// know). Next: show the rules (see `password_policy`) and ask for
    /// another password; nothing was changed.
    #[error("choose another password: {}", rules_text(.reasons))]
    PasswordRejected { reasons: Vec<PasswordRule> },

    /// The card number, card ID and name do not match one card (the server
    /// does not say which). Wrong tries count per card number like wrong
    /// passwords: 5 lock it (`AccountLocked`). Next: check the details
    /// against the card, the name as printed.
    #[error("we can't find a card with these details: check the card number, card ID and name")]
    CardNotRecognized,

    /// The card exists but is not activated yet. Next: activate the card
    /// (as its letter says), then try again.
    #[error("this card is not activated yet: activate it first")]
    CardNotActivated,

    /// The card already belongs to a user ID. Next: sign in with it, or
    /// "forgot user ID".
    #[error("this card is already registered for online access: sign in or recover your user ID")]
    CardAlreadyEnrolled,

    /// The chosen user ID is taken. Next: choose another.
    #[error("this user ID is taken: choose another")]
    UserIdTaken,

    /// The e-mail or SMS could not be handed to its carrier; nothing was
    /// counted as sent (no resend wait). Next: try again, or the other
    /// channel, or approve from a trusted device or call the number on the card.
    #[error("we couldn't send your code: try again or use another way")]
    DeliveryFailed,

    /// Slow down: retry after `retry_after_secs` seconds.
    #[error("too many requests: try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },

    /// Input the app passed (or the server refused as malformed); `reason`
    /// says which field and why.
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },

    /// The server could not be reached or did not answer. `retryable`: a
    /// later try may succeed (timeouts, connection refused, 502–504); not
    /// retryable: TLS or pinning failures, which retrying cannot fix.
    #[error("network problem: {reason}")]
    Network { retryable: bool, reason: String },

    /// The server answered with an error the SDK does not expect.
    #[error("server error {status} ({code}): {reason}")]
    Server {
        status: u16,
        code: String,
        reason: String,
    },

    /// The platform key store failed in a way not listed above.
    #[error("secure key storage failed: {}", said(reason))]
    KeyStore { reason: String },

    /// The platform key store did not answer within the configured time
    /// (`key_store_prompt_timeout_ms` for a prompt, `key_store_timeout_ms`
    /// otherwise). The SDK dropped the call, which dismisses a prompt still
    /// shown; nothing changed. Next: offer to try again.
    #[error("the phone's secure key storage did not answer within {after_ms} ms")]
    KeyStoreTimeout { after_ms: u64 },

    /// A bug in the SDK (or a Rust key store that panicked), not the user's
    /// doing; `reason` is for the logs. Nothing was changed by the failed step.
    #[error("internal error in the sign-in SDK: {reason}")]
    Internal { reason: String },

    /// The SDK's local state could not be read or written.
    #[error("local storage failed: {reason}")]
    LocalStorage { reason: String },
}

impl DeviceTrustError {
    pub(crate) fn network(retryable: bool, message: impl Into<String>) -> Self {
        DeviceTrustError::Network {
            retryable,
            reason: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        DeviceTrustError::InvalidInput {
            reason: message.into(),
        }
    }
}

/// The rules in words, for the error's message.
fn rules_text(reasons: &[PasswordRule]) -> String {
    if reasons.is_empty() {
        return "it does not meet the rules".into();
    }
    reasons
        .iter()
        .map(PasswordRule::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The SDK's view of a server error code. Codes this version does not know
/// become [`DeviceTrustError::Server`] with the code and status kept.
pub(crate) fn from_server(e: ServerError) -> DeviceTrustError {
    use DeviceTrustError as E;
    match e.code.as_str() {
        "invalid_credentials" => E::InvalidCredentials,
        "account_locked" => E::AccountLocked {
            retry_after_secs: e.retry_after_s.unwrap_or(30 * 60),
        },
        // A challenge that expired while the prompt was up is a sign-in to restart.
        "login_expired" | "challenge_invalid" => E::SignInExpired,
        "otp_invalid" => E::OtpInvalid {
            attempts_left: e.attempts_left.unwrap_or(0),
        },
        "otp_expired" => E::OtpExpired,
        "device_not_recognized" => E::DeviceNotRecognized,
        "reauthorisation_required" => E::ReauthorisationRequired,
        "unauthorized" => E::NotSignedIn,
        "forbidden" => E::RecentSignInRequired,
        "device_limit" => E::DeviceLimitReached,
        "attestation_invalid" => E::AttestationInvalid,
        "rate_limited" => E::RateLimited {
            retry_after_secs: e.retry_after_s.unwrap_or(1),
        },
        "password_rejected" => E::PasswordRejected {
            reasons: e
                .reasons
                .iter()
                .map(|r| PasswordRule::from_code(r))
                .collect(),
        },
        "card_not_recognized" => E::CardNotRecognized,
        "card_not_activated" => E::CardNotActivated,
        "card_already_enrolled" => E::CardAlreadyEnrolled,
        "user_exists" => E::UserIdTaken,
        "delivery_failed" => E::DeliveryFailed,
        "invalid_request" | "payload_too_large" => E::InvalidInput { reason: e.message },
        _ => E::Server {
            status: e.status,
            code: e.code,
            reason: e.message,
        },
    }
}

pub type Result<T, E = DeviceTrustError> = std::result::Result<T, E>;

/// A reason as shown in a message: a platform may give none (an exception
/// without a message), and a message must never be empty or end on ":".
pub(crate) fn said(reason: &str) -> &str {
    if reason.trim().is_empty() {
        "no reason given"
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> DeviceTrustError {
        from_server(ServerError::from_body(status, body.as_bytes()))
    }

    #[test]
    fn server_codes_map_to_errors_the_ui_can_act_on() {
        let e = |code: &str| ServerError {
            status: 401,
            code: code.into(),
            message: "m".into(),
            retry_after_s: Some(120),
            attempts_left: Some(3),
            ..Default::default()
        };
        assert_eq!(
            from_server(e("account_locked")),
            DeviceTrustError::AccountLocked {
                retry_after_secs: 120
            }
        );
        assert_eq!(
            from_server(e("otp_invalid")),
            DeviceTrustError::OtpInvalid { attempts_left: 3 }
        );
        assert_eq!(
            from_server(e("login_expired")),
            DeviceTrustError::SignInExpired
        );
        assert_eq!(
            from_server(e("forbidden")),
            DeviceTrustError::RecentSignInRequired
        );
        assert_eq!(
            from_server(e("attestation_invalid")),
            DeviceTrustError::AttestationInvalid
        );
        assert!(matches!(
            from_server(e("signature_invalid")),
            DeviceTrustError::Server { .. }
        ));
    }

    #[test]
    fn password_rejected_carries_every_reason() {
        let err = answer(
            400,
            r#"{"error": {"code": "password_rejected", "message": "no",
                "reasons": ["too_short", "too_few_classes", "common", "contains_user_id",
                            "same_as_current", "too_long", "rhymes_with_orange"]}}"#,
        );
        assert_eq!(
            err,
            DeviceTrustError::PasswordRejected {
                reasons: vec![
                    PasswordRule::TooShort,
                    PasswordRule::TooFewClasses,
                    PasswordRule::Common,
                    PasswordRule::ContainsUserId,
                    PasswordRule::SameAsCurrent,
                    PasswordRule::TooLong,
                    // A rule added later is kept, by name, not dropped.
                    PasswordRule::Other {
                        code: "rhymes_with_orange".into()
                    },
                ]
            }
        );
        assert!(err.to_string().contains("too short"), "{err}");
        // Without reasons (an older or terse server) it still maps.
        assert_eq!(
            answer(
                400,
                r#"{"error": {"code": "password_rejected", "message": "no"}}"#
            ),
            DeviceTrustError::PasswordRejected { reasons: vec![] }
        );
    }

    #[test]
    fn card_and_account_errors_map_to_their_variants() {
        let code = |c: &str, status| {
            answer(
                status,
                &format!(r#"{{"error": {{"code": "{c}", "message": "m"}}}}"#),
            )
        };
        assert_eq!(
            code("card_not_recognized", 401),
            DeviceTrustError::CardNotRecognized
        );
        assert_eq!(
            code("card_not_activated", 403),
            DeviceTrustError::CardNotActivated
        );
        assert_eq!(
            code("card_already_enrolled", 409),
            DeviceTrustError::CardAlreadyEnrolled
        );
        assert_eq!(code("user_exists", 409), DeviceTrustError::UserIdTaken);
        assert_eq!(
            code("delivery_failed", 502),
            DeviceTrustError::DeliveryFailed
        );
        // card_not_activated is a 403 but not a weak session.
        assert_ne!(
            code("card_not_activated", 403),
            DeviceTrustError::RecentSignInRequired
        );
        assert_eq!(
            answer(
                423,
                r#"{"error": {"code": "account_locked", "message": "m", "retry_after_s": 1800}}"#
            ),
            DeviceTrustError::AccountLocked {
                retry_after_secs: 1800
            }
        );
    }

    #[test]
    fn unknown_or_garbled_answers_become_a_generic_server_error() {
        assert_eq!(
            answer(
                418,
                r#"{"error": {"code": "teapot_overheated", "message": "hot"}}"#
            ),
            DeviceTrustError::Server {
                status: 418,
                code: "teapot_overheated".into(),
                reason: "hot".into()
            }
        );
        assert!(matches!(
            answer(500, "<html>oops</html>"),
            DeviceTrustError::Server { status: 500, .. }
        ));
        // Wrongly typed extra fields do not panic either.
        assert_eq!(
            answer(
                400,
                r#"{"error": {"code": "password_rejected", "message": "m", "reasons": "too_short"}}"#
            ),
            DeviceTrustError::PasswordRejected { reasons: vec![] }
        );
    }
}
