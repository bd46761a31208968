import DeviceTrust
import XCTest

let newPassword = "Another strong Passw0rd"
let securityCode = "135790"

/// The v1.1 calls through the generated Swift: the `account()` and
/// `recovery()` handles, the password policy, an account from a card. Each
/// test mirrors one of bindings/kotlin/src/test/kotlin/com/devicetrust/test/AccountTest.kt,
/// except the Kotlin cancellation test: uniffi 0.32's Swift does not forward
/// `Task.cancel()` to the Rust future (mozilla/uniffi-rs#2771), so a
/// cancelled Swift task's call runs to completion.
final class AccountTests: XCTestCase {
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

    /// A new user's first sign-in: enrolment (security code 135790) and an e-mail code.
    @discardableResult
    func firstSignIn(_ phone: Phone, _ user: String, _ pass: String = password) async throws -> SessionInfo {
        guard case .enrolmentRequired = try await phone.sdk.signInWithPassword(userId: user, password: pass) else {
            throw Unexpected("expected enrolment")
        }
        guard case .secondFactorRequired(let options, _, _, _) = try await phone.sdk.completeEnrolment(securityCode: securityCode, mobile: nil) else {
            throw Unexpected("expected a second factor")
        }
        _ = try await phone.sdk.sendOtp(channel: options[0].channel)
        guard case .signedIn(let session) = try await phone.sdk.verifyOtp(code: try Self.server.lastOtp(user)) else {
            throw Unexpected("expected signed in")
        }
        return session
    }

    /// Password + e-mail code for an enrolled user.
    @discardableResult
    func signInWithCode(_ phone: Phone, _ user: String, _ pass: String) async throws -> SessionInfo {
        guard case .secondFactorRequired = try await phone.sdk.signInWithPassword(userId: user, password: pass) else {
            throw Unexpected("expected a second factor")
        }
        _ = try await phone.sdk.sendOtp(channel: .email)
        guard case .signedIn(let session) = try await phone.sdk.verifyOtp(code: try Self.server.lastOtp(user)) else {
            throw Unexpected("expected signed in")
        }
        return session
    }

    func otherCode(_ code: String) -> String { code == "000000" ? "111111" : "000000" }

    /// A 16-digit card number with a valid Luhn check digit.
    func cardNumber(_ prefix15: String) -> String {
        var sum = 0
        for (i, c) in prefix15.reversed().enumerated() {
            var d = c.wholeNumberValue!
            if i % 2 == 0 { d *= 2; if d > 9 { d -= 9 } }
            sum += d
        }
        return prefix15 + String((10 - sum % 10) % 10)
    }

    func testThePasswordPolicyAndTheRulesCheckedOnThePhone() async throws {
        let policy = try await phone().sdk.passwordPolicy()
        XCTAssertGreaterThanOrEqual(policy.minLength, 8)
        XCTAssertGreaterThanOrEqual(policy.classesRequired, 1)
        XCTAssertFalse(policy.description.isEmpty)
        XCTAssertEqual(checkPassword(policy: policy, password: newPassword, userId: "jane.doe"), [])
        XCTAssertTrue(checkPassword(policy: policy, password: "jane.doe", userId: "Jane.Doe").contains(.containsUserId))
        XCTAssertTrue(checkPassword(policy: policy, password: "Ab1", userId: "").contains(.tooShort))
    }

