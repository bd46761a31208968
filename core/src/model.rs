//! The records an app renders: sign-in steps, sessions, devices.
//!
//! Doc comments of exported items are copied into the Kotlin, Swift and
//! Python sources: plain words and `code`, no rustdoc links
//! (scripts/check-binding-docs fails on them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Platform;
use crate::keystore::{KeyStorage, UserVerification};

/// Unix seconds from the server as a point in time (negative: the epoch).
pub(crate) fn at(unix_secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_secs.clamp(0, LATEST_UNIX_SECS) as u64)
}

/// 9999-12-31T23:59:59Z: the latest point in time every binding can hold
/// (Python's `datetime` ends there; Kotlin's `Instant` and Swift's `Date`
/// go further). Points in time come from the server, which is not trusted
/// to keep them in range: one past this would fail in the binding's own
/// conversion, not as an SDK error.
pub(crate) const LATEST_UNIX_SECS: i64 = 253_402_300_799;

/// A point in time as Unix seconds (0 before the epoch).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where a sign-in stands, for the UI to render.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInStep {
    /// First sign-in: show the name and e-mail on file to confirm (not
    /// editable here), ask for a new security code (6–9 digits) and
    /// optionally a mobile number, then call `complete_enrolment`.
    EnrolmentRequired {
        name: String,
        email: String,
        expires_at: SystemTime,
    },
    /// A second factor is needed: offer the OTP channels (`send_otp` then
    /// `verify_otp`) and, when `this_device_can_approve`, a biometric
    /// approval on this phone (`approve_with_this_device`).
    SecondFactorRequired {
        otp_options: Vec<OtpOption>,
        this_device_can_approve: bool,
        expires_at: SystemTime,
        /// Why the server's risk engine asked for a code although this
        /// phone could have approved (e.g. a new network); empty for the
        /// ordinary second factor. Show it: "we ask because …".
        reasons: Vec<StepUpReason>,
    },
    /// Signed in; the SDK holds the session.
    SignedIn { session: SessionInfo },
}

/// A signal that made the server's risk engine ask for a one-time code.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StepUpReason {
    /// A network this account has not signed in from lately.
    NewNetwork,
    /// A device this account has not signed in with lately.
    NewDevice,
    /// An hour far from this account's usual ones.
    UnusualHour,
    /// Many sign-ins in a short time.
    Velocity,
    /// Failed attempts since the last successful sign-in.
    RecentFailures,
    /// The bank's own fraud engine could not be asked.
    ScorerUnavailable,
    /// A reason this version of the SDK does not know, by its wire name.
    Other { name: String },
}

impl StepUpReason {
    pub(crate) fn from_wire(name: &str) -> Self {
        match name {
            "new_network" => StepUpReason::NewNetwork,
            "new_device" => StepUpReason::NewDevice,
            "unusual_hour" => StepUpReason::UnusualHour,
            "velocity" => StepUpReason::Velocity,
            "recent_failures" => StepUpReason::RecentFailures,
            "scorer_unavailable" => StepUpReason::ScorerUnavailable,
            other => StepUpReason::Other {
                name: other.to_owned(),
            },
        }
    }

    pub(crate) fn list(names: &[String]) -> Vec<Self> {
        names.iter().map(|n| Self::from_wire(n)).collect()
    }
}

#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpChannel {
    Email,
    Sms,
}

/// A channel an OTP can be sent to, with the masked destination to show.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpOption {
    pub channel: OtpChannel,
    /// e.g. `j•••@example.com`, `+44•••••••123`.
    pub destination: String,
}

/// A code was sent.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpSent {
    pub destination: String,
    pub expires_at: SystemTime,
    /// Seconds before another code can be asked for.
    pub resend_after_secs: u64,
}

/// How the user proved themselves in a session (the session's `amr`,
/// RFC 8176 names on the wire).
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// The password (`pwd`).
    Password,
    /// A one-time code by e-mail or SMS (`otp`).
    Otp,
    /// A key in the phone's secure hardware (`hwk`).
    HardwareKey,
    /// A key the server could not prove is in secure hardware (`swk`).
    SoftwareKey,
    /// The user confirmed with a biometric or the phone's passcode (`bio`).
    Biometric,
    /// A method this version of the SDK does not know, by its wire name.
    Other { name: String },
}

