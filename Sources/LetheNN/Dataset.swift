import LetheCrypto
import LetheTensor

/// A labelled image dataset held in memory as normalized Float32 NCHW.
///
/// Every sample keeps a stable id (its index in the source file) and the SHA-256 of its
/// canonical bytes: the label as Int64 little-endian followed by the sample's source bytes
/// (uint8 pixels for IDX/CSV/U8 sources, Float32 little-endian for F32 sources). Subsets and
/// splits keep ids and hashes, so a forget request can name samples by id and commit to them
/// by hash.
public struct Dataset: Sendable {
    /// Human-readable name (`fashion-mnist/train`).
    public var name: String
    /// Images (N, C, H, W), normalized.
    public var images: Tensor<Float>
    /// Labels in 0..<classCount.
    public var labels: [Int32]
    /// Index of each sample in its source.
    public var ids: [Int]
    /// SHA-256 of each sample's canonical bytes.
    public var sampleHashes: [Digest]
    /// Number of classes.
    public var classCount: Int

    /// Number of samples.
    public var count: Int { labels.count }
    /// Per-sample shape [C, H, W].
    public var sampleShape: [Int] { Array(images.shape.dropFirst()) }
    /// Scalars per sample.
    public var sampleSize: Int { sampleShape.reduce(1, *) }

    /// A dataset; counts must agree.
    public init(name: String, images: Tensor<Float>, labels: [Int32], ids: [Int], sampleHashes: [Digest], classCount: Int) throws(NNError) {
        guard images.rank >= 2, images.shape[0] == labels.count, ids.count == labels.count, sampleHashes.count == labels.count else {
            throw .invalidDataset("\(name): \(images.shape.first ?? 0) images, \(labels.count) labels, \(ids.count) ids, \(sampleHashes.count) hashes")
        }
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= classCount }) {
            throw .invalidDataset("\(name): label \(bad) outside 0..<\(classCount)")
        }
        self.name = name; self.images = images; self.labels = labels; self.ids = ids
        self.sampleHashes = sampleHashes; self.classCount = classCount
    }

    /// SHA-256 over the sample count, shape, and every (id, sample hash) in order: identifies the exact contents.
    public var digest: Digest {
        let h = SHA256()
        h.update("lethe-dataset-v1 n=\(count) shape=\(sampleShape) classes=\(classCount)\n")
        for (id, d) in zip(ids, sampleHashes) {
            var le = UInt64(id).littleEndian
            withUnsafeBytes(of: &le) { h.update($0) }
            h.update(d.bytes)
        }
        return h.finalize()
    }

    /// The samples at `indices` (positions in this dataset), keeping ids and hashes.
    public func subset(_ indices: [Int], name: String? = nil) -> Dataset {
        let s = sampleSize
        var x = Tensor<Float>.zeroed([indices.count] + sampleShape)
        withPointer(images) { src in
            withMutablePointer(&x) { dst in
                for (o, i) in indices.enumerated() { (dst + o * s).update(from: src + i * s, count: s) }
            }
        }
        // Counts agree by construction.
        return Dataset(unchecked: name ?? self.name, images: x, labels: indices.map { labels[$0] },
                       ids: indices.map { ids[$0] }, sampleHashes: indices.map { sampleHashes[$0] }, classCount: classCount)
    }

    init(unchecked name: String, images: Tensor<Float>, labels: [Int32], ids: [Int], sampleHashes: [Digest], classCount: Int) {
        self.name = name; self.images = images; self.labels = labels; self.ids = ids
        self.sampleHashes = sampleHashes; self.classCount = classCount
    }

    /// Splits each class with a seeded shuffle: `fraction` of every class goes to the first part,
    /// the rest to the second; both keep source order.
    public func stratifiedSplit(fraction: Double, seed: UInt64) -> (first: Dataset, second: Dataset) {
        var root = SeededGenerator(seed: seed)
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, y) in labels.enumerated() { byClass[Int(y)].append(i) }
        var first: [Int] = [], second: [Int] = []
        for c in 0..<classCount {
            var g = root.split(UInt64(c))
            let members = byClass[c]
            let perm = g.permutation(members.count)
            let take = Int((Double(members.count) * fraction).rounded())
            for (k, p) in perm.enumerated() { if k < take { first.append(members[p]) } else { second.append(members[p]) } }
        }
        first.sort(); second.sort()
        return (subset(first, name: name + "/a"), subset(second, name: name + "/b"))
    }

    /// `count` samples stratified per class with `seed` (each class rounded to its share), and the rest:
    /// a validation split kept out of training.
    public func holdingOut(_ count: Int, seed: UInt64) -> (heldOut: Dataset, rest: Dataset) {
        let (heldOut, rest) = stratifiedSplit(fraction: Double(count) / Double(self.count), seed: seed)
        return (heldOut, rest)
    }

    /// Batches of positions: a seeded permutation of 0..<count (`shuffleSeed` non-nil) or source order.
    public func batchIndices(batchSize: Int, shuffleSeed: UInt64?) -> [[Int]] {
        precondition(batchSize > 0, "batch size must be positive")
        var order = Array(0..<count)
        if let seed = shuffleSeed { var g = SeededGenerator(seed: seed); order = g.permutation(count) }
        return stride(from: 0, to: count, by: batchSize).map { Array(order[$0..<min($0 + batchSize, count)]) }
    }

    /// Gathers samples into a batch tensor (B, C, H, W) with their labels.
    public func batch(_ indices: [Int]) -> (images: Tensor<Float>, labels: [Int32]) {
        let s = sampleSize
        var labelsOut = [Int32](repeating: 0, count: indices.count)
        let x = withPointer(images) { src in
            Tensor<Float>.filled(shape: [indices.count] + sampleShape) { dst in
                for (o, i) in indices.enumerated() { (dst + o * s).update(from: src + i * s, count: s); labelsOut[o] = labels[i] }
            }
        }
        return (x, labelsOut)
    }

    /// Positions of samples whose source id is in `ids`.
    public func positions(ofIDs wanted: Set<Int>) -> [Int] {
        ids.enumerated().filter { wanted.contains($0.element) }.map(\.offset)
    }
}

/// Per-channel standardization x ← (x − mean) / std applied after scaling pixels to [0, 1].
public struct Normalization: Sendable, Equatable, Codable {
    /// Mean per channel.
    public var mean: [Float]
    /// Standard deviation per channel.
    public var std: [Float]
}

/// A train/test pair from one source, with an optional validation split.
public struct DatasetSplits: Sendable {
    /// Training samples.
    public var train: Dataset
    /// Held-out test samples.
    public var test: Dataset
    /// The normalization applied to both (computed on train).
    public var normalization: Normalization?
    /// Samples of the training distribution kept out of `train` (`SOURCE:N+V`): what a model
    /// scores on training-like data it never saw. When present it is the held-out set PGU's
    /// stopping rule compares with, and `test` stays whole.
    public var validation: Dataset?

    /// Splits from their parts.
    public init(train: Dataset, test: Dataset, normalization: Normalization?, validation: Dataset? = nil) {
        self.train = train; self.test = test; self.normalization = normalization; self.validation = validation
    }
}
