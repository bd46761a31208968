import Foundation

/// The folder the SDK keeps its local state in (`Config.stateDir`), made
/// and kept out of backups.
///
/// Why out of backups: the state names this phone's Secure Enclave key and
/// (with a `SessionSealer`) holds a session sealed under a this-device-only
/// Keychain key. Neither key travels in a backup, so on a phone restored
/// from one the state would offer a Face ID sign-in that can only fail
/// (`DeviceNotRecognized`) and a session that cannot be opened. Excluded,
/// the restored app starts clean: password + code, then "turn on Face ID".
public enum StateDirectory {
    /// `Application Support/<name>`, created if missing and marked
    /// `isExcludedFromBackup`. Call it at every launch, before building the
    /// SDK, and pass `.path` as the config's state folder: the mark is set
    /// again each time (Apple notes some file operations clear it).
    public static func prepare(name: String = "devicetrust") throws -> URL {
        let support = try FileManager.default.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true
        )
        let folder = support.appendingPathComponent(name, isDirectory: true)
        try excludeFromBackup(folder)
        return folder
    }

    /// Creates `folder` if needed and marks it, and so everything in it,
    /// excluded from iCloud and computer backups. For an app that keeps the
    /// SDK's state somewhere else (an app-group container).
    public static func excludeFromBackup(_ folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        var marked = folder
        try marked.setResourceValues(values)
    }
}
