#if canImport(Glibc)
import Glibc
#endif

/// A progress reporter on standard error.
///
/// On a terminal it redraws one bar line with `\r`; otherwise it prints a plain line
/// at most every `interval` seconds (and at the end), so logs stay readable.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let isTerminal: Bool
    private let interval: Double
    private let sink: (String) -> Void
    private var lastDraw: Double = -1
    private var finished = false

    /// A bar for `total` units; `sink` defaults to stderr and `isTerminal` to `isatty(2)`.
    public init(_ label: String, total: Int, interval: Double = 5,
                isTerminal: Bool = StandardStream.stderrIsTerminal,
                sink: @escaping (String) -> Void = { StandardStream.write($0, fd: 2) }) {
        self.label = label; self.total = max(total, 1); self.interval = interval
        self.isTerminal = isTerminal; self.sink = sink
    }

    /// Reports `done` units finished, with an optional suffix (e.g. "loss 0.31").
    public func update(_ done: Int, _ suffix: String = "") {
        let now = ProgressBar.monotonicSeconds()
        let complete = done >= total
        if isTerminal {
            if !complete && now - lastDraw < 0.1 { return }
            lastDraw = now
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            sink("\r\(label) [\(bar)] \(done)/\(total) \(suffix)\u{1B}[K")
            if complete && !finished { finished = true; sink("\n") }
        } else {
            if !complete && lastDraw >= 0 && now - lastDraw < interval { return }
            if complete && finished { return }
            lastDraw = now
            if complete { finished = true }
            let pct = done * 100 / total
            sink("\(label): \(done)/\(total) (\(pct)%)\(suffix.isEmpty ? "" : " " + suffix)\n")
        }
    }

    /// Seconds on a monotonic clock (`clock_gettime(CLOCK_MONOTONIC)`).
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
