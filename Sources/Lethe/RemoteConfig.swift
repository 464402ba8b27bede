import Foundation
import LetheLedger
import LetheStore
import LetheTensor

/// Where a store keeps its objects and ledger when not in `.lethe` itself: `.lethe/remote.json`,
/// `{"objects": "s3://bucket/prefix", "ledger": "postgresql://..."}`, each key optional
/// (absent: the local `objects/` + `refs/` directories and `ledger.sqlite`).
public struct RemoteConfig: Sendable, Equatable {
    /// The file name inside `.lethe`.
    public static let fileName = "remote.json"
    /// `s3://BUCKET/PREFIX` for objects and refs, or nil for the local directory.
    public var objects: String?
    /// A PostgreSQL connection URI for the ledger, or nil for SQLite.
    public var ledger: String?

    /// A configuration (all local by default).
    public init(objects: String? = nil, ledger: String? = nil) { self.objects = objects; self.ledger = ledger }

    /// Whether everything is local.
    public var isLocal: Bool { objects == nil && ledger == nil }

    /// Reads `remote.json` of `location` (absent: all local). Unknown keys are ignored; a key
    /// that is present must hold a string.
    public static func load(_ location: StoreLocation) throws(StoreError) -> RemoteConfig {
        let path = location.remoteConfigPath
        guard FileManager.default.fileExists(atPath: path) else { return RemoteConfig() }
        guard let data = FileManager.default.contents(atPath: path),
              let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .notAStore("\(path) is not a JSON object")
        }
        func value(_ key: String) throws(StoreError) -> String? {
            guard let v = doc[key], !(v is NSNull) else { return nil }
            guard let s = v as? String, !s.isEmpty else { throw .notAStore("\(path): \"\(key)\" must be a non-empty string") }
            return s
        }
        return RemoteConfig(objects: try value("objects"), ledger: try value("ledger"))
    }

    /// Writes `remote.json` atomically (keys sorted, absent keys left out), mode 0600: a ledger
    /// URL may carry a password (libpq also reads `PGPASSWORD` and `~/.pgpass`, which keep it out).
    public func write(to location: StoreLocation) throws(StoreError) {
        var fields: [String] = []
        if let ledger { fields.append("\"ledger\": \(Safetensors.quote(ledger))") }
        if let objects { fields.append("\"objects\": \(Safetensors.quote(objects))") }
        let text = "{" + fields.joined(separator: ", ") + "}\n"
        do { try FileBytes.writeAtomically(Array(text.utf8), to: location.remoteConfigPath) } catch { throw .io("\(error)") }
        guard chmod(location.remoteConfigPath, 0o600) == 0 else { throw .io("chmod(\(location.remoteConfigPath)): \(String(cString: strerror(errno)))") }
    }
}

extension StoreLocation {
    /// `.lethe/remote.json`.
    public var remoteConfigPath: String { directory.appendingPathComponent(RemoteConfig.fileName).path }
    /// The local read cache of a remote object store (`LETHE_CACHE`, else `.lethe/cache/objects`).
    public var objectCachePath: String {
        ProcessInfo.processInfo.environment["LETHE_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? directory.appendingPathComponent("cache/objects").path
    }
}

/// The S3 pieces a remote store is opened with.
enum RemoteObjects {
    /// A client from the standard AWS environment variables.
    static func client() throws(StoreError) -> S3Client {
        S3Client(config: try S3Config.fromEnvironment(ProcessInfo.processInfo.environment))
    }
}

extension StoreLocation {
    /// remote.json's `ledger`, checked to be a PostgreSQL URL; nil for the local SQLite ledger.
    func ledgerURL() throws(LedgerError) -> String? {
        let config: RemoteConfig
        do { config = try RemoteConfig.load(self) } catch { throw .io(path: remoteConfigPath, message: "\(error)") }
        guard let url = config.ledger else { return nil }
        guard Ledger.isPostgresURL(url) else { throw .io(path: remoteConfigPath, message: "\"ledger\" must be a postgresql:// URL, not \(url)") }
        return url
    }

    /// Where the ledger lives: the `ledger` URL of remote.json (password masked), else `ledgerPath`.
    public func ledgerDescription() throws(LedgerError) -> String {
        if let url = try ledgerURL(), let redacted = Ledger.redactedURL(url) { return redacted }
        return ledgerPath
    }

    /// Opens the store's ledger: PostgreSQL when remote.json names one, else `ledger.sqlite`.
    /// The signing key is `.lethe/signing-key.pem` when present; without it the ledger is read-only.
    public func openLedger() throws(LedgerError) -> Ledger {
        if let url = try ledgerURL() {
            let key = FileManager.default.fileExists(atPath: signingKeyPath) ? signingKeyPath : nil
            return try Ledger.open(postgres: url, keyPath: key)
        }
        // The SQLite ledger finds its key at the path recorded at creation.
        return try Ledger.open(path: ledgerPath)
    }

    /// A read-only query connection to the store's ledger (`lethe query`).
    public func openLedgerQuery() throws(LedgerError) -> LedgerQuery {
        if let url = try ledgerURL() { return try LedgerQuery(postgres: url) }
        return try LedgerQuery(path: ledgerPath)
    }
}
