import Foundation
import LocalAuthentication
import Security
import os

/// The SDK's key store on iOS: a P-256 key created inside the Secure Enclave
/// (`SecKeyCreateRandomKey` with `kSecAttrTokenIDSecureEnclave`), usable only
/// on this phone, gated by the policy the app asked for:
///
/// | `UserVerification` | access control flags | accessibility |
/// |---|---|---|
/// | `.biometric` | `.privateKeyUsage`, `.biometryCurrentSet` | `WhenPasscodeSetThisDeviceOnly` |
/// | `.biometricOrDeviceCredential` | `.privateKeyUsage`, `.userPresence` | `WhenPasscodeSetThisDeviceOnly` |
/// | `.deviceCredential` | `.privateKeyUsage`, `.devicePasscode` | `WhenPasscodeSetThisDeviceOnly` |
/// | `.none` | `.privateKeyUsage` | `WhenUnlockedThisDeviceOnly` |
///
/// The key is exactly what was asked for or nothing: a phone that cannot
/// honour the policy (no biometric enrolled for `.biometric`, no passcode
/// for the others) gets `BiometricUnavailable` / `BiometricLockedOut` from
/// `generateKey`, never a weaker key. Ask `availability()` first.
///
/// Signing authenticates first — `LAContext.evaluateAccessControl(_:
/// operation: .useKeySign, localizedReason:)`, asynchronously — then signs
/// with that context (`kSecUseAuthenticationContext`) on a GCD queue
/// (`.ecdsaSignatureMessageX962SHA256`, DER, as the SDK expects). When the
/// SDK drops the call (the Swift task is cancelled) the context is
/// invalidated and the prompt goes away.
///
/// Key attestation: each new Secure Enclave key is vouched for by App Attest
/// (`AppAttestor`); a phone that cannot attest returns the key without one.
///
/// Simulator: no Secure Enclave, so the key is a regular keychain key with
/// the same access control, reported as `.software`.
public final class SecureEnclaveKeyStore: PlatformKeyStore, @unchecked Sendable {
    private static let log = Logger(subsystem: "com.devicetrust", category: "key-store")
    /// Per-key facts kept beside each key (Keychain, this device only).
    private static let recordService = "com.devicetrust.key-record"

    private let tagPrefix: String
    private let attestor: AppAttestor?

    /// `tagPrefix`: the keys' `kSecAttrApplicationTag` is `tagPrefix + alias`.
    /// `appAttest`: attest new keys with App Attest (needs the App Attest
    /// capability in the app's entitlements).
    public init(tagPrefix: String = "com.devicetrust.key.", appAttest: Bool = true) {
        self.tagPrefix = tagPrefix
        self.attestor = appAttest ? AppAttestor() : nil
    }

    // MARK: Policy

    /// The access control flags a key of this policy gets (see the table above).
    public static func accessControlFlags(for userVerification: UserVerification) -> SecAccessControlCreateFlags {
        switch userVerification {
        case .biometric: return [.privateKeyUsage, .biometryCurrentSet]
        // `.userPresence` is "biometry (any enrolment) or the passcode", and
        // works on a phone with no biometric enrolled. Not
        // `.biometryCurrentSet`: whoever can enrol a face knows the
        // passcode, which opens the key anyway.
        case .biometricOrDeviceCredential: return [.privateKeyUsage, .userPresence]
        case .deviceCredential: return [.privateKeyUsage, .devicePasscode]
        case .none: return [.privateKeyUsage]
        }
    }

    /// What this phone offers now, to decide what to propose before
    /// `enableBiometricSignIn`.
    public static func availability() -> UserVerificationAvailability {
        UserVerificationAvailability.current()
    }

    // MARK: PlatformKeyStore

    public func generateKey(alias: String, userVerification: UserVerification, attestationChallenge: Data) async throws -> GeneratedKey {
        do {
            return try await makeKey(alias: alias, userVerification: userVerification, attestationChallenge: attestationChallenge)
        } catch let error as PlatformKeyError {
            throw error
        } catch is CancellationError {
            throw PlatformKeyError.Cancelled
        } catch {
            throw KeyFailure(error).platformKeyError(keyInvalidated: false)
        }
    }

