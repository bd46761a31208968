import DeviceTrust
import SwiftUI

// Account settings of the signed-in user, and "confirm it's you" before a
// change. Mirrors the Android sample's AccountScreens.kt.

private func date(_ at: Date) -> String {
    at.formatted(date: .abbreviated, time: .shortened)
}

struct SettingsView: View {
    @EnvironmentObject var model: SignInModel
    let profile: Profile
    @State private var confirmRemove = false

    var body: some View {
        List {
            Section {
                LabeledContent("User ID", value: profile.userId)
                LabeledContent("Name", value: profile.name)
                LabeledContent("E-mail", value: profile.email)
                LabeledContent("Mobile", value: profile.mobile ?? "none (codes go to your e-mail)")
            }
            Section(footer: Text("Some changes ask you to confirm it's you first.")) {
                Button("Change password") { Task { await model.openChangePassword() } }
                Button("Change e-mail") { model.openChangeContact(.email) }
                Button(profile.mobile == nil ? "Add a mobile number" : "Change mobile number") { model.openChangeContact(.sms) }
                if profile.mobile != nil {
                    Button("Remove mobile number", role: .destructive) { confirmRemove = true }
                }
                Button("Change security code") { model.openChangeSecurityCode() }
            }
            Section {
                Button("Recent security activity") { Task { await model.openSecurityEvents() } }
                Button("Your cards") { Task { await model.openCards() } }
            }
            Button("Back") { Task { await model.backToHome() } }
        }
        .navigationTitle("Account settings")
        .confirmationDialog("Remove your mobile number?", isPresented: $confirmRemove, titleVisibility: .visible) {
            Button("Remove", role: .destructive) { Task { await model.removeMobile() } }
            Button("Keep", role: .cancel) {}
        } message: {
            Text("Codes and alerts will go to your e-mail only.")
        }
    }
}

struct ChangePasswordView: View {
    @EnvironmentObject var model: SignInModel
    let userId: String
    let policy: PasswordPolicy?
    @State private var current = ""
    @State private var password = ""
    @State private var repeated = ""

    var body: some View {
        Form {
            SecureField("Current password", text: $current).textContentType(.password)
            NewPasswordFields(policy: policy, userId: userId, password: $password, repeated: $repeated)
            Text("You'll stay logged in here; everywhere else you'll be logged out.").font(.footnote)
            Button("Change password") { Task { await model.changePassword(current: current, new: password) } }
                .disabled(current.isEmpty || !newPasswordReady(policy: policy, userId: userId, password: password, repeated: repeated))
            Button("Cancel", role: .cancel) { Task { await model.backToSettings() } }
        }
        .navigationTitle("Change password")
    }
}

struct ChangeContactView: View {
    @EnvironmentObject var model: SignInModel
    let channel: OtpChannel
    let current: String?
    let draft: String
    @State private var value = ""

    private var isEmail: Bool { channel == .email }

    var body: some View {
        Form {
            if let current { LabeledContent("Now", value: current) }
            Section(footer: Text("We'll send a code to the new \(isEmail ? "address" : "number") to check it's yours.")) {
                if isEmail {
                    TextField("New e-mail", text: $value).keyboardType(.emailAddress)
                        .textInputAutocapitalization(.never).autocorrectionDisabled()
                } else {
                    TextField("New mobile number, e.g. +447700900123", text: $value).keyboardType(.phonePad)
                }
            }
            Button("Send a code") { Task { await model.requestContactChange(channel, value: value) } }
                .disabled(value.trimmingCharacters(in: .whitespaces).isEmpty)
            Button("Cancel", role: .cancel) { Task { await model.backToSettings() } }
        }
        .navigationTitle(isEmail ? "Change e-mail" : "Mobile number")
        .onAppear { value = draft }
    }
}

struct ConfirmContactView: View {
    @EnvironmentObject var model: SignInModel
    let pending: PendingContactChange
    @State private var code = ""

