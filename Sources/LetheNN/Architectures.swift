/// Builders for the named architectures and explicit layer lists.
///
/// Names follow the PyTorch modules in tools/fixtures/models.py, so state_dicts move unchanged:
/// - `mlp`: `classifier` = Sequential(Flatten, Linear, ReLU, [Dropout,] …, Linear) → `classifier.1.weight`, …
/// - `cnn`: `features` = (Conv 3×3 pad 1, ReLU, MaxPool 2) ×2, `classifier` = (Flatten, Linear, ReLU, Linear)
/// - `allcnn`: `features` = (Conv, BN, ReLU) ×8 + global AvgPool + Flatten, `classifier.0` = Linear
/// - `resnet18`: torchvision names (`conv1`, `bn1`, `layer1.0.conv1`, …, `fc`) with a 3×3 stride-1 stem
///   and no max pool (suited to 28×28 / 32×32 inputs).
enum Architectures {
    typealias Built = [(name: String, layer: any Layer)]

    static func build(_ spec: ModelSpec, input: [Int], classes: Int) throws(NNError) -> Built {
        if let layers = spec.layers {
            guard spec.arch == nil else { throw .invalidSpec("give either \"arch\" or \"layers\", not both") }
            return try explicit(layers, input: input, classes: classes)
        }
        guard let arch = spec.arch else { throw .invalidSpec("a spec needs \"arch\" or \"layers\"") }
        let dropout = Float(spec.dropout ?? 0)
        guard dropout >= 0 && dropout < 1 else { throw .invalidSpec("dropout must be in [0, 1), got \(dropout)") }
        switch arch {
        case "mlp":
            let hidden = spec.hidden ?? [256, 256]
            guard hidden.allSatisfy({ $0 > 0 }) else { throw .invalidSpec("mlp hidden sizes must be positive: \(hidden)") }
            var seq: [any Layer] = [Flatten()]
            var width = input.reduce(1, *)
            for h in hidden {
                seq.append(Linear(inFeatures: width, outFeatures: h)); seq.append(ReLU())
                if dropout > 0 { seq.append(Dropout(probability: dropout)) }
                width = h
            }
            seq.append(Linear(inFeatures: width, outFeatures: classes))
            return named("classifier", seq)
        case "cnn":
            guard input.count == 3 else { throw .invalidSpec("cnn needs image input [C, H, W], got \(input)") }
            let ch = spec.channels ?? [32, 64]
            let hidden = spec.hidden ?? [128]
            guard ch.count == 2, ch.allSatisfy({ $0 > 0 }) else { throw .invalidSpec("cnn channels must be two positive widths, got \(ch)") }
            guard hidden.count == 1, hidden[0] > 0 else { throw .invalidSpec("cnn hidden must be one positive width, got \(hidden)") }
            let features: [any Layer] = [
                Conv2d(inChannels: input[0], outChannels: ch[0], kernelSize: 3, padding: 1), ReLU(), MaxPool2d(kernelSize: 2),
                Conv2d(inChannels: ch[0], outChannels: ch[1], kernelSize: 3, padding: 1), ReLU(), MaxPool2d(kernelSize: 2),
            ]
            let flat = ch[1] * (input[1] / 4) * (input[2] / 4)
            guard flat > 0 else { throw .invalidSpec("cnn needs images of at least 4×4, got \(input)") }
            var classifier: [any Layer] = [Flatten(), Linear(inFeatures: flat, outFeatures: hidden[0]), ReLU()]
            if dropout > 0 { classifier.append(Dropout(probability: dropout)) }
            classifier.append(Linear(inFeatures: hidden[0], outFeatures: classes))
            return named("features", features) + named("classifier", classifier)
        case "allcnn":
            guard input.count == 3 else { throw .invalidSpec("allcnn needs image input [C, H, W], got \(input)") }
            let w = try widthMultiplier(spec)
            let c1 = scaled(96, w), c2 = scaled(192, w)
            // (out, kernel, stride): 96, 96, 96/s2, 192, 192, 192/s2, 192, 1×1 192
            let plan = [(c1, 3, 1), (c1, 3, 1), (c1, 3, 2), (c2, 3, 1), (c2, 3, 1), (c2, 3, 2), (c2, 3, 1), (c2, 1, 1)]
            var features: [any Layer] = []
            var cin = input[0]
            for (out, k, s) in plan {
                features.append(Conv2d(inChannels: cin, outChannels: out, kernelSize: k, stride: s, padding: k / 2, bias: false))
                features.append(BatchNorm(channels: out, spatial: true))
                features.append(ReLU())
                cin = out
            }
            features.append(AvgPool2d(global: true))
            features.append(Flatten())
            return named("features", features) + named("classifier", [Linear(inFeatures: c2, outFeatures: classes)])
        case "resnet18":
            guard input.count == 3 else { throw .invalidSpec("resnet18 needs image input [C, H, W], got \(input)") }
            let w = try widthMultiplier(spec)
            let widths = [64, 128, 256, 512].map { scaled($0, w) }
            var out: Built = [("conv1", Conv2d(inChannels: input[0], outChannels: widths[0], kernelSize: 3, stride: 1, padding: 1, bias: false)),
                              ("bn1", BatchNorm(channels: widths[0], spatial: true)), ("relu", ReLU())]
            var cin = widths[0]
            for (stage, width) in widths.enumerated() {
                for block in 0..<2 {
                    let stride = (stage > 0 && block == 0) ? 2 : 1
                    out.append(("layer\(stage + 1).\(block)", BasicBlock(inChannels: cin, outChannels: width, stride: stride)))
                    cin = width
                }
            }
            out.append(("avgpool", AvgPool2d(global: true)))
            out.append(("flatten", Flatten()))
            out.append(("fc", Linear(inFeatures: cin, outFeatures: classes)))
            return out
        default:
            throw .invalidSpec("unknown arch \"\(arch)\" (known: mlp, cnn, allcnn, resnet18)")
        }
    }

