//! Operations (docs/OPERATIONS.md): metrics, readiness, the configuration
//! file, the server's own TLS.

pub mod health;
pub mod metered_store;
pub mod metrics;
