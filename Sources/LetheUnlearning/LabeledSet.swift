import LetheNN
import LetheTensor

/// Images and labels held in memory for unlearning and evaluation.
public struct LabeledSet: Sendable {
    /// Images, (N, ...) row-major.
    public var images: Tensor<Float>
    /// Class labels.
    public var labels: [Int]

    /// A set; the label count must equal the image count.
    public init(images: Tensor<Float>, labels: [Int]) {
        precondition(images.shape.first == labels.count, "\(labels.count) labels for \(images.shape.first ?? 0) images")
        self.images = images; self.labels = labels
    }

    /// Number of samples.
    public var count: Int { labels.count }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledSet {
        let per = images.count / max(count, 1)
        var data = [Float](); data.reserveCapacity(indices.count * per)
        images.scalars.withUnsafeBufferPointer { src in
            for i in indices { data.append(contentsOf: src[(i * per)..<((i + 1) * per)]) }
        }
        var shape = images.shape; shape[0] = indices.count
        return LabeledSet(images: Tensor(shape: shape, scalars: data), labels: indices.map { labels[$0] })
    }

    /// A seeded subsample of at most `n` samples (all of them, in order, when n ≥ count).
    public func subsample(_ n: Int, seed: UInt64) -> LabeledSet {
        guard n < count else { return self }
        var rng = SeededGenerator(seed: seed)
        return subset(Array(rng.permutation(count).prefix(n)).sorted())
    }

    /// Samples whose label satisfies `keep`.
    public func filter(_ keep: (Int) -> Bool) -> LabeledSet {
        subset(labels.indices.filter { keep(labels[$0]) })
    }
}

extension UnlearnableModel {
    /// Top-1 accuracy on a set (eval mode); 0 for an empty set.
    public func accuracy(on set: LabeledSet, batchSize: Int = Training.evaluationBatchSize) -> Double {
        guard set.count > 0 else { return 0 }
        let predicted = predictions(on: set, batchSize: batchSize)
        return Double(zip(predicted, set.labels).filter { $0 == $1 }.count) / Double(set.count)
    }

    /// Top-1 predicted class of every sample (eval mode; the first maximum on ties).
    public func predictions(on set: LabeledSet, batchSize: Int = Training.evaluationBatchSize) -> [Int] {
        guard set.count > 0 else { return [] }
        let z = logits(set.images, batchSize: batchSize)
        let c = z.shape[1]
        return z.scalars.withUnsafeBufferPointer { p in
            (0..<set.count).map { i in
                var best = 0
                for j in 1..<c where p[i * c + j] > p[i * c + best] { best = j }
                return best
            }
        }
    }
}
