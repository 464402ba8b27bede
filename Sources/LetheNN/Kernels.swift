import LetheTensor

/// im2col / col2im in LetheTensor's "patch rows" layout with a fast path for windows that lie
/// wholly inside the image (no bounds checks: each (channel, kernel row) is one short copy).
/// Results are identical to `Im2col.im2col` / `Im2col.col2im`.
enum PatchKernels {
    @inline(__always)
    static func interior(_ g: ConvGeometry, _ y0: Int, _ x0: Int) -> Bool {
        y0 >= 0 && x0 >= 0 && y0 + g.kernelH <= g.height && x0 + g.kernelW <= g.width
    }

    /// (n, C, H, W) → (n·OH·OW, C·kh·kw).
    static func im2col(_ g: ConvGeometry, batch n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let (oh, ow, ps) = (g.outHeight, g.outWidth, g.patchSize)
        let (c, h, w, kh, kw) = (g.channels, g.height, g.width, g.kernelH, g.kernelW)
        let imageSize = c * h * w
        Parallel.chunks(n, costPerItem: oh * ow * ps) { images in
        for b in images {
            let img = input + b * imageSize
            for oy in 0..<oh {
                let y0 = oy * g.strideH - g.padH
                for ox in 0..<ow {
                    let x0 = ox * g.strideW - g.padW
                    var row = output + ((b * oh + oy) * ow + ox) * ps
                    if kh == 3 && kw == 3 && interior(g, y0, x0) {
                        // 3×3 windows, unrolled: nine loads and stores per channel.
                        var src = img + y0 * w + x0
                        for _ in 0..<c {
                            let l1 = src + w, l2 = src + 2 * w
                            row[0] = src[0]; row[1] = src[1]; row[2] = src[2]
                            row[3] = l1[0]; row[4] = l1[1]; row[5] = l1[2]
                            row[6] = l2[0]; row[7] = l2[1]; row[8] = l2[2]
                            row += 9; src += h * w
                        }
                    } else if interior(g, y0, x0) {
                        var src = img + y0 * w + x0
                        for _ in 0..<c {
                            var line = src
                            for _ in 0..<kh {
                                for kj in 0..<kw { row[kj] = line[kj] }
                                row += kw; line += w
                            }
                            src += h * w
                        }
                    } else {
                        for ch in 0..<c {
                            let plane = img + ch * h * w
                            for ki in 0..<kh {
                                let y = y0 + ki
                                if y < 0 || y >= h {
                                    for kj in 0..<kw { row[kj] = 0 }
                                } else {
                                    let line = plane + y * w
                                    for kj in 0..<kw { let x = x0 + kj; row[kj] = (x >= 0 && x < w) ? line[x] : 0 }
                                }
                                row += kw
                            }
                        }
                    }
                }
            }
        }
        }
    }

    /// Adds patch rows back into (n, C, H, W) (the adjoint of `im2col`); `output` must be zeroed first.
    static func col2im(_ g: ConvGeometry, batch n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let (oh, ow, ps) = (g.outHeight, g.outWidth, g.patchSize)
        let (c, h, w, kh, kw) = (g.channels, g.height, g.width, g.kernelH, g.kernelW)
        let imageSize = c * h * w
        Parallel.chunks(n, costPerItem: oh * ow * ps) { images in
        for b in images {
            let img = output + b * imageSize
            for oy in 0..<oh {
                let y0 = oy * g.strideH - g.padH
                for ox in 0..<ow {
                    let x0 = ox * g.strideW - g.padW
                    var row = input + ((b * oh + oy) * ow + ox) * ps
                    if kh == 3 && kw == 3 && interior(g, y0, x0) {
                        var dst = img + y0 * w + x0
                        for _ in 0..<c {
                            let l1 = dst + w, l2 = dst + 2 * w
                            dst[0] += row[0]; dst[1] += row[1]; dst[2] += row[2]
                            l1[0] += row[3]; l1[1] += row[4]; l1[2] += row[5]
                            l2[0] += row[6]; l2[1] += row[7]; l2[2] += row[8]
                            row += 9; dst += h * w
                        }
                    } else if interior(g, y0, x0) {
                        var dst = img + y0 * w + x0
                        for _ in 0..<c {
                            var line = dst
                            for _ in 0..<kh {
                                for kj in 0..<kw { line[kj] += row[kj] }
                                row += kw; line += w
                            }
                            dst += h * w
                        }
                    } else {
                        for ch in 0..<c {
                            let plane = img + ch * h * w
                            for ki in 0..<kh {
                                let y = y0 + ki
                                if y >= 0 && y < h {
                                    let line = plane + y * w
                                    for kj in 0..<kw { let x = x0 + kj; if x >= 0 && x < w { line[x] += row[kj] } }
                                }
                                row += kw
                            }
                        }
                    }
                }
            }
        }
        }
    }
}
