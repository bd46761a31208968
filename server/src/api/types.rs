//! Wire types of the contract: request and response bodies, with the
//! OpenAPI schemas derived from the same definitions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::secrets::Secret;

// ---------- password sign-in ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginRequest {
    /// 1–64 of `A-Z a-z 0-9 . _ @ + -`, any case.
    #[schema(example = "jane.doe", pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    pub user_id: String,
    /// As typed. The server takes up to 1024 bytes, but no password is
    /// longer than 256 characters, so a longer one can only be refused.
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 256)]
    pub password: Secret,
    /// The trusted device this sign-in happens on, if the app has one.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub device_id: Option<String>,
}

/// What the user confirms at enrolment (pre-filled, read-only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OtpChannel {
    Email,
    Sms,
}

impl OtpChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpChannel::Email => "email",
            OtpChannel::Sms => "sms",
        }
    }
}

/// A way to finish a sign-in.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Method {
    /// A one-time password sent to a masked destination.
    Otp {
        channel: OtpChannel,
        destination: String,
    },
    /// Sign the challenge with this trusted device's key (`/v1/login/device`).
    Device {
        challenge_id: String,
        challenge: String,
        expires_at: i64,
    },
}

/// Where a sign-in stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginResponse {
    EnrolmentRequired {
        login_id: String,
        expires_at: i64,
        profile: Profile,
    },
    SecondFactorRequired {
        login_id: String,
        expires_at: i64,
        methods: Vec<Method>,
        /// Present when the risk policy withheld the `device` method: the
        /// signals that made it ask for a code (e.g. `new_network`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<String>,
    },
    Authenticated {
        session: Session,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub login_id: String,
    /// 6–9 digits, not one digit repeated, not a straight run.
    #[schema(value_type = String, format = Password, example = "135790", pattern = "^(?!([0-9])\\1+$)(?!(?:012345|123456|234567|345678|456789|0123456|1234567|2345678|3456789|01234567|12345678|23456789|012345678|123456789|987654|876543|765432|654321|543210|9876543|8765432|7654321|6543210|98765432|87654321|76543210|987654321|876543210)$)[0-9]{6,9}$")]
    pub security_code: Secret,
    /// E.164, e.g. +447700900123.
    #[schema(example = "+447700900123", pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub mobile: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpSendRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub login_id: String,
    pub channel: OtpChannel,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSendResponse {
    pub destination: String,
    pub expires_at: i64,
    pub resend_after_s: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpVerifyRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub login_id: String,
    #[schema(value_type = String, example = "123456", pattern = "^[0-9]{6}$")]
    pub code: Secret,
}

/// The answer of a finished sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticatedResponse {
    /// Always `authenticated`.
    #[schema(example = "authenticated")]
    pub status: &'static str,
    pub session: Session,
}

impl AuthenticatedResponse {
    pub fn new(session: Session) -> Self {
        AuthenticatedResponse {
            status: "authenticated",
            session,
        }
    }
}

// ---------- device sign-in ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceChallengeRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub device_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeResponse {
    /// Opaque to clients. For a device sign-in it is an authenticated,
    /// expiring token (docs/PROTOCOL.md, "Sign-in with the device").
    pub challenge_id: String,
    /// 32 unpredictable bytes, base64url: the proof's `nonce` (random, or
    /// for a device sign-in an HMAC of `challenge_id` under a server key).
    pub challenge: String,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLoginRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub challenge_id: String,
    /// Compact JWS, ES256, `typ` `devicetrust-login+jwt`, `kid` the device id.
    pub proof: String,
}

// ---------- sessions ----------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub user_id: String,
    /// RFC 8176 method references: `pwd`, `otp`, `hwk`, `bio`.
    pub amr: Vec<String>,
    pub auth_time: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// `dtr_` + base64url. Other shapes up to 256 bytes answer 401.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,256}$")]
    pub refresh_token: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub enrolled: bool,
}

impl From<crate::storage::User> for MeResponse {
    fn from(u: crate::storage::User) -> Self {
        MeResponse {
            user_id: u.user_id,
            name: u.name,
            email: u.email,
            mobile: u.mobile,
            primary_market: u.primary_market,
            enrolled: u.enrolled_at.is_some(),
        }
    }
}

