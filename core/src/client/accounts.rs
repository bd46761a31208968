//! Several accounts on one phone, and sessions that survive a restart.
//!
//! - Every account that signs in here is listed ([`DeviceTrust::accounts`])
//!   and keeps its own session; one of them is *active*: `session()`,
//!   `access_token()`, `account()`, `profile()` and the device calls act for
//!   it. A sign-in makes its account active and keeps the others' sessions;
//!   [`DeviceTrust::switch_account`] changes the active account without
//!   signing anyone out.
//! - With a [`SessionSealer`] ([`DeviceTrust::set_session_sealer`]) each
//!   session's refresh token is sealed by the platform and kept in the local
//!   state; a restart restores it at the first call that needs it. A copy
//!   that does not open, opens to something else, or whose refresh the
//!   server refuses is deleted: the account is signed out, never stuck.
//! - A [`SessionObserver`] hears of every sign-in, refresh, sign-out and
//!   revocation, after the SDK's locks are released.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::session::{ActiveSession, Change, Slot};
use super::{now, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::http::Repeat;
use crate::input;
use crate::keystore::{PlatformKeyError, SessionObserver, SessionSealer};
use crate::model::{Profile, SessionInfo};
use crate::state::LocalEnrolment;

/// The most accounts this phone remembers. A sign-in of one more forgets
/// the account signed in least recently among those without biometric
/// sign-in here (signing it out); when all have biometric sign-in, a new
/// account's password sign-in is refused until one is removed
/// ([`DeviceTrust::remove_account`]). This bounds the accounts list, the
/// sessions in memory and the sealed sessions on disk.
pub const MAX_ACCOUNTS: usize = 8;

/// The `meta` key of the active account.
const ACTIVE_USER: &str = "active_user";

/// Format of the sealed plaintext.
const SEALED_VERSION: u8 = 1;

/// An account known on this phone, with what an account picker shows.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAccount {
    /// Lower-cased.
    pub user_id: String,
    /// The name `profile()` last returned on this phone (`None` before the
    /// first `profile()` call).
    pub name: Option<String>,
    /// The e-mail `profile()` last returned on this phone.
    pub email: Option<String>,
    /// Biometric sign-in is enabled for this account on this phone.
    pub biometric_enabled: bool,
    /// … and still trusted by this phone's clock: offer it
    /// (`sign_in_with_biometric`).
    pub biometric_available: bool,
    /// Has a session here: live, or sealed and not past its end. A sealed
    /// one is opened at its first use and may then turn out revoked.
    pub signed_in: bool,
    /// The account calls act for.
    pub active: bool,
    /// The last sign-in on this phone (`None` for an account that only has
    /// biometric sign-in from an SDK before several accounts).
    pub last_sign_in_at: Option<SystemTime>,
}

/// What the sealer seals: the refresh token and what a restored session
/// needs, bound to the account and the server. The sealer's interface has
/// no associated data, so the binding lives inside the plaintext: a blob
/// moved to another account's row, or to an SDK of another server, opens
/// to a mismatch and is dropped.
#[derive(Serialize, Deserialize)]
struct SealedSession {
    v: u8,
    server: String,
    rp_id: String,
    user_id: String,
    refresh_token: String,
    amr: Vec<String>,
    auth_time: i64,
    expires_at: Option<i64>,
}

/// An account as the list and the bounds see it.
struct Known {
    user_id: String,
    name: Option<String>,
    email: Option<String>,
    last_sign_in_at: Option<i64>,
    device: Option<LocalEnrolment>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn system_time(unix_s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_s.max(0) as u64)
}

