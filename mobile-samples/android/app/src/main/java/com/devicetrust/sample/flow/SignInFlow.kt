package com.devicetrust.sample.flow

import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.KnownAccount
import com.devicetrust.sdk.LinkedCard
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sdk.OtpOption
import com.devicetrust.sdk.PasswordPolicy
import com.devicetrust.sdk.PendingContactChange
import com.devicetrust.sdk.Profile
import com.devicetrust.sdk.SecurityEvent
import com.devicetrust.sdk.SessionInfo
import com.devicetrust.sdk.StepUpReason
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.TrustedDevice
import com.devicetrust.sdk.UserVerification
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/** The screen the app shows. */
sealed interface Screen {
    /** A screen of a signed-in user: a failure there keeps the user on it unless the session ended. */
    sealed interface SignedInArea : Screen

    /** A step of a password reset: "start again" there means the reset, not a sign-in. */
    sealed interface RecoveryArea : Screen

    /**
     * Log in as [userId] (biometric when [biometricAvailable]), or pick
     * another of the [accounts] on this phone (a signed-in one is switched
     * to, without a sign-in).
     */
    data class SignIn(val userId: String, val biometricAvailable: Boolean, val accounts: List<KnownAccount> = emptyList()) : Screen
    data class Enrolment(val name: String, val email: String) : Screen

    /** [confirming]: this second factor confirms it's the user for an account change (it can be cancelled). */
    data class SecondFactor(val options: List<OtpOption>, val canApprove: Boolean, val sentTo: String?, val confirming: Boolean = false) : Screen
    /** "Turn on quick sign-in", with the policy this phone can give the key (biometric or screen lock). */
    data class OfferBiometric(val policy: UserVerification) : SignedInArea
    data class Home(val session: SessionInfo, val devices: List<TrustedDevice>) : SignedInArea

    // Signed out: online access from a card, and the ways back in.
    data class CreateAccount(val policy: PasswordPolicy?) : Screen
    data class ForgotUserId(val sent: Boolean) : Screen
    data class RecoveryStart(val userId: String) : Screen
    data class RecoveryCode(val options: List<OtpOption>, val sentTo: String?) : RecoveryArea
    data class RecoveryNewPassword(val userId: String, val policy: PasswordPolicy?) : RecoveryArea

    // Signed in: account settings.
    data class Settings(val profile: Profile) : SignedInArea
    data class ChangePassword(val userId: String, val policy: PasswordPolicy?) : SignedInArea

    /** A new e-mail ([OtpChannel.EMAIL]) or mobile number ([OtpChannel.SMS]); [current] is on file now. */
    data class ChangeContact(val channel: OtpChannel, val current: String?, val draft: String = "") : SignedInArea
    data class ConfirmContact(val pending: PendingContactChange) : SignedInArea
    data object ChangeSecurityCode : SignedInArea
    data class SecurityEvents(val events: List<SecurityEvent>) : SignedInArea
    data class Cards(val cards: List<LinkedCard>) : SignedInArea

    /**
     * "Confirm it's you": an account change needs a recent strong sign-in
     * (RecentSignInRequired). Biometric when enabled here, else password +
     * code; then the change the user asked for is repeated.
     */
    data class ConfirmItIsYou(val userId: String, val biometricAvailable: Boolean) : SignedInArea
}

/**
 * The sign-in journey, online access from a card, "forgot user ID /
 * password" and account settings as a small state machine the UI renders:
 * every action runs the SDK call, then moves to the next screen or keeps the
 * screen and sets [message]. Plain Kotlin (no AndroidX), so it is
 * compile-checked in CI; the Compose screens only render [screen],
 * [message] and [busy].
 */
class SignInFlow(private val sdk: DeviceTrust, private val biometric: BiometricSignIn) {
    private val _screen = MutableStateFlow<Screen>(Screen.SignIn("", false))
    val screen: StateFlow<Screen> = _screen.asStateFlow()
    private val _message = MutableStateFlow<UiMessage?>(null)
    val message: StateFlow<UiMessage?> = _message.asStateFlow()
    private val _busy = MutableStateFlow(false)
    val busy: StateFlow<Boolean> = _busy.asStateFlow()
    private var userId = ""

    private val account by lazy { sdk.account() }
    private val recovery by lazy { sdk.recovery() }
    private var policy: PasswordPolicy? = null
    private var profile: Profile? = null

