package com.devicetrust.sdk.android

import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricManager.Authenticators
import android.hardware.biometrics.BiometricPrompt
import android.security.keystore.KeyProperties
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.UserVerification
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class PoliciesTest {
    private val both = KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL

    @Test
    fun biometricKeysArePerSignatureAndVoidedByEnrolmentOnEveryVersion() {
        for (sdk in 28..35) {
            val spec = Policies.specFor(UserVerification.BIOMETRIC, sdk)!!
            assertTrue(spec.perSignature)
            assertTrue(spec.invalidatedByEnrollment)
            assertEquals(KeyProperties.AUTH_BIOMETRIC_STRONG, spec.keyAuthTypes)
        }
    }

    @Test
    fun credentialFallbackIsPerSignatureFromApi30AndTimeBoundBefore() {
        val modern = Policies.specFor(UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL, 30)!!
        assertTrue(modern.perSignature)
        assertEquals(both, modern.keyAuthTypes)
        for (sdk in 28..29) {
            assertFalse(Policies.specFor(UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL, sdk)!!.perSignature)
        }
    }

    @Test
    fun deviceCredentialOnlyNeedsApi29AndIsCredentialOnlyFrom30() {
        val modern = Policies.specFor(UserVerification.DEVICE_CREDENTIAL, 31)!!
        assertTrue(modern.perSignature)
        assertEquals(KeyProperties.AUTH_DEVICE_CREDENTIAL, modern.keyAuthTypes)
        assertFalse(modern.invalidatedByEnrollment)
        assertFalse(Policies.specFor(UserVerification.DEVICE_CREDENTIAL, 29)!!.perSignature)
        assertNull(Policies.specFor(UserVerification.DEVICE_CREDENTIAL, 28))
    }

    @Test
    fun noneNeedsNoUser() {
        assertEquals(0, Policies.specFor(UserVerification.NONE, 28)!!.keyAuthTypes)
    }

    @Test
    fun storageFromSecurityLevelOn31AndUp() {
        assertEquals(KeyStorage.STRONGBOX, Policies.storage(31, KeyProperties.SECURITY_LEVEL_STRONGBOX, true, false))
        assertEquals(KeyStorage.TEE, Policies.storage(33, KeyProperties.SECURITY_LEVEL_TRUSTED_ENVIRONMENT, true, true))
        // Secure hardware of an unnamed kind: the weaker hardware claim.
        assertEquals(KeyStorage.TEE, Policies.storage(34, KeyProperties.SECURITY_LEVEL_UNKNOWN_SECURE, true, true))
        assertEquals(KeyStorage.SOFTWARE, Policies.storage(34, KeyProperties.SECURITY_LEVEL_SOFTWARE, false, false))
        assertEquals(KeyStorage.SOFTWARE, Policies.storage(34, KeyProperties.SECURITY_LEVEL_UNKNOWN, true, false))
    }

    @Test
    fun storageBefore31IsStrongBoxWhenItWasAskedAndGiven() {
        assertEquals(KeyStorage.STRONGBOX, Policies.storage(30, null, true, strongBoxRequested = true))
        assertEquals(KeyStorage.TEE, Policies.storage(28, null, true, strongBoxRequested = false))
        assertEquals(KeyStorage.SOFTWARE, Policies.storage(29, null, false, strongBoxRequested = true))
    }

    @Test
    fun userVerificationReadBackFromKeyInfo() {
        assertEquals(UserVerification.NONE, Policies.userVerification(34, false, 0, 0))
        assertEquals(UserVerification.BIOMETRIC, Policies.userVerification(34, true, KeyProperties.AUTH_BIOMETRIC_STRONG, 0))
        assertEquals(UserVerification.DEVICE_CREDENTIAL, Policies.userVerification(30, true, KeyProperties.AUTH_DEVICE_CREDENTIAL, 0))
        assertEquals(UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL, Policies.userVerification(30, true, both, 0))
        // Before 30: the validity says it (none: biometric per use; some: any unlock).
        assertEquals(UserVerification.BIOMETRIC, Policies.userVerification(29, true, 0, -1))
        assertEquals(UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL, Policies.userVerification(28, true, 0, 10))
    }

    @Test
    fun promptAuthenticatorsFollowTheKey() {
        assertEquals(Authenticators.BIOMETRIC_STRONG, Policies.promptAuthenticators(KeyProperties.AUTH_BIOMETRIC_STRONG))
        assertEquals(Authenticators.DEVICE_CREDENTIAL, Policies.promptAuthenticators(KeyProperties.AUTH_DEVICE_CREDENTIAL))
        assertEquals(Authenticators.BIOMETRIC_STRONG or Authenticators.DEVICE_CREDENTIAL, Policies.promptAuthenticators(both))
    }

    @Test
    fun emptyPromptTextIsRefusedBeforeAnyPrompt() {
        Policies.checkPromptText(PromptText())
        val noTitle = assertThrows<PlatformKeyException.Other> { Policies.checkPromptText(PromptText(title = " ")) }
        assertTrue(noTitle.reason.contains("title"))
        val noLabel = assertThrows<PlatformKeyException.Other> { Policies.checkPromptText(PromptText(cancelLabel = "")) }
        assertTrue(noLabel.reason.contains("cancelLabel"))
    }

    @Test
    fun promptErrorsMapToTheSdkErrors() {
        for (code in listOf(BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED, BiometricPrompt.BIOMETRIC_ERROR_CANCELED,
            BiometricPrompt.BIOMETRIC_ERROR_NEGATIVE_BUTTON, BiometricPrompt.BIOMETRIC_ERROR_TIMEOUT)) {
            assertInstanceOf(PlatformKeyException.Cancelled::class.java, Policies.promptError(code, "x"))
        }
        for (code in listOf(BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT, BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT)) {
            assertInstanceOf(PlatformKeyException.BiometricLockedOut::class.java, Policies.promptError(code, "x"))
        }
        val unavailable = Policies.promptError(BiometricPrompt.BIOMETRIC_ERROR_NO_DEVICE_CREDENTIAL, "no PIN set")
        assertEquals("no PIN set", (unavailable as PlatformKeyException.BiometricUnavailable).reason)
        assertInstanceOf(
            PlatformKeyException.BiometricUnavailable::class.java,
            Policies.promptError(BiometricPrompt.BIOMETRIC_ERROR_SECURITY_UPDATE_REQUIRED, "update"),
        )
        val other = Policies.promptError(BiometricPrompt.BIOMETRIC_ERROR_VENDOR, "vendor said no")
        assertTrue((other as PlatformKeyException.Other).reason.contains("vendor said no"))
        // The message is the SDK's own wording (Rust's Display), with the reason in it.
        assertTrue(other.message!!.contains("vendor said no"), other.message)
    }

    @Test
    fun canAuthenticateCodes() {
        assertEquals(BiometricAvailability.AVAILABLE, Availability.fromCanAuthenticate(BiometricManager.BIOMETRIC_SUCCESS))
        assertEquals(BiometricAvailability.NONE_ENROLLED, Availability.fromCanAuthenticate(BiometricManager.BIOMETRIC_ERROR_NONE_ENROLLED))
        assertEquals(BiometricAvailability.NO_HARDWARE, Availability.fromCanAuthenticate(BiometricManager.BIOMETRIC_ERROR_NO_HARDWARE))
        assertEquals(BiometricAvailability.TEMPORARILY_UNAVAILABLE, Availability.fromCanAuthenticate(BiometricManager.BIOMETRIC_ERROR_HW_UNAVAILABLE))
        assertEquals(
            BiometricAvailability.SECURITY_UPDATE_REQUIRED,
            Availability.fromCanAuthenticate(BiometricManager.BIOMETRIC_ERROR_SECURITY_UPDATE_REQUIRED),
        )
        assertFalse(BiometricAvailability.NONE_ENROLLED.isAvailable)
    }
}
