/// Errors of the content-addressed store, carrying the path, id or name involved.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No store found or the store is malformed.
    case notAStore(String)
    /// An object whose stored bytes do not decode or do not hash to its id.
    case corruptObject(String)
    /// An object that should exist but does not.
    case missingObject(String)
    /// A version, ref or id prefix that names nothing (or more than one thing).
    case unknownRevision(String)
    /// Input that is not acceptable (malformed safetensors, bad names, non-finite weights).
    case invalidInput(String)
    /// A failed system call, naming it.
    case io(String)

    public var description: String {
        switch self {
        case .notAStore(let m): return "not a Lethe store: \(m)"
        case .corruptObject(let m): return "corrupt object: \(m)"
        case .missingObject(let m): return "missing object: \(m)"
        case .unknownRevision(let m): return "unknown revision: \(m)"
        case .invalidInput(let m): return "invalid input: \(m)"
        case .io(let m): return "I/O error: \(m)"
        }
    }
}

/// Runs `body` (whose closures can only throw `StoreError` but are typed `rethrows` by the
/// standard library) and gives its error back its type.
@inline(__always)
func typed<R>(_ body: () throws -> R) throws(StoreError) -> R {
    do { return try body() } catch let e as StoreError { throw e } catch { throw .io(String(describing: error)) }
}
