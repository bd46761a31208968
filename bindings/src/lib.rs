//! The devicetrust SDK for Kotlin, Swift and Python: a thin uniffi layer over
//! `devicetrust-core`. Records, enums, errors and the `PlatformKeyStore`
//! trait are exported by the core itself (feature `uniffi`); this crate adds
//! the object apps hold, `DeviceTrustClient`, its two handles
//! (`client.account()` → [`AccountClient`], `client.recovery()` →
//! [`RecoveryClient`], wrapping the core's `Account` and `Recovery`), and two
//! free functions. Every async method runs on a tokio runtime the library
//! owns.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use devicetrust_core::{
    Account, Config, DeviceTrust, DeviceTrustError, LinkedCard, LocalEnrolment, OtpChannel,
    OtpSent, PasswordPolicy, PasswordRecovery, PasswordRule, PendingContactChange,
    PlatformKeyStore, PromptText, Recovery, SecurityEvent, SessionInfo, SignInStep, TrustedDevice,
    UserProfile, UserVerification,
};

uniffi::setup_scaffolding!("devicetrust");

/// The library's own runtime: async calls from Kotlin coroutines, Swift
/// tasks or Python's asyncio are spawned here, so reqwest and tokio timers
/// always run inside tokio whatever drives the foreign future.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("devicetrust")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("devicetrust: cannot start its runtime: {e}"))
});

/// Aborts the spawned task when the foreign call is cancelled: uniffi drops
/// the Rust future of a cancelled coroutine / task, and a dropped
/// `JoinHandle` alone would leave the SDK's work running detached.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` on the library's runtime. If the caller is cancelled, the
/// SDK's future is dropped at its next await point (as a Rust caller's
/// `select!` or timeout would drop it); after completion, `abort` is a no-op.
async fn on_runtime<T, F>(future: F) -> Result<T, DeviceTrustError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, DeviceTrustError>> + Send + 'static,
{
    let mut task = AbortOnDrop(RUNTIME.spawn(future));
    (&mut task.0).await.unwrap_or_else(|e| {
        Err(DeviceTrustError::KeyStore {
            reason: format!("the SDK task failed: {e}"),
        })
    })
}

/// The SDK, as apps hold it. See `devicetrust-core`'s `DeviceTrust` for
/// what each call does.
#[derive(uniffi::Object)]
pub struct DeviceTrustClient {
    inner: Arc<DeviceTrust>,
}

#[uniffi::export]
impl DeviceTrustClient {
    /// Opens local state and prepares HTTPS; `key_store` is the platform's.
    #[uniffi::constructor]
    pub fn new(
        config: Config,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<Arc<Self>, DeviceTrustError> {
        // reqwest's client must be built inside a runtime context.
        let _guard = RUNTIME.enter();
        Ok(Arc::new(DeviceTrustClient {
            inner: Arc::new(DeviceTrust::new(config, key_store)?),
        }))
    }

    pub async fn sign_in_with_password(
        &self,
        user_id: String,
        password: String,
    ) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.sign_in_with_password(&user_id, &password).await }).await
    }

    pub async fn complete_enrolment(
        &self,
        security_code: String,
        mobile: Option<String>,
    ) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move {
            sdk.complete_enrolment(&security_code, mobile.as_deref())
                .await
        })
        .await
    }

    pub async fn send_otp(&self, channel: OtpChannel) -> Result<OtpSent, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.send_otp(channel).await }).await
    }

    pub async fn verify_otp(&self, code: String) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.verify_otp(&code).await }).await
    }

    pub async fn approve_with_this_device(
        &self,
        prompt: PromptText,
    ) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.approve_with_this_device(prompt).await }).await
    }

    pub async fn enable_biometric_sign_in(
        &self,
        device_name: String,
        user_verification: UserVerification,
        prompt: PromptText,
    ) -> Result<TrustedDevice, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move {
            sdk.enable_biometric_sign_in(&device_name, user_verification, prompt)
                .await
        })
        .await
    }

    pub async fn sign_in_with_biometric(
        &self,
        user_id: String,
        prompt: PromptText,
    ) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.sign_in_with_biometric(&user_id, prompt).await }).await
    }

    pub async fn access_token(&self) -> Result<String, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.access_token().await }).await
    }

    pub async fn profile(&self) -> Result<UserProfile, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.profile().await }).await
    }

    pub async fn trusted_devices(&self) -> Result<Vec<TrustedDevice>, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.trusted_devices().await }).await
    }

    pub async fn remove_device(&self, device_id: String) -> Result<(), DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.remove_device(&device_id).await }).await
    }

    pub async fn sign_out(&self) -> Result<(), DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.sign_out().await }).await
    }

    pub async fn session(&self) -> Option<SessionInfo> {
        let sdk = self.inner.clone();
        on_runtime(async move { Ok(sdk.session().await) })
            .await
            .unwrap_or(None)
    }

    pub fn local_enrolment(
        &self,
        user_id: String,
    ) -> Result<Option<LocalEnrolment>, DeviceTrustError> {
        self.inner.local_enrolment(&user_id)
    }

    pub fn local_enrolments(&self) -> Result<Vec<LocalEnrolment>, DeviceTrustError> {
        self.inner.local_enrolments()
    }

    pub fn is_biometric_sign_in_available(
        &self,
        user_id: String,
    ) -> Result<bool, DeviceTrustError> {
        self.inner.is_biometric_sign_in_available(&user_id)
    }

    // ---------- v1.1: onboarding, and the two handles ----------

    /// The server's password rules (no session needed); check as the user
    /// types with [`check_password`].
    pub async fn password_policy(&self) -> Result<PasswordPolicy, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.password_policy().await }).await
    }

    /// Online access from a card; returns the new user ID. Then
    /// `sign_in_with_password` starts the one-time enrolment.
    pub async fn create_account(
        &self,
        card_number: String,
        card_id: String,
        name: String,
        user_id: String,
        password: String,
    ) -> Result<String, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move {
            sdk.create_account(&card_number, &card_id, &name, &user_id, &password)
                .await
        })
        .await
    }

    /// The signed-in user's account (profile, password, e-mail, mobile,
    /// security code, cards, security events). A cheap handle sharing this
    /// client's session.
    pub fn account(&self) -> Arc<AccountClient> {
        Arc::new(AccountClient {
            inner: self.inner.account(),
        })
    }

    /// "Forgot user ID" and the password reset with the security code. A
    /// cheap handle sharing this client's flow in progress: `send_otp` on
    /// either object sends a recovery's code.
    pub fn recovery(&self) -> Arc<RecoveryClient> {
        Arc::new(RecoveryClient {
            inner: self.inner.recovery(),
        })
    }
}

