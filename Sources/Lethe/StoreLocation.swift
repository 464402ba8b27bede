import Foundation

/// Where a store lives: the `.lethe` directory and the files in it.
public struct StoreLocation: Sendable, Equatable {
    /// The `.lethe` directory.
    public let directory: URL

    /// The store at an explicit `.lethe` directory (or a directory containing one).
    public init(directory: URL) {
        self.directory = directory.lastPathComponent == ".lethe" ? directory : directory.appendingPathComponent(".lethe")
    }

    /// The SQLite ledger.
    public var ledgerPath: String { directory.appendingPathComponent("ledger.sqlite").path }
    /// The object directory.
    public var objectsPath: String { directory.appendingPathComponent("objects").path }
    /// The Ed25519 signing key (PEM).
    public var signingKeyPath: String { directory.appendingPathComponent("signing-key.pem").path }

    /// Finds a store: `explicit` (the global `--store` option or `LETHE_STORE`) if given,
    /// else the first `.lethe` directory found searching upward from `start`, as git does.
    public static func find(explicit: String?, from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        throws(LocationError) -> StoreLocation
    {
        let fm = FileManager.default
        if let explicit = explicit ?? ProcessInfo.processInfo.environment["LETHE_STORE"] {
            let loc = StoreLocation(directory: URL(fileURLWithPath: explicit))
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: loc.directory.path, isDirectory: &isDir), isDir.boolValue else {
                throw LocationError(message: "no Lethe store at \(loc.directory.path) (run 'lethe init' there first)")
            }
            return loc
        }
        var dir = start.standardizedFileURL
        while true {
            let candidate = dir.appendingPathComponent(".lethe")
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: candidate.path, isDirectory: &isDir), isDir.boolValue {
                return StoreLocation(directory: candidate)
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        throw LocationError(message: "not in a Lethe store (no .lethe found in \(start.path) or any parent; run 'lethe init' or pass --store)")
    }
}

/// No store could be found.
public struct LocationError: Error, CustomStringConvertible, Sendable {
    /// What was searched.
    public let message: String
    public var description: String { message }
}