    private func makeKey(alias: String, userVerification: UserVerification, attestationChallenge: Data) async throws -> GeneratedKey {
        try Self.preflight(userVerification)
        try await deleteKey(alias: alias)
        let policy = KeyPolicy(userVerification)
        var error: Unmanaged<CFError>?
        let accessible = policy == .noVerification ? kSecAttrAccessibleWhenUnlockedThisDeviceOnly : kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, accessible, Self.accessControlFlags(for: userVerification), &error
        ) else { throw Self.cfError(error, "access control") }

        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecUseDataProtectionKeychain as String: true,
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
        let query = Unchecked(value: attributes as CFDictionary)
        // Key generation in the Secure Enclave takes tens of milliseconds: off Swift's pool.
        let raw: Data = try await offCooperativePool {
            var error: Unmanaged<CFError>?
            guard let key = SecKeyCreateRandomKey(query.value, &error) else { throw Self.cfError(error, "key generation") }
            guard let publicKey = SecKeyCopyPublicKey(key),
                  let raw = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
                throw Self.cfError(error, "public key export")
            }
            return raw // X9.63 uncompressed: 0x04 ‖ x ‖ y, 65 bytes.
        }
        // What "biometrics changed" is later judged against (biometric keys only).
        let record = KeyRecord(policy: policy, biometry: policy == .biometric ? BiometrySnapshot.current() : nil)
        do {
            try Keychain.write(service: Self.recordService, account: tagString(alias), data: record.encoded(), accessible: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly)
        } catch {
            // Without its record the key still signs; only the biometric-change diagnosis is lost.
            Self.log.error("key record not stored: \(String(describing: error), privacy: .public)")
        }
        Self.log.info("created \(storage == .secureEnclave ? "Secure Enclave" : "software", privacy: .public) key, policy \(policy.rawValue, privacy: .public)")

        var attestation: KeyAttestation?
        if storage == .secureEnclave, let attestor {
            do {
                attestation = try await attestor.attest(publicKey: raw, challenge: attestationChallenge)
            } catch {
                // The SDK dropped the call (or the key is malformed): leave no key behind.
                try? await deleteKey(alias: alias)
                throw error
            }
        }
        return GeneratedKey(publicKey: raw, storage: storage, attestation: attestation)
    }

    public func sign(alias: String, data: Data, prompt: PromptText) async throws -> Data {
        // Unreadable record: sign all the same, without the biometric-change diagnosis.
        let record = try? await offCooperativePool { [self] in try readRecord(alias) }
        let context = LAContext()
        if !prompt.cancelLabel.isEmpty { context.localizedCancelTitle = prompt.cancelLabel }
        // A biometric-only key cannot use the passcode: no "Enter Password" button.
        if record?.policy == .biometric { context.localizedFallbackTitle = "" }
        let reason = Self.reason(prompt)
        // Without an explicit evaluation (no record) Security prompts during the signature, with this reason.
        context.localizedReason = reason
        let shared = Unchecked(value: context)
        do {
            return try await withTaskCancellationHandler {
                try await signAuthenticated(alias: alias, data: data, reason: reason, context: shared, record: record)
            } onCancel: {
                // The SDK dropped the call: take the prompt away.
                shared.value.invalidate()
            }
        } catch let error as PlatformKeyError {
            throw error
        } catch is CancellationError {
            throw PlatformKeyError.Cancelled
        } catch {
            let failure = KeyFailure(error)
            if Task.isCancelled { throw PlatformKeyError.Cancelled }
            throw failure.platformKeyError(keyInvalidated: failure.mayBeInvalidation && biometricsChanged(record))
        }
    }

    private func signAuthenticated(alias: String, data: Data, reason: String, context: Unchecked<LAContext>, record: KeyRecord?) async throws -> Data {
        try Task.checkCancellation()
        // 1. The key's own access control, without any UI. Every keychain
        //    call runs off Swift's pool: each is a round trip to securityd.
        let ownAccess = try await offCooperativePool { [self] in try lookUp(alias) }
        // 2. The user, asynchronously: no thread waits on the prompt.
        if let record, record.policy != .noVerification, let access = ownAccess ?? record.accessControl() {
            try await Self.evaluate(context.value, access, reason)
        }
        // 3. The signature with the authenticated context: no second prompt.
        let signature: Data = try await offCooperativePool { [self] in
            let key = try keyReference(alias, context: context.value)
            var error: Unmanaged<CFError>?
            guard let signature = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256, data as CFData, &error) as Data? else {
                if let error { throw error.takeRetainedValue() as Error }
                throw PlatformKeyError.Other(reason: "signing failed without an error")
            }
            return signature
        }
        // A keychain write only when the hash moved.
        try? await offCooperativePool { [self] in refreshBiometry(alias, record) }
        return signature
    }

    public func deleteKey(alias: String) async throws {
        try await offCooperativePool { [self] in try deleteKeyNow(alias) }
    }

    private func deleteKeyNow(_ alias: String) throws {
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag(alias),
            kSecUseDataProtectionKeychain as String: true,
        ]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw keychainError(status, "deleting the key")
        }
        try Keychain.delete(service: Self.recordService, account: tagString(alias))
    }

    public func keyExists(alias: String) async throws -> Bool {
        try await offCooperativePool { [self] in try keyExistsNow(alias) }
    }

    private func keyExistsNow(_ alias: String) throws -> Bool {
        let noUI = LAContext()
        noUI.interactionNotAllowed = true // never prompt just to look
        var query = keyQuery(alias)
        query[kSecUseAuthenticationContext as String] = noUI
        let status = SecItemCopyMatching(query as CFDictionary, nil)
        switch status {
        // errSecInteractionNotAllowed: there, but reading it would need the user.
        case errSecSuccess, errSecInteractionNotAllowed: return true
        case errSecItemNotFound: return false
        default: throw keychainError(status, "looking for the key")
        }
    }

    // MARK: Keychain

    private func tagString(_ alias: String) -> String { tagPrefix + alias }
    private func tag(_ alias: String) -> Data { Data(tagString(alias).utf8) }

    private func keyQuery(_ alias: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrApplicationTag as String: tag(alias),
            kSecUseDataProtectionKeychain as String: true,
        ]
    }

    /// Whether the key is there and, when the keychain reports it, the
    /// access control it was created with (which, for
    /// `.biometryCurrentSet`, names the enrolment it is bound to). Never
    /// shows UI; throws `.keyMissing` when there is no key.
    private func lookUp(_ alias: String) throws -> SecAccessControl? {
        let noUI = LAContext()
        noUI.interactionNotAllowed = true
        var query = keyQuery(alias)
        query[kSecReturnAttributes as String] = true
        query[kSecUseAuthenticationContext as String] = noUI
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        // The item exists but would need the user just to be read: its
        // access control comes from the key's record.
        if status == errSecInteractionNotAllowed { return nil }
        guard status == errSecSuccess else { throw KeyFailureError(status: status) }
        guard let attributes = item as? [String: Any],
              let value = attributes[kSecAttrAccessControl as String],
              CFGetTypeID(value as CFTypeRef) == SecAccessControlGetTypeID() else { return nil }
        return (value as! SecAccessControl) // type checked on the line above
    }

    /// The key's reference bound to `context` (kSecUseAuthenticationContext),
    /// so that signing uses the user's authentication on it.
    private func keyReference(_ alias: String, context: LAContext) throws -> SecKey {
        var query = keyQuery(alias)
        query[kSecReturnRef as String] = true
        query[kSecUseAuthenticationContext as String] = context
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        guard status == errSecSuccess, let item else { throw KeyFailureError(status: status) }
        return try Self.secKey(item)
    }

    private static func secKey(_ value: CFTypeRef) throws -> SecKey {
        guard CFGetTypeID(value) == SecKeyGetTypeID() else {
            throw PlatformKeyError.Other(reason: "keychain returned something other than a key")
        }
        return value as! SecKey // type checked above
    }

    // MARK: Authentication

    /// `evaluateAccessControl` with its completion handler bridged to async.
    private static func evaluate(_ context: LAContext, _ access: SecAccessControl, _ reason: String) async throws {
        let _: Void = try await withCheckedThrowingContinuation { continuation in
            context.evaluateAccessControl(access, operation: .useKeySign, localizedReason: reason) { success, error in
                if success {
                    continuation.resume()
                } else {
                    continuation.resume(throwing: error ?? PlatformKeyError.Other(reason: "authentication failed without an error"))
                }
            }
        }
    }

    /// LocalAuthentication raises an exception on an empty reason: never pass one.
    static func reason(_ prompt: PromptText) -> String {
        let title = prompt.title.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = title.isEmpty ? "Sign in" : title
        guard let subtitle = prompt.subtitle?.trimmingCharacters(in: .whitespacesAndNewlines), !subtitle.isEmpty else { return base }
        return base + "\n" + subtitle
    }

    /// Refuses, before any key is made, a policy this phone cannot honour now.
    private static func preflight(_ userVerification: UserVerification) throws {
        let policy: LAPolicy
        switch userVerification {
        case .biometric: policy = .deviceOwnerAuthenticationWithBiometrics
        case .biometricOrDeviceCredential, .deviceCredential: policy = .deviceOwnerAuthentication
        case .none: return
        }
        var error: NSError?
        guard LAContext().canEvaluatePolicy(policy, error: &error) else {
            let failure = error.map { KeyFailure($0) } ?? .unavailable("cannot evaluate \(policy)")
            throw failure.platformKeyError(keyInvalidated: false)
        }
    }

    // MARK: Biometric changes

    private func readRecord(_ alias: String) throws -> KeyRecord? {
        try Keychain.read(service: Self.recordService, account: tagString(alias)).flatMap { try? KeyRecord.decode($0) }
    }

    /// Whether there is evidence that the enrolled biometrics changed since
    /// this key was made, which kills a `.biometryCurrentSet` key. Only for
    /// such keys, and only from two comparable non-nil snapshots: same API,
    /// same OS version (Apple warns the hash may change across OS versions
    /// with nothing re-enrolled). Anything else is no evidence: the caller
    /// then reports KeyNotFound or the failure itself, not KeyInvalidated.
    private func biometricsChanged(_ record: KeyRecord?) -> Bool {
        Self.biometricsChanged(record, now: BiometrySnapshot.current())
    }

    static func biometricsChanged(_ record: KeyRecord?, now: BiometrySnapshot?) -> Bool {
        guard let record, record.policy == .biometric, let then = record.biometry,
              let now, now.isComparable(with: then) else { return false }
        return now.hash != then.hash
    }

    /// After a successful signature the key's biometric set is, by
    /// definition, the enrolled one: re-take the snapshot when it moved
    /// (an OS update), so a later change is judged against today's value.
    private func refreshBiometry(_ alias: String, _ record: KeyRecord?) {
        guard var record, record.policy == .biometric, let now = BiometrySnapshot.current(), now != record.biometry else { return }
        record.biometry = now
        try? Keychain.write(service: Self.recordService, account: tagString(alias), data: record.encoded(), accessible: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly)
    }

    private static func cfError(_ error: Unmanaged<CFError>?, _ what: String) -> Error {
        guard let error else { return PlatformKeyError.Other(reason: "\(what) failed") }
        let underlying = error.takeRetainedValue() as Error
        let failure = KeyFailure(underlying)
        if case .other(let reason) = failure { return PlatformKeyError.Other(reason: "\(what): \(reason)") }
        return failure.platformKeyError(keyInvalidated: false)
    }
}

