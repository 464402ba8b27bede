import LetheNN
import LetheTensor

/// The measured outcome of an unlearning method on one model: the columns of the evaluation
/// table and of a forget request's ledger metrics.
public struct UnlearningMeasurement: Sendable, Codable, Equatable {
    /// Accuracy on the forgotten samples D_f.
    public var forgetAccuracy: Double
    /// Accuracy on the retained training samples (a seeded subsample of D_r).
    public var retainAccuracy: Double?
    /// Accuracy on the validation half of the test split.
    public var validationAccuracy: Double
    /// Accuracy on the test half.
    public var testAccuracy: Double
    /// Fraction of D_f the entropy attack predicts to be members (nil: the attack found no signal).
    public var entropyMIA: Double?
    /// ROC-AUC of per-sample loss separating test (higher loss) from D_f.
    public var lossMIAAUC: Double
    /// Softmax entropies of D_f (for histograms).
    public var forgetEntropies: [Double]
    /// Mean JS divergence of D_f softmax outputs to a reference model (Retrain), when given.
    public var jsToReference: Double?
    /// Mean activation distance of D_f softmax outputs to the reference, when given.
    public var activationDistanceToReference: Double?
}

/// Measures models on fixed evaluation sets (the membership-inference attack is fitted on a
/// retain subsample as members vs the test set as non-members, as in the PGU paper).
public struct UnlearningEvaluator: Sendable {
    public let forget: Dataset
    public let retainSample: Dataset?
    public let validation: Dataset
    public let test: Dataset

    /// Evaluation sets; `retainSample` should be a few thousand D_r samples.
    public init(forget: Dataset, retainSample: Dataset?, validation: Dataset, test: Dataset) {
        self.forget = forget; self.retainSample = retainSample; self.validation = validation; self.test = test
    }

    /// Measures `model` (optionally against a reference model's D_f outputs).
    public func measure(_ model: Model, reference: Model? = nil) throws(NNError) -> UnlearningMeasurement {
        let f = try Training.evaluate(model, on: forget)
        let v = try Training.evaluate(model, on: validation)
        let t = try Training.evaluate(model, on: test)
        let r = try retainSample.map { (d: Dataset) throws(NNError) -> Evaluation in try Training.evaluate(model, on: d) }
        let fEnt = UnlearningMetrics.entropies(f.probabilities)
        let tEnt = UnlearningMetrics.entropies(t.probabilities)
        var mia: Double?
        if let r {
            mia = MembershipInference.entropyAttack(retainEntropies: UnlearningMetrics.entropies(r.probabilities),
                                                   testEntropies: tEnt, forgetEntropies: fEnt).value
        }
        let auc = UnlearningMetrics.rocAUC(positive: t.perSampleLoss.map(Double.init), negative: f.perSampleLoss.map(Double.init))
        var js: Double?, act: Double?
        if let reference {
            let rf = try Training.evaluate(reference, on: forget)
            js = UnlearningMetrics.jsDivergence(f.probabilities, rf.probabilities)
            act = UnlearningMetrics.activationDistance(f.probabilities, rf.probabilities)
        }
        return UnlearningMeasurement(forgetAccuracy: f.accuracy, retainAccuracy: r?.accuracy, validationAccuracy: v.accuracy,
                                     testAccuracy: t.accuracy, entropyMIA: mia, lossMIAAUC: auc, forgetEntropies: fEnt,
                                     jsToReference: js, activationDistanceToReference: act)
    }
}

/// The baselines PGU is compared with, on the same interfaces (Hoang et al. §4).
public enum UnlearningBaseline: String, Sendable, Codable, CaseIterable {
    /// Train a fresh model on D_r only: the exact reference.
    case retrain
    /// Continue training the original on D_r.
    case fineTune = "finetune"
    /// NegGrad+: descent on D_r batches and ascent on D_f batches, combined.
    case negGradPlus = "neggrad+"
    /// Fine-tune on D_f with random wrong labels, mixed with D_r batches.
    case randomLabel = "random-label"

