//! [`DeviceTrust`]: the whole sign-in journey against the server.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};

use crate::config::Config;
use crate::error::{DeviceTrustError, Result};
use crate::http::{CallError, Http, Repeat};
use crate::keystore::{BiometricPrompt, KeyStoreError, PlatformKeyStore, UserVerification};
use crate::model::*;
use crate::signature::{check, der_to_jws_signature, jwk, signing_input};
use crate::state::{DeviceRecord, LocalEnrolment, LocalState};
use crate::wire::*;

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN_S: i64 = 60;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The SDK's view of a server error code.
fn map_api(e: ServerError) -> DeviceTrustError {
    use DeviceTrustError as E;
    match e.code.as_str() {
        "invalid_credentials" => E::InvalidCredentials,
        "account_locked" => E::AccountLocked {
            retry_after_s: e.retry_after_s.unwrap_or(30 * 60),
        },
        // A challenge that expired while the prompt was up is a sign-in to restart.
        "login_expired" | "challenge_invalid" => E::SignInExpired,
        "otp_invalid" => E::OtpInvalid {
            attempts_left: e.attempts_left.unwrap_or(0),
        },
        "otp_expired" => E::OtpExpired,
        "device_not_recognized" => E::DeviceNotRecognized,
        "reauthorisation_required" => E::ReauthorisationRequired,
        "unauthorized" => E::NotSignedIn,
        "forbidden" => E::RecentSignInRequired,
        "device_limit" => E::DeviceLimitReached,
        "rate_limited" => E::RateLimited {
            retry_after_s: e.retry_after_s.unwrap_or(1),
        },
        "invalid_request" | "payload_too_large" => E::InvalidInput { reason: e.message },
        _ => E::Server {
            status: e.status,
            code: e.code,
            reason: e.message,
        },
    }
}

fn map_call(e: CallError) -> DeviceTrustError {
    match e {
        CallError::Api(e) => map_api(e),
        CallError::Transport(e) => e,
    }
}

fn map_key_error(e: KeyStoreError) -> DeviceTrustError {
    match e {
        KeyStoreError::Cancelled => DeviceTrustError::BiometricCancelled,
        KeyStoreError::KeyInvalidated => DeviceTrustError::BiometricsChanged,
        KeyStoreError::BiometricUnavailable { reason } => {
            DeviceTrustError::BiometricUnavailable { reason }
        }
        KeyStoreError::BiometricLockedOut => DeviceTrustError::BiometricLockedOut,
        KeyStoreError::KeyNotFound => DeviceTrustError::DeviceNotRecognized,
        KeyStoreError::Other { reason } => DeviceTrustError::KeyStore { reason },
    }
}

/// The same rules the server applies, checked before a round trip.
fn check_security_code(code: &str) -> Result<()> {
    let d = code.as_bytes();
    let rule = if !(6..=9).contains(&d.len()) || !d.iter().all(u8::is_ascii_digit) {
        Some("the security code must be 6 to 9 digits")
    } else if d.iter().all(|&c| c == d[0]) {
        Some("the security code must not repeat one digit")
    } else if d.windows(2).all(|w| w[1] as i8 - w[0] as i8 == 1)
        || d.windows(2).all(|w| w[1] as i8 - w[0] as i8 == -1)
    {
        Some("the security code must not be a straight run such as 123456")
    } else {
        None
    };
    rule.map_or(Ok(()), |m| Err(DeviceTrustError::invalid(m)))
}

struct ActiveSession {
    access_token: String,
    access_expires_at: i64,
    refresh_token: String,
    info: SessionInfo,
}

#[derive(Debug, Clone)]
struct PendingSignIn {
    login_id: String,
    user_id: String,
    /// `(challenge_id, challenge)` of the `device` method, when offered.
    device_challenge: Option<(String, String)>,
}

