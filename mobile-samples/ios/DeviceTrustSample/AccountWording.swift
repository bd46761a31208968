import DeviceTrust
import Foundation

/// One password rule, as the view lists it under the field while the user types.
struct RuleCheck: Hashable {
    let text: String
    let met: Bool
}

/// The policy's rules with a tick or a cross for `password`, from the SDK's
/// local check (`checkPassword`): length, character mix, not the user ID.
/// "Too long" is listed only once it is broken. The server still has the
/// last word: it alone knows common and breached passwords, and the current
/// one, and answers `PasswordRejected` with every rule broken. Without a
/// policy (it could not be fetched) there is nothing to show.
/// Mirrors the Android sample's AccountWording.kt.
func passwordChecks(policy: PasswordPolicy?, password: String, userId: String) -> [RuleCheck] {
    guard let policy else { return [] }
    let broken = Set(checkPassword(policy: policy, password: password, userId: userId))
    var listed: [PasswordRule] = [.tooShort]
    if broken.contains(.tooLong) { listed.append(.tooLong) }
    if policy.classesRequired > 1 { listed.append(.tooFewClasses) }
    if !userId.trimmingCharacters(in: .whitespaces).isEmpty { listed.append(.containsUserId) }
    return listed.map { RuleCheck(text: ruleText($0, policy: policy), met: !password.isEmpty && !broken.contains($0)) }
}

/// Whether the local check finds nothing wrong (the button to submit is enabled then).
func passwordLooksAcceptable(policy: PasswordPolicy?, password: String, userId: String) -> Bool {
    guard !password.isEmpty else { return false }
    guard let policy else { return true }
    return checkPassword(policy: policy, password: password, userId: userId).isEmpty
}

/// A security event in the card holder's words.
func eventText(_ type: SecurityEventType) -> String {
    switch type {
    case .signIn: return "Signed in"
    case .signInFailed: return "Failed sign-in attempt"
    case .accountLocked: return "Account locked after failed attempts"
    case .stepUp: return "Extra verification asked"
    case .deviceAdded: return "Trusted device added"
    case .deviceRemoved: return "Trusted device removed"
    case .passwordChanged: return "Password changed"
    case .contactChanged: return "E-mail or mobile number changed"
    case .securityCodeChanged: return "Security code changed"
    case .recoveryUsed: return "Password reset with the security code"
    case .refreshReuse: return "Suspicious session use: sessions signed out"
    case .enrolled: return "Two-step verification set up"
    case .other(let name): return "Account activity (\(name))"
    }
}

/// An account in the picker: its name when the iPhone knows it, its user ID, and whether it is signed in here.
func accountLabel(_ account: KnownAccount) -> String {
    let who = account.name.map { "\($0) (\(account.userId))" } ?? account.userId
    if account.active { return "\(who) · using now" }
    if account.signedIn { return "\(who) · signed in" }
    if account.biometricAvailable { return "\(who) · Face ID or Touch ID" }
    return who
}
