import Foundation
@_exported import LetheStore

extension StoreLocation {
    /// Opens the store at this location (checks its config and format).
    public func openStore() throws(StoreError) -> Store {
        try Store(directory: directory.path)
    }

    /// Creates a store at this location (`.lethe` with `objects/`, `refs/`, `config`).
    /// The ledger is created separately by the engine.
    public static func initializeStore(in parent: URL) throws(StoreError) -> Store {
        try Store.initialize(at: StoreLocation(directory: parent).directory.path)
    }
}
