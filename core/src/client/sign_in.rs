//! Signing in: the password step machine (enrolment, OTP, approval by this
//! phone) and biometric sign-in.

use crate::http::Method;
use serde_json::{json, Value};

use super::{map_call, now, otp_options, session_in, DeviceTrust, Flow};
use crate::error::{DeviceTrustError, Result};
use crate::http::{CallError, Repeat};
use crate::input;
use crate::keystore::PromptText;
use crate::model::*;
use crate::state::DeviceRecord;
use crate::wire::*;

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    /// Starts a sign-in with user ID and password. If this phone is a
    /// trusted device of the user, the server may offer approval by biometric.
    pub async fn sign_in_with_password(&self, user_id: &str, password: &str) -> Result<SignInStep> {
        if user_id.is_empty() || password.is_empty() {
            return Err(DeviceTrustError::invalid("enter your user ID and password"));
        }
        let started = self.sign_in_started();
        let user_key = user_id.to_ascii_lowercase();
        self.check_room_for(&user_key)?;
        self.clear_pending();
        let device_id = self
            .inner
            .state
            .device(&user_key)?
            .map(|d| d.enrolment.device_id);
        let body = json!({"user_id": user_id, "password": password, "device_id": device_id});
        let step: WireStep = self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/login/password",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(map_call)?;
        self.next_step(&user_key, started, step).await
    }

    /// Finishes the one-time enrolment of the sign-in in progress: the new
    /// security code (6–9 digits) and optionally a mobile number (E.164).
    pub async fn complete_enrolment(
        &self,
        security_code: &str,
        mobile: Option<String>,
    ) -> Result<SignInStep> {
        input::security_code(security_code)?;
        let pending = self.pending()?;
        let body =
            json!({"login_id": pending.login_id, "security_code": security_code, "mobile": mobile});
        let step: WireStep = self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/login/enrol",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(|e| self.pending_failed(e))?;
        self.next_step(&pending.user_id, pending.started, step)
            .await
    }

    /// Sends a one-time code for the flow in progress: a sign-in, or a
    /// password recovery (started with `recovery().start_password_recovery`).
    pub async fn send_otp(&self, channel: OtpChannel) -> Result<OtpSent> {
        let flow_id = match self.flow() {
            Some(Flow::SignIn(p)) => p.login_id,
            Some(Flow::Recovery(r)) => r.recovery_id,
            None => return Err(DeviceTrustError::NoSignInInProgress),
        };
        let body = json!({"login_id": flow_id, "channel": channel});
        let sent: WireOtpSent = self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/login/otp/send",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(|e| self.pending_failed(e))?;
        Ok(OtpSent {
            destination: sent.destination,
            expires_at: at(sent.expires_at),
            resend_after_secs: sent.resend_after_s.max(0) as u64,
        })
    }

    /// Checks the code the user typed; on success the SDK is signed in.
    pub async fn verify_otp(&self, code: &str) -> Result<SignInStep> {
        let code = input::otp_code(code)?;
        let pending = self.pending()?;
        let body = json!({"login_id": pending.login_id, "code": code});
        let reply: Value = self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/login/otp/verify",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
            .map_err(|e| self.pending_failed(e))?;
        let session = session_in(&reply)?;
        self.clear_pending();
        self.signed_in(session, pending.started).await
    }

    /// Approves the password sign-in in progress with this phone's key
    /// (biometric prompt), instead of an OTP.
    pub async fn approve_with_this_device(&self, prompt: PromptText) -> Result<SignInStep> {
        let pending = self.pending()?;
        let (challenge_id, challenge) = pending
            .device_challenge
            .clone()
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        let record = self
            .inner
            .state
            .device(&pending.user_id)?
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        let proof = self.login_proof(&record, &challenge, prompt).await?;
        let result = self
            .redeem(&record, &challenge_id, &proof, pending.started)
            .await;
        if !matches!(result, Err(DeviceTrustError::BiometricCancelled)) {
            self.clear_pending();
        }
        result
    }

    /// Signs in with this phone's key after the biometric prompt. May answer
    /// `SecondFactorRequired` when the server's risk policy wants an OTP too.
    pub async fn sign_in_with_biometric(
        &self,
        user_id: &str,
        prompt: PromptText,
    ) -> Result<SignInStep> {
        let started = self.sign_in_started();
        let user_key = user_id.to_ascii_lowercase();
        let record = self
            .inner
            .state
            .device(&user_key)?
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        self.clear_pending();
        let body = json!({"device_id": record.enrolment.device_id});
        let challenge: WireChallenge = match self
            .inner
            .http
            .call(
                Method::POST,
                "/v1/login/device/challenge",
                Some(&body),
                None,
                Repeat::Safe,
            )
            .await
            .map_err(map_call)
        {
            Ok(c) => c,
            Err(DeviceTrustError::DeviceNotRecognized) => {
                self.forget_device(&record).await;
                return Err(DeviceTrustError::DeviceNotRecognized);
            }
            Err(e) => return Err(e),
        };
        let proof = self
            .login_proof(&record, &challenge.challenge, prompt)
            .await?;
        self.redeem(&record, &challenge.challenge_id, &proof, started)
            .await
    }
}

