import LetheLedger
import LetheNN
import LetheStore
import LetheUnlearning

/// Errors of the engine: the lower layers' typed errors, plus the engine's own refusals,
/// each carrying what a user needs to act (ids, refs, digests).
public enum EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The object store failed.
    case store(StoreError)
    /// The ledger failed.
    case ledger(LedgerError)
    /// A dataset or model could not be loaded or built.
    case nn(NNError)
    /// The unlearning engine failed or refused its input.
    case unlearning(UnlearningError)
    /// The caller's input is not acceptable (unknown ids, wrong dataset, missing bases...).
    case invalid(String)
    /// The operation would break a compliance guarantee (e.g. resurface forgotten samples).
    case refused(String)
    /// The store and the ledger disagree in a way the engine cannot repair by itself.
    case inconsistent(String)

    /// One line naming the problem.
    public var description: String {
        switch self {
        case .store(let e): return e.description
        case .ledger(let e): return e.description
        case .nn(let e): return e.description
        case .unlearning(let e): return e.description
        case .invalid(let m): return m
        case .refused(let m): return "refused: \(m)"
        case .inconsistent(let m): return "store and ledger disagree: \(m)"
        }
    }

    /// Maps any error thrown by a lower layer to an engine error.
    static func from(_ error: any Error) -> EngineError {
        switch error {
        case let e as EngineError: return e
        case let e as StoreError: return .store(e)
        case let e as LedgerError: return .ledger(e)
        case let e as NNError: return .nn(e)
        case let e as UnlearningError: return .unlearning(e)
        default: return .invalid(String(describing: error))
        }
    }
}

/// Runs `body`, giving whatever it throws the engine's error type.
@inline(__always)
func lift<T>(_ body: () throws -> T) throws(EngineError) -> T {
    do { return try body() } catch { throw EngineError.from(error) }
}
