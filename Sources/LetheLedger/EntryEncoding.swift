import LetheCrypto

/// The canonical byte encoding of a log entry, derived from the table rows it covers.
///
/// An entry `seq` is the `log_entries` row plus every row of the logged tables whose
/// `entry_seq` is `seq`. Its bytes (the RFC 6962 leaf input; leaf hash = SHA-256(0x00 ‖ bytes)) are:
///
/// ```
/// entry  = "lethe-entry-v1" 0x0a
///          u64be(seq) str(kind) str(subject) str(created_at)
///          u32be(T)  T × table            -- only tables with at least one row, in the fixed order below
/// table  = str(table name) u32be(R) R × row   -- rows in primary-key order
/// row    = u32be(C) C × value                  -- the columns listed below, in that order
/// value  = 0x00                                 -- NULL
///        | 0x01 i64be                           -- INTEGER
///        | 0x02 u64be(IEEE 754 bits)            -- REAL
///        | 0x03 u32be(n) n bytes of UTF-8       -- TEXT
///        | 0x04 u32be(n) n bytes                -- BLOB
/// str(s) = u32be(n) n bytes of UTF-8
/// ```
///
/// Tables and columns (fixed for encoding version 1; a migration that adds a logged column
/// must introduce "lethe-entry-v2" for entries written after it):
/// see `EntryEncoding.tables`.
public enum EntryEncoding {
    /// A logged table: its name, the encoded columns and the primary-key order of its rows.
    public struct Table: Sendable {
        /// Table name.
        public let name: String
        /// Columns encoded, in order.
        public let columns: [String]
        /// ORDER BY clause giving the rows' order within an entry.
        public let order: String
    }

    /// The logged tables, in encoding order.
    public static let tables: [Table] = [
        Table(name: "ledger_datasets", columns: ["digest", "name", "sample_count", "source", "recorded_at"], order: "digest"),
        Table(name: "ledger_versions",
              columns: ["id", "created_at", "author", "message", "spec_digest", "dataset_digest", "bytes_stored", "bytes_logical"],
              order: "id"),
        Table(name: "ledger_version_parents", columns: ["version_id", "position", "parent_id"], order: "version_id, position"),
        Table(name: "ledger_version_tensors",
              columns: ["version_id", "name", "dtype", "shape", "bytes_logical", "bytes_stored", "codec", "chunk_count"],
              order: "version_id, name"),
        Table(name: "ledger_ref_moves", columns: ["id", "ref", "old_version", "new_version", "reason", "moved_at"], order: "id"),
        Table(name: "ledger_requests",
              columns: ["id", "requester", "legal_ground", "received_at", "deadline", "dataset_digest", "ref", "sample_count", "samples_root"],
              order: "id"),
        Table(name: "ledger_request_samples", columns: ["request_id", "position", "dataset_digest", "sample_id", "sample_hash"],
              order: "request_id, position"),
        Table(name: "ledger_request_outcomes",
              columns: ["request_id", "status", "decided_at", "version_before", "version_after", "method", "hyperparameters",
                        "seeds", "thread_count", "reason"],
              order: "request_id"),
        Table(name: "ledger_layer_stats", columns: ["request_id", "position", "layer", "d", "k", "gamma", "rho"],
              order: "request_id, position"),
        Table(name: "ledger_request_metrics", columns: ["request_id", "name", "before", "after"], order: "request_id, name"),
        Table(name: "ledger_phase_timings", columns: ["request_id", "position", "phase", "seconds"], order: "request_id, position"),
        Table(name: "ledger_rollbacks",
              columns: ["id", "ref", "from_version", "to_version", "mode", "reason", "result_version", "performed_at"], order: "id"),
        Table(name: "ledger_gc_deletions", columns: ["id", "object", "kind", "bytes", "reason", "deleted_at"], order: "id"),
        Table(name: "ledger_compliance_exceptions",
              columns: ["id", "kind", "reason", "author", "request_ids", "created_at"], order: "id"),
    ]

    /// The magic prefix of encoding version 1.
    public static let magic: [UInt8] = Array("lethe-entry-v1\n".utf8)

    /// SQL selecting one entry's rows of `table` (parameter: seq).
    static func selectForEntry(_ t: Table) -> String {
        "SELECT \(t.columns.joined(separator: ", ")) FROM \(t.name) WHERE entry_seq = ?1 ORDER BY \(t.order)"
    }

    /// SQL streaming all rows of `table` in (entry_seq, primary key) order; column 0 is entry_seq.
    static func selectAll(_ t: Table) -> String {
        "SELECT entry_seq, \(t.columns.joined(separator: ", ")) FROM \(t.name) ORDER BY entry_seq, \(t.order)"
    }

    /// Encodes an entry from its header and its rows per table (tables in `tables` order).
    static func encode(seq: Int64, kind: String, subject: String, createdAt: String, rows: [(table: String, rows: [[SQLValue]])]) -> [UInt8] {
        var out = magic
        out.reserveCapacity(256)
        appendU64(&out, UInt64(bitPattern: seq))
        appendString(&out, kind)
        appendString(&out, subject)
        appendString(&out, createdAt)
        let nonEmpty = rows.filter { !$0.rows.isEmpty }
        appendU32(&out, UInt32(nonEmpty.count))
        for t in nonEmpty {
            appendString(&out, t.table)
            appendU32(&out, UInt32(t.rows.count))
            for row in t.rows {
                appendU32(&out, UInt32(row.count))
                for v in row { appendValue(&out, v) }
            }
        }
        return out
    }

    static func appendU32(_ out: inout [UInt8], _ v: UInt32) {
        out.append(UInt8(v >> 24)); out.append(UInt8(v >> 16 & 0xff)); out.append(UInt8(v >> 8 & 0xff)); out.append(UInt8(v & 0xff))
    }

    static func appendU64(_ out: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(v >> UInt64(shift) & 0xff)) }
    }

    static func appendString(_ out: inout [UInt8], _ s: String) {
        let u = Array(s.utf8)
        appendU32(&out, UInt32(u.count)); out.append(contentsOf: u)
    }

    static func appendValue(_ out: inout [UInt8], _ v: SQLValue) {
        switch v {
        case .null: out.append(0)
        case .integer(let i): out.append(1); appendU64(&out, UInt64(bitPattern: i))
        case .real(let d): out.append(2); appendU64(&out, d.bitPattern)
        case .text(let s): out.append(3); appendString(&out, s)
        case .blob(let b): out.append(4); appendU32(&out, UInt32(b.count)); out.append(contentsOf: b)
        }
    }
}