    /// Runs the baseline and returns the resulting model (the original is not modified).
    ///
    /// - Parameters:
    ///   - original: the trained model (its spec and state are copied).
    ///   - retain: D_r; forget: D_f.
    ///   - training: the original training configuration (retrain uses it unchanged).
    ///   - epochs: epochs for the fine-tuning baselines.
    ///   - forgetTarget: NegGrad+ only: stop once the last `forgetWindow` forget samples it stepped on
    ///     are classified correctly at most this often (`mixedLoop`) — for a whole class, the class
    ///     target PGU stops at. Nil runs every pass.
    /// - Throws: `NNError.diverged` when the result has a non-finite weight (nothing is returned).
    public func run(original: Model, retain: Dataset, forget: Dataset, training: TrainingConfig, initSeed: UInt64,
                    epochs: Int, learningRate: Float, seed: UInt64, forgetTarget: Double? = nil) throws(NNError) -> Model {
        let model = try Model(spec: original.spec, inputShape: original.inputShape, classes: original.classes, seed: initSeed)
        switch self {
        case .retrain:
            _ = try Training.train(model, on: retain, config: training)
        case .fineTune:
            try model.load(stateDict: original.stateDict())
            var c = training
            c.epochs = epochs; c.learningRate = learningRate; c.schedule = .constant; c.seed = seed
            _ = try Training.train(model, on: retain, config: c)
        case .negGradPlus, .randomLabel:
            try model.load(stateDict: original.stateDict())
            try UnlearningBaseline.mixedLoop(model, retain: retain, forget: forget, ascent: self == .negGradPlus,
                                             epochs: epochs, learningRate: learningRate, batchSize: training.batchSize,
                                             momentum: training.momentum, seed: seed,
                                             forgetTarget: self == .negGradPlus ? forgetTarget : nil)
        }
        for p in model.parameters where p.value.scalars.contains(where: { !$0.isFinite }) {
            throw .diverged("\(rawValue) left non-finite values in \(p.name) after \(epochs) epochs at learning rate \(learningRate): lower either")
        }
        return model
    }

    /// One pass per epoch over D_f; each D_f batch is paired with a D_r batch of the same size.
    /// NegGrad+ minimises β·CE(D_r) − (1−β)·CE(D_f) with β = 0.95 (Kurmanji et al., 2023);
    /// random-label minimises CE(D_r) + CE(D_f with uniformly drawn wrong labels).
    ///
    /// The ascent term is unbounded: once the forget samples are misclassified it goes on pushing
    /// their logits apart until the weights overflow. Measured (Fashion-MNIST `mlp`, class 0, lr
    /// 0.01, 48d4795): one pass over the class's 6000 samples took the class to 0% and the test
    /// accuracy from 90.3% to 32.7%; five passes left non-finite weights. With `forgetTarget` the
    /// loop stops as soon as the forget batches seen in the last `forgetWindow` samples (or the
    /// whole forget set, if smaller) are classified correctly at most that often, counted from the
    /// forward pass before each step.
    static func mixedLoop(_ model: Model, retain: Dataset, forget: Dataset, ascent: Bool, epochs: Int,
                          learningRate: Float, batchSize: Int, momentum: Float, seed: UInt64,
                          forgetTarget: Double? = nil) throws(NNError) {
        let optimizer = SGD(learningRate: learningRate, momentum: momentum)
        var rng = SeededGenerator(seed: seed)
        let beta: Float = 0.95
        let classes = Int32(model.classes)
        let window = min(forgetWindow, forget.count)
        // Forget batches in the window, oldest first, with their running totals.
        var recent: [(correct: Int, count: Int)] = []
        var seen = 0, correct = 0
        for _ in 0..<epochs {
            let fOrder = rng.permutation(forget.count)
            let rOrder = rng.permutation(retain.count)
            var start = 0, rStart = 0
            while start < fOrder.count {
                let fIdx = Array(fOrder[start..<min(fOrder.count, start + batchSize)])
                start += batchSize
                let n = min(max(fIdx.count, 2), rOrder.count)
                if rStart + n > rOrder.count { rStart = 0 }
                let rIdx = Array(rOrder[rStart..<(rStart + n)])
                rStart += n
                model.zeroGradients()
                let (xr, yr) = retain.batch(rIdx)
                let ceR = CrossEntropy.compute(logits: try model.forward(xr, mode: .train), labels: yr)
                var dR = ceR.dLogits
                if ascent { scale(&dR, beta) }
                model.backward(dR)
                let (xf, yfTrue) = forget.batch(fIdx)
                var yf = yfTrue
                if !ascent {
                    for i in yf.indices {
                        var y = Int32(rng.uniformInt(below: Int(classes) - 1))
                        if y >= yfTrue[i] { y += 1 }
                        yf[i] = y
                    }
                }
                let logits = try model.forward(xf, mode: fIdx.count > 1 ? .train : .eval)
                if let target = forgetTarget {
                    let batch = (correct: EvaluationSets.correct(logits, yfTrue.map(Int.init)), count: fIdx.count)
                    recent.append(batch); seen += batch.count; correct += batch.correct
                    while recent.count > 1, seen - recent[0].count >= window {
                        seen -= recent[0].count; correct -= recent[0].correct; recent.removeFirst()
                    }
                    if seen >= window, Double(correct) <= target * Double(seen) { return }
                }
                var dF = CrossEntropy.compute(logits: logits, labels: yf).dLogits
                if ascent { scale(&dF, -(1 - beta)) }
                model.backward(dF)
                optimizer.step(model.parameters)
            }
        }
    }

    /// Forget samples whose accuracy decides `forgetTarget`'s stop: four batches of 128.
    static let forgetWindow = 512

    private static func scale(_ t: inout Tensor<Float>, _ s: Float) {
        t.scalars.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= s } }
    }
}
