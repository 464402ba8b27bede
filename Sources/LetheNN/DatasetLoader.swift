import LetheCrypto
import LetheTensor
#if canImport(Glibc)
import Glibc
#endif

/// Samples as read from a source, before scaling and normalization.
public struct RawSamples: Sendable {
    /// Per-sample shape [C, H, W].
    public var shape: [Int]
    /// Pixels as stored (uint8 sources), N·C·H·W; empty for float sources.
    public var bytes: [UInt8]
    /// Values as stored (float sources), N·C·H·W; empty for uint8 sources.
    public var floats: [Float]
    /// Labels.
    public var labels: [Int32]
    /// Value that maps to 1.0 when scaling uint8 pixels (255 for images, 16 for digits).
    public var maxValue: Float

    /// Number of samples.
    public var count: Int { labels.count }
}

/// Loads named datasets, IDX directories, sklearn's digits CSV and safetensors datasets.
public enum DatasetLoader {
    /// Where Debian's dataset-fashion-mnist installs the gzip IDX files.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    /// Debian python3-sklearn's copy of the UCI digits.
    public static let digitsPath = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

    /// Loads `source`: `fashion-mnist`, `digits`, a directory with the four gzip IDX files, or a
    /// `.safetensors` dataset file (tensors `images` U8/F32 NCHW or NHW, `labels` I64, optional
    /// `test_images`/`test_labels`; without a test pair, 20% of each class is held out with seed 0).
    /// Digits are split the same way (80/20 per class, seed 0). Uint8 pixels are scaled to [0, 1]
    /// and standardized per channel with the training split's mean and std; F32 images are kept as given.
    ///
    /// `SOURCE:N` is a smaller training split: N samples of SOURCE's training split, stratified per
    /// class with seed 0 (each class rounded to its share), keeping their ids and SOURCE's
    /// normalization and test split. It is a dataset of its own (its own digest), so a model trained
    /// on `fashion-mnist:12000` is forgotten from with `--data fashion-mnist:12000`.
    ///
    /// `SOURCE:N+V` also keeps V training samples out of training as a validation split: V samples
    /// of SOURCE's training split stratified with seed 1, then N stratified samples (seed 0) of the
    /// rest (all of it when N + V is the whole split). PGU's stopping rule then compares forget
    /// accuracy with accuracy on these never-trained-on samples of the training distribution,
    /// which is what a model retrained without the forget set scores on it; half of the test
    /// split can sit a point or more away from that (see EVALUATION.md).
    public static func load(_ source: String) throws(NNError) -> DatasetSplits {
        if let colon = source.lastIndex(of: ":"), colon != source.startIndex, !isLoadable(source) {
            let base = String(source[..<colon]), countText = source[source.index(after: colon)...]
            if let plus = countText.firstIndex(of: "+") {
                let nText = countText[..<plus], vText = countText[countText.index(after: plus)...]
                guard nText.allSatisfy({ $0.isASCII && $0.isNumber }), vText.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let n = Int(nText), n > 0, let v = Int(vText), v > 0 else {
                    throw .invalidDataset("\(source): expected SOURCE:N+V with positive training and validation sizes")
                }
                let full = try load(base)
                guard v < full.train.count, n <= full.train.count - v else {
                    throw .invalidDataset("\(source): \(base) has only \(full.train.count) training samples for \(n) + \(v)")
                }
                let total = full.train.count
                let (heldOut, rest) = full.train.holdingOut(v, seed: 1)
                var train = n + v >= total ? rest : rest.stratifiedSplit(fraction: Double(n) / Double(rest.count), seed: 0).first
                train.name = "\(base):\(n)+\(v)/train"
                var validation = heldOut
                validation.name = "\(base):\(n)+\(v)/validation"
                return DatasetSplits(train: train, test: full.test, normalization: full.normalization, validation: validation)
            }
            guard let n = Int(countText), n > 0 else {
                throw .invalidDataset("\(source): the training-subset size after ':' must be a positive integer")
            }
            let full = try load(base)
            guard n < full.train.count else {
                throw .invalidDataset("\(source): \(base) has only \(full.train.count) training samples")
            }
            let train = full.train.stratifiedSplit(fraction: Double(n) / Double(full.train.count), seed: 0).first
            var renamed = train
            renamed.name = "\(base):\(n)/train"
            return DatasetSplits(train: renamed, test: full.test, normalization: full.normalization)
        }
        switch source {
        case "fashion-mnist": return try loadIDXDirectory(fashionMNISTDirectory, name: "fashion-mnist")
        case "digits": return try loadDigits(digitsPath)
        default:
            if source.hasSuffix(".safetensors") { return try loadSafetensors(source) }
            var st = stat()
            if stat(source, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                return try loadIDXDirectory(source, name: lastComponent(source))
            }
            throw .invalidDataset("unknown dataset \"\(source)\": expected fashion-mnist, digits, a directory of gzip IDX files or a .safetensors file")
        }
    }

