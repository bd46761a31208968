import CryptoKit
import CryptoTokenKit
import DeviceCheck
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

    /// The Keychain before the first unlock is "not now": the SDK keeps a
    /// sealed session on `BiometricUnavailable` and deletes it on `Other`.
    func testALockedKeychainIsNotNowNotBroken() {
        guard case .BiometricUnavailable(let reason) = keychainError(errSecInteractionNotAllowed, "reading the session key") else {
            return XCTFail("a locked keychain must not delete the sealed session")
        }
        XCTAssertTrue(reason.contains("locked"), reason)
        guard case .Other = keychainError(errSecMissingEntitlement, "reading the session key") else { return XCTFail("entitlement") }
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

    func testBiometricsChangedOnlyWithEvidence() {
        let then = BiometrySnapshot(source: "domainState", os: "18.1", hash: Data([1]))
        let same = BiometrySnapshot(source: "domainState", os: "18.1", hash: Data([1]))
        let other = BiometrySnapshot(source: "domainState", os: "18.1", hash: Data([2]))
        let afterUpdate = BiometrySnapshot(source: "domainState", os: "18.2", hash: Data([2]))
        let biometric = KeyRecord(policy: .biometric, biometry: then)
        XCTAssertTrue(SecureEnclaveKeyStore.biometricsChanged(biometric, now: other))
        XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(biometric, now: same))
        XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(biometric, now: afterUpdate), "an OS update is no evidence")
        XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(biometric, now: nil), "biometrics off / locked out is no evidence")
        XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(KeyRecord(policy: .biometric, biometry: nil), now: other), "no snapshot at creation")
        XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(nil, now: other), "no record")
        for policy: KeyPolicy in [.biometricOrDeviceCredential, .deviceCredential, .noVerification] {
            XCTAssertFalse(SecureEnclaveKeyStore.biometricsChanged(KeyRecord(policy: policy, biometry: then), now: other), "\(policy) keys survive re-enrolment")
        }
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

    // MARK: App Attest

    /// A stand-in for DCAppAttestService: answers from a script.
    final class FakeAppAttest: AppAttestService {
        var isSupported = true
        var keyId = Data(repeating: 7, count: 32).base64EncodedString()
        var generateError: Error?
        /// One entry per attestKey call: an error to throw, or nil to succeed.
        var attestScript: [Error?] = [nil]
        private(set) var attestCalls: [(keyId: String, clientDataHash: Data)] = []
        private(set) var generateCalls = 0

        func generateKey() async throws -> String {
            generateCalls += 1
            if let generateError { throw generateError }
            return keyId
        }

        func attestKey(_ keyId: String, clientDataHash: Data) async throws -> Data {
            attestCalls.append((keyId, clientDataHash))
            let next = attestScript.isEmpty ? nil : attestScript.removeFirst()
            if let next { throw next }
            return Data("attestation-object".utf8)
        }
    }

    private let signingKey = P256.Signing.PrivateKey().publicKey.x963Representation
    private let challenge = Data((0..<32).map { UInt8($0) })

    private func attest(_ fake: FakeAppAttest) async throws -> KeyAttestation? {
        try await AppAttestor(service: fake, retryDelays: [1_000_000, 1_000_000]).attest(publicKey: signingKey, challenge: challenge)
    }

    func testAppAttestBindsTheSigningKey() async throws {
        let fake = FakeAppAttest()
        let attestation = try await attest(fake)
        XCTAssertEqual(attestation, .appleAppAttest(keyId: Data(repeating: 7, count: 32), attestationObject: Data("attestation-object".utf8)))
        XCTAssertEqual(fake.attestCalls.count, 1)
        XCTAssertEqual(fake.attestCalls.first?.clientDataHash, try appAttestClientDataHash(challenge: challenge, publicKey: signingKey))
    }

    func testAppAttestRetriesServerUnavailableWithTheSameInputs() async throws {
        let fake = FakeAppAttest()
        fake.attestScript = [DCError(.serverUnavailable), DCError(.serverUnavailable), nil]
        XCTAssertNotNil(try await attest(fake))
        XCTAssertEqual(fake.generateCalls, 1, "one App Attest key")
        XCTAssertEqual(fake.attestCalls.count, 3)
        XCTAssertEqual(Set(fake.attestCalls.map { $0.keyId }).count, 1, "same key each time")
        XCTAssertEqual(Set(fake.attestCalls.map { $0.clientDataHash }).count, 1, "same clientDataHash each time")
    }

    func testAppAttestGivesUpWithoutFailingTheKey() async throws {
        let unavailable = FakeAppAttest()
        unavailable.attestScript = [DCError(.serverUnavailable), DCError(.serverUnavailable), DCError(.serverUnavailable)]
        let none = try await attest(unavailable)
        XCTAssertNil(none)
        XCTAssertEqual(unavailable.attestCalls.count, 3, "two retries, then no attestation")

        for code: DCError.Code in [.invalidKey, .invalidInput, .featureUnsupported, .unknownSystemFailure] {
            let fake = FakeAppAttest()
            fake.attestScript = [DCError(code)]
            let result = try await attest(fake)
            XCTAssertNil(result, "\(code)")
            XCTAssertEqual(fake.attestCalls.count, 1, "\(code) is not retried")
        }

        let unsupported = FakeAppAttest()
        unsupported.isSupported = false
        let skipped = try await attest(unsupported)
        XCTAssertNil(skipped)
        XCTAssertEqual(unsupported.generateCalls, 0)

        let noKey = FakeAppAttest()
        noKey.generateError = DCError(.featureUnsupported)
        let noAttestation = try await attest(noKey)
        XCTAssertNil(noAttestation)

        let badId = FakeAppAttest()
        badId.keyId = "not base64!"
        let refused = try await attest(badId)
        XCTAssertNil(refused)
        XCTAssertEqual(badId.attestCalls.count, 0)
    }

    func testAppAttestRefusesAMalformedSigningKey() async {
        do {
            _ = try await AppAttestor(service: FakeAppAttest()).attest(publicKey: Data([4, 1, 2]), challenge: challenge)
            XCTFail("a malformed key is a bug, not 'App Attest cannot'")
        } catch {
            guard case PlatformKeyError.Other = error else { return XCTFail("\(error)") }
        }
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