/// A keychain status sorted into a `KeyFailure`, thrown inside the key store
/// and turned into a `PlatformKeyError` at its edge.
struct KeyFailureError: Error {
    let failure: KeyFailure

    init(failure: KeyFailure) { self.failure = failure }

    init(status: OSStatus) {
        failure = KeyFailure(NSError(domain: NSOSStatusErrorDomain, code: Int(status)))
    }
}

/// The policy a key was made with, as kept in its record.
enum KeyPolicy: String, Codable {
    case biometric, biometricOrDeviceCredential, deviceCredential, noVerification

    init(_ userVerification: UserVerification) {
        switch userVerification {
        case .biometric: self = .biometric
        case .biometricOrDeviceCredential: self = .biometricOrDeviceCredential
        case .deviceCredential: self = .deviceCredential
        case .none: self = .noVerification
        }
    }

    var userVerification: UserVerification {
        switch self {
        case .biometric: return .biometric
        case .biometricOrDeviceCredential: return .biometricOrDeviceCredential
        case .deviceCredential: return .deviceCredential
        case .noVerification: return .none
        }
    }
}

/// What the key store keeps beside each key: its policy and, for a
/// biometric key, the biometric enrolment it was made under.
struct KeyRecord: Codable {
    var policy: KeyPolicy
    var biometry: BiometrySnapshot?

