import DeviceCheck
import DeviceTrust
import Foundation
import LocalAuthentication
import Security

/// The SDK's key store on iOS: a P-256 key created inside the Secure Enclave
/// (`SecKeyCreateRandomKey` with `kSecAttrTokenIDSecureEnclave`), usable only
/// on this device, gated by `.privateKeyUsage` plus `.biometryCurrentSet`
/// (Face ID / Touch ID as enrolled now) or `.userPresence` (biometry or
/// passcode) by policy. Signing uses `.ecdsaSignatureMessageX962SHA256`
/// (DER, as the SDK expects) with an `LAContext` carrying the app's words.
///
/// Key attestation: each new Secure Enclave key is vouched for by App Attest
/// (`DCAppAttestService`). App Attest keys are App Attest's own: a new one
/// per registration (`generateKey`), never used to sign sign-ins; its
/// attestation (`attestKey(_:clientDataHash:)`) binds *our* signing key
/// through `clientDataHash` = SHA-256(challenge ‖ JWK thumbprint of the
/// signing key), which the SDK computes (`appAttestClientDataHash`). Where
/// App Attest is unsupported or fails (no network to Apple, a simulator) the
/// key is returned without attestation: a server under `--attestation
/// verify` still registers it, one under `require` refuses it.
///
/// Simulator fallback: the simulator has no Secure Enclave, so there the key
/// is a regular keychain key with the same access control, reported as
/// `.software` (the server sees it as such).
public final class SecureEnclaveKeyStore: PlatformKeyStore, @unchecked Sendable {
    private let tagPrefix: String
    private let defaults: UserDefaults
    private let appAttest: Bool

    /// `appAttest`: attest new keys with App Attest (needs the App Attest
    /// capability, `com.apple.developer.devicecheck.appattest-environment`,
    /// in the app's entitlements).
    public init(tagPrefix: String = "com.devicetrust.key.", defaults: UserDefaults = .standard, appAttest: Bool = true) {
        self.tagPrefix = tagPrefix
        self.defaults = defaults
        self.appAttest = appAttest
    }

    private func tag(_ alias: String) -> Data { Data((tagPrefix + alias).utf8) }
    private func domainStateKey(_ alias: String) -> String { tagPrefix + alias + ".biometry-state" }

