import DeviceTrust

/// What the card holder can do about a failure.
enum NextStep { case tryAgain, waitOrCall, signInWithPassword, sendNewCode, usePasswordInstead, nothing }

/// A failure in the card holder's words, after the log-in failure table of
/// the guide. Mirrors the Android sample's ErrorMessages.kt.
struct UiMessage: Identifiable, Equatable {
    let title: String
    let body: String
    let next: NextStep
    var id: String { title + body }
}

func message(for error: Error) -> UiMessage {
    guard let e = error as? DeviceTrustError else {
        return UiMessage(title: "Something went wrong", body: error.localizedDescription, next: .tryAgain)
    }
    switch e {
    case .InvalidCredentials:
        return UiMessage(title: "User ID or password incorrect", body: "Try again carefully, or reset your password.", next: .tryAgain)
    case .AccountLocked(let retryAfterS):
        return UiMessage(title: "Account temporarily locked", body: "Too many failed attempts. Wait \((retryAfterS + 59) / 60) minutes or call the number on your card.", next: .waitOrCall)
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
    case .NotSignedIn, .RecentSignInRequired:
        return UiMessage(title: "Please sign in again", body: "", next: .signInWithPassword)
    case .DeviceLimitReached:
        return UiMessage(title: "Too many trusted devices", body: "Remove a device you no longer use, then try again.", next: .nothing)
    case .RateLimited(let retryAfterS):
        return UiMessage(title: "Please wait", body: "Try again in \(retryAfterS) seconds.", next: .tryAgain)
    case .InvalidInput(let reason):
        return UiMessage(title: "Please check what you entered", body: reason, next: .tryAgain)
    case .Network(let retryable, _):
        return retryable
            ? UiMessage(title: "We can't reach American Express right now", body: "Check your connection and try again.", next: .tryAgain)
            : UiMessage(title: "A secure connection could not be made", body: "Please update the app or try another network.", next: .nothing)
    case .Server(_, let code, _):
        return code == "delivery_failed"
            ? UiMessage(title: "Your code didn't go out", body: "Log in via a trusted device or call customer service.", next: .tryAgain)
            : UiMessage(title: "Something went wrong", body: "Please try again later.", next: .tryAgain)
    case .KeyStore, .LocalStorage:
        return UiMessage(title: "Something went wrong on this iPhone", body: "Sign in with your password.", next: .usePasswordInstead)
    }
}
