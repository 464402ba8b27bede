import Foundation
import LetheCrypto
import LetheNN
import LetheTensor
import XCTest

final class DatasetTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "lethe-nn-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func idxImages(_ n: Int, _ h: Int, _ w: Int, pixel: (Int) -> UInt8) -> [UInt8] {
        var b: [UInt8] = [0, 0, 8, 3]
        for v in [n, h, w] { b += [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        return b + (0..<(n * h * w)).map(pixel)
    }

    func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        let n = labels.count
        return [0, 0, 8, 1, UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + labels
    }

    func writeIDX(train: Int, test: Int, trainLabels: Int? = nil) throws {
        try Gzip.write(idxImages(train, 4, 4) { UInt8($0 % 251) }, to: dir + "/train-images-idx3-ubyte.gz")
        try Gzip.write(idxLabels((0..<(trainLabels ?? train)).map { UInt8($0 % 3) }), to: dir + "/train-labels-idx1-ubyte.gz")
        try Gzip.write(idxImages(test, 4, 4) { UInt8(($0 * 7) % 256) }, to: dir + "/t10k-images-idx3-ubyte.gz")
        try Gzip.write(idxLabels((0..<test).map { UInt8($0 % 3) }), to: dir + "/t10k-labels-idx1-ubyte.gz")
    }

    func testIDXDirectoryLoadsNormalizesAndHashes() throws {
        try writeIDX(train: 12, test: 6)
        let s = try DatasetLoader.load(dir)
        XCTAssertEqual(s.train.count, 12); XCTAssertEqual(s.test.count, 6)
        XCTAssertEqual(s.train.sampleShape, [1, 4, 4]); XCTAssertEqual(s.train.classCount, 3)
        XCTAssertEqual(s.train.ids, Array(0..<12))
        // Train is standardized with its own statistics.
        let mean = s.train.images.scalars.reduce(0, +) / Float(s.train.images.count)
        XCTAssertEqual(mean, 0, accuracy: 1e-4)
        // Sample 1: label 1 as Int64 LE, then its 16 source bytes.
        let expected = SHA256.hash([1, 0, 0, 0, 0, 0, 0, 0] + (16..<32).map { UInt8($0 % 251) })
        XCTAssertEqual(s.train.sampleHashes[1], expected)
        XCTAssertEqual(s.train.digest, try DatasetLoader.load(dir).train.digest)
        XCTAssertNotEqual(s.train.digest, s.test.digest)
    }

    func testIDXErrors() throws {
        try writeIDX(train: 12, test: 6, trainLabels: 11)
        XCTAssertThrowsError(try DatasetLoader.load(dir)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("\(self.dir)/train-images-idx3-ubyte.gz holds 12 images but \(self.dir)/train-labels-idx1-ubyte.gz holds 11 labels"))
        }
        var bad = idxImages(2, 4, 4) { _ in 0 }
        bad[2] = 9
        XCTAssertThrowsError(try IDX.parse(bad, path: "x", expectedRank: 3)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("x: IDX element type 0x9 is not unsigned byte (0x08)"))
        }
        XCTAssertThrowsError(try IDX.parse([1, 2, 3, 4, 5], path: "x", expectedRank: 3)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("x: bad IDX magic number 1 2 3 4 (expected 00 00 08 03)"))
        }
        XCTAssertThrowsError(try IDX.parse(Array(idxImages(2, 4, 4) { _ in 0 }.dropLast(3)), path: "x", expectedRank: 3)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("x: truncated: header promises 32 bytes of data for shape [2, 4, 4], file has 29"))
        }
        // A gzip stream cut in half.
        let whole = dir + "/whole.gz"
        try Gzip.write((0..<5000).map { UInt8(($0 * 31) % 256) }, to: whole)
        let bytes = try FileBytes.read(whole)
        try FileBytes.writeAtomically(Array(bytes.prefix(bytes.count / 2)), to: dir + "/cut.gz")
        XCTAssertThrowsError(try Gzip.read(dir + "/cut.gz")) { e in
            guard case .invalidDataset(let m)? = e as? NNError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("truncated") || m.contains("corrupt"), m)
        }
        XCTAssertThrowsError(try DatasetLoader.load(dir + "/nothing-here"))
    }

    func testDigitsSplitAndBatches() throws {
        let s = try DatasetLoader.load("digits")
        XCTAssertEqual(s.train.count + s.test.count, 1797)
        XCTAssertEqual(s.train.sampleShape, [1, 8, 8])
        XCTAssertTrue(Set(s.train.ids).isDisjoint(with: Set(s.test.ids)))
        // Stratified: every class is split about 80/20.
        for c in 0..<10 {
            let a = s.train.labels.filter { $0 == c }.count, b = s.test.labels.filter { $0 == c }.count
            XCTAssertEqual(Double(a) / Double(a + b), 0.8, accuracy: 0.02)
        }
        let (v, t) = s.test.stratifiedSplit(fraction: 0.5, seed: 7)
        XCTAssertEqual(v.count + t.count, s.test.count)
        XCTAssertEqual(s.test.stratifiedSplit(fraction: 0.5, seed: 7).first.ids, v.ids)
        XCTAssertNotEqual(s.test.stratifiedSplit(fraction: 0.5, seed: 8).first.ids, v.ids)
        let batches = s.train.batchIndices(batchSize: 100, shuffleSeed: 3)
        XCTAssertEqual(batches.map(\.count).reduce(0, +), s.train.count)
        XCTAssertEqual(Set(batches.joined()).count, s.train.count)
        XCTAssertEqual(batches, s.train.batchIndices(batchSize: 100, shuffleSeed: 3))
        let (x, y) = s.train.batch(batches[0])
        XCTAssertEqual(x.shape, [100, 1, 8, 8]); XCTAssertEqual(y[0], s.train.labels[batches[0][0]])
    }

    func testSafetensorsDataset() throws {
        let n = 20
        let images = NamedTensor(name: "images", dtype: .u8, shape: [n, 3, 3], data: (0..<(n * 9)).map { UInt8($0 % 256) })
        let labels = NamedTensor(name: "labels", int64: (0..<n).map { Int64($0 % 2) }, shape: [n])
        let path = dir + "/d.safetensors"
        try FileBytes.writeAtomically(Safetensors.encode([images, labels]), to: path)
        let s = try DatasetLoader.load(path)
        XCTAssertEqual(s.train.count, 16); XCTAssertEqual(s.test.count, 4)
        XCTAssertEqual(s.train.sampleShape, [1, 3, 3])
        let short = NamedTensor(name: "labels", int64: [0, 1], shape: [2])
        try FileBytes.writeAtomically(Safetensors.encode([images, short]), to: path)
        XCTAssertThrowsError(try DatasetLoader.load(path)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("\(path): 20 images but 2 labels"))
        }
    }

    /// Same seed and thread count ⇒ bitwise-identical weights; a different seed differs.
    func testTrainingIsDeterministic() throws {
        BLASThreads.set(2)
        let s = try DatasetLoader.load("digits")
        let small = s.train.subset(Array(0..<256))
        func run(_ seed: UInt64) throws -> ([NamedTensor], [EpochReport]) {
            let m = try Model(spec: ModelSpec(arch: "cnn", hidden: [16], channels: [4, 8]), inputShape: [1, 8, 8], classes: 10, seed: seed)
            let r = try Training.train(m, on: small, evaluation: s.test, config: TrainingConfig(epochs: 2, batchSize: 32, learningRate: 0.05, seed: seed))
            return (m.stateDict(), r)
        }
        let (a, ra) = try run(1), (b, _) = try run(1), (c, _) = try run(2)
        XCTAssertEqual(a, b)
        // The layers' own loops split work without cross-thread reductions: same bits with 2 threads.
        Parallel.set(2)
        defer { Parallel.set(1) }
        let (d, _) = try run(1)
        XCTAssertEqual(a, d)
        XCTAssertNotEqual(a, c)
        XCTAssertLessThan(ra[1].trainLoss, ra[0].trainLoss)
    }

    func testTrainingLearnsDigits() throws {
        let s = try DatasetLoader.load("digits")
        let m = try Model(spec: ModelSpec(arch: "mlp", hidden: [64]), inputShape: s.train.sampleShape, classes: 10, seed: 0)
        var events = 0
        let reports = try Training.train(m, on: s.train, evaluation: s.test, config: TrainingConfig(epochs: 4, batchSize: 64, learningRate: 0.05)) { _ in events += 1 }
        XCTAssertGreaterThan(reports.last?.evalAccuracy ?? 0, 0.9)
        XCTAssertEqual(events, 4 * ((s.train.count + 63) / 64) + 4)
        let e = try Training.evaluate(m, on: s.test)
        XCTAssertEqual(e.accuracy, reports.last?.evalAccuracy ?? -1, accuracy: 1e-12)
        XCTAssertEqual(e.probabilities.shape, [s.test.count, 10])
        XCTAssertEqual(e.perSampleLoss.count, s.test.count)
    }

    /// `evaluateEvery` skips the test evaluation of other epochs (never the last) and leaves the weights as they were.
    func testEvaluationIntervalSkipsEpochsButNotTheLastAndNeverTheWeights() throws {
        let s = try DatasetLoader.load("digits:400")
        let config = TrainingConfig(epochs: 3, batchSize: 64, learningRate: 0.05, seed: 4)
        let spec = ModelSpec(arch: "mlp", hidden: [32])
        let every = try Model(spec: spec, inputShape: s.train.sampleShape, classes: 10, seed: 0)
        let sparse = try Model(spec: spec, inputShape: s.train.sampleShape, classes: 10, seed: 0)
        let a = try Training.train(every, on: s.train, evaluation: s.test, config: config)
        let b = try Training.train(sparse, on: s.train, evaluation: s.test, evaluateEvery: 2, config: config)
        XCTAssertEqual(a.map { $0.evalAccuracy != nil }, [true, true, true])
        XCTAssertEqual(b.map { $0.evalAccuracy != nil }, [false, true, true])
        XCTAssertEqual(b[1].evalAccuracy, a[1].evalAccuracy)
        XCTAssertEqual(b[2].evalAccuracy, a[2].evalAccuracy)
        XCTAssertEqual(every.stateDict(), sparse.stateDict())
        XCTAssertThrowsError(try Training.train(sparse, on: s.train, evaluation: s.test, evaluateEvery: 0, config: config))
    }

    func testTrainingSubsetIsStratifiedKeepsIdsAndIsItsOwnDataset() throws {
        let full = try DatasetLoader.load("digits")
        let sub = try DatasetLoader.load("digits:500")
        XCTAssertEqual(sub.train.count, 500, accuracy: 10)  // each class rounded to its share
        XCTAssertEqual(sub.train.name, "digits:500/train")
        XCTAssertEqual(sub.test.count, full.test.count)
        XCTAssertNotEqual(sub.train.digest, full.train.digest)
        XCTAssertEqual(try DatasetLoader.load("digits:500").train.digest, sub.train.digest)  // seeded
        // Every subset sample is the full split's sample with the same id, hash and values.
        var position: [Int: Int] = [:]
        for (p, id) in full.train.ids.enumerated() { position[id] = p }
        for (q, id) in sub.train.ids.enumerated() {
            let p = try XCTUnwrap(position[id])
            XCTAssertEqual(sub.train.sampleHashes[q], full.train.sampleHashes[p])
            XCTAssertEqual(sub.train.labels[q], full.train.labels[p])
            XCTAssertEqual(Array(sub.train.images.scalars[(q * 64)..<((q + 1) * 64)]), Array(full.train.images.scalars[(p * 64)..<((p + 1) * 64)]))
        }
        // Class shares are kept.
        for c in 0..<10 {
            let a = Double(full.train.labels.filter { $0 == c }.count) / Double(full.train.count)
            let b = Double(sub.train.labels.filter { $0 == c }.count) / Double(sub.train.count)
            XCTAssertEqual(a, b, accuracy: 0.01)
        }
        for bad in ["digits:0", "digits:x", "digits:100000", "nothing:10"] {
            XCTAssertThrowsError(try DatasetLoader.load(bad), bad)
        }
    }

    func testValidationSplitIsHeldOutOfTrainingAndStratified() throws {
        let full = try DatasetLoader.load("digits")
        let s = try DatasetLoader.load("digits:1000+300")
        let v = try XCTUnwrap(s.validation)
        XCTAssertNil(full.validation)
        XCTAssertEqual(v.count, 300, accuracy: 10)
        XCTAssertEqual(s.train.count, 1000, accuracy: 10)
        XCTAssertEqual(s.train.name, "digits:1000+300/train")
        XCTAssertEqual(v.name, "digits:1000+300/validation")
        XCTAssertTrue(Set(v.ids).isDisjoint(with: s.train.ids), "no validation sample is trained on")
        XCTAssertTrue(Set(v.ids).union(s.train.ids).isSubset(of: full.train.ids))
        XCTAssertEqual(s.test.digest, full.test.digest, "the test split stays whole")
        XCTAssertEqual(try DatasetLoader.load("digits:1000+300").validation?.digest, v.digest)  // seeded
        // The validation split does not depend on N; N + V = everything trains on all the rest.
        XCTAssertEqual(try DatasetLoader.load("digits:500+300").validation?.ids, v.ids)
        let all = try DatasetLoader.load("digits:\(full.train.count - 300)+300")
        XCTAssertEqual(all.train.count + v.count, full.train.count)
        for c in 0..<10 {
            let a = Double(full.train.labels.filter { $0 == c }.count) / Double(full.train.count)
            XCTAssertEqual(Double(v.labels.filter { $0 == c }.count) / Double(v.count), a, accuracy: 0.01)
            XCTAssertEqual(Double(s.train.labels.filter { $0 == c }.count) / Double(s.train.count), a, accuracy: 0.01)
        }
        for bad in ["digits:1000+0", "digits:1000+x", "digits:+300", "digits:1300+300", "digits:0+300", "digits:1000++300", "digits:1000+-3"] {
            XCTAssertThrowsError(try DatasetLoader.load(bad), bad)
        }
    }
}