    public func generateKey(alias: String, userVerification: UserVerification, attestationChallenge: Data) async throws -> GeneratedKey {
        try await deleteKey(alias: alias)
        var flags: SecAccessControlCreateFlags = [.privateKeyUsage]
        switch userVerification {
        case .biometric: flags.insert(.biometryCurrentSet)
        case .biometricOrDeviceCredential: flags.insert(.userPresence)
        case .none: break
        }
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, flags, &error
        ) else { throw Self.other(error, "access control") }

        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: tag(alias),
                kSecAttrAccessControl as String: access,
            ] as [String: Any],
        ]
        #if targetEnvironment(simulator)
        let storage = KeyStorage.software
        #else
        attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        let storage = KeyStorage.secureEnclave
        #endif
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw Self.other(error, "key generation")
        }
        guard let publicKey = SecKeyCopyPublicKey(key),
              let raw = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
            throw Self.other(error, "public key export")
        }
        // Remember the enrolled biometrics, to tell "biometrics changed" from
        // other failures later.
        let context = LAContext()
        _ = context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: nil)
        defaults.set(context.evaluatedPolicyDomainState, forKey: domainStateKey(alias))
        // X9.63 uncompressed: 0x04 ‖ x ‖ y, 65 bytes.
        var attestation: KeyAttestation? = nil
        if storage == .secureEnclave {
            attestation = await attest(publicKey: raw, challenge: attestationChallenge)
        }
        return GeneratedKey(publicKey: raw, storage: storage, attestation: attestation)
    }

    /// App Attest's attestation of the signing key `publicKey` for this
    /// registration, or nil where App Attest cannot give one.
    private func attest(publicKey: Data, challenge: Data) async -> KeyAttestation? {
        let service = DCAppAttestService.shared
        guard appAttest, service.isSupported else { return nil }
        do {
            let clientDataHash = try appAttestClientDataHash(challenge: challenge, publicKey: publicKey)
            // A fresh App Attest key: an attested key cannot be attested again.
            let keyId = try await service.generateKey()
            let object = try await service.attestKey(keyId, clientDataHash: clientDataHash)
            // The key identifier is the base64 of the App Attest public key's SHA-256.
            guard let keyIdBytes = Data(base64Encoded: keyId) else { return nil }
            return .appleAppAttest(keyId: keyIdBytes, attestationObject: object)
        } catch {
            // DCError.serverUnavailable and the like: no attestation this time.
            return nil
        }
    }

    public func sign(alias: String, data: Data, prompt: BiometricPrompt) async throws -> Data {
        let context = LAContext()
        context.localizedReason = prompt.title
        context.localizedCancelTitle = prompt.cancelLabel
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag(alias),
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
            kSecUseAuthenticationContext as String: context,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound {
            throw biometricsChanged(alias) ? KeyStoreError.KeyInvalidated : KeyStoreError.KeyNotFound
        }
        guard status == errSecSuccess, let found = item else {
            throw KeyStoreError.Other(reason: "keychain lookup failed: \(status)")
        }
        let key = found as! SecKey // The query asked for a key reference.
        var error: Unmanaged<CFError>?
        // LocalAuthentication shows Face ID / Touch ID here, with the app's reason.
        guard let signature = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256, data as CFData, &error) as Data? else {
            throw map(error, alias: alias)
        }
        return signature
    }

    public func deleteKey(alias: String) async throws {
        let query: [String: Any] = [kSecClass as String: kSecClassKey, kSecAttrApplicationTag as String: tag(alias)]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeyStoreError.Other(reason: "keychain delete failed: \(status)")
        }
        defaults.removeObject(forKey: domainStateKey(alias))
    }

    public func keyExists(alias: String) async throws -> Bool {
        let context = LAContext()
        context.interactionNotAllowed = true // never prompt just to look
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag(alias),
            kSecUseAuthenticationContext as String: context,
        ]
        let status = SecItemCopyMatching(query as CFDictionary, nil)
        return status == errSecSuccess || status == errSecInteractionNotAllowed
    }

    /// Whether the enrolled biometrics differ from those at key creation.
    private func biometricsChanged(_ alias: String) -> Bool {
        guard let then = defaults.data(forKey: domainStateKey(alias)) else { return false }
        let context = LAContext()
        _ = context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: nil)
        return context.evaluatedPolicyDomainState != then
    }

    private func map(_ error: Unmanaged<CFError>?, alias: String) -> KeyStoreError {
        guard let cfError = error?.takeRetainedValue() else { return .Other(reason: "signing failed") }
        let nsError = cfError as Error as NSError
        if nsError.domain == LAError.errorDomain {
            switch LAError.Code(rawValue: nsError.code) {
            case .userCancel, .appCancel, .systemCancel, .userFallback: return .Cancelled
            case .biometryLockout: return .BiometricLockedOut
            case .biometryNotAvailable, .biometryNotEnrolled, .passcodeNotSet:
                return .BiometricUnavailable(reason: nsError.localizedDescription)
            default: break
            }
        }
        // A `.biometryCurrentSet` key refuses to sign once enrolment changed.
        if biometricsChanged(alias) { return .KeyInvalidated }
        return .Other(reason: nsError.localizedDescription)
    }

    private static func other(_ error: Unmanaged<CFError>?, _ what: String) -> KeyStoreError {
        let description = error.map { ($0.takeRetainedValue() as Error).localizedDescription } ?? "unknown error"
        return .Other(reason: "\(what): \(description)")
    }
}
