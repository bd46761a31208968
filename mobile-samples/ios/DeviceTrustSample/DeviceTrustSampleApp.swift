import DeviceTrust
import SwiftUI

@main
struct DeviceTrustSampleApp: App {
    @StateObject private var model: SignInModel

    init() {
        // A misconfigured app cannot run: fail loudly at launch, not later.
        // biometric-sign-in:begin
        // Application Support/devicetrust, kept out of backups (a restored phone has no Secure Enclave key).
        let folder = try! StateDirectory.prepare()
        // biometric-sign-in:end
        // The defaults (HTTPS only, the platform compiled for, 15 s requests, 5 min for a prompt) except in development.
        var config = Config(
            serverUrl: Bundle.main.object(forInfoDictionaryKey: "DeviceTrustServerURL") as? String ?? "http://127.0.0.1:8080",
            rpId: Bundle.main.object(forInfoDictionaryKey: "DeviceTrustRPID") as? String ?? "http://127.0.0.1:8080",
            stateDir: folder.path
        )
        #if DEBUG
        config.allowInsecureHttp = true // a development server on the Mac
        #endif
        // biometric-sign-in:begin
        let sdk = try! DeviceTrust(config: config, keyStore: SecureEnclaveKeyStore())
        // Before any call. Sessions survive a restart: the refresh token sealed under a this-device-only
        // Keychain key, restored at the first call (the model's start() then goes straight home).
        sdk.setSessionSealer(sealer: KeychainSessionSealer())
        // biometric-sign-in:end
        _model = StateObject(wrappedValue: SignInModel(sdk: sdk))
    }

    var body: some Scene {
        WindowGroup { ContentView().environmentObject(model) }
    }
}