    func testForgotPasswordEndToEnd() async throws {
        try await Self.server.addUser("sw.reset")
        let phone = try phone()
        try await firstSignIn(phone, "sw.reset")
        try await phone.sdk.signOut()
        let recovery = phone.sdk.recovery()

        do { try await recovery.completePasswordRecovery(code: "123456", newPassword: newPassword); XCTFail() }
        catch DeviceTrustError.NoRecoveryInProgress {}
        do { _ = try await recovery.sendOtp(channel: .email); XCTFail() }
        catch DeviceTrustError.NoRecoveryInProgress {}
        do { _ = try await recovery.startPasswordRecovery(userId: "sw.reset", securityCode: "97531864"); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}

        let started = try await recovery.startPasswordRecovery(userId: "sw.reset", securityCode: securityCode)
        XCTAssertEqual(started.otpOptions.map(\.channel), [.email])
        XCTAssertGreaterThan(started.expiresAt, Date())
        let sent = try await recovery.sendOtp(channel: .email)
        XCTAssertEqual(sent.destination, started.otpOptions[0].destination)
        let code = try Self.server.lastOtp("sw.reset")

        // A refused password and a wrong code keep the recovery open.
        do { try await recovery.completePasswordRecovery(code: code, newPassword: "Password1"); XCTFail() }
        catch DeviceTrustError.PasswordRejected(let reasons) { XCTAssertTrue(reasons.contains(.common), "\(reasons)") }
        do { try await recovery.completePasswordRecovery(code: otherCode(code), newPassword: newPassword); XCTFail() }
        catch DeviceTrustError.OtpInvalid(let left) { XCTAssertEqual(left, 4) }

        try await recovery.completePasswordRecovery(code: code, newPassword: newPassword)
        do { try await recovery.completePasswordRecovery(code: code, newPassword: newPassword); XCTFail() }
        catch DeviceTrustError.NoRecoveryInProgress {}

        do { _ = try await phone.sdk.signInWithPassword(userId: "sw.reset", password: password); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}
        let session = try await signInWithCode(phone, "sw.reset", newPassword)
        XCTAssertEqual(amr(session), ["pwd", "otp"])
        let events = try await phone.sdk.account().securityEvents(limit: 50)
        XCTAssertTrue(events.contains { $0.eventType == .recoveryUsed }, "\(events)")
    }

    func testPasswordChangeEndToEnd() async throws {
        try await Self.server.addUser("sw.change")
        let phone = try phone()
        try await firstSignIn(phone, "sw.change")  // with a code: a strong session
        let account = phone.sdk.account()

        do { try await account.changePassword(currentPassword: password, newPassword: "Password1"); XCTFail() }
        catch DeviceTrustError.PasswordRejected(let reasons) { XCTAssertTrue(reasons.contains(.common), "\(reasons)") }
        do { try await account.changePassword(currentPassword: password, newPassword: password); XCTFail() }
        catch DeviceTrustError.PasswordRejected(let reasons) { XCTAssertEqual(reasons, [.sameAsCurrent]) }
        do { try await account.changePassword(currentPassword: "Wrong horse battery 9", newPassword: newPassword); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}

        try await account.changePassword(currentPassword: password, newPassword: newPassword)
        let profile = try await account.profile()
        XCTAssertEqual(profile.userId, "sw.change")  // this session stays
        let events = try await account.securityEvents(limit: 10)
        XCTAssertTrue(events.contains { $0.eventType == .passwordChanged }, "\(events)")
        XCTAssertEqual(events.map(\.at), events.map(\.at).sorted(by: >))

        try await phone.sdk.signOut()
        do { try await account.changePassword(currentPassword: newPassword, newPassword: "Yet another Passw0rd"); XCTFail() }
        catch DeviceTrustError.NotSignedIn {}
        do { _ = try await phone.sdk.signInWithPassword(userId: "sw.change", password: password); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}
        try await signInWithCode(phone, "sw.change", newPassword)
    }

    func testForgotUserIdEmailsItAndSaysNothingEitherWay() async throws {
        try await Self.server.addUser("sw.forgot")
        let phone = try phone()
        try await firstSignIn(phone, "sw.forgot")
        try await phone.sdk.signOut()
        let recovery = phone.sdk.recovery()
        do { try await recovery.forgotUserId(email: "nobody", securityCode: securityCode); XCTFail() }
        catch DeviceTrustError.InvalidInput(let reason) { XCTAssertFalse(reason.isEmpty) }
        try await recovery.forgotUserId(email: "sw.forgot@example.com", securityCode: "97531864")
        try await recovery.forgotUserId(email: "nobody@example.com", securityCode: securityCode)
        try await recovery.forgotUserId(email: "Sw.Forgot@Example.com", securityCode: securityCode)
        let sent = try await Self.server.messages(purpose: "recovery", to: "sw.forgot@example.com")
        XCTAssertEqual(sent.count, 1, "\(sent)")
        XCTAssertTrue((sent[0]["text"] as? String ?? "").contains("sw.forgot"))
        let none = try await Self.server.messages(purpose: "recovery", to: "nobody@example.com", wait: 0.5)
        XCTAssertTrue(none.isEmpty)
    }

