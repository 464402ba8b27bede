import Foundation
import LetheNN
import LetheTensor
import XCTest

/// Directory of committed fixtures, found from this file's path (not SwiftPM resources).
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// SplitMix64 finalizer of (t << 32 | j), top 24 bits, mapped to [-1, 1) — tools/fixtures/make_golden.py's `splitmix_uniform`.
func splitmixUniform(_ t: UInt64, _ n: Int) -> [Double] {
    (0..<n).map { j in
        var z = (t << 32) | UInt64(j)
        z = z &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        return 2 * (Double(z >> 40) * 0x1p-24) - 1
    }
}

/// The formula state of make_golden.py's `formula_state`, in the model's state_dict order.
func formulaState(_ model: Model) -> [NamedTensor] {
    model.stateDict().enumerated().map { t, entry in
        if entry.name.hasSuffix("num_batches_tracked") { return NamedTensor(name: entry.name, int64: [3], shape: []) }
        let u = splitmixUniform(UInt64(t), entry.elementCount)
        let x: [Double]
        if entry.name.hasSuffix("running_mean") { x = u.map { 0.1 * $0 } }
        else if entry.name.hasSuffix("running_var") { x = u.map { 1 + 0.5 * ($0 + 1) / 2 } }
        else if entry.shape.count >= 2 {
            let fan = entry.shape.dropFirst().reduce(1, *)
            let bound = (3.0 / Double(fan)).squareRoot()
            x = u.map { $0 * bound }
        } else if entry.name.hasSuffix("weight") { x = u.map { 1 + 0.1 * $0 } }
        else { x = u.map { 0.1 * $0 } }
        return NamedTensor(name: entry.name, Tensor(shape: entry.shape, scalars: x.map { Float($0) }))
    }
}

/// Max |a − b| and that difference relative to max |b| (the per-tensor error reported on failure).
func compare(_ a: [Float], _ b: [Float]) -> (maxAbs: Double, relative: Double) {
    guard a.count == b.count else { return (.infinity, .infinity) }
    var maxAbs = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        maxAbs = max(maxAbs, abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return (maxAbs, maxAbs / max(scale, 1e-6))
}

/// Loads a fixture as a name → tensor map plus metadata.
func loadFixture(_ file: String) throws -> (tensors: [String: NamedTensor], metadata: [String: String]) {
    let (header, tensors) = try Safetensors.read(path: fixturesDirectory + "/" + file)
    var map: [String: NamedTensor] = [:]
    for t in tensors { map[t.name] = t }
    var meta: [String: String] = [:]
    for (k, v) in header.metadata ?? [] { meta[k] = v }
    return (map, meta)
}
