import LetheNN
import LetheTensor
import XCTest

/// Central finite differences against every layer's backward, on L = Σ y·r (r fixed, random).
///
/// Layers compute in Float32, so the loss is summed in Float64, the step is 5e-3, and an error is
/// measured against the tensor's largest gradient: |analytic − numeric| ≤ 2e-3 · max|analytic|.
/// Inputs to ReLU / MaxPool keep a margin of ≥ 0.02 from kinks and ties so no step crosses one.
final class GradientCheckTests: XCTestCase {
    let eps: Float = 5e-3
    let tolerance = 2e-3

    func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor<Float> {
        var g = SeededGenerator(seed: seed)
        var t = Tensor<Float>(zeros: shape)
        t.scalars.withUnsafeMutableBufferPointer { g.fillUniform($0, low: -scale, high: scale) }
        return t
    }

    /// Distinct values with gaps of 0.05 and none within 0.025 of zero, in random order.
    func separated(_ shape: [Int], seed: UInt64) -> Tensor<Float> {
        let n = shape.reduce(1, *)
        var g = SeededGenerator(seed: seed)
        let perm = g.permutation(n)
        return Tensor(shape: shape, scalars: perm.map { Float($0 - n / 2) * 0.05 + 0.025 })
    }

    func check(_ name: String, _ layer: any Layer, input: Tensor<Float>, mode: Mode, parameters: [Parameter],
               checkInput: Bool = true, before: () -> Void = {}, file: StaticString = #filePath, line: UInt = #line) {
        before()
        let ctx = ForwardContext(mode: mode)
        let y0 = layer.forward(input, ctx)
        let r = random(y0.shape, seed: 99)
        for p in parameters { p.zeroGradient() }
        let dx = layer.backward(r)
        func loss(_ x: Tensor<Float>) -> Double {
            before()
            let y = layer.forward(x, ForwardContext(mode: mode))
            var s = 0.0
            for (a, b) in zip(y.scalars, r.scalars) { s += Double(a) * Double(b) }
            return s
        }
        func compareTensor(_ label: String, analytic: [Float], perturb: (Int, Float) -> Double) {
            let scale = analytic.map { abs(Double($0)) }.max() ?? 0
            var g = SeededGenerator(seed: 5)
            let picks = analytic.count <= 48 ? Array(0..<analytic.count) : (0..<48).map { _ in g.uniformInt(below: analytic.count) }
            var worst = 0.0
            for i in picks {
                let numeric = (perturb(i, eps) - perturb(i, -eps)) / (2 * Double(eps))
                worst = max(worst, abs(numeric - Double(analytic[i])))
            }
            XCTAssertGreaterThan(scale, 0, "\(name) \(label): gradient is all zero", file: file, line: line)
            XCTAssertLessThanOrEqual(worst / max(scale, 1e-12), tolerance,
                                     "\(name) \(label): max |analytic − numeric| \(worst) vs max |grad| \(scale)", file: file, line: line)
        }
        if checkInput {
            compareTensor("dx", analytic: dx.scalars) { i, h in
                var x = input; x.scalars[i] += h; return loss(x)
            }
        }
        for p in parameters {
            let analytic = p.grad.scalars
            compareTensor(p.name, analytic: analytic) { i, h in
                let saved = p.value.scalars[i]
                p.value.scalars[i] = saved + h
                defer { p.value.scalars[i] = saved }
                return loss(input)
            }
        }
    }

    func initialized<L: Layer>(_ layer: L, seed: UInt64) -> L {
        var r = LayerRegistry()
        layer.register(prefix: "", into: &r)
        var k: UInt64 = 0
        for case .parameter(let p) in r.state {
            p.value = random(p.value.shape, seed: seed + k, scale: 0.5)
            if p.name.hasSuffix("weight") && p.value.rank == 1 { p.value.scalars = p.value.scalars.map { 1 + $0 } }
            k += 1
        }
        return layer
    }

    func params(_ layer: any Layer) -> [Parameter] {
        var r = LayerRegistry()
        layer.register(prefix: "", into: &r)
        return r.state.compactMap { if case .parameter(let p) = $0 { return p } else { return nil } }
    }

    func testLinear() {
        let l = initialized(Linear(inFeatures: 7, outFeatures: 5), seed: 1)
        check("Linear", l, input: random([3, 7], seed: 2), mode: .train, parameters: params(l))
    }

