/// Geometry of a 2-D convolution or pooling window over NCHW input.
public struct ConvGeometry: Sendable, Equatable, Hashable {
    public var channels: Int, height: Int, width: Int
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padH: Int, padW: Int

    /// A square kernel with equal stride and padding in both directions.
    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.init(channels: channels, height: height, width: width, kernelH: kernel, kernelW: kernel,
                  strideH: stride, strideW: stride, padH: padding, padW: padding)
    }

    /// The general form.
    public init(channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                strideH: Int, strideW: Int, padH: Int, padW: Int) {
        precondition(kernelH > 0 && kernelW > 0 && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0,
                     "invalid convolution geometry")
        self.channels = channels; self.height = height; self.width = width
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
    }

    /// Output height: ⌊(H + 2p − kh) / s⌋ + 1.
    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    /// Output width: ⌊(W + 2p − kw) / s⌋ + 1.
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Length of one patch row: C · kh · kw (PyTorch's weight.view(C_out, -1) order: c, ki, kj).
    public var patchSize: Int { channels * kernelH * kernelW }
    /// Output positions per image: OH · OW.
    public var positions: Int { outHeight * outWidth }
}

/// im2col / col2im in "patch rows" layout.
///
/// For a batch of N images (N, C, H, W), `im2col` writes one row per output
/// position: a matrix of shape (N·OH·OW, C·kh·kw) whose column order matches a
/// PyTorch Conv2d weight reshaped to (C_out, C·kh·kw). A convolution is then
/// `rows × Wᵀ`, and the rows are exactly the layer inputs whose Gram matrix PGU needs.
public enum Im2col {
    /// Unfolds `input` (n images, NCHW) into `output` ((n·OH·OW) × (C·kh·kw)); padding reads as 0.
    /// - Complexity: O(n · OH·OW · C·kh·kw).
    public static func im2col(_ g: ConvGeometry, batch n: Int,
                              input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let (oh, ow, ps) = (g.outHeight, g.outWidth, g.patchSize)
        let imageSize = g.channels * g.height * g.width
        for b in 0..<n {
            let img = input + b * imageSize
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let row = output + ((b * oh + oy) * ow + ox) * ps
                    var col = 0
                    let y0 = oy * g.strideH - g.padH, x0 = ox * g.strideW - g.padW
                    for c in 0..<g.channels {
                        let plane = img + c * g.height * g.width
                        for ki in 0..<g.kernelH {
                            let y = y0 + ki
                            if y < 0 || y >= g.height {
                                for _ in 0..<g.kernelW { row[col] = 0; col += 1 }
                                continue
                            }
                            let line = plane + y * g.width
                            for kj in 0..<g.kernelW {
                                let x = x0 + kj
                                row[col] = (x >= 0 && x < g.width) ? line[x] : 0
                                col += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds patch rows back, accumulating into `output` (n images, NCHW), the adjoint of `im2col`.
    ///
    /// `output` is added to, not overwritten: zero it first for a plain col2im.
    public static func col2im(_ g: ConvGeometry, batch n: Int,
                              input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let (oh, ow, ps) = (g.outHeight, g.outWidth, g.patchSize)
        let imageSize = g.channels * g.height * g.width
        for b in 0..<n {
            let img = output + b * imageSize
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let row = input + ((b * oh + oy) * ow + ox) * ps
                    var col = 0
                    let y0 = oy * g.strideH - g.padH, x0 = ox * g.strideW - g.padW
                    for c in 0..<g.channels {
                        let plane = img + c * g.height * g.width
                        for ki in 0..<g.kernelH {
                            let y = y0 + ki
                            if y < 0 || y >= g.height { col += g.kernelW; continue }
                            let line = plane + y * g.width
                            for kj in 0..<g.kernelW {
                                let x = x0 + kj
                                if x >= 0 && x < g.width { line[x] += row[col] }
                                col += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Tensor form of `im2col`: (N, C, H, W) → (N·OH·OW, C·kh·kw).
    public static func im2col(_ x: Tensor<Float>, _ g: ConvGeometry) -> Tensor<Float> {
        precondition(x.rank == 4 && x.shape[1] == g.channels && x.shape[2] == g.height && x.shape[3] == g.width,
                     "im2col input \(x.shape) does not match geometry \(g)")
        let n = x.shape[0]
        var out = Tensor<Float>(zeros: [n * g.positions, g.patchSize])
        x.scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                im2col(g, batch: n, input: s, output: d)
            }
        }
        return out
    }

    /// Tensor form of `col2im`: (N·OH·OW, C·kh·kw) → (N, C, H, W).
    public static func col2im(_ cols: Tensor<Float>, _ g: ConvGeometry, batch n: Int) -> Tensor<Float> {
        precondition(cols.shape == [n * g.positions, g.patchSize], "col2im input \(cols.shape) does not match geometry")
        var out = Tensor<Float>(zeros: [n, g.channels, g.height, g.width])
        cols.scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                col2im(g, batch: n, input: s, output: d)
            }
        }
        return out
    }
}
