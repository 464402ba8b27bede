import LetheTensor

/// `nn.MaxPool2d(kernel, stride)` without padding: (N, C, H, W) → (N, C, OH, OW).
///
/// Forward records the flat input index of each window's maximum (first one on ties, as PyTorch;
/// NaN propagation is not guaranteed in the 2×2 fast path);
/// backward routes dy there.
public final class MaxPool2d: Layer {
    /// Window size.
    public let kernelSize: Int
    /// Step between windows.
    public let stride: Int
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    /// A max pool; stride defaults to the kernel size.
    public init(kernelSize: Int, stride: Int? = nil) {
        self.kernelSize = kernelSize; self.stride = stride ?? kernelSize
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        guard input.count == 3, input[1] >= kernelSize, input[2] >= kernelSize else {
            throw .shapeMismatch("MaxPool2d(\(kernelSize)) needs [C, H, W] with H, W ≥ \(kernelSize), got \(input)")
        }
        return [input[0], (input[1] - kernelSize) / stride + 1, (input[2] - kernelSize) / stride + 1]
    }
    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into registry: inout LayerRegistry) {}

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        precondition(x.rank == 4, "MaxPool2d input must be NCHW, got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h - kernelSize) / stride + 1, ow = (w - kernelSize) / stride + 1
        let planes = n * c, k = kernelSize, s = stride
        inputShape = x.shape
        if argmax.count != planes * oh * ow { argmax = [Int32](repeating: 0, count: planes * oh * ow) }
        return withPointer(x) { px in
            argmax.withUnsafeMutableBufferPointer { am in
                Tensor<Float>.filled(shape: [n, c, oh, ow]) { py in
                    Parallel.chunks(planes, costPerItem: h * w) { planeRange in
                    for pl in planeRange {
                        let src = px + pl * h * w, base = pl * h * w
                        if k == 2 && s == 2 {
                            // The common 2×2 / stride-2 window, unrolled (same order and tie rule as below).
                            for oy in 0..<oh {
                                let r0 = 2 * oy * w, r1 = r0 + w
                                for ox in 0..<ow {
                                    let c = 2 * ox
                                    // Branch-free tournament: (a, b) and (c, d), then the winners; the later value
                                    // wins only when strictly greater (or unordered: one compare, `!(x <= y)`), so the
                                    // first maximum is kept. (With NaN inputs a NaN may lose to a later number.)
                                    let a = src[r0 + c], b = src[r0 + c + 1], d = src[r1 + c], e = src[r1 + c + 1]
                                    let tb = !(b <= a), te = !(e <= d)
                                    let m0 = tb ? b : a, i0 = tb ? r0 + c + 1 : r0 + c
                                    let m1 = te ? e : d, i1 = te ? r1 + c + 1 : r1 + c
                                    let t1 = !(m1 <= m0)
                                    let best = t1 ? m1 : m0, bestIndex = t1 ? i1 : i0
                                    let o = (pl * oh + oy) * ow + ox
                                    py[o] = best
                                    am[o] = Int32(base + bestIndex)
                                }
                            }
                            continue
                        }
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = -Float.infinity, bestIndex = (oy * s) * w + ox * s
                                for ky in 0..<k {
                                    let line = (oy * s + ky) * w + ox * s
                                    for kx in 0..<k {
                                        let v = src[line + kx]
                                        if v > best || v.isNaN { best = v; bestIndex = line + kx }
                                    }
                                }
                                let o = (pl * oh + oy) * ow + ox
                                py[o] = best
                                am[o] = Int32(base + bestIndex)
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
        var dx = Tensor<Float>.zeroed(inputShape)
        let m = dy.count
        withPointer(dy) { pdy in
            argmax.withUnsafeBufferPointer { am in
                // Windows never overlap across planes, so planes split cleanly between threads.
                let perPlane = m / max(inputShape[0] * inputShape[1], 1)
                withMutablePointer(&dx) { pdx in
                    Parallel.chunks(inputShape[0] * inputShape[1], costPerItem: perPlane * 4) { planes in
                        for i in (planes.lowerBound * perPlane)..<(planes.upperBound * perPlane) { pdx[Int(am[i])] += pdy[i] }
                    }
                }
            }
        }
        return dx
    }
}

/// `nn.AvgPool2d(kernel, stride)` without padding, or global average pooling
/// (`nn.AdaptiveAvgPool2d(1)`) when `global` is set: (N, C, H, W) → (N, C, OH, OW).
public final class AvgPool2d: Layer {
    /// Window size (ignored when global).
    public let kernelSize: Int
    /// Step between windows (ignored when global).
    public let stride: Int
    /// Average over the whole plane.
    public let global: Bool
    private var inputShape: [Int] = []

    /// An average pool; stride defaults to the kernel size.
    public init(kernelSize: Int, stride: Int? = nil) {
        self.kernelSize = kernelSize; self.stride = stride ?? kernelSize; self.global = false
    }

    /// Global average pooling to 1×1.
    public init(global: Bool) {
        self.kernelSize = 0; self.stride = 1; self.global = true
    }

    private func window(_ h: Int, _ w: Int) -> (kh: Int, kw: Int, sh: Int, sw: Int) {
        global ? (h, w, 1, 1) : (kernelSize, kernelSize, stride, stride)
    }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        guard input.count == 3 else { throw .shapeMismatch("AvgPool2d needs [C, H, W], got \(input)") }
        let (kh, kw, sh, sw) = window(input[1], input[2])
        guard input[1] >= kh, input[2] >= kw else { throw .shapeMismatch("AvgPool2d(\(kernelSize)) does not fit \(input)") }
        return [input[0], (input[1] - kh) / sh + 1, (input[2] - kw) / sw + 1]
    }
    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into registry: inout LayerRegistry) {}

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        precondition(x.rank == 4, "AvgPool2d input must be NCHW, got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, sh, sw) = window(h, w)
        let oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1, planes = n * c
        let scale = 1 / Float(kh * kw)
        inputShape = x.shape
        return withPointer(x) { px in
            Tensor<Float>.filled(shape: [n, c, oh, ow]) { py in
                for pl in 0..<planes {
                    let src = px + pl * h * w
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var acc: Float = 0
                            for ky in 0..<kh {
                                let line = src + (oy * sh + ky) * w + ox * sw
                                for kx in 0..<kw { acc += line[kx] }
                            }
                            py[(pl * oh + oy) * ow + ox] = acc * scale
                        }
                    }
                }
            }
        }
    }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (kh, kw, sh, sw) = window(h, w)
        let oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1, planes = n * c
        let scale = 1 / Float(kh * kw)
        var dx = Tensor<Float>.zeroed(inputShape)
        withPointer(dy) { pdy in
            withMutablePointer(&dx) { pdx in
                for pl in 0..<planes {
                    let dst = pdx + pl * h * w
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let g = pdy[(pl * oh + oy) * ow + ox] * scale
                            for ky in 0..<kh {
                                let line = dst + (oy * sh + ky) * w + ox * sw
                                for kx in 0..<kw { line[kx] += g }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
