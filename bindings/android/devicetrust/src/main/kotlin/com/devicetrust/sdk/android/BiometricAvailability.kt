package com.devicetrust.sdk.android

import android.app.KeyguardManager
import android.content.Context
import android.hardware.biometrics.BiometricManager
import android.os.Build
import com.devicetrust.sdk.UserVerification

/**
 * Whether a key of some [UserVerification] can be created and used on this
 * phone now, from [AndroidKeystoreKeyStore.availability]. The app offers
 * "Turn on fingerprint sign-in" only on [AVAILABLE]; [NONE_ENROLLED] is the
 * case for a hint ("add a fingerprint in Settings", or offer
 * `DEVICE_CREDENTIAL` instead).
 */
enum class BiometricAvailability(val reason: String) {
    AVAILABLE("available"),

    /** The phone has the hardware but no strong biometric is enrolled. */
    NONE_ENROLLED("no fingerprint or face strong enough for sign-in is enrolled"),

    /** No PIN, pattern or password: Android creates no key that needs the user without one. */
    NO_SECURE_LOCK_SCREEN("the phone has no screen lock (PIN, pattern or password)"),

    /** No strong biometric hardware at all. */
    NO_HARDWARE("the phone has no biometric hardware strong enough for sign-in"),

    /** The sensor is busy or unavailable for now; ask again later. */
    TEMPORARILY_UNAVAILABLE("the biometric sensor is unavailable right now"),

    /** A security vulnerability was found in the sensor; an update is needed. */
    SECURITY_UPDATE_REQUIRED("the biometric sensor needs a security update"),

    /** This Android version cannot gate a key that way (device credential only before Android 10). */
    UNSUPPORTED_ANDROID_VERSION("this Android version cannot protect a key with the screen lock alone"),
    ;

    val isAvailable: Boolean get() = this == AVAILABLE
}

internal object Availability {
    fun of(context: Context, uv: UserVerification): BiometricAvailability {
        if (uv == UserVerification.NONE) return BiometricAvailability.AVAILABLE
        val keyguard = context.getSystemService(KeyguardManager::class.java)
        if (keyguard?.isDeviceSecure != true) return BiometricAvailability.NO_SECURE_LOCK_SCREEN
        val sdk = Build.VERSION.SDK_INT
        return when (uv) {
            UserVerification.BIOMETRIC -> strongBiometric(context)
            // API 30+: either unlocks the key. API 29: the prompt offers the
            // credential. API 28: the prompt is biometric only, so it needs one.
            UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL ->
                if (sdk >= 29) BiometricAvailability.AVAILABLE else strongBiometric(context)
            UserVerification.DEVICE_CREDENTIAL ->
                if (sdk >= 29) BiometricAvailability.AVAILABLE else BiometricAvailability.UNSUPPORTED_ANDROID_VERSION
            UserVerification.NONE -> BiometricAvailability.AVAILABLE
        }
    }

    private fun strongBiometric(context: Context): BiometricAvailability {
        // Build.VERSION.SDK_INT spelled out in each guard, where lint's NewApi check sees it.
        if (Build.VERSION.SDK_INT >= 29) {
            val manager = context.getSystemService(BiometricManager::class.java)
                ?: return BiometricAvailability.NO_HARDWARE
            val code = if (Build.VERSION.SDK_INT >= 30) {
                manager.canAuthenticate(BiometricManager.Authenticators.BIOMETRIC_STRONG)
            } else {
                // API 29 has only the no-argument form; its biometrics are the strong ones then.
                @Suppress("DEPRECATION")
                manager.canAuthenticate()
            }
            return fromCanAuthenticate(code)
        }
        // API 28: no BiometricManager; fingerprint was the one strong biometric.
        @Suppress("DEPRECATION")
        val fingerprint = context.getSystemService(android.hardware.fingerprint.FingerprintManager::class.java)
        @Suppress("DEPRECATION")
        return when {
            fingerprint == null || !fingerprint.isHardwareDetected -> BiometricAvailability.NO_HARDWARE
            !fingerprint.hasEnrolledFingerprints() -> BiometricAvailability.NONE_ENROLLED
            else -> BiometricAvailability.AVAILABLE
        }
    }

    /** `BiometricManager.canAuthenticate` codes → availability. */
    fun fromCanAuthenticate(code: Int): BiometricAvailability = when (code) {
        BiometricManager.BIOMETRIC_SUCCESS -> BiometricAvailability.AVAILABLE
        BiometricManager.BIOMETRIC_ERROR_NONE_ENROLLED -> BiometricAvailability.NONE_ENROLLED
        BiometricManager.BIOMETRIC_ERROR_NO_HARDWARE -> BiometricAvailability.NO_HARDWARE
        BiometricManager.BIOMETRIC_ERROR_SECURITY_UPDATE_REQUIRED -> BiometricAvailability.SECURITY_UPDATE_REQUIRED
        // BIOMETRIC_ERROR_HW_UNAVAILABLE, and codes a later Android may add.
        else -> BiometricAvailability.TEMPORARILY_UNAVAILABLE
    }
}
