package com.devicetrust.sample.keystore

import android.content.Context
import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt as SystemPrompt
import android.os.Build
import android.os.CancellationSignal
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyInfo
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import com.devicetrust.core.BiometricPrompt
import com.devicetrust.core.GeneratedKey
import com.devicetrust.core.KeyAttestation
import com.devicetrust.core.KeyStorage
import com.devicetrust.core.KeyStoreException
import com.devicetrust.core.PlatformKeyStore
import com.devicetrust.core.UserVerification
import kotlinx.coroutines.suspendCancellableCoroutine
import java.math.BigInteger
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * The SDK's key store on Android: EC P-256 keys in `AndroidKeyStore`, in
 * StrongBox when the phone has one (the TEE otherwise, reported as such),
 * for signing with SHA-256 only, unlocked per use by strong biometrics (or
 * biometrics or the device credential, by policy) and invalidated when new
 * biometrics are enrolled. Signatures go through the system BiometricPrompt
 * with a CryptoObject, on the main thread. Every key is generated with the
 * server's registration challenge as its attestation challenge, and its
 * certificate chain is returned as the key's attestation (Android Key
 * Attestation, checked by the server). Framework APIs only (API 28+;
 * `setUserAuthenticationParameters` on API 30+), so this class compiles
 * against the Android framework jar without AndroidX.
 */
