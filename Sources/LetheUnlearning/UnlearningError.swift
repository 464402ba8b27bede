import LetheNN

/// Errors of the unlearning engine.
public enum UnlearningError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Hyperparameters outside their domain (e.g. γ outside (0, 1]).
    case invalidParameter(String)
    /// A run that must not be committed (ρ above tolerance, collapse).
    case rejected(String)

    public var description: String {
        switch self {
        case .invalidParameter(let m): return "invalid parameter: \(m)"
        case .rejected(let m): return "unlearning rejected: \(m)"
        }
    }
}