/// The on-device client. Create one per app (it is `Send + Sync`; share it
/// in an `Arc`). Every method that talks to the server is async; the local
/// state queries are not.
///
/// The whole first sign-in, then biometric sign-ins:
///
/// ```no_run
/// use std::sync::Arc;
/// use devicetrust_core::*;
///
/// # async fn run(key_store: Arc<dyn PlatformKeyStore>) -> Result<(), DeviceTrustError> {
/// let config = Config::new("https://auth.example.com", "https://auth.example.com", "/data/app/devicetrust");
/// let sdk = DeviceTrust::new(config, key_store)?;
///
/// let mut step = sdk.sign_in_with_password("jane.doe", "correct horse").await?;
/// if let SignInStep::EnrolmentRequired { profile, .. } = &step {
///     println!("Is this you? {} <{}>", profile.name, profile.email);
///     step = sdk.complete_enrolment("135790", Some("+447700900123")).await?;
/// }
/// if let SignInStep::SecondFactorRequired { otp_options, .. } = &step {
///     let sent = sdk.send_otp(otp_options[0].channel).await?;
///     println!("We sent a code to {}", sent.destination);
///     step = sdk.verify_otp("123456").await?;
/// }
/// assert!(matches!(step, SignInStep::SignedIn { .. }));
///
/// let prompt = BiometricPrompt::new("Turn on fingerprint sign-in");
/// sdk.enable_biometric_sign_in("Jane's Pixel", UserVerification::Biometric, prompt).await?;
///
/// // Next launch: no password, no code.
/// match sdk.sign_in_with_biometric("jane.doe", BiometricPrompt::new("Sign in")).await {
///     Ok(SignInStep::SignedIn { session }) => println!("welcome back {}", session.user_id),
///     Ok(SignInStep::SecondFactorRequired { .. }) => { /* risk step-up: send and verify an OTP */ }
///     Err(DeviceTrustError::BiometricsChanged) => { /* password + OTP, then enable again */ }
///     Err(DeviceTrustError::ReauthorisationRequired) => { /* password + OTP renews the trust */ }
///     Err(e) => eprintln!("{e}"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
pub struct DeviceTrust {
    config: Config,
    http: Http,
    keys: Arc<dyn PlatformKeyStore>,
    state: LocalState,
    /// Held across a refresh so that concurrent callers share one (refresh
    /// tokens are single-use). Never held across a key-store call.
    session: Mutex<Option<ActiveSession>>,
    pending: std::sync::Mutex<Option<PendingSignIn>>,
}

impl DeviceTrust {
    /// Opens the local state under `config.state_dir` and prepares HTTPS.
    pub fn new(config: Config, key_store: Arc<dyn PlatformKeyStore>) -> Result<Self> {
        if config.rp_id.trim().is_empty() {
            return Err(DeviceTrustError::invalid("rp_id must not be empty"));
        }
        let http = Http::new(&config)?;
        let state = LocalState::open(Path::new(&config.state_dir))?;
        Ok(DeviceTrust {
            config,
            http,
            keys: key_store,
            state,
            session: Mutex::new(None),
            pending: std::sync::Mutex::new(None),
        })
    }

    // ---------- local state, no network ----------

    /// Whether `user_id` enabled biometric sign-in on this phone, and until
    /// when the server trusts it.
    pub fn local_enrolment(&self, user_id: &str) -> Result<Option<LocalEnrolment>> {
        Ok(self
            .state
            .device(&user_id.to_ascii_lowercase())?
            .map(|d| d.enrolment))
    }

    /// Every user who enabled biometric sign-in on this phone.
    pub fn local_enrolments(&self) -> Result<Vec<LocalEnrolment>> {
        Ok(self
            .state
            .devices()?
            .into_iter()
            .map(|d| d.enrolment)
            .collect())
    }

    /// Whether to offer biometric sign-in to `user_id` now: enabled here and
    /// still trusted by this phone's clock. (The server has the last word.)
    pub fn is_biometric_sign_in_available(&self, user_id: &str) -> Result<bool> {
        Ok(self
            .local_enrolment(user_id)?
            .is_some_and(|e| e.trusted_until > now()))
    }

