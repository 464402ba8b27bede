import Foundation
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

    /// Writes `remote.json` atomically (keys sorted, absent keys left out).
    public func write(to location: StoreLocation) throws(StoreError) {
        var fields: [String] = []
        if let ledger { fields.append("\"ledger\": \(Safetensors.quote(ledger))") }
        if let objects { fields.append("\"objects\": \(Safetensors.quote(objects))") }
        let text = "{" + fields.joined(separator: ", ") + "}\n"
        do { try FileBytes.writeAtomically(Array(text.utf8), to: location.remoteConfigPath) } catch { throw .io("\(error)") }
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