    /// Whether `source` names a dataset as it is (a known name or an existing path), before any `:N` suffix is read.
    static func isLoadable(_ source: String) -> Bool {
        if source == "fashion-mnist" || source == "digits" { return true }
        var st = stat()
        return stat(source, &st) == 0
    }

    static func lastComponent(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    /// Loads `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`.
    public static func loadIDXDirectory(_ dir: String, name: String) throws(NNError) -> DatasetSplits {
        func pair(_ prefix: String) throws(NNError) -> RawSamples {
            let imagesPath = "\(dir)/\(prefix)-images-idx3-ubyte.gz", labelsPath = "\(dir)/\(prefix)-labels-idx1-ubyte.gz"
            let (shape, pixels) = try IDX.parse(try Gzip.read(imagesPath), path: imagesPath, expectedRank: 3)
            let (lshape, labels) = try IDX.parse(try Gzip.read(labelsPath), path: labelsPath, expectedRank: 1)
            guard shape[0] == lshape[0] else {
                throw .invalidDataset("\(imagesPath) holds \(shape[0]) images but \(labelsPath) holds \(lshape[0]) labels")
            }
            return RawSamples(shape: [1, shape[1], shape[2]], bytes: pixels, floats: [], labels: labels.map { Int32($0) }, maxValue: 255)
        }
        let train = try pair("train"), test = try pair("t10k")
        return try makeSplits(name: name, train: train, test: test)
    }

    /// Loads sklearn's digits.csv.gz: 1797 rows of 64 pixel values (0…16) and a label; 1×8×8 images.
    public static func loadDigits(_ path: String) throws(NNError) -> DatasetSplits {
        let text = try Gzip.read(path)
        var pixels: [UInt8] = [], labels: [Int32] = []
        var line = 1
        for row in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let fields = row.split(separator: UInt8(ascii: ","))
            guard fields.count == 65 else { throw .invalidDataset("\(path):\(line): expected 65 values, got \(fields.count)") }
            for (k, f) in fields.enumerated() {
                guard let v = Double(String(decoding: f, as: UTF8.self).trimmingSpaces), v >= 0, v <= (k == 64 ? 9 : 16), v == v.rounded() else {
                    throw .invalidDataset("\(path):\(line): bad value \"\(String(decoding: f, as: UTF8.self))\"")
                }
                if k == 64 { labels.append(Int32(v)) } else { pixels.append(UInt8(v)) }
            }
            line += 1
        }
        guard !labels.isEmpty else { throw .invalidDataset("\(path): no samples") }
        let all = RawSamples(shape: [1, 8, 8], bytes: pixels, floats: [], labels: labels, maxValue: 16)
        let full = try makeDataset(name: "digits", raw: all, normalization: nil, classCount: 10)
        let (train, test) = full.stratifiedSplit(fraction: 0.8, seed: 0)
        let norm = statistics(train)
        return DatasetSplits(train: apply(norm, to: train, name: "digits/train"), test: apply(norm, to: test, name: "digits/test"), normalization: norm)
    }

