//! Sessions: one per account, tokens in memory (the refresh token also
//! sealed on disk when the app gave a `SessionSealer`, see `accounts.rs`),
//! refreshes serialised per account, authorised calls that refresh once on
//! a 401, sign-out, and what settles after a sign-in.

use std::collections::HashMap;
use std::sync::Arc;

use crate::http::Method;
use serde_json::{json, Value};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{map_call, now, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::http::{CallError, Repeat};
use crate::model::{at, AuthMethod, SessionInfo, SignInStep};
use crate::wire::WireSession;

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN_S: i64 = 60;

pub(super) struct ActiveSession {
    /// Empty after a restore: the access token is never persisted, so the
    /// first call refreshes.
    pub(super) access_token: String,
    pub(super) access_expires_at: i64,
    pub(super) refresh_token: String,
    /// The session's absolute end as the server said (Unix seconds).
    pub(super) expires_at: Option<i64>,
    /// The server's `amr` and `auth_time` as sent: what a sealed copy keeps.
    pub(super) amr: Vec<String>,
    pub(super) auth_time: i64,
    pub(super) info: SessionInfo,
}

/// The session as apps see it, from what the server said.
pub(super) fn session_info(user_id: &str, amr: &[String], auth_time: i64) -> SessionInfo {
    SessionInfo {
        user_id: user_id.to_owned(),
        auth_methods: AuthMethod::list(amr),
        auth_time: at(auth_time),
    }
}

pub(super) fn active(s: WireSession) -> ActiveSession {
    let now = now();
    ActiveSession {
        // The server's numbers, not trusted to fit: no overflow.
        access_expires_at: now.saturating_add(s.expires_in),
        expires_at: s.refresh_expires_in.map(|left| now.saturating_add(left)),
        info: session_info(&s.user_id.to_ascii_lowercase(), &s.amr, s.auth_time),
        amr: s.amr,
        auth_time: s.auth_time,
        access_token: s.access_token,
        refresh_token: s.refresh_token,
    }
}

/// One account's session. Its async mutex is held across a refresh, so
/// refreshes of one account are single-flight (the server spends a refresh
/// token on first use and revokes the session when it comes back), while
/// other accounts refresh independently. Never held across a key-store
/// call or an observer call.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) session: Option<ActiveSession>,
    /// Whether the sealed copy was looked at (see `accounts.rs`): a restore
    /// is tried once per account and process, at the first call needing it.
    pub(super) loaded: bool,
}

/// Every account's slot, and the active account (lower-cased user ids).
#[derive(Default)]
pub(super) struct Sessions {
    slots: HashMap<String, Arc<Mutex<Slot>>>,
    pub(super) active: Option<String>,
}

impl Sessions {
    pub(super) fn slot_if_any(&self, user_id: &str) -> Option<Arc<Mutex<Slot>>> {
        self.slots.get(user_id).cloned()
    }

    /// Drops a forgotten account's slot (a holder keeps its own `Arc`).
    pub(super) fn remove(&mut self, user_id: &str) {
        self.slots.remove(user_id);
    }
}

/// A session change to report to the observer once the locks are released.
pub(super) type Change = (String, Option<SessionInfo>);

impl DeviceTrust {
    pub(super) fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn slot(&self, user_id: &str) -> Arc<Mutex<Slot>> {
        self.sessions()
            .slots
            .entry(user_id.to_owned())
            .or_default()
            .clone()
    }

    /// The account's slot, locked, with its sealed session restored when
    /// this is the first call needing it.
    pub(super) async fn loaded_slot(
        &self,
        user_id: &str,
        changes: &mut Vec<Change>,
    ) -> OwnedMutexGuard<Slot> {
        let mut slot = self.slot(user_id).lock_owned().await;
        if !slot.loaded {
            self.restore(user_id, &mut slot, changes);
        }
        slot
    }

    /// The user ids with a slot (a live session, or one looked at).
    pub(super) fn slot_users(&self) -> Vec<String> {
        self.sessions().slots.keys().cloned().collect()
    }

    /// `user_id`'s session, if any (no network).
    pub(super) async fn session_of(&self, user_id: &str) -> Option<SessionInfo> {
        let mut changes = Vec::new();
        let info = {
            let slot = self.loaded_slot(user_id, &mut changes).await;
            slot.session.as_ref().map(|s| s.info.clone())
        };
        self.notify(changes);
        info
    }

    pub(super) async fn access_token_of(&self, user_id: &str) -> Result<String> {
        let mut changes = Vec::new();
        let result = {
            let mut slot = self.loaded_slot(user_id, &mut changes).await;
            match slot.session.as_ref() {
                None => Err(DeviceTrustError::NotSignedIn),
                Some(s) if s.access_expires_at - REFRESH_MARGIN_S > now() => {
                    Ok(s.access_token.clone())
                }
                Some(_) => self.refresh_locked(user_id, &mut slot, &mut changes).await,
            }
        };
        self.notify(changes);
        result
    }

