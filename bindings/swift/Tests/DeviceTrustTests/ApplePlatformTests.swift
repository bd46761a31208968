import CryptoTokenKit
@testable import DeviceTrust
import LocalAuthentication
import XCTest

/// The hand-written Apple code of the package (Sources/DeviceTrust/Apple)
/// that runs without a Secure Enclave, a prompt or a server: the error
/// mapping, the policy table, the prompt text, the Keychain session sealer
/// and the state folder. Runs on macOS with `swift test`; the Keychain
/// tests skip when the test runner is not signed with a keychain
/// entitlement (errSecMissingEntitlement), as `swift test` binaries are not.
final class ApplePlatformTests: XCTestCase {
    // MARK: Error mapping, one code at a time

    private func mapped(_ domain: String, _ code: Int, invalidated: Bool = false) -> PlatformKeyError {
        KeyFailure(NSError(domain: domain, code: code)).platformKeyError(keyInvalidated: invalidated)
    }

    func testOSStatusCodesMapOneByOne() {
        XCTAssertEqual(mapped(NSOSStatusErrorDomain, Int(errSecUserCanceled)), .Cancelled)
        XCTAssertEqual(mapped(NSOSStatusErrorDomain, Int(errSecItemNotFound)), .KeyNotFound)
        XCTAssertEqual(mapped(NSOSStatusErrorDomain, Int(errSecItemNotFound), invalidated: true), .KeyInvalidated)
        guard case .Other = mapped(NSOSStatusErrorDomain, Int(errSecAuthFailed)) else { return XCTFail("errSecAuthFailed without evidence is not an invalidation") }
        XCTAssertEqual(mapped(NSOSStatusErrorDomain, Int(errSecAuthFailed), invalidated: true), .KeyInvalidated)
        guard case .BiometricUnavailable = mapped(NSOSStatusErrorDomain, Int(errSecInteractionNotAllowed)) else { return XCTFail("locked phone") }
        // Never "invalidated", whatever the evidence: a locked phone is temporary.
        guard case .BiometricUnavailable = mapped(NSOSStatusErrorDomain, Int(errSecInteractionNotAllowed), invalidated: true) else { return XCTFail("locked phone") }
        guard case .Other(let reason) = mapped(NSOSStatusErrorDomain, -50) else { return XCTFail("errSecParam") }
        XCTAssertTrue(reason.contains("-50"), reason)
    }

    func testLocalAuthenticationCodesMapOneByOne() {
        let la = LAError.errorDomain
        for code: LAError.Code in [.userCancel, .appCancel, .systemCancel, .userFallback, .invalidContext] {
            XCTAssertEqual(mapped(la, code.rawValue), .Cancelled, "\(code)")
        }
        XCTAssertEqual(mapped(la, LAError.Code.biometryLockout.rawValue), .BiometricLockedOut)
        for code: LAError.Code in [.biometryNotAvailable, .biometryNotEnrolled, .passcodeNotSet, .notInteractive] {
            guard case .BiometricUnavailable = mapped(la, code.rawValue, invalidated: true) else { return XCTFail("\(code)") }
        }
        guard case .Other = mapped(la, LAError.Code.authenticationFailed.rawValue) else { return XCTFail("authenticationFailed") }
        XCTAssertEqual(mapped(la, LAError.Code.authenticationFailed.rawValue, invalidated: true), .KeyInvalidated)
    }

    func testSecureEnclaveTokenCodesMapOneByOne() {
        let tk = TKError.errorDomain
        XCTAssertEqual(mapped(tk, TKError.Code.canceledByUser.rawValue), .Cancelled)
        XCTAssertEqual(mapped(tk, TKError.Code.objectNotFound.rawValue), .KeyNotFound)
        guard case .Other = mapped(tk, TKError.Code.authenticationFailed.rawValue) else { return XCTFail("authenticationFailed") }
        guard case .BiometricUnavailable = mapped(tk, TKError.Code.authenticationNeeded.rawValue) else { return XCTFail("authenticationNeeded") }
    }

    func testAnErrorAlreadySortedKeepsItsSort() {
        XCTAssertEqual(KeyFailureError(status: errSecItemNotFound).failure.platformKeyError(keyInvalidated: false), .KeyNotFound)
        XCTAssertEqual(KeyFailure(KeyFailureError(status: errSecUserCanceled)).platformKeyError(keyInvalidated: false), .Cancelled)
    }

    // MARK: Policies

    func testEachPolicyGetsItsAccessControl() {
        XCTAssertEqual(SecureEnclaveKeyStore.accessControlFlags(for: .biometric), [.privateKeyUsage, .biometryCurrentSet])
        XCTAssertEqual(SecureEnclaveKeyStore.accessControlFlags(for: .biometricOrDeviceCredential), [.privateKeyUsage, .userPresence])
        XCTAssertEqual(SecureEnclaveKeyStore.accessControlFlags(for: .deviceCredential), [.privateKeyUsage, .devicePasscode])
        XCTAssertEqual(SecureEnclaveKeyStore.accessControlFlags(for: .none), [.privateKeyUsage])
    }

    func testTheRecommendedPolicyFollowsWhatThePhoneHas() {
        func offer(_ enrolled: Bool, _ passcode: Bool) -> UserVerification? {
            UserVerificationAvailability(biometryType: .faceID, biometricsEnrolled: enrolled, biometricsLockedOut: false, passcodeSet: passcode).recommended
        }
        XCTAssertEqual(offer(true, true), .biometric)
        XCTAssertEqual(offer(false, true), .deviceCredential)
        XCTAssertNil(offer(false, false))
        XCTAssertNil(offer(true, false)) // cannot happen on iOS; no key without a passcode anyway
    }

