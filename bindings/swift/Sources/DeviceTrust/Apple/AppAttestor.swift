import DeviceCheck
import Foundation
import os

/// Vouches for a new Secure Enclave signing key with App Attest
/// (`DCAppAttestService`). App Attest keys are App Attest's own: a fresh one
/// per registration (`generateKey()`), never used to sign a sign-in. Its
/// attestation (`attestKey(_:clientDataHash:)`) binds *our* signing key
/// through `clientDataHash` = SHA-256(challenge ‖ JWK thumbprint of the
/// signing key), which the SDK computes (`appAttestClientDataHash`).
///
/// Needs the App Attest capability
/// (`com.apple.developer.devicecheck.appattest-environment`) in the app's
/// entitlements and the server's `--apple-app-id TEAMID.BUNDLE`.
struct AppAttestor {
    private static let log = Logger(subsystem: "com.devicetrust", category: "app-attest")

    /// `DCAppAttestService.shared` in apps; a stand-in in tests.
    var service: AppAttestService = DCAppAttestService.shared
    /// Tries again after `serverUnavailable`, as Apple asks: same App Attest
    /// key, same `clientDataHash`. Short waits (nanoseconds): the
    /// registration challenge expires, and the user is waiting on "Turn on
    /// Face ID".
    var retryDelays: [UInt64] = [500_000_000, 1_500_000_000]

    /// The attestation of `publicKey` for this registration, or nil where
    /// App Attest cannot give one (unsupported: simulators, some Macs; no
    /// network to Apple; a rejected key). Throws only for what is not "App
    /// Attest cannot": a malformed public key (a bug) or a cancelled task.
    func attest(publicKey: Data, challenge: Data) async throws -> KeyAttestation? {
        guard service.isSupported else { return nil }
        let clientDataHash = try appAttestClientDataHash(challenge: challenge, publicKey: publicKey)
        let keyId: String
        do {
            // A fresh App Attest key: an attested key cannot be attested again (invalidKey).
            keyId = try await service.generateKey()
        } catch {
            Self.log.error("App Attest generateKey failed: \(Self.describe(error), privacy: .public)")
            return nil
        }
        // The identifier is the base64 of the App Attest public key's SHA-256.
        guard let keyIdBytes = Data(base64Encoded: keyId), keyIdBytes.count == 32 else {
            Self.log.error("App Attest returned a key identifier that is not 32 bytes of base64")
            return nil
        }
        var delays = retryDelays[...]
        while true {
            try Task.checkCancellation()
            do {
                let object = try await service.attestKey(keyId, clientDataHash: clientDataHash)
                return .appleAppAttest(keyId: keyIdBytes, attestationObject: object)
            } catch let error as DCError where error.code == .serverUnavailable {
                guard let delay = delays.popFirst() else {
                    Self.log.error("App Attest unavailable after retries: the key is registered without attestation")
                    return nil
                }
                try await Task.sleep(nanoseconds: delay)
            } catch {
                // featureUnsupported, invalidInput, invalidKey,
                // unknownSystemFailure: retrying with the same inputs
                // cannot help. A server under `--attestation require`
                // refuses the registration, `verify` accepts it.
                Self.log.error("App Attest attestKey failed: \(Self.describe(error), privacy: .public)")
                return nil
            }
        }
    }

    static func describe(_ error: Error) -> String {
        guard let dc = error as? DCError else { return String(describing: error) }
        switch dc.code {
        case .featureUnsupported: return "featureUnsupported"
        case .invalidInput: return "invalidInput"
        case .invalidKey: return "invalidKey"
        case .serverUnavailable: return "serverUnavailable"
        case .unknownSystemFailure: return "unknownSystemFailure"
        @unknown default: return "DCError \(dc.code.rawValue)"
        }
    }
}

/// What the key store uses of App Attest (`DCAppAttestService` has it all).
protocol AppAttestService {
    var isSupported: Bool { get }
    func generateKey() async throws -> String
    func attestKey(_ keyId: String, clientDataHash: Data) async throws -> Data
}

extension DCAppAttestService: AppAttestService {}
