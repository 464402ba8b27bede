import LetheTensor

/// `nn.BatchNorm1d` (x of shape (N, C)) and `nn.BatchNorm2d` (x of shape (N, C, H, W)).
///
/// Train mode normalizes with the batch mean and biased variance over N (and H·W), and
/// updates `running_mean`/`running_var` with momentum m (running var uses the unbiased
/// batch variance, as PyTorch): r ← (1−m)·r + m·batch; `num_batches_tracked` += 1.
/// Eval mode normalizes with the running statistics. Statistics are accumulated in Float64.
public final class BatchNorm: Layer {
    /// Channels (num_features).
    public let channels: Int
    /// Whether this is BatchNorm2d (NCHW input) rather than BatchNorm1d ((N, C) input).
    public let spatial: Bool
    /// ε added to the variance.
    public let epsilon: Float
    /// Running-statistics momentum.
    public let momentum: Float
    /// γ (C).
    public let weight: Parameter
    /// β (C).
    public let bias: Parameter
    /// Running mean (C).
    public let runningMean: Buffer
    /// Running variance (C).
    public let runningVar: Buffer
    /// Batches seen in train mode.
    public let numBatchesTracked: Counter
    private var normalized: [Float] = []   // x̂ of the last forward
    private var invStd: [Float] = []
    private var lastMode = Mode.eval
    private var inputShape: [Int] = []

    /// A batch-norm layer with γ = 1, β = 0, running mean 0 and running variance 1.
    public init(channels: Int, spatial: Bool, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.channels = channels; self.spatial = spatial; self.epsilon = epsilon; self.momentum = momentum
        weight = Parameter(name: "weight", value: Tensor(repeating: 1, shape: [channels]))
        bias = Parameter(name: "bias", value: Tensor(zeros: [channels]))
        runningMean = Buffer(name: "running_mean", value: Tensor(zeros: [channels]))
        runningVar = Buffer(name: "running_var", value: Tensor(repeating: 1, shape: [channels]))
        numBatchesTracked = Counter(name: "num_batches_tracked")
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        let ok = spatial ? (input.count == 3 && input[0] == channels) : (input == [channels])
        guard ok else {
            throw .shapeMismatch("BatchNorm\(spatial ? "2d" : "1d")(\(channels)) needs \(spatial ? "[\(channels), H, W]" : "[\(channels)]"), got \(input)")
        }
        return input
    }

    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into r: inout LayerRegistry) {
        r.add(parameter: weight, prefix: prefix, name: "weight")
        r.add(parameter: bias, prefix: prefix, name: "bias")
        r.add(buffer: runningMean, prefix: prefix, name: "running_mean")
        r.add(buffer: runningVar, prefix: prefix, name: "running_var")
        r.add(counter: numBatchesTracked, prefix: prefix, name: "num_batches_tracked")
    }

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        let n = x.shape[0], c = channels, s = spatial ? x.shape[2] * x.shape[3] : 1
        precondition(x.shape[1] == c && x.count == n * c * s, "BatchNorm(\(c)) input \(x.shape)")
        inputShape = x.shape; lastMode = ctx.mode
        if normalized.count != x.count { normalized = [Float](repeating: 0, count: x.count) }
        if invStd.count != c { invStd = [Float](repeating: 0, count: c) }
        let count = n * s
        if ctx.mode == .train {
            precondition(count > 1, "BatchNorm in train mode needs more than one value per channel")
            numBatchesTracked.value += 1
        }
        let m = momentum
        return withPointer(x) { px in
            normalized.withUnsafeMutableBufferPointer { xh in
                invStd.withUnsafeMutableBufferPointer { istd in
                    withPointer(weight.value) { pg in
                        withPointer(bias.value) { pb in
                            withMutablePointer(&runningMean.value) { rm in
                                withMutablePointer(&runningVar.value) { rv in
                                    Tensor<Float>.filled(shape: x.shape) { py in
                                        for ch in 0..<c {
                                            var mean: Float, inv: Float
                                            if ctx.mode == .train {
                                                var sum = 0.0
                                                for img in 0..<n { let src = px + (img * c + ch) * s; for i in 0..<s { sum += Double(src[i]) } }
                                                let mu = sum / Double(count)
                                                var sq = 0.0
                                                for img in 0..<n {
                                                    let src = px + (img * c + ch) * s
                                                    for i in 0..<s { let d = Double(src[i]) - mu; sq += d * d }
                                                }
                                                let variance = sq / Double(count)
                                                mean = Float(mu)
                                                inv = Float(1 / (variance + Double(epsilon)).squareRoot())
                                                rm[ch] = (1 - m) * rm[ch] + m * Float(mu)
                                                rv[ch] = (1 - m) * rv[ch] + m * Float(sq / Double(count - 1))
                                            } else {
                                                mean = rm[ch]
                                                inv = Float(1 / (Double(rv[ch]) + Double(epsilon)).squareRoot())
                                            }
                                            istd[ch] = inv
                                            let g = pg[ch], b = pb[ch]
                                            for img in 0..<n {
                                                let o = (img * c + ch) * s
                                                for i in 0..<s {
                                                    let v = (px[o + i] - mean) * inv
                                                    xh[o + i] = v
                                                    py[o + i] = g * v + b
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let n = inputShape[0], c = channels, s = dy.count / max(n * c, 1), count = n * s
        let train = lastMode == .train
        return withPointer(dy) { pdy in
            normalized.withUnsafeBufferPointer { xh in
                invStd.withUnsafeBufferPointer { istd in
                    withPointer(weight.value) { pg in
                        withMutablePointer(&weight.grad) { dg in
                            withMutablePointer(&bias.grad) { db in
                                Tensor<Float>.filled(shape: inputShape) { pdx in
                                    for ch in 0..<c {
                                        var sumDy = 0.0, sumDyXh = 0.0
                                        for img in 0..<n {
                                            let o = (img * c + ch) * s
                                            for i in 0..<s { let d = Double(pdy[o + i]); sumDy += d; sumDyXh += d * Double(xh[o + i]) }
                                        }
                                        dg[ch] += Float(sumDyXh); db[ch] += Float(sumDy)
                                        let scale = pg[ch] * istd[ch]
                                        if train {
                                            let meanDy = Float(sumDy / Double(count)), meanDyXh = Float(sumDyXh / Double(count))
                                            for img in 0..<n {
                                                let o = (img * c + ch) * s
                                                for i in 0..<s { pdx[o + i] = scale * (pdy[o + i] - meanDy - xh[o + i] * meanDyXh) }
                                            }
                                        } else {
                                            for img in 0..<n {
                                                let o = (img * c + ch) * s
                                                for i in 0..<s { pdx[o + i] = scale * pdy[o + i] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
