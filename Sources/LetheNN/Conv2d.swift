import LetheTensor

/// `nn.Conv2d` (groups 1, dilation 1) as batch-wide im2col + one GEMM.
///
/// Shapes: x (N, C_in, H, W) → y (N, C_out, OH, OW); weight (C_out, C_in, kh, kw), bias (C_out).
/// Forward unfolds the whole batch into patch rows R (N·OH·OW, C_in·kh·kw) — exactly the
/// rows PGU's Gram matrix needs — then Y = R·Wᵀ (N·OH·OW, C_out) and transposes to NCHW
/// with the bias added in the same pass.
public final class Conv2d: Layer {
    /// Input channels.
    public let inChannels: Int
    /// Output channels.
    public let outChannels: Int
    /// Square kernel size.
    public let kernelSize: Int
    /// Stride in both directions.
    public let stride: Int
    /// Zero padding in both directions.
    public let padding: Int
    /// Weight (C_out, C_in, k, k).
    public let weight: Parameter
    /// Bias (C_out), if any.
    public let bias: Parameter?
    /// When false, `backward` skips dL/dx (first layer of a model) and returns an empty tensor.
    public var computesInputGradient = true
    var projectableIndex = -1
    private var rows: [Float] = []          // (N·P, K) patch rows of the last forward
    private var scratch: [Float] = []       // (N·P, C_out) work space
    private var dRows: [Float] = []         // (N·P, K) gradient of the patch rows
    private var geometry: ConvGeometry?
    private var batch = 0

