//! The one error type of the SDK. Every variant is a situation a card holder
//! can meet, with what the app needs to tell them what to do next.

/// What went wrong, and what the app should offer next.
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceTrustError {
    /// The user ID or password is wrong (the server does not say which).
    /// Next: let the user try again, or offer password reset.
    #[error("the user ID or password is incorrect")]
    InvalidCredentials,

    /// Too many failed attempts. Next: wait `retry_after_s` seconds or call
    /// the number on the card. Biometric sign-in stays available.
    #[error(
        "too many failed attempts: try again in {retry_after_s} s or call the number on your card"
    )]
    AccountLocked { retry_after_s: u64 },

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
    #[error("biometric sign-in is unavailable: {reason}")]
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

    /// Enabling biometric sign-in needs a sign-in with a code or this device
    /// in the last 10 minutes. Next: sign in again.
    #[error("please sign in again to continue")]
    RecentSignInRequired,

    /// The user already has the maximum number of trusted devices. Next:
    /// remove one in the device list.
    #[error("you have the maximum number of trusted devices: remove one first")]
    DeviceLimitReached,

    /// Slow down: retry after `retry_after_s` seconds.
    #[error("too many requests: try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },

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
    #[error("secure key storage failed: {reason}")]
    KeyStore { reason: String },

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

impl From<rusqlite::Error> for DeviceTrustError {
    fn from(e: rusqlite::Error) -> Self {
        DeviceTrustError::LocalStorage {
            reason: e.to_string(),
        }
    }
}

pub type Result<T, E = DeviceTrustError> = std::result::Result<T, E>;
