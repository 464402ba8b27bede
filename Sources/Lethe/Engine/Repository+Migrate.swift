import Foundation
import LetheLedger

extension Repository {
    /// Moves the ledger of the store at `location` from `.lethe/ledger.sqlite` to the (empty)
    /// PostgreSQL database at `url`: copies every row (`Ledger.copy`, which verifies the copy
    /// and requires the source's answer), then records the URL in `.lethe/remote.json` (an
    /// atomic rename: the switch; an `objects` entry is kept). Until then nothing changes, and
    /// `ledger.sqlite` is left in place, no longer used. Run it while no other process uses the
    /// store.
    public static func migrateLedger(_ location: StoreLocation, to url: String) throws(EngineError) -> LedgerCopyReport {
        guard Ledger.isPostgresURL(url) else { throw .invalid("--ledger must be a postgresql:// URL, not \(url)") }
        var config = try lift { try RemoteConfig.load(location) }
        if let current = config.ledger {
            throw .invalid("the ledger of \(location.directory.path) is already in \(Ledger.redactedURL(current) ?? current)")
        }
        guard FileManager.default.fileExists(atPath: location.ledgerPath) else {
            throw .invalid("\(location.directory.path) has no ledger.sqlite to migrate")
        }
        let key = FileManager.default.fileExists(atPath: location.signingKeyPath) ? location.signingKeyPath : nil
        let report = try lift { try Ledger.copy(sqlite: location.ledgerPath, toPostgres: url, keyPath: key) }
        config.ledger = url
        try lift { try config.write(to: location) }
        return report
    }
}
