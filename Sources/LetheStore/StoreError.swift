/// Errors of the content-addressed store, carrying the path or id involved.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No store found or the store is malformed.
    case notAStore(String)
    /// An object that is missing or whose content does not hash to its id.
    case corruptObject(String)
    /// Input that is not acceptable (malformed safetensors, bad names).
    case invalidInput(String)
    /// A failed system call, naming it.
    case io(String)

    public var description: String {
        switch self {
        case .notAStore(let m): return "not a Lethe store: \(m)"
        case .corruptObject(let m): return "corrupt object: \(m)"
        case .invalidInput(let m): return "invalid input: \(m)"
        case .io(let m): return "I/O error: \(m)"
        }
    }
}
