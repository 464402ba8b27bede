import Dispatch

/// A value handed across threads by a caller who guarantees no data race on it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}

/// Runs `body(k)` for every lane `k` in `0..<lanes` (`DispatchQueue.concurrentPerform`) and
/// returns when all are done. Each lane must touch only its own state (its `ObjectStore`,
/// buffers and result slot); that is what makes the unchecked hand-over below sound.
func parallelLanes(_ lanes: Int, _ body: (Int) -> Void) {
    if lanes <= 1 { if lanes == 1 { body(0) }; return }
    withoutActuallyEscaping(body) { b in
        let box = UncheckedSendable(value: b)
        DispatchQueue.concurrentPerform(iterations: lanes) { k in box.value(k) }
    }
}
