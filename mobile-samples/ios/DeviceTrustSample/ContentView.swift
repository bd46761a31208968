import DeviceTrust
import SwiftUI

/// Renders the model's screen, its progress and its message.
struct ContentView: View {
    @EnvironmentObject var model: SignInModel

    var body: some View {
        NavigationStack {
            Group {
                switch model.screen {
                case .signIn(let userId, let biometricAvailable, let accounts):
                    SignInView(initialUser: userId, biometricAvailable: biometricAvailable, accounts: accounts)
                case .enrolment(let name, let email):
                    EnrolmentView(name: name, email: email)
                case .secondFactor(let options, let canApprove, let sentTo, let confirming):
                    SecondFactorView(options: options, canApprove: canApprove, sentTo: sentTo, confirming: confirming)
                case .offerBiometric(let offer):
                    OfferBiometricView(offer: offer)
                case .home(let session, let devices):
                    HomeView(session: session, devices: devices)
                case .createAccount(let policy):
                    CreateAccountView(policy: policy)
                case .forgotUserId(let sent):
                    ForgotUserIdView(sent: sent)
                case .recoveryStart(let userId):
                    RecoveryStartView(initialUser: userId)
                case .recoveryCode(let options, let sentTo):
                    RecoveryCodeView(options: options, sentTo: sentTo)
                case .recoveryNewPassword(let userId, let policy):
                    RecoveryNewPasswordView(userId: userId, policy: policy)
                case .settings(let profile):
                    SettingsView(profile: profile)
                case .changePassword(let userId, let policy):
                    ChangePasswordView(userId: userId, policy: policy)
                case .changeContact(let channel, let current, let draft):
                    ChangeContactView(channel: channel, current: current, draft: draft)
                case .confirmContact(let pending):
                    ConfirmContactView(pending: pending)
                case .changeSecurityCode:
                    ChangeSecurityCodeView()
                case .securityEvents(let events):
                    SecurityEventsView(events: events)
                case .cards(let cards):
                    CardsView(cards: cards)
                case .confirmItIsYou(_, let biometricAvailable):
                    ConfirmItIsYouView(biometricAvailable: biometricAvailable)
                }
            }
            .padding()
            .disabled(model.busy)
            .overlay { if model.busy { ProgressView() } }
        }
        .alert(item: $model.message) { m in
            Alert(title: Text(m.title), message: Text(m.body), dismissButton: .default(Text(label(m.next))))
        }
    }

    private func label(_ next: NextStep) -> String {
        switch next {
        case .signInWithPassword, .usePasswordInstead: return "Use password"
        case .sendNewCode: return "Send a new code"
        case .tryAgain: return "Try again"
        case .confirmItIsYou: return "Continue"
        case .startRecoveryAgain: return "Start again"
        case .waitOrCall, .nothing: return "OK"
        }
    }
}

struct SignInView: View {
    @EnvironmentObject var model: SignInModel
    let initialUser: String
    let biometricAvailable: Bool
    let accounts: [KnownAccount]
    @State private var user = ""
    @State private var password = ""

    var body: some View {
        Form {
            // Several accounts on this iPhone: pick one (a signed-in one opens at once), or log in with another below.
            if accounts.count > 1 || accounts.contains(where: { $0.signedIn }) {
                Section("Your accounts on this iPhone") {
                    ForEach(accounts, id: \.userId) { a in
                        Button(accountLabel(a)) { Task { await model.pickAccount(a) } }
                            .disabled(a.userId == initialUser)
                    }
                }
                Text("Or log in with another user ID:")
            }
            if biometricAvailable {
                Button("Sign in with Face ID") { Task { await model.signInWithBiometric() } }
                    // Offer Face ID at once, as banking apps do at launch (again when another account is picked).
                    .task(id: initialUser) { await model.signInWithBiometric() }
            }
            TextField("User ID", text: $user).textInputAutocapitalization(.never).autocorrectionDisabled()
            SecureField("Password", text: $password)
            Button("Log in") { Task { await model.signInWithPassword(user, password) } }
                .disabled(user.isEmpty || password.isEmpty)
            Section {
                Button("Forgot user ID?") { model.openForgotUserId() }
                Button("Forgot password?") { model.openForgotPassword() }
                Button("New here? Create online access with your card") { Task { await model.openCreateAccount() } }
            }
        }
        .navigationTitle("Log in")
        .onAppear { user = initialUser }
        .onChange(of: initialUser) { picked in user = picked }
    }
}

