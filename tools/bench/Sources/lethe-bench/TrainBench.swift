// `lethe-bench train`: training throughput of LetheNN vs PyTorch CPU, side by side.
import CBLAS
import Foundation
import LetheNN
import LetheTensor

/// One LetheNN measurement.
struct LetheTrainResult {
    var samplesPerSecond: Double
    var gemmShare: Double
    var gemmGFLOPS: Double
}

/// Times `batches` SGD steps (gather, forward, loss, backward, step) at batch size `batchSize`, best of `repeats`.
func letheTrainThroughput(arch: String, data: Dataset, batches: Int, batchSize: Int, repeats: Int) throws -> LetheTrainResult {
    let model = try Model(spec: ModelSpec(arch: arch), inputShape: data.sampleShape, classes: data.classCount, seed: 0)
    let sgd = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
    let order = data.batchIndices(batchSize: batchSize, shuffleSeed: 1)
    func step(_ i: Int) throws {
        let (x, y) = data.batch(order[i % (order.count - 1)])
        let logits = try model.forward(x, mode: .train)
        let ce = CrossEntropy.compute(logits: logits, labels: y)
        model.zeroGradients()
        model.backward(ce.dLogits)
        sgd.step(model.parameters)
    }
    for i in 0..<5 { try step(i) }
    var best = LetheTrainResult(samplesPerSecond: 0, gemmShare: 0, gemmGFLOPS: 0)
    for _ in 0..<repeats {
        GemmProfiler.reset(); GemmProfiler.enabled = true
        let t0 = now()
        for i in 0..<batches { try step(i) }
        let seconds = now() - t0
        GemmProfiler.enabled = false
        let sps = Double(batches * batchSize) / seconds
        if sps > best.samplesPerSecond {
            best = LetheTrainResult(samplesPerSecond: sps, gemmShare: GemmProfiler.seconds / seconds,
                                    gemmGFLOPS: GemmProfiler.flops / GemmProfiler.seconds / 1e9)
        }
    }
    return best
}

/// Runs tools/bench/train_torch.py and returns its samples/s, or nil when torch is unavailable.
func torchTrainThroughput(arch: String, batches: Int, batchSize: Int, threads: Int, repeats: Int) -> (Double, String)? {
    if ProcessInfo.processInfo.environment["LETHE_BENCH_NO_TORCH"] != nil { return nil }  // profiling Lethe alone
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../train_torch.py").standardizedFileURL.path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, "--arch", arch, "--batches", String(batches), "--batch-size", String(batchSize),
                   "--threads", String(threads), "--repeats", String(repeats)]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0,
          let obj = try? JSONSerialization.jsonObject(with: out) as? [String: Any],
          let sps = obj["samples_per_second"] as? Double else { return nil }
    return (sps, obj["torch"] as? String ?? "?")
}

/// sgemm ceiling: best GFLOP/s of an n×n×n `cblas_sgemm` at the current thread count.
func sgemmCeiling(n: Int = 1024) -> Double {
    var rng = SeededGenerator(seed: 9)
    var a = [Float](repeating: 0, count: n * n), b = a, c = a
    a.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
    b.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
    let t = bestTime(repeats: 5) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
    }
    return 2 * Double(n * n * n) / t / 1e9
}

