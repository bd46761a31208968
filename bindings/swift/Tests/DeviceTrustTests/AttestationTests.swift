import DeviceTrust
import XCTest

/// Key attestation through the generated Swift, mirroring
/// bindings/python/tests/test_attestation.py: a server that requires an
/// attestation refuses the CryptoKit (software) key store's key with
/// `DeviceTrustError.AttestationInvalid` and the key is deleted; the SDK's
/// `appAttestClientDataHash` is SHA-256(challenge ‖ JWK thumbprint).
final class AttestationTests: XCTestCase {
    static var server: TestServer!

    override class func setUp() { server = try! TestServer(extraArguments: ["--attestation", "require"]) }
    override class func tearDown() { server.stop() }

    func testRequireRefusesAKeyWithoutAttestation() async throws {
        try await Self.server.addUser("sw.unattested")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        let keys = CryptoKitKeyStore()
        let config = Config(serverUrl: Self.server.base, rpId: rpId, stateDir: dir.path, platform: .ios, allowInsecureHttp: true)
        let sdk = try DeviceTrust(config: config, keyStore: keys)
        _ = try await sdk.signInWithPassword(userId: "sw.unattested", password: password)
        guard case .secondFactorRequired(let options, _, _, _) = try await sdk.completeEnrolment(securityCode: "135790", mobile: nil) else {
            return XCTFail("expected a second factor")
        }
        _ = try await sdk.sendOtp(channel: options[0].channel)
        _ = try await sdk.verifyOtp(code: try Self.server.lastOtp("sw.unattested"))
        let prompt = PromptText(title: "Turn on", subtitle: nil, cancelLabel: "Cancel")
        do {
            _ = try await sdk.enableBiometricSignIn(deviceName: "Jane's iPhone", userVerification: .biometric, prompt: prompt)
            XCTFail("expected AttestationInvalid")
        } catch DeviceTrustError.AttestationInvalid {}
        XCTAssertEqual(keys.keyCount, 0)
    }

    func testClientDataHashIsAThirtyTwoByteDigest() throws {
        var point = Data([4])
        point.append(Data(repeating: 1, count: 32))
        point.append(Data(repeating: 2, count: 32))
        let hash = try appAttestClientDataHash(challenge: Data("challenge".utf8), publicKey: point)
        // Known answer, as core/src/signature.rs tests it.
        XCTAssertEqual(hash.map { String(format: "%02x", $0) }.joined(),
                       "9b6cde04e1b9f6f24b7ea937c13d5d4d845feff7813b47721cd8bb68d27dc6d6")
    }
}
