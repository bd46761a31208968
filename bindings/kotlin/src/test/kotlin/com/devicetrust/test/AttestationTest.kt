package com.devicetrust.test

import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.AttestationFormat
import com.devicetrust.sdk.KeyAttestation
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.Platform
import com.devicetrust.sdk.SignInStep
import com.devicetrust.sdk.UserVerification
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.Config
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/**
 * Key attestation through the Kotlin bindings: the server runs with
 * `--attestation require` and a test root; the key store returns a
 * synthetic Android chain for the challenge the SDK hands it, so the whole
 * path (challenge → generateKey → KeyAttestation → the registration's
 * `attestation` → the server's checks → `hwk`) runs through the bindings.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AttestationTest {
    private lateinit var server: TestServer
    private val pki = SyntheticAttestation()

    @BeforeAll fun start() {
        val roots = pki.writeRootPem(File(Files.createTempDirectory("devicetrust-roots").toFile(), "roots.pem"))
        server = TestServer.start(listOf("--attestation", "require", "--android-attestation-roots", roots.path))
    }

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

    private suspend fun signIn(phone: Phone, user: String) {
        server.addUser(user)
        phone.sdk.signInWithPassword(user, PASSWORD)
        val second = phone.sdk.completeEnrolment("135790", null) as SignInStep.SecondFactorRequired
        phone.sdk.sendOtp(second.otpOptions[0].channel)
        assertEquals(listOf("pwd", "otp"), amr((phone.sdk.verifyOtp(server.lastOtp(user)) as SignInStep.SignedIn).session))
    }

    @Test fun `an attested TEE key registers under require and signs in with hwk`() = runBlocking {
        val phone = phone()
        val challenges = mutableListOf<ByteArray>()
        phone.keys.attester = Attester { key, challenge ->
            challenges.add(challenge)
            Pair(KeyStorage.TEE, KeyAttestation.AndroidKey(pki.chain(key, challenge)))
        }
        signIn(phone, "kt.attested")

        val device = phone.sdk.enableBiometricSignIn("Jane's Pixel", UserVerification.BIOMETRIC, prompt("Turn on fingerprint sign-in"))
        assertEquals(KeyStorage.TEE, device.keyStorage)
        assertEquals(AttestationFormat.AndroidKey, device.attestation?.format)
        assertEquals(KeyStorage.TEE, device.attestation?.securityLevel)
        // The server's registration challenge, 32 bytes, reached the key store.
        assertEquals(listOf(32), challenges.map { it.size })

        phone.sdk.signOut()
        val bio = phone.sdk.signInWithBiometric("kt.attested", prompt("Sign in")) as SignInStep.SignedIn
        assertEquals(listOf("hwk", "bio"), amr(bio.session))
        assertEquals(AttestationFormat.AndroidKey, phone.sdk.trustedDevices().single().attestation?.format)
    }

    @Test fun `require refuses a key without attestation with the typed error`() = runBlocking {
        val phone = phone()
        phone.keys.attester = Attester { _, _ -> Pair(KeyStorage.TEE, null) }
        signIn(phone, "kt.unattested")
        assertThrows<DeviceTrustException.AttestationInvalid> {
            phone.sdk.enableBiometricSignIn("Jane's Pixel", UserVerification.BIOMETRIC, prompt("Turn on"))
        }
        assertEquals(0, phone.keys.keyCount())
        assertFalse(phone.sdk.isBiometricSignInAvailable("kt.unattested"))
    }

    @Test fun `a chain made for another challenge is refused`() = runBlocking {
        val phone = phone()
        phone.keys.attester = Attester { key, _ ->
            Pair(KeyStorage.TEE, KeyAttestation.AndroidKey(pki.chain(key, ByteArray(32))))
        }
        signIn(phone, "kt.replayed")
        assertThrows<DeviceTrustException.AttestationInvalid> {
            phone.sdk.enableBiometricSignIn("Jane's Pixel", UserVerification.BIOMETRIC, prompt("Turn on"))
        }
        assertEquals(0, phone.keys.keyCount())
    }
}