    /** The action running now, when "confirm it's you" may repeat it. */
    private var retry: (suspend () -> Unit)? = null

    /** The action to repeat once the user has confirmed it's them, and where to go back if they cancel. */
    private var resume: (suspend () -> Unit)? = null
    private var returnTo: Screen? = null

    /** The password reset in progress: its code screen and the code typed there. */
    private var recoveryCodeScreen: Screen.RecoveryCode? = null
    private var recoveryCode = ""

    /** The contact change asked for, to ask again for a new code. */
    private var contactChange: Pair<OtpChannel, String>? = null

    /**
     * At launch (reads local state: not on the main thread): home when the
     * session kept before the restart opens (sealed by the app's
     * `SessionSealer`), else the log-in screen offering biometric sign-in
     * to the last user who enabled it here.
     */
    suspend fun start() = run { landing() }

    private suspend fun landing() {
        resume = null
        returnTo = null
        if (sdk.session() != null) return home()
        userId = try { biometric.lastUser() } catch (e: DeviceTrustException) { null } ?: ""
        _screen.value = signInScreen()
    }

    private suspend fun biometricAvailable(user: String) = biometric.canSignIn(user)

    /** Every account this phone knows, for the picker (local state only). */
    private suspend fun knownAccounts(): List<KnownAccount> =
        try { sdk.accounts() } catch (e: DeviceTrustException) { emptyList() }

    private suspend fun signInScreen() = Screen.SignIn(userId, biometricAvailable(userId), knownAccounts())

    /**
     * Runs one user action. [reauth]: the action is an account change that
     * may answer RecentSignInRequired; the flow then asks the user to confirm
     * it's them and repeats it.
     */
    private suspend fun run(reauth: Boolean = false, action: suspend () -> Unit) {
        _busy.value = true
        _message.value = null
        retry = if (reauth) action else null
        try {
            action()
        } catch (e: DeviceTrustException) {
            failed(e)
        } finally {
            retry = null
            _busy.value = false
        }
    }

    private suspend fun failed(e: DeviceTrustException) {
        val current = _screen.value
        val m = wording(e, current)
        val again = retry
        when {
            e is DeviceTrustException.RecentSignInRequired && again != null -> {
                // The session is fine: confirm it's the user, then repeat. The screen says so.
                resume = again
                if (current !is Screen.ConfirmItIsYou && current !is Screen.SecondFactor) returnTo = current
                _screen.value = Screen.ConfirmItIsYou(userId, biometricAvailable(userId))
                return
            }
            e is DeviceTrustException.NotSignedIn -> {
                resume = null
                returnTo = null
                _screen.value = signInScreen()
            }
            // Confirming it's the user failed in a way that needs the password: stay in "confirm it's you".
            resume != null && (m.next == NextStep.SIGN_IN_WITH_PASSWORD || m.next == NextStep.USE_PASSWORD_INSTEAD) ->
                _screen.value = Screen.ConfirmItIsYou(userId, biometricAvailable(userId))
            m.next == NextStep.START_RECOVERY_AGAIN || (current is Screen.RecoveryArea && m.next == NextStep.SIGN_IN_WITH_PASSWORD) ->
                _screen.value = Screen.RecoveryStart(userId)
            current is Screen.SignedInArea -> Unit
            m.next == NextStep.SIGN_IN_WITH_PASSWORD -> _screen.value = signInScreen()
        }
        if (m.next != NextStep.NOTHING || m.body.isNotEmpty()) _message.value = m
    }

    /** The error's words, where the screen changes what they mean. */
    private fun wording(e: DeviceTrustException, current: Screen): UiMessage = when {
        e is DeviceTrustException.InvalidCredentials && current is Screen.RecoveryStart ->
            UiMessage("User ID or security code incorrect", "Check both and try again.", NextStep.TRY_AGAIN)
        e is DeviceTrustException.InvalidCredentials && current is Screen.ChangePassword ->
            UiMessage("Your current password isn't right", "Try again carefully. Too many wrong tries lock your account.", NextStep.TRY_AGAIN)
        e is DeviceTrustException.CardAlreadyEnrolled && current is Screen.Cards ->
            UiMessage("This card is already registered", "It belongs to a user ID already. Log in with that user ID to use it.", NextStep.NOTHING)
        e is DeviceTrustException.OtpExpired && current is Screen.ChangeContact ->
            UiMessage("This code has expired", "Ask for a new code: we'll send it to the new address.", NextStep.TRY_AGAIN)
        else -> messageFor(e)
    }

