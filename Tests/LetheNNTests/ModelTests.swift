import Foundation
import LetheNN
import LetheTensor
import XCTest

final class ModelTests: XCTestCase {
    func testStateDictNamesFollowPyTorch() throws {
        let cnn = try Model(spec: ModelSpec(arch: "cnn"), inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(cnn.stateDict().map(\.name), [
            "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
            "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias"])
        XCTAssertEqual(cnn.parameter(named: "classifier.1.weight")?.value.shape, [128, 3136])
        XCTAssertEqual(cnn.parameterCount, 421_642)

        let mlp = try Model(spec: ModelSpec(arch: "mlp"), inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(mlp.stateDict().map(\.shape), [[256, 784], [256], [256, 256], [256], [10, 256], [10]])

        let resnet = try Model(spec: ModelSpec(arch: "resnet18", width: 0.125), inputShape: [3, 32, 32], classes: 10)
        let names = resnet.stateDict().map(\.name)
        XCTAssertEqual(Array(names.prefix(7)), ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                                "bn1.num_batches_tracked", "layer1.0.conv1.weight"])
        XCTAssertTrue(names.contains("layer2.0.downsample.0.weight"))
        XCTAssertTrue(names.contains("layer4.1.bn2.running_var"))
        XCTAssertFalse(names.contains("layer1.0.downsample.0.weight"))
        XCTAssertEqual(Array(names.suffix(2)), ["fc.weight", "fc.bias"])
        XCTAssertEqual(resnet.stateDict().first { $0.name == "bn1.num_batches_tracked" }?.dtype, .i64)
        XCTAssertEqual(resnet.projectableLayers.count, 1 + 16 + 3 + 1)

        let allcnn = try Model(spec: ModelSpec(arch: "allcnn", width: 0.25), inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(allcnn.projectableLayers.map(\.name), ["features.0", "features.3", "features.6", "features.9", "features.12",
                                                              "features.15", "features.18", "features.21", "classifier.0"])
        XCTAssertEqual(allcnn.projectableLayers.map(\.inputDimension), [27, 216, 216, 216, 432, 432, 432, 48, 48])
        XCTAssertEqual(allcnn.parameter(named: "features.21.weight")?.value.shape, [48, 48, 1, 1])
    }

    func testLoadValidatesAndRoundTrips() throws {
        let a = try Model(spec: ModelSpec(arch: "cnn", hidden: [8], channels: [2, 3]), inputShape: [1, 8, 8], classes: 3, seed: 1)
        let b = try Model(spec: ModelSpec(arch: "cnn", hidden: [8], channels: [2, 3]), inputShape: [1, 8, 8], classes: 3, seed: 2)
        XCTAssertNotEqual(a.stateDict(), b.stateDict())
        let bytes = Safetensors.encode(a.stateDict())
        try b.load(stateDict: try Safetensors.decode(bytes).tensors)
        XCTAssertEqual(a.stateDict(), b.stateDict())

        var missing = a.stateDict(); missing.removeLast()
        XCTAssertThrowsError(try b.load(stateDict: missing)) { e in
            XCTAssertEqual(e as? NNError, .invalidStateDict("missing classifier.3.bias"))
        }
        var wrong = a.stateDict()
        wrong[0] = NamedTensor(name: "features.0.weight", Tensor<Float>(zeros: [2, 1, 5, 5]))
        XCTAssertThrowsError(try b.load(stateDict: wrong)) { e in
            XCTAssertEqual(e as? NNError, .invalidStateDict("features.0.weight: expected shape [2, 1, 3, 3], got [2, 1, 5, 5]"))
        }
        var extra = a.stateDict()
        extra.append(NamedTensor(name: "fc.weight", Tensor<Float>(zeros: [1])))
        XCTAssertThrowsError(try b.load(stateDict: extra)) { e in
            XCTAssertEqual(e as? NNError, .invalidStateDict("unexpected fc.weight"))
        }
        XCTAssertThrowsError(try a.forward(Tensor(zeros: [2, 1, 9, 9]), mode: .eval)) { e in
            XCTAssertEqual(e as? NNError, .shapeMismatch("model input must be [B] + [1, 8, 8], got [2, 1, 9, 9]"))
        }
    }

    func testSpecErrorsAndExplicitLayers() throws {
        XCTAssertThrowsError(try Model(spec: ModelSpec(arch: "vgg"), inputShape: [1, 8, 8], classes: 10)) { e in
            XCTAssertEqual(e as? NNError, .invalidSpec("unknown arch \"vgg\" (known: mlp, cnn, allcnn, resnet18)"))
        }
        let json = #"{"layers": [{"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "batchnorm2d"}, {"type": "relu"},"#
            + #" {"type": "maxpool2d", "kernel": 2}, {"type": "basicblock", "out": 6, "stride": 2}, {"type": "avgpool2d", "global": true},"#
            + #" {"type": "flatten"}, {"type": "dropout", "p": 0.1}, {"type": "linear", "out": 5}, {"type": "batchnorm1d"},"#
            + #" {"type": "linear"}]}"#
        let spec = try ModelSpec.decode(json: Array(json.utf8))
        let m = try Model(spec: spec, inputShape: [2, 8, 8], classes: 3)
        XCTAssertEqual(m.stateDict().first?.name, "0.weight")
        XCTAssertTrue(m.stateDict().contains { $0.name == "4.downsample.1.running_mean" })
        XCTAssertEqual(try m.forward(Tensor(zeros: [2, 2, 8, 8]), mode: .train).shape, [2, 3])
        let bad = try ModelSpec.decode(json: Array(#"{"layers": [{"type": "linear", "out": 4}]}"#.utf8))
        XCTAssertThrowsError(try Model(spec: bad, inputShape: [1, 4, 4], classes: 4)) { e in
            XCTAssertEqual(e as? NNError, .invalidSpec("layer 0 (linear) gets input [1, 4, 4]; add a flatten layer first"))
        }
    }

    func testCaptureHandsOutLayerInputRows() throws {
        let m = try Model(spec: ModelSpec(arch: "allcnn", width: 0.05), inputShape: [1, 8, 8], classes: 3, seed: 4)
        var x = Tensor<Float>(zeros: [2, 1, 8, 8])
        for i in 0..<x.count { x.scalars[i] = Float(i % 7) - 3 }
        var seen: [(String, Int, Int, Float)] = []
        let logits = try m.forwardCapturing(x) { layer, rows, count in
            seen.append((layer.name, count, rows.count / max(count, 1), rows.prefix(count * layer.inputDimension).reduce(0, +)))
        }
        XCTAssertEqual(logits, try m.forward(x, mode: .eval))
        // Conv rows: (B·OH·OW, C·k·k); first conv sees 2·8·8 rows of 9, the strided third conv 2·4·4 rows.
        XCTAssertEqual(seen.map(\.0), m.projectableLayers.map(\.name))
        XCTAssertEqual(seen[0].1, 128); XCTAssertEqual(seen[0].2, 9)
        XCTAssertEqual(seen[2].1, 32)
        XCTAssertEqual(seen.last?.1, 2)
        // First-layer rows are the im2col of x.
        let g = ConvGeometry(channels: 1, height: 8, width: 8, kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(seen[0].3, Im2col.im2col(x, g).scalars.reduce(0, +))
        var strideOne: [Int] = []
        _ = try m.forwardCapturing(x, unfoldWithStrideOne: true) { _, _, count in strideOne.append(count) }
        XCTAssertEqual(strideOne[2], 128)
        // Rows feed GramAccumulator directly.
        var gram = GramAccumulator(dimension: m.projectableLayers[0].inputDimension)
        _ = try m.forwardCapturing(x) { layer, rows, count in if layer.index == 0 { gram.accumulate(rows: count, rows) } }
        XCTAssertEqual(gram.rowCount, 128)
    }

    func testOptimizersMatchPyTorchFormulas() {
        let p = Parameter(name: "w", value: Tensor(shape: [2], scalars: [1, -2]))
        p.grad = Tensor(shape: [2], scalars: [0.5, 0.25])
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true)
        sgd.step([p])
        // d = g + λw = [0.51, 0.23]; b = d; w -= lr·(d + μ·b) = lr·1.9·d
        XCTAssertEqual(p.value.scalars[0], 1 - 0.1 * 1.9 * 0.51, accuracy: 1e-6)
        XCTAssertEqual(p.value.scalars[1], -2 - 0.1 * 1.9 * 0.23, accuracy: 1e-6)
        let q = Parameter(name: "q", value: Tensor(shape: [1], scalars: [1]))
        q.grad = Tensor(shape: [1], scalars: [0.3])
        let adam = Adam(learningRate: 0.01)
        adam.step([q]); adam.step([q])
        // With a constant gradient, bias-corrected m/√v = 1 (up to ε): two steps of lr.
        XCTAssertEqual(q.value.scalars[0], 0.98, accuracy: 1e-5)
        XCTAssertEqual(LRSchedule.step(stepSize: 5, gamma: 0.1).rate(base: 1, epoch: 10), 0.01, accuracy: 1e-7)
        XCTAssertEqual(LRSchedule.exponential(gamma: 0.5).rate(base: 1, epoch: 3), 0.125)
        XCTAssertEqual(LRSchedule.cosine(totalEpochs: 10, minimum: 0).rate(base: 1, epoch: 5), 0.5, accuracy: 1e-6)
        XCTAssertEqual(try LRSchedule.parse("step:3:0.5", epochs: 9), .step(stepSize: 3, gamma: 0.5))
        XCTAssertThrowsError(try LRSchedule.parse("linear", epochs: 9))
    }
}

final class SchemaTests: XCTestCase {
    /// schema/model-spec.schema.json names exactly the architectures and layer types the builder knows.
    func testSchemaAgreesWithBuilder() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("schema/model-spec.schema.json"))
        let schema = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let props = try XCTUnwrap(schema["properties"] as? [String: Any])
        let archs = try XCTUnwrap((props["arch"] as? [String: Any])?["enum"] as? [String])
        for a in archs { XCTAssertNoThrow(try Model(spec: ModelSpec(arch: a, width: 0.1), inputShape: [1, 8, 8], classes: 3), a) }
        let layer = try XCTUnwrap((schema["$defs"] as? [String: Any])?["layer"] as? [String: Any])
        let types = try XCTUnwrap(((layer["properties"] as? [String: Any])?["type"] as? [String: Any])?["enum"] as? [String])
        for t in types {
            let spec = ModelSpec(layers: [LayerSpec(type: t, out: 2, kernel: 1, global: true), LayerSpec(type: "flatten"), LayerSpec(type: "linear")])
            let input = t == "batchnorm1d" || t == "linear" ? [4] : [2, 4, 4]
            XCTAssertNoThrow(try Model(spec: spec, inputShape: input, classes: 3), t)
        }
        XCTAssertThrowsError(try Model(spec: ModelSpec(layers: [LayerSpec(type: "gelu")]), inputShape: [4], classes: 3))
    }
}
