package com.devicetrust.sdk.android

import android.app.KeyguardManager
import android.content.Context
import android.hardware.biometrics.BiometricPrompt as SystemPrompt
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyInfo
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import com.devicetrust.sdk.GeneratedKey
import com.devicetrust.sdk.KeyAttestation
import com.devicetrust.sdk.KeyStorage
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.PlatformKeyStore
import com.devicetrust.sdk.PromptText
import com.devicetrust.sdk.UserVerification
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.math.BigInteger
import java.security.KeyFactory
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.UnrecoverableKeyException
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec

/**
 * The SDK's key store on Android: EC P-256 keys in `AndroidKeyStore`, in
 * StrongBox when the phone has one (the TEE otherwise), for SHA-256 ECDSA
 * only, gated by the [UserVerification] the SDK asks for:
 *
 * | policy | API 30+ | API 29 | API 28 |
 * |---|---|---|---|
 * | `BIOMETRIC` | strong biometric per signature, voided by a new enrolment | same | same |
 * | `BIOMETRIC_OR_DEVICE_CREDENTIAL` | biometric or credential per signature | any lock-screen unlock, valid 10 s, prompt offers both | same key, prompt biometric only |
 * | `DEVICE_CREDENTIAL` | the credential per signature | as the row above | `BiometricUnavailable` |
 * | `NONE` | no user | no user | no user |
 *
 * Signatures go through the system `BiometricPrompt` (framework API, no
 * AndroidX) on the main thread; a cancelled `sign` dismisses it. Each key
 * is generated with the server's registration challenge as its attestation
 * challenge and its certificate chain is returned as the attestation.
 * Call [availability] before offering biometric sign-in.
 */
class AndroidKeystoreKeyStore(context: Context) : PlatformKeyStore {
    // The application context: the key store outlives any activity.
    private val context: Context = context.applicationContext ?: context
    private val keyguard: KeyguardManager? = this.context.getSystemService(KeyguardManager::class.java)

    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    /** Whether [userVerification] can be set up on this phone now; see [BiometricAvailability]. */
    fun availability(userVerification: UserVerification = UserVerification.BIOMETRIC): BiometricAvailability =
        Availability.of(context, userVerification)

    /**
     * The strongest policy this phone can give a key now: `BIOMETRIC`, else
     * `DEVICE_CREDENTIAL` (a phone with a screen lock but no enrolled
     * strong biometric, API 29+), else null (offer nothing).
     */
    fun recommendedUserVerification(): UserVerification? = when {
        availability(UserVerification.BIOMETRIC) == BiometricAvailability.AVAILABLE -> UserVerification.BIOMETRIC
        availability(UserVerification.DEVICE_CREDENTIAL) == BiometricAvailability.AVAILABLE -> UserVerification.DEVICE_CREDENTIAL
        else -> null
    }