/// The core's `Account`, from `DeviceTrustClient.account()`. Every call needs
/// a session (`NotSignedIn`); the changes need a strong one
/// (`RecentSignInRequired`: confirm it is the user, then repeat).
#[derive(uniffi::Object)]
pub struct AccountClient {
    inner: Account,
}

#[uniffi::export]
impl AccountClient {
    pub async fn profile(&self) -> Result<UserProfile, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.profile().await }).await
    }

    pub async fn change_password(
        &self,
        current_password: String,
        new_password: String,
    ) -> Result<(), DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move {
            account
                .change_password(&current_password, &new_password)
                .await
        })
        .await
    }

    pub async fn change_email(
        &self,
        new_email: String,
    ) -> Result<PendingContactChange, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.change_email(&new_email).await }).await
    }

    pub async fn change_mobile(
        &self,
        new_mobile: String,
    ) -> Result<PendingContactChange, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.change_mobile(&new_mobile).await }).await
    }

    pub async fn confirm_contact_change(
        &self,
        code: String,
    ) -> Result<UserProfile, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.confirm_contact_change(&code).await }).await
    }

    pub async fn remove_mobile(&self) -> Result<(), DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.remove_mobile().await }).await
    }

    pub async fn change_security_code(
        &self,
        security_code: String,
    ) -> Result<(), DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.change_security_code(&security_code).await }).await
    }

    pub async fn linked_cards(&self) -> Result<Vec<LinkedCard>, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.linked_cards().await }).await
    }

    pub async fn link_card(
        &self,
        card_number: String,
        card_id: String,
    ) -> Result<LinkedCard, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.link_card(&card_number, &card_id).await }).await
    }

    /// Newest first, at most `limit` (1 to 200).
    pub async fn security_events(
        &self,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, DeviceTrustError> {
        let account = self.inner.clone();
        on_runtime(async move { account.security_events(limit).await }).await
    }
}

/// The core's `Recovery`, from `DeviceTrustClient.recovery()`. No session
/// needed.
#[derive(uniffi::Object)]
pub struct RecoveryClient {
    inner: Recovery,
}

#[uniffi::export]
impl RecoveryClient {
    /// Always succeeds when the server answers: it never says whether
    /// anything matched.
    pub async fn forgot_user_id(
        &self,
        email: String,
        security_code: String,
    ) -> Result<(), DeviceTrustError> {
        let recovery = self.inner.clone();
        on_runtime(async move { recovery.forgot_user_id(&email, &security_code).await }).await
    }

    pub async fn start_password_recovery(
        &self,
        user_id: String,
        security_code: String,
    ) -> Result<PasswordRecovery, DeviceTrustError> {
        let recovery = self.inner.clone();
        on_runtime(async move {
            recovery
                .start_password_recovery(&user_id, &security_code)
                .await
        })
        .await
    }

    pub async fn send_otp(&self, channel: OtpChannel) -> Result<OtpSent, DeviceTrustError> {
        let recovery = self.inner.clone();
        on_runtime(async move { recovery.send_otp(channel).await }).await
    }

    pub async fn complete_password_recovery(
        &self,
        code: String,
        new_password: String,
    ) -> Result<(), DeviceTrustError> {
        let recovery = self.inner.clone();
        on_runtime(async move {
            recovery
                .complete_password_recovery(&code, &new_password)
                .await
        })
        .await
    }
}

/// The rules of `policy` that `password` breaks, as far as the phone can
/// tell (never `Common` or `SameAsCurrent`); empty when it sees nothing
/// wrong. `user_id` may be empty.
#[uniffi::export]
pub fn check_password(
    policy: PasswordPolicy,
    password: String,
    user_id: String,
) -> Vec<PasswordRule> {
    devicetrust_core::check_password(&policy, &password, &user_id)
}

/// The configuration defaults (HTTPS only, 15 s requests), for languages
/// without Rust's `Config::new`.
#[uniffi::export]
pub fn default_config(server_url: String, rp_id: String, state_dir: String) -> Config {
    Config::new(&server_url, &rp_id, &state_dir)
}
