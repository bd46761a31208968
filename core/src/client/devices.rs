//! Trusted devices: enabling biometric sign-in on this phone, the device
//! list, removal, and what this phone remembers without asking the server.

use crate::http::Method;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{map_call, now, DeviceTrust};
use crate::error::{DeviceTrustError, Result};
use crate::http::CallError;
use crate::http::Repeat;
use crate::input;
use crate::keystore::{GeneratedKey, KeyAttestation, KeyStorage, PromptText, UserVerification};
use crate::model::{at, AttestationFormat, TrustedDevice, VerifiedAttestation};
use crate::signature::{b64, check, der_to_jws_signature, jwk, signing_input};
use crate::state::{DeviceRecord, LocalEnrolment};
use crate::wire::*;

/// A wire name (`"tee"`, `"biometric"`, …) as one of the SDK's enums;
/// `None` for a name this version does not know.
fn known<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

fn trusted_device(d: WireDevice, is_this_device: bool) -> TrustedDevice {
    TrustedDevice {
        platform: known(&d.platform).unwrap_or(crate::config::Platform::Other),
        key_storage: known::<KeyStorage>(&d.key_storage),
        user_verification: known::<UserVerification>(&d.user_verification),
        created_at: at(d.created_at),
        last_used_at: d.last_used_at.map(at),
        trusted_until: at(d.trusted_until),
        attestation: d.attestation.map(|a| VerifiedAttestation {
            format: AttestationFormat::from_wire(&a.format),
            security_level: a.security_level.as_deref().and_then(known::<KeyStorage>),
            verified_at: at(a.verified_at),
        }),
        device_id: d.device_id,
        name: d.name,
        is_this_device,
    }
}

