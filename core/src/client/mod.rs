//! `DeviceTrust`: the one entry point, split by capability the way
//! matrix-rust-sdk splits its `Client`: `DeviceTrust` is a cheap handle on
//! shared state (`Arc<Inner>`), each capability lives in its own module, and
//! the newer, grouped capabilities are reached through small owned handles
//! (`DeviceTrust::account`, `DeviceTrust::recovery`) that hold a clone of
//! the client, with no lifetimes. All three are uniffi objects exported where
//! they live (feature `uniffi`): the bindings crate adds nothing per method.
//! Doc comments of exported items reach Kotlin, Swift and Python as they
//! are, so they use no rustdoc links.
//!
//! | module | what |
//! |---|---|
//! | `mod.rs` | construction, shared state, the flow in progress, error helpers |
//! | `session.rs` | sessions, one per account: tokens, refresh, authorised calls, sign-out |
//! | `accounts.rs` | several accounts, the active one, sealed sessions, the session observer |
//! | `sign_in.rs` | password, enrolment, OTP, biometric sign-in and approval |
//! | `devices.rs` | enabling biometric sign-in, the device list, removal, local state |
//! | `onboarding.rs` | password policy, creating an online account from a card |
//! | `account.rs` | `Account`: profile, password/contact/security-code changes, cards, events |
//! | `recovery.rs` | `Recovery`: forgotten user ID, password reset with the security code |
//! | `keys.rs` | calls into the platform key store: timeouts, panics, error mapping |

mod account;
mod accounts;
mod devices;
mod keys;
mod onboarding;
mod recovery;
mod session;
mod sign_in;

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use account::Account;
pub use accounts::{KnownAccount, MAX_ACCOUNTS};
pub use recovery::Recovery;

use crate::config::Config;
use crate::error::{from_server, DeviceTrustError, Result};
use crate::http::{CallError, Http};
use crate::keystore::{PlatformKeyError, PlatformKeyStore, SessionObserver, SessionSealer};
use crate::model::*;
use crate::state::LocalState;
use crate::wire::*;
use session::Sessions;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn map_call(e: CallError) -> DeviceTrustError {
    match e {
        CallError::Api(e) => from_server(e),
        CallError::Transport(e) => e,
    }
}

pub(crate) fn map_key_error(e: PlatformKeyError) -> DeviceTrustError {
    match e {
        PlatformKeyError::Cancelled => DeviceTrustError::BiometricCancelled,
        PlatformKeyError::KeyInvalidated => DeviceTrustError::BiometricsChanged,
        PlatformKeyError::BiometricUnavailable { reason } => {
            DeviceTrustError::BiometricUnavailable { reason }
        }
        PlatformKeyError::BiometricLockedOut => DeviceTrustError::BiometricLockedOut,
        PlatformKeyError::KeyNotFound => DeviceTrustError::DeviceNotRecognized,
        PlatformKeyError::Other { reason } => DeviceTrustError::KeyStore { reason },
    }
}

/// A password sign-in waiting for its next step.
#[derive(Debug, Clone)]
struct PendingSignIn {
    login_id: String,
    user_id: String,
    /// When the sign-in started (see `SignOuts`).
    started: u64,
    /// `(challenge_id, challenge)` of the `device` method, when offered.
    device_challenge: Option<(String, String)>,
}

/// A password recovery waiting for its code.
#[derive(Debug, Clone)]
struct PendingRecovery {
    recovery_id: String,
    /// Lower-cased.
    user_id: String,
}

/// The one flow in progress on the launch screens: a sign-in or a password
/// recovery. Starting one replaces the other; the SDK keeps the server's ids
/// so the app cannot mix them up.
#[derive(Debug, Clone)]
enum Flow {
    SignIn(PendingSignIn),
    Recovery(PendingRecovery),
}

/// The app's sign-outs and removals, so that a sign-in already under way
/// (its answer on the network, its prompt on screen) does not bring back a
/// session the app ended after it started: a sign-in notes `now()` when it
/// starts and keeps its session only if its account was not signed out or
/// removed since.
#[derive(Default)]
struct SignOuts {
    clock: u64,
    /// The last `sign_out_all`.
    all: u64,
    /// The last sign-out or removal per account. Bounded: past
    /// `MAX_MARKED` it folds into `all` (a sign-in under way then may be
    /// refused for nothing, never kept wrongly).
    one: std::collections::HashMap<String, u64>,
}

