import CryptoKit
import DeviceTrust
import Foundation

/// What the stand-in "platform" does when asked to sign.
enum Mode { case normal, cancel, biometricsChanged }

/// The SDK's key store on CryptoKit (software P-256), standing in for the
/// Secure Enclave in tests: DER signatures, as SecKeyCreateSignature gives.
/// Mirrors bindings/kotlin's JavaKeyStore.
final class CryptoKitKeyStore: PlatformKeyStore, @unchecked Sendable {
    private var keys: [String: P256.Signing.PrivateKey] = [:]
    private let lock = NSLock()
    var mode = Mode.normal
    private(set) var prompts: [String] = []

    func generateKey(alias: String, userVerification: UserVerification, attestationChallenge: Data) async throws -> GeneratedKey {
        // A software key: nothing to attest, the challenge is not used.
        let key = P256.Signing.PrivateKey()
        lock.withLock { keys[alias] = key }
        return GeneratedKey(publicKey: key.publicKey.x963Representation, storage: .software, attestation: nil)
    }

    func sign(alias: String, data: Data, prompt: PromptText) async throws -> Data {
        lock.withLock { prompts.append(prompt.title) }
        switch mode {
        case .cancel: throw PlatformKeyError.Cancelled
        case .biometricsChanged: throw PlatformKeyError.KeyInvalidated
        case .normal: break
        }
        guard let key = lock.withLock({ keys[alias] }) else { throw PlatformKeyError.KeyNotFound }
        return try key.signature(for: data).derRepresentation
    }

    func deleteKey(alias: String) async throws {
        _ = lock.withLock { keys.removeValue(forKey: alias) }
    }

    func keyExists(alias: String) async throws -> Bool {
        lock.withLock { keys[alias] != nil }
    }

    var keyCount: Int { lock.withLock { keys.count } }
}