    /// The current session, if any (no network).
    pub async fn session(&self) -> Option<SessionInfo> {
        self.session.lock().await.as_ref().map(|s| s.info.clone())
    }

    // ---------- password sign-in ----------

    /// Starts a sign-in with user ID and password. If this phone is a
    /// trusted device of the user, the server may offer approval by biometric.
    pub async fn sign_in_with_password(&self, user_id: &str, password: &str) -> Result<SignInStep> {
        if user_id.is_empty() || password.is_empty() {
            return Err(DeviceTrustError::invalid("enter your user ID and password"));
        }
        let user_key = user_id.to_ascii_lowercase();
        self.clear_pending();
        let device_id = self.state.device(&user_key)?.map(|d| d.enrolment.device_id);
        let body = json!({"user_id": user_id, "password": password, "device_id": device_id});
        let step: WireStep = self
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
        self.next_step(&user_key, step).await
    }

    /// Finishes the one-time enrolment of the sign-in in progress.
    pub async fn complete_enrolment(
        &self,
        security_code: &str,
        mobile: Option<&str>,
    ) -> Result<SignInStep> {
        check_security_code(security_code)?;
        let pending = self.pending()?;
        let body =
            json!({"login_id": pending.login_id, "security_code": security_code, "mobile": mobile});
        let step: WireStep = self
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
        self.next_step(&pending.user_id, step).await
    }

