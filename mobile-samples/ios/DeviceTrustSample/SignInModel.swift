import DeviceTrust
import Foundation

/// The screen the app shows.
enum Screen: Equatable {
    /// Log in as `userId` (Face ID when `biometricAvailable`), or pick another
    /// of the `accounts` on this iPhone (a signed-in one is switched to, without a sign-in).
    case signIn(userId: String, biometricAvailable: Bool, accounts: [KnownAccount])
    /// First sign-in: the name and e-mail on file, to check.
    case enrolment(name: String, email: String)
    /// `confirming`: this second factor confirms it's the user for an account change (it can be cancelled).
    case secondFactor(options: [OtpOption], canApprove: Bool, sentTo: String?, confirming: Bool)
    /// "Sign in faster": Face ID / Touch ID, or the passcode on an iPhone without biometrics.
    case offerBiometric(BiometricOffer)
    case home(SessionInfo, [TrustedDevice])

    // Signed out: online access from a card, and the ways back in.
    case createAccount(policy: PasswordPolicy?)
    case forgotUserId(sent: Bool)
    case recoveryStart(userId: String)
    case recoveryCode(options: [OtpOption], sentTo: String?)
    case recoveryNewPassword(userId: String, policy: PasswordPolicy?)

    // Signed in: account settings.
    case settings(Profile)
    case changePassword(userId: String, policy: PasswordPolicy?)
    /// A new e-mail (`.email`) or mobile number (`.sms`); `current` is on file now.
    case changeContact(channel: OtpChannel, current: String?, draft: String)
    case confirmContact(PendingContactChange)
    case changeSecurityCode
    case securityEvents([SecurityEvent])
    case cards([LinkedCard])
    /// "Confirm it's you": an account change needs a recent strong sign-in
    /// (RecentSignInRequired). Face ID when enabled here, else password +
    /// code; then the change the user asked for is repeated.
    case confirmItIsYou(userId: String, biometricAvailable: Bool)

    /// A screen of a signed-in user: a failure there keeps the user on it unless the session ended.
    var isSignedInArea: Bool {
        switch self {
        case .offerBiometric, .home, .settings, .changePassword, .changeContact, .confirmContact,
             .changeSecurityCode, .securityEvents, .cards, .confirmItIsYou:
            return true
        default:
            return false
        }
    }

    /// A step of a password reset: "start again" there means the reset, not a sign-in.
    var isRecoveryArea: Bool {
        switch self {
        case .recoveryCode, .recoveryNewPassword: return true
        default: return false
        }
    }

    var isConfirming: Bool {
        switch self {
        case .confirmItIsYou, .secondFactor: return true
        default: return false
        }
    }
}

/// The journey, online access from a card, "forgot user ID / password" and
/// account settings as a state machine the views render (mirrors the Android
/// sample's SignInFlow).
@MainActor
final class SignInModel: ObservableObject {
    @Published private(set) var screen: Screen = .signIn(userId: "", biometricAvailable: false, accounts: [])
    @Published var message: UiMessage?
    @Published private(set) var busy = false
    private let sdk: DeviceTrust
    private let account: Account
    private let recovery: Recovery
    private var userId = ""
    private var policy: PasswordPolicy?
    private var profile: Profile?

    /// The action running now, when "confirm it's you" may repeat it.
    private var retry: (() async throws -> Void)?
    /// The action to repeat once the user has confirmed it's them, and where to go back if they cancel.
    private var resume: (() async throws -> Void)?
    private var returnTo: Screen?

    /// The password reset in progress: its code screen and the code typed there.
    private var recoveryCodeScreen: Screen?
    private var recoveryCode = ""

    /// The contact change asked for, to ask again for a new code.
    private var contactChange: (channel: OtpChannel, value: String)?

    init(sdk: DeviceTrust) {
        self.sdk = sdk
        self.account = sdk.account()
        self.recovery = sdk.recovery()
        Task { await start() }
    }

