package com.devicetrust.sample.flow

import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.PasswordPolicy
import com.devicetrust.sdk.PasswordRule

/** What the card holder can do about a failure. */
enum class NextStep {
    TRY_AGAIN, WAIT_OR_CALL, SIGN_IN_WITH_PASSWORD, SEND_NEW_CODE, USE_PASSWORD_INSTEAD,
    /** The session is fine but the action needs a fresh proof: confirm it's you, then the action is repeated. */
    CONFIRM_IT_IS_YOU,
    /** The password reset in progress is gone: start it again. */
    START_RECOVERY_AGAIN,
    NOTHING,
}

/** A failure in the card holder's words, after the log-in failure table of the guide. */
data class UiMessage(val title: String, val body: String, val next: NextStep)

/**
 * One password rule in plain words. With the [policy] (the screen where the
 * user types a new password has it) the length rules name the numbers.
 */
fun ruleText(rule: PasswordRule, policy: PasswordPolicy? = null): String = when (rule) {
    is PasswordRule.TooShort -> policy?.let { "Use at least ${it.minLength} characters" } ?: "Use more characters"
    is PasswordRule.TooLong -> policy?.let { "Use at most ${it.maxLength} characters" } ?: "Use fewer characters"
    is PasswordRule.TooFewClasses ->
        policy?.let { "Mix at least ${it.classesRequired} of: lower case, upper case, digits, symbols" }
            ?: "Mix more of: lower case, upper case, digits, symbols"
    is PasswordRule.Common -> "Avoid common passwords: this one appears in lists of stolen passwords"
    is PasswordRule.ContainsUserId -> "Don't include your user ID"
    is PasswordRule.SameAsCurrent -> "Choose a password you don't use now"
    is PasswordRule.Other -> "Choose another password"
}

/** Maps every SDK error to what the screen shows. Plain Kotlin: compile-checked in CI. */
fun messageFor(e: DeviceTrustException): UiMessage = when (e) {
    is DeviceTrustException.InvalidCredentials ->
        UiMessage("User ID or password incorrect", "Try again carefully, or reset your password.", NextStep.TRY_AGAIN)
    is DeviceTrustException.AccountLocked -> {
        val minutes = (e.retryAfterSecs.toLong() + 59) / 60
        UiMessage("Account temporarily locked", "Too many failed attempts. Wait $minutes minutes or call the number on your card.", NextStep.WAIT_OR_CALL)
    }
    is DeviceTrustException.DeviceNotRecognized ->
        UiMessage("We don't recognise this device", "Sign in with your password; we'll send a verification code to your e-mail or phone.", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.ReauthorisationRequired ->
        UiMessage("Please re-authorise this device", "Sign in with your password and a verification code to keep using fingerprint or face sign-in.", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.OtpInvalid ->
        UiMessage("That code isn't right", "${e.attemptsLeft} tries left with this code.", NextStep.TRY_AGAIN)
    is DeviceTrustException.OtpExpired ->
        UiMessage("This code has expired", "Send a new code.", NextStep.SEND_NEW_CODE)
    is DeviceTrustException.SignInExpired, is DeviceTrustException.NoSignInInProgress ->
        UiMessage("Your sign-in timed out", "Please start again.", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.NoRecoveryInProgress ->
        UiMessage("Your password reset timed out", "Please start again with your user ID and security code.", NextStep.START_RECOVERY_AGAIN)
    is DeviceTrustException.BiometricCancelled ->
        UiMessage("Cancelled", "", NextStep.NOTHING)
    is DeviceTrustException.BiometricsChanged ->
        UiMessage("Your fingerprints or face changed", "For your security, sign in with your password to turn fingerprint or face sign-in back on.", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.BiometricUnavailable ->
        UiMessage("Fingerprint or face sign-in is unavailable", e.reason, NextStep.USE_PASSWORD_INSTEAD)
    is DeviceTrustException.BiometricLockedOut ->
        UiMessage("Too many attempts", "Unlock your phone with its PIN, or sign in with your password.", NextStep.USE_PASSWORD_INSTEAD)
    is DeviceTrustException.NotEnrolledOnThisDevice ->
        UiMessage("Fingerprint or face sign-in is off", "Sign in with your password to turn it on.", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.NotSignedIn ->
        UiMessage("Please sign in again", "", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.RecentSignInRequired ->
        UiMessage("Please confirm it's you", "For your security, confirm with your fingerprint or face, or your password and a code. Then we'll finish what you started.", NextStep.CONFIRM_IT_IS_YOU)
    is DeviceTrustException.DeviceLimitReached ->
        UiMessage("Too many trusted devices", "Remove a device you no longer use, then try again.", NextStep.NOTHING)
    is DeviceTrustException.AttestationInvalid ->
        UiMessage("Fingerprint or face sign-in isn't available on this phone", "This phone couldn't prove its security hardware to us. Keep signing in with your password and a code.", NextStep.USE_PASSWORD_INSTEAD)
    is DeviceTrustException.PasswordRejected ->
        UiMessage(
            "Choose another password",
            if (e.reasons.isEmpty()) "This password doesn't meet the rules."
            else e.reasons.distinct().joinToString("\n") { "• " + ruleText(it) },
            NextStep.TRY_AGAIN,
        )
    is DeviceTrustException.CardNotRecognized ->
        UiMessage("The card number, card ID or name doesn't match our records", "Check them against your card, with your name as printed on it.", NextStep.TRY_AGAIN)
    is DeviceTrustException.CardNotActivated ->
        UiMessage("Activate your card first", "Follow the steps that came with your card, then try again.", NextStep.NOTHING)
    is DeviceTrustException.CardAlreadyEnrolled ->
        UiMessage("This card already has online access", "Log in with your user ID, or use \"Forgot user ID\".", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.UserIdTaken ->
        UiMessage("That user ID is taken", "Choose another one.", NextStep.TRY_AGAIN)
    is DeviceTrustException.DeliveryFailed ->
        UiMessage("Your code didn't go out", "We couldn't send the code. Try again in a moment, use the other way to receive it, or approve on a trusted device.", NextStep.TRY_AGAIN)
    is DeviceTrustException.RateLimited ->
        UiMessage("Please wait", "Try again in ${e.retryAfterSecs} seconds.", NextStep.TRY_AGAIN)
    is DeviceTrustException.InvalidInput ->
        UiMessage("Please check what you entered", e.reason, NextStep.TRY_AGAIN)
    is DeviceTrustException.Network ->
        if (e.retryable) UiMessage("We can't reach American Express right now", "Check your connection and try again.", NextStep.TRY_AGAIN)
        else UiMessage("A secure connection could not be made", "Please update the app or try another network.", NextStep.NOTHING)
    is DeviceTrustException.Server ->
        UiMessage("Something went wrong", "Please try again later.", NextStep.TRY_AGAIN)
    is DeviceTrustException.KeyStoreTimeout ->
        UiMessage("The fingerprint or face check took too long", "Try again, or sign in with your password.", NextStep.USE_PASSWORD_INSTEAD)
    is DeviceTrustException.KeyStore, is DeviceTrustException.LocalStorage ->
        UiMessage("Something went wrong on this phone", "Sign in with your password.", NextStep.USE_PASSWORD_INSTEAD)
    is DeviceTrustException.Internal ->
        UiMessage("Something went wrong", "Please try again later.", NextStep.TRY_AGAIN)
}
