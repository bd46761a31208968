package com.devicetrust.sample.flow

import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.TrustedDevice
import com.devicetrust.sdk.UserVerification
import com.devicetrust.sdk.android.AndroidKeystoreKeyStore

/**
 * The sample's whole biometric sign-in beyond its screens: which user to
 * offer it at launch, whether to offer "Turn on fingerprint sign-in" (and
 * with which policy), turning it on, and the prompts. docs/SDK.md counts
 * these lines ("Android: adding biometric sign-in").
 */
class BiometricSignIn(private val sdk: DeviceTrust, private val keyStore: AndroidKeystoreKeyStore) {
    private val signInPrompt = PromptText("Sign in", "Use your fingerprint, face or screen lock", "Use password")
    private val approvePrompt = PromptText("Approve sign-in", "Confirm it's you on this phone", "Cancel")
    private val enablePrompt = PromptText("Turn on quick sign-in", null, "Not now")
    private val confirmPrompt = PromptText("Confirm it's you", "To change your account settings", "Use password")

    /** At launch: the user who turned biometric sign-in on here most recently, if any (reads local state). */
    suspend fun lastUser(): String? = sdk.localEnrolments().maxByOrNull { it.registeredAt }?.userId

    /**
     * Whether to show the biometric button for [userId]: enabled here, still
     * trusted, and the phone can unlock its key now (no fingerprint left, no
     * screen lock: the password, then turning it on again, retires the key).
     */
    suspend fun canSignIn(userId: String): Boolean = userId.isNotEmpty() && try {
        val enrolment = sdk.localEnrolment(userId)
        enrolment != null && sdk.isBiometricSignInAvailable(userId) && keyStore.availability(enrolment.userVerification).isAvailable
    } catch (e: DeviceTrustException) {
        false
    }

    /**
     * What to offer after a password sign-in: a strong biometric, else the
     * screen lock (no strong biometric enrolled); null: offer nothing.
     */
    fun policyToOffer(): UserVerification? = keyStore.recommendedUserVerification()

    suspend fun enable(deviceName: String): TrustedDevice {
        val policy = policyToOffer() ?: throw DeviceTrustException.BiometricUnavailable(keyStore.availability().reason)
        return sdk.enableBiometricSignIn(deviceName, policy, enablePrompt)
    }

    suspend fun signIn(userId: String): SignInStep = sdk.signInWithBiometric(userId, signInPrompt)

    suspend fun approve(): SignInStep = sdk.approveWithThisDevice(approvePrompt)

    suspend fun confirm(userId: String): SignInStep = sdk.signInWithBiometric(userId, confirmPrompt)
}
