package com.devicetrust.test

import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sdk.Platform
import com.devicetrust.sdk.SessionInfo
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.UserVerification
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.Config
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/** The card holder's journey through the generated Kotlin, on the JVM. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class JourneyTest {
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

    private suspend fun firstSignIn(phone: Phone, user: String): SessionInfo {
        val step = phone.sdk.signInWithPassword(user, PASSWORD)
        assertTrue(step is SignInStep.EnrolmentRequired, "$step")
        assertEquals("Jane Doe", (step as SignInStep.EnrolmentRequired).name)
        val second = phone.sdk.completeEnrolment("135790", null) as SignInStep.SecondFactorRequired
        assertFalse(second.thisDeviceCanApprove)
        val sent = phone.sdk.sendOtp(second.otpOptions[0].channel)
        assertEquals("${user.first()}•••@example.com", sent.destination)
        val done = phone.sdk.verifyOtp(server.lastOtp(user))
        return (done as SignInStep.SignedIn).session
    }

    @Test fun `the whole journey`() = runBlocking {
        server.addUser("kt.jane")
        val phone = phone()
        assertEquals(listOf("pwd", "otp"), amr(firstSignIn(phone, "kt.jane")))

        val device = phone.sdk.enableBiometricSignIn("Jane's Pixel", UserVerification.BIOMETRIC, prompt("Turn on fingerprint sign-in"))
        assertTrue(device.isThisDevice)
        assertEquals(Platform.ANDROID, device.platform)
        assertEquals(1, phone.keys.keyCount())
        assertTrue(phone.sdk.isBiometricSignInAvailable("kt.jane"))
        assertEquals(device.deviceId, phone.sdk.localEnrolment("kt.jane")!!.deviceId)

        phone.sdk.signOut()
        assertNull(phone.sdk.session())
        val bio = phone.sdk.signInWithBiometric("kt.jane", prompt("Sign in")) as SignInStep.SignedIn
        // A software key (the JVM test key store) signs in with `swk`, not `hwk`.
        assertEquals(listOf("swk", "bio"), amr(bio.session))
        assertEquals(listOf("Turn on fingerprint sign-in", "Sign in"), phone.keys.prompts.toList())

        val devices = phone.sdk.trustedDevices()
        assertEquals(listOf(true), devices.map { it.isThisDevice })

        // Password on the trusted phone: approve by biometric instead of an OTP.
        val step = phone.sdk.signInWithPassword("kt.jane", PASSWORD) as SignInStep.SecondFactorRequired
        assertTrue(step.thisDeviceCanApprove)
        val approved = phone.sdk.approveWithThisDevice(prompt("Approve")) as SignInStep.SignedIn
        assertEquals(listOf("pwd", "swk"), amr(approved.session))

        phone.sdk.removeDevice(device.deviceId)
        assertEquals(0, phone.keys.keyCount())
        assertNull(phone.sdk.localEnrolment("kt.jane"))
        phone.sdk.signOut()
    }

    @Test fun `errors arrive as exceptions with their fields`() = runBlocking {
        server.addUser("kt.err")
        val phone = phone()
        assertThrows<DeviceTrustException.InvalidCredentials> { phone.sdk.signInWithPassword("kt.err", "wrong") }
        assertThrows<DeviceTrustException.NoSignInInProgress> { phone.sdk.verifyOtp("123456") }
        firstSignIn(phone, "kt.err")
        phone.sdk.signInWithPassword("kt.err", PASSWORD)
        phone.sdk.sendOtp(OtpChannel.EMAIL)
        val code = server.lastOtp("kt.err")
        val wrong = if (code == "000000") "111111" else "000000"
        val otp = assertThrows<DeviceTrustException.OtpInvalid> { phone.sdk.verifyOtp(wrong) }
        assertEquals(4u, otp.attemptsLeft)
        repeat(4) { assertThrows<DeviceTrustException.InvalidCredentials> { phone.sdk.signInWithPassword("kt.err", "wrong") } }
        val locked = assertThrows<DeviceTrustException.AccountLocked> { phone.sdk.signInWithPassword("kt.err", PASSWORD) }
        assertTrue(locked.retryAfterSecs > 1700u, "${locked.retryAfterSecs}")
    }

    @Test fun `a cancelled prompt changes nothing, changed biometrics forget the key`() = runBlocking {
        server.addUser("kt.bio")
        val phone = phone()
        firstSignIn(phone, "kt.bio")
        phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC, prompt("Turn on"))
        phone.sdk.signOut()

        phone.keys.mode = Mode.CANCEL
        assertThrows<DeviceTrustException.BiometricCancelled> { phone.sdk.signInWithBiometric("kt.bio", prompt("Sign in")) }
        assertEquals(1, phone.keys.keyCount())
        assertTrue(phone.sdk.localEnrolment("kt.bio") != null)

        phone.keys.mode = Mode.BIOMETRICS_CHANGED
        assertThrows<DeviceTrustException.BiometricsChanged> { phone.sdk.signInWithBiometric("kt.bio", prompt("Sign in")) }
        assertEquals(0, phone.keys.keyCount())
        assertNull(phone.sdk.localEnrolment("kt.bio"))

        // Enabling again after a cancelled confirmation leaves no key behind.
        phone.keys.mode = Mode.NORMAL
        firstSignInAgain(phone, "kt.bio")
        phone.keys.mode = Mode.CANCEL
        assertThrows<DeviceTrustException.BiometricCancelled> {
            phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC, prompt("Turn on"))
        }
        assertEquals(0, phone.keys.keyCount())
    }

    private suspend fun firstSignInAgain(phone: Phone, user: String) {
        val step = phone.sdk.signInWithPassword(user, PASSWORD) as SignInStep.SecondFactorRequired
        phone.sdk.sendOtp(step.otpOptions[0].channel)
        assertTrue(phone.sdk.verifyOtp(server.lastOtp(user)) is SignInStep.SignedIn)
    }

    @Test fun `calls from many coroutines at once`() = runBlocking {
        server.addUser("kt.many")
        val phone = phone()
        firstSignIn(phone, "kt.many")
        phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC_OR_DEVICE_CREDENTIAL, prompt("Turn on"))
        val results = (1..16).map { i ->
            async(Dispatchers.IO) {
                if (i % 2 == 0) phone.sdk.profile().userId else phone.sdk.trustedDevices().single().name
            }
        }.awaitAll()
        assertEquals(setOf("kt.many", "Pixel"), results.toSet())
    }
}
