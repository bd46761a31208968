package com.devicetrust.test

import org.bouncycastle.asn1.ASN1EncodableVector
import org.bouncycastle.asn1.ASN1Enumerated
import org.bouncycastle.asn1.ASN1Integer
import org.bouncycastle.asn1.ASN1ObjectIdentifier
import org.bouncycastle.asn1.DEROctetString
import org.bouncycastle.asn1.DERSequence
import org.bouncycastle.asn1.DERSet
import org.bouncycastle.asn1.DERTaggedObject
import org.bouncycastle.asn1.x500.X500Name
import org.bouncycastle.asn1.x509.BasicConstraints
import org.bouncycastle.asn1.x509.Extension
import org.bouncycastle.asn1.x509.KeyUsage
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder
import java.io.File
import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.PublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Base64
import java.util.Date
import java.util.concurrent.atomic.AtomicLong

/**
 * A test Android Key Attestation PKI, built with BouncyCastle: a root (given
 * to the server with `--android-attestation-roots`), an intermediate, and
 * for each key a leaf carrying a KeyDescription (OID
 * 1.3.6.1.4.1.11129.2.1.17) as a TEE KeyMint 300 writes it: purpose SIGN,
 * origin GENERATED, a fingerprint required, the attestation challenge.
 * What `getCertificateChain` returns on a phone, leaf first.
 */
class SyntheticAttestation {
    private val serial = AtomicLong(System.currentTimeMillis())
    private val rootKey = ecKey()
    private val rootName = X500Name("CN=Kotlin Test Attestation Root")
    private val intermediateKey = ecKey()
    private val intermediateName = X500Name("CN=Kotlin Test Attestation Intermediate")
    private val rootDer = ca(rootName, rootKey.public, rootName, rootKey)
    private val intermediateDer = ca(intermediateName, intermediateKey.public, rootName, rootKey)

    /** Writes the root as PEM, for `--android-attestation-roots`. */
    fun writeRootPem(file: File): File {
        val body = Base64.getMimeEncoder(64, "\n".toByteArray()).encodeToString(rootDer)
        file.writeText("-----BEGIN CERTIFICATE-----\n$body\n-----END CERTIFICATE-----\n")
        return file
    }

    /** The chain for `key`, attested with `challenge` at `securityLevel`
     *  (1 TrustedEnvironment, 2 StrongBox), DER, leaf first. */
    fun chain(key: PublicKey, challenge: ByteArray, securityLevel: Int = 1): List<ByteArray> {
        val now = System.currentTimeMillis()
        val leaf = JcaX509v3CertificateBuilder(
            intermediateName, BigInteger.valueOf(serial.incrementAndGet()),
            // Phones set the leaf's dates loosely; the server does not check them.
            Date(0), Date(now + 365L * 86_400_000L), X500Name("CN=Android Keystore Key"), key,
        ).addExtension(ASN1ObjectIdentifier(KEY_DESCRIPTION), false, keyDescription(challenge, securityLevel))
            .build(JcaContentSignerBuilder("SHA256withECDSA").build(intermediateKey.private))
        return listOf(leaf.encoded, intermediateDer, rootDer)
    }

    private fun ca(subject: X500Name, key: PublicKey, issuer: X500Name, signer: KeyPair): ByteArray {
        val now = System.currentTimeMillis()
        return JcaX509v3CertificateBuilder(
            issuer, BigInteger.valueOf(serial.incrementAndGet()),
            Date(now - 3_600_000L), Date(now + 86_400_000L), subject, key,
        ).addExtension(Extension.basicConstraints, true, BasicConstraints(true))
            .addExtension(Extension.keyUsage, true, KeyUsage(KeyUsage.keyCertSign or KeyUsage.cRLSign))
            .build(JcaContentSignerBuilder("SHA256withECDSA").build(signer.private))
            .encoded
    }

    companion object {
        const val KEY_DESCRIPTION = "1.3.6.1.4.1.11129.2.1.17"

        private fun ecKey(): KeyPair =
            KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()

        /** `[tag] EXPLICIT value`: BouncyCastle writes tags above 30 in DER's
         *  high-tag-number form, as the AuthorizationList needs. */
        private fun tagged(tag: Int, value: org.bouncycastle.asn1.ASN1Encodable) = DERTaggedObject(true, tag, value)

        private fun sequence(vararg items: org.bouncycastle.asn1.ASN1Encodable) =
            DERSequence(ASN1EncodableVector().apply { items.forEach { add(it) } })

        /** KeyDescription (attestation version 300, KeyMint 300). */
        fun keyDescription(challenge: ByteArray, securityLevel: Int): DERSequence {
            val softwareEnforced = sequence(
                tagged(701, ASN1Integer(System.currentTimeMillis())), // creationDateTime
            )
            val hardwareEnforced = sequence(
                tagged(1, DERSet(ASN1Integer(2))), // purpose: SIGN
                tagged(2, ASN1Integer(3)), // algorithm: EC
                tagged(3, ASN1Integer(256)), // keySize
                tagged(10, ASN1Integer(1)), // ecCurve: P-256
                tagged(504, ASN1Integer(2)), // userAuthType: fingerprint
                tagged(702, ASN1Integer(0)), // origin: GENERATED
                tagged(705, ASN1Integer(150000)), // osVersion
            )
            return sequence(
                ASN1Integer(300), ASN1Enumerated(securityLevel),
                ASN1Integer(300), ASN1Enumerated(securityLevel),
                DEROctetString(challenge), DEROctetString(ByteArray(0)),
                softwareEnforced, hardwareEnforced,
            )
        }
    }
}