    /// At launch: home when the session kept before the restart opens
    /// (sealed by the app's `KeychainSessionSealer`), else the log-in screen
    /// offering Face ID to the last user who turned it on here.
    func start() async { await run { [self] in try await landing() } }

    private func landing() async throws {
        resume = nil
        returnTo = nil
        if await sdk.session() != nil { return try await home() }
        let enrolments = (try? await sdk.localEnrolments()) ?? []
        userId = enrolments.max(by: { $0.registeredAt < $1.registeredAt })?.userId ?? ""
        screen = await signInScreen()
    }

    // biometric-sign-in:begin
    private func biometricAvailable(_ user: String) async -> Bool {
        guard !user.isEmpty else { return false }
        return (try? await sdk.isBiometricSignInAvailable(userId: user)) ?? false
    }
    // biometric-sign-in:end

    /// Every account this iPhone knows, for the picker (local state only).
    private func knownAccounts() async -> [KnownAccount] { (try? await sdk.accounts()) ?? [] }

    private func signInScreen() async -> Screen {
        .signIn(userId: userId, biometricAvailable: await biometricAvailable(userId), accounts: await knownAccounts())
    }

    /// Runs one user action. `reauth`: the action is an account change that
    /// may answer RecentSignInRequired; the model then asks the user to
    /// confirm it's them and repeats it.
    private func run(reauth: Bool = false, _ action: @escaping () async throws -> Void) async {
        busy = true
        message = nil
        retry = reauth ? action : nil
        defer {
            retry = nil
            busy = false
        }
        do {
            try await action()
        } catch {
            await failed(error)
        }
    }

    private func failed(_ error: Error) async {
        let current = screen
        let m = wording(error, current)
        let e = error as? DeviceTrustError
        if case .RecentSignInRequired? = e, let again = retry {
            // The session is fine: confirm it's the user, then repeat. The screen says so.
            resume = again
            if !current.isConfirming { returnTo = current }
            screen = .confirmItIsYou(userId: userId, biometricAvailable: await biometricAvailable(userId))
            return
        }
        if case .NotSignedIn? = e {
            resume = nil
            returnTo = nil
            screen = await signInScreen()
        } else if resume != nil && (m.next == .signInWithPassword || m.next == .usePasswordInstead) {
            // Confirming it's the user failed in a way that needs the password: stay in "confirm it's you".
            screen = .confirmItIsYou(userId: userId, biometricAvailable: await biometricAvailable(userId))
        } else if m.next == .startRecoveryAgain || (current.isRecoveryArea && m.next == .signInWithPassword) {
            screen = .recoveryStart(userId: userId)
        } else if current.isSignedInArea {
            // Stay: the user fixes what they typed or tries again.
        } else if m.next == .signInWithPassword {
            screen = await signInScreen()
        }
        if m.next != .nothing || !m.body.isEmpty { message = m }
    }

    /// The error's words, where the screen changes what they mean.
    private func wording(_ error: Error, _ current: Screen) -> UiMessage {
        switch (error as? DeviceTrustError, current) {
        case (.InvalidCredentials?, .recoveryStart):
            return UiMessage(title: "User ID or security code incorrect", body: "Check both and try again.", next: .tryAgain)
        case (.InvalidCredentials?, .changePassword):
            return UiMessage(title: "Your current password isn't right", body: "Try again carefully. Too many wrong tries lock your account.", next: .tryAgain)
        case (.CardAlreadyEnrolled?, .cards):
            return UiMessage(title: "This card is already registered", body: "It belongs to a user ID already. Log in with that user ID to use it.", next: .nothing)
        case (.OtpExpired?, .changeContact):
            return UiMessage(title: "This code has expired", body: "Ask for a new code: we'll send it to the new address.", next: .tryAgain)
        default:
            return DeviceTrustSample.message(for: error)
        }
    }