    func testConv2d() {
        let c = initialized(Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1), seed: 3)
        check("Conv2d s2 p1", c, input: random([2, 2, 7, 6], seed: 4), mode: .train, parameters: params(c))
        let c1 = initialized(Conv2d(inChannels: 3, outChannels: 2, kernelSize: 1, bias: false), seed: 5)
        check("Conv2d 1x1", c1, input: random([2, 3, 4, 4], seed: 6), mode: .eval, parameters: params(c1))
    }

    func testReLU() {
        check("ReLU", ReLU(), input: separated([2, 3, 4], seed: 7), mode: .train, parameters: [])
    }

    func testMaxPool() {
        check("MaxPool2d", MaxPool2d(kernelSize: 2), input: separated([2, 2, 6, 5], seed: 8), mode: .train, parameters: [])
        check("MaxPool2d k3 s2", MaxPool2d(kernelSize: 3, stride: 2), input: separated([1, 2, 7, 7], seed: 9), mode: .train, parameters: [])
    }

    func testAvgPool() {
        check("AvgPool2d", AvgPool2d(kernelSize: 2), input: random([2, 3, 4, 6], seed: 10), mode: .train, parameters: [])
        check("AvgPool2d global", AvgPool2d(global: true), input: random([2, 3, 5, 3], seed: 11), mode: .train, parameters: [])
    }

    func testBatchNorm() {
        for mode in [Mode.train, .eval] {
            let bn2 = initialized(BatchNorm(channels: 3, spatial: true), seed: 12)
            bn2.runningMean.value = random([3], seed: 13, scale: 0.3)
            bn2.runningVar.value = Tensor(shape: [3], scalars: [0.5, 1.5, 2])
            check("BatchNorm2d \(mode)", bn2, input: random([4, 3, 3, 2], seed: 14), mode: mode, parameters: params(bn2))
            let bn1 = initialized(BatchNorm(channels: 5, spatial: false), seed: 15)
            check("BatchNorm1d \(mode)", bn1, input: random([6, 5], seed: 16), mode: mode, parameters: params(bn1))
        }
    }

    func testDropoutAndFlatten() {
        let d = Dropout(probability: 0.4)
        check("Dropout", d, input: random([3, 10], seed: 17), mode: .train, parameters: [],
              before: { d.generator = SeededGenerator(seed: 42) })
        check("Flatten", Flatten(), input: random([2, 3, 2, 2], seed: 18), mode: .train, parameters: [])
    }

    func testBasicBlock() {
        let down = initialized(BasicBlock(inChannels: 2, outChannels: 4, stride: 2), seed: 19)
        check("BasicBlock downsample", down, input: random([3, 2, 6, 6], seed: 20), mode: .train, parameters: params(down))
        let same = initialized(BasicBlock(inChannels: 3, outChannels: 3, stride: 1), seed: 21)
        check("BasicBlock identity", same, input: random([2, 3, 4, 4], seed: 22), mode: .eval, parameters: params(same))
    }

    func testCrossEntropy() {
        let z = random([5, 7], seed: 23, scale: 3)
        let labels: [Int32] = [0, 6, 3, 3, 1]
        let ce = CrossEntropy.compute(logits: z, labels: labels)
        var worst = 0.0
        for i in 0..<z.count {
            var zp = z, zm = z
            zp.scalars[i] += 1e-2; zm.scalars[i] -= 1e-2
            let numeric = (Double(CrossEntropy.compute(logits: zp, labels: labels).loss) - Double(CrossEntropy.compute(logits: zm, labels: labels).loss)) / 2e-2
            worst = max(worst, abs(numeric - Double(ce.dLogits.scalars[i])))
        }
        XCTAssertLessThan(worst, 2e-4)
        // Per-sample losses average to the loss and agree with −log softmax.
        let p = CrossEntropy.softmax(z)
        for i in 0..<5 { XCTAssertEqual(ce.perSample[i], -log(p[i, Int(labels[i])]), accuracy: 1e-5) }
        XCTAssertEqual(ce.loss, ce.perSample.reduce(0, +) / 5, accuracy: 1e-6)
        // Stable for huge logits.
        let big = CrossEntropy.compute(logits: Tensor(shape: [1, 3], scalars: [1000, 0, -1000]), labels: [1])
        XCTAssertEqual(big.loss, 1000, accuracy: 1e-3)
        XCTAssertTrue(big.dLogits.scalars.allSatisfy { $0.isFinite })
    }

    /// Mean cross-entropy summed in Float64 from Float64 log-sum-exp of the logits.
    func meanLoss(_ z: Tensor<Float>, _ labels: [Int32]) -> Double {
        let k = z.shape[1]
        var total = 0.0
        for (i, y) in labels.enumerated() {
            let row = (0..<k).map { Double(z.scalars[i * k + $0]) }
            let m = row.max() ?? 0
            total += m + log(row.reduce(0) { $0 + exp($1 - m) }) - row[Int(y)]
        }
        return total / Double(labels.count)
    }

    /// The whole model: cnn with dropout-free layers, gradients of the mean loss by finite differences.
    func testModelCNNEndToEnd() throws {
        let model = try Model(spec: ModelSpec(arch: "cnn", hidden: [6], channels: [3, 4]), inputShape: [1, 8, 8], classes: 4, seed: 3)
        let x = random([2, 1, 8, 8], seed: 30)
        let labels: [Int32] = [1, 3]
        let ce = CrossEntropy.compute(logits: try model.forward(x, mode: .train), labels: labels)
        model.zeroGradients()
        model.backward(ce.dLogits)
        for p in model.parameters {
            let scale = p.grad.scalars.map { abs(Double($0)) }.max() ?? 0
            var worst = 0.0
            for i in stride(from: 0, to: p.value.count, by: max(1, p.value.count / 12)) {
                let saved = p.value.scalars[i]
                let h: Float = 1e-3
                p.value.scalars[i] = saved + h
                let lp = meanLoss(try model.forward(x, mode: .train), labels)
                p.value.scalars[i] = saved - h
                let lm = meanLoss(try model.forward(x, mode: .train), labels)
                p.value.scalars[i] = saved
                worst = max(worst, abs((lp - lm) / Double(2 * h) - Double(p.grad.scalars[i])))
            }
            XCTAssertLessThanOrEqual(worst, 5e-3 * max(scale, 1e-3), p.name)
        }
    }
}
