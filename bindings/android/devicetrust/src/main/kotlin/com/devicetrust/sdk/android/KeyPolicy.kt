package com.devicetrust.sdk.android

import android.hardware.biometrics.BiometricManager.Authenticators
import android.hardware.biometrics.BiometricPrompt as SystemPrompt
import android.security.keystore.KeyProperties
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.UserVerification

/**
 * What a key in the Android Keystore actually is, read back from its
 * `KeyInfo` after creation (not what was asked): where it lives, who must be
 * present for it to sign, and whether that is per signature or for a few
 * seconds after any unlock. [AndroidKeystoreKeyStore.keyPolicy] returns it.
 */
data class KeyPolicy(
    val storage: KeyStorage,
    val userVerification: UserVerification,
    /**
     * True: every signature needs its own prompt, bound to that signature
     * (a `CryptoObject`). False: the key works for
     * [validitySeconds] after any lock-screen authentication, the only way
     * Android 9 and 10 let the device credential unlock a key.
     */
    val perSignature: Boolean,
    val validitySeconds: Int,
    /** A new fingerprint or face voids the key (strong biometrics only). */
    val invalidatedByBiometricEnrollment: Boolean,
)

/**
 * The decisions of the key store that depend only on numbers the platform
 * reports: kept apart from the framework calls so they are unit-tested on
 * the JVM (`src/test`).
 */
internal object Policies {
    /**
     * Seconds a key unlocked by "any lock-screen authentication" stays
     * usable on Android 9–10 (API 28–29), where a per-signature key can
     * only be unlocked by a biometric. Short: the key store signs within
     * milliseconds of the prompt, and every second is one in which a
     * recent phone unlock also unlocks the key.
     */
    const val LEGACY_CREDENTIAL_WINDOW_SECONDS = 10

    /** How the key is created for [uv] on [sdkInt]; null: this Android cannot gate a key that way. */
    data class Spec(val perSignature: Boolean, val keyAuthTypes: Int, val invalidatedByEnrollment: Boolean)

    fun specFor(uv: UserVerification, sdkInt: Int): Spec? = when (uv) {
        UserVerification.NONE -> Spec(perSignature = false, keyAuthTypes = 0, invalidatedByEnrollment = false)
        UserVerification.BIOMETRIC ->
            Spec(perSignature = true, keyAuthTypes = KeyProperties.AUTH_BIOMETRIC_STRONG, invalidatedByEnrollment = true)
        UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL -> if (sdkInt >= 30) {
            Spec(true, KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL, false)
        } else {
            // Before API 30 a per-use key accepts biometrics only; the
            // credential can unlock only a time-bound key.
            Spec(false, KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL, false)
        }
        UserVerification.DEVICE_CREDENTIAL -> when {
            sdkInt >= 30 -> Spec(true, KeyProperties.AUTH_DEVICE_CREDENTIAL, false)
            // API 29: a time-bound key and a prompt that offers the
            // credential (setDeviceCredentialAllowed). API 28's prompt has
            // no credential option at all.
            sdkInt == 29 -> Spec(false, KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL, false)
            else -> null
        }
    }

    /**
     * Where the key lives. API 31+: `KeyInfo.getSecurityLevel`;
     * `UNKNOWN_SECURE` (secure hardware of a kind Keystore does not name)
     * is reported as `TEE`, the weaker hardware claim: the server's
     * attestation check has the last word either way. Before API 31 only
     * `isInsideSecureHardware` exists, and a key generated with
     * `setIsStrongBoxBacked(true)` that did not throw
     * `StrongBoxUnavailableException` is in StrongBox.
     */
    fun storage(sdkInt: Int, securityLevel: Int?, insideSecureHardware: Boolean, strongBoxRequested: Boolean): KeyStorage =
        if (sdkInt >= 31 && securityLevel != null) {
            when (securityLevel) {
                KeyProperties.SECURITY_LEVEL_STRONGBOX -> KeyStorage.STRONGBOX
                KeyProperties.SECURITY_LEVEL_TRUSTED_ENVIRONMENT,
                KeyProperties.SECURITY_LEVEL_UNKNOWN_SECURE -> KeyStorage.TEE
                else -> KeyStorage.SOFTWARE
            }
        } else when {
            !insideSecureHardware -> KeyStorage.SOFTWARE
            strongBoxRequested -> KeyStorage.STRONGBOX
            else -> KeyStorage.TEE
        }

    /**
     * Who must be present, from the key's own `KeyInfo`. API 30+ reports
     * the authenticator types; before, a positive validity means "any
     * lock-screen authentication" (credential or biometric), none means a
     * biometric per signature.
     */
    fun userVerification(sdkInt: Int, authRequired: Boolean, authTypes: Int, validitySeconds: Int): UserVerification {
        if (!authRequired) return UserVerification.NONE
        if (sdkInt < 30) return if (validitySeconds > 0) UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL else UserVerification.BIOMETRIC
        val biometric = authTypes and KeyProperties.AUTH_BIOMETRIC_STRONG != 0
        val credential = authTypes and KeyProperties.AUTH_DEVICE_CREDENTIAL != 0
        return when {
            biometric && credential -> UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL
            credential -> UserVerification.DEVICE_CREDENTIAL
            else -> UserVerification.BIOMETRIC
        }
    }

    /** The prompt's `setAllowedAuthenticators` (API 30+) for a key's authentication types. */
    fun promptAuthenticators(keyAuthTypes: Int): Int {
        var allowed = 0
        if (keyAuthTypes and KeyProperties.AUTH_BIOMETRIC_STRONG != 0) allowed = allowed or Authenticators.BIOMETRIC_STRONG
        if (keyAuthTypes and KeyProperties.AUTH_DEVICE_CREDENTIAL != 0) allowed = allowed or Authenticators.DEVICE_CREDENTIAL
        return if (allowed == 0) Authenticators.BIOMETRIC_STRONG else allowed
    }

    /**
     * Refuses prompt text the system prompt would throw on (on the main
     * thread, where nothing could catch it for the SDK): an empty title or
     * cancel label (the negative button's, shown whenever the credential is
     * not offered; required always, so a policy change cannot break a prompt).
     */
    fun checkPromptText(prompt: PromptText) {
        if (prompt.title.isBlank()) throw PlatformKeyException.Other("PromptText.title is empty: the system prompt needs a title")
        if (prompt.cancelLabel.isBlank()) {
            throw PlatformKeyException.Other("PromptText.cancelLabel is empty: the system prompt needs a cancel button label")
        }
    }

    /** The system prompt's error codes → the SDK's key-store errors. */
    fun promptError(code: Int, message: String): PlatformKeyException = when (code) {
        SystemPrompt.BIOMETRIC_ERROR_USER_CANCELED,
        SystemPrompt.BIOMETRIC_ERROR_CANCELED,
        SystemPrompt.BIOMETRIC_ERROR_NEGATIVE_BUTTON,
        SystemPrompt.BIOMETRIC_ERROR_TIMEOUT -> PlatformKeyException.Cancelled()
        SystemPrompt.BIOMETRIC_ERROR_LOCKOUT,
        SystemPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT -> PlatformKeyException.BiometricLockedOut()
        SystemPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS,
        SystemPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT,
        SystemPrompt.BIOMETRIC_ERROR_HW_UNAVAILABLE,
        SystemPrompt.BIOMETRIC_ERROR_NO_DEVICE_CREDENTIAL,
        SystemPrompt.BIOMETRIC_ERROR_SECURITY_UPDATE_REQUIRED -> PlatformKeyException.BiometricUnavailable(message)
        else -> PlatformKeyException.Other("biometric prompt error $code: $message")
    }
}
