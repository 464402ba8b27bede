/// Errors of the neural-network module, each carrying what a user needs to fix the input.
public enum NNError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A model spec that cannot be built (unknown layer, mismatched shapes).
    case invalidSpec(String)
    /// A dataset file that cannot be read (bad magic, truncated, counts differ).
    case invalidDataset(String)
    /// A tensor whose shape does not match what the layer expects.
    case shapeMismatch(String)
    /// A state_dict that does not fit the model (missing, unexpected or mis-shaped tensors).
    case invalidStateDict(String)
    /// A training configuration that cannot run (bad batch size, learning rate, schedule).
    case invalidConfiguration(String)
    /// A file that could not be read or written (the call and path are in the message).
    case io(String)
    /// Training or unlearning that left non-finite weights (what ran and what to lower are in the message).
    case diverged(String)

    public var description: String {
        switch self {
        case .invalidSpec(let m): return "invalid model spec: \(m)"
        case .invalidDataset(let m): return "invalid dataset: \(m)"
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .invalidStateDict(let m): return "invalid state_dict: \(m)"
        case .invalidConfiguration(let m): return "invalid training configuration: \(m)"
        case .io(let m): return "I/O error: \(m)"
        case .diverged(let m): return "diverged: \(m)"
        }
    }
}