const MAX_MARKED: usize = 64;

impl SignOuts {
    fn now(&self) -> u64 {
        self.clock
    }

    fn mark(&mut self, user_id: Option<&str>) {
        self.clock += 1;
        match user_id {
            Some(user) if self.one.len() < MAX_MARKED || self.one.contains_key(user) => {
                self.one.insert(user.to_owned(), self.clock);
            }
            _ => {
                self.all = self.clock;
                self.one.clear();
            }
        }
    }

    fn ended_since(&self, user_id: &str, started: u64) -> bool {
        self.all > started || self.one.get(user_id).is_some_and(|&t| t > started)
    }
}

/// The state every handle shares.
struct Inner {
    config: Config,
    http: Http,
    keys: Arc<dyn PlatformKeyStore>,
    state: LocalState,
    /// One session slot per account, and the active account (see
    /// `session.rs`). Held only to find a slot, never across an await.
    sessions: std::sync::Mutex<Sessions>,
    /// Seals sessions so they survive a restart; none by default.
    sealer: std::sync::RwLock<Option<Arc<dyn SessionSealer>>>,
    observer: std::sync::RwLock<Option<Arc<dyn SessionObserver>>>,
    flow: std::sync::Mutex<Option<Flow>>,
    sign_outs: std::sync::Mutex<SignOuts>,
    /// Keys of registrations cancelled before they finished, to delete
    /// (see `devices.rs`).
    orphan_keys: std::sync::Mutex<Vec<String>>,
    /// `(user_id, change_id)` of the e-mail or mobile change waiting for
    /// its code.
    contact_change: std::sync::Mutex<Option<(String, String)>>,
}

