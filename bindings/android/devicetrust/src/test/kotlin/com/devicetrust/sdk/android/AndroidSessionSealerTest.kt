package com.devicetrust.sdk.android

import com.devicetrust.sdk.PlatformKeyException
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

/** The sealer's format and failures, with a JCE AES key standing in for the Keystore's. */
class AndroidSessionSealerTest {
    private class MemoryKeys : AndroidSessionSealer.KeySource {
        var key: SecretKey? = null
        var created = 0
        override fun key(create: Boolean): SecretKey? {
            if (key == null && create) {
                key = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
                created++
            }
            return key
        }
    }

    private val token = "refresh-token-and-session".toByteArray()

    @Test
    fun sealsAndOpens() {
        val keys = MemoryKeys()
        val sealer = AndroidSessionSealer(keys)
        val sealed = sealer.seal(token)
        assertEquals(1, sealed[0].toInt())
        assertEquals(1 + 12 + token.size + 16, sealed.size)
        assertFalse(sealed.toList().windowed(token.size).any { it == token.toList() }, "the plaintext shows in the sealed bytes")
        assertArrayEquals(token, sealer.open(sealed))
        // A fresh IV each time, one key for all.
        assertFalse(sealed.contentEquals(sealer.seal(token)))
        assertEquals(1, keys.created)
        assertArrayEquals(ByteArray(0), sealer.open(sealer.seal(ByteArray(0))))
    }

    @Test
    fun everyAlteredByteIsRefused() {
        val sealer = AndroidSessionSealer(MemoryKeys())
        val sealed = sealer.seal(token)
        for (i in 1 until sealed.size) {
            val altered = sealed.copyOf().also { it[i] = (it[i].toInt() xor 1).toByte() }
            val e = assertThrows<PlatformKeyException.Other> { sealer.open(altered) }
            assertTrue(e.reason.contains("altered"), e.reason)
        }
        assertThrows<PlatformKeyException.Other> { sealer.open(sealed.copyOf(sealed.size - 1)) }
        assertThrows<PlatformKeyException.Other> { sealer.open(byteArrayOf(2) + sealed.copyOfRange(1, sealed.size)) }
        assertThrows<PlatformKeyException.Other> { sealer.open(ByteArray(0)) }
    }

    @Test
    fun anotherKeyCannotOpenIt() {
        val sealed = AndroidSessionSealer(MemoryKeys()).seal(token)
        assertThrows<PlatformKeyException.Other> { AndroidSessionSealer(MemoryKeys().apply { key(true) }).open(sealed) }
    }

    @Test
    fun noKeyMeansKeyNotFoundAndOpenCreatesNone() {
        val keys = MemoryKeys()
        val sealed = AndroidSessionSealer(MemoryKeys()).seal(token)
        assertThrows<PlatformKeyException.KeyNotFound> { AndroidSessionSealer(keys).open(sealed) }
        assertEquals(0, keys.created)
    }
}
