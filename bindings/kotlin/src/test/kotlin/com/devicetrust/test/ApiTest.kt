package com.devicetrust.test

import com.devicetrust.sdk.Config
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.UserVerification
import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
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
import java.net.InetSocketAddress
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/** The API's shape as Kotlin sees it: Config defaults, exceptions with a
 *  message and their fields, Instants, cancellation and the key-store
 *  timeout. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ApiTest {
    private lateinit var server: TestServer

    @BeforeAll fun start() { server = TestServer.start() }
    @AfterAll fun stop() { server.close() }

    private class Phone(val sdk: DeviceTrust, val keys: JavaKeyStore)

    private fun phone(base: String = server.base, promptTimeoutMs: ULong? = null): Phone {
        val dir = Files.createTempDirectory("devicetrust-api").toFile()
        val keys = JavaKeyStore(File(dir, "keys.p12"))
        var config = Config(base, RP_ID, File(dir, "state").path, allowInsecureHttp = true)
        if (promptTimeoutMs != null) config = config.copy(keyStorePromptTimeoutMs = promptTimeoutMs)
        return Phone(DeviceTrust(config, keys), keys)
    }

    private suspend fun signedInWithDevice(phone: Phone, user: String) {
        server.addUser(user)
        phone.sdk.signInWithPassword(user, PASSWORD)
        phone.sdk.completeEnrolment("135790", null)
        phone.sdk.sendOtp(OtpChannel.EMAIL)
        phone.sdk.verifyOtp(server.lastOtp(user))
        phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC, PromptText())
        phone.sdk.signOut()
    }

    @Test fun `Config and PromptText have defaults`() {
        val c = Config("https://a.example", "https://a.example", "/tmp/x")
        assertNull(c.platform)
        assertEquals(emptyList<String>(), c.tlsPins)
        assertFalse(c.allowInsecureHttp)
        assertEquals(15_000uL, c.requestTimeoutMs)
        assertEquals(5_000uL, c.connectTimeoutMs)
        assertEquals(300_000uL, c.keyStorePromptTimeoutMs)
        assertEquals(30_000uL, c.keyStoreTimeoutMs)
        assertEquals(PromptText("Sign in", null, "Cancel"), PromptText())
    }

    @Test fun `exceptions carry a message and their fields`() {
        val otp = DeviceTrustException.OtpInvalid(3u)
        assertEquals("the code is incorrect (3 tries left)", otp.message)
        assertEquals(3u, otp.attemptsLeft)
        val locked = DeviceTrustException.AccountLocked(1800uL)
        assertTrue(locked.message!!.contains("1800"), locked.message)
        assertEquals(1800uL, locked.retryAfterSecs)
        assertEquals("network problem: timed out", DeviceTrustException.Network(true, "timed out").message)
        // Unit variants: uniffi alone gives them an empty message.
        assertEquals("the code has expired: ask for a new one", DeviceTrustException.OtpExpired().message)
        assertEquals("you are signed out: sign in again", DeviceTrustException.NotSignedIn().localizedMessage)
        assertEquals("cancelled by the user", PlatformKeyException.Cancelled().message)
        // A platform error without words (an exception with no message).
        assertTrue(!PlatformKeyException.Other("").message.isNullOrBlank())
        assertTrue(!DeviceTrustException.KeyStore("").message!!.trimEnd().endsWith(":"))
        var units = 0
        for (variant in DeviceTrustException::class.java.declaredClasses) {
            val unit = variant.constructors.singleOrNull { it.parameterCount == 0 } ?: continue
            val error = unit.newInstance() as DeviceTrustException
            assertTrue(!error.message.isNullOrBlank(), "${variant.simpleName} has no message")
            units++
        }
        assertTrue(units >= 20, "found only $units variants without fields")
    }

    @Test fun `errors from calls have messages`() = runBlocking {
        val phone = phone()
        val e = assertThrows<DeviceTrustException.InvalidCredentials> {
            runBlocking { phone.sdk.signInWithPassword("nobody.here", "wrong") }
        }
        assertEquals("the user ID or password is incorrect", e.message)
        val signedOut = assertThrows<DeviceTrustException.NotSignedIn> { runBlocking { phone.sdk.profile() } }
        assertEquals("you are signed out: sign in again", signedOut.message)
    }

    @Test fun `points in time are Instants`() = runBlocking {
        server.addUser("kt.time")
        val phone = phone()
        val now = Instant.now()
        val step = phone.sdk.signInWithPassword("kt.time", PASSWORD) as SignInStep.EnrolmentRequired
        assertTrue(step.expiresAt.isAfter(now) && step.expiresAt.isBefore(now.plus(Duration.ofHours(1))), "${step.expiresAt}")
        phone.sdk.completeEnrolment("135790", null)
        val sent = phone.sdk.sendOtp(OtpChannel.EMAIL)
        assertTrue(sent.expiresAt.isAfter(now))
        val session = (phone.sdk.verifyOtp(server.lastOtp("kt.time")) as SignInStep.SignedIn).session
        assertTrue(Duration.between(session.authTime, now).abs() < Duration.ofMinutes(1))
        assertEquals(session, phone.sdk.session())
        val device = phone.sdk.enableBiometricSignIn("Pixel", UserVerification.BIOMETRIC, PromptText())
        assertEquals(Duration.ofDays(90), Duration.between(device.createdAt, device.trustedUntil))
        assertEquals(KeyStorage.SOFTWARE, device.keyStorage)
        assertEquals(device.trustedUntil, phone.sdk.localEnrolment("kt.time")!!.trustedUntil)
    }

    @Test fun `a coroutine cancelled during a slow prompt leaves no session`() = runBlocking {
        val phone = phone()
        signedInWithDevice(phone, "kt.slow")
        phone.keys.mode = Mode.SLOW
        val call = async(Dispatchers.IO) { phone.sdk.signInWithBiometric("kt.slow", PromptText()) }
        withTimeout(10_000) { phone.keys.promptShown.await() }
        call.cancel()
        assertThrows<CancellationException> { runBlocking { call.await() } }
        withTimeout(10_000) { phone.keys.promptCancelled.await() }
        delay(1_500) // the user would have answered by now
        assertNull(phone.sdk.session())
        assertThrows<DeviceTrustException.NotSignedIn> { runBlocking { phone.sdk.accessToken() } }
        Unit
    }

    @Test fun `a coroutine cancelled during a slow server leaves no session`() = runBlocking {
        val answered = CountDownLatch(1)
        val slow = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        slow.createContext("/") { exchange ->
            exchange.requestBody.readAllBytes()
            Thread.sleep(1_000)
            val body = """{"status":"authenticated","session":{"access_token":"dta_x","expires_in":900,"refresh_token":"dtr_x","user_id":"slow.user","amr":["pwd"],"auth_time":1}}""".toByteArray()
            runCatching {
                exchange.responseHeaders.add("content-type", "application/json")
                exchange.sendResponseHeaders(200, body.size.toLong())
                exchange.responseBody.use { it.write(body) }
            }
            answered.countDown()
        }
        slow.executor = java.util.concurrent.Executors.newCachedThreadPool()
        slow.start()
        try {
            val phone = phone(base = "http://127.0.0.1:${slow.address.port}")
            val call = async(Dispatchers.IO) { phone.sdk.signInWithPassword("slow.user", "password") }
            delay(300)
            call.cancel()
            assertThrows<CancellationException> { runBlocking { call.await() } }
            assertTrue(answered.await(10, TimeUnit.SECONDS))
            delay(300)
            assertNull(phone.sdk.session())
        } finally {
            slow.stop(0)
        }
    }

    @Test fun `a prompt left unanswered times out and is cancelled`() = runBlocking {
        val phone = phone(promptTimeoutMs = 300uL)
        signedInWithDevice(phone, "kt.timeout")
        phone.keys.mode = Mode.HANG
        val e = assertThrows<DeviceTrustException.KeyStoreTimeout> {
            runBlocking { phone.sdk.signInWithBiometric("kt.timeout", PromptText()) }
        }
        assertEquals(300uL, e.afterMs)
        assertTrue(e.message!!.contains("300 ms"), e.message)
        withTimeout(10_000) { phone.keys.promptCancelled.await() }
        assertNull(phone.sdk.session())
    }
}
