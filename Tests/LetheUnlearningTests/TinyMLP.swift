import Foundation
import LetheTensor
@testable import LetheUnlearning

/// A two-layer perceptron (Linear d→h, ReLU, Linear h→c) written directly on Tensor ops, to test
/// the PGU engine independently of LetheNN.
final class TinyMLP: UnlearnableModel {
    var params: [String: Tensor<Float>] = [:]
    var grads: [String: Tensor<Float>] = [:]
    let d: Int, h: Int, c: Int
    private var x = Tensor<Float>(zeros: [0, 0]), a1 = Tensor<Float>(zeros: [0, 0])

    init(d: Int, h: Int, c: Int, seed: UInt64) {
        self.d = d; self.h = h; self.c = c
        var rng = SeededGenerator(seed: seed)
        func make(_ shape: [Int], _ std: Float) -> Tensor<Float> {
            var t = Tensor<Float>(zeros: shape)
            t.scalars.withUnsafeMutableBufferPointer { rng.fillNormal($0, std: std) }
            return t
        }
        params["fc1.weight"] = make([h, d], 1 / Float(d).squareRoot())
        params["fc1.bias"] = Tensor(zeros: [h])
        params["fc2.weight"] = make([c, h], 1 / Float(h).squareRoot())
        params["fc2.bias"] = Tensor(zeros: [c])
        zeroGradients()
    }

    var unlearningLayers: [UnlearningLayer] {
        [UnlearningLayer(name: "fc1", weightName: "fc1.weight", inputDimension: d, outputCount: h),
         UnlearningLayer(name: "fc2", weightName: "fc2.weight", inputDimension: h, outputCount: c)]
    }

    func forwardForUnlearning(_ input: Tensor<Float>, unfoldStride1: Bool,
                              capture: ((String, Int, UnsafeBufferPointer<Float>) -> Void)?) -> Tensor<Float> {
        x = input.reshaped([input.shape[0], d])
        let n = x.shape[0]
        capture.map { cb in x.scalars.withUnsafeBufferPointer { cb("fc1", n, $0) } }
        var z1 = Tensor.matmul(x, params["fc1.weight"]!, transposeB: true)
        for i in 0..<n { for j in 0..<h { z1.scalars[i * h + j] += params["fc1.bias"]!.scalars[j] } }
        a1 = Tensor(shape: z1.shape, scalars: z1.scalars.map { max($0, 0) })
        capture.map { cb in a1.scalars.withUnsafeBufferPointer { cb("fc2", n, $0) } }
        var z2 = Tensor.matmul(a1, params["fc2.weight"]!, transposeB: true)
        for i in 0..<n { for j in 0..<c { z2.scalars[i * c + j] += params["fc2.bias"]!.scalars[j] } }
        return z2
    }

    func backwardForUnlearning(_ dz2: Tensor<Float>) {
        var gw2 = grads["fc2.weight"]!
        Tensor.gemm(dz2, transposeA: true, a1, beta: 1, into: &gw2)
        grads["fc2.weight"] = gw2
        var gb2 = grads["fc2.bias"]!
        for i in 0..<dz2.shape[0] { for j in 0..<c { gb2.scalars[j] += dz2.scalars[i * c + j] } }
        grads["fc2.bias"] = gb2
        var da1 = Tensor.matmul(dz2, params["fc2.weight"]!)
        for i in 0..<da1.count where a1.scalars[i] <= 0 { da1.scalars[i] = 0 }
        var gw1 = grads["fc1.weight"]!
        Tensor.gemm(da1, transposeA: true, x, beta: 1, into: &gw1)
        grads["fc1.weight"] = gw1
        var gb1 = grads["fc1.bias"]!
        for i in 0..<da1.shape[0] { for j in 0..<h { gb1.scalars[j] += da1.scalars[i * h + j] } }
        grads["fc1.bias"] = gb1
    }

    func zeroGradients() { for (k, v) in params { grads[k] = Tensor(zeros: v.shape) } }

    func withParameter<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        var t = params[name]!
        defer { params[name] = t }
        return t.scalars.withUnsafeMutableBufferPointer { body($0) }
    }

    func withGradient<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        var t = grads[name]!
        defer { grads[name] = t }
        return t.scalars.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Plain SGD training with cross-entropy (test helper).
    func train(_ set: LabeledSet, epochs: Int, lr: Float, batch: Int, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<epochs {
            let order = rng.permutation(set.count)
            var s = 0
            while s < order.count {
                let b = set.subset(Array(order[s..<min(order.count, s + batch)])); s += batch
                zeroGradients()
                let z = forwardForUnlearning(b.images, unfoldStride1: false, capture: nil)
                var dz = z
                for i in 0..<b.count {
                    let row = Array(z.scalars[(i * c)..<((i + 1) * c)])
                    let m = row.max()!
                    let e = row.map { exp($0 - m) }, sum = e.reduce(0, +)
                    for j in 0..<c { dz.scalars[i * c + j] = (e[j] / sum - (j == b.labels[i] ? 1 : 0)) / Float(b.count) }
                }
                backwardForUnlearning(dz)
                for name in params.keys {
                    let g = grads[name]!
                    withParameter(name) { p in for i in 0..<p.count { p[i] -= lr * g.scalars[i] } }
                }
            }
        }
    }
}

/// Gaussian blobs: class k centred at a random mean, with noise; a learnable but imperfect task.
func blobs(n: Int, d: Int, classes: Int, noise: Float, seed: UInt64) -> LabeledSet {
    var rng = SeededGenerator(seed: seed)
    var centres = [Float](repeating: 0, count: classes * d)
    centres.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
    var data = [Float](repeating: 0, count: n * d)
    var labels = [Int]()
    for i in 0..<n {
        let k = rng.uniformInt(below: classes)
        labels.append(k)
        for j in 0..<d { data[i * d + j] = centres[k * d + j] + noise * Float(rng.normal()) }
    }
    return LabeledSet(images: Tensor(shape: [n, d], scalars: data), labels: labels)
}
