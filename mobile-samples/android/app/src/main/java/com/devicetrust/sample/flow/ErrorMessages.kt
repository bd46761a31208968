package com.devicetrust.sample.flow

import com.devicetrust.core.DeviceTrustException

/** What the card holder can do about a failure. */
enum class NextStep { TRY_AGAIN, WAIT_OR_CALL, SIGN_IN_WITH_PASSWORD, SEND_NEW_CODE, USE_PASSWORD_INSTEAD, NOTHING }

/** A failure in the card holder's words, after the log-in failure table of the guide. */
data class UiMessage(val title: String, val body: String, val next: NextStep)

/** Maps every SDK error to what the screen shows. Plain Kotlin: compile-checked in CI. */
fun messageFor(e: DeviceTrustException): UiMessage = when (e) {
    is DeviceTrustException.InvalidCredentials ->
        UiMessage("User ID or password incorrect", "Try again carefully, or reset your password.", NextStep.TRY_AGAIN)
    is DeviceTrustException.AccountLocked -> {
        val minutes = (e.retryAfterS.toLong() + 59) / 60
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
    is DeviceTrustException.NotSignedIn, is DeviceTrustException.RecentSignInRequired ->
        UiMessage("Please sign in again", "", NextStep.SIGN_IN_WITH_PASSWORD)
    is DeviceTrustException.DeviceLimitReached ->
        UiMessage("Too many trusted devices", "Remove a device you no longer use, then try again.", NextStep.NOTHING)
    is DeviceTrustException.RateLimited ->
        UiMessage("Please wait", "Try again in ${e.retryAfterS} seconds.", NextStep.TRY_AGAIN)
    is DeviceTrustException.InvalidInput ->
        UiMessage("Please check what you entered", e.reason, NextStep.TRY_AGAIN)
    is DeviceTrustException.Network ->
        if (e.retryable) UiMessage("We can't reach American Express right now", "Check your connection and try again.", NextStep.TRY_AGAIN)
        else UiMessage("A secure connection could not be made", "Please update the app or try another network.", NextStep.NOTHING)
    is DeviceTrustException.Server ->
        if (e.code == "delivery_failed") UiMessage("Your code didn't go out", "Log in via a trusted device or call customer service.", NextStep.TRY_AGAIN)
        else UiMessage("Something went wrong", "Please try again later.", NextStep.TRY_AGAIN)
    is DeviceTrustException.KeyStore, is DeviceTrustException.LocalStorage ->
        UiMessage("Something went wrong on this phone", "Sign in with your password.", NextStep.USE_PASSWORD_INSTEAD)
}