    /// The risk engine's reasons in words ("a new network and an unusual time of day").
    static func describe(_ reasons: [StepUpReason]) -> String {
        let words = reasons.map { reason -> String in
            switch reason {
            case .newNetwork: return "a new network"
            case .newDevice: return "a device not used lately"
            case .unusualHour: return "an unusual time of day"
            case .velocity: return "many sign-ins in a short time"
            case .recentFailures: return "recent failed attempts"
            case .scorerUnavailable: return "a check that could not be made"
            case .other(let name): return name.replacingOccurrences(of: "_", with: " ")
            }
        }
        guard let last = words.last else { return "extra care" }
        return words.count == 1 ? last : words.dropLast().joined(separator: ", ") + " and " + last
    }

    private func notice(_ title: String, _ body: String) {
        message = UiMessage(title: title, body: body, next: .nothing)
    }

    private func show(_ step: SignInStep) async throws {
        switch step {
        case .enrolmentRequired(let name, let email, _):
            screen = .enrolment(name: name, email: email)
        case .secondFactorRequired(let options, let canApprove, _, let reasons):
            screen = .secondFactor(options: options, canApprove: canApprove, sentTo: nil, confirming: resume != nil)
            if !reasons.isEmpty {
                // The risk engine asked although this phone could approve: say why.
                notice("One more check", "We ask for a code this time because of \(Self.describe(reasons)).")
            }
        case .signedIn(let session):
            if let pending = resume {
                // Confirmed: repeat the change the user asked for (a failure now is that change's).
                resume = nil
                retry = pending
                do {
                    try await pending()
                } catch {
                    // The change itself failed (a rejected password, say): back to its screen to fix it.
                    if case .RecentSignInRequired? = error as? DeviceTrustError {} else if let back = returnTo {
                        screen = back
                        returnTo = nil
                    }
                    throw error
                }
                returnTo = nil
            // biometric-sign-in:begin
            } else if !(await biometricAvailable(session.userId)), let offer = BiometricOffer.current() {
                screen = .offerBiometric(offer)
            // biometric-sign-in:end
            } else {
                screen = .home(session, try await sdk.trustedDevices())
            }
        }
    }

    // MARK: Sign-in

    /// A sign-in from the log-in screen (not "confirm it's you"): nothing waits to be repeated.
    private func freshSignIn() {
        resume = nil
        returnTo = nil
    }

    func signInWithPassword(_ user: String, _ password: String) async {
        freshSignIn()
        userId = user.trimmingCharacters(in: .whitespaces)
        await run { [self] in try await show(try await sdk.signInWithPassword(userId: userId, password: password)) }
    }

    // biometric-sign-in:begin
    func signInWithBiometric() async {
        freshSignIn()
        await run { [self] in try await show(try await sdk.signInWithBiometric(userId: userId, prompt: Prompts.signIn)) }
    }
    // biometric-sign-in:end

    func enrol(securityCode: String, mobile: String) async {
        await run { [self] in try await show(try await sdk.completeEnrolment(securityCode: securityCode, mobile: mobile.isEmpty ? nil : mobile)) }
    }

    func sendCode(_ channel: OtpChannel) async {
        await run { [self] in
            let sent = try await sdk.sendOtp(channel: channel)
            if case .secondFactor(let options, let canApprove, _, let confirming) = screen {
                screen = .secondFactor(options: options, canApprove: canApprove, sentTo: sent.destination, confirming: confirming)
            }
        }
    }

    func verify(_ code: String) async { await run { [self] in try await show(try await sdk.verifyOtp(code: code)) } }

    // biometric-sign-in:begin
    func approveWithThisDevice() async { await run { [self] in try await show(try await sdk.approveWithThisDevice(prompt: Prompts.approve)) } }