impl AuthMethod {
    pub(crate) fn from_wire(name: &str) -> Self {
        match name {
            "pwd" => AuthMethod::Password,
            "otp" => AuthMethod::Otp,
            "hwk" => AuthMethod::HardwareKey,
            "swk" => AuthMethod::SoftwareKey,
            "bio" => AuthMethod::Biometric,
            other => AuthMethod::Other {
                name: other.to_owned(),
            },
        }
    }

    pub(crate) fn list(names: &[String]) -> Vec<Self> {
        names.iter().map(|n| Self::from_wire(n)).collect()
    }
}

/// The signed-in session, without its tokens.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_id: String,
    /// How the user proved themselves, in the server's order.
    pub auth_methods: Vec<AuthMethod>,
    /// When the user last proved themselves (the sign-in, not a refresh).
    pub auth_time: SystemTime,
}

/// A trusted device, as listed by the server.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    pub device_id: String,
    pub name: String,
    pub platform: Platform,
    /// Where its key lives; empty when the server names a kind this version
    /// of the SDK does not know.
    pub key_storage: Option<KeyStorage>,
    /// Who must be present for its key to sign; empty when unknown to this
    /// version of the SDK.
    pub user_verification: Option<UserVerification>,
    pub created_at: SystemTime,
    pub last_used_at: Option<SystemTime>,
    pub trusted_until: SystemTime,
    /// What the server verified of the key's attestation at registration;
    /// `None` when the device registered without one (or the server does
    /// not check attestations).
    pub attestation: Option<VerifiedAttestation>,
    /// This phone.
    pub is_this_device: bool,
}

/// The kind of a key attestation.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttestationFormat {
    /// Android Key Attestation (`android-key`).
    AndroidKey,
    /// Apple App Attest (`apple-appattest`).
    AppleAppAttest,
    /// A format this version of the SDK does not know, by its wire name.
    Other { name: String },
}

impl AttestationFormat {
    pub(crate) fn from_wire(name: &str) -> Self {
        match name {
            "android-key" => AttestationFormat::AndroidKey,
            "apple-appattest" => AttestationFormat::AppleAppAttest,
            other => AttestationFormat::Other {
                name: other.to_owned(),
            },
        }
    }
}

/// A key attestation the server verified (the device's `attestation`).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    pub format: AttestationFormat,
    /// The attested level (`Strongbox`, `Tee` or `SecureEnclave`); empty
    /// when the attestation names none this version of the SDK knows.
    pub security_level: Option<KeyStorage>,
    pub verified_at: SystemTime,
}

/// The signed-in user's profile.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    /// The market the account belongs to (ISO 3166-1 alpha-2, e.g. `GB`).
    pub primary_market: String,
    /// Whether the one-time enrolment (security code) is done.
    pub enrolled: bool,
}

/// The server's password rules, for the screen where the user picks a
/// password. Check as they type with `check_password`; the server has the
/// last word.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Characters (Unicode code points after NFKC normalisation).
    pub min_length: u32,
    pub max_length: u32,
    /// How many of the four classes — lower case, upper case, digit, other —
    /// the password must mix.
    pub classes_required: u32,
    /// The rules in the server's words, to show as they are.
    pub description: String,
}

/// A password rule; a rejected password comes back with every rule it
/// breaks (the error `PasswordRejected`).
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PasswordRule {
    /// Shorter than `min_length`.
    TooShort,
    /// Longer than `max_length`.
    TooLong,
    /// Mixes fewer than `classes_required` of the four classes.
    TooFewClasses,
    /// In the server's list of common and breached passwords (only the
    /// server can tell).
    Common,
    /// Contains the user ID (compared ignoring case).
    ContainsUserId,
    /// The same as the current password (password change, recovery; only the
    /// server can tell).
    SameAsCurrent,
    /// A rule this version of the SDK does not know; `code` is its name on
    /// the wire. Show a generic "choose another password".
    Other { code: String },
}

