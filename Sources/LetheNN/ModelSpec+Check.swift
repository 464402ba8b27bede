/// Checks of a model spec that need no dataset, for specs that arrive with imported weights.
extension ModelSpec {
    /// The named architectures `Architectures.build` knows.
    public static let architectures = ["mlp", "cnn", "allcnn", "resnet18"]
    /// The layer types an explicit layer list may use.
    public static let layerTypes = ["linear", "conv2d", "relu", "flatten", "maxpool2d", "avgpool2d", "batchnorm1d", "batchnorm2d",
                                    "dropout", "basicblock"]

    /// Refuses an unknown architecture or layer type, or a spec with both or neither of them.
    public func checkNames() throws(NNError) {
        switch (arch, layers) {
        case (nil, nil): throw .invalidSpec("a spec needs \"arch\" or \"layers\"")
        case (.some, .some): throw .invalidSpec("give either \"arch\" or \"layers\", not both")
        case (.some(let a), nil):
            guard ModelSpec.architectures.contains(a) else {
                throw .invalidSpec("unknown arch \"\(a)\" (known: \(ModelSpec.architectures.joined(separator: ", ")))")
            }
        case (nil, .some(let list)):
            guard !list.isEmpty else { throw .invalidSpec("\"layers\" is empty") }
            for (i, l) in list.enumerated() where !ModelSpec.layerTypes.contains(l.type) {
                throw .invalidSpec("layer \(i): unknown type \"\(l.type)\" (known: \(ModelSpec.layerTypes.joined(separator: ", ")))")
            }
        }
    }

    /// Builds the model for `input` and `classes` (the spec's own `input`/`classes` win) and checks
    /// that `tensors` (name, shape) are exactly its state_dict: no tensor missing, none unexpected,
    /// every shape equal.
    public func check(against tensors: [(name: String, shape: [Int])], input: [Int], classes: Int) throws(NNError) {
        try checkNames()
        let model = try Model(spec: self, inputShape: input, classes: classes)
        let expected = model.stateDict()
        let given = Dictionary(tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let names = Set(expected.map(\.name))
        let missing = expected.map(\.name).filter { given[$0] == nil }
        let unexpected = tensors.map(\.name).filter { !names.contains($0) }
        var problems: [String] = []
        if !missing.isEmpty { problems.append("missing \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? " (+\(missing.count - 5) more)" : "")") }
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected.prefix(5).joined(separator: ", "))\(unexpected.count > 5 ? " (+\(unexpected.count - 5) more)" : "")") }
        for t in expected {
            guard let shape = given[t.name] else { continue }
            // A counter (num_batches_tracked) may be stored as a scalar or a one-element tensor.
            let ok = shape == t.shape || (t.shape.reduce(1, *) == 1 && shape.reduce(1, *) == 1)
            if !ok { problems.append("\(t.name) has shape \(shape), the spec needs \(t.shape)") }
        }
        guard problems.isEmpty else { throw .invalidSpec("the spec does not match the tensors: \(problems.prefix(4).joined(separator: "; "))") }
    }
}
