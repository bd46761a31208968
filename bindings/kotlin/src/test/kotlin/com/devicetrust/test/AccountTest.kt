package com.devicetrust.test

import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sdk.PasswordRule
import com.devicetrust.sdk.Platform
import com.devicetrust.sdk.SecurityEventType
import com.devicetrust.sdk.SessionInfo
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.UserVerification
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.checkPassword
import com.devicetrust.sdk.Config
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

const val NEW_PASSWORD = "Another strong Passw0rd"
const val SECURITY_CODE = "135790"

/** The v1.1 calls through the generated Kotlin: the `account()` and
 *  `recovery()` handles, the password policy, an account from a card. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AccountTest {
    private lateinit var server: TestServer

    @BeforeAll fun start() { server = TestServer.start() }
    @AfterAll fun stop() { server.close() }

    private class Phone(val sdk: DeviceTrust, val keys: JavaKeyStore)

    private fun phone(): Phone {
        val dir = Files.createTempDirectory("devicetrust-phone").toFile()
        val keys = JavaKeyStore(File(dir, "keys.p12"))
        val config = Config(server.base, RP_ID, File(dir, "state").path)
            .copy(allowInsecureHttp = true, platform = Platform.ANDROID)
        return Phone(DeviceTrust(config, keys), keys)
    }

    private fun prompt(title: String) = PromptText(title, null, "Cancel")

    /** A new user's first sign-in: enrolment (security code 135790) and an e-mail code. */
    private suspend fun firstSignIn(phone: Phone, user: String, password: String = PASSWORD): SessionInfo {
        assertTrue(phone.sdk.signInWithPassword(user, password) is SignInStep.EnrolmentRequired)
        val second = phone.sdk.completeEnrolment(SECURITY_CODE, null) as SignInStep.SecondFactorRequired
        phone.sdk.sendOtp(second.otpOptions[0].channel)
        return (phone.sdk.verifyOtp(server.lastOtp(user)) as SignInStep.SignedIn).session
    }

    /** Password + e-mail code for an enrolled user. */
    private suspend fun signInWithCode(phone: Phone, user: String, password: String): SessionInfo {
        assertTrue(phone.sdk.signInWithPassword(user, password) is SignInStep.SecondFactorRequired)
        phone.sdk.sendOtp(OtpChannel.EMAIL)
        return (phone.sdk.verifyOtp(server.lastOtp(user)) as SignInStep.SignedIn).session
    }

    private fun otherCode(code: String) = if (code == "000000") "111111" else "000000"

    /** A 16-digit card number with a valid Luhn check digit. */
    private fun cardNumber(prefix15: String): String {
        val sum = prefix15.reversed().mapIndexed { i, c ->
            val d = c.digitToInt()
            if (i % 2 == 0) (d * 2).let { if (it > 9) it - 9 else it } else d
        }.sum()
        return prefix15 + (10 - sum % 10) % 10
    }

    @Test fun `the password policy, and the rules checked on the phone`() = runBlocking {
        val policy = phone().sdk.passwordPolicy()
        assertTrue(policy.minLength >= 8u && policy.classesRequired >= 1u, "$policy")
        assertTrue(policy.description.isNotEmpty())
        assertEquals(emptyList<PasswordRule>(), checkPassword(policy, NEW_PASSWORD, "jane.doe"))
        assertTrue(PasswordRule.ContainsUserId in checkPassword(policy, "jane.doe", "Jane.Doe"))
        assertTrue(PasswordRule.TooShort in checkPassword(policy, "Ab1", ""))
    }

    @Test fun `forgot password end to end`() = runBlocking {
        server.addUser("kt.reset")
        val phone = phone()
        firstSignIn(phone, "kt.reset")
        phone.sdk.signOut()
        val recovery = phone.sdk.recovery()

        assertThrows<DeviceTrustException.NoRecoveryInProgress> { recovery.completePasswordRecovery("123456", NEW_PASSWORD) }
        assertThrows<DeviceTrustException.NoRecoveryInProgress> { recovery.sendOtp(OtpChannel.EMAIL) }
        assertThrows<DeviceTrustException.InvalidCredentials> { recovery.startPasswordRecovery("kt.reset", "97531864") }

        val started = recovery.startPasswordRecovery("kt.reset", SECURITY_CODE)
        assertEquals(listOf(OtpChannel.EMAIL), started.otpOptions.map { it.channel })
        assertTrue(started.expiresAt > java.time.Instant.now())
        val sent = recovery.sendOtp(OtpChannel.EMAIL)
        assertEquals(started.otpOptions[0].destination, sent.destination)
        val code = server.lastOtp("kt.reset")

        // A refused password and a wrong code keep the recovery open.
        val rejected = assertThrows<DeviceTrustException.PasswordRejected> { recovery.completePasswordRecovery(code, "Password1") }
        assertTrue(PasswordRule.Common in rejected.reasons, "${rejected.reasons}")
        val wrong = assertThrows<DeviceTrustException.OtpInvalid> { recovery.completePasswordRecovery(otherCode(code), NEW_PASSWORD) }
        assertEquals(4u, wrong.attemptsLeft)

        recovery.completePasswordRecovery(code, NEW_PASSWORD)
        assertThrows<DeviceTrustException.NoRecoveryInProgress> { recovery.completePasswordRecovery(code, NEW_PASSWORD) }

        assertThrows<DeviceTrustException.InvalidCredentials> { phone.sdk.signInWithPassword("kt.reset", PASSWORD) }
        assertEquals(listOf("pwd", "otp"), amr(signInWithCode(phone, "kt.reset", NEW_PASSWORD)))
        val events = phone.sdk.account().securityEvents(50u)
        assertTrue(events.any { it.eventType == SecurityEventType.RecoveryUsed }, "$events")
    }

    @Test fun `password change end to end`() = runBlocking {
        server.addUser("kt.change")
        val phone = phone()
        firstSignIn(phone, "kt.change")  // with a code: a strong session
        val account = phone.sdk.account()

        val common = assertThrows<DeviceTrustException.PasswordRejected> { account.changePassword(PASSWORD, "Password1") }
        assertTrue(PasswordRule.Common in common.reasons, "${common.reasons}")
        val same = assertThrows<DeviceTrustException.PasswordRejected> { account.changePassword(PASSWORD, PASSWORD) }
        assertEquals(listOf(PasswordRule.SameAsCurrent), same.reasons)
        assertThrows<DeviceTrustException.InvalidCredentials> { account.changePassword("Wrong horse battery 9", NEW_PASSWORD) }

        account.changePassword(PASSWORD, NEW_PASSWORD)
        assertEquals("kt.change", account.profile().userId)  // this session stays
        val events = account.securityEvents(10u)
        assertTrue(events.any { it.eventType == SecurityEventType.PasswordChanged }, "$events")
        assertEquals(events.map { it.at }.sortedDescending(), events.map { it.at })

        phone.sdk.signOut()
        assertThrows<DeviceTrustException.NotSignedIn> { account.changePassword(NEW_PASSWORD, "Yet another Passw0rd") }
        assertThrows<DeviceTrustException.InvalidCredentials> { phone.sdk.signInWithPassword("kt.change", PASSWORD) }
        signInWithCode(phone, "kt.change", NEW_PASSWORD)
        Unit
    }

    @Test fun `forgot user ID e-mails it, and says nothing either way`() = runBlocking {
        server.addUser("kt.forgot")
        val phone = phone()
        firstSignIn(phone, "kt.forgot")
        phone.sdk.signOut()
        val recovery = phone.sdk.recovery()
        val invalid = assertThrows<DeviceTrustException.InvalidInput> { recovery.forgotUserId("nobody", SECURITY_CODE) }
        assertTrue(invalid.reason.isNotEmpty())
        recovery.forgotUserId("kt.forgot@example.com", "97531864")
        recovery.forgotUserId("nobody@example.com", SECURITY_CODE)
        recovery.forgotUserId("Kt.Forgot@Example.com", SECURITY_CODE)
        val sent = server.messages("recovery", "kt.forgot@example.com")
        assertEquals(1, sent.size, "$sent")
        assertTrue(sent[0].contains("kt.forgot"))
        assertEquals(emptyList<String>(), server.messages("recovery", "nobody@example.com", waitMs = 500))
    }

    @Test fun `e-mail, mobile and security code changed with their codes`() = runBlocking {
        server.addUser("kt.contact")
        val phone = phone()
        firstSignIn(phone, "kt.contact")
        val account = phone.sdk.account()

        assertThrows<DeviceTrustException.InvalidInput> { account.confirmContactChange("123456") }
        val pending = account.changeEmail("kt.contact@example.org")
        assertEquals(OtpChannel.EMAIL, pending.channel)
        assertTrue(pending.destination.endsWith("@example.org"), pending.destination)
        val code = server.lastOtp("kt.contact")
        assertThrows<DeviceTrustException.OtpInvalid> { account.confirmContactChange(otherCode(code)) }
        assertEquals("kt.contact@example.org", account.confirmContactChange(code).email)

        assertEquals(OtpChannel.SMS, account.changeMobile("+447700900222").channel)
        assertEquals("+447700900222", account.confirmContactChange(server.lastOtp("kt.contact")).mobile)
        account.removeMobile()
        assertNull(account.profile().mobile)

        assertThrows<DeviceTrustException.InvalidInput> { account.changeSecurityCode("111111") }
        account.changeSecurityCode("24680135")
        phone.sdk.signOut()
        assertThrows<DeviceTrustException.InvalidCredentials> { phone.sdk.recovery().startPasswordRecovery("kt.contact", SECURITY_CODE) }
        phone.sdk.recovery().startPasswordRecovery("kt.contact", "24680135")
        assertThrows<DeviceTrustException.InvalidInput> { account.securityEvents(0u) }
        Unit
    }

    @Test fun `an account from a card, and a second card linked`() = runBlocking {
        val number = cardNumber("400000223456789")
        server.addCard(number, "4321", "Jane Doe", "kt.card@example.com")
        val phone = phone()
        assertThrows<DeviceTrustException.InvalidInput> { phone.sdk.createAccount(number.dropLast(1) + "x", "4321", "Jane Doe", "kt.card", NEW_PASSWORD) }
        assertThrows<DeviceTrustException.CardNotRecognized> { phone.sdk.createAccount(number, "1234", "Jane Doe", "kt.card", NEW_PASSWORD) }
        val weak = assertThrows<DeviceTrustException.PasswordRejected> { phone.sdk.createAccount(number, "4321", "Jane Doe", "kt.card", "password") }
        assertTrue(PasswordRule.TooFewClasses in weak.reasons, "${weak.reasons}")
        val user = phone.sdk.createAccount(number, "4321", "Jane Doe", "kt.card", NEW_PASSWORD)
        assertEquals("kt.card", user)
        assertThrows<DeviceTrustException.CardAlreadyEnrolled> { phone.sdk.createAccount(number, "4321", "Jane Doe", "kt.card2", NEW_PASSWORD) }
        firstSignIn(phone, user, NEW_PASSWORD)

        val second = cardNumber("400000887654321")
        server.addCard(second, "1234", "Jane Doe", "kt.card@example.com")
        val account = phone.sdk.account()
        val linked = account.linkCard(second, "1234")
        assertEquals(second.takeLast(4), linked.last4)
        val cards = account.linkedCards()
        assertEquals(setOf(number.takeLast(4), second.takeLast(4)), cards.map { it.last4 }.toSet())
        assertTrue(cards.any { it.cardRef == linked.cardRef })
    }

    @Test fun `a cancelled coroutine cancels the SDK's work and the prompt`() = runBlocking {
        server.addUser("kt.cancel")
        val phone = phone()
        firstSignIn(phone, "kt.cancel")
        phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC, prompt("Turn on"))
        phone.sdk.signOut()

        phone.keys.mode = Mode.HANG
        val call = async(Dispatchers.IO) { phone.sdk.signInWithBiometric("kt.cancel", prompt("Sign in")) }
        withTimeout(10_000) { phone.keys.promptShown.await() }
        call.cancel()
        assertThrows<CancellationException> { call.await() }
        // The Rust future was dropped, which cancels the key store's coroutine.
        withTimeout(10_000) { phone.keys.promptCancelled.await() }

        phone.keys.mode = Mode.NORMAL
        assertTrue(phone.sdk.signInWithBiometric("kt.cancel", prompt("Sign in")) is SignInStep.SignedIn)
    }
}