/// The registration's `attestation` member (contract v1.1, "Key
/// attestation"): every byte string base64url. An Android chain the key
/// store returned empty is no attestation.
fn attestation_json(attestation: &KeyAttestation) -> Option<Value> {
    match attestation {
        KeyAttestation::AndroidKey { certificate_chain } if certificate_chain.is_empty() => None,
        KeyAttestation::AndroidKey { certificate_chain } => Some(json!({
            "format": "android-key",
            "certificate_chain": certificate_chain.iter().map(b64).collect::<Vec<_>>(),
        })),
        KeyAttestation::AppleAppAttest {
            key_id,
            attestation_object,
        } => Some(json!({
            "format": "apple-appattest",
            "key_id": b64(key_id),
            "attestation_object": b64(attestation_object),
        })),
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl DeviceTrust {
    // ---------- local state, no network ----------

    /// Whether `user_id` enabled biometric sign-in on this phone, and until
    /// when the server trusts it (reads the local state, no network).
    pub async fn local_enrolment(&self, user_id: &str) -> Result<Option<LocalEnrolment>> {
        Ok(self
            .inner
            .state
            .device(&user_id.to_ascii_lowercase())?
            .map(|d| d.enrolment))
    }

    /// Every user who enabled biometric sign-in on this phone (reads the
    /// local state, no network).
    pub async fn local_enrolments(&self) -> Result<Vec<LocalEnrolment>> {
        Ok(self
            .inner
            .state
            .devices()?
            .into_iter()
            .map(|d| d.enrolment)
            .collect())
    }

    /// Whether to offer biometric sign-in to `user_id` now: enabled here and
    /// still trusted by this phone's clock. (The server has the last word.)
    pub async fn is_biometric_sign_in_available(&self, user_id: &str) -> Result<bool> {
        Ok(self
            .local_enrolment(user_id)
            .await?
            .is_some_and(|e| e.trusted_until > std::time::SystemTime::now()))
    }

    // ---------- the server's list ----------

    /// Makes this phone a trusted device of the signed-in user: the key store
    /// creates a P-256 key (biometric-gated per `user_verification`) and
    /// attests it with the server's registration challenge where the
    /// platform can, the user confirms with `prompt`, the server registers
    /// the public key (and checks the attestation: `AttestationInvalid` when
    /// it fails, or when the server requires one and the platform gave
    /// none). All or nothing: on any failure the new key is deleted. Needs a
    /// strong session (`RecentSignInRequired`).
    pub async fn enable_biometric_sign_in(
        &self,
        device_name: &str,
        user_verification: UserVerification,
        prompt: PromptText,
    ) -> Result<TrustedDevice> {
        let device_name = device_name.trim();
        if device_name.is_empty() || device_name.chars().count() > 64 {
            return Err(DeviceTrustError::invalid(
                "the device name must be 1 to 64 characters",
            ));
        }
        self.delete_orphan_keys().await;
        let user_id = self
            .session()
            .await
            .ok_or(DeviceTrustError::NotSignedIn)?
            .user_id;
        // The challenge comes first: the key is attested with it.
        let registration: WireRegistration = self
            .authed_as(
                &user_id,
                Method::POST,
                "/v1/devices/registration",
                None,
                Repeat::Safe,
            )
            .await?;
        let challenge = URL_SAFE_NO_PAD
            .decode(&registration.challenge)
            .map_err(|_| DeviceTrustError::Server {
                status: 200,
                code: "unreadable_response".into(),
                reason: "the registration challenge is not base64url".into(),
            })?;
        let alias = format!("devicetrust/{user_id}/{}", crate::random_id());
        let key = self
            .key_generate(&alias, user_verification, challenge)
            .await?;
        // Dropped with this future when the app cancels (its coroutine or
        // task, most often while the prompt is shown): the new key goes.
        let cleanup = NewKeyCleanup::new(self, &alias);
        let created = self
            .register_key(
                &user_id,
                &alias,
                &key,
                user_verification,
                device_name,
                &registration,
                prompt,
            )
            .await;
        cleanup.disarm();
        match created {
            Ok(device) => Ok(device),
            Err(e) => {
                if let Err(k) = self.key_delete(&alias).await {
                    tracing::warn!(error = %k, "could not delete the key of a failed registration");
                }
                Err(e)
            }
        }
    }

    /// The signed-in user's trusted devices. Also brings this phone's local
    /// record in line (trust renewed, or removed from another phone).
    pub async fn trusted_devices(&self) -> Result<Vec<TrustedDevice>> {
        // One account for the whole call: were it read again after the
        // request, a switch meanwhile would judge another account's device
        // by this account's list (and forget it).
        let user_id = self.active_user().ok_or(DeviceTrustError::NotSignedIn)?;
        let list: WireDeviceList = self
            .authed_as(&user_id, Method::GET, "/v1/devices", None, Repeat::Safe)
            .await?;
        self.sync_this_device(&user_id, list).await
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
            .inner
            .state
            .device(&user_id)?
            .filter(|r| r.enrolment.device_id == device_id);
        let path = input::device_path(device_id)?;
        let result = self
            .authed_as::<Value>(&user_id, Method::DELETE, &path, None, Repeat::Once)
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
            // The server revoked the sessions this device opened: this
            // account's; the other accounts' devices are their own.
            self.drop_session(&user_id).await;
        }
        Ok(())
    }
}

/// A key made for a registration that was cancelled (its future dropped)
/// before it finished; the registration's own failures delete it in line.
/// The cancelled future cannot await the deletion: the alias is noted and
/// deleted by a task of its own (uniffi drops a cancelled call's future
/// inside the tokio runtime) and, should that fail (a Python app that did
/// not register its event loop with `uniffi_set_event_loop` has no loop on
/// the runtime's threads), at the start of the next
/// `enable_biometric_sign_in`.
struct NewKeyCleanup {
    client: DeviceTrust,
    alias: Option<String>,
}

/// Keys noted for deletion at most: a bound, not an expected number.
const MAX_ORPHAN_KEYS: usize = 16;

impl NewKeyCleanup {
    fn new(client: &DeviceTrust, alias: &str) -> Self {
        NewKeyCleanup {
            client: client.clone(),
            alias: Some(alias.to_owned()),
        }
    }

    fn disarm(mut self) {
        self.alias = None;
    }
}

impl Drop for NewKeyCleanup {
    fn drop(&mut self) {
        let Some(alias) = self.alias.take() else {
            return;
        };
        self.client.note_orphan_key(alias);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move { client.delete_orphan_keys().await });
        }
    }
}

