//! The session: tokens in memory only, single-flight refresh, authorised
//! calls that refresh once on a 401, sign-out, and what settles after a
//! sign-in.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::MutexGuard;

use super::{map_call, now, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::http::{CallError, Repeat};
use crate::model::{at, AuthMethod, SessionInfo, SignInStep};
use crate::wire::WireSession;

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN_S: i64 = 60;

pub(super) struct ActiveSession {
    access_token: String,
    access_expires_at: i64,
    refresh_token: String,
    info: SessionInfo,
}

fn active(s: WireSession) -> ActiveSession {
    ActiveSession {
        access_expires_at: now() + s.expires_in,
        info: SessionInfo {
            user_id: s.user_id,
            auth_methods: AuthMethod::list(&s.amr),
            auth_time: at(s.auth_time),
        },
        access_token: s.access_token,
        refresh_token: s.refresh_token,
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// The current session, if any (memory only: no network, no waiting).
    pub fn session(&self) -> Option<SessionInfo> {
        self.inner
            .session_info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A valid access token for the app's own API calls, refreshed when it
    /// has under a minute left. Concurrent callers share one refresh.
    pub async fn access_token(&self) -> Result<String> {
        let mut guard = self.inner.session.lock().await;
        let session = guard.as_ref().ok_or(DeviceTrustError::NotSignedIn)?;
        if session.access_expires_at - REFRESH_MARGIN_S > now() {
            return Ok(session.access_token.clone());
        }
        self.refresh_locked(&mut guard).await
    }

    /// Signs out: the session is forgotten here at once, then revoked on the
    /// server. Biometric sign-in stays enabled.
    pub async fn sign_out(&self) -> Result<()> {
        let session = {
            let mut guard = self.inner.session.lock().await;
            let taken = guard.take();
            self.keep(&mut guard, None);
            taken
        };
        self.clear_pending();
        self.set_contact_change(None);
        let Some(session) = session else {
            return Ok(());
        };
        match self
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/session/logout",
                None,
                Some(&session.access_token),
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
}

impl DeviceTrust {
    /// Replaces the session under its lock, and what `session()` answers.
    /// Synchronous: nothing can cancel it halfway.
    fn keep(&self, guard: &mut Option<ActiveSession>, session: Option<ActiveSession>) {
        let info = session.as_ref().map(|s| s.info.clone());
        *guard = session;
        *self
            .inner
            .session_info
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// Forgets the session here without telling the server (it revoked it).
    pub(super) async fn drop_session(&self) {
        let mut guard = self.inner.session.lock().await;
        self.keep(&mut guard, None);
        drop(guard);
        self.set_contact_change(None);
    }

    async fn refresh_locked(
        &self,
        guard: &mut MutexGuard<'_, Option<ActiveSession>>,
    ) -> Result<String> {
        let Some(current) = guard.as_ref() else {
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
                self.keep(guard, Some(active(s)));
                Ok(token)
            }
            Err(CallError::Api(e)) if e.status == 401 => {
                self.keep(guard, None);
                Err(DeviceTrustError::NotSignedIn)
            }
            Err(e) => Err(map_call(e)),
        }
    }

    /// A call with the bearer token; a 401 refreshes once and retries (the
    /// rejected request did not run, so repeating it is safe).
    pub(super) async fn authed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T> {
        let token = self.access_token().await?;
        let http = &self.inner.http;
        match http
            .call(method.clone(), path, body, Some(&token), repeat)
            .await
        {
            Err(CallError::Api(e)) if e.code == "unauthorized" => {
                let fresh = {
                    let mut guard = self.inner.session.lock().await;
                    match guard.as_ref() {
                        None => return Err(DeviceTrustError::NotSignedIn),
                        Some(s) if s.access_token != token => s.access_token.clone(),
                        Some(_) => self.refresh_locked(&mut guard).await?,
                    }
                };
                match http.call(method, path, body, Some(&fresh), repeat).await {
                    Err(CallError::Api(e)) if e.code == "unauthorized" => {
                        let mut guard = self.inner.session.lock().await;
                        self.keep(&mut guard, None);
                        Err(DeviceTrustError::NotSignedIn)
                    }
                    other => other.map_err(map_call),
                }
            }
            other => other.map_err(map_call),
        }
    }

    /// Settles what waited for a sign-in (queued device removals, this
    /// phone's record) with the new session's token, then keeps the session
    /// as the very last step, with no await after it: if the caller cancels
    /// the call (drops this future) before it completes, no session is kept
    /// that no screen knows of.
    pub(super) async fn signed_in(&self, session: WireSession) -> Result<SignInStep> {
        let session = active(session);
        self.settle_after_sign_in(&session.info.user_id, &session.access_token)
            .await?;
        let info = session.info.clone();
        let mut guard = self.inner.session.lock().await;
        self.keep(&mut guard, Some(session));
        Ok(SignInStep::SignedIn { session: info })
    }
}