    /// A convolution with zero weights (the model initializes them).
    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelSize = kernelSize; self.stride = stride; self.padding = padding
        self.weight = Parameter(name: "weight", value: Tensor(zeros: [outChannels, inChannels, kernelSize, kernelSize]))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(zeros: [outChannels])) : nil
    }

    /// Patch length C_in·k·k.
    public var patchSize: Int { inChannels * kernelSize * kernelSize }

    /// Per-sample output shape for a per-sample input shape; throws `NNError.shapeMismatch` when it does not fit.
    public func outputShape(_ input: [Int]) throws(NNError) -> [Int] {
        guard input.count == 3, input[0] == inChannels else {
            throw .shapeMismatch("Conv2d(\(inChannels), \(outChannels)) needs inputs of shape [\(inChannels), H, W], got \(input)")
        }
        let oh = (input[1] + 2 * padding - kernelSize) / stride + 1
        let ow = (input[2] + 2 * padding - kernelSize) / stride + 1
        guard input[1] + 2 * padding >= kernelSize, input[2] + 2 * padding >= kernelSize, oh > 0, ow > 0 else {
            throw .shapeMismatch("Conv2d kernel \(kernelSize) does not fit input \(input) with padding \(padding)")
        }
        return [outChannels, oh, ow]
    }

    /// Names this layer's state under `prefix` and adds it to the registry.
    public func register(prefix: String, into r: inout LayerRegistry) {
        r.add(parameter: weight, prefix: prefix, name: "weight")
        if let bias { r.add(parameter: bias, prefix: prefix, name: "bias") }
        projectableIndex = r.projectable.count
        r.projectable.append(ProjectableLayer(
            index: projectableIndex, name: prefix, weightName: weight.name, biasName: bias?.name, kind: .conv2d,
            inputDimension: patchSize, outputCount: outChannels, kernelH: kernelSize, kernelW: kernelSize,
            stride: stride, padding: padding, inputChannels: inChannels))
    }

    private func geometryFor(_ x: Tensor<Float>, stride s: Int) -> ConvGeometry {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d input \(x.shape) needs \(inChannels) channels")
        return ConvGeometry(channels: inChannels, height: x.shape[2], width: x.shape[3],
                            kernel: kernelSize, stride: s, padding: padding)
    }

    /// Forward pass on a batch (shapes in the type's documentation); caches what `backward` needs.
    public func forward(_ x: Tensor<Float>, _ ctx: ForwardContext) -> Tensor<Float> {
        let g = geometryFor(x, stride: stride)
        let n = x.shape[0], p = g.positions, k = g.patchSize, co = outChannels
        geometry = g; batch = n
        if rows.count != n * p * k { rows = [Float](repeating: 0, count: n * p * k) }
        withPointer(x) { px in
            rows.withUnsafeMutableBufferPointer { r in
                guard let pr = r.baseAddress else { return }
                PatchKernels.im2col(g, batch: n, input: px, output: pr)
            }
        }
        if let capture = ctx.capture {
            if ctx.captureWithStrideOne && stride != 1 {
                // PGU reference: unfold with stride 1 over the padded input.
                let g1 = geometryFor(x, stride: 1)
                let unfolded = Im2col.im2col(x, g1)
                unfolded.scalars.withUnsafeBufferPointer { capture(projectableIndex, $0, n * g1.positions) }
            } else {
                rows.withUnsafeBufferPointer { capture(projectableIndex, $0, n * p) }
            }
        }
        // GEMM and transpose a few images at a time so the (rows, C_out) block stays in cache.
        let chunk = Conv2d.chunkImages(n: n, perImage: p * max(co, k))
        if scratch.count < chunk * p * co { scratch = [Float](repeating: 0, count: chunk * p * co) }
        let biasValue = bias?.value
        return rows.withUnsafeBufferPointer { r in
            scratch.withUnsafeMutableBufferPointer { s in
                withPointer(weight.value) { pw in
                    Tensor<Float>.filled(shape: [n, co, g.outHeight, g.outWidth]) { py in
                        guard let pr = r.baseAddress, let ps = s.baseAddress else { return }
                        for start in Swift.stride(from: 0, to: n, by: chunk) {
                            let cn = min(chunk, n - start)
                            // (cn·P, K) x (K, C_out) -> (cn·P, C_out)
                            sgemm(transA: false, transB: true, m: cn * p, n: co, k: k, a: pr + start * p * k, lda: k,
                                  b: pw, ldb: k, beta: 0, c: ps, ldc: co)
                            Parallel.chunks(cn, costPerItem: p * co) { images in
                                for img in images {
                                    transposeAdd(ps + img * p * co, rows: p, cols: co, into: py + (start + img) * co * p, bias: biasValue)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Images per block so one block of patch-row work (`perImage` scalars each) is about 1 MiB.
    static func chunkImages(n: Int, perImage: Int) -> Int { max(1, min(n, (1 << 18) / max(perImage, 1))) }

    /// Backward pass: adds parameter gradients and returns dL/dx for the last forward input.
    public func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        guard let g = geometry else { preconditionFailure("Conv2d.backward before forward") }
        let n = batch, p = g.positions, k = g.patchSize, co = outChannels
        precondition(dy.shape == [n, co, g.outHeight, g.outWidth], "Conv2d dy \(dy.shape) does not match its forward")
        if scratch.count < n * p * co { scratch = [Float](repeating: 0, count: n * p * co) }
        let chunk = Conv2d.chunkImages(n: n, perImage: p * k)
        if computesInputGradient && dRows.count < chunk * p * k { dRows = [Float](repeating: 0, count: chunk * p * k) }
        var dx = computesInputGradient ? Tensor<Float>.zeroed([n, g.channels, g.height, g.width]) : Tensor<Float>.zeroed([0])
        let imageSize = g.channels * g.height * g.width
        withPointer(dy) { pdy in
            scratch.withUnsafeMutableBufferPointer { s in
                guard let ps = s.baseAddress else { return }
                // dY rows (N·P, C_out) from NCHW; db = Σ dY.
                Parallel.chunks(n, costPerItem: p * co) { images in
                    for img in images { transposeAdd(pdy + img * co * p, rows: co, cols: p, into: ps + img * p * co, bias: nil) }
                }
                if let bias {
                    // db = column sums of the dY rows: one vectorizable add of C_out lanes per row.
                    withMutablePointer(&bias.grad) { pdb in
                        var acc = [Float](repeating: 0, count: co)
                        acc.withUnsafeMutableBufferPointer { a in
                            guard let pa = a.baseAddress else { return }
                            for r in 0..<(n * p) { let row = ps + r * co; for c in 0..<co { pa[c] += row[c] } }
                            for c in 0..<co { pdb[c] += pa[c] }
                        }
                    }
                }
                rows.withUnsafeBufferPointer { r in
                    guard let pr = r.baseAddress else { return }
                    // dW (C_out, K) += dYᵀ (C_out, N·P) · R (N·P, K)
                    withMutablePointer(&weight.grad) { pdw in
                        sgemm(transA: true, transB: false, m: co, n: k, k: n * p, a: ps, lda: co, b: pr, ldb: k,
                              beta: 1, c: pdw, ldc: k)
                    }
                }
                if computesInputGradient {
                    withPointer(weight.value) { pw in
                        dRows.withUnsafeMutableBufferPointer { d in
                            withMutablePointer(&dx) { pdx in
                                guard let pd = d.baseAddress else { return }
                                // Per block of images: dR (cn·P, K) = dY (cn·P, C_out) · W (C_out, K), then fold into dx.
                                for start in Swift.stride(from: 0, to: n, by: chunk) {
                                    let cn = min(chunk, n - start)
                                    sgemm(transA: false, transB: false, m: cn * p, n: k, k: co, a: ps + start * p * co, lda: co,
                                          b: pw, ldb: k, beta: 0, c: pd, ldc: k)
                                    PatchKernels.col2im(g, batch: cn, input: pd, output: pdx + start * imageSize)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// dst (cols, rows) = srcᵀ (+ bias[j] on dst row j), blocked for cache; the bias is added during the copy.
@inline(__always)
func transposeAdd(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, bias: Tensor<Float>?) {
    if let bias {
        withPointer(bias) { pb in transposeBlocks(src, rows: rows, cols: cols, into: dst, bias: pb) }
    } else {
        transposeBlocks(src, rows: rows, cols: cols, into: dst, bias: nil)
    }
}

@inline(__always)
func transposeBlocks(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
    let block = 32
    var i0 = 0
    while i0 < rows {
        let i1 = min(i0 + block, rows)
        var j0 = 0
        while j0 < cols {
            let j1 = min(j0 + block, cols)
            // 4×4 register transposes for the bulk of the block, scalar edges.
            let i4 = i0 + (i1 - i0) / 4 * 4, j4 = j0 + (j1 - j0) / 4 * 4
            var i = i0
            while i < i4 {
                var j = j0
                while j < j4 {
                    let r0 = UnsafeRawPointer(src + i * cols + j).loadUnaligned(as: SIMD4<Float>.self)
                    let r1 = UnsafeRawPointer(src + (i + 1) * cols + j).loadUnaligned(as: SIMD4<Float>.self)
                    let r2 = UnsafeRawPointer(src + (i + 2) * cols + j).loadUnaligned(as: SIMD4<Float>.self)
                    let r3 = UnsafeRawPointer(src + (i + 3) * cols + j).loadUnaligned(as: SIMD4<Float>.self)
                    var c0 = SIMD4(r0[0], r1[0], r2[0], r3[0]), c1 = SIMD4(r0[1], r1[1], r2[1], r3[1])
                    var c2 = SIMD4(r0[2], r1[2], r2[2], r3[2]), c3 = SIMD4(r0[3], r1[3], r2[3], r3[3])
                    if let bias {
                        c0 += bias[j]; c1 += bias[j + 1]; c2 += bias[j + 2]; c3 += bias[j + 3]
                    }
                    UnsafeMutableRawPointer(dst + j * rows + i).storeBytes(of: c0, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(dst + (j + 1) * rows + i).storeBytes(of: c1, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(dst + (j + 2) * rows + i).storeBytes(of: c2, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(dst + (j + 3) * rows + i).storeBytes(of: c3, as: SIMD4<Float>.self)
                    j += 4
                }
                i += 4
            }
            for j in j0..<j1 {
                let d = dst + j * rows
                let b = bias?[j] ?? 0
                let iStart = j < j4 ? i4 : i0
                for i in iStart..<i1 { d[i] = src[i * cols + j] + b }
            }
            j0 = j1
        }
        i0 = i1
    }
}