    /// Sends a one-time code for the sign-in in progress.
    pub async fn send_otp(&self, channel: OtpChannel) -> Result<OtpSent> {
        let pending = self.pending()?;
        let body = json!({"login_id": pending.login_id, "channel": channel});
        let sent: WireOtpSent = self
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
            expires_at: sent.expires_at,
            resend_after_s: sent.resend_after_s.max(0) as u64,
        })
    }

    /// Checks the code the user typed; on success the SDK is signed in.
    pub async fn verify_otp(&self, code: &str) -> Result<SignInStep> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DeviceTrustError::invalid("the code has 6 digits"));
        }
        let pending = self.pending()?;
        let body = json!({"login_id": pending.login_id, "code": code});
        let reply: Value = self
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
        self.signed_in(session).await
    }

    /// Approves the password sign-in in progress with this phone's key
    /// (biometric prompt), instead of an OTP.
    pub async fn approve_with_this_device(&self, prompt: BiometricPrompt) -> Result<SignInStep> {
        let pending = self.pending()?;
        let (challenge_id, challenge) = pending
            .device_challenge
            .clone()
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        let record = self
            .state
            .device(&pending.user_id)?
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        let proof = self.login_proof(&record, &challenge, prompt).await?;
        let result = self.redeem(&record, &challenge_id, &proof).await;
        if !matches!(result, Err(DeviceTrustError::BiometricCancelled)) {
            self.clear_pending();
        }
        result
    }

    // ---------- biometric sign-in ----------

    /// Signs in with this phone's key after the biometric prompt. May answer
    /// `SecondFactorRequired` when the server's risk policy wants an OTP too.
    pub async fn sign_in_with_biometric(
        &self,
        user_id: &str,
        prompt: BiometricPrompt,
    ) -> Result<SignInStep> {
        let user_key = user_id.to_ascii_lowercase();
        let record = self
            .state
            .device(&user_key)?
            .ok_or(DeviceTrustError::NotEnrolledOnThisDevice)?;
        self.clear_pending();
        let body = json!({"device_id": record.enrolment.device_id});
        let challenge: WireChallenge = match self
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
        self.redeem(&record, &challenge.challenge_id, &proof).await
    }

    /// Builds and signs a login proof; the key store shows the prompt.
    async fn login_proof(
        &self,
        record: &DeviceRecord,
        nonce: &str,
        prompt: BiometricPrompt,
    ) -> Result<String> {
        let header = json!({"alg": "ES256", "typ": "devicetrust-login+jwt", "kid": record.enrolment.device_id});
        let payload =
            json!({"aud": self.config.rp_id, "sub": record.enrolment.user_id, "nonce": nonce});
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
    ) -> Result<SignInStep> {
        let body = json!({"challenge_id": challenge_id, "proof": proof});
        match self
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
                self.signed_in(session).await
            }
            Err(CallError::Api(e)) if e.code == "step_up_required" => {
                let login_id = e.login_id.clone().unwrap_or_default();
                *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(PendingSignIn {
                    login_id,
                    user_id: record.enrolment.user_id.clone(),
                    device_challenge: None,
                });
                Ok(SignInStep::SecondFactorRequired {
                    otp_options: otp_options(&e.methods),
                    this_device_can_approve: false,
                    expires_at: now() + 600,
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

    // ---------- trusted device ----------

    /// Makes this phone a trusted device of the signed-in user: the key store
    /// creates a P-256 key (biometric-gated per `user_verification`), the
    /// user confirms with `prompt`, the server registers the public key.
    /// All or nothing: on any failure the new key is deleted.
    pub async fn enable_biometric_sign_in(
        &self,
        device_name: &str,
        user_verification: UserVerification,
        prompt: BiometricPrompt,
    ) -> Result<TrustedDevice> {
        let device_name = device_name.trim();
        if device_name.is_empty() || device_name.chars().count() > 64 {
            return Err(DeviceTrustError::invalid(
                "the device name must be 1 to 64 characters",
            ));
        }
        let user_id = self
            .session()
            .await
            .ok_or(DeviceTrustError::NotSignedIn)?
            .user_id;
        let registration: WireRegistration = self
            .authed(Method::POST, "/v1/devices/registration", None, Repeat::Safe)
            .await?;
        let alias = format!("devicetrust/{user_id}/{}", crate::random_id());
        let key = self
            .keys
            .generate_key(alias.clone(), user_verification)
            .await
            .map_err(map_key_error)?;
        let created = self
            .register_key(
                &user_id,
                &alias,
                &key.public_key,
                key.storage,
                user_verification,
                device_name,
                &registration,
                prompt,
            )
            .await;
        match created {
            Ok(device) => Ok(device),
            Err(e) => {
                if let Err(k) = self.keys.delete_key(alias).await {
                    tracing::warn!(error = %k, "could not delete the key of a failed registration");
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn register_key(
        &self,
        user_id: &str,
        alias: &str,
        public_key: &[u8],
        storage: crate::keystore::KeyStorage,
        user_verification: UserVerification,
        device_name: &str,
        registration: &WireRegistration,
        prompt: BiometricPrompt,
    ) -> Result<TrustedDevice> {
        let header =
            json!({"alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": jwk(public_key)?});
        let payload =
            json!({"aud": self.config.rp_id, "sub": user_id, "nonce": registration.challenge});
        let proof = self
            .sign_jws(alias, public_key, &header, &payload, prompt)
            .await?;
        let body = json!({
            "registration_id": registration.registration_id,
            "proof": proof,
            "name": device_name,
            "platform": self.config.platform,
            "key_storage": storage,
            "user_verification": user_verification,
        });
        let created: WireDeviceEnvelope = self
            .authed(Method::POST, "/v1/devices", Some(&body), Repeat::Once)
            .await?;
        let d = created.device;
        let previous = self.state.device(user_id)?;
        let record = DeviceRecord {
            enrolment: LocalEnrolment {
                user_id: user_id.to_owned(),
                device_id: d.device_id.clone(),
                device_name: d.name.clone(),
                key_storage: storage,
                user_verification,
                trusted_until: d.trusted_until,
                registered_at: d.created_at,
            },
            key_alias: alias.to_owned(),
            public_key: public_key.to_vec(),
        };
        if let Err(e) = self.state.save_device(&record) {
            // Not remembered here means unusable: take it back on the server.
            let _ = self
                .authed::<Value>(
                    Method::DELETE,
                    &format!("/v1/devices/{}", d.device_id),
                    None,
                    Repeat::Once,
                )
                .await;
            return Err(e);
        }
        if let Some(old) = previous {
            // This phone had an older key for the user: retire it.
            let _ = self.keys.delete_key(old.key_alias.clone()).await;
            if let Err(e) = self
                .authed::<Value>(
                    Method::DELETE,
                    &format!("/v1/devices/{}", old.enrolment.device_id),
                    None,
                    Repeat::Once,
                )
                .await
            {
                tracing::warn!(error = %e, "old device not removed now; queued");
                self.state
                    .queue_removal(user_id, &old.enrolment.device_id, now())?;
            }
        }
        Ok(trusted_device(d, true))
    }

    /// The signed-in user's trusted devices. Also brings this phone's local
    /// record in line (trust renewed, or removed from another phone).
    pub async fn trusted_devices(&self) -> Result<Vec<TrustedDevice>> {
        let list: WireDeviceList = self
            .authed(Method::GET, "/v1/devices", None, Repeat::Safe)
            .await?;
        let user_id = self.session().await.map(|s| s.user_id).unwrap_or_default();
        let local = self.state.device(&user_id)?;
        if let Some(record) = &local {
            match list
                .devices
                .iter()
                .find(|d| d.device_id == record.enrolment.device_id)
            {
                Some(d) => self.state.set_trusted_until(&user_id, d.trusted_until)?,
                None => self.forget_device(record).await,
            }
        }
        let this = local.map(|r| r.enrolment.device_id);
        Ok(list
            .devices
            .into_iter()
            .map(|d| {
                let mine = this.as_deref() == Some(d.device_id.as_str());
                trusted_device(d, mine)
            })
            .collect())
    }

    /// Removes a trusted device. Removing this phone also deletes its key and
    /// ends this session (the server revokes the device's sessions).
    pub async fn remove_device(&self, device_id: &str) -> Result<()> {
        let user_id = self
            .session()
            .await
            .ok_or(DeviceTrustError::NotSignedIn)?
            .user_id;
        let this = self
            .state
            .device(&user_id)?
            .filter(|r| r.enrolment.device_id == device_id);
        let result = self
            .authed::<Value>(
                Method::DELETE,
                &format!("/v1/devices/{device_id}"),
                None,
                Repeat::Once,
            )
            .await;
        match result {
            Ok(_) => {}
            Err(DeviceTrustError::Server { status: 404, .. }) => {
                return Err(DeviceTrustError::invalid("no such device"))
            }
            Err(e) => return Err(e),
        }
        if let Some(record) = this {
            self.forget_device(&record).await;
            *self.session.lock().await = None;
        }
        Ok(())
    }

    // ---------- session ----------

    /// A valid access token for the app's own API calls, refreshed when it
    /// has under a minute left. Concurrent callers share one refresh.
    pub async fn access_token(&self) -> Result<String> {
        let mut guard = self.session.lock().await;
        let session = guard.as_ref().ok_or(DeviceTrustError::NotSignedIn)?;
        if session.access_expires_at - REFRESH_MARGIN_S > now() {
            return Ok(session.access_token.clone());
        }
        self.refresh_locked(&mut guard).await
    }

    /// The signed-in user's profile.
    pub async fn profile(&self) -> Result<UserProfile> {
        let me: WireMe = self
            .authed(Method::GET, "/v1/me", None, Repeat::Safe)
            .await?;
        Ok(UserProfile {
            user_id: me.user_id,
            name: me.name,
            email: me.email,
            mobile: me.mobile,
            primary_market: me.primary_market,
            enrolled: me.enrolled,
        })
    }

    /// Signs out: the session is forgotten here at once, then revoked on the
    /// server. Biometric sign-in stays enabled.
    pub async fn sign_out(&self) -> Result<()> {
        let session = self.session.lock().await.take();
        self.clear_pending();
        let Some(session) = session else {
            return Ok(());
        };
        match self
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

    async fn refresh_locked(
        &self,
        guard: &mut MutexGuard<'_, Option<ActiveSession>>,
    ) -> Result<String> {
        let Some(current) = guard.as_ref() else {
            return Err(DeviceTrustError::NotSignedIn);
        };
        let body = json!({"refresh_token": current.refresh_token});
        match self
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
                **guard = Some(active(s));
                Ok(token)
            }
            Err(CallError::Api(e)) if e.status == 401 => {
                **guard = None;
                Err(DeviceTrustError::NotSignedIn)
            }
            Err(e) => Err(map_call(e)),
        }
    }

    /// A call with the bearer token; a 401 refreshes once and retries (the
    /// rejected request did not run, so repeating it is safe).
    async fn authed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T> {
        let token = self.access_token().await?;
        match self
            .http
            .call(method.clone(), path, body, Some(&token), repeat)
            .await
        {
            Err(CallError::Api(e)) if e.code == "unauthorized" => {
                let fresh = {
                    let mut guard = self.session.lock().await;
                    match guard.as_ref() {
                        None => return Err(DeviceTrustError::NotSignedIn),
                        Some(s) if s.access_token != token => s.access_token.clone(),
                        Some(_) => self.refresh_locked(&mut guard).await?,
                    }
                };
                match self
                    .http
                    .call(method, path, body, Some(&fresh), repeat)
                    .await
                {
                    Err(CallError::Api(e)) if e.code == "unauthorized" => {
                        *self.session.lock().await = None;
                        Err(DeviceTrustError::NotSignedIn)
                    }
                    other => other.map_err(map_call),
                }
            }
            other => other.map_err(map_call),
        }
    }

    // ---------- internals ----------

    async fn next_step(&self, user_id: &str, step: WireStep) -> Result<SignInStep> {
        match step {
            WireStep::EnrolmentRequired {
                login_id,
                expires_at,
                profile,
            } => {
                self.set_pending(login_id, user_id, None);
                Ok(SignInStep::EnrolmentRequired {
                    profile: Profile {
                        name: profile.name,
                        email: profile.email,
                    },
                    expires_at,
                })
            }
            WireStep::SecondFactorRequired {
                login_id,
                expires_at,
                methods,
            } => {
                let device = methods.iter().find_map(|m| match m {
                    WireMethod::Device {
                        challenge_id,
                        challenge,
                    } => Some((challenge_id.clone(), challenge.clone())),
                    WireMethod::Otp { .. } => None,
                });
                let can_approve = device.is_some() && self.state.device(user_id)?.is_some();
                self.set_pending(login_id, user_id, device.filter(|_| can_approve));
                Ok(SignInStep::SecondFactorRequired {
                    otp_options: otp_options(&methods),
                    this_device_can_approve: can_approve,
                    expires_at,
                })
            }
            WireStep::Authenticated { session } => {
                self.clear_pending();
                self.signed_in(session).await
            }
        }
    }

    /// Keeps the session, then settles what waited for one: device removals
    /// queued while signed out, and this phone's record.
    async fn signed_in(&self, session: WireSession) -> Result<SignInStep> {
        let info = SessionInfo {
            user_id: session.user_id.clone(),
            amr: session.amr.clone(),
            auth_time: session.auth_time,
        };
        *self.session.lock().await = Some(active(session));
        for device_id in self.state.pending_removals(&info.user_id)? {
            match self
                .authed::<Value>(
                    Method::DELETE,
                    &format!("/v1/devices/{device_id}"),
                    None,
                    Repeat::Once,
                )
                .await
            {
                Ok(_) | Err(DeviceTrustError::Server { status: 404, .. }) => {
                    self.state.removal_done(&device_id)?
                }
                Err(e) => {
                    tracing::warn!(error = %e, "queued device removal failed; kept for later")
                }
            }
        }
        if self.state.device(&info.user_id)?.is_some() {
            if let Err(e) = self.trusted_devices().await {
                tracing::warn!(error = %e, "could not refresh this device's trust");
            }
        }
        Ok(SignInStep::SignedIn { session: info })
    }

    /// Signs a JWS with the platform key. No lock is held here: the
    /// platform may show UI for as long as the user takes.
    async fn sign_jws(
        &self,
        alias: &str,
        public_key: &[u8],
        header: &Value,
        payload: &Value,
        prompt: BiometricPrompt,
    ) -> Result<String> {
        let input = signing_input(header, payload);
        let der = self
            .keys
            .sign(alias.to_owned(), input.as_bytes().to_vec(), prompt)
            .await
            .map_err(map_key_error)?;
        let sig = der_to_jws_signature(&der)?;
        check(public_key, input.as_bytes(), &sig)?;
        Ok(format!("{input}.{}", crate::signature::b64(sig)))
    }

    /// The server no longer knows this device: forget it here.
    async fn forget_device(&self, record: &DeviceRecord) {
        if let Err(e) = self.keys.delete_key(record.key_alias.clone()).await {
            tracing::warn!(error = %e, "could not delete a forgotten device's key");
        }
        if let Err(e) = self.state.forget_device(&record.enrolment.user_id) {
            tracing::warn!(error = %e, "could not forget a device locally");
        }
    }

    /// The key is unusable for good: forget it here and remove the device on
    /// the server now if this user is signed in, else at the next sign-in.
    async fn biometrics_changed(&self, record: &DeviceRecord) {
        self.forget_device(record).await;
        let signed_in = self
            .session()
            .await
            .is_some_and(|s| s.user_id == record.enrolment.user_id);
        let path = format!("/v1/devices/{}", record.enrolment.device_id);
        let removed = signed_in
            && self
                .authed::<Value>(Method::DELETE, &path, None, Repeat::Once)
                .await
                .is_ok();
        if !removed {
            if let Err(e) = self.state.queue_removal(
                &record.enrolment.user_id,
                &record.enrolment.device_id,
                now(),
            ) {
                tracing::warn!(error = %e, "could not queue a device removal");
            }
        }
    }

    fn pending(&self) -> Result<PendingSignIn> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(DeviceTrustError::NoSignInInProgress)
    }

    fn set_pending(
        &self,
        login_id: String,
        user_id: &str,
        device_challenge: Option<(String, String)>,
    ) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(PendingSignIn {
            login_id,
            user_id: user_id.to_owned(),
            device_challenge,
        });
    }

    fn clear_pending(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A step of a pending sign-in failed; an expired sign-in is dropped.
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

fn active(s: WireSession) -> ActiveSession {
    ActiveSession {
        access_expires_at: now() + s.expires_in,
        info: SessionInfo {
            user_id: s.user_id,
            amr: s.amr,
            auth_time: s.auth_time,
        },
        access_token: s.access_token,
        refresh_token: s.refresh_token,
    }
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
            WireMethod::Device { .. } => None,
        })
        .collect()
}

fn trusted_device(d: WireDevice, is_this_device: bool) -> TrustedDevice {
    TrustedDevice {
        device_id: d.device_id,
        name: d.name,
        platform: d.platform,
        key_storage: d.key_storage,
        user_verification: d.user_verification,
        created_at: d.created_at,
        last_used_at: d.last_used_at,
        trusted_until: d.trusted_until,
        is_this_device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_code_rules_match_the_server() {
        for ok in ["135790", "2468024", "908172635"] {
            assert!(check_security_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "12345",
            "1234567890",
            "111111",
            "123456",
            "987654",
            "12a456",
        ] {
            assert!(check_security_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_codes_map_to_errors_the_ui_can_act_on() {
        let e = |code: &str| ServerError {
            status: 401,
            code: code.into(),
            message: "m".into(),
            retry_after_s: Some(120),
            attempts_left: Some(3),
            ..Default::default()
        };
        assert_eq!(
            map_api(e("account_locked")),
            DeviceTrustError::AccountLocked { retry_after_s: 120 }
        );
        assert_eq!(
            map_api(e("otp_invalid")),
            DeviceTrustError::OtpInvalid { attempts_left: 3 }
        );
        assert_eq!(map_api(e("login_expired")), DeviceTrustError::SignInExpired);
        assert_eq!(
            map_api(e("forbidden")),
            DeviceTrustError::RecentSignInRequired
        );
        assert!(matches!(
            map_api(e("signature_invalid")),
            DeviceTrustError::Server { .. }
        ));
    }
}
