//! Harness for SDK tests: a key store whose platform behaviour a test can
//! script (cancel, biometrics changed, unavailable, locked out), an SDK
//! pointed at a test server, and a TLS-terminating proxy for pinning tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use devicetrust_core::*;

/// What the scripted "platform" does on the next signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Sign normally.
    Normal,
    /// The user dismisses the prompt.
    Cancel,
    /// Biometrics were re-enrolled: keys are permanently invalidated.
    BiometricsChanged,
    /// No biometric enrolled.
    Unavailable(String),
    /// Too many failed biometric attempts.
    LockedOut,
    /// Key generation fails (e.g. no secure hardware).
    GenerateFails,
    /// The user answers the prompt after this long (then it signs), unless
    /// the SDK drops the call first (counted in `dropped_signs`).
    Slow(std::time::Duration),
}

/// Counts a sign call dropped before it finished (the "platform" would
/// dismiss its prompt then).
struct DropWatch<'a>(&'a std::sync::atomic::AtomicUsize, bool);

impl Drop for DropWatch<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The "platform's" attestation of a new key: given its uncompressed
/// public point and the registration challenge, the storage to report and
/// the attestation to return (Android's chain, App Attest's object).
pub type Attester = dyn Fn(&[u8], &[u8]) -> (KeyStorage, Option<KeyAttestation>) + Send + Sync;

/// A software key store behind a scriptable platform.
pub struct ScriptedKeyStore {
    inner: SoftwareKeyStore,
    dir: PathBuf,
    behaviour: Mutex<Behaviour>,
    prompts: Mutex<Vec<String>>,
    attester: Mutex<Option<Arc<Attester>>>,
    challenges: Mutex<Vec<Vec<u8>>>,
    dropped_signs: std::sync::atomic::AtomicUsize,
}

impl ScriptedKeyStore {
    pub fn new(dir: &Path) -> Arc<Self> {
        Arc::new(ScriptedKeyStore {
            inner: SoftwareKeyStore::new(dir, &[42u8; 32]).expect("key store"),
            dir: dir.to_path_buf(),
            behaviour: Mutex::new(Behaviour::Normal),
            prompts: Mutex::new(Vec::new()),
            attester: Mutex::new(None),
            challenges: Mutex::new(Vec::new()),
            dropped_signs: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Sign calls the SDK dropped (cancelled) before they finished.
    pub fn dropped_signs(&self) -> usize {
        self.dropped_signs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// New keys are reported and attested by `attester` (a hardware
    /// platform); without one they are software keys with no attestation.
    pub fn attest_with(&self, attester: Arc<Attester>) {
        *self.attester.lock().unwrap() = Some(attester);
    }

    /// The attestation challenges `generate_key` was given, in order.
    pub fn challenges(&self) -> Vec<Vec<u8>> {
        self.challenges.lock().unwrap().clone()
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// Titles of the prompts the SDK passed through, in order.
    pub fn prompts(&self) -> Vec<String> {
        self.prompts.lock().unwrap().clone()
    }

    /// Key files on disk.
    pub fn key_count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .map(|e| e.path().extension().is_some_and(|x| x == "key"))
                        .unwrap_or(false)
                })
                .count()
            })
            .unwrap_or(0)
    }
}

#[async_trait]
impl PlatformKeyStore for ScriptedKeyStore {
    async fn generate_key(
        &self,
        alias: String,
        uv: UserVerification,
        attestation_challenge: Vec<u8>,
    ) -> Result<GeneratedKey, PlatformKeyError> {
        if *self.behaviour.lock().unwrap() == Behaviour::GenerateFails {
            return Err(PlatformKeyError::Other {
                reason: "no secure hardware".into(),
            });
        }
        self.challenges
            .lock()
            .unwrap()
            .push(attestation_challenge.clone());
        let mut key = self
            .inner
            .generate_key(alias, uv, attestation_challenge.clone())
            .await?;
        let attester = self.attester.lock().unwrap().clone();
        if let Some(attester) = attester {
            let (storage, attestation) = attester(&key.public_key, &attestation_challenge);
            key.storage = storage;
            key.attestation = attestation;
        }
        Ok(key)
    }

    async fn sign(
        &self,
        alias: String,
        data: Vec<u8>,
        prompt: PromptText,
    ) -> Result<Vec<u8>, PlatformKeyError> {
        self.prompts.lock().unwrap().push(prompt.title.clone());
        let b = self.behaviour.lock().unwrap().clone();
        match b {
            Behaviour::Normal | Behaviour::GenerateFails => {
                self.inner.sign(alias, data, prompt).await
            }
            Behaviour::Cancel => Err(PlatformKeyError::Cancelled),
            Behaviour::BiometricsChanged => Err(PlatformKeyError::KeyInvalidated),
            Behaviour::Unavailable(reason) => {
                Err(PlatformKeyError::BiometricUnavailable { reason })
            }
            Behaviour::LockedOut => Err(PlatformKeyError::BiometricLockedOut),
            Behaviour::Slow(after) => {
                let mut watch = DropWatch(&self.dropped_signs, false);
                tokio::time::sleep(after).await;
                watch.1 = true;
                self.inner.sign(alias, data, prompt).await
            }
        }
    }

    async fn delete_key(&self, alias: String) -> Result<(), PlatformKeyError> {
        self.inner.delete_key(alias).await
    }

    async fn key_exists(&self, alias: String) -> Result<bool, PlatformKeyError> {
        self.inner.key_exists(alias).await
    }
}

/// A phone: an SDK with its own state folder and key store.
pub struct Phone {
    pub sdk: DeviceTrust,
    pub keys: Arc<ScriptedKeyStore>,
    pub dir: tempfile::TempDir,
}

impl Phone {
    pub fn new(base: &str) -> Phone {
        let dir = tempfile::tempdir().expect("dir");
        let keys = ScriptedKeyStore::new(&dir.path().join("keys"));
        let sdk = Self::sdk(base, dir.path(), keys.clone());
        Phone { sdk, keys, dir }
    }

    /// An SDK on this phone's state and keys (as after an app restart).
    pub fn sdk(base: &str, dir: &Path, keys: Arc<ScriptedKeyStore>) -> DeviceTrust {
        let mut config = Config::new(
            base,
            crate::RP_ID,
            dir.join("state").to_str().expect("utf-8"),
        );
        config.allow_insecure_http = true;
        config.platform = Some(Platform::Android);
        DeviceTrust::new(config, keys).expect("sdk")
    }

    pub fn restart(&mut self, base: &str) {
        self.sdk = Self::sdk(base, self.dir.path(), self.keys.clone());
    }
}

pub fn prompt(title: &str) -> PromptText {
    PromptText::new(title)
}

/// The session's authentication methods by their wire (RFC 8176) names.
pub fn amr(session: &SessionInfo) -> Vec<String> {
    session
        .auth_methods
        .iter()
        .map(|m| match m {
            AuthMethod::Password => "pwd".to_owned(),
            AuthMethod::Otp => "otp".to_owned(),
            AuthMethod::HardwareKey => "hwk".to_owned(),
            AuthMethod::SoftwareKey => "swk".to_owned(),
            AuthMethod::Biometric => "bio".to_owned(),
            AuthMethod::Other { name } => name.clone(),
        })
        .collect()
}
