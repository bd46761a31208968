package com.devicetrust.sample.flow

import com.devicetrust.sdk.KnownAccount
import com.devicetrust.sdk.PasswordPolicy
import com.devicetrust.sdk.PasswordRule
import com.devicetrust.sdk.SecurityEventType
import com.devicetrust.sdk.checkPassword

/** One password rule, as the screen lists it under the field while the user types. */
data class RuleCheck(val text: String, val met: Boolean)

/**
 * The policy's rules with a tick or a cross for [password], from the SDK's
 * local check (`checkPassword`): length, character mix, not the user ID.
 * "Too long" is listed only once it is broken. The server still has the last
 * word: it alone knows common and breached passwords, and the current one,
 * and answers `PasswordRejected` with every rule broken. Without a policy
 * (it could not be fetched) there is nothing to show.
 */
fun passwordChecks(policy: PasswordPolicy?, password: String, userId: String): List<RuleCheck> {
    if (policy == null) return emptyList()
    val broken = checkPassword(policy, password, userId).toSet()
    val listed = buildList {
        add(PasswordRule.TooShort)
        if (PasswordRule.TooLong in broken) add(PasswordRule.TooLong)
        if (policy.classesRequired > 1u) add(PasswordRule.TooFewClasses)
        if (userId.isNotBlank()) add(PasswordRule.ContainsUserId)
    }
    return listed.map { RuleCheck(ruleText(it, policy), password.isNotEmpty() && it !in broken) }
}

/** Whether the local check finds nothing wrong (the button to submit is enabled then). */
fun passwordLooksAcceptable(policy: PasswordPolicy?, password: String, userId: String): Boolean =
    password.isNotEmpty() && (policy == null || checkPassword(policy, password, userId).isEmpty())

/** A security event in the card holder's words. */
fun eventText(type: SecurityEventType): String = when (type) {
    is SecurityEventType.SignIn -> "Signed in"
    is SecurityEventType.SignInFailed -> "Failed sign-in attempt"
    is SecurityEventType.AccountLocked -> "Account locked after failed attempts"
    is SecurityEventType.StepUp -> "Extra verification asked"
    is SecurityEventType.DeviceAdded -> "Trusted device added"
    is SecurityEventType.DeviceRemoved -> "Trusted device removed"
    is SecurityEventType.PasswordChanged -> "Password changed"
    is SecurityEventType.ContactChanged -> "E-mail or mobile number changed"
    is SecurityEventType.SecurityCodeChanged -> "Security code changed"
    is SecurityEventType.RecoveryUsed -> "Password reset with the security code"
    is SecurityEventType.RefreshReuse -> "Suspicious session use: sessions signed out"
    is SecurityEventType.Enrolled -> "Two-step verification set up"
    is SecurityEventType.Other -> "Account activity (${type.name})"
}

/** An account in the picker: its name when the phone knows it, its user ID, and whether it is signed in here. */
fun accountLabel(account: KnownAccount): String {
    val who = account.name?.let { "$it (${account.userId})" } ?: account.userId
    return when {
        account.active -> "$who · using now"
        account.signedIn -> "$who · signed in"
        account.biometricAvailable -> "$who · fingerprint or face"
        else -> who
    }
}
