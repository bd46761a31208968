import DeviceTrust
import SwiftUI

// Online access from a card, "forgot user ID" and "forgot password": the
// views before a sign-in. Mirrors the Android sample's SignedOutScreens.kt.

/// The new password with the policy's rules ticked off as the user types
/// (the SDK's local check); the server still checks common passwords and
/// the current one, and answers with every rule broken.
struct NewPasswordFields: View {
    let policy: PasswordPolicy?
    let userId: String
    @Binding var password: String
    @Binding var repeated: String

    var body: some View {
        Section {
            SecureField("New password", text: $password).textContentType(.newPassword)
            ForEach(passwordChecks(policy: policy, password: password, userId: userId), id: \.self) { rule in
                Label(rule.text, systemImage: rule.met ? "checkmark.circle" : "xmark.circle")
                    .foregroundStyle(rule.met ? Color.green : Color.red)
                    .font(.footnote)
            }
            SecureField("Repeat the new password", text: $repeated).textContentType(.newPassword)
            if !repeated.isEmpty && repeated != password {
                Text("The passwords don't match").foregroundStyle(.red).font(.footnote)
            }
        } footer: {
            if let policy { Text(policy.description) }
        }
    }
}

func newPasswordReady(policy: PasswordPolicy?, userId: String, password: String, repeated: String) -> Bool {
    password == repeated && passwordLooksAcceptable(policy: policy, password: password, userId: userId)
}

struct CreateAccountView: View {
    @EnvironmentObject var model: SignInModel
    let policy: PasswordPolicy?
    @State private var cardNumber = ""
    @State private var cardId = ""
    @State private var name = ""
    @State private var user = ""
    @State private var password = ""
    @State private var repeated = ""

    var body: some View {
        Form {
            Section(footer: Text("The card ID is the 4-digit number printed on the front of your card.")) {
                TextField("Card number", text: $cardNumber).keyboardType(.numberPad)
                TextField("Card ID (4 digits)", text: $cardId).keyboardType(.numberPad)
                TextField("Name as on the card", text: $name).textContentType(.name)
            }
            Section("Choose a user ID") {
                TextField("User ID", text: $user).textInputAutocapitalization(.never).autocorrectionDisabled()
            }
            NewPasswordFields(policy: policy, userId: user, password: $password, repeated: $repeated)
            Button("Create online access") {
                Task { await model.createAccount(cardNumber: cardNumber, cardId: cardId, name: name, newUserId: user, password: password) }
            }
            .disabled(cardNumber.filter(\.isNumber).count < 12 || cardId.count != 4 || name.isEmpty || user.isEmpty
                || !newPasswordReady(policy: policy, userId: user, password: password, repeated: repeated))
            Button("Back to log in", role: .cancel) { Task { await model.backToSignIn() } }
        }
        .navigationTitle("Create online access")
    }
}

struct ForgotUserIdView: View {
    @EnvironmentObject var model: SignInModel
    let sent: Bool
    @State private var email = ""
    @State private var code = ""

    var body: some View {
        Form {
            if sent {
                // The server never says whether anything matched.
                Text("If the details match an account, we've e-mailed your user ID to that address.")
                Button("Back to log in") { Task { await model.backToSignIn() } }
            } else {
                Section(footer: Text("The security code is the one you chose when you first logged in.")) {
                    TextField("E-mail", text: $email).keyboardType(.emailAddress).textInputAutocapitalization(.never).autocorrectionDisabled()
                    SecureField("Security code (6-9 digits)", text: $code).keyboardType(.numberPad)
                }
                Button("E-mail my user ID") { Task { await model.forgotUserId(email: email, securityCode: code) } }
                    .disabled(!email.contains("@") || code.count < 6)
                Button("Back to log in", role: .cancel) { Task { await model.backToSignIn() } }
            }
        }
        .navigationTitle("Forgot user ID")
    }
}

struct RecoveryStartView: View {
    @EnvironmentObject var model: SignInModel
    let initialUser: String
    @State private var user = ""
    @State private var code = ""

    var body: some View {
        Form {
            Section(footer: Text("The security code is the one you chose when you first logged in. Then we'll send you a code.")) {
                TextField("User ID", text: $user).textInputAutocapitalization(.never).autocorrectionDisabled()
                SecureField("Security code (6-9 digits)", text: $code).keyboardType(.numberPad)
            }
            Button("Continue") { Task { await model.startPasswordRecovery(user: user, securityCode: code) } }
                .disabled(user.isEmpty || code.count < 6)
            Button("Back to log in", role: .cancel) { Task { await model.backToSignIn() } }
        }
        .navigationTitle("Reset your password")
        .onAppear { user = initialUser }
    }
}

struct RecoveryCodeView: View {
    @EnvironmentObject var model: SignInModel
    let options: [OtpOption]
    let sentTo: String?
    @State private var code = ""

    var body: some View {
        Form {
            ForEach(options, id: \.destination) { o in
                Button("Send a code by \(o.channel == .sms ? "SMS" : "e-mail") to \(o.destination)") {
                    Task { await model.sendRecoveryCode(o.channel) }
                }
            }
            if let sentTo {
                Section("We sent a code to \(sentTo)") {
                    TextField("6-digit code", text: $code).keyboardType(.numberPad).textContentType(.oneTimeCode)
                    Button("Continue") { Task { await model.recoveryCodeEntered(code) } }.disabled(code.count != 6)
                }
            }
            Button("Cancel", role: .cancel) { Task { await model.backToSignIn() } }
        }
        .navigationTitle("Verify it's you")
    }
}

struct RecoveryNewPasswordView: View {
    @EnvironmentObject var model: SignInModel
    let userId: String
    let policy: PasswordPolicy?
    @State private var password = ""
    @State private var repeated = ""

    var body: some View {
        Form {
            Text("You'll be logged out everywhere. Face ID sign-in comes back after you log in once with the new password and a code.")
            NewPasswordFields(policy: policy, userId: userId, password: $password, repeated: $repeated)
            Button("Change password") { Task { await model.completePasswordRecovery(newPassword: password) } }
                .disabled(!newPasswordReady(policy: policy, userId: userId, password: password, repeated: repeated))
            Button("Cancel", role: .cancel) { Task { await model.backToSignIn() } }
        }
        .navigationTitle("New password")
    }
}