func trainBench(threads: Int, batchSize: Int, archs: [String], rounds: Int) {
    BLASThreads.set(threads)
    AllocatorTuning.keepFreedMemory()
    Parallel.set(threads)
    let data: Dataset
    do { data = try DatasetLoader.load("fashion-mnist").train } catch {
        print("cannot load fashion-mnist: \(error)"); exit(1)
    }
    print("train: samples/s (gather + forward + loss + backward + SGD step), Fashion-MNIST, batch \(batchSize), \(threads) thread(s);")
    print("best of \(rounds) interleaved rounds per side")
    var rows: [String] = []
    for arch in archs {
        let batches = arch == "mlp" ? 200 : 40
        var lethe = LetheTrainResult(samplesPerSecond: 0, gemmShare: 0, gemmGFLOPS: 0)
        var torch = 0.0, torch1 = 0.0, lethe1 = 0.0, version = "n/a", ceiling = 0.0
        for _ in 0..<rounds {
            do {
                let r = try letheTrainThroughput(arch: arch, data: data, batches: batches, batchSize: batchSize, repeats: 1)
                if r.samplesPerSecond > lethe.samplesPerSecond { lethe = r }
            } catch { print("lethe \(arch) failed: \(error)"); exit(1) }
            if let (sps, v) = torchTrainThroughput(arch: arch, batches: batches, batchSize: batchSize, threads: threads, repeats: 1) {
                torch = max(torch, sps); version = v
            }
            // Context: PyTorch's OpenMP threads spin at barriers and collapse when the machine is
            // oversubscribed, so its single-thread figure is reported too.
            if let (sps, _) = torchTrainThroughput(arch: arch, batches: batches, batchSize: batchSize, threads: 1, repeats: 1) {
                torch1 = max(torch1, sps)
            }
            BLASThreads.set(1); Parallel.set(1)
            if let r = try? letheTrainThroughput(arch: arch, data: data, batches: batches, batchSize: batchSize, repeats: 1) {
                lethe1 = max(lethe1, r.samplesPerSecond)
            }
            BLASThreads.set(threads); Parallel.set(threads)
            ceiling = max(ceiling, sgemmCeiling())
        }
        let ratio = torch > 0 ? String(format: "%.2f×", lethe.samplesPerSecond / torch) : "n/a"
        let ratio1 = torch1 > 0 ? String(format: "%.2f×", lethe1 / torch1) : "n/a"
        rows.append(String(format: "| %@ | %.0f | %@ | %@ | %.0f | %@ | %@ | %.0f%% | %.1f | %.1f | %.0f%% |", arch, lethe.samplesPerSecond,
                           torch > 0 ? String(format: "%.0f", torch) : "n/a", ratio, lethe1,
                           torch1 > 0 ? String(format: "%.0f", torch1) : "n/a", ratio1, lethe.gemmShare * 100,
                           lethe.gemmGFLOPS, ceiling, lethe.gemmGFLOPS / ceiling * 100))
        _ = version
    }
    print("| model | Lethe \(threads)T samples/s | PyTorch \(torchVersionLabel()) \(threads)T samples/s | Lethe/PyTorch | Lethe 1T | PyTorch 1T | Lethe/PyTorch 1T | Lethe GEMM share (\(threads)T) | Lethe GEMM GFLOP/s | sgemm 1024³ ceiling GFLOP/s (\(threads)T) | of ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows { print(r) }
    if let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) {
        print("load average at the end (1/5/15 min): \(load.split(separator: " ").prefix(3).joined(separator: " "))")
    }
}

func torchVersionLabel() -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import torch; print(torch.__version__)"]
    let pipe = Pipe()
    p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return "" }
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// `lethe-bench layers`: per-layer forward/backward milliseconds of one training step (Lethe only).
func layerBreakdown(arch: String, threads: Int, batchSize: Int, batches: Int) {
    BLASThreads.set(threads)
    AllocatorTuning.keepFreedMemory()
    Parallel.set(threads)
    guard let data = try? DatasetLoader.load("fashion-mnist").train,
          let model = try? Model(spec: ModelSpec(arch: arch), inputShape: data.sampleShape, classes: data.classCount) else {
        print("cannot set up \(arch)"); exit(1)
    }
    let order = data.batchIndices(batchSize: batchSize, shuffleSeed: 1)
    var fwd = [Double](repeating: 0, count: model.layers.count), bwd = fwd, gf = fwd, gb = fwd
    GemmProfiler.enabled = true
    defer { GemmProfiler.enabled = false }
    for i in 0..<(batches + 3) {
        let (x, y) = data.batch(order[i])
        let ctx = ForwardContext(mode: .train)
        var h = x
        for (j, l) in model.layers.enumerated() {
            let t0 = now(), g0 = GemmProfiler.seconds
            h = l.layer.forward(h, ctx)
            if i >= 3 { fwd[j] += now() - t0; gf[j] += GemmProfiler.seconds - g0 }
        }
        var d = CrossEntropy.compute(logits: h, labels: y).dLogits
        model.zeroGradients()
        for j in stride(from: model.layers.count - 1, through: 0, by: -1) {
            let t0 = now(), g0 = GemmProfiler.seconds
            d = model.layers[j].layer.backward(d)
            if i >= 3 { bwd[j] += now() - t0; gb[j] += GemmProfiler.seconds - g0 }
            if d.count == 0 { break }
        }
    }
    print("| layer | forward ms | of which GEMM | backward ms | of which GEMM |")
    print("|---|---:|---:|---:|---:|")
    let b = Double(batches)
    for (j, l) in model.layers.enumerated() {
        print(String(format: "| %@ %@ | %.2f | %.2f | %.2f | %.2f |", l.name, String(describing: type(of: l.layer)),
                     fwd[j] * 1e3 / b, gf[j] * 1e3 / b, bwd[j] * 1e3 / b, gb[j] * 1e3 / b))
    }
}