    func testEmailMobileAndSecurityCodeChangedWithTheirCodes() async throws {
        try await Self.server.addUser("sw.contact")
        let phone = try phone()
        try await firstSignIn(phone, "sw.contact")
        let account = phone.sdk.account()

        do { _ = try await account.confirmContactChange(code: "123456"); XCTFail() }
        catch DeviceTrustError.InvalidInput {}
        let pending = try await account.changeEmail(newEmail: "sw.contact@example.org")
        XCTAssertEqual(pending.channel, .email)
        XCTAssertTrue(pending.destination.hasSuffix("@example.org"), pending.destination)
        let code = try Self.server.lastOtp("sw.contact")
        do { _ = try await account.confirmContactChange(code: otherCode(code)); XCTFail() }
        catch DeviceTrustError.OtpInvalid {}
        let withEmail = try await account.confirmContactChange(code: code)
        XCTAssertEqual(withEmail.email, "sw.contact@example.org")

        let mobileChange = try await account.changeMobile(newMobile: "+447700900222")
        XCTAssertEqual(mobileChange.channel, .sms)
        let withMobile = try await account.confirmContactChange(code: try Self.server.lastOtp("sw.contact"))
        XCTAssertEqual(withMobile.mobile, "+447700900222")
        try await account.removeMobile()
        let withoutMobile = try await account.profile()
        XCTAssertNil(withoutMobile.mobile)

        do { try await account.changeSecurityCode(securityCode: "111111"); XCTFail() }
        catch DeviceTrustError.InvalidInput {}
        try await account.changeSecurityCode(securityCode: "24680135")
        try await phone.sdk.signOut()
        do { _ = try await phone.sdk.recovery().startPasswordRecovery(userId: "sw.contact", securityCode: securityCode); XCTFail() }
        catch DeviceTrustError.InvalidCredentials {}
        _ = try await phone.sdk.recovery().startPasswordRecovery(userId: "sw.contact", securityCode: "24680135")
        do { _ = try await account.securityEvents(limit: 0); XCTFail() }
        catch DeviceTrustError.InvalidInput {}
    }

    func testAnAccountFromACardAndASecondCardLinked() async throws {
        let number = cardNumber("400000323456789")
        try await Self.server.addCard(number: number, cardId: "4321", name: "Jane Doe", email: "sw.card@example.com")
        let phone = try phone()
        do { _ = try await phone.sdk.createAccount(cardNumber: String(number.dropLast()) + "x", cardId: "4321", name: "Jane Doe", userId: "sw.card", password: newPassword); XCTFail() }
        catch DeviceTrustError.InvalidInput {}
        do { _ = try await phone.sdk.createAccount(cardNumber: number, cardId: "1234", name: "Jane Doe", userId: "sw.card", password: newPassword); XCTFail() }
        catch DeviceTrustError.CardNotRecognized {}
        do { _ = try await phone.sdk.createAccount(cardNumber: number, cardId: "4321", name: "Jane Doe", userId: "sw.card", password: "password"); XCTFail() }
        catch DeviceTrustError.PasswordRejected(let reasons) { XCTAssertTrue(reasons.contains(.tooFewClasses), "\(reasons)") }
        let user = try await phone.sdk.createAccount(cardNumber: number, cardId: "4321", name: "Jane Doe", userId: "sw.card", password: newPassword)
        XCTAssertEqual(user, "sw.card")
        do { _ = try await phone.sdk.createAccount(cardNumber: number, cardId: "4321", name: "Jane Doe", userId: "sw.card2", password: newPassword); XCTFail() }
        catch DeviceTrustError.CardAlreadyEnrolled {}
        try await firstSignIn(phone, user, newPassword)

        let second = cardNumber("400000787654321")
        try await Self.server.addCard(number: second, cardId: "1234", name: "Jane Doe", email: "sw.card@example.com")
        let account = phone.sdk.account()
        let linked = try await account.linkCard(cardNumber: second, cardId: "1234")
        XCTAssertEqual(linked.last4, String(second.suffix(4)))
        let cards = try await account.linkedCards()
        XCTAssertEqual(Set(cards.map(\.last4)), [String(number.suffix(4)), String(second.suffix(4))])
        XCTAssertTrue(cards.contains { $0.cardRef == linked.cardRef })
    }
}
