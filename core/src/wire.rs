//! The server's JSON, as the SDK reads and writes it (docs/PROTOCOL.md).

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireSession {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    /// The session's time left (its absolute end); optional so an older
    /// server without it still parses.
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    pub user_id: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireProfile {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireMethod {
    Otp {
        channel: String,
        destination: String,
    },
    Device {
        challenge_id: String,
        challenge: String,
    },
    /// A method type this SDK does not know: ignored, not an unreadable answer.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum WireStep {
    EnrolmentRequired {
        login_id: String,
        expires_at: i64,
        profile: WireProfile,
    },
    SecondFactorRequired {
        login_id: String,
        expires_at: i64,
        methods: Vec<WireMethod>,
        /// Risk signals, when the risk policy withheld the device method.
        #[serde(default)]
        reasons: Vec<String>,
    },
    Authenticated {
        session: WireSession,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireOtpSent {
    pub destination: String,
    pub expires_at: i64,
    pub resend_after_s: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireChallenge {
    pub challenge_id: String,
    pub challenge: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireRegistration {
    pub registration_id: String,
    pub challenge: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireDevice {
    pub device_id: String,
    pub name: String,
    pub platform: String,
    pub key_storage: String,
    pub user_verification: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub trusted_until: i64,
    /// Absent from servers before v1.1.
    #[serde(default)]
    pub attestation: Option<WireDeviceAttestation>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireDeviceAttestation {
    pub format: String,
    #[serde(default)]
    pub security_level: Option<String>,
    pub verified_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireDeviceEnvelope {
    pub device: WireDevice,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireDeviceList {
    pub devices: Vec<WireDevice>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireMe {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    pub primary_market: String,
    pub enrolled: bool,
}

/// `GET /v1/password-policy`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WirePasswordPolicy {
    pub min_length: u32,
    pub max_length: u32,
    pub classes_required: u32,
    #[serde(default)]
    pub description: String,
}

/// `POST /v1/accounts` → 201.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireAccountCreated {
    pub user_id: String,
}

/// `POST /v1/recovery/password` → 200.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireRecoveryStarted {
    pub recovery_id: String,
    pub expires_at: i64,
    pub methods: Vec<WireMethod>,
}

/// `POST /v1/account/contact` → 200.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireContactChange {
    pub change_id: String,
    pub destination: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireCard {
    pub card_ref: String,
    pub last4: String,
    pub linked_at: i64,
}

/// `GET /v1/cards`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireCardList {
    pub cards: Vec<WireCard>,
}

/// `POST /v1/cards` → 201.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireCardEnvelope {
    pub card: WireCard,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: i64,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
}

/// `GET /v1/account/events`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireEventList {
    pub events: Vec<WireEvent>,
}

/// An error answer: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub retry_after_s: Option<u64>,
    pub attempts_left: Option<u32>,
    pub login_id: Option<String>,
    pub methods: Vec<WireMethod>,
    /// With `password_rejected`: the rules broken, by name; with
    /// `step_up_required`: the risk signals.
    pub reasons: Vec<String>,
}

impl ServerError {
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        ServerError {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"]
                .as_str()
                .unwrap_or("the server answered without an error body")
                .to_owned(),
            retry_after_s: e["retry_after_s"].as_u64(),
            attempts_left: e["attempts_left"].as_u64().map(|n| n as u32),
            login_id: e["login_id"].as_str().map(str::to_owned),
            methods: serde_json::from_value(e["methods"].clone()).unwrap_or_default(),
            reasons: e["reasons"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
