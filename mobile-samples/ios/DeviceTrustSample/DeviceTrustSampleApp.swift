import DeviceTrust
import SwiftUI

@main
struct DeviceTrustSampleApp: App {
    @StateObject private var model: SignInModel

    init() {
        let folder = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("devicetrust")
        var config = defaultConfig(
            serverUrl: Bundle.main.object(forInfoDictionaryKey: "DeviceTrustServerURL") as? String ?? "http://127.0.0.1:8080",
            rpId: Bundle.main.object(forInfoDictionaryKey: "DeviceTrustRPID") as? String ?? "http://127.0.0.1:8080",
            stateDir: folder.path
        )
        config.platform = .ios
        #if DEBUG
        config.allowInsecureHttp = true // a development server on the Mac
        #endif
        // A misconfigured app cannot run: fail loudly at launch, not later.
        let sdk = try! DeviceTrustClient(config: config, keyStore: SecureEnclaveKeyStore())
        _model = StateObject(wrappedValue: SignInModel(sdk: sdk))
    }

    var body: some Scene {
        WindowGroup { ContentView().environmentObject(model) }
    }
}