    static func named(_ prefix: String, _ layers: [any Layer]) -> Built {
        layers.enumerated().map { ("\(prefix).\($0.offset)", $0.element) }
    }

    static func widthMultiplier(_ spec: ModelSpec) throws(NNError) -> Double {
        let w = spec.width ?? 1
        guard w > 0 && w.isFinite else { throw .invalidSpec("width multiplier must be positive, got \(w)") }
        return w
    }

    /// Python's `max(1, int(base * w))`.
    static func scaled(_ base: Int, _ w: Double) -> Int { max(1, Int((Double(base) * w).rounded(.towardZero))) }

    static func explicit(_ specs: [LayerSpec], input: [Int], classes: Int) throws(NNError) -> Built {
        var out: Built = []
        var shape = input
        for (i, s) in specs.enumerated() {
            let layer: any Layer
            let isLast = i == specs.count - 1
            func need(_ v: Int?, _ what: String) throws(NNError) -> Int {
                guard let v, v > 0 else { throw .invalidSpec("layer \(i) (\(s.type)) needs a positive \"\(what)\"") }
                return v
            }
            switch s.type {
            case "linear":
                guard shape.count == 1 else { throw .invalidSpec("layer \(i) (linear) gets input \(shape); add a flatten layer first") }
                let outF = try need(s.out ?? (isLast ? classes : nil), "out")
                layer = Linear(inFeatures: shape[0], outFeatures: outF, bias: s.bias ?? true)
            case "conv2d":
                guard shape.count == 3 else { throw .invalidSpec("layer \(i) (conv2d) needs [C, H, W] input, got \(shape)") }
                layer = Conv2d(inChannels: shape[0], outChannels: try need(s.out, "out"), kernelSize: try need(s.kernel, "kernel"),
                               stride: s.stride ?? 1, padding: s.padding ?? 0, bias: s.bias ?? true)
            case "relu": layer = ReLU()
            case "flatten": layer = Flatten()
            case "maxpool2d": layer = MaxPool2d(kernelSize: try need(s.kernel, "kernel"), stride: s.stride)
            case "avgpool2d":
                layer = (s.global ?? false) ? AvgPool2d(global: true) : AvgPool2d(kernelSize: try need(s.kernel, "kernel"), stride: s.stride)
            case "batchnorm1d", "batchnorm2d":
                let spatial = s.type == "batchnorm2d"
                guard shape.count == (spatial ? 3 : 1) else { throw .invalidSpec("layer \(i) (\(s.type)) gets input \(shape)") }
                layer = BatchNorm(channels: shape[0], spatial: spatial)
            case "dropout":
                let p = s.p ?? 0.5
                guard p >= 0 && p < 1 else { throw .invalidSpec("layer \(i) (dropout) needs p in [0, 1), got \(p)") }
                layer = Dropout(probability: Float(p))
            case "basicblock":
                guard shape.count == 3 else { throw .invalidSpec("layer \(i) (basicblock) needs [C, H, W] input, got \(shape)") }
                layer = BasicBlock(inChannels: shape[0], outChannels: try need(s.out, "out"), stride: s.stride ?? 1)
            default:
                throw .invalidSpec("layer \(i): unknown type \"\(s.type)\"")
            }
            do { shape = try layer.outputShape(shape) } catch { throw .invalidSpec("layer \(i) (\(s.type)): \(error)") }
            out.append(("\(i)", layer))
        }
        return out
    }
}
