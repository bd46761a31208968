import CryptoTokenKit
import Foundation
import LocalAuthentication
import Security

// Hand-written support shared by SecureEnclaveKeyStore and
// KeychainSessionSealer. Not generated: lives in Sources/DeviceTrust/Apple,
// which build-xcframework.sh never overwrites and .gitignore does not cover.

/// A value handed across threads that Swift cannot prove safe: a SecKey or
/// a query dictionary passed to the one GCD work item that uses it, and the
/// LAContext whose only use from another thread is `invalidate()` from the
/// cancellation handler.
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
}

/// Runs a synchronous Security-framework call on a GCD queue and resumes the
/// caller when it is done, so a call that may take a while (key generation,
/// a Secure Enclave signature) never occupies a thread of Swift's
/// cooperative pool. No semaphore: the continuation is resumed exactly once
/// from the work item.
func offCooperativePool<T>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    let result: Unchecked<Result<T, Error>> = await withCheckedContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(returning: Unchecked(value: Result { try work() }))
        }
    }
    return try result.value.get()
}

/// Generic-password items in the data-protection keychain (on macOS too,
/// where `swift test` runs; iOS only has that one).
enum Keychain {
    /// The item's data, or nil when there is none.
    static func read(service: String, account: String) throws -> Data? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
            kSecUseDataProtectionKeychain as String: true,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else { throw PlatformKeyError.Other(reason: "keychain item \(service) holds no data") }
            return data
        case errSecItemNotFound:
            return nil
        default:
            throw keychainError(status, "reading \(service)")
        }
    }

    /// Adds the item; returns false when one already exists (left as it is).
    /// Never synchronised (iCloud Keychain) and, with a `ThisDeviceOnly`
    /// accessibility, never restored onto another phone.
    @discardableResult
    static func add(service: String, account: String, data: Data, accessible: CFString) throws -> Bool {
        let attributes: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecValueData as String: data,
            kSecAttrAccessible as String: accessible,
            kSecAttrSynchronizable as String: false,
            kSecUseDataProtectionKeychain as String: true,
        ]
        let status = SecItemAdd(attributes as CFDictionary, nil)
        switch status {
        case errSecSuccess: return true
        case errSecDuplicateItem: return false
        default: throw keychainError(status, "storing \(service)")
        }
    }

    /// Replaces the item's data, adding the item when missing.
    static func write(service: String, account: String, data: Data, accessible: CFString) throws {
        if try add(service: service, account: account, data: data, accessible: accessible) { return }
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecUseDataProtectionKeychain as String: true,
        ]
        let status = SecItemUpdate(query as CFDictionary, [kSecValueData as String: data] as CFDictionary)
        guard status == errSecSuccess else { throw keychainError(status, "updating \(service)") }
    }

    /// Deletes the item; a missing item is not an error.
    static func delete(service: String, account: String) throws {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecUseDataProtectionKeychain as String: true,
        ]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw keychainError(status, "deleting \(service)")
        }
    }
}

/// The system's words for an OSStatus, with the number (what Apple's
/// forums and `security error` look up).
func osStatusDescription(_ status: OSStatus) -> String {
    let text = SecCopyErrorMessageString(status, nil) as String? ?? "unknown error"
    return "\(text) (OSStatus \(status))"
}

/// A keychain failure that is not about the user: the item is unreadable
/// now (before the first unlock), an entitlement is missing, and so on.
func keychainError(_ status: OSStatus, _ what: String) -> PlatformKeyError {
    switch status {
    case errSecInteractionNotAllowed:
        // Before the first unlock after a restart (or a locked phone for
        // WhenUnlocked items): temporary, the item is still there. Not
        // `Other`: the SDK deletes a sealed session whose `open` fails with
        // `Other` (signing the user out after every reboot that launches the
        // app in the background), and keeps it on `BiometricUnavailable`.
        return .BiometricUnavailable(reason: "\(what): the keychain is locked until the phone is unlocked (\(osStatusDescription(status)))")
    case errSecMissingEntitlement:
        return .Other(reason: "\(what): the app lacks the keychain entitlement (code signing / keychain-access-groups; \(osStatusDescription(status)))")
    default:
        return .Other(reason: "\(what): \(osStatusDescription(status))")
    }
}

