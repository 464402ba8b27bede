import Foundation
import LetheNN
import LetheTensor
import LetheUnlearning

/// Cached bases (one eval-mode Gram pass over the training set in Float64 + one eigendecomposition
/// per layer) against one training epoch of the same model on the same data, interleaved rounds.
/// Issue 4 measured the reference code's Gram pass at 3.7 training epochs.
func basesBench(threads: Int, archs: [String], rounds: Int, samples: Int?) {
    BLASThreads.set(threads)
    Parallel.set(threads)
    AllocatorTuning.keepFreedMemory()
    var data: Dataset
    do { data = try DatasetLoader.load("fashion-mnist").train } catch {
        print("cannot load fashion-mnist: \(error)"); exit(1)
    }
    if let n = samples, n < data.count { data = data.subset(Array(0..<n)) }
    print("bases: one Gram pass (Float64, eval mode) + eigendecompositions vs one training epoch (batch 128, SGD),")
    print("Fashion-MNIST, \(data.count) samples, \(threads) thread(s), best of \(rounds) interleaved rounds")
    print("| model | layers (d) | training epoch s | bases s | of which Gram pass s | eigendecompositions s | bases / epoch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for arch in archs {
        do {
            let model = try Model(spec: ModelSpec(arch: arch), inputShape: data.sampleShape, classes: data.classCount, seed: 0)
            var epoch = Double.infinity, gram = Double.infinity, eig = Double.infinity
            var dims: [String] = []
            let config = TrainingConfig(epochs: 1, batchSize: 128, learningRate: 0.01, schedule: .constant, seed: 1)
            for _ in 0..<rounds {
                var t0 = now()
                _ = try Training.train(model, on: data, config: config)
                epoch = min(epoch, now() - t0)
                t0 = now()
                let grams = PGUEngine.layerGrams(model: model, images: data.images)
                let t1 = now()
                let bases = try PGUEngine.bases(model: model, grams: grams)
                gram = min(gram, t1 - t0)
                eig = min(eig, now() - t1)
                dims = bases.map { "\($0.layer) \($0.dimension)" }
            }
            print(String(format: "| %@ | %@ | %.1f | %.1f | %.1f | %.1f | %.2f |", arch, dims.joined(separator: ", "), epoch, gram + eig, gram, eig,
                         (gram + eig) / epoch))
        } catch {
            print("\(arch) failed: \(error)"); exit(1)
        }
    }
}
