import Foundation
@_exported import LetheStore

extension StoreLocation {
    /// Opens the store at this location (checks its config and format). With `"objects":
    /// "s3://..."` in `remote.json`, objects and refs live in that bucket (credentials, region
    /// and endpoint from the AWS environment variables) with a local read cache.
    public func openStore() throws(StoreError) -> Store {
        let remote = try RemoteConfig.load(self)
        guard let objects = remote.objects else { return try Store(directory: directory.path) }
        let location = try S3Location(url: objects)
        let client = try RemoteObjects.client()
        return try Store(directory: directory.path,
                         backend: S3Backend(client: client, location: location, cacheDirectory: objectCachePath),
                         refs: S3RefStore(client: client, location: location))
    }

    /// Creates a store at this location (`.lethe` with `objects/`, `refs/`, `config`).
    /// The ledger is created separately by the engine. With `remote.objects`, the bucket is
    /// created when missing (an existing one, e.g. shared with other hosts, is used as it is)
    /// and `remote.json` is written before `config`, the file that makes the store exist.
    public static func initializeStore(in parent: URL, remote: RemoteConfig = RemoteConfig()) throws(StoreError) -> Store {
        let location = StoreLocation(directory: parent)
        if !remote.isLocal {
            if FileManager.default.fileExists(atPath: location.directory.appendingPathComponent("config").path) {
                throw .invalidInput("a Lethe store already exists at \(location.directory.path)")
            }
            if let objects = remote.objects {
                let s3 = try S3Location(url: objects)
                try RemoteObjects.client().createBucket(s3.bucket)
            }
            do { try FileManager.default.createDirectory(at: location.directory, withIntermediateDirectories: true) } catch {
                throw .io("mkdir(\(location.directory.path)): \(error)")
            }
            try remote.write(to: location)
        }
        _ = try Store.initialize(at: location.directory.path)
        return try location.openStore()
    }
}

extension StoreLocation {
    /// Copies this local store's objects and refs (with their history) to `objects`
    /// (`s3://BUCKET/PREFIX`), verifies the copy (see `Store.copy`), and only then records the
    /// location in `remote.json`, so the store reads and writes there from now on. The local
    /// `objects/`, `refs/` and `refs.log` are left in place (delete them once satisfied).
    /// An interrupted run changes nothing visible; re-running resumes it.
    public func migrateObjects(to objects: String, progress: ((Int, Int) -> Void)? = nil) throws(StoreError) -> MigrationReport {
        var remote = try RemoteConfig.load(self)
        if let current = remote.objects { throw .invalidInput("objects already live in \(current)") }
        let location = try S3Location(url: objects)
        let source = try openStore()
        let client = try RemoteObjects.client()
        try client.createBucket(location.bucket)
        let report = try source.copy(to: S3Backend(client: client, location: location, cacheDirectory: objectCachePath),
                                     refs: S3RefStore(client: client, location: location), progress: progress)
        remote.objects = objects
        try remote.write(to: self)
        return report
    }
}