    var body: some View {
        Form {
            Section(footer: Text("Your details change when you enter it.")) {
                Text("We sent a code to \(pending.destination).")
                TextField("6-digit code", text: $code).keyboardType(.numberPad).textContentType(.oneTimeCode)
            }
            Button("Confirm") { Task { await model.confirmContactChange(code) } }.disabled(code.count != 6)
            Button("Send a new code") { Task { await model.resendContactCode() } }
            Button("Cancel", role: .cancel) { Task { await model.backToSettings() } }
        }
        .navigationTitle("Enter the code")
    }
}

struct ChangeSecurityCodeView: View {
    @EnvironmentObject var model: SignInModel
    @State private var code = ""
    @State private var repeated = ""

    var body: some View {
        Form {
            Section(footer: Text("6 to 9 digits, not all the same and not a run like 123456. You'll need it if you forget your user ID or password.")) {
                SecureField("New security code", text: $code).keyboardType(.numberPad)
                SecureField("Repeat the new security code", text: $repeated).keyboardType(.numberPad)
                if !repeated.isEmpty && repeated != code {
                    Text("The codes don't match").foregroundStyle(.red).font(.footnote)
                }
            }
            Button("Change security code") { Task { await model.changeSecurityCode(code) } }
                .disabled(code.count < 6 || code != repeated)
            Button("Cancel", role: .cancel) { Task { await model.backToSettings() } }
        }
        .navigationTitle("Security code")
    }
}

struct SecurityEventsView: View {
    @EnvironmentObject var model: SignInModel
    let events: [SecurityEvent]

    var body: some View {
        List {
            Section(footer: Text("If you don't recognise something, change your password and call the number on your card.")) {
                if events.isEmpty { Text("Nothing yet.") }
                ForEach(events, id: \.self) { e in
                    VStack(alignment: .leading) {
                        Text(eventText(e.eventType))
                        Text([date(e.at), e.deviceName, e.ip].compactMap { $0 }.joined(separator: " · ")).font(.footnote)
                    }
                }
            }
            Button("Back") { Task { await model.backToSettings() } }
        }
        .navigationTitle("Security activity")
    }
}

struct CardsView: View {
    @EnvironmentObject var model: SignInModel
    let cards: [LinkedCard]
    @State private var cardNumber = ""
    @State private var cardId = ""

    var body: some View {
        Form {
            Section("Linked cards") {
                ForEach(cards, id: \.cardRef) { c in
                    VStack(alignment: .leading) {
                        Text("Card ending \(c.last4)")
                        Text("Linked \(date(c.linkedAt))").font(.footnote)
                    }
                }
            }
            Section("Link another card") {
                TextField("Card number", text: $cardNumber).keyboardType(.numberPad)
                TextField("Card ID (4 digits)", text: $cardId).keyboardType(.numberPad)
                Button("Link card") { Task { await model.linkCard(cardNumber: cardNumber, cardId: cardId) } }
                .disabled(cardNumber.filter(\.isNumber).count < 12 || cardId.count != 4)
            }
            Button("Back") { Task { await model.backToSettings() } }
        }
        .navigationTitle("Your cards")
        // A card was linked (the list changed): clear the form. On a failure the details stay to correct.
        .onChange(of: cards) { _ in
            cardNumber = ""
            cardId = ""
        }
    }
}

struct ConfirmItIsYouView: View {
    @EnvironmentObject var model: SignInModel
    let biometricAvailable: Bool
    @State private var password = ""

    var body: some View {
        Form {
            Text("For your security, confirm it's you before this change. Then we'll make it; you won't need to enter it again.")
            if biometricAvailable {
                Button("Confirm with Face ID") { Task { await model.confirmWithBiometric() } }
            }
            Section(biometricAvailable ? "Or use your password and a code" : "Your password, then a code") {
                SecureField("Password", text: $password).textContentType(.password)
                Button("Continue with password") { Task { await model.confirmWithPassword(password) } }.disabled(password.isEmpty)
            }
            Button("Cancel", role: .cancel) { Task { await model.cancelConfirm() } }
        }
        .navigationTitle("Confirm it's you")
    }
}
