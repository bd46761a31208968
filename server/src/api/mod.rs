//! HTTP handlers, one module per area of the contract.

pub mod admin;
pub mod devices;
pub mod health;
pub mod login;
pub mod session;
pub mod types;