struct EnrolmentView: View {
    @EnvironmentObject var model: SignInModel
    let name: String
    let email: String
    @State private var code = ""
    @State private var mobile = ""

    var body: some View {
        Form {
            Section("Please check your details") {
                LabeledContent("Name", value: name)
                LabeledContent("E-mail", value: email)
                Text("If they are wrong, contact your programme administrator.").font(.footnote)
            }
            Section("Security code (6-9 digits)") {
                SecureField("Security code", text: $code).keyboardType(.numberPad)
            }
            Section(footer: Text("Without a mobile number, codes always go to your e-mail.")) {
                TextField("Mobile (optional, e.g. +447700900123)", text: $mobile).keyboardType(.phonePad)
            }
            Button("Continue") { Task { await model.enrol(securityCode: code, mobile: mobile) } }
                .disabled(code.count < 6)
        }
        .navigationTitle("Two-step verification")
    }
}

struct SecondFactorView: View {
    @EnvironmentObject var model: SignInModel
    let options: [OtpOption]
    let canApprove: Bool
    let sentTo: String?
    let confirming: Bool
    @State private var code = ""

    var body: some View {
        Form {
            if confirming {
                Text("One more step before we make the change you asked for.")
            }
            if canApprove {
                Button("Approve with Face ID") { Task { await model.approveWithThisDevice() } }
            }
            ForEach(options, id: \.destination) { o in
                Button("Send a code by \(o.channel == .sms ? "SMS" : "e-mail") to \(o.destination)") {
                    Task { await model.sendCode(o.channel) }
                }
            }
            if let sentTo {
                Section("We sent a code to \(sentTo)") {
                    TextField("6-digit code", text: $code).keyboardType(.numberPad).textContentType(.oneTimeCode)
                    Button("Verify") { Task { await model.verify(code) } }.disabled(code.count != 6)
                }
            }
            if confirming {
                Button("Cancel", role: .cancel) { Task { await model.cancelConfirm() } }
            }
        }
        .navigationTitle("Verify it's you")
    }
}

struct OfferBiometricView: View {
    @EnvironmentObject var model: SignInModel
    let offer: BiometricOffer
    @State private var name = UIDevice.current.name

    var body: some View {
        Form {
            if offer.verification == .biometric {
                Text("Use \(offer.method) instead of your password and a code. Your face and fingerprints never leave this iPhone.")
            } else {
                Text("Use \(offer.method) instead of your password and a code. A key locked by your passcode stays on this iPhone.")
            }
            TextField("Name for this iPhone", text: $name)
            Button("Turn on") { Task { await model.enableBiometric(name: name, offer: offer) } }.disabled(name.isEmpty)
            Button("Not now", role: .cancel) { Task { await model.skipBiometric() } }
        }
        .navigationTitle("Sign in faster")
    }
}

struct HomeView: View {
    @EnvironmentObject var model: SignInModel
    let session: SessionInfo
    let devices: [TrustedDevice]

    var body: some View {
        List {
            Button("Account settings") { Task { await model.openSettings() } }
            Section("Trusted devices") {
                ForEach(devices, id: \.deviceId) { d in
                    VStack(alignment: .leading) {
                        Text(d.name + (d.isThisDevice ? " (this iPhone)" : ""))
                        Text("\(d.platform), key in \(d.keyStorage.map { "\($0)" } ?? "unreported storage")").font(.footnote)
                    }
                    .swipeActions { Button("Remove", role: .destructive) { Task { await model.removeDevice(d.deviceId) } } }
                }
            }
            Button("Switch account or add one") { Task { await model.openAccounts() } }
            Button("Log out") { Task { await model.signOut() } }
        }
        .navigationTitle("Welcome, \(session.userId)")
    }
}
