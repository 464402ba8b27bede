import Foundation
import LetheStore
import LetheTensor
import LetheUnlearning

/// One shard's partial Gram matrices: G_l = Σ x xᵀ over the input rows of every projectable layer
/// for the training samples of shard I of N (`positions(shard:of:samples:)`: about n/N each).
///
/// Gram matrices are sums over samples, so the N partials of a version add up to the Gram of one
/// pass over the whole split; any batch system (a Slurm array, Kubernetes jobs, GNU parallel) can
/// compute the shards, and `Repository.reduceBases` sums them and eigendecomposes. A partial is a
/// safetensors file: one F64 (d × d) tensor per layer, and metadata naming the version, dataset
/// digest, shard, sample count and each layer's row count, so the reduction can refuse a mix.
public struct PartialGram: Sendable {
    /// The version whose weights produced the layer inputs (hex id).
    public var version: String
    /// Digest of the training split.
    public var datasetDigest: String
    /// This shard's index I (0-based) and the shard count N.
    public var shard: Int, shardCount: Int
    /// Training samples in this shard.
    public var samples: Int
    /// Per layer: the partial Gram and its row count.
    public var grams: [String: GramAccumulator]

    static let format = "lethe-partial-gram-v1"

    /// Samples per forward batch of the Gram pass (`PGUEngine.layerGrams`' default).
    public static let batch = 256

    /// The samples (positions in the training split) of shard `index` of `count` over `n` samples:
    /// about n/count each, with boundaries on multiples of `batch`, so every sample goes through
    /// the same forward batch as in one pass (GEMM rounding depends on the batch) and the summed
    /// partials differ from one pass only by the order of the Float64 additions.
    public static func positions(shard index: Int, of count: Int, samples n: Int) -> Range<Int> {
        func boundary(_ i: Int) -> Int { i >= count ? n : (i * n / count) / batch * batch }
        return boundary(index)..<boundary(index + 1)
    }

    /// The partial as safetensors bytes.
    public func encoded() -> [UInt8] {
        var tensors: [NamedTensor] = []
        var metadata: [(String, String)] = [("format", PartialGram.format), ("version", version), ("dataset_digest", datasetDigest),
                                            ("shard", "\(shard)/\(shardCount)"), ("samples", String(samples))]
        for name in grams.keys.sorted() {
            guard let g = grams[name] else { continue }
            let m = g.matrix
            let data = m.scalars.withUnsafeBytes { Array($0) }
            tensors.append(NamedTensor(name: name, dtype: .f64, shape: [g.dimension, g.dimension], data: data))
            metadata.append(("rows." + name, String(g.rowCount)))
        }
        return Safetensors.encode(tensors, metadata: metadata)
    }

    /// Reads a partial written by `encoded()`; `path` names it in errors.
    public static func decode(path: String) throws(EngineError) -> PartialGram {
        let header: SafetensorsHeader, tensors: [NamedTensor]
        do { (header, tensors) = try Safetensors.read(path: path) } catch { throw .invalid("\(path): \(error)") }
        var meta: [String: String] = [:]
        for (k, v) in header.metadata ?? [] { meta[k] = v }
        guard meta["format"] == format else { throw .invalid("\(path) is not a partial Gram file (lethe bases --shard writes them)") }
        let parts = (meta["shard"] ?? "").split(separator: "/").compactMap { Int($0) }
        guard let version = meta["version"], let digest = meta["dataset_digest"], parts.count == 2,
              let samples = meta["samples"].flatMap(Int.init) else {
            throw .invalid("\(path): partial Gram metadata is incomplete")
        }
        var grams: [String: GramAccumulator] = [:]
        for t in tensors {
            guard t.dtype == .f64, t.shape.count == 2, t.shape[0] == t.shape[1], t.data.count == t.shape[0] * t.shape[0] * 8,
                  let rows = meta["rows." + t.name].flatMap(Int.init) else {
                throw .invalid("\(path): tensor \(t.name) is not a square F64 Gram matrix with a row count")
            }
            let values = t.data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            grams[t.name] = GramAccumulator(matrix: Tensor(shape: t.shape, scalars: values), rowCount: rows)
        }
        return PartialGram(version: version, datasetDigest: digest, shard: parts[0], shardCount: parts[1], samples: samples, grams: grams)
    }
}

