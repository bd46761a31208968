import Foundation

let adminToken = "swift-tests-admin-token-0123456789abcdef"
let rpId = "https://rp.swift.test"
let password = "Correct horse battery 9"

/// The session's methods by their wire (RFC 8176) names.
func amr(_ session: SessionInfo) -> [String] {
    session.authMethods.map {
        switch $0 {
        case .password: return "pwd"
        case .otp: return "otp"
        case .hardwareKey: return "hwk"
        case .softwareKey: return "swk"
        case .biometric: return "bio"
        case .other(let name): return name
        }
    }
}

/// The workspace's real server binary (path in DEVICETRUST_SERVER) on
/// 127.0.0.1 with an outbox file. macOS only: iOS cannot spawn processes.
/// Mirrors bindings/kotlin's TestServer.
final class TestServer {
    let base: String
    private let process: Process
    private let outbox: URL

    /// `extraArguments`: more `serve` flags (e.g. the attestation policy).
    init(extraArguments: [String] = []) throws {
        guard let binary = ProcessInfo.processInfo.environment["DEVICETRUST_SERVER"] else {
            throw NSError(domain: "TestServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "set DEVICETRUST_SERVER"])
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        outbox = dir.appendingPathComponent("outbox.jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--rp-id", rpId,
                             "--database", "sqlite://" + dir.appendingPathComponent("dt.db").path,
                             "--outbox", outbox.path, "--admin-token", adminToken, "--ip-rate-limit", "0"] + extraArguments
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        var found: String?
        var buffer = ""
        while found == nil {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let range = buffer.range(of: #"listening on (http://\S+)"#, options: .regularExpression) {
                found = String(buffer[range].dropFirst("listening on ".count))
            }
        }
        guard let address = found else { throw NSError(domain: "TestServer", code: 2) }
        base = address
        // Keep draining the log so the server never blocks on a full pipe.
        pipe.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    func addUser(_ userId: String) async throws {
        var request = URLRequest(url: URL(string: base + "/admin/v1/users")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        request.setValue("Bearer " + adminToken, forHTTPHeaderField: "authorization")
        request.httpBody = try JSONSerialization.data(withJSONObject: [
            "user_id": userId, "name": "Jane Doe", "email": userId + "@example.com",
            "primary_market": "GB", "password": password,
        ])
        let (_, response) = try await URLSession.shared.data(for: request)
        precondition((response as? HTTPURLResponse)?.statusCode == 201)
    }

    /// Feeds an activated card to the server (admin API).
    func addCard(number: String, cardId: String, name: String, email: String) async throws {
        var request = URLRequest(url: URL(string: base + "/admin/v1/cards")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        request.setValue("Bearer " + adminToken, forHTTPHeaderField: "authorization")
        request.httpBody = try JSONSerialization.data(withJSONObject: [
            "card_number": number, "card_id": cardId, "name": name, "email": email,
            "primary_market": "GB", "activated": true,
        ])
        let (_, response) = try await URLSession.shared.data(for: request)
        precondition((response as? HTTPURLResponse)?.statusCode == 201)
    }

    /// The outbox messages of `purpose` to `to`, polling up to `wait`
    /// seconds: the server sends some messages off the request path.
    func messages(purpose: String, to: String, wait: TimeInterval = 5) async throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(wait)
        while true {
            let lines = try String(contentsOf: outbox, encoding: .utf8).split(separator: "\n")
            let found = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                .filter { $0["purpose"] as? String == purpose && $0["to"] as? String == to }
            if !found.isEmpty || Date() >= deadline { return found }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    func lastOtp(_ userId: String) throws -> String {
        let lines = try String(contentsOf: outbox, encoding: .utf8).split(separator: "\n")
        for line in lines.reversed() {
            let m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if m["purpose"] as? String == "otp", m["user_id"] as? String == userId { return m["code"] as! String }
        }
        throw NSError(domain: "TestServer", code: 3)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        precondition(process.terminationStatus == 0)
    }
}
