package com.devicetrust.sample.flow

import com.devicetrust.core.BiometricPrompt
import com.devicetrust.core.DeviceTrustException
import com.devicetrust.core.OtpChannel
import com.devicetrust.core.OtpOption
import com.devicetrust.core.Profile
import com.devicetrust.core.SessionInfo
import com.devicetrust.core.SignInStep
import com.devicetrust.core.TrustedDevice
import com.devicetrust.core.UserVerification
import com.devicetrust.sdk.DeviceTrustClient
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/** The screen the app shows. */
sealed interface Screen {
    data class SignIn(val userId: String, val biometricAvailable: Boolean) : Screen
    data class Enrolment(val profile: Profile) : Screen
    data class SecondFactor(val options: List<OtpOption>, val canApprove: Boolean, val sentTo: String?) : Screen
    data object OfferBiometric : Screen
    data class Home(val session: SessionInfo, val devices: List<TrustedDevice>) : Screen
}

/**
 * The sign-in journey as a small state machine the UI renders: every action
 * runs the SDK call, then moves to the next screen or keeps the screen and
 * sets [message]. Plain Kotlin (no AndroidX), so it is compile-checked in CI;
 * the Compose screens only render [screen], [message] and [busy].
 */
class SignInFlow(private val sdk: DeviceTrustClient, private val prompts: Prompts) {
    /** The app's words for the system biometric prompt. */
    data class Prompts(val signIn: BiometricPrompt, val approve: BiometricPrompt, val enable: BiometricPrompt)

    private val _screen = MutableStateFlow<Screen>(Screen.SignIn("", false))
    val screen: StateFlow<Screen> = _screen.asStateFlow()
    private val _message = MutableStateFlow<UiMessage?>(null)
    val message: StateFlow<UiMessage?> = _message.asStateFlow()
    private val _busy = MutableStateFlow(false)
    val busy: StateFlow<Boolean> = _busy.asStateFlow()
    private var userId = ""

    /** At launch: offer biometric sign-in to the last user who enabled it here. */
    fun start() {
        val enrolled = sdk.localEnrolments().firstOrNull()
        userId = enrolled?.userId ?: ""
        _screen.value = Screen.SignIn(userId, enrolled != null && sdk.isBiometricSignInAvailable(userId))
    }

    private suspend fun run(action: suspend () -> Unit) {
        _busy.value = true
        _message.value = null
        try {
            action()
        } catch (e: DeviceTrustException) {
            val m = messageFor(e)
            if (m.next != NextStep.NOTHING || m.body.isNotEmpty()) _message.value = m
            if (m.next == NextStep.SIGN_IN_WITH_PASSWORD) _screen.value = Screen.SignIn(userId, sdk.isBiometricSignInAvailable(userId))
        } finally {
            _busy.value = false
        }
    }

    private suspend fun show(step: SignInStep) {
        _screen.value = when (step) {
            is SignInStep.EnrolmentRequired -> Screen.Enrolment(step.profile)
            is SignInStep.SecondFactorRequired -> Screen.SecondFactor(step.otpOptions, step.thisDeviceCanApprove, null)
            is SignInStep.SignedIn ->
                if (!sdk.isBiometricSignInAvailable(step.session.userId)) Screen.OfferBiometric
                else Screen.Home(step.session, sdk.trustedDevices())
        }
    }

    suspend fun signInWithPassword(user: String, password: String) = run {
        userId = user
        show(sdk.signInWithPassword(user, password))
    }

    suspend fun signInWithBiometric() = run { show(sdk.signInWithBiometric(userId, prompts.signIn)) }

    suspend fun enrol(securityCode: String, mobile: String?) = run {
        show(sdk.completeEnrolment(securityCode, mobile?.takeIf { it.isNotBlank() }))
    }

    suspend fun sendCode(channel: OtpChannel) = run {
        val sent = sdk.sendOtp(channel)
        val current = _screen.value as? Screen.SecondFactor ?: return@run
        _screen.value = current.copy(sentTo = sent.destination)
    }

    suspend fun verify(code: String) = run { show(sdk.verifyOtp(code)) }

    suspend fun approveWithThisDevice() = run { show(sdk.approveWithThisDevice(prompts.approve)) }

    suspend fun enableBiometric(deviceName: String) = run {
        sdk.enableBiometricSignIn(deviceName, UserVerification.BIOMETRIC, prompts.enable)
        home()
    }

    suspend fun skipBiometric() = run { home() }

    private suspend fun home() {
        val session = sdk.session() ?: throw DeviceTrustException.NotSignedIn()
        _screen.value = Screen.Home(session, sdk.trustedDevices())
    }

    suspend fun removeDevice(deviceId: String) = run {
        sdk.removeDevice(deviceId)
        if (sdk.session() == null) start() else home()
    }

    suspend fun signOut() = run {
        sdk.signOut()
        start()
    }

    fun dismissMessage() {
        _message.value = null
    }
}
