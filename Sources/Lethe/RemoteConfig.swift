import Foundation
import LetheLedger

/// `.lethe/remote.json`: where a store's objects and ledger live when they are not the local
/// defaults, e.g. `{"objects": "s3://bucket/prefix", "ledger": "postgresql://host/db"}`. Each
/// key is optional; an absent key (or an absent file) means the local default (`objects/`,
/// `ledger.sqlite`). The file is written with mode 0600: a ledger URL may carry a password
/// (libpq also reads `PGPASSWORD` and `~/.pgpass`, which keep it out of the file).
public struct RemoteConfig: Sendable, Equatable {
    /// Object store location (`s3://...`), or nil for the local directory.
    public var objects: String?
    /// Ledger location (`postgresql://...`), or nil for the local SQLite file.
    public var ledger: String?

    /// A configuration.
    public init(objects: String? = nil, ledger: String? = nil) { self.objects = objects; self.ledger = ledger }

    /// The file's path in a store.
    public static func path(_ location: StoreLocation) -> String { location.directory.appendingPathComponent("remote.json").path }

    /// Reads the store's remote.json; an absent file is the all-local default.
    public static func load(_ location: StoreLocation) throws(LedgerError) -> RemoteConfig {
        let path = path(location)
        guard let data = FileManager.default.contents(atPath: path) else { return RemoteConfig() }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .io(path: path, message: "not a JSON object like {\"objects\": \"s3://bucket/prefix\", \"ledger\": \"postgresql://...\"}")
        }
        var config = RemoteConfig()
        for (key, value) in object {
            guard let s = value as? String else { throw .io(path: path, message: "\"\(key)\" must be a string") }
            switch key {
            case "objects": config.objects = s
            case "ledger":
                guard Ledger.isPostgresURL(s) else { throw .io(path: path, message: "\"ledger\" must be a postgresql:// URL, not \(s)") }
                config.ledger = s
            default: throw .io(path: path, message: "unknown key \"\(key)\" (expected \"objects\" and/or \"ledger\")")
            }
        }
        return config
    }

    /// Writes remote.json atomically (temp file, fsync, rename), mode 0600.
    public func save(_ location: StoreLocation) throws(LedgerError) {
        let path = RemoteConfig.path(location)
        var fields: [String] = []
        if let objects { fields.append("  \"objects\": " + RemoteConfig.quote(objects)) }
        if let ledger { fields.append("  \"ledger\": " + RemoteConfig.quote(ledger)) }
        let text = "{\n" + fields.joined(separator: ",\n") + "\n}\n"
        let tmp = path + ".tmp.\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: tmp)
        else { throw .io(path: tmp, message: "cannot write") }
        do { try handle.synchronize(); try handle.close() } catch { throw .io(path: tmp, message: "\(error)") }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .io(path: path, message: String(cString: strerror(errno)))
        }
    }

    static func quote(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

extension StoreLocation {
    /// Where the ledger lives: the `ledger` URL of remote.json (password masked), else `ledgerPath`.
    public func ledgerDescription() throws(LedgerError) -> String {
        if let url = try RemoteConfig.load(self).ledger, let redacted = Ledger.redactedURL(url) { return redacted }
        return ledgerPath
    }

    /// Opens the store's ledger: PostgreSQL when remote.json names one, else `ledger.sqlite`.
    /// The signing key is `.lethe/signing-key.pem` when present; without it the ledger is read-only.
    public func openLedger() throws(LedgerError) -> Ledger {
        if let url = try RemoteConfig.load(self).ledger {
            let key = FileManager.default.fileExists(atPath: signingKeyPath) ? signingKeyPath : nil
            return try Ledger.open(postgres: url, keyPath: key)
        }
        // The SQLite ledger finds its key at the path recorded at creation.
        return try Ledger.open(path: ledgerPath)
    }

    /// A read-only query connection to the store's ledger (`lethe query`).
    public func openLedgerQuery() throws(LedgerError) -> LedgerQuery {
        if let url = try RemoteConfig.load(self).ledger { return try LedgerQuery(postgres: url) }
        return try LedgerQuery(path: ledgerPath)
    }
}