    /// The access control the key was created with, rebuilt (used when the
    /// keychain does not report the key's own).
    func accessControl() -> SecAccessControl? {
        let accessible = policy == .noVerification ? kSecAttrAccessibleWhenUnlockedThisDeviceOnly : kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly
        return SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, accessible, SecureEnclaveKeyStore.accessControlFlags(for: policy.userVerification), nil
        )
    }

    func encoded() throws -> Data { try JSONEncoder().encode(self) }
    static func decode(_ data: Data) throws -> KeyRecord { try JSONDecoder().decode(KeyRecord.self, from: data) }
}

/// The enrolled biometrics' opaque state hash at one moment, with what is
/// needed to know whether two of them may be compared.
struct BiometrySnapshot: Codable, Equatable {
    /// "domainState" (iOS 18+: `LAContext.domainState.biometry.stateHash`)
    /// or "evaluatedPolicyDomainState" (earlier; deprecated in iOS 18).
    var source: String
    /// The OS version the hash was read under.
    var os: String
    var hash: Data

    /// Now, or nil when no biometric is enrolled and usable (nil is never
    /// taken as "changed").
    static func current() -> BiometrySnapshot? {
        let context = LAContext()
        // Both properties are filled in by a successful canEvaluatePolicy.
        guard context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: nil) else { return nil }
        let os = ProcessInfo.processInfo.operatingSystemVersionString
        if #available(iOS 18.0, macOS 15.0, *) {
            guard let hash = context.domainState.biometry.stateHash else { return nil }
            return BiometrySnapshot(source: "domainState", os: os, hash: hash)
        } else {
            guard let hash = context.evaluatedPolicyDomainState else { return nil }
            return BiometrySnapshot(source: "evaluatedPolicyDomainState", os: os, hash: hash)
        }
    }

    func isComparable(with other: BiometrySnapshot) -> Bool {
        source == other.source && os == other.os
    }
}

