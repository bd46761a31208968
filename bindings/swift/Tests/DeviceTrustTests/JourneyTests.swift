import DeviceTrust
import XCTest

struct Unexpected: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The card holder's journey through the generated Swift. Each test mirrors
/// one of bindings/kotlin/src/test/kotlin/com/devicetrust/test/JourneyTest.kt.
/// Run on macOS: bindings/scripts/build-xcframework.sh, then
/// DEVICETRUST_SERVER=$PWD/target/debug/devicetrust-server swift test --package-path bindings/swift
final class JourneyTests: XCTestCase {
    static var server: TestServer!

    override class func setUp() { server = try! TestServer() }
    override class func tearDown() { server.stop() }

    struct Phone { let sdk: DeviceTrust; let keys: CryptoKitKeyStore }

    func phone() throws -> Phone {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        let keys = CryptoKitKeyStore()
        let config = Config(serverUrl: Self.server.base, rpId: rpId, stateDir: dir.path, platform: .ios, allowInsecureHttp: true)
        return Phone(sdk: try DeviceTrust(config: config, keyStore: keys), keys: keys)
    }

    func prompt(_ title: String) -> PromptText { PromptText(title: title, subtitle: nil, cancelLabel: "Cancel") }

    func firstSignIn(_ phone: Phone, _ user: String) async throws -> SessionInfo {
        guard case .enrolmentRequired(let name, _, _) = try await phone.sdk.signInWithPassword(userId: user, password: password) else {
            throw Unexpected("expected enrolment")
        }
        XCTAssertEqual(name, "Jane Doe")
        guard case .secondFactorRequired(let options, let canApprove, _, _) = try await phone.sdk.completeEnrolment(securityCode: "135790", mobile: nil) else {
            throw Unexpected("expected a second factor")
        }
        XCTAssertFalse(canApprove)
        _ = try await phone.sdk.sendOtp(channel: options[0].channel)
        guard case .signedIn(let session) = try await phone.sdk.verifyOtp(code: try Self.server.lastOtp(user)) else {
            throw Unexpected("expected signed in")
        }
        return session
    }

    func testTheWholeJourney() async throws {
        try await Self.server.addUser("sw.jane")
        let phone = try phone()
        // (XCTAssert's autoclosures cannot `await`: results first.)
        let first = try await firstSignIn(phone, "sw.jane")
        XCTAssertEqual(amr(first), ["pwd", "otp"])

        let device = try await phone.sdk.enableBiometricSignIn(deviceName: "Jane's iPhone", userVerification: .biometric, prompt: prompt("Turn on Face ID sign-in"))
        XCTAssertTrue(device.isThisDevice)
        XCTAssertEqual(device.platform, .ios)
        XCTAssertEqual(phone.keys.keyCount, 1)
        XCTAssertTrue(try await phone.sdk.isBiometricSignInAvailable(userId: "sw.jane"))

        try await phone.sdk.signOut()
        let session = await phone.sdk.session()
        XCTAssertNil(session)
        guard case .signedIn(let bio) = try await phone.sdk.signInWithBiometric(userId: "sw.jane", prompt: prompt("Sign in")) else {
            return XCTFail("expected signed in")
        }
        XCTAssertEqual(amr(bio), ["swk", "bio"])  // a software test key signs in with `swk`
        XCTAssertEqual(phone.keys.prompts, ["Turn on Face ID sign-in", "Sign in"])
        let devices = try await phone.sdk.trustedDevices()
        XCTAssertEqual(devices.map(\.isThisDevice), [true])

        guard case .secondFactorRequired(_, let canApprove, _, _) = try await phone.sdk.signInWithPassword(userId: "sw.jane", password: password) else {
            return XCTFail("expected a second factor")
        }
        XCTAssertTrue(canApprove)
        guard case .signedIn(let approved) = try await phone.sdk.approveWithThisDevice(prompt: prompt("Approve")) else {
            return XCTFail("expected signed in")
        }
        XCTAssertEqual(amr(approved), ["pwd", "swk"])

        try await phone.sdk.removeDevice(deviceId: device.deviceId)
        XCTAssertEqual(phone.keys.keyCount, 0)
        XCTAssertNil(try await phone.sdk.localEnrolment(userId: "sw.jane"))
    }

    func testErrorsArriveAsSwiftErrorsWithTheirFields() async throws {
        try await Self.server.addUser("sw.err")
        let phone = try phone()
        do { _ = try await phone.sdk.signInWithPassword(userId: "sw.err", password: "wrong"); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}
        do { _ = try await phone.sdk.verifyOtp(code: "123456"); XCTFail() }
        catch DeviceTrustError.NoSignInInProgress {}
        _ = try await firstSignIn(phone, "sw.err")
        _ = try await phone.sdk.signInWithPassword(userId: "sw.err", password: password)
        _ = try await phone.sdk.sendOtp(channel: .email)
        let code = try Self.server.lastOtp("sw.err")
        do { _ = try await phone.sdk.verifyOtp(code: code == "000000" ? "111111" : "000000"); XCTFail() }
        catch DeviceTrustError.OtpInvalid(let left) { XCTAssertEqual(left, 4) }
        for _ in 0..<4 { _ = try? await phone.sdk.signInWithPassword(userId: "sw.err", password: "wrong") }
        do { _ = try await phone.sdk.signInWithPassword(userId: "sw.err", password: password); XCTFail() }
        catch DeviceTrustError.AccountLocked(let retry) { XCTAssertGreaterThan(retry, 1700) }
    }

    func testACancelledPromptChangesNothingAndChangedBiometricsForgetTheKey() async throws {
        try await Self.server.addUser("sw.bio")
        let phone = try phone()
        _ = try await firstSignIn(phone, "sw.bio")
        _ = try await phone.sdk.enableBiometricSignIn(deviceName: "iPhone", userVerification: .biometric, prompt: prompt("Turn on"))
        try await phone.sdk.signOut()

        phone.keys.mode = .cancel
        do { _ = try await phone.sdk.signInWithBiometric(userId: "sw.bio", prompt: prompt("Sign in")); XCTFail() }
        catch DeviceTrustError.BiometricCancelled {}
        XCTAssertEqual(phone.keys.keyCount, 1)

        phone.keys.mode = .biometricsChanged
        do { _ = try await phone.sdk.signInWithBiometric(userId: "sw.bio", prompt: prompt("Sign in")); XCTFail() }
        catch DeviceTrustError.BiometricsChanged {}
        XCTAssertEqual(phone.keys.keyCount, 0)
        XCTAssertNil(try await phone.sdk.localEnrolment(userId: "sw.bio"))
    }

    func testCallsFromManyTasksAtOnce() async throws {
        try await Self.server.addUser("sw.many")
        let phone = try phone()
        _ = try await firstSignIn(phone, "sw.many")
        _ = try await phone.sdk.enableBiometricSignIn(deviceName: "iPhone", userVerification: .biometricOrDeviceCredential, prompt: prompt("Turn on"))
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<16 {
                group.addTask {
                    i % 2 == 0 ? try await phone.sdk.profile().userId : try await phone.sdk.trustedDevices()[0].name
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        XCTAssertEqual(results, ["sw.many", "iPhone"])
    }
}
