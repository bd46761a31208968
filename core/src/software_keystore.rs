//! A key store in software, for desktop apps and tests: P-256 keys (p256),
//! each encrypted at rest with AES-256-GCM under a key-encryption key the app
//! supplies (on a desktop, from the OS keychain). "User verification" is a
//! hook the app implements (a typed confirmation, a desktop prompt); without
//! one, signing proceeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

use crate::keystore::*;

const VERSION: u8 = 1;

/// Asks the person at the keyboard to confirm a signature.
pub trait UserPresence: Send + Sync {
    /// `Ok` to sign; `Err(PlatformKeyError::Cancelled)` (or another error) not to.
    fn confirm(&self, prompt: &PromptText) -> Result<(), PlatformKeyError>;
}

/// P-256 keys in files under a folder, encrypted at rest.
pub struct SoftwareKeyStore {
    dir: PathBuf,
    kek: Arc<LessSafeKey>,
    presence: Option<Arc<dyn UserPresence>>,
}

fn other(e: impl std::fmt::Display) -> PlatformKeyError {
    PlatformKeyError::Other {
        reason: e.to_string(),
    }
}

fn uv_byte(uv: UserVerification) -> u8 {
    match uv {
        UserVerification::Biometric => 1,
        UserVerification::BiometricOrDeviceCredential => 2,
        UserVerification::DeviceCredential => 3,
        UserVerification::None => 0,
    }
}

impl SoftwareKeyStore {
    /// Keys live in `dir` (created if missing), sealed with the 32-byte `kek`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use devicetrust_core::SoftwareKeyStore;
    /// let store = SoftwareKeyStore::new(dir.path(), &[7u8; 32]).unwrap();
    /// ```
    pub fn new(dir: impl AsRef<Path>, kek: &[u8]) -> Result<Self, PlatformKeyError> {
        let key = UnboundKey::new(&AES_256_GCM, kek)
            .map_err(|_| other("the key-encryption key must be 32 bytes"))?;
        std::fs::create_dir_all(dir.as_ref()).map_err(other)?;
        Ok(SoftwareKeyStore {
            dir: dir.as_ref().to_path_buf(),
            kek: Arc::new(LessSafeKey::new(key)),
            presence: None,
        })
    }

    /// Asks `presence` before every signature with a user-verified key.
    pub fn with_user_presence(mut self, presence: Arc<dyn UserPresence>) -> Self {
        self.presence = Some(presence);
        self
    }

    fn path(&self, alias: &str) -> PathBuf {
        // Aliases may hold any character; the file name is their hash.
        let digest = ring::digest::digest(&ring::digest::SHA256, alias.as_bytes());
        let name: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{name}.key"))
    }

    fn aad(alias: &str, uv: u8) -> Vec<u8> {
        let mut aad = b"devicetrust-software-key-v1\0".to_vec();
        aad.extend_from_slice(alias.as_bytes());
        aad.push(0);
        aad.push(uv);
        aad
    }

    fn seal(&self, alias: &str, uv: u8, scalar: &[u8]) -> Result<Vec<u8>, PlatformKeyError> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| other("no randomness"))?;
        let mut buf = scalar.to_vec();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(alias, uv)),
                &mut buf,
            )
            .map_err(|_| other("sealing the key failed"))?;
        let mut file = vec![VERSION, uv];
        file.extend_from_slice(&nonce);
        file.extend_from_slice(&buf);
        Ok(file)
    }

    fn open(&self, alias: &str) -> Result<(SigningKey, u8), PlatformKeyError> {
        let file = match std::fs::read(self.path(alias)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PlatformKeyError::KeyNotFound)
            }
            Err(e) => return Err(other(e)),
        };
        if file.len() != 2 + 12 + 32 + 16 || file[0] != VERSION {
            return Err(other("key file is damaged"));
        }
        let uv = file[1];
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&file[2..14]);
        let mut buf = file[14..].to_vec();
        let scalar = self
            .kek
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(alias, uv)),
                &mut buf,
            )
            .map_err(|_| other("key file cannot be opened with this key-encryption key"))?;
        let key = SigningKey::from_slice(scalar).map_err(other)?;
        Ok((key, uv))
    }
}

