//! devicetrust server: password + OTP enrolment, trusted-device registration
//! and biometric sign-in for card holders, as described in `docs/PROTOCOL.md`.

pub mod api;
pub mod app;
pub mod attestation;
pub mod challenge_token;
pub mod cli;
pub mod clock;
pub mod console;
pub mod error;
pub mod extract;
pub mod flows;
pub mod http_server;
pub mod lockout;
pub mod messages;
pub mod notify;
pub mod ops;
pub mod password_policy;
pub mod private_files;
pub mod proof;
pub mod ratelimit;
pub mod risk;
pub mod secrets;
pub mod server_key;
pub mod storage;
pub mod validate;