/// The on-device client, and the one entry point of the SDK. Create one per
/// app and keep it; it is thread-safe (in Rust `Send + Sync` and cheap to
/// clone: clones share the session and the flow in progress). Every call
/// that touches the network or the local state is async; `session()`,
/// `account()` and `recovery()` only read memory and are not. Cancelling a
/// call (a Kotlin coroutine, a Swift task, a Python task, a dropped Rust
/// future) drops the SDK's work: a prompt still shown is dismissed and no
/// session is kept from it.
///
/// The calls of the sign-in journey are methods of `DeviceTrust`; account
/// management is on `account()` and the "forgot user ID / password" flows
/// on `recovery()`. The crate's documentation has a complete example.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
#[derive(Clone)]
pub struct DeviceTrust {
    inner: Arc<Inner>,
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl DeviceTrust {
    /// Opens the local state under `config.state_dir` (creating it) and
    /// prepares HTTPS; `key_store` is the platform's key store.
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn new(config: Config, key_store: Arc<dyn PlatformKeyStore>) -> Result<Self> {
        if config.rp_id.trim().is_empty() {
            return Err(DeviceTrustError::invalid("rp_id must not be empty"));
        }
        let http = Http::new(&config)?;
        let state = LocalState::open(Path::new(&config.state_dir))?;
        Ok(DeviceTrust {
            inner: Arc::new(Inner {
                config,
                http,
                keys: key_store,
                state,
                sessions: std::sync::Mutex::new(Sessions::default()),
                sealer: std::sync::RwLock::new(None),
                observer: std::sync::RwLock::new(None),
                flow: std::sync::Mutex::new(None),
                sign_outs: std::sync::Mutex::new(SignOuts::default()),
                orphan_keys: std::sync::Mutex::new(Vec::new()),
                contact_change: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The signed-in user's account: profile, password, e-mail, mobile and
    /// security-code changes, cards, security events. A cheap handle sharing
    /// this object's session; get one per screen or per call.
    pub fn account(&self) -> Arc<Account> {
        Arc::new(Account::new(self.clone()))
    }

    /// Getting back in without the password or user ID: "forgot user ID" and
    /// the password reset with the security code. A cheap handle sharing
    /// this object's flow in progress.
    pub fn recovery(&self) -> Arc<Recovery> {
        Arc::new(Recovery::new(self.clone()))
    }
}

impl DeviceTrust {
    // ---------- the flow in progress ----------

    fn flow(&self) -> Option<Flow> {
        self.inner
            .flow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_flow(&self, flow: Option<Flow>) {
        *self.inner.flow.lock().unwrap_or_else(|p| p.into_inner()) = flow;
    }

    fn pending(&self) -> Result<PendingSignIn> {
        match self.flow() {
            Some(Flow::SignIn(p)) => Ok(p),
            _ => Err(DeviceTrustError::NoSignInInProgress),
        }
    }

    fn pending_recovery(&self) -> Result<PendingRecovery> {
        match self.flow() {
            Some(Flow::Recovery(r)) => Ok(r),
            _ => Err(DeviceTrustError::NoRecoveryInProgress),
        }
    }

    fn set_pending(
        &self,
        login_id: String,
        user_id: &str,
        started: u64,
        device_challenge: Option<(String, String)>,
    ) {
        self.set_flow(Some(Flow::SignIn(PendingSignIn {
            login_id,
            user_id: user_id.to_owned(),
            started,
            device_challenge,
        })));
    }

    fn sign_outs(&self) -> std::sync::MutexGuard<'_, SignOuts> {
        self.inner
            .sign_outs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Notes when a sign-in starts.
    fn sign_in_started(&self) -> u64 {
        self.sign_outs().now()
    }

    /// The app signs `user_id` (`None`: everyone) out or removes it: sign-ins
    /// under way for it keep no session.
    fn mark_signed_out(&self, user_id: Option<&str>) {
        self.sign_outs().mark(user_id);
    }

    /// Whether `user_id` was signed out or removed since `started`.
    fn signed_out_since(&self, user_id: &str, started: u64) -> bool {
        self.sign_outs().ended_since(user_id, started)
    }

    fn clear_pending(&self) {
        self.set_flow(None);
    }

    /// A step of the flow in progress failed; an expired flow is dropped.
    fn pending_failed(&self, e: CallError) -> DeviceTrustError {
        let err = map_call(e);
        if err == DeviceTrustError::SignInExpired {
            self.clear_pending();
        }
        err
    }
}

/// The `session` of an `authenticated` answer.
fn session_in(reply: &Value) -> Result<WireSession> {
    serde_json::from_value(reply["session"].clone()).map_err(|e| DeviceTrustError::Server {
        status: 200,
        code: "unreadable_response".into(),
        reason: e.to_string(),
    })
}

fn otp_options(methods: &[WireMethod]) -> Vec<OtpOption> {
    methods
        .iter()
        .filter_map(|m| match m {
            WireMethod::Otp {
                channel,
                destination,
            } => {
                let channel = match channel.as_str() {
                    "sms" => OtpChannel::Sms,
                    "email" => OtpChannel::Email,
                    _ => return None,
                };
                Some(OtpOption {
                    channel,
                    destination: destination.clone(),
                })
            }
            WireMethod::Device { .. } | WireMethod::Unknown => None,
        })
        .collect()
}

fn user_profile(me: WireMe) -> Profile {
    Profile {
        user_id: me.user_id,
        name: me.name,
        email: me.email,
        mobile: me.mobile,
        primary_market: me.primary_market,
        enrolled: me.enrolled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_ignored_not_fatal() {
        let methods: Vec<WireMethod> = serde_json::from_str(
            r#"[{"type": "otp", "channel": "email", "destination": "j•••@example.com"},
                {"type": "passkey", "rp": "x"},
                {"type": "otp", "channel": "pigeon", "destination": "loft"}]"#,
        )
        .unwrap();
        assert_eq!(
            otp_options(&methods),
            vec![OtpOption {
                channel: OtpChannel::Email,
                destination: "j•••@example.com".into()
            }]
        );
    }

    #[test]
    fn handles_are_send_sync_and_static() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<DeviceTrust>();
        check::<Account>();
        check::<Recovery>();
    }
}
