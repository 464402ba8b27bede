import Dispatch

/// Splits elementwise and per-image loops of the layers across threads (`DispatchQueue.concurrentPerform`).
///
/// Every chunk writes a disjoint part of its output and no chunk reduces across others, so
/// results do not depend on the thread count. GEMMs are threaded by OpenBLAS instead.
public enum Parallel {
    /// Threads used for the layers' own loops (1 = serial). Set it with `set(_:)`.
    nonisolated(unsafe) public private(set) static var threads = 1

    /// Sets the layer-loop thread count (the CLI sets it together with `BLASThreads`).
    public static func set(_ n: Int) { threads = max(1, n) }

    struct UncheckedBox<T>: @unchecked Sendable { let value: T }

    /// Runs `body` on contiguous chunks covering 0..<n, in parallel when there is enough work
    /// (`n · costPerItem` ≥ 32 768 scalar operations per extra thread).
    @inline(__always)
    static func chunks(_ n: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = min(threads, n, max(1, n * costPerItem / 32_768))
        if t <= 1 { body(0..<n); return }
        withoutActuallyEscaping(body) { escaping in
            let box = UncheckedBox(value: escaping)
            DispatchQueue.concurrentPerform(iterations: t) { i in
                box.value((n * i / t)..<(n * (i + 1) / t))
            }
        }
    }
}
