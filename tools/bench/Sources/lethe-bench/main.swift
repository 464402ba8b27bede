// lethe-bench: side-by-side benchmarks; results go to BENCHMARKS.md.
// Usage: lethe-bench matmul [--threads N] [--sizes 256,512,1024,2048]
//        lethe-bench train [--threads N] [--batch-size 128] [--archs cnn,mlp] [--rounds 3]
//        lethe-bench bases [--threads N] [--archs cnn,mlp] [--rounds 2] [--samples N]   (Gram pass + eig vs one epoch)
//        lethe-bench ledger [--requests 100000] [--batch 1000] [--postgres postgresql://...]
//        lethe-bench store-gen --out FILE [--bytes N] [--seed S]      (synthetic normal float32 safetensors)
//        lethe-bench store-codecs --file FILE [--limit BYTES]         (stored size per codec choice)
// The store's import/export comparison with zstd runs from tools/bench/store.py.
import CBLAS
import Foundation
import LetheTensor

BLASKernel.restartWithBetterKernelIfNeeded()

func now() -> Double { Date().timeIntervalSinceReferenceDate }

/// Best-of-`repeats` seconds for `body`, after one warm-up call.
func bestTime(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        body()
        best = min(best, now() - t0)
    }
    return best
}

func matmulBench(sizes: [Int], threads: Int) {
    BLASThreads.set(threads)
    print("matmul: Tensor.gemm wrapper vs direct cblas_sgemm, \(threads) thread(s), best of 5")
    print("| n | direct cblas_sgemm GFLOP/s | Tensor.gemm GFLOP/s | ratio |")
    print("|---:|---:|---:|---:|")
    for n in sizes {
        var rng = SeededGenerator(seed: UInt64(n))
        var a = Tensor<Float>(zeros: [n, n]), b = Tensor<Float>(zeros: [n, n])
        a.scalars.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        b.scalars.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        var c = Tensor<Float>(zeros: [n, n])
        var rawC = [Float](repeating: 0, count: n * n)
        let repeats = n >= 2048 ? 3 : 5
        let flops = 2.0 * Double(n) * Double(n) * Double(n)
        // Interleave the two so neither benefits from a warmer machine.
        var direct = Double.infinity, wrapper = Double.infinity
        for _ in 0..<2 {
            direct = min(direct, bestTime(repeats: repeats) {
                a.scalars.withUnsafeBufferPointer { pa in
                    b.scalars.withUnsafeBufferPointer { pb in
                        rawC.withUnsafeMutableBufferPointer { pc in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                                        1, pa.baseAddress, Int32(n), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                        }
                    }
                }
            })
            wrapper = min(wrapper, bestTime(repeats: repeats) { Tensor.gemm(a, b, into: &c) })
        }
        let gd = flops / direct / 1e9, gw = flops / wrapper / 1e9
        print("| \(n) | \(String(format: "%.1f", gd)) | \(String(format: "%.1f", gw)) | \(String(format: "%.3f", gw / gd)) |")
    }
}

let args = Array(CommandLine.arguments.dropFirst())
let which = args.first ?? "matmul"
func value(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let threads = value("--threads").flatMap(Int.init) ?? 2
switch which {
case "matmul":
    let sizes = value("--sizes").map { $0.split(separator: ",").compactMap { Int($0) } } ?? [256, 512, 1024, 2048]
    matmulBench(sizes: sizes, threads: threads)
case "train": trainBench(threads: threads, batchSize: value("--batch-size").flatMap(Int.init) ?? 128, archs: value("--archs").map { $0.split(separator: ",").map(String.init) } ?? ["cnn", "mlp"], rounds: value("--rounds").flatMap(Int.init) ?? 3)
case "bases": basesBench(threads: threads, archs: value("--archs").map { $0.split(separator: ",").map(String.init) } ?? ["mlp", "cnn"],
                         rounds: value("--rounds").flatMap(Int.init) ?? 2, samples: value("--samples").flatMap(Int.init))
case "ledger":
    try ledgerBench(requests: value("--requests").flatMap(Int.init) ?? 100_000, batch: value("--batch").flatMap(Int.init) ?? 1000,
                    postgres: value("--postgres"))
case "store-gen", "store-codecs":
    do {
        if which == "store-gen" {
            try storeGenerate(out: value("--out") ?? "normal.safetensors", bytes: value("--bytes").flatMap(Int.init) ?? (1 << 30),
                              seed: value("--seed").flatMap(UInt64.init) ?? 7)
        } else {
            try storeCodecs(file: value("--file") ?? "", limit: value("--limit").flatMap(Int.init) ?? (256 << 20),
                            level: value("--level").flatMap(Int32.init) ?? 3)
        }
    } catch {
        FileHandle.standardError.write("lethe-bench \(which): \(error)\n".data(using: .utf8) ?? Data())
        exit(1)
    }
case "layers": layerBreakdown(arch: value("--arch") ?? "cnn", threads: threads, batchSize: value("--batch-size").flatMap(Int.init) ?? 128, batches: value("--batches").flatMap(Int.init) ?? 20)
default:
    FileHandle.standardError.write("unknown benchmark '\(which)'; available: matmul, train, layers, ledger, store-gen, store-codecs\n".data(using: .utf8) ?? Data())
    exit(64)
}