    func testBiometrySnapshotsFromAnotherOSOrAPIAreNotCompared() {
        let then = BiometrySnapshot(source: "evaluatedPolicyDomainState", os: "17.5", hash: Data([1]))
        XCTAssertTrue(then.isComparable(with: BiometrySnapshot(source: "evaluatedPolicyDomainState", os: "17.5", hash: Data([2]))))
        XCTAssertFalse(then.isComparable(with: BiometrySnapshot(source: "evaluatedPolicyDomainState", os: "17.6", hash: Data([2]))))
        XCTAssertFalse(then.isComparable(with: BiometrySnapshot(source: "domainState", os: "17.5", hash: Data([2]))))
    }

    func testKeyRecordsRoundTrip() throws {
        let record = KeyRecord(policy: .biometric, biometry: BiometrySnapshot(source: "domainState", os: "18.1", hash: Data([9, 9])))
        let back = try KeyRecord.decode(record.encoded())
        XCTAssertEqual(back.policy, .biometric)
        XCTAssertEqual(back.biometry, record.biometry)
        XCTAssertEqual(KeyPolicy(.deviceCredential).userVerification, .deviceCredential)
        XCTAssertEqual(KeyPolicy(.none), .noVerification)
    }

    func testThePromptReasonIsNeverEmpty() {
        XCTAssertEqual(SecureEnclaveKeyStore.reason(PromptText(title: "  ", subtitle: nil, cancelLabel: "Cancel")), "Sign in")
        XCTAssertEqual(SecureEnclaveKeyStore.reason(PromptText(title: "Approve", subtitle: "Card ending 4242", cancelLabel: "Cancel")), "Approve\nCard ending 4242")
        XCTAssertEqual(SecureEnclaveKeyStore.reason(PromptText(title: "Approve", subtitle: " ", cancelLabel: "Cancel")), "Approve")
    }

    // MARK: Off Swift's pool

    func testWorkOffThePoolReturnsAndThrows() async throws {
        let value = try await offCooperativePool { 41 + 1 }
        XCTAssertEqual(value, 42)
        do {
            _ = try await offCooperativePool { () throws -> Int in throw PlatformKeyError.KeyNotFound }
            XCTFail("expected a throw")
        } catch let error as PlatformKeyError {
            XCTAssertEqual(error, .KeyNotFound)
        }
    }

    // MARK: Keychain session sealer

    private func sealer(account: String = UUID().uuidString) throws -> KeychainSessionSealer {
        let sealer = KeychainSessionSealer(service: "com.devicetrust.tests.sealer", account: account)
        do {
            _ = try sealer.seal(plaintext: Data())
        } catch PlatformKeyError.Other(let reason) where reason.contains("\(errSecMissingEntitlement)") {
            throw XCTSkip("no keychain entitlement for this test runner: \(reason)")
        }
        addTeardownBlock { try? sealer.destroyKey() }
        return sealer
    }

    func testTheSealerRoundTripsAndEachSealDiffers() throws {
        let sealer = try sealer()
        let token = Data("refresh-token-\(UUID())".utf8)
        let a = try sealer.seal(plaintext: token)
        let b = try sealer.seal(plaintext: token)
        XCTAssertNotEqual(a, b, "a fresh nonce per seal")
        XCTAssertEqual(a.count, 12 + token.count + 16, "nonce ‖ ciphertext ‖ tag")
        XCTAssertEqual(try sealer.open(sealed: a), token)
        XCTAssertEqual(try sealer.open(sealed: b), token)
    }

    func testTheSealerRefusesAlteredBytes() throws {
        let sealer = try sealer()
        var sealed = try sealer.seal(plaintext: Data("secret".utf8))
        sealed[sealed.count - 1] ^= 0x01
        XCTAssertThrowsError(try sealer.open(sealed: sealed)) { error in
            guard case PlatformKeyError.Other = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sealer.open(sealed: Data([1, 2, 3]))) { error in
            guard case PlatformKeyError.Other = error else { return XCTFail("\(error)") }
        }
    }

    func testWithoutItsKeyNothingOpens() throws {
        let sealer = try sealer()
        let sealed = try sealer.seal(plaintext: Data("secret".utf8))
        try sealer.destroyKey()
        XCTAssertThrowsError(try sealer.open(sealed: sealed)) { error in
            XCTAssertEqual(error as? PlatformKeyError, .KeyNotFound)
        }
        // A new key seals again, and the old bytes still do not open.
        let again = try sealer.seal(plaintext: Data("new".utf8))
        XCTAssertEqual(try sealer.open(sealed: again), Data("new".utf8))
        XCTAssertThrowsError(try sealer.open(sealed: sealed))
    }

    func testTwoSealersOnOneItemShareTheKey() throws {
        let account = UUID().uuidString
        let sealed = try sealer(account: account).seal(plaintext: Data("shared".utf8))
        let second = KeychainSessionSealer(service: "com.devicetrust.tests.sealer", account: account)
        XCTAssertEqual(try second.open(sealed: sealed), Data("shared".utf8))
    }

    // MARK: State folder

    func testTheStateFolderIsMadeAndKeptOutOfBackups() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString, isDirectory: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try StateDirectory.excludeFromBackup(folder)
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) && isDirectory.boolValue)
        XCTAssertEqual(try folder.resourceValues(forKeys: [.isExcludedFromBackupKey]).isExcludedFromBackup, true)
        // Idempotent: every launch calls it.
        try StateDirectory.excludeFromBackup(folder)
    }
}
