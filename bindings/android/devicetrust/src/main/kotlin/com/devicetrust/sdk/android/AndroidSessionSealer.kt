package com.devicetrust.sdk.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import com.devicetrust.sdk.PlatformKeyException
import com.devicetrust.sdk.SessionSealer
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The SDK's [SessionSealer] on Android: AES-256-GCM under a key in the
 * Android Keystore (StrongBox when the phone has one) that needs no user
 * authentication, so the SDK can restore a session at launch without a
 * prompt. The key never leaves the secure hardware and is not in any
 * backup: a restored or migrated phone cannot open what the old one
 * sealed, and [open] then fails with `KeyNotFound` (the SDK signs in
 * again). Keep the SDK's state folder out of backups too (see
 * `docs/SDK.md`, "Android: adding biometric sign-in").
 *
 * Sealed format: `0x01 ‖ 12-byte IV ‖ ciphertext ‖ 16-byte tag`, with the
 * format byte and [AAD] as associated data. Keystore chooses the IV (a
 * caller-chosen one is refused for keys with randomized encryption).
 */
class AndroidSessionSealer internal constructor(
    private val keys: KeySource,
) : SessionSealer {
    /** [alias]: the Keystore alias of the sealing key; one per app is enough. */
    constructor(context: Context, alias: String = DEFAULT_ALIAS) : this(KeystoreKeySource(context.applicationContext ?: context, alias))

    /** Where the AES key comes from: Android Keystore on phones, a plain key in JVM tests. */
    internal interface KeySource {
        /** The key, created on first use when [create]; null when missing and not [create]. */
        fun key(create: Boolean): SecretKey?
    }

    override fun seal(plaintext: ByteArray): ByteArray {
        val key = keys.key(create = true) ?: throw PlatformKeyException.KeyNotFound()
        return try {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.ENCRYPT_MODE, key)
            cipher.updateAAD(byteArrayOf(FORMAT) + AAD)
            val iv = cipher.iv
            if (iv == null || iv.size != IV_BYTES) throw PlatformKeyException.Other("unexpected GCM IV from the key store")
            byteArrayOf(FORMAT) + iv + cipher.doFinal(plaintext)
        } catch (e: GeneralSecurityException) {
            throw PlatformKeyException.Other("sealing the session failed: ${e.message ?: e.javaClass.name}")
        }
    }

    override fun open(sealed: ByteArray): ByteArray {
        if (sealed.size < 1 + IV_BYTES + TAG_BYTES || sealed[0] != FORMAT) {
            throw PlatformKeyException.Other("not a sealed session of this format")
        }
        // Missing: app data restored onto another phone, or the app reinstalled.
        val key = keys.key(create = false) ?: throw PlatformKeyException.KeyNotFound()
        return try {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BYTES * 8, sealed, 1, IV_BYTES))
            cipher.updateAAD(byteArrayOf(FORMAT) + AAD)
            cipher.doFinal(sealed, 1 + IV_BYTES, sealed.size - 1 - IV_BYTES)
        } catch (e: AEADBadTagException) {
            throw PlatformKeyException.Other("the sealed session was altered or sealed under another key")
        } catch (e: GeneralSecurityException) {
            throw PlatformKeyException.Other("opening the session failed: ${e.message ?: e.javaClass.name}")
        }
    }

    /** Forgets the sealing key: everything sealed so far can no longer be opened. */
    fun deleteKey() {
        (keys as? KeystoreKeySource)?.delete()
    }

    internal class KeystoreKeySource(private val context: Context, private val alias: String) : KeySource {
        private fun keyStore(): KeyStore = KeyStore.getInstance(AndroidKeystoreKeyStore.ANDROID_KEYSTORE).apply { load(null) }

        // Synchronized: two first seals at once must not create two keys.
        @Synchronized
        override fun key(create: Boolean): SecretKey? = try {
            (keyStore().getKey(alias, null) as? SecretKey) ?: if (create) generate() else null
        } catch (e: PlatformKeyException) {
            throw e
        } catch (e: Exception) {
            throw PlatformKeyException.Other("the session key is unusable: ${e.message ?: e.javaClass.name}")
        }

        @Synchronized
        fun delete() {
            try {
                val ks = keyStore()
                if (ks.containsAlias(alias)) ks.deleteEntry(alias)
            } catch (e: Exception) {
                throw PlatformKeyException.Other("cannot delete the session key: ${e.message ?: e.javaClass.name}")
            }
        }

        private fun generate(): SecretKey {
            val strongBox = context.packageManager.hasSystemFeature("android.hardware.strongbox_keystore")
            return try {
                generate(strongBox)
            } catch (e: StrongBoxUnavailableException) {
                generate(strongBox = false)
            }
        }

        private fun generate(strongBox: Boolean): SecretKey = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, AndroidKeystoreKeyStore.ANDROID_KEYSTORE).run {
            init(
                KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                    .setKeySize(256)
                    .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                    .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                    .setIsStrongBoxBacked(strongBox)
                    // No user authentication: the session is restored at launch without a prompt.
                    .setUserAuthenticationRequired(false)
                    .build(),
            )
            generateKey()
        }
    }

    companion object {
        const val DEFAULT_ALIAS = "devicetrust/session-sealer"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val FORMAT: Byte = 1
        private const val IV_BYTES = 12
        private const val TAG_BYTES = 16
        private val AAD = "devicetrust session".toByteArray()
    }
}