/// What the phone can do for user verification now: call it before
/// offering biometric (or passcode) sign-in.
public struct UserVerificationAvailability: Equatable, Sendable {
    /// The biometric hardware (`.faceID`, `.touchID`, `.opticID`, `.none`).
    public let biometryType: LABiometryType
    /// At least one face / finger enrolled (locked out counts as enrolled).
    public let biometricsEnrolled: Bool
    /// Too many failed attempts: the passcode unlocks biometrics again.
    public let biometricsLockedOut: Bool
    /// A device passcode is set: needed for every hardware-gated key.
    public let passcodeSet: Bool

    /// The policy to offer: `.biometric` with biometrics enrolled,
    /// `.deviceCredential` (the passcode) without, nil when the phone has no
    /// passcode (no hardware-gated key is possible: offer nothing).
    public var recommended: UserVerification? {
        if biometricsEnrolled && passcodeSet { return .biometric }
        if passcodeSet { return .deviceCredential }
        return nil
    }

    public init(biometryType: LABiometryType, biometricsEnrolled: Bool, biometricsLockedOut: Bool, passcodeSet: Bool) {
        self.biometryType = biometryType
        self.biometricsEnrolled = biometricsEnrolled
        self.biometricsLockedOut = biometricsLockedOut
        self.passcodeSet = passcodeSet
    }

    public static func current() -> UserVerificationAvailability {
        let context = LAContext()
        var error: NSError?
        let biometricsUsable = context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &error)
        let lockedOut = error?.domain == LAError.errorDomain && error?.code == LAError.Code.biometryLockout.rawValue
        // biometryType is set by the canEvaluatePolicy call above.
        let type = context.biometryType
        let passcode = LAContext().canEvaluatePolicy(.deviceOwnerAuthentication, error: nil)
        return UserVerificationAvailability(
            biometryType: type, biometricsEnrolled: biometricsUsable || lockedOut,
            biometricsLockedOut: lockedOut, passcodeSet: passcode
        )
    }
}
