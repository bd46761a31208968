//! What each multi-step flow proves and what it changes, over the `Store`.
//! HTTP handlers (`api::*`) stay thin and call these; so will the support
//! console and the CLI. Nothing here knows about HTTP beyond `ApiError`.

pub mod account;
pub mod cards;
pub mod events;
pub mod operators;
pub mod otp;
pub mod recovery;
pub mod risk;
pub mod security_code;
pub mod support;
