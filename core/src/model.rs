//! The records an app renders: sign-in steps, sessions, devices.

use serde::{Deserialize, Serialize};

/// Where a sign-in stands, for the UI to render.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInStep {
    /// First sign-in: show the pre-filled profile to confirm, ask for a new
    /// security code (6–9 digits) and optionally a mobile number, then call
    /// [`complete_enrolment`](crate::DeviceTrust::complete_enrolment).
    EnrolmentRequired { profile: Profile, expires_at: i64 },
    /// A second factor is needed: offer the OTP channels
    /// ([`send_otp`](crate::DeviceTrust::send_otp) then
    /// [`verify_otp`](crate::DeviceTrust::verify_otp)) and, when
    /// `this_device_can_approve`, a biometric approval on this phone
    /// ([`approve_with_this_device`](crate::DeviceTrust::approve_with_this_device)).
    SecondFactorRequired {
        otp_options: Vec<OtpOption>,
        this_device_can_approve: bool,
        expires_at: i64,
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

/// Name and e-mail on file, to confirm at enrolment (not editable here).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub email: String,
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
    pub expires_at: i64,
    /// Seconds before another code can be asked for.
    pub resend_after_s: u64,
}

/// The signed-in session, without its tokens.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_id: String,
    /// How the user proved themselves (RFC 8176): `pwd`, `otp`, `hwk`, `bio`.
    pub amr: Vec<String>,
    pub auth_time: i64,
}

/// A trusted device, as listed by the server.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    pub device_id: String,
    pub name: String,
    pub platform: String,
    pub key_storage: String,
    pub user_verification: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub trusted_until: i64,
    /// What the server verified of the key's attestation at registration;
    /// `None` when the device registered without one (or the server does
    /// not check attestations).
    pub attestation: Option<VerifiedAttestation>,
    /// This phone.
    pub is_this_device: bool,
}

/// A key attestation the server verified (`Device.attestation`).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    /// `android-key` or `apple-appattest`.
    pub format: String,
    /// The attested level: `strongbox`, `tee` or `secure_enclave`.
    pub security_level: Option<String>,
    /// Unix seconds.
    pub verified_at: i64,
}

/// The signed-in user's profile.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub enrolled: bool,
}

/// The server's password rules (`GET /v1/password-policy`), for the screen
/// where the user picks a password. Check as they type with
/// [`check_password`](crate::check_password); the server has the last word.
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
/// breaks ([`DeviceTrustError::PasswordRejected`](crate::DeviceTrustError::PasswordRejected)).
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
/// with [`send_otp`](crate::DeviceTrust::send_otp), then finish with
/// [`complete_password_recovery`](crate::Recovery::complete_password_recovery).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecovery {
    pub otp_options: Vec<OtpOption>,
    pub expires_at: i64,
}

/// An e-mail or mobile change waiting for the code sent to the new address;
/// finish with [`confirm_contact_change`](crate::Account::confirm_contact_change).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingContactChange {
    /// `Email` for an e-mail change, `Sms` for a mobile change.
    pub channel: OtpChannel,
    /// The new address, masked, where the code went.
    pub destination: String,
    pub expires_at: i64,
}

/// A card linked to the signed-in user.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCard {
    /// The server's reference for the card (never the number).
    pub card_ref: String,
    /// The last four digits, for display.
    pub last4: String,
    pub linked_at: i64,
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
    /// Unix seconds.
    pub at: i64,
    /// The client address, where the server recorded one.
    pub ip: Option<String>,
    /// The trusted device involved, if any.
    pub device_id: Option<String>,
    pub device_name: Option<String>,
}
