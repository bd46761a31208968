import DeviceTrust

/// What the card holder can do about a failure.
enum NextStep {
    case tryAgain, waitOrCall, signInWithPassword, sendNewCode, usePasswordInstead
    /// The session is fine but the action needs a fresh proof: confirm it's you, then the action is repeated.
    case confirmItIsYou
    /// The password reset in progress is gone: start it again.
    case startRecoveryAgain
    case nothing
}

/// A failure in the card holder's words, after the log-in failure table of
/// the guide. Mirrors the Android sample's ErrorMessages.kt.
struct UiMessage: Identifiable, Equatable {
    let title: String
    let body: String
    let next: NextStep
    var id: String { title + body }
}

/// One password rule in plain words. With the policy (the screen where the
/// user types a new password has it) the length rules name the numbers.
func ruleText(_ rule: PasswordRule, policy: PasswordPolicy? = nil) -> String {
    switch rule {
    case .tooShort:
        return policy.map { "Use at least \($0.minLength) characters" } ?? "Use more characters"
    case .tooLong:
        return policy.map { "Use at most \($0.maxLength) characters" } ?? "Use fewer characters"
    case .tooFewClasses:
        return policy.map { "Mix at least \($0.classesRequired) of: lower case, upper case, digits, symbols" }
            ?? "Mix more of: lower case, upper case, digits, symbols"
    case .common:
        return "Avoid common passwords: this one appears in lists of stolen passwords"
    case .containsUserId:
        return "Don't include your user ID"
    case .sameAsCurrent:
        return "Choose a password you don't use now"
    case .other:
        return "Choose another password"
    }
}

func message(for error: Error) -> UiMessage {
    guard let e = error as? DeviceTrustError else {
        return UiMessage(title: "Something went wrong", body: error.localizedDescription, next: .tryAgain)
    }
    switch e {
    case .InvalidCredentials:
        return UiMessage(title: "User ID or password incorrect", body: "Try again carefully, or reset your password.", next: .tryAgain)
    case .AccountLocked(let retryAfterSecs):
        return UiMessage(title: "Account temporarily locked", body: "Too many failed attempts. Wait \((retryAfterSecs + 59) / 60) minutes or call the number on your card.", next: .waitOrCall)
    case .DeviceNotRecognized:
        return UiMessage(title: "We don't recognise this device", body: "Sign in with your password; we'll send a verification code to your e-mail or phone.", next: .signInWithPassword)
    case .ReauthorisationRequired:
        return UiMessage(title: "Please re-authorise this device", body: "Sign in with your password and a verification code to keep using Face ID or Touch ID.", next: .signInWithPassword)
    case .OtpInvalid(let attemptsLeft):
        return UiMessage(title: "That code isn't right", body: "\(attemptsLeft) tries left with this code.", next: .tryAgain)
    case .OtpExpired:
        return UiMessage(title: "This code has expired", body: "Send a new code.", next: .sendNewCode)
    case .SignInExpired, .NoSignInInProgress:
        return UiMessage(title: "Your sign-in timed out", body: "Please start again.", next: .signInWithPassword)
    case .NoRecoveryInProgress:
        return UiMessage(title: "Your password reset timed out", body: "Please start again with your user ID and security code.", next: .startRecoveryAgain)
    case .BiometricCancelled:
        return UiMessage(title: "Cancelled", body: "", next: .nothing)
    case .BiometricsChanged:
        return UiMessage(title: "Your Face ID or Touch ID changed", body: "For your security, sign in with your password to turn it back on.", next: .signInWithPassword)
    case .BiometricUnavailable(let reason):
        return UiMessage(title: "Face ID or Touch ID is unavailable", body: reason, next: .usePasswordInstead)
    case .BiometricLockedOut:
        return UiMessage(title: "Too many attempts", body: "Unlock your iPhone with its passcode, or sign in with your password.", next: .usePasswordInstead)
    case .NotEnrolledOnThisDevice:
        return UiMessage(title: "Face ID sign-in is off", body: "Sign in with your password to turn it on.", next: .signInWithPassword)
    case .NotSignedIn:
        return UiMessage(title: "Please sign in again", body: "", next: .signInWithPassword)
    case .RecentSignInRequired:
        return UiMessage(title: "Please confirm it's you", body: "For your security, confirm with Face ID or Touch ID, or your password and a code. Then we'll finish what you started.", next: .confirmItIsYou)
    case .DeviceLimitReached:
        return UiMessage(title: "Too many trusted devices", body: "Remove a device you no longer use, then try again.", next: .nothing)
    case .AttestationInvalid:
        return UiMessage(title: "Face ID sign-in isn't available on this iPhone", body: "This iPhone couldn't prove its security hardware to us. Keep signing in with your password and a code.", next: .usePasswordInstead)
    case .PasswordRejected(let reasons):
        var seen: [String] = []
        for text in reasons.map({ ruleText($0) }) where !seen.contains(text) { seen.append(text) }
        return UiMessage(
            title: "Choose another password",
            body: seen.isEmpty ? "This password doesn't meet the rules." : seen.map { "• " + $0 }.joined(separator: "\n"),
            next: .tryAgain
        )
    case .CardNotRecognized:
        return UiMessage(title: "The card number, card ID or name doesn't match our records", body: "Check them against your card, with your name as printed on it.", next: .tryAgain)
    case .CardNotActivated:
        return UiMessage(title: "Activate your card first", body: "Follow the steps that came with your card, then try again.", next: .nothing)
    case .CardAlreadyEnrolled:
        return UiMessage(title: "This card already has online access", body: "Log in with your user ID, or use \"Forgot user ID\".", next: .signInWithPassword)
    case .UserIdTaken:
        return UiMessage(title: "That user ID is taken", body: "Choose another one.", next: .tryAgain)
    case .DeliveryFailed:
        return UiMessage(title: "Your code didn't go out", body: "We couldn't send the code. Try again in a moment, use the other way to receive it, or approve on a trusted device.", next: .tryAgain)
    case .RateLimited(let retryAfterSecs):
        return UiMessage(title: "Please wait", body: "Try again in \(retryAfterSecs) seconds.", next: .tryAgain)
    case .InvalidInput(let reason):
        return UiMessage(title: "Please check what you entered", body: reason, next: .tryAgain)
    case .Network(let retryable, _):
        return retryable
            ? UiMessage(title: "We can't reach American Express right now", body: "Check your connection and try again.", next: .tryAgain)
            : UiMessage(title: "A secure connection could not be made", body: "Please update the app or try another network.", next: .nothing)
    case .Server:
        return UiMessage(title: "Something went wrong", body: "Please try again later.", next: .tryAgain)
    case .KeyStoreTimeout:
        return UiMessage(title: "Face ID, Touch ID or the passcode took too long", body: "Try again, or sign in with your password.", next: .usePasswordInstead)
    case .KeyStore, .LocalStorage:
        return UiMessage(title: "Something went wrong on this iPhone", body: "Sign in with your password.", next: .usePasswordInstead)
    case .Internal:
        return UiMessage(title: "Something went wrong", body: "Please try again later.", next: .tryAgain)
    }
}
