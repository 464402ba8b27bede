import Foundation
import LetheNN
import LetheTensor
import XCTest

/// Golden tests against PyTorch (float64 reference) fixtures written by tools/fixtures/make_golden.py.
final class GoldenTests: XCTestCase {
    let tolerance = 1e-4

    func check(_ arch: String, _ mode: Mode) throws {
        let (ref, meta) = try loadFixture("golden-\(arch)-\(mode.rawValue).safetensors")
        let spec = try ModelSpec.decode(json: Array((meta["spec"] ?? "").utf8))
        let input = try JSONDecoder().decode([Int].self, from: Data((meta["input"] ?? "").utf8))
        let classes = Int(meta["classes"] ?? "") ?? 0
        let model = try Model(spec: spec, inputShape: input, classes: classes, seed: 1)
        try model.load(stateDict: formulaState(model))
        guard let x = ref["input"]?.floatTensor(), let labels = ref["labels"]?.int64s() else { return XCTFail("fixture lacks input") }
        let logits = try model.forward(x, mode: mode)
        let ce = CrossEntropy.compute(logits: logits, labels: labels.map { Int32($0) })
        model.zeroGradients()
        model.backward(ce.dLogits)

        var report: [String] = []
        var failures: [String] = []
        func expect(_ name: String, _ actual: [Float]) {
            guard let r = ref[name]?.floats() else { failures.append("\(name): missing in fixture"); return }
            let (maxAbs, rel) = compare(actual, r)
            let line = "\(name): max |diff| \(String(format: "%.3e", maxAbs)), relative \(String(format: "%.3e", rel))"
            report.append(line)
            if !(rel <= tolerance) { failures.append(line) }
        }
        expect("logits", logits.scalars)
        expect("loss", [ce.loss])
        var grads = 0
        for p in model.parameters { expect("grad." + p.name, p.grad.scalars); grads += 1 }
        XCTAssertEqual(grads, ref.keys.filter { $0.hasPrefix("grad.") }.count, "every gradient is checked")
        if mode == .train {
            for t in model.stateDict() where !model.parameters.contains(where: { $0.name == t.name }) {
                if t.dtype == .i64 {
                    XCTAssertEqual(t.int64s(), ref["state." + t.name]?.int64s(), t.name)
                } else {
                    expect("state." + t.name, t.floats() ?? [])
                }
            }
            let sgd = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
            sgd.step(model.parameters)
            sgd.step(model.parameters)
            for p in model.parameters { expect("after." + p.name, p.value.scalars) }
        }
        if !failures.isEmpty {
            XCTFail("\(arch) \(mode): \(failures.count) tensors beyond \(tolerance):\n" + failures.joined(separator: "\n")
                    + "\nall:\n" + report.joined(separator: "\n"))
        }
    }

    func testMLPTrain() throws { try check("mlp", .train) }
    func testMLPEval() throws { try check("mlp", .eval) }
    func testCNNTrain() throws { try check("cnn", .train) }
    func testCNNEval() throws { try check("cnn", .eval) }
    func testAllCNNTrain() throws { try check("allcnn", .train) }
    func testAllCNNEval() throws { try check("allcnn", .eval) }
    func testResNet18Train() throws { try check("resnet18", .train) }
    func testResNet18Eval() throws { try check("resnet18", .eval) }
}
