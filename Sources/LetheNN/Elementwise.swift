import LetheTensor

/// `nn.ReLU`: y = max(x, 0). Any shape; dx = dy where y > 0.
public final class ReLU: Layer {
    private var output = Tensor<Float>(zeros: [0])

    /// A ReLU.
    public init() {}

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] { input }
    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into registry: inout LayerRegistry) {}

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        let n = x.count
        let y = withPointer(x) { px in
            Tensor<Float>.filled(shape: x.shape) { py in
                Parallel.chunks(n) { r in for i in r { py[i] = max(px[i], 0) } }
            }
        }
        output = y
        return y
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let n = dy.count
        return withPointer(dy) { pdy in
            withPointer(output) { py in
                Tensor<Float>.filled(shape: dy.shape) { pdx in
                    Parallel.chunks(n) { r in for i in r { let d = pdy[i], y = py[i]; pdx[i] = y > 0 ? d : 0 } }
                }
            }
        }
    }
}

/// `nn.Flatten`: (N, d1, d2, ...) → (N, d1·d2·...). No copy.
public final class Flatten: Layer {
    private var inputShape: [Int] = []

    /// A flatten layer.
    public init() {}

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] { [input.reduce(1, *)] }
    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into registry: inout LayerRegistry) {}

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        inputShape = x.shape
        return x.reshaped([x.shape[0], x.count / max(x.shape[0], 1)])
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> { dy.reshaped(inputShape) }
}

/// `nn.Dropout(p)`: in train mode zeroes each element with probability p and scales the rest by
/// 1/(1−p); identity in eval mode. The mask comes from the layer's own seeded stream, so
/// training is reproducible (PyTorch's masks differ: its generator is not reproduced).
public final class Dropout: Layer {
    /// Drop probability.
    public let probability: Float
    /// The layer's random stream (set by the model from its seed).
    public var generator: SeededGenerator
    private var mask: [Float] = []
    private var active = false

    /// A dropout layer.
    public init(probability: Float, seed: UInt64 = 0) {
        self.probability = probability
        self.generator = SeededGenerator(seed: seed)
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] { input }
    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into registry: inout LayerRegistry) {}

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        active = ctx.mode == .train && probability > 0
        guard active else { return x }
        let n = x.count, keep = 1 - probability, scale = probability < 1 ? 1 / keep : 0
        if mask.count != n { mask = [Float](repeating: 0, count: n) }
        mask.withUnsafeMutableBufferPointer { m in
            for i in 0..<n { m[i] = generator.uniformFloat() < probability ? 0 : scale }
        }
        return mask.withUnsafeBufferPointer { m in
            withPointer(x) { px in
                Tensor<Float>.filled(shape: x.shape) { py in for i in 0..<n { py[i] = px[i] * m[i] } }
            }
        }
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        guard active else { return dy }
        let n = dy.count
        return mask.withUnsafeBufferPointer { m in
            withPointer(dy) { pdy in
                Tensor<Float>.filled(shape: dy.shape) { pdx in for i in 0..<n { pdx[i] = pdy[i] * m[i] } }
            }
        }
    }
}