    /** The risk engine's reasons in words ("a new network and an unusual time of day"). */
    private fun describe(reasons: List<StepUpReason>): String {
        val words = reasons.map { reason ->
            when (reason) {
                is StepUpReason.NewNetwork -> "a new network"
                is StepUpReason.NewDevice -> "a device not used lately"
                is StepUpReason.UnusualHour -> "an unusual time of day"
                is StepUpReason.Velocity -> "many sign-ins in a short time"
                is StepUpReason.RecentFailures -> "recent failed attempts"
                is StepUpReason.ScorerUnavailable -> "a check that could not be made"
                is StepUpReason.Other -> reason.name.replace('_', ' ')
            }
        }
        return when (words.size) {
            0 -> "extra care"
            1 -> words[0]
            else -> words.dropLast(1).joinToString(", ") + " and " + words.last()
        }
    }

    private fun notice(title: String, body: String) {
        _message.value = UiMessage(title, body, NextStep.NOTHING)
    }

    private suspend fun show(step: SignInStep) {
        val confirming = resume != null
        when (step) {
            is SignInStep.EnrolmentRequired -> _screen.value = Screen.Enrolment(step.name, step.email)
            is SignInStep.SecondFactorRequired -> {
                _screen.value = Screen.SecondFactor(step.otpOptions, step.thisDeviceCanApprove, null, confirming)
                if (step.reasons.isNotEmpty()) {
                    // The risk engine asked although this phone could approve: say why.
                    notice("One more check", "We ask for a code this time because of ${describe(step.reasons)}.")
                }
            }
            is SignInStep.SignedIn -> {
                val pending = resume
                if (pending != null) {
                    // Confirmed: repeat the change the user asked for (a failure now is that change's).
                    resume = null
                    retry = pending
                    try {
                        pending()
                    } catch (e: DeviceTrustException) {
                        // The change itself failed (a rejected password, say): back to its screen to fix it.
                        if (e !is DeviceTrustException.RecentSignInRequired) {
                            returnTo?.let { _screen.value = it }
                            returnTo = null
                        }
                        throw e
                    }
                    returnTo = null
                } else {
                    // Offered only when the phone can gate a key now (a screen lock, and a biometric or Android 10+).
                    val offer = if (biometricAvailable(step.session.userId)) null else biometric.policyToOffer()
                    _screen.value = if (offer != null) Screen.OfferBiometric(offer) else Screen.Home(step.session, sdk.trustedDevices())
                }
            }
        }
    }

    // ---- Sign-in ----

    /** A sign-in from the log-in screen (not "confirm it's you"): nothing waits to be repeated. */
    private fun freshSignIn() {
        resume = null
        returnTo = null
    }

    suspend fun signInWithPassword(user: String, password: String) = run {
        freshSignIn()
        userId = user.trim()
        show(sdk.signInWithPassword(userId, password))
    }

    suspend fun signInWithBiometric() = run {
        freshSignIn()
        show(biometric.signIn(userId))
    }

    suspend fun enrol(securityCode: String, mobile: String?) = run {
        show(sdk.completeEnrolment(securityCode, mobile?.takeIf { it.isNotBlank() }))
    }

    suspend fun sendCode(channel: OtpChannel) = run {
        val sent = sdk.sendOtp(channel)
        val current = _screen.value as? Screen.SecondFactor ?: return@run
        _screen.value = current.copy(sentTo = sent.destination)
    }

    suspend fun verify(code: String) = run { show(sdk.verifyOtp(code)) }

    suspend fun approveWithThisDevice() = run { show(biometric.approve()) }

    /** Needs a strong session: after "confirm it's you" it is repeated. */
    suspend fun enableBiometric(deviceName: String) = run(reauth = true) {
        biometric.enable(deviceName)
        home()
    }

    suspend fun skipBiometric() = run { home() }

    private suspend fun home() {
        val session = sdk.session() ?: throw DeviceTrustException.NotSignedIn()
        userId = session.userId
        _screen.value = Screen.Home(session, sdk.trustedDevices())
    }

