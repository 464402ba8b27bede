import XCTest
@testable import LetheTensor

final class Im2colTests: XCTestCase {
    /// Direct convolution (cross-correlation, as PyTorch's conv2d), NCHW.
    func naiveConv(_ x: Tensor<Float>, _ w: Tensor<Float>, _ g: ConvGeometry) -> Tensor<Float> {
        let (n, cout) = (x.shape[0], w.shape[0])
        var out = Tensor<Float>(zeros: [n, cout, g.outHeight, g.outWidth])
        for b in 0..<n { for o in 0..<cout { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
            var s: Float = 0
            for c in 0..<g.channels { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
                let y = oy * g.strideH - g.padH + ki, xx = ox * g.strideW - g.padW + kj
                if y >= 0 && y < g.height && xx >= 0 && xx < g.width { s += x[b, c, y, xx] * w[o, c, ki, kj] }
            } } }
            out[b, o, oy, ox] = s
        } } } }
        return out
    }

    func testConvolutionThroughIm2colMatchesDirect() {
        let cases: [(ConvGeometry, Int)] = [
            (ConvGeometry(channels: 2, height: 5, width: 6, kernel: 3, stride: 1, padding: 1), 3),
            (ConvGeometry(channels: 3, height: 7, width: 7, kernel: 3, stride: 2, padding: 1), 4),
            (ConvGeometry(channels: 1, height: 4, width: 4, kernel: 1, stride: 1, padding: 0), 2),
            (ConvGeometry(channels: 2, height: 6, width: 5, kernelH: 2, kernelW: 3, strideH: 2, strideW: 1, padH: 0, padW: 2), 3),
        ]
        for (i, (g, cout)) in cases.enumerated() {
            let n = 2
            let x = randomTensor([n, g.channels, g.height, g.width], seed: UInt64(10 + i))
            let w = randomTensor([cout, g.channels, g.kernelH, g.kernelW], seed: UInt64(20 + i))
            let cols = Im2col.im2col(x, g)                                   // (N·P, C·kh·kw)
            XCTAssertEqual(cols.shape, [n * g.positions, g.patchSize])
            let rows = Tensor.matmul(cols, w.reshaped([cout, g.patchSize]), transposeB: true) // (N·P, Cout)
            let ref = naiveConv(x, w, g)
            for b in 0..<n { for o in 0..<cout { for p in 0..<g.positions {
                let got = rows[b * g.positions + p, o]
                let want = ref.scalars[((b * cout + o) * g.positions) + p]
                XCTAssertEqual(got, want, accuracy: 1e-5, "case \(i)")
            } } }
        }
    }

    func testCol2imIsTheAdjointOfIm2col() {
        // <im2col(x), y> == <x, col2im(y)> for every geometry.
        let g = ConvGeometry(channels: 3, height: 6, width: 5, kernel: 3, stride: 2, padding: 1)
        let n = 2
        let x = randomTensor([n, 3, 6, 5], seed: 31)
        let y = randomTensor([n * g.positions, g.patchSize], seed: 32)
        let lhs = zip(Im2col.im2col(x, g).scalars, y.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x.scalars, Im2col.col2im(y, g, batch: n).scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        XCTAssertEqual(lhs, rhs, accuracy: 1e-4)
    }

    func testOutputSize() {
        let g = ConvGeometry(channels: 1, height: 28, width: 28, kernel: 3, stride: 2, padding: 1)
        XCTAssertEqual(g.outHeight, 14)
        XCTAssertEqual(g.outWidth, 14)
        XCTAssertEqual(g.patchSize, 9)
    }
}
