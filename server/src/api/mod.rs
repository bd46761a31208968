//! HTTP handlers, one module per area of the contract.

pub mod account;
pub mod accounts;
pub mod admin;
pub mod devices;
pub mod health;
pub mod login;
pub mod password_policy;
pub mod recovery;
pub mod session;
pub mod types;