    /// Needs a strong session: after "confirm it's you" it is repeated.
    /// `offer.verification`: `.biometric`, or `.deviceCredential` on an iPhone without Face ID / Touch ID.
    func enableBiometric(name: String, offer: BiometricOffer) async {
        await run(reauth: true) { [self] in
            _ = try await sdk.enableBiometricSignIn(deviceName: name, userVerification: offer.verification, prompt: Prompts.enable)
            try await home()
        }
    }

    func skipBiometric() async { await run { [self] in try await home() } }
    // biometric-sign-in:end

    private func home() async throws {
        guard let session = await sdk.session() else { throw DeviceTrustError.NotSignedIn }
        userId = session.userId
        screen = .home(session, try await sdk.trustedDevices())
    }

    func removeDevice(_ id: String) async {
        await run { [self] in
            try await sdk.removeDevice(deviceId: id)
            if await sdk.session() == nil { try await landing() } else { try await home() }
        }
    }

    /// Signs the account in use out; the iPhone's other accounts stay signed in (the picker lists them).
    func signOut() async {
        await run { [self] in
            try await sdk.signOut()
            try await landing()
        }
    }

    // MARK: Several accounts on one iPhone

    /// From home: the picker, to switch to another account or log in with one more; this one stays signed in.
    func openAccounts() async {
        freshSignIn()
        userId = ""
        await run { [self] in screen = await signInScreen() }
    }

    /// An account picked in the list: one signed in here becomes the account
    /// in use (no sign-in); another is offered its log-in, with Face ID when
    /// it has it here.
    func pickAccount(_ picked: KnownAccount) async {
        freshSignIn()
        userId = picked.userId
        await run { [self] in
            if picked.signedIn {
                do {
                    _ = try await sdk.switchAccount(userId: picked.userId)
                    return try await home()
                } catch DeviceTrustError.NotSignedIn {
                    // Its kept session had ended (revoked, or it could not be opened): log in again.
                }
            }
            screen = await signInScreen()
        }
    }

    func backToSignIn() async {
        freshSignIn()
        message = nil
        screen = await signInScreen()
    }

    /// The password rules, fetched once; nil when they cannot be fetched (the server still checks).
    private func passwordPolicy() async -> PasswordPolicy? {
        if let policy { return policy }
        policy = try? await sdk.passwordPolicy()
        return policy
    }

    // MARK: Online access from a card

    func openCreateAccount() async {
        await run { [self] in screen = .createAccount(policy: await passwordPolicy()) }
    }

    /// Creates the user ID from the card, then signs in with it: the one-time enrolment follows.
    func createAccount(cardNumber: String, cardId: String, name: String, newUserId: String, password: String) async {
        freshSignIn()
        await run { [self] in
            let created = try await sdk.createAccount(
                cardNumber: cardNumber.filter(\.isNumber), cardId: cardId.trimmingCharacters(in: .whitespaces),
                name: name, userId: newUserId.trimmingCharacters(in: .whitespaces), password: password
            )
            userId = created
            try await show(try await sdk.signInWithPassword(userId: created, password: password))
        }
    }

    // MARK: Forgot user ID

    func openForgotUserId() {
        message = nil
        screen = .forgotUserId(sent: false)
    }

    /// The server never says whether the details matched: the view says "if they match, we e-mailed it".
    func forgotUserId(email: String, securityCode: String) async {
        await run { [self] in
            try await recovery.forgotUserId(email: email.trimmingCharacters(in: .whitespaces), securityCode: securityCode)
            screen = .forgotUserId(sent: true)
        }
    }

    // MARK: Forgot password: security code → one-time code → new password

    func openForgotPassword() {
        message = nil
        screen = .recoveryStart(userId: userId)
    }

    func startPasswordRecovery(user: String, securityCode: String) async {
        userId = user.trimmingCharacters(in: .whitespaces)
        await run { [self] in
            let started = try await recovery.startPasswordRecovery(userId: userId, securityCode: securityCode)
            recoveryCode = ""
            recoveryCodeScreen = .recoveryCode(options: started.otpOptions, sentTo: nil)
            screen = .recoveryCode(options: started.otpOptions, sentTo: nil)
        }
    }

