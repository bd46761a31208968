//! The devicetrust mobile library: `devicetrust-core` built with its
//! `uniffi` feature, linked as a `cdylib` (Android, the JVM and Python
//! tests) and a `staticlib` (iOS). Everything the bindings expose is
//! exported where it lives in the core (`DeviceTrust`, `Account`,
//! `Recovery`, records, enums, errors, the key-store traits), so this crate
//! has no code of its own: no wrapper per method, no second namespace. See
//! docs/BINDINGS.md.

// The re-export keeps every uniffi symbol of the core in the library.
pub use devicetrust_core::*;
