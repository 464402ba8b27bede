import LetheTensor

/// torchvision's ResNet `BasicBlock`: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
///
/// conv1 is 3×3 with the block's stride, conv2 3×3 stride 1, both without bias; the shortcut is
/// the identity, or `downsample` = (1×1 conv with the stride, BatchNorm2d) when the stride or
/// channel count changes. Shapes: (N, C_in, H, W) → (N, C_out, ⌈H/s⌉, ⌈W/s⌉).
/// State names: conv1, bn1, conv2, bn2, downsample.0, downsample.1.
public final class BasicBlock: Layer {
    /// First 3×3 convolution.
    public let conv1: Conv2d
    /// BatchNorm after conv1.
    public let bn1: BatchNorm
    /// Second 3×3 convolution.
    public let conv2: Conv2d
    /// BatchNorm after conv2.
    public let bn2: BatchNorm
    /// The 1×1 conv + BN shortcut, when shapes change.
    public let downsample: (conv: Conv2d, bn: BatchNorm)?
    private let relu1 = ReLU()
    private var output = Tensor<Float>(zeros: [0])

    /// A block from `inChannels` to `outChannels` with `stride` on the first convolution.
    public init(inChannels: Int, outChannels: Int, stride: Int) {
        conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn1 = BatchNorm(channels: outChannels, spatial: true)
        conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, stride: 1, padding: 1, bias: false)
        bn2 = BatchNorm(channels: outChannels, spatial: true)
        if stride != 1 || inChannels != outChannels {
            downsample = (Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, padding: 0, bias: false),
                          BatchNorm(channels: outChannels, spatial: true))
        } else {
            downsample = nil
        }
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        let main = try bn2.outputShape(try conv2.outputShape(try bn1.outputShape(try conv1.outputShape(input))))
        if let downsample {
            let short = try downsample.bn.outputShape(try downsample.conv.outputShape(input))
            guard short == main else { throw .shapeMismatch("BasicBlock shortcut \(short) differs from main path \(main)") }
        } else if main != input {
            throw .shapeMismatch("BasicBlock identity shortcut needs equal shapes, got \(input) → \(main)")
        }
        return main
    }

    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into r: inout LayerRegistry) {
        conv1.register(prefix: join(prefix, "conv1"), into: &r)
        bn1.register(prefix: join(prefix, "bn1"), into: &r)
        conv2.register(prefix: join(prefix, "conv2"), into: &r)
        bn2.register(prefix: join(prefix, "bn2"), into: &r)
        if let downsample {
            downsample.conv.register(prefix: join(prefix, "downsample.0"), into: &r)
            downsample.bn.register(prefix: join(prefix, "downsample.1"), into: &r)
        }
    }

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        var h = conv1.forward(x, ctx)
        h = bn1.forward(h, ctx)
        h = relu1.forward(h, ctx)
        h = conv2.forward(h, ctx)
        h = bn2.forward(h, ctx)
        let short = downsample.map { $0.bn.forward($0.conv.forward(x, ctx), ctx) } ?? x
        let n = h.count
        precondition(short.count == n, "BasicBlock shortcut size differs")
        let y = withPointer(h) { ph in
            withPointer(short) { ps in
                Tensor<Float>.filled(shape: h.shape) { py in for i in 0..<n { py[i] = max(ph[i] + ps[i], 0) } }
            }
        }
        output = y
        return y
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let n = dy.count
        let dsum = withPointer(dy) { pdy in
            withPointer(output) { py in
                Tensor<Float>.filled(shape: dy.shape) { pd in for i in 0..<n { let d = pdy[i], y = py[i]; pd[i] = y > 0 ? d : 0 } }
            }
        }
        var dx = conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(dsum)))))
        let dShort = downsample.map { $0.conv.backward($0.bn.backward(dsum)) } ?? dsum
        let m = dx.count
        withPointer(dShort) { ps in withMutablePointer(&dx) { pdx in for i in 0..<m { pdx[i] += ps[i] } } }
        return dx
    }
}
