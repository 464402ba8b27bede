import LetheTensor

/// Which optimizer a `Trainer` builds.
public enum OptimizerKind: String, Sendable, Equatable, Codable {
    /// `SGD` with momentum, weight decay and optional nesterov.
    case sgd
    /// `Adam`.
    case adam
}

/// Hyper-parameters of a training run.
public struct TrainingConfig: Sendable, Equatable {
    /// Passes over the training set.
    public var epochs: Int
    /// Samples per mini-batch.
    public var batchSize: Int
    /// Base learning rate.
    public var learningRate: Float
    /// Optimizer.
    public var optimizer: OptimizerKind
    /// SGD momentum.
    public var momentum: Float
    /// L2 weight decay.
    public var weightDecay: Float
    /// SGD nesterov momentum.
    public var nesterov: Bool
    /// Learning-rate schedule over epochs.
    public var schedule: LRSchedule
    /// Seed of the shuffling (the model's initialization seed is the caller's).
    public var seed: UInt64

    /// A configuration; defaults suit the `cnn` on Fashion-MNIST.
    public init(epochs: Int = 15, batchSize: Int = 128, learningRate: Float = 0.05, optimizer: OptimizerKind = .sgd,
                momentum: Float = 0.9, weightDecay: Float = 5e-4, nesterov: Bool = false,
                schedule: LRSchedule = .constant, seed: UInt64 = 0) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate; self.optimizer = optimizer
        self.momentum = momentum; self.weightDecay = weightDecay; self.nesterov = nesterov
        self.schedule = schedule; self.seed = seed
    }

    /// Checks ranges.
    public func validate() throws(NNError) {
        guard epochs >= 0 else { throw .invalidConfiguration("epochs must be ≥ 0, got \(epochs)") }
        guard batchSize > 0 else { throw .invalidConfiguration("batch size must be positive, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw .invalidConfiguration("learning rate must be positive, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw .invalidConfiguration("momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw .invalidConfiguration("weight decay must be ≥ 0, got \(weightDecay)") }
        guard !nesterov || (optimizer == .sgd && momentum > 0) else { throw .invalidConfiguration("nesterov needs SGD with momentum") }
    }
}

/// One epoch's figures.
public struct EpochReport: Sendable, Equatable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Learning rate used.
    public var learningRate: Float
    /// Mean training loss over the epoch's batches (weighted by batch size).
    public var trainLoss: Double
    /// Training accuracy of the train-mode forwards.
    public var trainAccuracy: Double
    /// Evaluation accuracy, if an evaluation set was given.
    public var evalAccuracy: Double?
    /// Evaluation mean loss, if an evaluation set was given.
    public var evalLoss: Double?
    /// Wall-clock seconds of the training part.
    public var seconds: Double
    /// Training samples per second.
    public var samplesPerSecond: Double
}

/// Progress events a `Trainer` emits.
public enum TrainingProgress: Sendable {
    /// A batch finished: epoch (1-based), batches done, batches per epoch, running mean loss.
    case batch(epoch: Int, done: Int, total: Int, loss: Double)
    /// An epoch finished.
    case epoch(EpochReport)
}

/// The result of evaluating a model on a dataset in eval mode.
public struct Evaluation: Sendable {
    /// Fraction of correct argmax predictions.
    public var accuracy: Double
    /// Mean cross-entropy.
    public var meanLoss: Double
    /// Cross-entropy of each sample, in dataset order.
    public var perSampleLoss: [Float]
    /// Softmax probabilities (N, classes).
    public var probabilities: Tensor<Float>
    /// Argmax class of each sample.
    public var predictions: [Int32]
}

/// Evaluation and training loops.
public enum Training {
    /// Samples per eval-mode batch everywhere a whole set is measured. At 128 a cnn's largest im2col
    /// buffer (~29 MB) stays under glibc's 32 MiB mmap cap, so with `AllocatorTuning.keepFreedMemory()`
    /// batches reuse heap pages; at 512 (115 MB) every batch faulted in fresh ones. Results do not
    /// depend on it.
    public static let evaluationBatchSize = 128

    /// Eval-mode pass over `dataset` in source order.
    public static func evaluate(_ model: Model, on dataset: Dataset, batchSize: Int = evaluationBatchSize) throws(NNError) -> Evaluation {
        let k = model.classes
        var probs = Tensor<Float>.zeroed([dataset.count, k])
        var losses = [Float](), preds = [Int32]()
        losses.reserveCapacity(dataset.count); preds.reserveCapacity(dataset.count)
        var correct = 0, total = 0.0, offset = 0
        for idx in dataset.batchIndices(batchSize: max(batchSize, 1), shuffleSeed: nil) {
            let (x, y) = dataset.batch(idx)
            let logits = try model.forward(x, mode: .eval)
            let ce = CrossEntropy.compute(logits: logits, labels: y)
            let p = CrossEntropy.softmax(logits)
            let b = idx.count
            withPointer(p) { src in withMutablePointer(&probs) { dst in (dst + offset * k).update(from: src, count: b * k) } }
            for i in 0..<b {
                let pred = argmax(logits, row: i)
                preds.append(pred)
                if pred == y[i] { correct += 1 }
                total += Double(ce.perSample[i])
            }
            losses.append(contentsOf: ce.perSample)
            offset += b
        }
        let n = max(dataset.count, 1)
        return Evaluation(accuracy: Double(correct) / Double(n), meanLoss: total / Double(n), perSampleLoss: losses,
                          probabilities: probs, predictions: preds)
    }

    static func argmax(_ logits: Tensor<Float>, row: Int) -> Int32 {
        let k = logits.shape[1]
        return withPointer(logits) { p in
            var best = 0
            let r = p + row * k
            for j in 1..<k where r[j] > r[best] { best = j }
            return Int32(best)
        }
    }

    /// The optimizer a configuration describes.
    public static func makeOptimizer(_ c: TrainingConfig) -> any Optimizer {
        switch c.optimizer {
        case .sgd: return SGD(learningRate: c.learningRate, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov)
        case .adam: return Adam(learningRate: c.learningRate, weightDecay: c.weightDecay)
        }
    }

    /// The seed of epoch `epoch`'s shuffle (0-based), a pure function of the run seed.
    public static func shuffleSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        var g = SeededGenerator(seed: seed ^ 0x5348_5546_464C_4521)
        var child = g.split(UInt64(epoch))
        return child.next()
    }

    /// Trains `model` on `train` for `config.epochs` epochs of seeded-shuffled mini-batches,
    /// evaluating on `evaluation` after every `evaluateEvery`-th epoch and after the last (the
    /// evaluation never changes the weights). Same seed, data and BLAS thread count give
    /// bitwise-identical weights.
    public static func train(_ model: Model, on train: Dataset, evaluation: Dataset? = nil, evaluateEvery: Int = 1, config: TrainingConfig,
                             progress: ((TrainingProgress) -> Void)? = nil) throws(NNError) -> [EpochReport] {
        try config.validate()
        guard evaluateEvery >= 1 else { throw .invalidConfiguration("evaluation interval must be at least 1 epoch, got \(evaluateEvery)") }
        guard train.count > 0 else { throw .invalidDataset("\(train.name) is empty") }
        let optimizer = makeOptimizer(config)
        var reports: [EpochReport] = []
        for epoch in 0..<config.epochs {
            let lr = config.schedule.rate(base: config.learningRate, epoch: epoch)
            optimizer.learningRate = lr
            var batches = train.batchIndices(batchSize: config.batchSize, shuffleSeed: shuffleSeed(config.seed, epoch: epoch))
            if let last = batches.last, last.count == 1, batches.count > 1 { batches.removeLast() }  // BatchNorm needs > 1
            let t0 = Clock.now()
            var lossSum = 0.0, seen = 0, correct = 0
            for (b, idx) in batches.enumerated() {
                let (x, y) = train.batch(idx)
                let logits = try model.forward(x, mode: .train)
                let ce = CrossEntropy.compute(logits: logits, labels: y)
                model.zeroGradients()
                model.backward(ce.dLogits)
                optimizer.step(model.parameters)
                lossSum += Double(ce.loss) * Double(idx.count); seen += idx.count
                for i in 0..<idx.count where argmax(logits, row: i) == y[i] { correct += 1 }
                progress?(.batch(epoch: epoch + 1, done: b + 1, total: batches.count, loss: lossSum / Double(seen)))
            }
            let seconds = Clock.now() - t0
            var report = EpochReport(epoch: epoch + 1, learningRate: lr, trainLoss: lossSum / Double(max(seen, 1)),
                                     trainAccuracy: Double(correct) / Double(max(seen, 1)), evalAccuracy: nil, evalLoss: nil,
                                     seconds: seconds, samplesPerSecond: Double(seen) / max(seconds, 1e-9))
            if let evaluation, (epoch + 1) % evaluateEvery == 0 || epoch == config.epochs - 1 {
                let e = try evaluate(model, on: evaluation)
                report.evalAccuracy = e.accuracy; report.evalLoss = e.meanLoss
            }
            reports.append(report)
            progress?(.epoch(report))
        }
        return reports
    }
}

/// Monotonic seconds.
enum Clock {
    static func now() -> Double { GemmProfiler.now() }
}