impl PasswordRule {
    /// The rule from its wire name (`too_short`, …).
    pub fn from_code(code: &str) -> Self {
        match code {
            "too_short" => PasswordRule::TooShort,
            "too_long" => PasswordRule::TooLong,
            "too_few_classes" => PasswordRule::TooFewClasses,
            "common" => PasswordRule::Common,
            "contains_user_id" => PasswordRule::ContainsUserId,
            "same_as_current" => PasswordRule::SameAsCurrent,
            other => PasswordRule::Other {
                code: other.to_owned(),
            },
        }
    }

    /// Its wire name.
    pub fn code(&self) -> &str {
        match self {
            PasswordRule::TooShort => "too_short",
            PasswordRule::TooLong => "too_long",
            PasswordRule::TooFewClasses => "too_few_classes",
            PasswordRule::Common => "common",
            PasswordRule::ContainsUserId => "contains_user_id",
            PasswordRule::SameAsCurrent => "same_as_current",
            PasswordRule::Other { code } => code,
        }
    }

    /// A short English description (apps localise from the variant).
    pub fn describe(&self) -> &str {
        match self {
            PasswordRule::TooShort => "too short",
            PasswordRule::TooLong => "too long",
            PasswordRule::TooFewClasses => "mix more of lower case, upper case, digits and symbols",
            PasswordRule::Common => "too common: it appears in lists of breached passwords",
            PasswordRule::ContainsUserId => "must not contain your user ID",
            PasswordRule::SameAsCurrent => "must differ from your current password",
            PasswordRule::Other { code } => code,
        }
    }
}

/// A password recovery has started: send a code to one of `otp_options`
/// with `send_otp`, then finish with `complete_password_recovery`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecovery {
    pub otp_options: Vec<OtpOption>,
    pub expires_at: SystemTime,
}

/// An e-mail or mobile change waiting for the code sent to the new address;
/// finish with `confirm_contact_change`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingContactChange {
    /// `Email` for an e-mail change, `Sms` for a mobile change.
    pub channel: OtpChannel,
    /// The new address, masked, where the code went.
    pub destination: String,
    pub expires_at: SystemTime,
}

/// A card linked to the signed-in user.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCard {
    /// The server's reference for the card (never the number).
    pub card_ref: String,
    /// The last four digits, for display.
    pub last4: String,
    pub linked_at: SystemTime,
}

/// What happened on the account, for the "recent activity" screen.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecurityEventType {
    SignIn,
    /// A wrong password, one-time code or security code.
    SignInFailed,
    AccountLocked,
    /// The risk policy asked for a one-time code.
    StepUp,
    DeviceAdded,
    DeviceRemoved,
    PasswordChanged,
    /// E-mail or mobile changed or removed.
    ContactChanged,
    SecurityCodeChanged,
    /// The password was reset with the security code.
    RecoveryUsed,
    /// A stolen refresh token was presented; its sessions were revoked.
    RefreshReuse,
    /// The one-time enrolment (security code) was completed.
    Enrolled,
    /// A type this version of the SDK does not know, by its wire name.
    Other {
        name: String,
    },
}

impl SecurityEventType {
    pub(crate) fn from_wire(name: &str) -> Self {
        use SecurityEventType as T;
        match name {
            "sign_in" => T::SignIn,
            "sign_in_failed" => T::SignInFailed,
            "account_locked" => T::AccountLocked,
            "step_up" => T::StepUp,
            "device_added" => T::DeviceAdded,
            "device_removed" => T::DeviceRemoved,
            "password_changed" => T::PasswordChanged,
            "contact_changed" => T::ContactChanged,
            "security_code_changed" => T::SecurityCodeChanged,
            "recovery_used" => T::RecoveryUsed,
            "refresh_reuse" => T::RefreshReuse,
            "enrolled" => T::Enrolled,
            other => T::Other {
                name: other.to_owned(),
            },
        }
    }
}

/// One entry of the account's security events, newest first.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub event_type: SecurityEventType,
    pub at: SystemTime,
    /// The client address, where the server recorded one.
    pub ip: Option<String>,
    /// The trusted device involved, if any.
    pub device_id: Option<String>,
    pub device_name: Option<String>,
}