    func sendRecoveryCode(_ channel: OtpChannel) async {
        await run { [self] in
            let sent = try await recovery.sendOtp(channel: channel)
            if case .recoveryCode(let options, _) = screen {
                recoveryCodeScreen = .recoveryCode(options: options, sentTo: sent.destination)
                screen = .recoveryCode(options: options, sentTo: sent.destination)
            }
        }
    }

    /// The code is checked together with the new password, on the next screen.
    func recoveryCodeEntered(_ code: String) async {
        await run { [self] in
            recoveryCode = code
            screen = .recoveryNewPassword(userId: userId, policy: await passwordPolicy())
        }
    }

    func completePasswordRecovery(newPassword: String) async {
        await run { [self] in
            do {
                try await recovery.completePasswordRecovery(code: recoveryCode, newPassword: newPassword)
            } catch {
                // A wrong or expired code: back to the code (a new one, if expired). A rejected password stays here.
                if case .recoveryCode(let options, let sentTo)? = recoveryCodeScreen {
                    switch error as? DeviceTrustError {
                    case .OtpInvalid?: screen = .recoveryCode(options: options, sentTo: sentTo)
                    case .OtpExpired?: screen = .recoveryCode(options: options, sentTo: nil)
                    default: break
                    }
                }
                throw error
            }
            recoveryCodeScreen = nil
            recoveryCode = ""
            // Every session of this user ended; Face ID sign-in comes back after a password + code sign-in.
            screen = await signInScreen()
            notice("Password changed", "Log in with your new password. We'll ask for a code once, to confirm it's you.")
        }
    }

    // MARK: Account settings (signed in)

    private func settings() async throws {
        let p = try await account.profile()
        profile = p
        userId = p.userId
        screen = .settings(p)
    }

    func openSettings() async { await run { [self] in try await settings() } }

    func backToHome() async { await run { [self] in try await home() } }

    /// Leaves a settings sub-screen without a network call when it can.
    func backToSettings() async {
        resume = nil
        returnTo = nil
        await run { [self] in
            if let profile { screen = .settings(profile) } else { try await settings() }
        }
    }

    /// "Confirm it's you" cancelled: back where the user was, nothing changed.
    func cancelConfirm() async {
        resume = nil
        message = nil
        if let back = returnTo ?? profile.map({ Screen.settings($0) }) {
            screen = back
        } else {
            screen = await signInScreen()
        }
        returnTo = nil
    }

    // biometric-sign-in:begin
    func confirmWithBiometric() async {
        await run { [self] in try await show(try await sdk.signInWithBiometric(userId: userId, prompt: Prompts.confirm)) }
    }
    // biometric-sign-in:end

    /// Password, then a code (the second-factor screen, in "confirming" mode).
    func confirmWithPassword(_ password: String) async {
        await run { [self] in try await show(try await sdk.signInWithPassword(userId: userId, password: password)) }
    }

    func openChangePassword() async {
        await run { [self] in screen = .changePassword(userId: userId, policy: await passwordPolicy()) }
    }

    func changePassword(current: String, new: String) async {
        await run(reauth: true) { [self] in
            try await account.changePassword(currentPassword: current, newPassword: new)
            try await settings()
            notice("Password changed", "You stay logged in here; everywhere else you were logged out.")
        }
    }

    func openChangeContact(_ channel: OtpChannel, draft: String = "") {
        message = nil
        screen = .changeContact(channel: channel, current: channel == .email ? profile?.email : profile?.mobile, draft: draft)
    }