extension Repository {
    /// Computes shard `index` of `count` of the ref's version's bases pass: the partial Gram matrices
    /// over that shard's training samples (eval mode). Reads only; nothing in the store changes.
    public func partialBases(ref: String, data: LoadedData, shard index: Int, of count: Int, threads: Int,
                             progress: ((String) -> Void)? = nil) throws(EngineError) -> PartialGram {
        guard count >= 1, index >= 0, index < count else { throw .invalid("shard \(index)/\(count): expected I/N with 0 <= I < N") }
        let version = try head(ref)
        try checkDataset(version, data)
        Repository.setThreads(threads)
        let model = try loadModel(version, data: data)
        let train = data.splits.train
        // Shards cut the samples the version still holds (forgotten ones left out, as in one pass).
        let kept = try retainedPositions(of: version, data: data)
        guard count <= kept.count else { throw .invalid("\(count) shards for \(kept.count) training samples") }
        let range = PartialGram.positions(shard: index, of: count, samples: kept.count)
        progress?("partial Gram of \(model.unlearningLayers.count) layers over samples \(range.lowerBound)..<\(range.upperBound) of \(kept.count) (shard \(index)/\(count))")
        let images = train.subset(range.map { kept[$0] }).images
        let grams = PGUEngine.layerGrams(model: model, images: images, batchSize: PartialGram.batch)
        return PartialGram(version: version.hex, datasetDigest: data.digest, shard: index, shardCount: count, samples: range.count, grams: grams)
    }

    /// Sums the N partial Gram files of the ref's version, eigendecomposes, and stores the bases as
    /// `storeBases` does (a child version with the same weights; the ref moves to it). Refuses
    /// partials of another version or dataset, a missing or repeated shard, or layers that do not
    /// match the model.
    public func reduceBases(ref: String, data: LoadedData, partials: [PartialGram], threads: Int,
                            progress: ((String) -> Void)? = nil) throws(EngineError) -> (write: VersionWrite, bases: [LayerBasis]) {
        let parent = try head(ref)
        try checkDataset(parent, data)
        guard let first = partials.first else { throw .invalid("no partial Gram files to reduce") }
        let n = first.shardCount
        for p in partials {
            guard p.version == parent.hex else {
                throw .invalid("shard \(p.shard)/\(p.shardCount) was computed for version \(p.version.prefix(12)), but \(ref) is at \(parent.short)")
            }
            guard p.datasetDigest == data.digest else { throw .invalid("shard \(p.shard)/\(p.shardCount) was computed on another dataset (digest \(p.datasetDigest.prefix(16))…)") }
            guard p.shardCount == n else { throw .invalid("partials of \(n) and of \(p.shardCount) shards cannot be mixed") }
        }
        let shards = partials.map(\.shard).sorted()
        guard shards == Array(0..<n) else {
            let missing = Set(0..<n).subtracting(shards).sorted(), repeated = Dictionary(grouping: shards, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            throw .invalid("expected shards 0..<\(n) once each" + (missing.isEmpty ? "" : "; missing \(missing.map(String.init).joined(separator: ", "))")
                           + (repeated.isEmpty ? "" : "; repeated \(repeated.map(String.init).joined(separator: ", "))"))
        }
        let samples = partials.reduce(0) { $0 + $1.samples }
        let kept = try retainedPositions(of: parent, data: data).count
        guard samples == kept else {
            throw .invalid("the shards cover \(samples) samples, \(ref) holds \(kept) of the training split's \(data.splits.train.count)")
        }
        Repository.setThreads(threads)
        let model = try loadModel(parent, data: data)
        var total: [String: GramAccumulator] = [:]
        for l in model.unlearningLayers {
            var sum = GramAccumulator(dimension: l.inputDimension)
            for p in partials.sorted(by: { $0.shard < $1.shard }) {
                guard let g = p.grams[l.name], g.dimension == l.inputDimension else {
                    throw .invalid("shard \(p.shard)/\(n) has no \(l.inputDimension) × \(l.inputDimension) Gram for layer \(l.name)")
                }
                sum.add(g)
            }
            total[l.name] = sum
        }
        progress?("eigendecomposing the summed Grams of \(total.count) layers over \(samples) samples (\(n) shards)")
        let bases = try lift { try PGUEngine.bases(model: model, grams: total) }.map { $0.truncated() }
        let w = try commitBases(bases, parent: parent, ref: ref, data: data, message: "bases over \(samples) samples of \(data.source) (\(n) shards"
                                 + (samples < data.splits.train.count ? ", \(data.splits.train.count - samples) forgotten left out)" : ")"))
        return (w, bases)
    }
}