// ---------- devices ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationResponse {
    pub registration_id: String,
    /// 32 random bytes, base64url: the proof's `nonce`.
    pub challenge: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStorage {
    SecureEnclave,
    Strongbox,
    Tee,
    Software,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    Biometric,
    BiometricOrDeviceCredential,
    /// The phone's passcode / PIN only (a phone with no biometric).
    DeviceCredential,
    None,
}

/// Serde's own name for a unit variant, so storage and wire agree.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub registration_id: String,
    /// Compact JWS, ES256, `typ` `devicetrust-register+jwt`, `jwk` the new key.
    pub proof: String,
    /// The phone's name as the user will see it in the list: 1–64
    /// characters once trimmed, no control or invisible formatting characters
    /// (bidi overrides, zero-width, soft hyphen, BOM).
    #[schema(
        example = "Jane's iPhone",
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff](?:[^\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]{0,62}[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff])?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub name: String,
    pub platform: Platform,
    pub key_storage: KeyStorage,
    pub user_verification: UserVerification,
    /// Proof from the platform that the key is in the hardware
    /// `key_storage` names (the contract's "Key attestation"). Checked under
    /// `--attestation verify` and `require`; needed under `require`.
    #[serde(default)]
    pub attestation: Option<crate::attestation::AttestationRequest>,
}

/// What the server verified of a device's key at registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceAttestation {
    /// `android-key` or `apple-appattest`.
    #[schema(example = "android-key")]
    pub format: String,
    /// The verified security level: `strongbox`, `tee` or `secure_enclave`.
    #[schema(nullable, value_type = Option<crate::attestation::SecurityLevel>)]
    pub security_level: Option<String>,
    /// Unix seconds.
    pub verified_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    pub device_id: String,
    pub name: String,
    pub platform: String,
    pub key_storage: String,
    pub user_verification: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub trusted_until: i64,
    /// True for the device whose session makes the call.
    pub current: bool,
    /// The verified key attestation; `null` when the device registered
    /// without one.
    pub attestation: Option<DeviceAttestation>,
}

impl Device {
    pub fn from_record(d: crate::storage::Device, current_device: Option<&str>) -> Self {
        let current = current_device == Some(d.device_id.as_str());
        Device {
            device_id: d.device_id,
            name: d.name,
            platform: d.platform,
            key_storage: d.key_storage,
            user_verification: d.user_verification,
            created_at: d.created_at,
            last_used_at: d.last_used_at,
            trusted_until: d.trusted_until,
            current,
            attestation: d.attestation.map(|a| DeviceAttestation {
                format: a.format,
                security_level: Some(a.security_level),
                verified_at: a.verified_at,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceResponse {
    pub device: Device,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

// ---------- administration ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1–64 of `A-Z a-z 0-9 . _ @ + -`; stored lower-cased.
    #[schema(example = "jane.doe", pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    pub user_id: String,
    /// 1–128 characters once trimmed, no control or invisible formatting
    /// characters (bidi overrides, zero-width, soft hyphen, BOM).
    #[schema(
        example = "Jane Doe",
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff](?:[^\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]{0,126}[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff])?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub name: String,
    /// One `@`, a dotted domain, no spaces; at most 254 bytes once trimmed.
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$"
    )]
    pub email: String,
    /// E.164, e.g. +447700900123.
    #[schema(example = "+447700900123", pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub mobile: Option<String>,
    /// ISO 3166-1 alpha-2, any case; stored upper-case.
    #[schema(example = "GB", pattern = "^[A-Za-z]{2}$")]
    pub primary_market: String,
    /// 8–256 characters.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    Required,
    Off,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketRequest {
    pub second_factor: SecondFactor,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

// ---------- v1.1: cards and online enrolment ----------

/// A card the bank feeds in (administration).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCardRequest {
    /// 15–19 digits passing the Luhn check; never stored or logged in clear.
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{15,19}$")]
    pub card_number: Secret,
    /// The 4-digit card ID printed on the card.
    #[schema(value_type = String, example = "1234", pattern = "^[0-9]{4}$")]
    pub card_id: Secret,
    #[schema(example = "Jane Doe", min_length = 1, max_length = 128)]
    pub name: String,
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$"
    )]
    pub email: String,
    #[schema(example = "+447700900123", pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub mobile: Option<String>,
    #[schema(example = "GB", pattern = "^[A-Za-z]{2}$")]
    pub primary_market: String,
    pub activated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardRefResponse {
    pub card_ref: String,
}

/// `POST /v1/accounts`: online access from card details.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{15,19}$")]
    pub card_number: Secret,
    #[schema(value_type = String, example = "1234", pattern = "^[0-9]{4}$")]
    pub card_id: Secret,
    /// The name on the card; compared on letters and digits only.
    #[schema(example = "Jane Doe", min_length = 1, max_length = 128)]
    pub name: String,
    #[schema(example = "jane.doe", pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    pub user_id: String,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    pub password: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreateAccountResponse {
    pub user_id: String,
}

/// `POST /v1/cards`: link another card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkCardRequest {
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{15,19}$")]
    pub card_number: Secret,
    #[schema(value_type = String, example = "1234", pattern = "^[0-9]{4}$")]
    pub card_id: Secret,
}

