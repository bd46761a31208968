package com.devicetrust.test

import com.devicetrust.sdk.Config
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.KnownAccount
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.SessionInfo
import com.devicetrust.sdk.SessionObserver
import com.devicetrust.sdk.SessionSealer
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.UserVerification
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** AES-256-GCM (javax.crypto) under a key the "platform" keeps: the same
 *  sealer given to a new `DeviceTrust` stands for the app restarted. */
class AesGcmSealer(private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()) : SessionSealer {
    val sealed = AtomicInteger()
    val opened = AtomicInteger()
    private val random = SecureRandom()

    override fun seal(plaintext: ByteArray): ByteArray {
        val iv = ByteArray(12).also(random::nextBytes)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key, GCMParameterSpec(128, iv))
        cipher.updateAAD(AAD)
        sealed.incrementAndGet()
        return iv + cipher.doFinal(plaintext)
    }

    override fun open(sealed: ByteArray): ByteArray {
        if (sealed.size < 12 + 16) throw PlatformKeyException.Other("the sealed session is too short")
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
        cipher.updateAAD(AAD)
        val plain = try {
            cipher.doFinal(sealed, 12, sealed.size - 12)
        } catch (e: AEADBadTagException) {
            throw PlatformKeyException.Other("the sealed session was altered or sealed with another key")
        }
        opened.incrementAndGet()
        return plain
    }

    private companion object {
        val AAD = "devicetrust session".toByteArray()
    }
}

/** Every session change, as (user, user of the session or null). */
class Recorder : SessionObserver {
    val changes = CopyOnWriteArrayList<Pair<String, String?>>()
    override fun sessionChanged(userId: String, session: SessionInfo?) {
        changes.add(userId to session?.userId)
    }
}