    /// Sends a code to the new address; the change happens when it is confirmed.
    func requestContactChange(_ channel: OtpChannel, value: String) async {
        let value = value.trimmingCharacters(in: .whitespaces)
        await run(reauth: true) { [self] in
            contactChange = (channel, value)
            let pending: PendingContactChange
            if channel == .email {
                pending = try await account.changeEmail(newEmail: value)
            } else {
                pending = try await account.changeMobile(newMobile: value)
            }
            screen = .confirmContact(pending)
        }
    }

    /// A new code means asking for the change again (the SDK keeps one change at a time).
    func resendContactCode() async {
        guard let change = contactChange else { return openChangeContact(.email) }
        await requestContactChange(change.channel, value: change.value)
    }

    func confirmContactChange(_ code: String) async {
        await run { [self] in
            let p: Profile
            do {
                p = try await account.confirmContactChange(code: code)
            } catch DeviceTrustError.OtpExpired {
                // The code or the change expired: ask for the change again.
                if let change = contactChange { openChangeContact(change.channel, draft: change.value) }
                throw DeviceTrustError.OtpExpired
            }
            let channel = contactChange?.channel
            contactChange = nil
            profile = p
            screen = .settings(p)
            let now = channel == .sms ? p.mobile : p.email
            notice("Details updated", "We'll use \(now ?? "your new details") from now on for codes and alerts.")
        }
    }

    func removeMobile() async {
        await run(reauth: true) { [self] in
            try await account.removeMobile()
            try await settings()
            notice("Mobile number removed", "Codes will go to your e-mail.")
        }
    }

    func openChangeSecurityCode() {
        message = nil
        screen = .changeSecurityCode
    }

    func changeSecurityCode(_ code: String) async {
        await run(reauth: true) { [self] in
            try await account.changeSecurityCode(securityCode: code)
            try await settings()
            notice("Security code changed", "Use the new code if you ever forget your user ID or password.")
        }
    }

    func openSecurityEvents() async {
        await run { [self] in screen = .securityEvents(try await account.securityEvents(limit: 50)) }
    }

    func openCards() async {
        await run { [self] in screen = .cards(try await account.linkedCards()) }
    }

    func linkCard(cardNumber: String, cardId: String) async {
        await run(reauth: true) { [self] in
            let card = try await account.linkCard(cardNumber: cardNumber.filter(\.isNumber), cardId: cardId.trimmingCharacters(in: .whitespaces))
            screen = .cards(try await account.linkedCards())
            notice("Card linked", "The card ending \(card.last4) is now linked to your user ID.")
        }
    }
}

// biometric-sign-in:begin
/// The app's words for the system prompt (Face ID / Touch ID, or the passcode).
enum Prompts {
    static let signIn = PromptText(title: "Sign in to your account", cancelLabel: "Use password")
    static let approve = PromptText(title: "Approve this sign-in")
    static let enable = PromptText(title: "Turn on quick sign-in", cancelLabel: "Not now")
    static let confirm = PromptText(title: "Confirm it's you to change your account settings", cancelLabel: "Use password")
}

/// What "Sign in faster" offers, from what this iPhone has now (the key
/// store's availability check).
struct BiometricOffer: Equatable {
    let verification: UserVerification
    /// "Face ID", "Touch ID", or "your iPhone passcode".
    let method: String

    /// nil when the iPhone has no passcode: no protected key is possible, so nothing is offered.
    static func current() -> BiometricOffer? {
        let now = SecureEnclaveKeyStore.availability()
        switch (now.recommended, now.biometryType) {
        case (.biometric?, .faceID): return BiometricOffer(verification: .biometric, method: "Face ID")
        case (.biometric?, .touchID): return BiometricOffer(verification: .biometric, method: "Touch ID")
        case (.biometric?, _): return BiometricOffer(verification: .biometric, method: "Face ID or Touch ID")
        case (.deviceCredential?, _): return BiometricOffer(verification: .deviceCredential, method: "your iPhone passcode")
        default: return nil
        }
    }
}
// biometric-sign-in:end