/// The public API of several accounts and kept sessions.
#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// Every account known on this phone, most recently signed in first:
    /// those that signed in here and those with biometric sign-in here
    /// (no network, opens no sealed session).
    pub async fn accounts(&self) -> Result<Vec<KnownAccount>> {
        let sealed = self.inner.state.sealed_sessions()?;
        let has_sealer = self.sealer().is_some();
        let active = self.active_user();
        let now = now();
        Ok(self
            .known()?
            .into_iter()
            .map(|k| {
                let signed_in = match self.slot_state(&k.user_id) {
                    // A slot that was looked at is the truth; else the
                    // sealed copy, when a sealer can open it.
                    Some((live, loaded)) if live || loaded => live,
                    _ => {
                        has_sealer
                            && sealed
                                .iter()
                                .any(|(u, end)| *u == k.user_id && end.is_none_or(|t| t > now))
                    }
                };
                KnownAccount {
                    active: active.as_deref() == Some(k.user_id.as_str()),
                    biometric_enabled: k.device.is_some(),
                    biometric_available: k
                        .device
                        .as_ref()
                        .is_some_and(|d| d.trusted_until > system_time(now)),
                    signed_in,
                    last_sign_in_at: k.last_sign_in_at.map(system_time),
                    name: k.name,
                    email: k.email,
                    user_id: k.user_id,
                }
            })
            .collect())
    }

    /// The account calls act for (lower-cased), if any account is active.
    /// After a restart it is the one active before, when its session was
    /// sealed (and opens).
    pub fn active_account(&self) -> Option<String> {
        self.active_user()
    }

    /// Makes `user_id` the active account, without signing any account out.
    /// `NotSignedIn` when it has no session here: sign it in (biometric or
    /// password), which makes it active.
    pub async fn switch_account(&self, user_id: &str) -> Result<SessionInfo> {
        let user = user_id.to_ascii_lowercase();
        if !self.may_have_session(&user)? {
            return Err(DeviceTrustError::NotSignedIn);
        }
        let info = self
            .session_of(&user)
            .await
            .ok_or(DeviceTrustError::NotSignedIn)?;
        if self.active_user().as_deref() != Some(user.as_str()) {
            // A flow started for the other account no longer applies.
            self.clear_pending();
            self.activate(&user);
        }
        Ok(info)
    }

    /// Signs `user_id` out (here at once, then on the server); the other
    /// accounts stay signed in. If it was active, no account is active until
    /// the app switches or signs one in. Signing out an account without a
    /// session is not an error. A sign-in of it already under way keeps no
    /// session (it fails with `NotSignedIn`, its session ended on the server).
    pub async fn sign_out_account(&self, user_id: &str) -> Result<()> {
        let user = user_id.to_ascii_lowercase();
        // Also when it has no session yet: its first sign-in may be under way.
        self.mark_signed_out(Some(&user));
        if !self.may_have_session(&user)? {
            return Ok(());
        }
        self.end_session(&user).await
    }

    /// Signs every account on this phone out. Each is signed out here even
    /// when the server cannot be reached; the first such error is returned.
    /// Sign-ins already under way keep no session (`NotSignedIn`).
    pub async fn sign_out_all(&self) -> Result<()> {
        self.mark_signed_out(None);
        self.clear_pending();
        self.set_contact_change(None);
        let mut users = self.slot_users();
        for (user, _) in self.inner.state.sealed_sessions()? {
            if !users.contains(&user) {
                users.push(user);
            }
        }
        let mut first = Ok(());
        for user in users {
            let result = self.end_session(&user).await;
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    /// Removes `user_id` from this phone: signs it out, turns biometric
    /// sign-in off here (the key is deleted; the device is removed on the
    /// server now when the account has a session, else at its next sign-in
    /// here) and forgets its name and e-mail. A sign-in of it already under
    /// way does not bring it back (`NotSignedIn`).
    pub async fn remove_account(&self, user_id: &str) -> Result<()> {
        let user = user_id.to_ascii_lowercase();
        self.mark_signed_out(Some(&user));
        if let Some(record) = self.inner.state.device(&user)? {
            // An id that is not the server's names no device there.
            let removed = match input::device_path(&record.enrolment.device_id) {
                Ok(path) => self
                    .authed_as::<Value>(&user, Method::DELETE, &path, None, Repeat::Once)
                    .await
                    .map(drop),
                Err(_) => Ok(()),
            };
            let removed = match removed {
                Ok(()) | Err(DeviceTrustError::Server { status: 404, .. }) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "device not removed now; queued");
                    false
                }
            };
            self.forget_device(&record).await;
            if !removed {
                self.inner
                    .state
                    .queue_removal(&user, &record.enrolment.device_id, now())?;
            }
        }
        let result = if self.may_have_session(&user)? {
            self.end_session(&user).await
        } else {
            Ok(())
        };
        self.inner.state.forget_account(&user)?;
        self.sessions().remove(&user);
        result
    }

    /// Keeps sessions across restarts: from now on every session is sealed
    /// with `sealer` and stored in the local state, and sealed sessions are
    /// restored at the first call that needs them. Set it right after
    /// the `DeviceTrust` constructor, before any call (a session already live is
    /// sealed at its next refresh). Without a sealer sessions live in memory
    /// only, and any sealed copies are left unopened.
    pub fn set_session_sealer(&self, sealer: Arc<dyn SessionSealer>) {
        *self.inner.sealer.write().unwrap_or_else(|p| p.into_inner()) = Some(sealer);
        let mut sessions = self.sessions();
        if sessions.active.is_none() {
            // The account active before the restart, if its session was
            // sealed: it is opened at the first call.
            let remembered = self.inner.state.meta(ACTIVE_USER).ok().flatten();
            let sealed = self.inner.state.sealed_sessions().unwrap_or_default();
            sessions.active = remembered.filter(|u| sealed.iter().any(|(s, _)| s == u));
        }
    }

    /// Tells `observer` of every session change: a sign-in, a refresh, a
    /// sign-out, a revocation the server reported, a sealed session that
    /// could not be restored (`session` is then `None`). Called on the
    /// thread of the SDK call that caused it, with no SDK lock held. An
    /// observer that throws does not fail the call that caused the change.
    pub fn set_session_observer(&self, observer: Arc<dyn SessionObserver>) {
        *self
            .inner
            .observer
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }
}

/// The internals, in their own block so the public one above can be
/// exported to the bindings as it stands.
impl DeviceTrust {
    // ---------- internals: the active account ----------

    pub(super) fn active_user(&self) -> Option<String> {
        self.sessions().active.clone()
    }

    pub(super) fn activate(&self, user_id: &str) {
        self.sessions().active = Some(user_id.to_owned());
        if let Err(e) = self.inner.state.set_meta(ACTIVE_USER, Some(user_id)) {
            tracing::warn!(error = %e, "could not remember the active account");
        }
    }

    /// `user_id` has no session any more: no longer active.
    pub(super) fn deactivate(&self, user_id: &str) {
        let mut sessions = self.sessions();
        if sessions.active.as_deref() == Some(user_id) {
            sessions.active = None;
            drop(sessions);
            if let Err(e) = self.inner.state.set_meta(ACTIVE_USER, None) {
                tracing::warn!(error = %e, "could not forget the active account");
            }
        }
    }

    /// `(live, loaded)` of the account's slot, if it has one; a slot busy
    /// refreshing counts as live.
    fn slot_state(&self, user_id: &str) -> Option<(bool, bool)> {
        let slot = self.sessions().slot_if_any(user_id)?;
        let state = match slot.try_lock() {
            Ok(s) => (s.session.is_some(), s.loaded),
            Err(_) => (true, true),
        };
        Some(state)
    }

    /// Whether `user_id` may have a session here: a slot, or a sealed copy.
    /// Calls naming an account by the app's string check this first, so an
    /// unknown name creates no slot.
    pub(super) fn may_have_session(&self, user_id: &str) -> Result<bool> {
        Ok(self.sessions().slot_if_any(user_id).is_some()
            || self.inner.state.sealed_session(user_id)?.is_some())
    }