    /// Loads a safetensors dataset (see `load`).
    public static func loadSafetensors(_ path: String) throws(NNError) -> DatasetSplits {
        let tensors: [NamedTensor]
        do { tensors = try Safetensors.read(path: path).tensors } catch { throw .invalidDataset("\(path): \(error)") }
        var byName: [String: NamedTensor] = [:]
        for t in tensors { byName[t.name] = t }
        func raw(_ imagesName: String, _ labelsName: String) throws(NNError) -> RawSamples? {
            guard let im = byName[imagesName] else { return nil }
            guard let lb = byName[labelsName] else { throw .invalidDataset("\(path): \(imagesName) without \(labelsName)") }
            guard let labels = lb.int64s(), lb.shape.count == 1 else { throw .invalidDataset("\(path): \(labelsName) must be a 1-D integer tensor") }
            let shape: [Int]
            switch im.shape.count {
            case 3: shape = [1, im.shape[1], im.shape[2]]
            case 4: shape = Array(im.shape.dropFirst())
            default: throw .invalidDataset("\(path): \(imagesName) must be NCHW or NHW, got shape \(im.shape)")
            }
            guard im.shape[0] == labels.count else {
                throw .invalidDataset("\(path): \(im.shape[0]) images but \(labels.count) labels")
            }
            switch im.dtype {
            case .u8: return RawSamples(shape: shape, bytes: im.data, floats: [], labels: labels.map { Int32(truncatingIfNeeded: $0) }, maxValue: 255)
            case .f32: return RawSamples(shape: shape, bytes: [], floats: im.floats() ?? [], labels: labels.map { Int32(truncatingIfNeeded: $0) }, maxValue: 1)
            default: throw .invalidDataset("\(path): \(imagesName) must be U8 or F32, got \(im.dtype.rawValue)")
            }
        }
        guard let train = try raw("images", "labels") else { throw .invalidDataset("\(path): no \"images\" tensor") }
        let name = lastComponent(path)
        if let test = try raw("test_images", "test_labels") { return try makeSplits(name: name, train: train, test: test) }
        let classes = Int((train.labels.max() ?? 0) + 1)
        let full = try makeDataset(name: name, raw: train, normalization: nil, classCount: classes)
        let (a, b) = full.stratifiedSplit(fraction: 0.8, seed: 0)
        let norm = train.floats.isEmpty ? statistics(a) : nil
        return DatasetSplits(train: norm.map { apply($0, to: a, name: name + "/train") } ?? a,
                             test: norm.map { apply($0, to: b, name: name + "/test") } ?? b, normalization: norm)
    }

    static func makeSplits(name: String, train: RawSamples, test: RawSamples) throws(NNError) -> DatasetSplits {
        guard train.shape == test.shape else { throw .invalidDataset("\(name): train samples \(train.shape) but test samples \(test.shape)") }
        let classes = Int(max(train.labels.max() ?? 0, test.labels.max() ?? 0) + 1)
        let rawTrain = try makeDataset(name: name + "/train", raw: train, normalization: nil, classCount: classes)
        let norm = train.floats.isEmpty ? statistics(rawTrain) : nil
        let trainSet = norm.map { apply($0, to: rawTrain, name: rawTrain.name) } ?? rawTrain
        let testSet = try makeDataset(name: name + "/test", raw: test, normalization: norm, classCount: classes)
        return DatasetSplits(train: trainSet, test: testSet, normalization: norm)
    }

