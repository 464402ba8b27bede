import Foundation
import LetheCrypto

extension Ledger {
    /// Whether `location` names a PostgreSQL ledger (`postgresql://` or `postgres://`).
    public static func isPostgresURL(_ location: String) -> Bool {
        location.hasPrefix("postgresql://") || location.hasPrefix("postgres://")
    }

    /// Creates a ledger in the PostgreSQL database at `url` (libpq `PQconnectdb`): applies the
    /// PostgreSQL migrations (schema/ledger-postgres), records origin and public key, and signs
    /// the checkpoint of the empty log. The database must not hold a ledger yet.
    ///
    /// The signing key is loaded from `keyPath` when that file exists (every host that writes to
    /// a shared ledger must sign with the same key: copy it there first), else a new Ed25519
    /// key is generated and saved there (PEM, mode 0600).
    public static func create(postgres url: String, keyPath: String, origin: String) throws(LedgerError) -> Ledger {
        guard !origin.isEmpty, !origin.contains("\n") else { throw .invalid("origin must be one non-empty line") }
        let db = try PostgresConnection(url: url)
        try migratePostgres(db)
        if try readMeta(db)["origin"] != nil {
            throw .io(path: db.redactedURL, message: "a ledger already exists in this database (join it with its signing key: lethe init --ledger URL --signing-key PEM)")
        }
        let fm = FileManager.default
        let createdKey = !fm.fileExists(atPath: keyPath)
        let key: Ed25519.PrivateKey
        do {
            if createdKey {
                key = try Ed25519.PrivateKey.generate()
                try key.save(path: keyPath)
            } else {
                key = try Ed25519.PrivateKey.load(path: keyPath)
            }
        } catch { throw .crypto(error.message) }
        do {
            let pub = key.publicKey
            try db.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
                if try db.scalar("SELECT 1 FROM ledger_meta WHERE key = 'origin'") != nil {
                    throw .io(path: db.redactedURL, message: "a ledger already exists in this database")
                }
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('origin', ?1)", [.text(origin)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('public_key', ?1)", [.text(pub.hex)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES (?1, ?2)", [.text(signingKeyMeta), .text(postgresKeyNote)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('created_at', ?1)", [.text(LedgerTime.string(Date()))])
                return .commit
            }
            let ledger = Ledger(db: db, path: db.redactedURL, origin: origin, publicKey: pub, signingKey: key)
            _ = try ledger.checkpoint()
            return ledger
        } catch {
            if createdKey { try? fm.removeItem(atPath: keyPath) }
            throw error
        }
    }

    /// `create(postgres:)`, or with `join` (the key at `keyPath` is the shared one) `open` when the
    /// database already holds a ledger: how a second host starts using a shared ledger.
    public static func createOrJoin(postgres url: String, keyPath: String, origin: String, join: Bool) throws(LedgerError) -> Ledger {
        if join {
            let probe = try PostgresConnection(url: url)
            if try probe.scalar("SELECT to_regclass('ledger_meta') IS NOT NULL")?.int == 1,
               try probe.scalar("SELECT 1 FROM ledger_meta WHERE key = 'origin'") != nil {
                return try open(postgres: url, keyPath: keyPath)
            }
        }
        return try create(postgres: url, keyPath: keyPath, origin: origin)
    }

    /// What `ledger_meta.signing_key` says for a PostgreSQL ledger: the key is host-local.
    static let postgresKeyNote = "host-local: .lethe/signing-key.pem of every writing host (the same key on all of them)"

    /// Opens the ledger in the PostgreSQL database at `url`, applying pending migrations. With
    /// `keyPath` (a readable PEM) the ledger can be written; the key must be the one whose public
    /// key the ledger recorded (all writers of a shared ledger sign with one key, so `verify`
    /// checks every checkpoint against it). Without it the ledger is read-only.
    public static func open(postgres url: String, keyPath: String?) throws(LedgerError) -> Ledger {
        let db = try PostgresConnection(url: url)
        try migratePostgres(db)
        let meta = try readMeta(db)
        guard meta["origin"] != nil else {
            throw .notFound("no ledger in \(db.redactedURL) (run 'lethe init --ledger URL' first)")
        }
        guard let origin = meta["origin"], let pubHex = meta["public_key"], let raw = Hex.decode(pubHex),
              let pub = Ed25519.PublicKey(raw: raw)
        else { throw .tampered("ledger_meta lacks a valid origin or public_key") }
        var key: Ed25519.PrivateKey?
        if let keyPath, FileManager.default.isReadableFile(atPath: keyPath) {
            do { key = try Ed25519.PrivateKey.load(path: keyPath) } catch { throw .crypto(error.message) }
            if let k = key, k.publicKey != pub {
                throw .crypto("the signing key \(keyPath) (public key \(k.publicKey.hex)) is not the key of the ledger in \(db.redactedURL) (\(pub.hex)); every host writing to a shared ledger needs the same key")
            }
        }
        return Ledger(db: db, path: db.redactedURL, origin: origin, publicKey: pub, signingKey: key)
    }

    /// The PostgreSQL counterpart of `migrate`: applies the embedded schema/ledger-postgres
    /// migrations not yet recorded in `schema_migrations` and (re)creates the views of
    /// schema/views-postgres.sql when they changed, each in one transaction holding the writers'
    /// advisory lock, so concurrent first opens from several hosts migrate once.
    static func migratePostgres(_ db: PostgresConnection) throws(LedgerError) {
        let known = EmbeddedPostgresSchema.migrations
        let viewsHash = SHA256.hash(EmbeddedPostgresSchema.views).hex
        if try db.scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")?.int == 1 {
            let applied = try db.rows("SELECT id FROM schema_migrations").compactMap { $0[0].string }
            if Set(applied) == Set(known.map(\.id)), applied.count == known.count,
               try db.scalar("SELECT value FROM ledger_meta WHERE key = 'views_sha256'")?.string == viewsHash {
                return
            }
        }
        try db.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
            try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)")
            let applied = try db.rows("SELECT id FROM schema_migrations ORDER BY id").compactMap { $0[0].string }
            let knownIDs = Set(known.map(\.id))
            if applied.contains(where: { !knownIDs.contains($0) }) || applied.count > known.count {
                throw .schemaTooNew(found: applied.count, known: known.count)
            }
            for m in known where !applied.contains(m.id) {
                try db.execute(m.sql)
                try db.run("INSERT INTO schema_migrations(id, applied_at) VALUES (?1, ?2)", [.text(m.id), .text(LedgerTime.string(Date()))])
            }
            if try db.scalar("SELECT value FROM ledger_meta WHERE key = 'views_sha256'")?.string != viewsHash {
                try db.execute(EmbeddedPostgresSchema.views)
                try db.run("""
                    INSERT INTO ledger_meta(key, value) VALUES ('views_sha256', ?1)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, [.text(viewsHash)])
            }
            return .commit
        }
    }
}

extension Ledger {
    /// A PostgreSQL URL with its password masked, or nil for anything else.
    public static func redactedURL(_ url: String) -> String? {
        isPostgresURL(url) ? PostgresConnection.redact(url) : nil
    }
}