    override suspend fun generateKey(
        alias: String,
        userVerification: UserVerification,
        attestationChallenge: ByteArray,
    ): GeneratedKey = withContext(Dispatchers.IO) {
        // Checked first: Keystore's own refusal is a generic
        // InvalidAlgorithmParameterException the SDK could not tell apart.
        availability(userVerification).let {
            if (it != BiometricAvailability.AVAILABLE) throw PlatformKeyException.BiometricUnavailable(it.reason)
        }
        val spec = Policies.specFor(userVerification, Build.VERSION.SDK_INT)
            ?: throw PlatformKeyException.BiometricUnavailable(BiometricAvailability.UNSUPPORTED_ANDROID_VERSION.reason)
        var strongBox = hasStrongBox()
        val pair: KeyPair = try {
            try {
                generate(alias, spec, strongBox, attestationChallenge)
            } catch (e: StrongBoxUnavailableException) {
                strongBox = false
                generate(alias, spec, strongBox = false, challenge = attestationChallenge)
            }
        } catch (e: Exception) {
            // The lock screen or the last fingerprint may have gone between
            // the check above and now.
            val now = availability(userVerification)
            if (now != BiometricAvailability.AVAILABLE) throw PlatformKeyException.BiometricUnavailable(now.reason)
            throw PlatformKeyException.Other("key generation failed: ${e.message ?: e.javaClass.name}")
        }
        val w = (pair.public as ECPublicKey).w
        val storage = policyOf(keyInfo(pair.private), strongBox).storage
        // A software key (an emulator, a phone without secure hardware) has
        // only Android's own attestation, which proves nothing: none is sent
        // (the server would refuse `software` with an attestation).
        val attestation = if (storage == KeyStorage.SOFTWARE) null else attestation(alias)
        GeneratedKey(byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY), storage, attestation)
    }

    /**
     * The key's actual storage and policy as Keystore reports them; null
     * when there is no such key. Before API 31 Keystore cannot say StrongBox
     * or TEE for an existing key: a hardware key counts as StrongBox on a
     * phone that has one (`generateKey` knows, and reports it exactly).
     */
    suspend fun keyPolicy(alias: String): KeyPolicy? = withContext(Dispatchers.IO) {
        val key = loadKey(alias) ?: return@withContext null
        policyOf(keyInfo(key), strongBoxRequested = hasStrongBox())
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

    private fun generate(alias: String, spec: Policies.Spec, strongBox: Boolean, challenge: ByteArray): KeyPair =
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).run {
            val builder = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .setDigests(KeyProperties.DIGEST_SHA256)
                .setIsStrongBoxBacked(strongBox)
                // Key attestation (API 24+): the leaf certificate of the key's
                // chain states where it lives, for this registration only.
                .setAttestationChallenge(challenge)
            if (spec.keyAuthTypes != 0) {
                builder.setUserAuthenticationRequired(true)
                // A new fingerprint or face voids a biometric-only key: the SDK then re-enrols.
                builder.setInvalidatedByBiometricEnrollment(spec.invalidatedByEnrollment)
                if (Build.VERSION.SDK_INT >= 30) {
                    // 0: every single signature needs the user; else the window after any unlock.
                    val seconds = if (spec.perSignature) 0 else Policies.LEGACY_CREDENTIAL_WINDOW_SECONDS
                    builder.setUserAuthenticationParameters(seconds, spec.keyAuthTypes)
                } else if (!spec.perSignature) {
                    @Suppress("DEPRECATION")
                    builder.setUserAuthenticationValidityDurationSeconds(Policies.LEGACY_CREDENTIAL_WINDOW_SECONDS)
                }
            }
            initialize(builder.build())
            generateKeyPair()
        }

    private fun keyInfo(key: PrivateKey): KeyInfo = try {
        KeyFactory.getInstance(key.algorithm, ANDROID_KEYSTORE).getKeySpec(key, KeyInfo::class.java)
    } catch (e: Exception) {
        throw PlatformKeyException.Other("cannot read the key's properties: ${e.message ?: e.javaClass.name}")
    }

    private fun policyOf(info: KeyInfo, strongBoxRequested: Boolean): KeyPolicy {
        val sdk = Build.VERSION.SDK_INT
        val types = if (Build.VERSION.SDK_INT >= 30) info.userAuthenticationType else 0
        val validity = info.userAuthenticationValidityDurationSeconds
        @Suppress("DEPRECATION")
        val secureHardware = info.isInsideSecureHardware
        return KeyPolicy(
            storage = Policies.storage(sdk, if (Build.VERSION.SDK_INT >= 31) info.securityLevel else null, secureHardware, strongBoxRequested),
            userVerification = Policies.userVerification(sdk, info.isUserAuthenticationRequired, types, validity),
            perSignature = info.isUserAuthenticationRequired && validity <= 0,
            validitySeconds = validity.coerceAtLeast(0),
            invalidatedByBiometricEnrollment = info.isInvalidatedByBiometricEnrollment,
        )
    }

    /**
     * The private key, or null. `UnrecoverableKeyException` is what some
     * Android versions throw for a key whose authentication can never be
     * satisfied again (the screen lock was removed): KeyInvalidated, so the
     * SDK deletes it and offers enrolment after a password sign-in.
     */
    private fun loadKey(alias: String): PrivateKey? = try {
        keyStore().getKey(alias, null) as? PrivateKey
    } catch (e: UnrecoverableKeyException) {
        throw PlatformKeyException.KeyInvalidated()
    } catch (e: Exception) {
        throw PlatformKeyException.Other("cannot load the key: ${e.message ?: e.javaClass.name}")
    }

    override suspend fun sign(alias: String, data: ByteArray, prompt: PromptText): ByteArray {
        // Before anything else: the framework would throw on it on the main thread.
        Policies.checkPromptText(prompt)
        val (key, info) = withContext(Dispatchers.IO) {
            val key = loadKey(alias) ?: throw PlatformKeyException.KeyNotFound()
            key to keyInfo(key)
        }
        if (!info.isUserAuthenticationRequired) {
            return withContext(Dispatchers.IO) { finish(initSign(key, authenticated = false), data) }
        }
        val sdk = Build.VERSION.SDK_INT
        val keyTypes = if (Build.VERSION.SDK_INT >= 30) info.userAuthenticationType else 0
        val perSignature = info.userAuthenticationValidityDurationSeconds <= 0
        val allowsCredential = if (sdk >= 30) {
            keyTypes and KeyProperties.AUTH_DEVICE_CREDENTIAL != 0
        } else {
            // A time-bound key on API 29 takes the credential; API 28's prompt cannot offer it.
            !perSignature && sdk >= 29
        }
        // Removing the screen lock voids every key that needs the user;
        // some Android versions only say so once the key is used.
        if (keyguard?.isDeviceSecure == false) throw PlatformKeyException.KeyInvalidated()
        val authenticators = if (sdk >= 30) Policies.promptAuthenticators(keyTypes) else null
        return if (perSignature) {
            val signature = withContext(Dispatchers.IO) { initSign(key, authenticated = false) }
            val result = authenticate(prompt, authenticators, allowsCredential, SystemPrompt.CryptoObject(signature))
            val unlocked = result.cryptoObject?.signature
                ?: throw PlatformKeyException.Other("the prompt returned no signature after authentication")
            withContext(Dispatchers.IO) { finish(unlocked, data) }
        } else {
            // A time-bound key: the prompt unlocks it for a few seconds, and
            // the signature is started after it (before, init would fail).
            authenticate(prompt, authenticators, allowsCredential, crypto = null)
            withContext(Dispatchers.IO) { finish(initSign(key, authenticated = true), data) }
        }
    }

    /**
     * `Signature.initSign`, with the invalidated key told apart.
     * `UserNotAuthenticatedException` here means the key cannot be unlocked
     * by this user any more: a per-signature key needs no authentication to
     * start, and a time-bound one was just unlocked by the prompt. Both
     * happen after the screen lock was removed (and set again).
     */
    private fun initSign(key: PrivateKey, authenticated: Boolean): Signature {
        val signature = Signature.getInstance("SHA256withECDSA")
        try {
            signature.initSign(key)
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw PlatformKeyException.KeyInvalidated()
        } catch (e: UserNotAuthenticatedException) {
            throw PlatformKeyException.KeyInvalidated()
        } catch (e: Exception) {
            val state = if (authenticated) " after authentication" else ""
            throw PlatformKeyException.Other("cannot start the signature$state: ${e.message ?: e.javaClass.name}")
        }
        return signature
    }

    private fun finish(signature: Signature, data: ByteArray): ByteArray = try {
        signature.update(data)
        signature.sign() // DER, as the SDK expects.
    } catch (e: Exception) {
        if (causes(e).any { it is KeyPermanentlyInvalidatedException || it is UserNotAuthenticatedException }) {
            throw PlatformKeyException.KeyInvalidated()
        }
        throw PlatformKeyException.Other("signing failed: ${e.message ?: e.javaClass.name}")
    }

    /**
     * Shows the system prompt on the main thread and resumes with its
     * result ([PromptSession]: guarded, and dismissed when the coroutine is
     * cancelled).
     */
    private suspend fun authenticate(
        prompt: PromptText,
        authenticators: Int?,
        allowsCredential: Boolean,
        crypto: SystemPrompt.CryptoObject?,
    ): SystemPrompt.AuthenticationResult {
        val main = context.mainExecutor
        return PromptSession.await(main) { cancel, outcome ->
            val builder = SystemPrompt.Builder(context).setTitle(prompt.title)
            prompt.subtitle?.takeIf { it.isNotBlank() }?.let { builder.setSubtitle(it) }
            if (authenticators != null) builder.setAllowedAuthenticators(authenticators)
            if (allowsCredential) {
                // API 29; on 30+ setAllowedAuthenticators said it. No negative button with the credential.
                @Suppress("DEPRECATION")
                if (Build.VERSION.SDK_INT == 29) builder.setDeviceCredentialAllowed(true)
            } else {
                builder.setNegativeButton(prompt.cancelLabel, main) { _, _ -> outcome.failed(PlatformKeyException.Cancelled()) }
            }
            val callback = object : SystemPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: SystemPrompt.AuthenticationResult) = outcome.succeeded(result)

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence?) =
                    outcome.failed(Policies.promptError(errorCode, errString?.toString() ?: ""))
                // onAuthenticationFailed (a finger not recognised): the system prompt lets the user retry.
            }
            val systemPrompt = builder.build()
            if (crypto != null) {
                systemPrompt.authenticate(crypto, cancel, main, callback)
            } else {
                systemPrompt.authenticate(cancel, main, callback)
            }
        }
    }

    override suspend fun deleteKey(alias: String) = withContext(Dispatchers.IO) {
        try {
            val ks = keyStore()
            if (ks.containsAlias(alias)) ks.deleteEntry(alias)
        } catch (e: Exception) {
            throw PlatformKeyException.Other("cannot delete the key: ${e.message ?: e.javaClass.name}")
        }
    }

    override suspend fun keyExists(alias: String): Boolean = withContext(Dispatchers.IO) {
        try {
            keyStore().containsAlias(alias)
        } catch (e: Exception) {
            throw PlatformKeyException.Other("cannot read the key store: ${e.message ?: e.javaClass.name}")
        }
    }

    companion object {
        internal const val ANDROID_KEYSTORE = "AndroidKeyStore"

        private fun causes(e: Throwable): Sequence<Throwable> = generateSequence(e) { it.cause?.takeIf { c -> c !== it } }.take(16)

        private fun fixed32(n: BigInteger): ByteArray {
            val b = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
            return ByteArray(32 - b.size) + b
        }
    }
}