    suspend fun removeDevice(deviceId: String) = run {
        sdk.removeDevice(deviceId)
        if (sdk.session() == null) landing() else home()
    }

    /** Signs the account in use out; the phone's other accounts stay signed in (the picker lists them). */
    suspend fun signOut() = run {
        sdk.signOut()
        landing()
    }

    // ---- Several accounts on one phone ----

    /** From home: the picker, to switch to another account or log in with one more; this one stays signed in. */
    suspend fun openAccounts() = run {
        freshSignIn()
        userId = ""
        _screen.value = signInScreen()
    }

    /**
     * An account picked in the list: one signed in here becomes the account
     * in use (no sign-in); another is offered its log-in, with biometric
     * sign-in when it has it here.
     */
    suspend fun pickAccount(picked: KnownAccount) = run {
        freshSignIn()
        userId = picked.userId
        if (picked.signedIn) {
            try {
                sdk.switchAccount(picked.userId)
                return@run home()
            } catch (e: DeviceTrustException.NotSignedIn) {
                // Its kept session had ended (revoked, or it could not be opened): log in again.
            }
        }
        _screen.value = signInScreen()
    }

    suspend fun backToSignIn() {
        freshSignIn()
        _message.value = null
        _screen.value = signInScreen()
    }

    fun dismissMessage() {
        _message.value = null
    }

    /** The password rules, fetched once; null when they cannot be fetched (the server still checks). */
    private suspend fun passwordPolicy(): PasswordPolicy? =
        policy ?: try { sdk.passwordPolicy().also { policy = it } } catch (e: DeviceTrustException) { null }

    // ---- Online access from a card ----

    suspend fun openCreateAccount() = run { _screen.value = Screen.CreateAccount(passwordPolicy()) }

    /** Creates the user ID from the card, then signs in with it: the one-time enrolment follows. */
    suspend fun createAccount(cardNumber: String, cardId: String, name: String, newUserId: String, password: String) = run {
        freshSignIn()
        val created = sdk.createAccount(cardNumber.filter(Char::isDigit), cardId.trim(), name, newUserId.trim(), password)
        userId = created
        show(sdk.signInWithPassword(created, password))
    }

    // ---- Forgot user ID ----

    fun openForgotUserId() {
        _message.value = null
        _screen.value = Screen.ForgotUserId(sent = false)
    }

    /** The server never says whether the details matched: the screen says "if they match, we e-mailed it". */
    suspend fun forgotUserId(email: String, securityCode: String) = run {
        recovery.forgotUserId(email.trim(), securityCode)
        _screen.value = Screen.ForgotUserId(sent = true)
    }

    // ---- Forgot password: security code → one-time code → new password ----

    fun openForgotPassword() {
        _message.value = null
        _screen.value = Screen.RecoveryStart(userId)
    }

    suspend fun startPasswordRecovery(user: String, securityCode: String) = run {
        userId = user.trim()
        val started = recovery.startPasswordRecovery(userId, securityCode)
        recoveryCode = ""
        val screen = Screen.RecoveryCode(started.otpOptions, null)
        recoveryCodeScreen = screen
        _screen.value = screen
    }

    suspend fun sendRecoveryCode(channel: OtpChannel) = run {
        val sent = recovery.sendOtp(channel)
        val current = _screen.value as? Screen.RecoveryCode ?: return@run
        val screen = current.copy(sentTo = sent.destination)
        recoveryCodeScreen = screen
        _screen.value = screen
    }

    /** The code is checked together with the new password, on the next screen. */
    suspend fun recoveryCodeEntered(code: String) = run {
        recoveryCode = code
        _screen.value = Screen.RecoveryNewPassword(userId, passwordPolicy())
    }

    suspend fun completePasswordRecovery(newPassword: String) = run {
        try {
            recovery.completePasswordRecovery(recoveryCode, newPassword)
        } catch (e: DeviceTrustException) {
            // A wrong or expired code: back to the code (a new one, if expired). A rejected password stays here.
            val codeScreen = recoveryCodeScreen
            if (codeScreen != null && (e is DeviceTrustException.OtpInvalid || e is DeviceTrustException.OtpExpired)) {
                _screen.value = if (e is DeviceTrustException.OtpExpired) codeScreen.copy(sentTo = null) else codeScreen
            }
            throw e
        }
        recoveryCodeScreen = null
        recoveryCode = ""
        // Every session of this user ended; biometric sign-in comes back after a password + code sign-in.
        _screen.value = signInScreen()
        notice("Password changed", "Log in with your new password. We'll ask for a code once, to confirm it's you.")
    }

