package com.devicetrust.test

import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.GeneratedKey
import com.devicetrust.sdk.KeyAttestation
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PlatformKeyStore
import com.devicetrust.sdk.UserVerification
import org.bouncycastle.asn1.x500.X500Name
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder
import java.io.File
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Date
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlin.coroutines.cancellation.CancellationException

/** The stand-in platform's key attestation: given the new key's public
 *  half and the registration challenge, the storage to report and the
 *  attestation to return (as Android Keystore returns the chain of a key
 *  generated with `setAttestationChallenge`). */
fun interface Attester {
    fun attest(publicKey: ECPublicKey, challenge: ByteArray): Pair<KeyStorage, KeyAttestation?>
}

/** What the stand-in "platform" does when asked to sign. HANG: the prompt
 *  stays up until the call is cancelled; SLOW: the user answers after a
 *  second (unless the call is cancelled first). */
enum class Mode { NORMAL, CANCEL, BIOMETRICS_CHANGED, HANG, SLOW }

/**
 * The SDK's key store on java.security, standing in for Android Keystore:
 * EC P-256 keys in a PKCS#12 KeyStore file, SHA256withECDSA signatures in
 * DER (as Android returns them). Suspend functions, as uniffi generates them.
 */
class JavaKeyStore(private val file: File, private val password: CharArray = "changeit".toCharArray()) : PlatformKeyStore {
    @Volatile var mode = Mode.NORMAL
    /** Without one, keys are software keys with no attestation. */
    @Volatile var attester: Attester? = null
    val prompts = CopyOnWriteArrayList<String>()
    /** Completed when a HANG prompt is showing, and when it was cancelled. */
    val promptShown = CompletableDeferred<Unit>()
    val promptCancelled = CompletableDeferred<Unit>()
    private val lock = Any()

    private fun load(): KeyStore = KeyStore.getInstance("PKCS12").apply {
        if (file.exists()) file.inputStream().use { load(it, password) } else load(null, password)
    }

    private fun save(ks: KeyStore) = file.outputStream().use { ks.store(it, password) }

    override suspend fun generateKey(alias: String, userVerification: UserVerification, attestationChallenge: ByteArray): GeneratedKey {
        val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
        // PKCS#12 keeps a private key only with a certificate: a self-signed one.
        val now = System.currentTimeMillis()
        val name = X500Name("CN=devicetrust test key")
        val holder = JcaX509v3CertificateBuilder(name, BigInteger.valueOf(now), Date(now), Date(now + 86_400_000L), name, pair.public)
            .build(JcaContentSignerBuilder("SHA256withECDSA").build(pair.private))
        val cert = JcaX509CertificateConverter().getCertificate(holder)
        synchronized(lock) {
            val ks = load()
            ks.setKeyEntry(alias, pair.private, password, arrayOf(cert))
            save(ks)
        }
        val public = pair.public as ECPublicKey
        val w = public.w
        val (storage, attestation) = attester?.attest(public, attestationChallenge) ?: Pair(KeyStorage.SOFTWARE, null)
        return GeneratedKey(byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY), storage, attestation)
    }

    override suspend fun sign(alias: String, data: ByteArray, prompt: PromptText): ByteArray {
        prompts.add(prompt.title)
        when (mode) {
            Mode.CANCEL -> throw PlatformKeyException.Cancelled()
            Mode.BIOMETRICS_CHANGED -> throw PlatformKeyException.KeyInvalidated()
            Mode.HANG -> {
                promptShown.complete(Unit)
                try {
                    awaitCancellation()
                } catch (e: CancellationException) {
                    promptCancelled.complete(Unit)
                    throw e
                }
            }
            Mode.SLOW -> {
                promptShown.complete(Unit)
                try {
                    delay(1_000)
                } catch (e: CancellationException) {
                    promptCancelled.complete(Unit)
                    throw e
                }
            }
            Mode.NORMAL -> {}
        }
        val key = synchronized(lock) { load().getKey(alias, password) as PrivateKey? } ?: throw PlatformKeyException.KeyNotFound()
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(key)
            update(data)
            sign()
        }
    }

    override suspend fun deleteKey(alias: String) {
        synchronized(lock) {
            val ks = load()
            if (ks.containsAlias(alias)) {
                ks.deleteEntry(alias)
                save(ks)
            }
        }
    }

    override suspend fun keyExists(alias: String): Boolean = synchronized(lock) { load().containsAlias(alias) }

    fun keyCount(): Int = synchronized(lock) { load().size() }

    private fun fixed32(n: BigInteger): ByteArray {
        val b = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        return ByteArray(32 - b.size) + b
    }
}
