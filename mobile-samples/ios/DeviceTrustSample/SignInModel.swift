import DeviceTrust
import Foundation

/// The screen the app shows.
enum Screen: Equatable {
    case signIn(userId: String, biometricAvailable: Bool)
    case enrolment(Profile)
    case secondFactor(options: [OtpOption], canApprove: Bool, sentTo: String?)
    case offerBiometric
    case home(SessionInfo, [TrustedDevice])
}

/// The journey as a state machine the views render (mirrors the Android
/// sample's SignInFlow).
@MainActor
final class SignInModel: ObservableObject {
    @Published private(set) var screen: Screen = .signIn(userId: "", biometricAvailable: false)
    @Published var message: UiMessage?
    @Published private(set) var busy = false
    private let sdk: DeviceTrustClient
    private var userId = ""

    init(sdk: DeviceTrustClient) {
        self.sdk = sdk
        start()
    }

    func start() {
        let enrolled = (try? sdk.localEnrolments())?.first
        userId = enrolled?.userId ?? ""
        let available = enrolled != nil && ((try? sdk.isBiometricSignInAvailable(userId: userId)) ?? false)
        screen = .signIn(userId: userId, biometricAvailable: available)
    }

    private func run(_ action: () async throws -> Void) async {
        busy = true
        message = nil
        defer { busy = false }
        do {
            try await action()
        } catch {
            let m = DeviceTrustSample.message(for: error)
            if m.next != .nothing || !m.body.isEmpty { message = m }
            if m.next == .signInWithPassword { start() }
        }
    }

    private func show(_ step: SignInStep) async throws {
        switch step {
        case .enrolmentRequired(let profile, _):
            screen = .enrolment(profile)
        case .secondFactorRequired(let options, let canApprove, _):
            screen = .secondFactor(options: options, canApprove: canApprove, sentTo: nil)
        case .signedIn(let session):
            if try sdk.isBiometricSignInAvailable(userId: session.userId) {
                screen = .home(session, try await sdk.trustedDevices())
            } else {
                screen = .offerBiometric
            }
        }
    }

    func signInWithPassword(_ user: String, _ password: String) async {
        userId = user
        await run { try await show(try await sdk.signInWithPassword(userId: user, password: password)) }
    }

    func signInWithBiometric() async {
        await run { try await show(try await sdk.signInWithBiometric(userId: userId, prompt: Prompts.signIn)) }
    }

    func enrol(securityCode: String, mobile: String) async {
        await run { try await show(try await sdk.completeEnrolment(securityCode: securityCode, mobile: mobile.isEmpty ? nil : mobile)) }
    }

    func sendCode(_ channel: OtpChannel) async {
        await run {
            let sent = try await sdk.sendOtp(channel: channel)
            if case .secondFactor(let options, let canApprove, _) = screen {
                screen = .secondFactor(options: options, canApprove: canApprove, sentTo: sent.destination)
            }
        }
    }

    func verify(_ code: String) async { await run { try await show(try await sdk.verifyOtp(code: code)) } }

    func approveWithThisDevice() async { await run { try await show(try await sdk.approveWithThisDevice(prompt: Prompts.approve)) } }

    func enableBiometric(name: String) async {
        await run {
            _ = try await sdk.enableBiometricSignIn(deviceName: name, userVerification: .biometric, prompt: Prompts.enable)
            try await home()
        }
    }

    func skipBiometric() async { await run { try await home() } }

    private func home() async throws {
        guard let session = await sdk.session() else { throw DeviceTrustError.NotSignedIn }
        screen = .home(session, try await sdk.trustedDevices())
    }

    func removeDevice(_ id: String) async {
        await run {
            try await sdk.removeDevice(deviceId: id)
            if await sdk.session() == nil { start() } else { try await home() }
        }
    }

    func signOut() async {
        await run {
            try await sdk.signOut()
            start()
        }
    }
}

/// The app's words for the Face ID / Touch ID prompt.
enum Prompts {
    static let signIn = BiometricPrompt(title: "Sign in to your account", subtitle: nil, cancelLabel: "Use password")
    static let approve = BiometricPrompt(title: "Approve this sign-in", subtitle: nil, cancelLabel: "Cancel")
    static let enable = BiometricPrompt(title: "Turn on Face ID sign-in", subtitle: nil, cancelLabel: "Not now")
}