    /// Ends `user_id`'s session here, then on the server. A session restored
    /// from its sealed copy has no access token yet: one refresh gets one so
    /// the server can revoke it (a refused refresh means already revoked).
    pub(super) async fn end_session(&self, user_id: &str) -> Result<()> {
        let mut changes = Vec::new();
        let token = {
            let mut slot = self.loaded_slot(user_id, &mut changes).await;
            let token = match slot.session.as_ref() {
                None => Ok(None),
                Some(s) if s.access_expires_at - REFRESH_MARGIN_S > now() => {
                    Ok(Some(s.access_token.clone()))
                }
                Some(_) => match self.refresh_locked(user_id, &mut slot, &mut changes).await {
                    Ok(token) => Ok(Some(token)),
                    // Refused: the server ended it already.
                    Err(DeviceTrustError::NotSignedIn) => Ok(None),
                    // Unreachable: signed out here; the server's copy ends
                    // with its lifetime.
                    Err(e) => Err(e),
                },
            };
            let had = slot.session.take().is_some();
            self.forget_session_locked(user_id, had, &mut changes);
            token
        };
        self.notify(changes);
        let Some(token) = token? else {
            return Ok(());
        };
        match self
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/session/logout",
                None,
                Some(&token),
                Repeat::Once,
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already expired or revoked: the outcome is the same.
            Err(CallError::Api(e)) if e.code == "unauthorized" => Ok(()),
            Err(e) => Err(map_call(e)),
        }
    }

    /// Forgets `user_id`'s session here without telling the server (it
    /// revoked it: device removed, password reset).
    pub(super) async fn drop_session(&self, user_id: &str) {
        let user_id = user_id.to_ascii_lowercase();
        if !self.may_have_session(&user_id).unwrap_or(true) {
            return;
        }
        let mut changes = Vec::new();
        {
            let mut slot = self.slot(&user_id).lock_owned().await;
            let had = slot.session.take().is_some();
            // Nothing to restore any more, whatever the sealed copy says.
            slot.loaded = true;
            self.forget_session_locked(&user_id, had, &mut changes);
        }
        self.notify(changes);
    }

    /// What ends with a session, its slot lock held: the sealed copy, the
    /// active mark, a contact change waiting for its code.
    fn forget_session_locked(&self, user_id: &str, had: bool, changes: &mut Vec<Change>) {
        if let Err(e) = self.inner.state.delete_sealed(user_id) {
            tracing::warn!(error = %e, "could not delete a sealed session");
        }
        self.deactivate(user_id);
        if self
            .contact_change_owner()
            .is_some_and(|owner| owner.eq_ignore_ascii_case(user_id))
        {
            self.set_contact_change(None);
        }
        if had {
            changes.push((user_id.to_owned(), None));
        }
    }

    async fn refresh_locked(
        &self,
        user_id: &str,
        slot: &mut OwnedMutexGuard<Slot>,
        changes: &mut Vec<Change>,
    ) -> Result<String> {
        let Some(current) = slot.session.as_ref() else {
            return Err(DeviceTrustError::NotSignedIn);
        };
        let body = json!({"refresh_token": current.refresh_token});
        match self
            .inner
            .http
            .call::<WireSession>(
                Method::POST,
                "/v1/session/refresh",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
        {
            Ok(s) => {
                let token = s.access_token.clone();
                let fresh = active(s);
                // The old sealed copy holds a spent token: replace it before
                // anything else can run for this account.
                self.persist(user_id, &fresh);
                changes.push((user_id.to_owned(), Some(fresh.info.clone())));
                slot.session = Some(fresh);
                Ok(token)
            }
            Err(CallError::Api(e)) if e.status == 401 => {
                // Revoked, expired, or reused: signed out for good.
                slot.session = None;
                self.forget_session_locked(user_id, true, changes);
                Err(DeviceTrustError::NotSignedIn)
            }
            Err(e) => Err(map_call(e)),
        }
    }

    /// A call with the active account's bearer token.
    pub(super) async fn authed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T> {
        let user = self.active_user().ok_or(DeviceTrustError::NotSignedIn)?;
        self.authed_as(&user, method, path, body, repeat).await
    }

    /// A call with `user_id`'s bearer token; a 401 refreshes once and
    /// retries (the rejected request did not run, so repeating it is safe).
    pub(super) async fn authed_as<T: serde::de::DeserializeOwned>(
        &self,
        user_id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T> {
        let token = self.access_token_of(user_id).await?;
        let http = &self.inner.http;
        match http
            .call(method.clone(), path, body, Some(&token), repeat)
            .await
        {
            Err(CallError::Api(e)) if e.code == "unauthorized" => {
                let mut changes = Vec::new();
                let fresh = {
                    let mut slot = self.loaded_slot(user_id, &mut changes).await;
                    match slot.session.as_ref() {
                        None => Err(DeviceTrustError::NotSignedIn),
                        Some(s) if s.access_token != token => Ok(s.access_token.clone()),
                        Some(_) => self.refresh_locked(user_id, &mut slot, &mut changes).await,
                    }
                };
                self.notify(changes);
                match http.call(method, path, body, Some(&fresh?), repeat).await {
                    Err(CallError::Api(e)) if e.code == "unauthorized" => {
                        self.drop_session(user_id).await;
                        Err(DeviceTrustError::NotSignedIn)
                    }
                    other => other.map_err(map_call),
                }
            }
            other => other.map_err(map_call),
        }
    }

    /// Keeps the session as this account's (sealed when the app gave a
    /// sealer) and makes the account active — another account's session is
    /// kept — then settles what waited for one: device removals queued
    /// while signed out, and this phone's record. A session whose account
    /// the app signed out or removed after the sign-in `started` is not
    /// kept but ended on the server (`NotSignedIn`).
    pub(super) async fn signed_in(&self, session: WireSession, started: u64) -> Result<SignInStep> {
        let fresh = active(session);
        let info = fresh.info.clone();
        let user = info.user_id.clone();
        if self.signed_out_since(&user, started) {
            return self.refuse_late_session(fresh).await;
        }
        self.make_room_for(&user).await;
        // What waited for a sign-in is settled with the new token first; the
        // session is kept last, with no await after the slot is taken: a
        // caller that cancels (drops this future) before then keeps no
        // session that no screen knows of.
        self.settle_after_sign_in(&user, &fresh.access_token)
            .await?;
        {
            let mut slot = self.slot(&user).lock_owned().await;
            // Checked again with the slot held: a sign-out from now on
            // finds this slot and ends what it holds.
            if self.signed_out_since(&user, started) {
                drop(slot);
                return self.refuse_late_session(fresh).await;
            }
            // Sealed first: a crash before this line leaves the previous
            // copy (a session the server still honours) or none.
            self.persist(&user, &fresh);
            slot.session = Some(fresh);
            slot.loaded = true;
            // Still under the slot's lock, so a removal waiting for it
            // comes after and its forgetting wins.
            if let Err(e) = self.inner.state.account_signed_in(&user, now()) {
                tracing::warn!(error = %e, "could not record the account on this phone");
            }
            self.activate(&user);
        }
        self.notify(vec![(user.clone(), Some(info.clone()))]);
        Ok(SignInStep::SignedIn { session: info })
    }

    /// A session the app no longer wants: ended on the server, best effort
    /// (its token is dropped here whatever the answer).
    async fn refuse_late_session(&self, late: ActiveSession) -> Result<SignInStep> {
        tracing::info!("a sign-in finished after its account was signed out: not kept");
        if let Err(e) = self
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/session/logout",
                None,
                Some(&late.access_token),
                Repeat::Once,
            )
            .await
        {
            tracing::warn!(error = %map_call(e), "a session not kept was not revoked");
        }
        Err(DeviceTrustError::NotSignedIn)
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// The active account's session, if any (no network; restores a sealed
    /// session on first use).
    pub async fn session(&self) -> Option<SessionInfo> {
        let user = self.active_user()?;
        self.session_of(&user).await
    }

    /// A valid access token of the active account for the app's own API
    /// calls, refreshed when it has under a minute left. Concurrent callers
    /// share one refresh.
    pub async fn access_token(&self) -> Result<String> {
        let user = self.active_user().ok_or(DeviceTrustError::NotSignedIn)?;
        self.access_token_of(&user).await
    }

    /// Signs the active account out: its session is forgotten here at once
    /// (and its sealed copy deleted), then revoked on the server. Biometric
    /// sign-in stays enabled; the other accounts stay signed in, and none of
    /// them becomes active by itself. A sign-in in progress is abandoned:
    /// a step of it already on its way keeps no session (`NotSignedIn`).
    pub async fn sign_out(&self) -> Result<()> {
        // "Log out" on a sign-in's own screens abandons it: a step of it
        // already on its way (a code being checked) keeps no session.
        if let Some(super::Flow::SignIn(pending)) = self.flow() {
            self.mark_signed_out(Some(&pending.user_id));
        }
        self.clear_pending();
        self.set_contact_change(None);
        match self.active_user() {
            Some(user) => self.sign_out_account(&user).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LATEST_UNIX_SECS;

    #[test]
    fn a_session_with_absurd_numbers_is_held_without_overflow() {
        let s: WireSession = serde_json::from_value(json!({
            "access_token": "dta", "expires_in": i64::MAX, "refresh_token": "dtr",
            "refresh_expires_in": i64::MAX, "user_id": "Ann", "amr": ["pwd"],
            "auth_time": i64::MAX,
        }))
        .unwrap();
        let held = active(s);
        assert_eq!(held.access_expires_at, i64::MAX);
        assert_eq!(held.expires_at, Some(i64::MAX));
        assert_eq!(
            held.info.auth_time,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(LATEST_UNIX_SECS as u64)
        );
        assert_eq!(held.info.user_id, "ann");
    }
}
