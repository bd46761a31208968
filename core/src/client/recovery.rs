//! `Recovery`: getting back in with the security code — the forgotten
//! user ID by e-mail, and a password reset confirmed by a one-time code.

use crate::http::Method;
use serde_json::{json, Value};

use super::{map_call, now, otp_options, DeviceTrust, Flow, PendingRecovery};
use crate::error::{DeviceTrustError, Result};
use crate::http::Repeat;
use crate::input;
use crate::model::*;
use crate::wire::WireRecoveryStarted;

/// "Forgot user ID" and "forgot password", from `DeviceTrust.recovery()`.
/// No session needed. A small handle sharing the DeviceTrust object's state:
/// a password recovery in progress is its flow in progress, so
/// `DeviceTrust.send_otp` sends its code too, and starting a sign-in drops it.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
#[derive(Clone)]
pub struct Recovery {
    client: DeviceTrust,
}

impl Recovery {
    pub(super) fn new(client: DeviceTrust) -> Self {
        Recovery { client }
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl Recovery {
    /// Asks the server to e-mail the user ID(s) registered with `email` and
    /// `security_code`. Always succeeds when the server answers: it never
    /// says whether anything matched (tell the user "if the details match,
    /// we have e-mailed your user ID").
    pub async fn forgot_user_id(&self, email: &str, security_code: &str) -> Result<()> {
        let email = email.trim();
        input::email(email)?;
        input::security_code_shape(security_code)?;
        let body = json!({"email": email, "security_code": security_code});
        self.client
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/recovery/user-id",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map(drop)
            .map_err(map_call)
    }

    /// Starts a password reset with the user ID and security code. Then send
    /// a code (`send_otp`) to one of the returned channels and finish with
    /// `complete_password_recovery`.
    /// Replaces any sign-in in progress.
    ///
    /// Errors: `InvalidCredentials` (user ID or security code wrong: the
    /// server does not say which), `AccountLocked` (too many recovery
    /// failures: 5 in 24 hours stop recovery for 24 hours).
    pub async fn start_password_recovery(
        &self,
        user_id: &str,
        security_code: &str,
    ) -> Result<PasswordRecovery> {
        input::user_id(user_id)?;
        input::security_code_shape(security_code)?;
        self.client.clear_pending();
        let body = json!({"user_id": user_id, "security_code": security_code});
        let started: WireRecoveryStarted = self
            .client
            .inner
            .http
            .call(
                Method::POST,
                "/v1/recovery/password",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(map_call)?;
        self.client.set_flow(Some(Flow::Recovery(PendingRecovery {
            recovery_id: started.recovery_id,
            user_id: user_id.to_ascii_lowercase(),
        })));
        Ok(PasswordRecovery {
            otp_options: otp_options(&started.methods),
            expires_at: at(started.expires_at),
        })
    }

    /// Sends the recovery's one-time code (the same call as
    /// `DeviceTrust.send_otp`, which serves whichever flow is in progress).
    pub async fn send_otp(&self, channel: OtpChannel) -> Result<OtpSent> {
        self.client.pending_recovery()?;
        self.client.send_otp(channel).await
    }

    /// Finishes the reset with the code and the new password. The server then
    /// revokes every session of the user, clears any lock, and asks every
    /// trusted device to be re-authorised by the next password + code
    /// sign-in; the SDK drops this user's session here and stops offering
    /// biometric sign-in on this phone until then. Next: sign in with the new
    /// password.
    ///
    /// Errors: `OtpInvalid { attempts_left }`, `OtpExpired` (send a new
    /// code), `PasswordRejected` (the recovery stays open: ask for another
    /// password), `SignInExpired` (the recovery expired: start again),
    /// `NoRecoveryInProgress`.
    pub async fn complete_password_recovery(&self, code: &str, new_password: &str) -> Result<()> {
        let code = input::otp_code(code)?;
        if new_password.is_empty() {
            return Err(DeviceTrustError::invalid("choose a new password"));
        }
        let recovery = self.client.pending_recovery()?;
        let body = json!({
            "recovery_id": recovery.recovery_id,
            "code": code,
            "new_password": new_password,
        });
        self.client
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/recovery/password/complete",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(|e| self.client.pending_failed(e))?;
        self.client.clear_pending();
        // Its session here, active or not, and its sealed copy.
        self.client.drop_session(&recovery.user_id).await;
        // The server wants this phone re-authorised: stop offering biometric
        // sign-in until a password + code sign-in renews the trust.
        if self.client.inner.state.device(&recovery.user_id)?.is_some() {
            self.client
                .inner
                .state
                .set_trusted_until(&recovery.user_id, now())?;
        }
        Ok(())
    }
}