impl DeviceTrust {
    fn orphan_keys(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner
            .orphan_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn note_orphan_key(&self, alias: String) {
        let mut keys = self.orphan_keys();
        if keys.len() >= MAX_ORPHAN_KEYS {
            tracing::warn!("too many keys of cancelled registrations; the oldest is left");
            keys.remove(0);
        }
        keys.push(alias);
    }

    /// Deletes the keys of cancelled registrations. Each stays noted until
    /// deleted: a try that hangs or fails (the task above, in a Python app)
    /// leaves it to the next (deleting a key twice is no error).
    async fn delete_orphan_keys(&self) {
        let aliases = self.orphan_keys().clone();
        for alias in aliases {
            match self.key_delete(&alias).await {
                Ok(()) => self.orphan_keys().retain(|a| *a != alias),
                Err(e) => {
                    tracing::warn!(error = %e, "a cancelled registration's key was not deleted")
                }
            }
        }
    }
}

impl DeviceTrust {
    #[allow(clippy::too_many_arguments)]
    async fn register_key(
        &self,
        user_id: &str,
        alias: &str,
        key: &GeneratedKey,
        user_verification: UserVerification,
        device_name: &str,
        registration: &WireRegistration,
        prompt: PromptText,
    ) -> Result<TrustedDevice> {
        let public_key = key.public_key.as_slice();
        let storage = key.storage;
        let header =
            json!({"alg": "ES256", "typ": "devicetrust-register+jwt", "jwk": jwk(public_key)?});
        let payload = json!({"aud": self.inner.config.rp_id, "sub": user_id, "nonce": registration.challenge});
        let proof = self
            .sign_jws(alias, public_key, &header, &payload, prompt)
            .await?;
        let mut body = json!({
            "registration_id": registration.registration_id,
            "proof": proof,
            "name": device_name,
            "platform": self.inner.config.platform(),
            "key_storage": storage,
            "user_verification": user_verification,
        });
        if let Some(attestation) = key.attestation.as_ref().and_then(attestation_json) {
            body["attestation"] = attestation;
        }
        let created: WireDeviceEnvelope = self
            .authed_as(
                user_id,
                Method::POST,
                "/v1/devices",
                Some(&body),
                Repeat::Once,
            )
            .await?;
        let d = created.device;
        // The id goes into later request paths: one of the server's, or
        // the answer is not the API's.
        let device_path =
            input::device_path(&d.device_id).map_err(|_| DeviceTrustError::Server {
                status: 200,
                code: "unreadable_response".into(),
                reason: "the new device's id is not one of the server's".into(),
            })?;
        let state = &self.inner.state;
        let previous = state.device(user_id)?;
        let record = DeviceRecord {
            enrolment: LocalEnrolment {
                user_id: user_id.to_owned(),
                device_id: d.device_id.clone(),
                device_name: d.name.clone(),
                key_storage: storage,
                user_verification,
                trusted_until: at(d.trusted_until),
                registered_at: at(d.created_at),
            },
            key_alias: alias.to_owned(),
            public_key: public_key.to_vec(),
        };
        if let Err(e) = state.save_device(&record) {
            // Not remembered here means unusable: take it back on the server.
            let _ = self
                .authed_as::<Value>(user_id, Method::DELETE, &device_path, None, Repeat::Once)
                .await;
            return Err(e);
        }
        if let Some(old) = previous {
            // This phone had an older key for the user: retire it.
            let _ = self.key_delete(&old.key_alias).await;
            if let Err(e) = self
                .authed_as::<Value>(
                    user_id,
                    Method::DELETE,
                    &input::device_path(&old.enrolment.device_id)?,
                    None,
                    Repeat::Once,
                )
                .await
            {
                tracing::warn!(error = %e, "old device not removed now; queued");
                state.queue_removal(user_id, &old.enrolment.device_id, now())?;
            }
        }
        Ok(trusted_device(d, true))
    }

