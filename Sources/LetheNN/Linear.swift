import LetheTensor

/// `nn.Linear`: y = x·Wᵀ + b.
///
/// Shapes: x (B, in) → y (B, out); weight (out, in), bias (out), as PyTorch lays them out.
public final class Linear: Layer {
    /// in_features.
    public let inFeatures: Int
    /// out_features.
    public let outFeatures: Int
    /// Weight (out, in).
    public let weight: Parameter
    /// Bias (out), if any.
    public let bias: Parameter?
    /// When false, `backward` skips dL/dx (first layer of a model) and returns an empty tensor.
    public var computesInputGradient = true
    var projectableIndex = -1
    private var input = Tensor<Float>(zeros: [0])

    /// A linear layer with zero weights (the model initializes them).
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.weight = Parameter(name: "weight", value: Tensor(zeros: [outFeatures, inFeatures]))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(zeros: [outFeatures])) : nil
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        guard input.count == 1, input[0] == inFeatures else {
            throw .shapeMismatch("Linear(\(inFeatures), \(outFeatures)) needs inputs of shape [\(inFeatures)], got \(input) (add a flatten layer?)")
        }
        return [outFeatures]
    }

    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into r: inout LayerRegistry) {
        r.add(parameter: weight, prefix: prefix, name: "weight")
        if let bias { r.add(parameter: bias, prefix: prefix, name: "bias") }
        projectableIndex = r.projectable.count
        r.projectable.append(ProjectableLayer(
            index: projectableIndex, name: prefix, weightName: weight.name, biasName: bias?.name, kind: .linear,
            inputDimension: inFeatures, outputCount: outFeatures, kernelH: 1, kernelW: 1, stride: 1, padding: 0,
            inputChannels: inFeatures))
    }

    // (B, in) x (in, out) -> (B, out)
    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        let b = x.shape[0]
        precondition(x.count == b * inFeatures, "Linear input \(x.shape) does not have \(inFeatures) features")
        input = x
        if let capture = ctx.capture {
            x.scalars.withUnsafeBufferPointer { capture(projectableIndex, $0, b) }
        }
        let (n, k) = (outFeatures, inFeatures)
        let biasValue = bias?.value
        return withPointer(x) { px in
            withPointer(weight.value) { pw in
                Tensor<Float>.filled(shape: [b, n]) { py in
                    if let biasValue {
                        withPointer(biasValue) { pb in
                            for i in 0..<b { (py + i * n).update(from: pb, count: n) }
                        }
                    }
                    sgemm(transA: false, transB: true, m: b, n: n, k: k, a: px, lda: k, b: pw, ldb: k,
                          beta: biasValue == nil ? 0 : 1, c: py, ldc: n)
                }
            }
        }
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let b = dy.shape[0], (n, k) = (outFeatures, inFeatures)
        withPointer(dy) { pdy in
            withPointer(input) { px in
                // dW (out, in) += dyᵀ (out, B) · x (B, in)
                withMutablePointer(&weight.grad) { pdw in
                    sgemm(transA: true, transB: false, m: n, n: k, k: b, a: pdy, lda: n, b: px, ldb: k,
                          beta: 1, c: pdw, ldc: k)
                }
            }
            if let bias {
                withMutablePointer(&bias.grad) { pdb in
                    for i in 0..<b { let row = pdy + i * n; for j in 0..<n { pdb[j] += row[j] } }
                }
            }
        }
        guard computesInputGradient else { return Tensor(zeros: [0]) }
        // dx (B, in) = dy (B, out) · W (out, in)
        let shape = input.shape
        return withPointer(dy) { pdy in
            withPointer(weight.value) { pw in
                Tensor<Float>.filled(shape: shape) { pdx in
                    sgemm(transA: false, transB: false, m: b, n: k, k: n, a: pdy, lda: n, b: pw, ldb: k,
                          beta: 0, c: pdx, ldc: k)
                }
            }
        }
    }
}