    /// Scales, optionally normalizes, and hashes raw samples.
    public static func makeDataset(name: String, raw: RawSamples, normalization: Normalization?, classCount: Int) throws(NNError) -> Dataset {
        let s = raw.shape.reduce(1, *), n = raw.count
        let stored = raw.bytes.isEmpty ? raw.floats.count : raw.bytes.count
        guard stored == n * s else { throw .invalidDataset("\(name): \(stored) values for \(n) samples of shape \(raw.shape)") }
        let c = raw.shape[0], plane = s / max(c, 1)
        let scale = 1 / raw.maxValue
        let mean = normalization?.mean ?? [Float](repeating: 0, count: c)
        let invStd = normalization.map { $0.std.map { 1 / $0 } } ?? [Float](repeating: 1, count: c)
        var hashes: [Digest] = []
        hashes.reserveCapacity(n)
        let images: Tensor<Float>
        if !raw.bytes.isEmpty {
            images = raw.bytes.withUnsafeBufferPointer { src in
                Tensor<Float>.filled(shape: [n] + raw.shape) { dst in
                    for i in 0..<(n * s) {
                        let ch = (i / plane) % c
                        dst[i] = (Float(src[i]) * scale - mean[ch]) * invStd[ch]
                    }
                }
            }
            for i in 0..<n {
                let h = SHA256()
                var label = Int64(raw.labels[i]).littleEndian
                withUnsafeBytes(of: &label) { h.update($0) }
                raw.bytes.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[(i * s)..<((i + 1) * s)])) }
                hashes.append(h.finalize())
            }
        } else {
            images = Tensor(shape: [n] + raw.shape, scalars: raw.floats)
            for i in 0..<n {
                let h = SHA256()
                var label = Int64(raw.labels[i]).littleEndian
                withUnsafeBytes(of: &label) { h.update($0) }
                raw.floats.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[(i * s * 4)..<((i + 1) * s * 4)])) }
                hashes.append(h.finalize())
            }
        }
        return try Dataset(name: name, images: images, labels: raw.labels, ids: Array(0..<n), sampleHashes: hashes, classCount: classCount)
    }

    /// Per-channel mean and (population) std of a dataset's current values, in Float64.
    public static func statistics(_ d: Dataset) -> Normalization {
        let c = d.sampleShape.first ?? 1, plane = d.sampleSize / max(c, 1), n = d.count
        var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        withPointer(d.images) { p in
            for i in 0..<n { for ch in 0..<c { let q = p + (i * c + ch) * plane; for k in 0..<plane { let v = Double(q[k]); sum[ch] += v; sq[ch] += v * v } } }
        }
        let m = Double(n * plane)
        let mean = sum.map { $0 / max(m, 1) }
        let std = zip(sq, mean).map { max(($0 / max(m, 1) - $1 * $1), 1e-12).squareRoot() }
        return Normalization(mean: mean.map { Float($0) }, std: std.map { Float($0) })
    }

    /// Applies (x − mean)/std per channel.
    public static func apply(_ norm: Normalization, to d: Dataset, name: String) -> Dataset {
        var out = d
        out.name = name
        let c = d.sampleShape.first ?? 1, plane = d.sampleSize / max(c, 1), n = d.count
        withMutablePointer(&out.images) { p in
            for i in 0..<n { for ch in 0..<c {
                let q = p + (i * c + ch) * plane, m = norm.mean[ch], r = 1 / norm.std[ch]
                for k in 0..<plane { q[k] = (q[k] - m) * r }
            } }
        }
        return out
    }
}

/// The IDX format of (Fashion-)MNIST: magic 0x0000 | type | rank, big-endian UInt32 extents, data.
public enum IDX {
    /// Parses an IDX file of unsigned bytes (type 0x08) with `expectedRank` dimensions.
    ///
    /// - Throws: `NNError.invalidDataset` for a bad magic number, a wrong type or rank, or fewer
    ///   data bytes than the header promises (truncation); trailing bytes are an error too.
    public static func parse(_ bytes: [UInt8], path: String, expectedRank: Int) throws(NNError) -> (shape: [Int], data: [UInt8]) {
        guard bytes.count >= 4 else { throw .invalidDataset("\(path): truncated IDX header (\(bytes.count) bytes)") }
        guard bytes[0] == 0, bytes[1] == 0 else {
            let magic = bytes[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
            throw .invalidDataset("\(path): bad IDX magic number \(magic) (expected 00 00 08 0\(expectedRank))")
        }
        guard bytes[2] == 0x08 else { throw .invalidDataset("\(path): IDX element type 0x\(String(bytes[2], radix: 16)) is not unsigned byte (0x08)") }
        guard Int(bytes[3]) == expectedRank else { throw .invalidDataset("\(path): IDX rank \(bytes[3]), expected \(expectedRank)") }
        let headerSize = 4 + 4 * expectedRank
        guard bytes.count >= headerSize else { throw .invalidDataset("\(path): truncated IDX header") }
        var shape: [Int] = []
        for d in 0..<expectedRank {
            let o = 4 + 4 * d
            shape.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        // Extents are up to 2^32 - 1 each: their product can overflow Int (found by tools/fuzz idx).
        var need = 1
        for d in shape {
            let (p, overflow) = need.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .invalidDataset("\(path): IDX shape \(shape) is too large") }
            need = p
        }
        let have = bytes.count - headerSize
        guard have >= need else { throw .invalidDataset("\(path): truncated: header promises \(need) bytes of data for shape \(shape), file has \(have)") }
        guard have == need else { throw .invalidDataset("\(path): \(have - need) unexpected trailing bytes after shape \(shape)") }
        return (shape, Array(bytes[headerSize...]))
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