    // ---- Account settings (signed in) ----

    private suspend fun settings() {
        val p = account.profile()
        profile = p
        userId = p.userId
        _screen.value = Screen.Settings(p)
    }

    suspend fun openSettings() = run { settings() }

    suspend fun backToHome() = run { home() }

    /** Leaves a settings sub-screen (or "confirm it's you") without a network call when it can. */
    suspend fun backToSettings() = run {
        resume = null
        returnTo = null
        profile?.let { _screen.value = Screen.Settings(it) } ?: settings()
    }

    /** "Confirm it's you" cancelled: back where the user was, nothing changed. */
    suspend fun cancelConfirm() {
        resume = null
        _message.value = null
        _screen.value = returnTo ?: profile?.let { Screen.Settings(it) } ?: signInScreen()
        returnTo = null
    }

    suspend fun confirmWithBiometric() = run { show(biometric.confirm(userId)) }

    /** Password, then a code (the SecondFactor screen, in "confirming" mode). */
    suspend fun confirmWithPassword(password: String) = run { show(sdk.signInWithPassword(userId, password)) }

    suspend fun openChangePassword() = run { _screen.value = Screen.ChangePassword(userId, passwordPolicy()) }

    suspend fun changePassword(current: String, new: String) = run(reauth = true) {
        account.changePassword(current, new)
        settings()
        notice("Password changed", "You stay logged in here; everywhere else you were logged out.")
    }

    fun openChangeContact(channel: OtpChannel, draft: String = "") {
        _message.value = null
        val p = profile
        _screen.value = Screen.ChangeContact(channel, if (channel == OtpChannel.EMAIL) p?.email else p?.mobile, draft)
    }

    /** Sends a code to the new address; the change happens when it is confirmed. */
    suspend fun requestContactChange(channel: OtpChannel, value: String) = run(reauth = true) {
        contactChange = channel to value.trim()
        val pending = if (channel == OtpChannel.EMAIL) account.changeEmail(value.trim()) else account.changeMobile(value.trim())
        _screen.value = Screen.ConfirmContact(pending)
    }

    /** A new code means asking for the change again (the SDK keeps one change at a time). */
    suspend fun resendContactCode() {
        val (channel, value) = contactChange ?: return openChangeContact(OtpChannel.EMAIL)
        requestContactChange(channel, value)
    }

    suspend fun confirmContactChange(code: String) = run {
        val p = try {
            account.confirmContactChange(code)
        } catch (e: DeviceTrustException.OtpExpired) {
            // The code or the change expired: ask for the change again.
            contactChange?.let { (channel, value) -> openChangeContact(channel, value) }
            throw e
        }
        val channel = contactChange?.first
        contactChange = null
        profile = p
        _screen.value = Screen.Settings(p)
        val now = if (channel == OtpChannel.SMS) p.mobile else p.email
        notice("Details updated", "We'll use ${now ?: "your new details"} from now on for codes and alerts.")
    }

    suspend fun removeMobile() = run(reauth = true) {
        account.removeMobile()
        settings()
        notice("Mobile number removed", "Codes will go to your e-mail.")
    }

    fun openChangeSecurityCode() {
        _message.value = null
        _screen.value = Screen.ChangeSecurityCode
    }

    suspend fun changeSecurityCode(code: String) = run(reauth = true) {
        account.changeSecurityCode(code)
        settings()
        notice("Security code changed", "Use the new code if you ever forget your user ID or password.")
    }

    suspend fun openSecurityEvents() = run { _screen.value = Screen.SecurityEvents(account.securityEvents(50u)) }

    suspend fun openCards() = run { _screen.value = Screen.Cards(account.linkedCards()) }

    suspend fun linkCard(cardNumber: String, cardId: String) = run(reauth = true) {
        val card = account.linkCard(cardNumber.filter(Char::isDigit), cardId.trim())
        _screen.value = Screen.Cards(account.linkedCards())
        notice("Card linked", "The card ending ${card.last4} is now linked to your user ID.")
    }
}