class AndroidKeystoreKeyStore(private val context: Context) : PlatformKeyStore {
    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    override suspend fun generateKey(
        alias: String,
        userVerification: UserVerification,
        attestationChallenge: ByteArray,
    ): GeneratedKey {
        val pair = try {
            generate(alias, userVerification, strongBox = hasStrongBox(), challenge = attestationChallenge)
        } catch (e: StrongBoxUnavailableException) {
            generate(alias, userVerification, strongBox = false, challenge = attestationChallenge)
        } catch (e: Exception) {
            throw KeyStoreException.Other("key generation failed: ${e.message}")
        }
        val w = (pair.public as ECPublicKey).w
        val storage = storageOf(pair.private)
        // A software key (an emulator, a phone without secure hardware) has
        // only Android's own attestation, which proves nothing: none is sent
        // (the server would refuse `software` with an attestation).
        val attestation = if (storage == KeyStorage.SOFTWARE) null else attestation(alias)
        return GeneratedKey(byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY), storage, attestation)
    }

    /**
     * The key's attestation: its certificate chain, DER, leaf first. The
     * leaf carries the KeyDescription with the server's challenge; on a
     * phone with hardware attestation the chain ends at Google's root, else
     * at an untrusted certificate (the server refuses it with
     * `attestation_invalid`). No chain at all: no attestation.
     */
    private fun attestation(alias: String): KeyAttestation? {
        val chain = try {
            keyStore().getCertificateChain(alias)
        } catch (e: Exception) {
            null
        }
        if (chain.isNullOrEmpty()) return null
        return KeyAttestation.AndroidKey(chain.map { it.encoded })
    }

    private fun hasStrongBox(): Boolean =
        context.packageManager.hasSystemFeature("android.hardware.strongbox_keystore")

    private fun generate(alias: String, uv: UserVerification, strongBox: Boolean, challenge: ByteArray) =
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).run {
            val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .setDigests(KeyProperties.DIGEST_SHA256)
                .setIsStrongBoxBacked(strongBox)
                // Key attestation (API 24+): the leaf certificate of the key's
                // chain states where it lives, for this registration only.
                .setAttestationChallenge(challenge)
                .apply {
                    if (uv != UserVerification.NONE) {
                        setUserAuthenticationRequired(true)
                        // A new fingerprint or face voids the key: the SDK then re-enrols.
                        setInvalidatedByBiometricEnrollment(uv == UserVerification.BIOMETRIC)
                        if (Build.VERSION.SDK_INT >= 30) {
                            // 0 seconds: every single signature needs the user.
                            setUserAuthenticationParameters(0, authenticators(uv))
                        }
                    }
                }
                .build()
            initialize(spec)
            generateKeyPair()
        }

    private fun authenticators(uv: UserVerification): Int = when (uv) {
        UserVerification.BIOMETRIC -> KeyProperties.AUTH_BIOMETRIC_STRONG
        else -> KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL
    }

    private fun keyInfo(key: PrivateKey): KeyInfo =
        KeyFactory.getInstance(key.algorithm, ANDROID_KEYSTORE).getKeySpec(key, KeyInfo::class.java)

    private fun storageOf(key: PrivateKey): KeyStorage {
        val info = keyInfo(key)
        return if (Build.VERSION.SDK_INT >= 31) {
            when (info.securityLevel) {
                KeyProperties.SECURITY_LEVEL_STRONGBOX -> KeyStorage.STRONGBOX
                KeyProperties.SECURITY_LEVEL_TRUSTED_ENVIRONMENT -> KeyStorage.TEE
                else -> KeyStorage.SOFTWARE
            }
        } else {
            @Suppress("DEPRECATION")
            if (info.isInsideSecureHardware) KeyStorage.TEE else KeyStorage.SOFTWARE
        }
    }

    override suspend fun sign(alias: String, data: ByteArray, prompt: BiometricPrompt): ByteArray {
        val key = keyStore().getKey(alias, null) as? PrivateKey ?: throw KeyStoreException.KeyNotFound()
        val signature = Signature.getInstance("SHA256withECDSA")
        try {
            signature.initSign(key)
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw KeyStoreException.KeyInvalidated()
        }
        val unlocked = if (keyInfo(key).isUserAuthenticationRequired) authenticate(signature, prompt, key) else signature
        unlocked.update(data)
        return unlocked.sign() // DER, as the SDK expects.
    }

    /** Shows the system prompt on the main thread; resumes with the unlocked Signature. */
    private suspend fun authenticate(signature: Signature, prompt: BiometricPrompt, key: PrivateKey): Signature =
        suspendCancellableCoroutine { continuation ->
            val executor = context.mainExecutor
            val cancel = CancellationSignal()
            continuation.invokeOnCancellation { cancel.cancel() }
            val allowsCredential = Build.VERSION.SDK_INT >= 30 &&
                (keyInfo(key).userAuthenticationType and KeyProperties.AUTH_DEVICE_CREDENTIAL) != 0
            val builder = SystemPrompt.Builder(context).setTitle(prompt.title)
            prompt.subtitle?.let { builder.setSubtitle(it) }
            if (allowsCredential) {
                builder.setAllowedAuthenticators(
                    BiometricManager.Authenticators.BIOMETRIC_STRONG or BiometricManager.Authenticators.DEVICE_CREDENTIAL,
                )
            } else {
                if (Build.VERSION.SDK_INT >= 30) {
                    builder.setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
                }
                builder.setNegativeButton(prompt.cancelLabel, executor) { _, _ ->
                    if (continuation.isActive) continuation.resumeWithException(KeyStoreException.Cancelled())
                }
            }
            val callback = object : SystemPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: SystemPrompt.AuthenticationResult) {
                    val unlocked = result.cryptoObject?.signature
                    if (!continuation.isActive) return
                    if (unlocked != null) continuation.resume(unlocked)
                    else continuation.resumeWithException(KeyStoreException.Other("no signature after authentication"))
                }

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                    if (continuation.isActive) continuation.resumeWithException(mapError(errorCode, errString.toString()))
                }
                // onAuthenticationFailed (a finger not recognised) lets the system prompt retry.
            }
            executor.execute {
                builder.build().authenticate(SystemPrompt.CryptoObject(signature), cancel, executor, callback)
            }
        }

    override suspend fun deleteKey(alias: String) {
        val ks = keyStore()
        if (ks.containsAlias(alias)) ks.deleteEntry(alias)
    }

    override suspend fun keyExists(alias: String): Boolean = keyStore().containsAlias(alias)

    companion object {
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"

        /** BiometricPrompt error codes → the SDK's key-store errors. */
        fun mapError(code: Int, message: String): KeyStoreException = when (code) {
            SystemPrompt.BIOMETRIC_ERROR_USER_CANCELED,
            SystemPrompt.BIOMETRIC_ERROR_CANCELED,
            SystemPrompt.BIOMETRIC_ERROR_NEGATIVE_BUTTON,
            SystemPrompt.BIOMETRIC_ERROR_TIMEOUT -> KeyStoreException.Cancelled()
            SystemPrompt.BIOMETRIC_ERROR_LOCKOUT,
            SystemPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT -> KeyStoreException.BiometricLockedOut()
            SystemPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS,
            SystemPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT,
            SystemPrompt.BIOMETRIC_ERROR_HW_UNAVAILABLE,
            SystemPrompt.BIOMETRIC_ERROR_NO_DEVICE_CREDENTIAL -> KeyStoreException.BiometricUnavailable(message)
            else -> KeyStoreException.Other("biometric prompt error $code: $message")
        }

        private fun fixed32(n: BigInteger): ByteArray {
            val b = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
            return ByteArray(32 - b.size) + b
        }
    }
}
