import DeviceTrust
import XCTest

/// Mirrors the Kotlin ApiTest's checks that need no server: Config and
/// PromptText defaults, errors with a message (`localizedDescription`, from
/// Rust's Display through the generated `CustomStringConvertible`
/// conformance) and their fields. Not run here (no Swift toolchain).
final class ApiTests: XCTestCase {
    func testConfigAndPromptDefaults() {
        let c = Config(serverUrl: "https://a.example", rpId: "https://a.example", stateDir: "/tmp/x")
        XCTAssertNil(c.platform)
        XCTAssertEqual(c.tlsPins, [])
        XCTAssertFalse(c.allowInsecureHttp)
        XCTAssertEqual(c.requestTimeoutMs, 15_000)
        XCTAssertEqual(c.keyStorePromptTimeoutMs, 300_000)
        XCTAssertEqual(c.keyStoreTimeoutMs, 30_000)
        XCTAssertEqual(PromptText(), PromptText(title: "Sign in", subtitle: nil, cancelLabel: "Cancel"))
    }

    func testErrorsSayTheirMessageAndKeepTheirFields() {
        let otp = DeviceTrustError.OtpInvalid(attemptsLeft: 3)
        XCTAssertEqual(otp.localizedDescription, "the code is incorrect (3 tries left)")
        if case .OtpInvalid(let left) = otp { XCTAssertEqual(left, 3) } else { XCTFail("\(otp)") }
        XCTAssertEqual(DeviceTrustError.OtpExpired.localizedDescription, "the code has expired: ask for a new one")
        XCTAssertEqual(DeviceTrustError.NotSignedIn.localizedDescription, "you are signed out: sign in again")
        XCTAssertEqual(PlatformKeyError.Cancelled.localizedDescription, "cancelled by the user")
    }
}
