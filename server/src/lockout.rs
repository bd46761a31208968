//! Failed passwords and OTPs, counted per lower-cased user-id string before
//! they are evaluated, and the lock they lead to.
//!
//! Requests run to completion even when their client disconnects (see
//! `app::run_to_completion`), so every counted attempt reaches `fail` or
//! `refund` and is audited; a count left at the threshold by a crash turns
//! into a lock with a true end (see `Store::reserve_attempt`).

use std::net::IpAddr;

use crate::app::AppState;
use crate::error::ApiError;
use crate::storage::{LockoutPolicy, Reservation, User};

impl AppState {
    pub(crate) fn lockout_policy(&self) -> LockoutPolicy {
        let s = self.settings();
        LockoutPolicy {
            threshold: s.lockout_threshold,
            duration_s: s.lockout_duration_s,
            memory_s: s.attempt_memory_s,
        }
    }

    /// Counts the attempt before anything is evaluated; refuses while locked
    /// (423, with the lock's true end) or while attempts in flight already
    /// use up the allowance (429, retry in a second: their verdict decides).
    ///
    /// A refusal writes nothing: a running lock is found by a read, so a
    /// flood against a locked id costs no write and grows no table (it is
    /// logged at debug level only).
    pub(crate) async fn reserve_attempt(&self, key: &str) -> Result<i64, ApiError> {
        self.reserve_attempt_with(key, self.lockout_policy()).await
    }

    /// `reserve_attempt` under other rules (card numbers, recovery).
    pub(crate) async fn reserve_attempt_with(
        &self,
        key: &str,
        policy: LockoutPolicy,
    ) -> Result<i64, ApiError> {
        let now = self.now();
        if let Some(until) = self.store().locked_until(key, now).await? {
            tracing::debug!("attempt refused: locked");
            return Err(ApiError::AccountLocked {
                retry_after_s: until - now,
            });
        }
        match self.store().reserve_attempt(key, now, policy).await? {
            Reservation::Counted(count) => Ok(count),
            Reservation::Locked { until } => Err(ApiError::AccountLocked {
                retry_after_s: until - now,
            }),
            Reservation::InFlight => Err(ApiError::RateLimited { retry_after_s: 1 }),
        }
    }

    /// Takes back a counted attempt that was not a failure.
    pub(crate) async fn refund_attempt(&self, key: &str) -> Result<(), ApiError> {
        Ok(self.store().refund_attempt(key).await?)
    }

    /// A failed password or OTP: the attempt stays counted and audited; the
    /// one that reaches the threshold locks the key and still answers `err`.
    pub(crate) async fn fail(
        &self,
        key: &str,
        count: i64,
        user: Option<&User>,
        ip: IpAddr,
        reason: &str,
        err: ApiError,
    ) -> ApiError {
        let policy = self.lockout_policy();
        self.fail_with(policy, "account_locked", key, count, user, ip, reason, err)
            .await
    }

    /// `fail` under other rules (card numbers, recovery); the lock is
    /// audited as `lock_event`, and only a sign-in lock (`account_locked`)
    /// e-mails the user.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fail_with(
        &self,
        policy: LockoutPolicy,
        lock_event: &str,
        key: &str,
        count: i64,
        user: Option<&User>,
        ip: IpAddr,
        reason: &str,
        err: ApiError,
    ) -> ApiError {
        // A string that is no user's id is not recorded: it may be a
        // password typed into the wrong field.
        let user_id = user.map(|u| u.user_id.as_str());
        let reason = if user.is_some() {
            reason.to_owned()
        } else {
            format!("{reason} unknown_user")
        };
        let mut outcome = self
            .audit("signin_failed", user_id, None, Some(ip), Some(&reason))
            .await;
        // The risk policy learns the failure, and may lock a fresh account
        // under a spread burst sooner (adaptive lockout); never later.
        let threshold = match user_id.filter(|_| lock_event == "account_locked") {
            Some(user_id) => self.risk_failure(user_id, ip, policy.threshold).await,
            None => policy.threshold,
        };
        if count >= threshold && outcome.is_ok() {
            let until = self.now() + policy.duration_s;
            outcome = match self.store().lock(key, until).await {
                Ok(()) => {
                    self.audit(lock_event, user_id, None, Some(ip), Some(&reason))
                        .await
                }
                Err(e) => Err(e.into()),
            };
            if let Some(user) = user.filter(|_| lock_event == "account_locked") {
                self.alert(
                    user,
                    "account_locked",
                    format!(
                        "It stays locked for {} minutes after {} failed attempts; \
                         signing in with your fingerprint or face still works.",
                        policy.duration_s / 60,
                        count
                    ),
                )
                .await;
            }
        }
        match outcome {
            Ok(()) => err,
            Err(e) => e,
        }
    }
}