#[async_trait]
impl PlatformKeyStore for SoftwareKeyStore {
    async fn generate_key(
        &self,
        alias: String,
        user_verification: UserVerification,
        // A software key has nothing to attest: the challenge is unused.
        _attestation_challenge: Vec<u8>,
    ) -> Result<GeneratedKey, PlatformKeyError> {
        let rng = SystemRandom::new();
        let key = loop {
            let mut scalar = [0u8; 32];
            rng.fill(&mut scalar).map_err(|_| other("no randomness"))?;
            if let Ok(k) = SigningKey::from_slice(&scalar) {
                break k;
            }
        };
        let file = self.seal(&alias, uv_byte(user_verification), &key.to_bytes())?;
        let path = self.path(&alias);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &file).map_err(other)?;
        std::fs::rename(&tmp, &path).map_err(other)?;
        Ok(GeneratedKey {
            public_key: key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            storage: KeyStorage::Software,
            attestation: None,
        })
    }

    async fn sign(
        &self,
        alias: String,
        data: Vec<u8>,
        prompt: PromptText,
    ) -> Result<Vec<u8>, PlatformKeyError> {
        let (key, uv) = self.open(&alias)?;
        if uv != 0 {
            if let Some(presence) = &self.presence {
                let presence = presence.clone();
                // The hook may block on a person; keep it off the async runtime.
                tokio::task::spawn_blocking(move || presence.confirm(&prompt))
                    .await
                    .map_err(other)??;
            }
        }
        let sig: Signature = key.sign(&data);
        Ok(sig.to_der().as_bytes().to_vec())
    }

    async fn delete_key(&self, alias: String) -> Result<(), PlatformKeyError> {
        match std::fs::remove_file(self.path(&alias)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn key_exists(&self, alias: String) -> Result<bool, PlatformKeyError> {
        Ok(self.path(&alias).exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_sealed_and_sign_der() {
        let dir = tempfile::tempdir().unwrap();
        let store = SoftwareKeyStore::new(dir.path(), &[1u8; 32]).unwrap();
        let k = store
            .generate_key("a".into(), UserVerification::None, vec![1; 32])
            .await
            .unwrap();
        assert_eq!(k.public_key.len(), 65);
        assert_eq!(k.attestation, None);
        assert!(store.key_exists("a".into()).await.unwrap());
        let der = store
            .sign("a".into(), b"hello".to_vec(), PromptText::new("t"))
            .await
            .unwrap();
        let sig = crate::der_to_jws_signature(&der).unwrap();
        crate::signature::check(&k.public_key, b"hello", &sig).unwrap();
        // The file does not hold the scalar in the clear, and a wrong KEK cannot open it.
        let other_store = SoftwareKeyStore::new(dir.path(), &[2u8; 32]).unwrap();
        assert!(matches!(
            other_store
                .sign("a".into(), vec![], PromptText::new("t"))
                .await,
            Err(PlatformKeyError::Other { .. })
        ));
        store.delete_key("a".into()).await.unwrap();
        assert!(!store.key_exists("a".into()).await.unwrap());
        assert_eq!(
            store.sign("a".into(), vec![], PromptText::new("t")).await,
            Err(PlatformKeyError::KeyNotFound)
        );
        assert!(SoftwareKeyStore::new(dir.path(), &[1u8; 16]).is_err());
    }

    struct Refuse;
    impl UserPresence for Refuse {
        fn confirm(&self, _: &PromptText) -> Result<(), PlatformKeyError> {
            Err(PlatformKeyError::Cancelled)
        }
    }

    #[tokio::test]
    async fn user_presence_guards_verified_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SoftwareKeyStore::new(dir.path(), &[1u8; 32])
            .unwrap()
            .with_user_presence(Arc::new(Refuse));
        store
            .generate_key("bio".into(), UserVerification::Biometric, vec![])
            .await
            .unwrap();
        store
            .generate_key("none".into(), UserVerification::None, vec![])
            .await
            .unwrap();
        let p = PromptText::new("t");
        assert_eq!(
            store.sign("bio".into(), vec![1], p.clone()).await,
            Err(PlatformKeyError::Cancelled)
        );
        assert!(store.sign("none".into(), vec![1], p).await.is_ok());
    }
}
