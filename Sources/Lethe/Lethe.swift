/// The Lethe engine facade: ties tensors, networks, unlearning, the store and the ledger.
public enum LetheInfo {
    /// The release of this build (semantic versioning).
    public static let version = "0.1.0"
    /// The on-disk store format this build writes.
    public static let storeFormat = 1
}