/// How a key-store operation failed, in the platform's terms, before it is
/// turned into a `PlatformKeyError`: what the key store needs to decide
/// whether the key is dead.
enum KeyFailure {
    /// The user, the app or the system cancelled the prompt.
    case cancelled
    /// The user chose the prompt's fallback ("Enter Password" / the app's
    /// cancel label used as "use password instead").
    case fallback
    case lockedOut
    /// No biometric / passcode to use, or no prompt possible right now.
    case unavailable(String)
    /// The key is not there (never made, deleted, or removed by the system).
    case keyMissing(String)
    /// The key was there but refused: failed authentication, or a key whose
    /// biometric set has changed.
    case refused(String)
    case other(String)

    /// Sorts an error from LocalAuthentication, Security (OSStatus, as
    /// SecKeyCreateSignature's CFError carries it) or CryptoTokenKit (the
    /// Secure Enclave token), one code at a time.
    init(_ error: Error) {
        if let sorted = error as? KeyFailureError {
            self = sorted.failure
            return
        }
        let ns = error as NSError
        let text = ns.localizedDescription
        switch ns.domain {
        case LAError.errorDomain:
            switch LAError.Code(rawValue: ns.code) {
            case .userCancel?, .appCancel?, .systemCancel?:
                self = .cancelled
            case .userFallback?:
                self = .fallback
            case .invalidContext?:
                // Only ever ours: the context was invalidated because the
                // caller went away (task cancelled).
                self = .cancelled
            case .biometryLockout?:
                self = .lockedOut
            case .biometryNotAvailable?, .biometryNotEnrolled?, .passcodeNotSet?:
                self = .unavailable(text)
            case .notInteractive?:
                self = .unavailable("the prompt cannot be shown now (app not in the foreground): \(text)")
            case .authenticationFailed?:
                self = .refused("not recognised: \(text)")
            default:
                // -11 companion/watch not available, -12 biometry not
                // paired, -13 biometry disconnected (external readers),
                // newer codes: nothing is wrong with the key.
                if [-11, -12, -13].contains(ns.code) {
                    self = .unavailable(text)
                } else {
                    self = .other("LocalAuthentication \(ns.code): \(text)")
                }
            }
        case NSOSStatusErrorDomain:
            let status = OSStatus(truncatingIfNeeded: ns.code)
            switch status {
            case errSecUserCanceled:
                self = .cancelled
            case errSecAuthFailed:
                self = .refused(osStatusDescription(status))
            case errSecInteractionNotAllowed:
                self = .unavailable("the phone is locked or no prompt may be shown now (\(osStatusDescription(status)))")
            case errSecItemNotFound:
                self = .keyMissing(osStatusDescription(status))
            default:
                self = .other(osStatusDescription(status))
            }
        case TKError.errorDomain:
            switch TKError.Code(rawValue: ns.code) {
            case .canceledByUser?:
                self = .cancelled
            case .authenticationFailed?:
                self = .refused("Secure Enclave: authentication failed (\(text))")
            case .objectNotFound?, .tokenNotFound?:
                self = .keyMissing("Secure Enclave: \(text)")
            case .authenticationNeeded?:
                self = .unavailable("Secure Enclave: authentication needed but no prompt may be shown now (\(text))")
            default:
                self = .other("CryptoTokenKit \(ns.code): \(text)")
            }
        default:
            self = .other("\(ns.domain) \(ns.code): \(text)")
        }
    }

    /// The SDK's variant. `keyInvalidated`: the key store has evidence that
    /// this key died with a change of enrolled biometrics (see
    /// SecureEnclaveKeyStore.biometricsChanged); only then is a missing or
    /// refusing key `KeyInvalidated`.
    func platformKeyError(keyInvalidated: Bool) -> PlatformKeyError {
        switch self {
        case .cancelled, .fallback: return .Cancelled
        case .lockedOut: return .BiometricLockedOut
        case .unavailable(let reason): return .BiometricUnavailable(reason: reason)
        case .keyMissing: return keyInvalidated ? .KeyInvalidated : .KeyNotFound
        case .refused(let reason): return keyInvalidated ? .KeyInvalidated : .Other(reason: reason)
        case .other(let reason): return .Other(reason: reason)
        }
    }

    /// Whether this failure can mean "the key died with a biometric change".
    var mayBeInvalidation: Bool {
        switch self {
        case .keyMissing, .refused: return true
        default: return false
        }
    }
}