/// A card linked to the user, as the app shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedCard {
    pub card_ref: String,
    #[schema(example = "1111")]
    pub last4: String,
    pub linked_at: Option<i64>,
}

impl From<crate::storage::Card> for LinkedCard {
    fn from(c: crate::storage::Card) -> Self {
        LinkedCard {
            card_ref: c.card_ref,
            last4: c.last4,
            linked_at: c.linked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<LinkedCard>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedCardResponse {
    pub card: LinkedCard,
}

// ---------- v1.1: recovery ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIdRecoveryRequest {
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$"
    )]
    pub email: String,
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6,9}$")]
    pub security_code: Secret,
}

/// Always `{}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRecoveryRequest {
    #[schema(example = "jane.doe", pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    pub user_id: String,
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6,9}$")]
    pub security_code: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordRecoveryResponse {
    /// Send the code with `/v1/login/otp/send` `{"login_id": recovery_id, "channel"}`.
    pub recovery_id: String,
    pub expires_at: i64,
    pub methods: Vec<Method>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRecoveryRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub recovery_id: String,
    #[schema(value_type = String, example = "123456", pattern = "^[0-9]{6}$")]
    pub code: Secret,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    pub new_password: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChangedResponse {
    /// Always `password_changed`.
    pub status: &'static str,
}

// ---------- v1.1: account changes and events ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    pub current_password: Secret,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    pub new_password: Secret,
}

/// Exactly one of the two: two changes are two requests.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ContactChangeRequest {
    Email(EmailChange),
    Mobile(MobileChange),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$"
    )]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileChange {
    #[schema(example = "+447700900123", pattern = "^\\+[1-9][0-9]{7,14}$")]
    pub mobile: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactChangeResponse {
    pub change_id: String,
    pub destination: String,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactVerifyRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub change_id: String,
    #[schema(value_type = String, example = "123456", pattern = "^[0-9]{6}$")]
    pub code: Secret,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityCodeRequest {
    #[schema(value_type = String, format = Password, example = "135790", pattern = "^(?!([0-9])\\1+$)(?!(?:012345|123456|234567|345678|456789|0123456|1234567|2345678|3456789|01234567|12345678|23456789|012345678|123456789|987654|876543|765432|654321|543210|9876543|8765432|7654321|6543210|98765432|87654321|76543210|987654321|876543210)$)[0-9]{6,9}$")]
    pub security_code: Secret,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One security event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventBody {
    /// `sign_in`, `sign_in_failed`, `account_locked`, `step_up`,
    /// `device_added`, `device_removed`, `password_changed`,
    /// `contact_changed`, `security_code_changed`, `recovery_used`,
    /// `refresh_reuse`, `enrolled`; by the service team: `unlocked`,
    /// `signed_out_everywhere`, `caller_verified`, `caller_verify_failed`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: &'static str,
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// `service_team` when the bank's service team made the change (the
    /// support console); absent when the card holder did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<SecurityEventBody>,
}
