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
    },
    /// Signed in; the SDK holds the session.
    SignedIn { session: SessionInfo },
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
    /// This phone.
    pub is_this_device: bool,
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