impl DeviceTrust {
    /// Builds and signs a login proof; the key store shows the prompt.
    async fn login_proof(
        &self,
        record: &DeviceRecord,
        nonce: &str,
        prompt: PromptText,
    ) -> Result<String> {
        let header = json!({"alg": "ES256", "typ": "devicetrust-login+jwt", "kid": record.enrolment.device_id});
        let payload = json!({"aud": self.inner.config.rp_id, "sub": record.enrolment.user_id, "nonce": nonce});
        match self
            .sign_jws(
                &record.key_alias,
                &record.public_key,
                &header,
                &payload,
                prompt,
            )
            .await
        {
            Ok(proof) => Ok(proof),
            Err(DeviceTrustError::BiometricsChanged) => {
                self.biometrics_changed(record).await;
                Err(DeviceTrustError::BiometricsChanged)
            }
            Err(DeviceTrustError::DeviceNotRecognized) => {
                // The key is gone (app data restored, key deleted by the OS).
                self.biometrics_changed(record).await;
                Err(DeviceTrustError::DeviceNotRecognized)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a signed login proof and handles what the server says.
    async fn redeem(
        &self,
        record: &DeviceRecord,
        challenge_id: &str,
        proof: &str,
        started: u64,
    ) -> Result<SignInStep> {
        let body = json!({"challenge_id": challenge_id, "proof": proof});
        match self
            .inner
            .http
            .call::<Value>(
                Method::POST,
                "/v1/login/device",
                Some(&body),
                None,
                Repeat::Once,
            )
            .await
        {
            Ok(reply) => {
                let session = session_in(&reply)?;
                self.signed_in(session, started).await
            }
            Err(CallError::Api(e)) if e.code == "step_up_required" => {
                let login_id = e.login_id.clone().unwrap_or_default();
                self.set_pending(login_id, &record.enrolment.user_id, started, None);
                Ok(SignInStep::SecondFactorRequired {
                    otp_options: otp_options(&e.methods),
                    this_device_can_approve: false,
                    expires_at: at(now() + 600),
                    reasons: StepUpReason::list(&e.reasons),
                })
            }
            Err(e) => {
                let err = map_call(e);
                if err == DeviceTrustError::DeviceNotRecognized {
                    self.forget_device(record).await;
                }
                Err(err)
            }
        }
    }

    async fn next_step(&self, user_id: &str, started: u64, step: WireStep) -> Result<SignInStep> {
        match step {
            WireStep::EnrolmentRequired {
                login_id,
                expires_at,
                profile,
            } => {
                self.set_pending(login_id, user_id, started, None);
                Ok(SignInStep::EnrolmentRequired {
                    name: profile.name,
                    email: profile.email,
                    expires_at: at(expires_at),
                })
            }
            WireStep::SecondFactorRequired {
                login_id,
                expires_at,
                methods,
                reasons,
            } => {
                let device = methods.iter().find_map(|m| match m {
                    WireMethod::Device {
                        challenge_id,
                        challenge,
                    } => Some((challenge_id.clone(), challenge.clone())),
                    WireMethod::Otp { .. } | WireMethod::Unknown => None,
                });
                let can_approve = device.is_some() && self.inner.state.device(user_id)?.is_some();
                self.set_pending(login_id, user_id, started, device.filter(|_| can_approve));
                Ok(SignInStep::SecondFactorRequired {
                    otp_options: otp_options(&methods),
                    this_device_can_approve: can_approve,
                    expires_at: at(expires_at),
                    reasons: StepUpReason::list(&reasons),
                })
            }
            WireStep::Authenticated { session } => {
                self.clear_pending();
                self.signed_in(session, started).await
            }
        }
    }
}
