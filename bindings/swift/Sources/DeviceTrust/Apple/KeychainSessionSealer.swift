import CryptoKit
import Foundation
import Security

/// The SDK's `SessionSealer` on iOS: AES-256-GCM (CryptoKit) under a random
/// key kept as a Keychain generic password,
/// `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: readable in the
/// background after the first unlock (a refresh may run then), never synced
/// to iCloud Keychain, never restored onto another phone. No user presence:
/// a persistent session is restored without a prompt; what the user
/// unlocks with Face ID is the Secure Enclave signing key, not this one.
///
/// Called by the SDK from its own threads (the methods are synchronous and
/// show no UI). Errors: no key when opening → `KeyNotFound` (the sealed
/// session cannot be opened any more: sign in again); altered or foreign
/// bytes → `Other`; keychain locked before the first unlock →
/// `BiometricUnavailable` (temporary: the SDK keeps the sealed bytes and
/// tries again at its next call; on `Other` it would delete them).
public final class KeychainSessionSealer: SessionSealer, @unchecked Sendable {
    /// Bound into every seal: bytes sealed for something else with the same key never open here.
    private static let associatedData = Data("devicetrust.session.v1".utf8)

    private let service: String
    private let account: String
    private let lock = NSLock()
    /// The key once read or made (the keychain is not asked on every call).
    private var cached: SymmetricKey?

    /// `service` / `account` name the Keychain item; change `account` to
    /// keep two independent sealers (one per app extension, say).
    public init(service: String = "com.devicetrust.session-sealer", account: String = "aes-256-gcm") {
        self.service = service
        self.account = account
    }

    public func seal(plaintext: Data) throws -> Data {
        let key = try key(createIfMissing: true)
        do {
            // A random 96-bit nonce per seal; `combined` = nonce ‖ ciphertext ‖ tag.
            let box = try AES.GCM.seal(plaintext, using: key, authenticating: Self.associatedData)
            guard let combined = box.combined else {
                throw PlatformKeyError.Other(reason: "sealing produced no combined form")
            }
            return combined
        } catch let error as PlatformKeyError {
            throw error
        } catch {
            throw PlatformKeyError.Other(reason: "sealing failed: \(error)")
        }
    }

    public func open(sealed: Data) throws -> Data {
        guard let key = try key(createIfMissing: false) else {
            // The key is gone (deleted, or the sealed bytes came from another
            // phone): nothing sealed before can be opened any more.
            throw PlatformKeyError.KeyNotFound
        }
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.SealedBox(combined: sealed)
        } catch {
            throw PlatformKeyError.Other(reason: "sealed session malformed (\(sealed.count) bytes)")
        }
        do {
            return try AES.GCM.open(box, using: key, authenticating: Self.associatedData)
        } catch CryptoKitError.authenticationFailure {
            throw PlatformKeyError.Other(reason: "sealed session altered, or sealed with another key")
        } catch {
            throw PlatformKeyError.Other(reason: "opening failed: \(error)")
        }
    }

    /// Deletes the key: everything sealed so far can no longer be opened.
    /// For an app's "forget this phone"; the next `seal` makes a new key.
    public func destroyKey() throws {
        lock.lock()
        defer { lock.unlock() }
        cached = nil
        try Keychain.delete(service: service, account: account)
    }

    private func key(createIfMissing: Bool) throws -> SymmetricKey? {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        if let stored = try Keychain.read(service: service, account: account) {
            guard stored.count == 32 else {
                throw PlatformKeyError.Other(reason: "the session key in the keychain is \(stored.count) bytes, not 32")
            }
            let key = SymmetricKey(data: stored)
            cached = key
            return key
        }
        guard createIfMissing else { return nil }
        let key = SymmetricKey(size: .bits256)
        let bytes = key.withUnsafeBytes { Data($0) }
        if try Keychain.add(service: service, account: account, data: bytes, accessible: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly) {
            cached = key
            return key
        }
        // Another process sharing the item (an app extension) made one first: use that.
        guard let stored = try Keychain.read(service: service, account: account), stored.count == 32 else {
            throw PlatformKeyError.Other(reason: "the session key vanished while being created")
        }
        let theirs = SymmetricKey(data: stored)
        cached = theirs
        return theirs
    }
}