    /// Brings this phone's record of `user_id` in line with the server's
    /// device list (trust renewed, or removed from another phone).
    pub(super) async fn sync_this_device(
        &self,
        user_id: &str,
        list: WireDeviceList,
    ) -> Result<Vec<TrustedDevice>> {
        let local = self.inner.state.device(user_id)?;
        if let Some(record) = &local {
            match list
                .devices
                .iter()
                .find(|d| d.device_id == record.enrolment.device_id)
            {
                Some(d) => self
                    .inner
                    .state
                    .set_trusted_until(user_id, d.trusted_until)?,
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

    /// What waited for a sign-in of `user_id`, with the new session's
    /// `access_token` (the session is not kept yet): device removals queued
    /// while signed out, and this phone's record. Best effort.
    pub(super) async fn settle_after_sign_in(
        &self,
        user_id: &str,
        access_token: &str,
    ) -> Result<()> {
        let state = &self.inner.state;
        let http = &self.inner.http;
        for device_id in state.pending_removals(user_id)? {
            let Ok(path) = input::device_path(&device_id) else {
                // Not an id the server gave: nothing to remove there.
                state.removal_done(&device_id)?;
                continue;
            };
            match http
                .call::<Value>(
                    Method::DELETE,
                    &path,
                    None,
                    Some(access_token),
                    Repeat::Once,
                )
                .await
                .map_err(map_call)
            {
                Ok(_) | Err(DeviceTrustError::Server { status: 404, .. }) => {
                    state.removal_done(&device_id)?
                }
                Err(e) => {
                    tracing::warn!(error = %e, "queued device removal failed; kept for later")
                }
            }
        }
        if state.device(user_id)?.is_some() {
            let list = http
                .call::<WireDeviceList>(
                    Method::GET,
                    "/v1/devices",
                    None,
                    Some(access_token),
                    Repeat::Safe,
                )
                .await;
            match list {
                Ok(list) => {
                    self.sync_this_device(user_id, list).await?;
                }
                Err(CallError::Api(e)) => {
                    tracing::warn!(code = %e.code, "could not refresh this device's trust")
                }
                Err(CallError::Transport(e)) => {
                    tracing::warn!(error = %e, "could not refresh this device's trust")
                }
            }
        }
        Ok(())
    }

    // ---------- internals ----------

    /// Signs a JWS with the platform key. No lock is held here: the
    /// platform may show UI for as long as the user takes.
    pub(super) async fn sign_jws(
        &self,
        alias: &str,
        public_key: &[u8],
        header: &Value,
        payload: &Value,
        prompt: PromptText,
    ) -> Result<String> {
        let input = signing_input(header, payload);
        let der = self
            .key_sign(alias, input.as_bytes().to_vec(), prompt)
            .await?;
        let sig = der_to_jws_signature(&der)?;
        check(public_key, input.as_bytes(), &sig)?;
        Ok(format!("{input}.{}", crate::signature::b64(sig)))
    }

    /// The server no longer knows this device: forget it here.
    pub(super) async fn forget_device(&self, record: &DeviceRecord) {
        if let Err(e) = self.key_delete(&record.key_alias).await {
            tracing::warn!(error = %e, "could not delete a forgotten device's key");
        }
        if let Err(e) = self.inner.state.forget_device(&record.enrolment.user_id) {
            tracing::warn!(error = %e, "could not forget a device locally");
        }
    }

    /// The key is unusable for good: forget it here and remove the device on
    /// the server now if this user is signed in, else at the next sign-in.
    pub(super) async fn biometrics_changed(&self, record: &DeviceRecord) {
        self.forget_device(record).await;
        let user_id = &record.enrolment.user_id;
        let Ok(path) = input::device_path(&record.enrolment.device_id) else {
            return;
        };
        // Whichever account it is, active or not, if it has a session here.
        let removed = self
            .authed_as::<Value>(user_id, Method::DELETE, &path, None, Repeat::Once)
            .await
            .is_ok();
        if !removed {
            if let Err(e) = self.inner.state.queue_removal(
                &record.enrolment.user_id,
                &record.enrolment.device_id,
                now(),
            ) {
                tracing::warn!(error = %e, "could not queue a device removal");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_are_sent_as_the_contract_says() {
        let android = KeyAttestation::AndroidKey {
            certificate_chain: vec![vec![0xfb, 0xff], vec![1, 2, 3]],
        };
        assert_eq!(
            attestation_json(&android),
            Some(json!({"format": "android-key", "certificate_chain": ["-_8", "AQID"]}))
        );
        let apple = KeyAttestation::AppleAppAttest {
            key_id: vec![7; 32],
            attestation_object: vec![0xa3],
        };
        assert_eq!(
            attestation_json(&apple),
            Some(json!({
                "format": "apple-appattest",
                "key_id": b64([7u8; 32]),
                "attestation_object": "ow",
            }))
        );
        // An empty chain (a phone without attestation) is no attestation.
        let empty = KeyAttestation::AndroidKey {
            certificate_chain: vec![],
        };
        assert_eq!(attestation_json(&empty), None);
    }

    #[test]
    fn the_device_list_carries_the_verified_attestation() {
        let d: WireDevice = serde_json::from_value(json!({
            "device_id": "d1", "name": "n", "platform": "android", "key_storage": "tee",
            "user_verification": "biometric", "created_at": 1, "last_used_at": null,
            "trusted_until": 2, "current": true,
            "attestation": {"format": "android-key", "security_level": "tee", "verified_at": 3},
        }))
        .unwrap();
        let t = trusted_device(d, true);
        assert_eq!(
            t.attestation,
            Some(VerifiedAttestation {
                format: AttestationFormat::AndroidKey,
                security_level: Some(KeyStorage::Tee),
                verified_at: at(3),
            })
        );
        assert_eq!(t.platform, crate::config::Platform::Android);
        assert_eq!(t.key_storage, Some(KeyStorage::Tee));
        assert_eq!(t.user_verification, Some(UserVerification::Biometric));
        assert_eq!(t.trusted_until, at(2));
        // A server before v1.1 sends no `attestation`.
        let old: WireDevice = serde_json::from_value(json!({
            "device_id": "d1", "name": "n", "platform": "android", "key_storage": "tee",
            "user_verification": "biometric", "created_at": 1, "last_used_at": null,
            "trusted_until": 2,
        }))
        .unwrap();
        assert_eq!(trusted_device(old, false).attestation, None);
    }
}