/** Several accounts on one phone, and sessions kept across restarts. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AccountsTest {
    private lateinit var server: TestServer

    @BeforeAll fun start() { server = TestServer.start() }
    @AfterAll fun stop() { server.close() }

    /** One phone's folder: its key store and local state outlive a `DeviceTrust`. */
    private inner class Phone {
        val dir: File = Files.createTempDirectory("devicetrust-accounts").toFile()
        val keys = JavaKeyStore(File(dir, "keys.p12"))

        fun open(sealer: SessionSealer? = null, observer: SessionObserver? = null): DeviceTrust {
            val config = Config(serverUrl = server.base, rpId = RP_ID, stateDir = File(dir, "state").path, allowInsecureHttp = true)
            return DeviceTrust(config, keys).also { sdk ->
                sealer?.let(sdk::setSessionSealer)
                observer?.let(sdk::setSessionObserver)
            }
        }
    }

    private fun prompt(title: String) = PromptText(title, null, "Cancel")

    private suspend fun firstSignIn(sdk: DeviceTrust, user: String): SessionInfo {
        assertTrue(sdk.signInWithPassword(user, PASSWORD) is SignInStep.EnrolmentRequired)
        val second = sdk.completeEnrolment("135790", null) as SignInStep.SecondFactorRequired
        sdk.sendOtp(second.otpOptions[0].channel)
        return (sdk.verifyOtp(server.lastOtp(user)) as SignInStep.SignedIn).session
    }

    private fun List<KnownAccount>.of(user: String) = single { it.userId == user }

    @Test fun `two users on one phone, each with its session`() = runBlocking {
        server.addUser("kt.acc.ann")
        server.addUser("kt.acc.bob")
        val sdk = Phone().open()
        assertEquals(emptyList<KnownAccount>(), sdk.accounts())
        assertNull(sdk.activeAccount())

        firstSignIn(sdk, "kt.acc.ann")
        sdk.enableBiometricSignIn("Ann's phone", UserVerification.BIOMETRIC, prompt("Turn on"))
        // Bob signs in on the same phone; Ann stays signed in.
        firstSignIn(sdk, "kt.acc.bob")
        assertEquals("kt.acc.bob", sdk.activeAccount())
        assertEquals("kt.acc.bob", sdk.session()!!.userId)
        assertEquals("kt.acc.bob", sdk.profile().userId)

        var accounts = sdk.accounts()
        // Both, most recently signed in first (to the second: here a tie, by user ID).
        assertEquals(listOf("kt.acc.ann", "kt.acc.bob"), accounts.map { it.userId }.sorted())
        val ann = accounts.of("kt.acc.ann")
        val bob = accounts.of("kt.acc.bob")
        assertTrue(ann.signedIn && bob.signedIn)
        assertTrue(bob.active && !ann.active)
        assertTrue(ann.biometricEnabled && ann.biometricAvailable)
        assertFalse(bob.biometricEnabled || bob.biometricAvailable)
        assertNotNull(ann.lastSignInAt)

        // The picker offers biometric sign-in to the account that has it here.
        val picked = accounts.first { it.biometricAvailable }.userId
        assertEquals("kt.acc.ann", picked)
        val step = sdk.signInWithBiometric(picked, prompt("Sign in")) as SignInStep.SignedIn
        assertEquals("kt.acc.ann", step.session.userId)
        assertEquals("kt.acc.ann", sdk.activeAccount())
        assertEquals("kt.acc.ann", sdk.profile().userId)

        // Switching needs no sign-in; each account keeps its own session.
        assertEquals("kt.acc.bob", sdk.switchAccount("kt.acc.bob").userId)
        assertEquals("kt.acc.bob", sdk.profile().userId)
        assertEquals(0, sdk.trustedDevices().size)
        sdk.switchAccount("kt.acc.ann")
        assertEquals(1, sdk.trustedDevices().size)

        // Sign one out: the other stays signed in; the active one was Ann.
        sdk.signOutAccount("kt.acc.ann")
        assertNull(sdk.activeAccount())
        assertNull(sdk.session())
        accounts = sdk.accounts()
        assertFalse(accounts.of("kt.acc.ann").signedIn)
        assertTrue(accounts.of("kt.acc.bob").signedIn)
        assertTrue(accounts.of("kt.acc.ann").biometricAvailable, "Ann keeps biometric sign-in here")
        assertThrows<DeviceTrustException.NotSignedIn> { sdk.switchAccount("kt.acc.ann") }
        assertEquals("kt.acc.bob", sdk.switchAccount("kt.acc.bob").userId)

        // Removing Ann forgets her here (her key too); signing out all ends Bob's.
        sdk.removeAccount("kt.acc.ann")
        assertEquals(listOf("kt.acc.bob"), sdk.accounts().map { it.userId })
        assertFalse(sdk.isBiometricSignInAvailable("kt.acc.ann"))
        sdk.signOutAll()
        assertFalse(sdk.accounts().single().signedIn)
        assertNull(sdk.session())
        sdk.close()
    }

    @Test fun `a sealed session survives a restart, and only with the sealer`() = runBlocking {
        server.addUser("kt.keep")
        val phone = Phone()
        val sealer = AesGcmSealer()
        val first = Recorder()
        phone.open(sealer, first).use { sdk ->
            firstSignIn(sdk, "kt.keep")
            assertTrue(sealer.sealed.get() >= 1)
            assertTrue(("kt.keep" to "kt.keep") in first.changes, "${first.changes}")
        } // the app is killed

        // Restarted without a sealer: no session (its sealed copy stays).
        phone.open().use { sdk ->
            assertNull(sdk.session())
            assertThrows<DeviceTrustException.NotSignedIn> { sdk.accessToken() }
        }

        // Restarted with the sealer: the session is restored and works on the server.
        val observer = Recorder()
        phone.open(sealer, observer).use { sdk ->
            assertEquals("kt.keep", sdk.activeAccount())
            assertEquals("kt.keep", sdk.session()?.userId)
            assertTrue(sealer.opened.get() >= 1)
            assertEquals("kt.keep", sdk.profile().userId)
            assertTrue(sdk.accounts().single().signedIn)
            // Signing out tells the observer.
            sdk.signOut()
            assertEquals("kt.keep" to null, observer.changes.last())
        }

        // And the next start has nothing to restore.
        phone.open(sealer).use { sdk -> assertNull(sdk.session()) }
    }

    @Test fun `a session sealed with another key is not restored, and the observer is told`() = runBlocking {
        server.addUser("kt.lost")
        val phone = Phone()
        phone.open(AesGcmSealer()).use { sdk -> firstSignIn(sdk, "kt.lost") }

        // The platform key is gone (the app reinstalled, say): signed out, and told so.
        val observer = Recorder()
        phone.open(AesGcmSealer(), observer).use { sdk ->
            assertNull(sdk.session())
            assertTrue(("kt.lost" to null) in observer.changes, "${observer.changes}")
            assertFalse(sdk.accounts().of("kt.lost").signedIn)
        }
    }

    @Test fun `an observer that throws does not fail the sign-in it is told of`() = runBlocking {
        server.addUser("kt.throws")
        val calls = AtomicInteger()
        val throws = object : SessionObserver {
            override fun sessionChanged(userId: String, session: SessionInfo?) {
                calls.incrementAndGet()
                throw IllegalStateException("the app's observer has a bug")
            }
        }
        Phone().open(observer = throws).use { sdk ->
            // Kept before the observer is told: an error here would leave the
            // app showing a failure while signed in.
            assertEquals("kt.throws", firstSignIn(sdk, "kt.throws").userId)
            assertEquals("kt.throws", sdk.session()!!.userId)
            assertTrue(calls.get() >= 1)
        }
    }
}
