//! The devicetrust SDK for Kotlin, Swift and Python: a thin uniffi layer over
//! `devicetrust-core`. Records, enums, errors and the `PlatformKeyStore`
//! trait are exported by the core itself (feature `uniffi`); this crate adds
//! the one object apps hold, `DeviceTrustClient`, whose async methods run on
//! a tokio runtime the library owns.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use devicetrust_core::{
    BiometricPrompt, Config, DeviceTrust, DeviceTrustError, LocalEnrolment, OtpChannel, OtpSent,
    PlatformKeyStore, SessionInfo, SignInStep, TrustedDevice, UserProfile, UserVerification,
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

async fn on_runtime<T, F>(future: F) -> Result<T, DeviceTrustError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, DeviceTrustError>> + Send + 'static,
{
    RUNTIME.spawn(future).await.unwrap_or_else(|e| {
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
        prompt: BiometricPrompt,
    ) -> Result<SignInStep, DeviceTrustError> {
        let sdk = self.inner.clone();
        on_runtime(async move { sdk.approve_with_this_device(prompt).await }).await
    }

    pub async fn enable_biometric_sign_in(
        &self,
        device_name: String,
        user_verification: UserVerification,
        prompt: BiometricPrompt,
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
        prompt: BiometricPrompt,
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
}

/// The configuration defaults (HTTPS only, 15 s requests), for languages
/// without Rust's `Config::new`.
#[uniffi::export]
pub fn default_config(server_url: String, rp_id: String, state_dir: String) -> Config {
    Config::new(&server_url, &rp_id, &state_dir)
}