    pub(super) fn contact_change_owner(&self) -> Option<String> {
        self.inner
            .contact_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(owner, _)| owner.clone())
    }

    /// Remembers the name and e-mail for the account picker.
    pub(super) fn remember_profile(&self, profile: &Profile) {
        if let Err(e) = self.inner.state.set_account_profile(
            &profile.user_id.to_ascii_lowercase(),
            &profile.name,
            &profile.email,
        ) {
            tracing::warn!(error = %e, "could not remember the account's name");
        }
    }

    // ---------- internals: the observer ----------

    /// Tells the observer; the caller holds no SDK lock.
    pub(super) fn notify(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let observer = self
            .inner
            .observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observer) = observer {
            for (user_id, session) in changes {
                // An observer in Kotlin, Swift or Python that throws reaches
                // here as a panic (uniffi's rule for a callback returning
                // nothing). The change has happened: report the call's own
                // outcome, not the observer's failure, and tell the others.
                let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    observer.session_changed(user_id, session)
                }));
                if told.is_err() {
                    tracing::warn!("the session observer failed; the change stands");
                }
            }
        }
    }

    // ---------- internals: sealing ----------

    fn sealer(&self) -> Option<Arc<dyn SessionSealer>> {
        self.inner
            .sealer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the sealed copy mirror `session` (the account's slot lock
    /// held): sealed when there is a sealer and sealing works, else none —
    /// never an older copy, whose refresh token the server has spent or
    /// will refuse.
    pub(super) fn persist(&self, user_id: &str, session: &ActiveSession) {
        let state = &self.inner.state;
        let saved = match self.sealer() {
            None => state.delete_sealed(user_id),
            Some(sealer) => match self.seal(sealer.as_ref(), user_id, session) {
                Ok(blob) => state
                    .save_sealed(user_id, &blob, session.expires_at, now())
                    .or_else(|e| {
                        tracing::warn!(error = %e, "could not store the sealed session");
                        state.delete_sealed(user_id)
                    }),
                Err(reason) => {
                    tracing::warn!(%reason, "session not sealed: it lives in memory only");
                    state.delete_sealed(user_id)
                }
            },
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, "could not update the sealed session");
        }
    }

    fn seal(
        &self,
        sealer: &dyn SessionSealer,
        user_id: &str,
        session: &ActiveSession,
    ) -> std::result::Result<Vec<u8>, String> {
        let plain = serde_json::to_vec(&SealedSession {
            v: SEALED_VERSION,
            server: self.inner.config.server_url.clone(),
            rp_id: self.inner.config.rp_id.clone(),
            user_id: user_id.to_owned(),
            refresh_token: session.refresh_token.clone(),
            amr: session.amr.clone(),
            auth_time: session.auth_time,
            expires_at: session.expires_at,
        })
        .map_err(|e| e.to_string())?;
        let sealed = sealer.seal(plain.clone()).map_err(|e| e.to_string())?;
        // A broken sealer must not write the token in clear.
        if sealed.is_empty() || contains(&sealed, session.refresh_token.as_bytes()) {
            return Err("the session sealer returned the token in clear".into());
        }
        // Stored only if it opens again: a copy that cannot be restored
        // would sign the user out at the next start for nothing.
        match sealer.open(sealed.clone()) {
            Ok(back) if back == plain => Ok(sealed),
            Ok(_) => Err("the session sealer does not give back what it sealed".into()),
            Err(e) => Err(format!(
                "the session sealer cannot open what it sealed: {e}"
            )),
        }
    }

    /// Restores `user_id`'s sealed session into its (locked) slot. Without
    /// a sealer, or when the sealer cannot reach its key *now* (cancelled,
    /// unavailable, locked out: e.g. iOS before the first unlock), the copy
    /// is kept and tried again at the next call. Any other failure deletes
    /// it and reports the account signed out.
    pub(super) fn restore(&self, user_id: &str, slot: &mut Slot, changes: &mut Vec<Change>) {
        let Some(sealer) = self.sealer() else {
            return;
        };
        let row = match self.inner.state.sealed_session(user_id) {
            Ok(row) => row,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a sealed session");
                return;
            }
        };
        slot.loaded = true;
        let Some(row) = row else {
            return;
        };
        let reason = match sealer.open(row.sealed) {
            Ok(plain) => match self.unseal(user_id, &plain) {
                Ok(session) => {
                    slot.session = Some(session);
                    return;
                }
                Err(reason) => reason.to_owned(),
            },
            Err(
                e @ (PlatformKeyError::Cancelled
                | PlatformKeyError::BiometricUnavailable { .. }
                | PlatformKeyError::BiometricLockedOut),
            ) => {
                tracing::warn!(error = %e, "sealed session not opened now; kept for later");
                slot.loaded = false;
                return;
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(%reason, "sealed session dropped: signed out");
        if let Err(e) = self.inner.state.delete_sealed(user_id) {
            tracing::warn!(error = %e, "could not delete a sealed session");
        }
        self.deactivate(user_id);
        changes.push((user_id.to_owned(), None));
    }

    fn unseal(&self, user_id: &str, plain: &[u8]) -> std::result::Result<ActiveSession, &str> {
        let s: SealedSession =
            serde_json::from_slice(plain).map_err(|_| "the sealed session is unreadable")?;
        let config = &self.inner.config;
        if s.v != SEALED_VERSION || s.refresh_token.is_empty() {
            return Err("the sealed session is unreadable");
        }
        if s.server != config.server_url || s.rp_id != config.rp_id {
            return Err("the session was sealed for another server");
        }
        if s.user_id != user_id {
            return Err("the session was sealed for another account");
        }
        if s.expires_at.is_some_and(|t| t <= now()) {
            return Err("the sealed session has ended");
        }
        Ok(ActiveSession {
            access_token: String::new(),
            access_expires_at: 0,
            refresh_token: s.refresh_token,
            expires_at: s.expires_at,
            info: super::session::session_info(&s.user_id, &s.amr, s.auth_time),
            amr: s.amr,
            auth_time: s.auth_time,
        })
    }

    // ---------- internals: the accounts and their bound ----------

    /// Accounts that signed in here or have biometric sign-in here, most
    /// recently signed in first.
    fn known(&self) -> Result<Vec<Known>> {
        let state = &self.inner.state;
        let mut devices: Vec<LocalEnrolment> =
            state.devices()?.into_iter().map(|d| d.enrolment).collect();
        let mut known: Vec<Known> = state
            .accounts()?
            .into_iter()
            .map(|a| {
                let device = devices
                    .iter()
                    .position(|d| d.user_id == a.user_id)
                    .map(|i| devices.remove(i));
                Known {
                    user_id: a.user_id,
                    name: a.name,
                    email: a.email,
                    last_sign_in_at: a.last_sign_in_at,
                    device,
                }
            })
            .collect();
        known.extend(devices.into_iter().map(|d| Known {
            user_id: d.user_id.clone(),
            name: None,
            email: None,
            last_sign_in_at: None,
            device: Some(d),
        }));
        known.sort_by(|a, b| {
            b.last_sign_in_at
                .cmp(&a.last_sign_in_at)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        Ok(known)
    }

    /// Refuses, before any request, a new account's sign-in the bound
    /// leaves no room for (every account here has biometric sign-in).
    pub(super) fn check_room_for(&self, user_id: &str) -> Result<()> {
        let known = self.known()?;
        if known.len() >= MAX_ACCOUNTS
            && !known.iter().any(|k| k.user_id == user_id)
            && known.iter().all(|k| k.device.is_some())
        {
            return Err(DeviceTrustError::invalid(format!(
                "this phone already holds {MAX_ACCOUNTS} accounts with biometric sign-in: \
                 remove one first"
            )));
        }
        Ok(())
    }

    /// Before `user_id`'s session is kept: when the phone already holds
    /// [`MAX_ACCOUNTS`] others, the one signed in least recently among
    /// those without biometric sign-in here is signed out and forgotten.
    pub(super) async fn make_room_for(&self, user_id: &str) {
        let known = match self.known() {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the accounts");
                return;
            }
        };
        if known.len() < MAX_ACCOUNTS || known.iter().any(|k| k.user_id == user_id) {
            return;
        }
        let Some(oldest) = known.iter().rfind(|k| k.device.is_none()) else {
            // Only a race with another sign-in gets here (checked at the
            // password step): one over the bound, not unbounded.
            tracing::warn!("every account here has biometric sign-in; none forgotten");
            return;
        };
        if let Err(e) = self.end_session(&oldest.user_id).await {
            tracing::warn!(error = %e, "the forgotten account's session was not revoked");
        }
        if let Err(e) = self.inner.state.forget_account(&oldest.user_id) {
            tracing::warn!(error = %e, "could not forget an account");
        }
        self.sessions().remove(&oldest.user_id);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Mutex, OnceLock};

    use super::*;
    use crate::config::Config;
    use crate::keystore::{KeyStorage, UserVerification};
    use crate::state::DeviceRecord;
    use crate::{SoftwareKeyStore, SoftwareSessionSealer};

    /// Refused at once: no test waits on a network.
    const SERVER: &str = "http://127.0.0.1:9";

    fn sdk_at(dir: &Path, server: &str) -> DeviceTrust {
        let mut config = Config::new(server, "https://rp.test", dir.to_str().unwrap());
        config.allow_insecure_http = true;
        config.connect_timeout_ms = 500;
        let keys = SoftwareKeyStore::new(dir.join("keys"), &[9u8; 32]).unwrap();
        DeviceTrust::new(config, Arc::new(keys)).unwrap()
    }

    fn sealer(key: u8) -> Arc<dyn SessionSealer> {
        Arc::new(SoftwareSessionSealer::new(&[key; 32]).unwrap())
    }

    /// A session as a sign-in leaves it, without the network.
    async fn install(sdk: &DeviceTrust, user: &str, refresh: &str) {
        let session = ActiveSession {
            access_token: format!("dta_{user}"),
            access_expires_at: now() + 900,
            refresh_token: refresh.into(),
            expires_at: Some(now() + 3600),
            amr: vec!["hwk".into(), "bio".into()],
            auth_time: 1_700_000_000,
            info: info(user),
        };
        {
            let mut slot = sdk.slot(user).lock_owned().await;
            sdk.persist(user, &session);
            slot.session = Some(session);
            slot.loaded = true;
        }
        sdk.inner.state.account_signed_in(user, now()).unwrap();
        sdk.activate(user);
    }

    fn info(user: &str) -> SessionInfo {
        crate::client::session::session_info(user, &["hwk".into(), "bio".into()], 1_700_000_000)
    }

    /// Records every change, and reads the SDK from inside the callback: a
    /// registry lock held while calling would deadlock here, and an account
    /// slot still locked would show as signed in (a busy slot counts as
    /// live) after its sign-out.
    #[derive(Default)]
    struct Recorder {
        sdk: OnceLock<DeviceTrust>,
        seen: Mutex<Vec<(String, Option<SessionInfo>)>>,
    }

    impl SessionObserver for Recorder {
        fn session_changed(&self, user_id: String, session: Option<SessionInfo>) {
            if let Some(sdk) = self.sdk.get() {
                let _ = sdk.active_account();
                // Synchronous context: `accounts()` must answer without
                // waiting (it never waits on an account's lock).
                let mut listing = std::pin::pin!(sdk.accounts());
                let std::task::Poll::Ready(listed) = std::future::Future::poll(
                    listing.as_mut(),
                    &mut std::task::Context::from_waker(std::task::Waker::noop()),
                ) else {
                    panic!("accounts() waited inside the observer");
                };
                if let Some(listed) = listed.unwrap().iter().find(|a| a.user_id == user_id) {
                    assert_eq!(listed.signed_in, session.is_some(), "told before settled");
                }
            }
            self.seen.lock().unwrap().push((user_id, session));
        }
    }

    fn observe(sdk: &DeviceTrust) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder::default());
        let _ = recorder.sdk.set(sdk.clone());
        sdk.set_session_observer(recorder.clone());
        recorder
    }

    fn seen(r: &Recorder) -> Vec<(String, Option<SessionInfo>)> {
        r.seen.lock().unwrap().clone()
    }

    fn sealed_count(sdk: &DeviceTrust) -> usize {
        sdk.inner.state.sealed_sessions().unwrap().len()
    }

    /// A sealer that does what a test says.
    struct Scripted {
        inner: SoftwareSessionSealer,
        seal: Mutex<Option<PlatformKeyError>>,
        open: Mutex<Vec<std::result::Result<Vec<u8>, PlatformKeyError>>>,
        identity: bool,
    }

    impl Scripted {
        fn new() -> Scripted {
            Scripted {
                inner: SoftwareSessionSealer::new(&[1u8; 32]).unwrap(),
                seal: Mutex::new(None),
                open: Mutex::new(Vec::new()),
                identity: false,
            }
        }
    }

    impl SessionSealer for Scripted {
        fn seal(&self, plaintext: Vec<u8>) -> std::result::Result<Vec<u8>, PlatformKeyError> {
            if let Some(e) = self.seal.lock().unwrap().clone() {
                return Err(e);
            }
            if self.identity {
                return Ok(plaintext);
            }
            self.inner.seal(plaintext)
        }

        fn open(&self, sealed: Vec<u8>) -> std::result::Result<Vec<u8>, PlatformKeyError> {
            let next = self.open.lock().unwrap().pop();
            match next {
                Some(answer) => answer,
                None if self.identity => Ok(sealed),
                None => self.inner.open(sealed),
            }
        }
    }

    #[tokio::test]
    async fn a_sealed_session_survives_a_restart_and_only_with_a_sealer() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        assert_eq!(sealed_count(&sdk), 1);
        drop(sdk);

        // Restart without a sealer: nothing restored, the copy left alone.
        let plain = sdk_at(dir.path(), SERVER);
        assert_eq!(plain.session().await, None);
        assert_eq!(plain.active_account(), None);
        assert!(!plain.accounts().await.unwrap()[0].signed_in);
        assert_eq!(sealed_count(&plain), 1);
        drop(plain);

        // Restart with it: the same account, active, restored at first use.
        let sdk = sdk_at(dir.path(), SERVER);
        let recorder = observe(&sdk);
        sdk.set_session_sealer(sealer(1));
        assert_eq!(sdk.active_account().as_deref(), Some("ann"));
        let listed = sdk.accounts().await.unwrap();
        assert!(listed[0].signed_in && listed[0].active);
        assert_eq!(sdk.session().await, Some(info("ann")));
        assert!(seen(&recorder).is_empty(), "a restore is no change");
    }

    #[tokio::test]
    async fn the_refresh_token_is_never_written_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let token = "dtr_NEVER_IN_CLEAR_4242";
        for sealer in [
            sealer(1),
            Arc::new(Scripted {
                identity: true,
                ..Scripted::new()
            }) as Arc<dyn SessionSealer>,
        ] {
            let sdk = sdk_at(dir.path(), SERVER);
            sdk.set_session_sealer(sealer);
            install(&sdk, "ann", token).await;
        }
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        assert!(!bytes.is_empty());
        assert!(!contains(&bytes, token.as_bytes()));
        // The identity "sealer" was refused, so no copy is left at all (the
        // earlier good one held the same, now replaced, session).
        let sdk = sdk_at(dir.path(), SERVER);
        assert_eq!(sealed_count(&sdk), 0);
    }

    #[tokio::test]
    async fn a_failing_sealer_keeps_the_session_in_memory_only() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        let scripted = Arc::new(Scripted::new());
        sdk.set_session_sealer(scripted.clone());
        install(&sdk, "ann", "dtr_first_session").await;
        assert_eq!(sealed_count(&sdk), 1);
        // The next seal fails: the old copy (an older refresh token) must go.
        *scripted.seal.lock().unwrap() = Some(PlatformKeyError::Other {
            reason: "keystore busy".into(),
        });
        install(&sdk, "ann", "dtr_second_session").await;
        assert_eq!(sdk.session().await, Some(info("ann")));
        assert_eq!(sealed_count(&sdk), 0);

        // A sealer whose output does not open back is not trusted either.
        *scripted.seal.lock().unwrap() = None;
        scripted
            .open
            .lock()
            .unwrap()
            .push(Ok(b"something else".to_vec()));
        install(&sdk, "ann", "dtr_third_session").await;
        assert_eq!(sealed_count(&sdk), 0);
    }

    #[tokio::test]
    async fn a_copy_that_does_not_open_signs_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        drop(sdk);

        // The state folder on another phone: the sealer's key is not there.
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let other = sdk_at(copy.path(), SERVER);
        let recorder = observe(&other);
        other.set_session_sealer(sealer(2));
        assert_eq!(other.active_account().as_deref(), Some("ann"));
        assert_eq!(
            other.access_token().await,
            Err(DeviceTrustError::NotSignedIn)
        );
        assert_eq!(seen(&recorder), vec![("ann".to_owned(), None)]);
        assert_eq!(other.active_account(), None);
        assert_eq!(sealed_count(&other), 0);
        // No loop: the next calls are simply signed out, told nothing new.
        assert_eq!(other.session().await, None);
        assert_eq!(
            other.switch_account("ann").await,
            Err(DeviceTrustError::NotSignedIn)
        );
        assert_eq!(seen(&recorder).len(), 1);
        assert!(!other.accounts().await.unwrap()[0].signed_in);

        // Garbage from `open` is the same.
        let sdk = sdk_at(dir.path(), SERVER);
        let scripted = Arc::new(Scripted::new());
        scripted.open.lock().unwrap().push(Ok(vec![0xff; 40]));
        sdk.set_session_sealer(scripted);
        assert_eq!(sdk.session().await, None);
        assert_eq!(sealed_count(&sdk), 0);
    }

    #[tokio::test]
    async fn a_key_out_of_reach_for_now_keeps_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        let scripted = Arc::new(Scripted::new());
        sdk.set_session_sealer(scripted.clone());
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        drop(sdk);

        let sdk = sdk_at(dir.path(), SERVER);
        let recorder = observe(&sdk);
        sdk.set_session_sealer(scripted.clone());
        // iOS before the first unlock: the Keychain item is out of reach.
        scripted
            .open
            .lock()
            .unwrap()
            .push(Err(PlatformKeyError::BiometricUnavailable {
                reason: "device locked".into(),
            }));
        assert_eq!(sdk.session().await, None);
        assert_eq!(sealed_count(&sdk), 1);
        assert!(seen(&recorder).is_empty());
        // Unlocked: the next call restores it.
        assert_eq!(sdk.session().await, Some(info("ann")));
    }

    #[tokio::test]
    async fn a_copy_moved_to_another_account_or_server_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        install(&sdk, "bob", "dtr_bob_0123456789").await;
        let ann = sdk.inner.state.sealed_session("ann").unwrap().unwrap();
        // Bob's row now holds Ann's copy (someone with the files).
        sdk.inner
            .state
            .save_sealed("bob", &ann.sealed, ann.expires_at, now())
            .unwrap();
        drop(sdk);

        let sdk = sdk_at(dir.path(), SERVER);
        let recorder = observe(&sdk);
        sdk.set_session_sealer(sealer(1));
        assert_eq!(
            sdk.switch_account("bob").await,
            Err(DeviceTrustError::NotSignedIn)
        );
        assert_eq!(seen(&recorder), vec![("bob".to_owned(), None)]);
        assert_eq!(sdk.switch_account("ann").await, Ok(info("ann")));
        drop(sdk);

        // The same files under an SDK of another server.
        let elsewhere = sdk_at(dir.path(), "http://127.0.0.1:10");
        elsewhere.set_session_sealer(sealer(1));
        assert_eq!(elsewhere.switch_account("ann").await.ok(), None);
        assert_eq!(sealed_count(&elsewhere), 0);
    }

    #[tokio::test]
    async fn one_session_per_account_switch_and_sign_out_one() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        let recorder = observe(&sdk);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        install(&sdk, "bob", "dtr_bob_0123456789").await;
        assert_eq!(sdk.active_account().as_deref(), Some("bob"));
        assert_eq!(sdk.access_token().await.unwrap(), "dta_bob");

        assert_eq!(sdk.switch_account("ANN").await, Ok(info("ann")));
        assert_eq!(sdk.access_token().await.unwrap(), "dta_ann");
        let listed = sdk.accounts().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|a| a.signed_in));
        assert_eq!(
            listed
                .iter()
                .filter(|a| a.active)
                .map(|a| &a.user_id)
                .collect::<Vec<_>>(),
            vec!["ann"]
        );
        // An unknown name is not signed in, and leaves nothing behind.
        assert_eq!(
            sdk.switch_account("nobody").await,
            Err(DeviceTrustError::NotSignedIn)
        );
        assert!(!sdk.slot_users().contains(&"nobody".to_owned()));

        // Signing Bob out (the server is unreachable: signed out here all
        // the same) leaves Ann signed in and active.
        assert!(matches!(
            sdk.sign_out_account("bob").await,
            Err(DeviceTrustError::Network { .. })
        ));
        assert_eq!(sdk.active_account().as_deref(), Some("ann"));
        assert_eq!(sdk.inner.state.sealed_session("bob").unwrap(), None);
        assert_eq!(
            sdk.switch_account("bob").await,
            Err(DeviceTrustError::NotSignedIn)
        );
        // Signing the active account out leaves none active.
        let _ = sdk.sign_out().await;
        assert_eq!(sdk.active_account(), None);
        assert_eq!(sdk.access_token().await, Err(DeviceTrustError::NotSignedIn));
        assert_eq!(sealed_count(&sdk), 0);
        let ends: Vec<_> = seen(&recorder)
            .into_iter()
            .filter(|(_, s)| s.is_none())
            .map(|(u, _)| u)
            .collect();
        assert_eq!(ends, vec!["bob", "ann"]);
        // Both stay listed, signed out, for the picker.
        assert_eq!(sdk.accounts().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn sign_out_all_signs_out_restored_and_unrestored_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        install(&sdk, "bob", "dtr_bob_0123456789").await;
        drop(sdk);
        let sdk = sdk_at(dir.path(), SERVER);
        sdk.set_session_sealer(sealer(1));
        // Nothing opened yet; both sealed copies still go.
        assert!(sdk.sign_out_all().await.is_err(), "unreachable server");
        assert_eq!(sealed_count(&sdk), 0);
        assert_eq!(sdk.active_account(), None);
        assert!(sdk.accounts().await.unwrap().iter().all(|a| !a.signed_in));
    }

    fn device(user: &str) -> DeviceRecord {
        DeviceRecord {
            enrolment: LocalEnrolment {
                user_id: user.into(),
                device_id: format!("dev-{user}"),
                device_name: "phone".into(),
                key_storage: KeyStorage::Software,
                user_verification: UserVerification::None,
                trusted_until: crate::model::at(now() + 86_400),
                registered_at: crate::model::at(now()),
            },
            key_alias: format!("alias-{user}"),
            public_key: vec![4; 65],
        }
    }

    /// Runs `call` on the SDK while the server holds its first answer,
    /// switches to `to` meanwhile, then lets the answer go.
    async fn switch_during<T: Send + 'static>(
        sdk: &DeviceTrust,
        to: &str,
        arrived: std::sync::mpsc::Receiver<String>,
        gate: std::sync::mpsc::Sender<()>,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let task = tokio::spawn(call);
        let line = tokio::task::spawn_blocking(move || arrived.recv().unwrap())
            .await
            .unwrap();
        assert!(!line.is_empty());
        sdk.switch_account(to).await.unwrap();
        gate.send(()).unwrap();
        task.await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_list_fetched_for_one_account_never_touches_another() {
        use crate::test_server::{serve, Reply};
        use std::sync::mpsc::channel;
        let (arrived_tx, arrived) = channel();
        let (gate, gate_rx) = channel();
        // Ann's device list: she has no trusted device.
        let (url, _server) = serve(vec![Reply {
            status: 200,
            body: br#"{"devices": []}"#.to_vec(),
            arrived: Some(arrived_tx),
            gate: Some(gate_rx),
        }]);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        install(&sdk, "bob", "dtr_bob_0123456789").await;
        sdk.inner.state.save_device(&device("bob")).unwrap();
        install(&sdk, "ann", "dtr_ann_0123456789").await;

        // Ann's settings screen lists her devices; the user switches to Bob
        // while the list is on its way.
        let listing = sdk.clone();
        let listed = switch_during(&sdk, "bob", arrived, gate, async move {
            listing.trusted_devices().await
        })
        .await;
        assert_eq!(listed.unwrap(), vec![]);
        // Ann's list says nothing about Bob's biometric sign-in.
        assert!(
            sdk.inner.state.device("bob").unwrap().is_some(),
            "Bob's biometric sign-in was forgotten because of Ann's device list"
        );
    }

    const ANN_SIGNED_IN: &str = r#"{"status": "authenticated", "session": {
        "access_token": "dta_late", "expires_in": 900, "refresh_token": "dtr_late",
        "refresh_expires_in": 3600, "user_id": "ann", "amr": ["pwd", "otp"],
        "auth_time": 1700000000}}"#;

    /// A password sign-in of Ann whose answer the server holds until the
    /// test lets it go; `then` answer the requests that follow, in order.
    /// Returns the URL, "the sign-in arrived", its gate, and one "arrived"
    /// per following reply.
    #[allow(clippy::type_complexity)]
    fn held_sign_in(
        then: usize,
    ) -> (
        String,
        std::sync::mpsc::Receiver<String>,
        std::sync::mpsc::Sender<()>,
        Vec<std::sync::mpsc::Receiver<String>>,
    ) {
        use crate::test_server::{serve, Reply};
        use std::sync::mpsc::channel;
        let (arrived_tx, arrived) = channel();
        let (gate, gate_rx) = channel();
        let mut replies = vec![Reply {
            status: 200,
            body: ANN_SIGNED_IN.as_bytes().to_vec(),
            arrived: Some(arrived_tx),
            gate: Some(gate_rx),
        }];
        let mut later = Vec::new();
        for _ in 0..then {
            let (tx, rx) = channel();
            let mut reply = Reply::json(200, "{}");
            reply.arrived = Some(tx);
            replies.push(reply);
            later.push(rx);
        }
        let (url, _server) = serve(replies);
        (url, arrived, gate, later)
    }

    async fn arrived(rx: std::sync::mpsc::Receiver<String>) -> Option<String> {
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)).ok())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_in_in_flight_does_not_outlive_signing_everyone_out() {
        let (url, sign_in_arrived, gate, mut later) = held_sign_in(2);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        sdk.set_session_sealer(sealer(1));
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        let recorder = observe(&sdk);

        let signing_in = sdk.clone();
        let task = tokio::spawn(async move { signing_in.sign_in_with_password("ann", "pw").await });
        assert!(arrived(sign_in_arrived).await.is_some());
        // The app signs everyone out (the user tapped "log out", an
        // inactivity timer ran out) while the answer is on its way.
        sdk.sign_out_all().await.unwrap();
        gate.send(()).unwrap();
        let late = task.await.unwrap();

        assert_eq!(late, Err(DeviceTrustError::NotSignedIn));
        assert_eq!(sdk.session().await, None);
        assert_eq!(sdk.active_account(), None);
        assert_eq!(sealed_count(&sdk), 0);
        assert_eq!(seen(&recorder), vec![("ann".to_owned(), None)]);
        // The old session's logout, then the late one's: the server ends it.
        let old = later.remove(0);
        assert!(arrived(old).await.unwrap().contains("/v1/session/logout"));
        let revoked = arrived(later.remove(0)).await;
        assert!(
            revoked.is_some_and(|l| l.contains("/v1/session/logout")),
            "the late session was not revoked"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_on_its_way_does_not_outlive_logging_out_of_the_flow() {
        use crate::test_server::{serve, Reply};
        use std::sync::mpsc::channel;
        // A first sign-in (no account active yet): password, then the code.
        let (arrived_tx, arrived_rx) = channel();
        let (gate, gate_rx) = channel();
        let (url, _server) = serve(vec![
            Reply::json(
                200,
                r#"{"status": "second_factor_required", "login_id": "l1",
                    "expires_at": 4102444800, "methods": [
                    {"type": "otp", "channel": "email", "destination": "a@x"}]}"#,
            ),
            Reply {
                status: 200,
                body: ANN_SIGNED_IN.as_bytes().to_vec(),
                arrived: Some(arrived_tx),
                gate: Some(gate_rx),
            },
            Reply::json(200, "{}"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        assert!(matches!(
            sdk.sign_in_with_password("ann", "pw").await,
            Ok(crate::model::SignInStep::SecondFactorRequired { .. })
        ));
        let verifying = sdk.clone();
        let task = tokio::spawn(async move { verifying.verify_otp("123456").await });
        assert!(arrived(arrived_rx).await.is_some());
        // "Log out" on the code screen: the flow is abandoned.
        sdk.sign_out().await.unwrap();
        gate.send(()).unwrap();
        assert_eq!(task.await.unwrap(), Err(DeviceTrustError::NotSignedIn));
        assert_eq!(sdk.session().await, None);
        assert_eq!(sdk.active_account(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_in_in_flight_does_not_bring_a_removed_account_back() {
        let (url, sign_in_arrived, gate, mut later) = held_sign_in(1);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        sdk.inner.state.account_signed_in("ann", 1_000).unwrap();
        let recorder = observe(&sdk);

        let signing_in = sdk.clone();
        let task = tokio::spawn(async move { signing_in.sign_in_with_password("ann", "pw").await });
        assert!(arrived(sign_in_arrived).await.is_some());
        sdk.remove_account("ann").await.unwrap();
        gate.send(()).unwrap();

        assert_eq!(task.await.unwrap(), Err(DeviceTrustError::NotSignedIn));
        assert_eq!(sdk.active_account(), None);
        assert!(sdk.accounts().await.unwrap().is_empty(), "Ann is back");
        assert!(seen(&recorder).is_empty());
        assert!(arrived(later.remove(0)).await.is_some(), "not revoked");
        // A sign-in started after the removal is the user's wish: kept.
        // (Its answer would come from a server; the bound is the point.)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_in_cancelled_after_its_request_was_sent_keeps_nothing() {
        let (url, sign_in_arrived, gate, _) = held_sign_in(0);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        sdk.set_session_sealer(sealer(1));
        let recorder = observe(&sdk);
        let signing_in = sdk.clone();
        let task = tokio::spawn(async move { signing_in.sign_in_with_password("ann", "pw").await });
        assert!(arrived(sign_in_arrived).await.is_some());
        // The app gives up (its coroutine or task cancelled) while the
        // server has opened the session and is answering.
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        gate.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert_eq!(sdk.session().await, None);
        assert_eq!(sdk.active_account(), None);
        assert_eq!(sealed_count(&sdk), 0);
        assert!(sdk.accounts().await.unwrap().is_empty());
        assert!(seen(&recorder).is_empty());
        assert_eq!(
            sdk.switch_account("ann").await,
            Err(DeviceTrustError::NotSignedIn)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_id_cannot_steer_the_request_elsewhere() {
        use crate::test_server::{serve, Reply};
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reply = Reply::json(200, "{}");
        reply.arrived = Some(tx);
        let (url, _server) = serve(vec![reply]);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        install(&sdk, "ann", "dtr_ann_0123456789").await;
        // "Remove this device" with an id from a deep link or a tampered
        // list: resolved as a URL it would be DELETE /v1/account/mobile.
        for id in [
            "../account/mobile",
            "a/b",
            "x?y=1",
            "",
            "%2e%2e",
            &"d".repeat(65),
        ] {
            assert!(
                matches!(
                    sdk.remove_device(id).await,
                    Err(DeviceTrustError::InvalidInput { .. })
                ),
                "{id:?}"
            );
        }
        let sent =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_millis(300)).ok())
                .await
                .unwrap();
        assert_eq!(sent, None, "a request went out");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_observer_that_fails_does_not_turn_a_sign_in_into_an_error() {
        // A Kotlin or Python observer that throws reaches Rust as a panic
        // (uniffi's rule for a callback that returns nothing).
        struct Throws;
        impl SessionObserver for Throws {
            fn session_changed(&self, _: String, _: Option<SessionInfo>) {
                panic!("Callback interface failure: NullPointerException");
            }
        }
        let (url, sign_in_arrived, gate, _) = held_sign_in(0);
        gate.send(()).unwrap();
        drop(sign_in_arrived);
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), &url);
        sdk.set_session_observer(Arc::new(Throws));
        let signing_in = sdk.clone();
        let step = tokio::spawn(async move { signing_in.sign_in_with_password("ann", "pw").await })
            .await
            .map_err(|e| e.is_panic());
        // The session is kept either way: the app must hear of it.
        assert_eq!(sdk.active_account().as_deref(), Some("ann"));
        assert!(
            matches!(step, Ok(Ok(crate::model::SignInStep::SignedIn { .. }))),
            "the sign-in kept a session but reported {step:?}"
        );
    }

    /// A key store whose prompt stays on screen until the call is dropped.
    struct PromptStays {
        inner: SoftwareKeyStore,
        alias: Mutex<Option<String>>,
        shown: tokio::sync::mpsc::UnboundedSender<()>,
    }

    #[async_trait::async_trait]
    impl crate::keystore::PlatformKeyStore for PromptStays {
        async fn generate_key(
            &self,
            alias: String,
            user_verification: UserVerification,
            challenge: Vec<u8>,
        ) -> std::result::Result<crate::keystore::GeneratedKey, PlatformKeyError> {
            *self.alias.lock().unwrap() = Some(alias.clone());
            self.inner
                .generate_key(alias, user_verification, challenge)
                .await
        }
        async fn sign(
            &self,
            _: String,
            _: Vec<u8>,
            _: crate::keystore::PromptText,
        ) -> std::result::Result<Vec<u8>, PlatformKeyError> {
            let _ = self.shown.send(());
            std::future::pending().await
        }
        async fn delete_key(&self, alias: String) -> std::result::Result<(), PlatformKeyError> {
            self.inner.delete_key(alias).await
        }
        async fn key_exists(&self, alias: String) -> std::result::Result<bool, PlatformKeyError> {
            self.inner.key_exists(alias).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn enabling_biometric_sign_in_cancelled_at_the_prompt_leaves_no_key() {
        use crate::keystore::PlatformKeyStore;
        use crate::test_server::{serve, Reply};
        let (url, _server) = serve(vec![Reply::json(
            200,
            r#"{"registration_id": "r1", "challenge": "AAAAAAAAAAAAAAAAAAAAAA"}"#,
        )]);
        let dir = tempfile::tempdir().unwrap();
        let (shown, mut on_screen) = tokio::sync::mpsc::unbounded_channel();
        let keys = Arc::new(PromptStays {
            inner: SoftwareKeyStore::new(dir.path().join("keys"), &[9u8; 32]).unwrap(),
            alias: Mutex::new(None),
            shown,
        });
        let mut config = Config::new(&url, "https://rp.test", dir.path().to_str().unwrap());
        config.allow_insecure_http = true;
        let sdk = DeviceTrust::new(config, keys.clone()).unwrap();
        install(&sdk, "ann", "dtr_ann_0123456789").await;

        let enabling = sdk.clone();
        let task = tokio::spawn(async move {
            enabling
                .enable_biometric_sign_in(
                    "phone",
                    UserVerification::None,
                    crate::keystore::PromptText::default(),
                )
                .await
        });
        on_screen.recv().await.unwrap();
        // The app leaves the screen: its coroutine or task is cancelled.
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let alias = keys.alias.lock().unwrap().clone().unwrap();
        let mut gone = false;
        for _ in 0..50 {
            if !keys.inner.key_exists(alias.clone()).await.unwrap() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the new key was left in the key store");
        assert!(sdk.inner.state.device("ann").unwrap().is_none());
    }

    #[tokio::test]
    async fn the_accounts_on_a_phone_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        let state = &sdk.inner.state;
        for i in 0..MAX_ACCOUNTS {
            state
                .account_signed_in(&format!("user{i}"), 1_000 + i as i64)
                .unwrap();
        }
        state.save_device(&device("user0")).unwrap();
        state
            .set_account_profile("user1", "One", "one@example.com")
            .unwrap();
        // A known account needs no room; a new one evicts the oldest
        // without biometric sign-in (user1: user0 has it).
        sdk.make_room_for("user3").await;
        assert_eq!(sdk.accounts().await.unwrap().len(), MAX_ACCOUNTS);
        sdk.check_room_for("newcomer").unwrap();
        sdk.make_room_for("newcomer").await;
        let users: Vec<String> = sdk
            .accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.user_id)
            .collect();
        assert_eq!(users.len(), MAX_ACCOUNTS - 1);
        assert!(users.contains(&"user0".to_owned()));
        assert!(!users.contains(&"user1".to_owned()));

        // Every account with biometric sign-in: a new one is refused before
        // any request, a known one is not.
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        for i in 0..MAX_ACCOUNTS {
            sdk.inner
                .state
                .save_device(&device(&format!("user{i}")))
                .unwrap();
        }
        assert!(matches!(
            sdk.check_room_for("newcomer"),
            Err(DeviceTrustError::InvalidInput { .. })
        ));
        sdk.check_room_for("user5").unwrap();
        assert!(matches!(
            sdk.sign_in_with_password("newcomer", "pw").await,
            Err(DeviceTrustError::InvalidInput { .. })
        ));
        let listed = sdk.accounts().await.unwrap();
        assert!(listed
            .iter()
            .all(|a| a.biometric_enabled && a.biometric_available));
        assert!(listed.iter().all(|a| a.last_sign_in_at.is_none()));
    }

    #[tokio::test]
    async fn the_picker_shows_what_this_phone_knows() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = sdk_at(dir.path(), SERVER);
        let state = &sdk.inner.state;
        state.account_signed_in("ann", 2_000).unwrap();
        state.account_signed_in("bob", 3_000).unwrap();
        state
            .set_account_profile("ann", "Ann", "ann@example.com")
            .unwrap();
        let mut expired = device("ann");
        expired.enrolment.trusted_until = crate::model::at(now() - 1);
        state.save_device(&expired).unwrap();
        // A profile for an account never signed in here makes no row.
        state
            .set_account_profile("eve", "Eve", "eve@example.com")
            .unwrap();
        let listed = sdk.accounts().await.unwrap();
        assert_eq!(
            listed,
            vec![
                KnownAccount {
                    user_id: "bob".into(),
                    name: None,
                    email: None,
                    biometric_enabled: false,
                    biometric_available: false,
                    signed_in: false,
                    active: false,
                    last_sign_in_at: Some(system_time(3_000)),
                },
                KnownAccount {
                    user_id: "ann".into(),
                    name: Some("Ann".into()),
                    email: Some("ann@example.com".into()),
                    biometric_enabled: true,
                    biometric_available: false,
                    signed_in: false,
                    active: false,
                    last_sign_in_at: Some(system_time(2_000)),
                },
            ]
        );
    }
}
