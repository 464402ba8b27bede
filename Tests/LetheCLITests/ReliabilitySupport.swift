import Foundation
import XCTest

/// Settings of the reliability harnesses, from the environment so the long variants
/// (tools/reliability/*) run the same tests with more rounds.
enum ReliabilitySettings {
    /// SIGKILLs per command (`LETHE_CRASH_KILLS`, default 10: the CI variant).
    static var kills: Int { Int(ProcessInfo.processInfo.environment["LETHE_CRASH_KILLS"] ?? "") ?? 10 }
    /// Seed of the kill moments (`LETHE_CRASH_SEED`).
    static var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["LETHE_CRASH_SEED"] ?? "") ?? 20_261_127 }
}

/// SplitMix64: a small seeded generator for kill moments and file contents.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Runs `lethe` as a child process and SIGKILLs it after a delay.
enum Killer {
    /// Starts `lethe args` in `cwd`, sleeps `delay` seconds, sends SIGKILL and waits.
    /// Returns true when the kill landed (the process died of the signal rather than exiting first).
    static func run(_ args: [String], cwd: URL, after delay: Double) throws -> Bool {
        let p = Process()
        p.executableURL = productsDirectory.appendingPathComponent("lethe")
        p.arguments = args
        p.currentDirectoryURL = cwd
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(useconds_t(max(0, delay) * 1e6))
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL
    }

    /// A kill moment for a command that takes about `duration` seconds when left alone: half the
    /// kills uniform over the whole run, half in its last 30 % (where objects are flushed, the
    /// ledger commits and the ref moves), a few just after it would have ended.
    static func moment(_ rng: inout SplitMix64, duration: Double) -> Double {
        rng.unit() < 0.5 ? rng.unit() * duration : duration * (0.7 + 0.4 * rng.unit())
    }
}

/// Seconds `body` took.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let t0 = Date()
    try body()
    return Date().timeIntervalSince(t0)
}

extension EngineStore {
    /// The version a store ref points at (read from `refs/<name>`), or nil.
    func storeRef(_ name: String) -> String? {
        guard let d = FileManager.default.contents(atPath: storeDir.appendingPathComponent("refs/\(name)").path) else { return nil }
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Rows of a `lethe query --json` (a failed query fails the test).
    func query(_ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try run(["query", "--json", sql])
        XCTAssertEqual(r.status, 0, "query \(sql): \(r.err)", file: file, line: line)
        return (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
    }

    /// `lethe fsck` and `lethe verify` both pass; returns a failure description or nil.
    func integrityProblem() throws -> String? {
        let f = try run(["fsck"])
        if f.status != 0 { return "fsck: \(f.out)\(f.err)" }
        let v = try run(["verify"])
        if v.status != 0 { return "verify: \(v.err)" }
        return nil
    }

    /// Every object file path under `objects/`.
    func objectFiles() -> [String] {
        let dir = storeDir.appendingPathComponent("objects").path
        return ((FileManager.default.enumerator(atPath: dir)?.allObjects as? [String]) ?? [])
            .filter { $0.split(separator: "/").count == 2 && !$0.contains(".tmp-") }.sorted()
    }
}

/// A safetensors file of F32 tensors (name, element count), filled from `rng`.
func safetensorsFile(_ tensors: [(String, Int)], rng: inout SplitMix64) -> [UInt8] {
    var filled: [(name: String, values: [Float])] = []
    for (name, n) in tensors {
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = Float(Int32(truncatingIfNeeded: rng.next() >> 32)) / Float(Int32.max) * 0.05 }
        filled.append((name, values))
    }
    return safetensorsBytes(filled)
}

/// The bytes of a safetensors file holding F32 tensors in this order (header padded with spaces
/// to a multiple of 8, as PyTorch's writer does).
func safetensorsBytes(_ tensors: [(name: String, values: [Float])]) -> [UInt8] {
    var header = "{"
    var offset = 0
    for (i, t) in tensors.enumerated() {
        header += (i == 0 ? "" : ",") + "\"\(t.name)\":{\"dtype\":\"F32\",\"shape\":[\(t.values.count)],\"data_offsets\":[\(offset),\(offset + 4 * t.values.count)]}"
        offset += 4 * t.values.count
    }
    header += "}"
    var h = Array(header.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    out.reserveCapacity(8 + h.count + offset)
    var len = UInt64(h.count)
    for _ in 0..<8 { out.append(UInt8(len & 0xFF)); len >>= 8 }
    out += h
    for t in tensors { t.values.withUnsafeBytes { out += $0 } }
    return out
}
