import LetheTensor

/// A feed-forward network built from a `ModelSpec`, with PyTorch state_dict names and layouts.
///
/// `forward` caches what `backward` needs; `backward` adds into every `Parameter.grad`.
/// Parameters are reference types shared with the layers, so optimizers and projection
/// steps change them in place.
public final class Model {
    /// The spec it was built from (with `input` and `classes` filled in).
    public let spec: ModelSpec
    /// Per-sample input shape [C, H, W] (or [d]).
    public let inputShape: [Int]
    /// Number of classes (logit count).
    public let classes: Int
    /// Top-level layers in execution order with their state_dict prefixes.
    public let layers: [(name: String, layer: any Layer)]
    /// Every state entry in PyTorch state_dict order.
    public let state: [StateEntry]
    /// The trainable parameters in state_dict order.
    public let parameters: [Parameter]
    /// Every Conv2d and Linear in execution order.
    public let projectableLayers: [ProjectableLayer]
    private let parameterIndex: [String: Parameter]
    private let firstTrainable: Int

    /// Builds a model and initializes it from `seed` (PyTorch's default scheme: weights and biases
    /// of Linear/Conv2d uniform in ±1/√fan_in; BatchNorm γ = 1, β = 0).
    ///
    /// - Parameters:
    ///   - inputShape: per-sample shape from the dataset ([C, H, W]); `spec.input` overrides it.
    ///   - classes: class count from the dataset; `spec.classes` overrides it.
    public init(spec: ModelSpec, inputShape: [Int], classes: Int, seed: UInt64 = 0) throws(NNError) {
        let input = spec.input ?? inputShape
        let classCount = spec.classes ?? classes
        guard !input.isEmpty, input.allSatisfy({ $0 > 0 }) else { throw .invalidSpec("input shape \(input) must be positive") }
        guard classCount > 0 else { throw .invalidSpec("class count must be positive, got \(classCount)") }
        var filled = spec
        filled.input = input; filled.classes = classCount
        self.spec = filled; self.inputShape = input; self.classes = classCount
        let built = try Architectures.build(filled, input: input, classes: classCount)
        // Shape inference validates the whole chain.
        var shape = input
        for (name, layer) in built {
            do { shape = try layer.outputShape(shape) } catch { throw .invalidSpec("layer \(name): \(error)") }
        }
        guard shape == [classCount] else {
            throw .invalidSpec("the model ends with per-sample shape \(shape), expected [\(classCount)] logits")
        }
        var registry = LayerRegistry()
        for (name, layer) in built { layer.register(prefix: name, into: &registry) }
        layers = built
        state = registry.state
        projectableLayers = registry.projectable
        var params: [Parameter] = []
        var index: [String: Parameter] = [:]
        for case .parameter(let p) in registry.state { params.append(p); index[p.name] = p }
        parameters = params; parameterIndex = index
        var seen = Set<String>()
        for entry in registry.state where !seen.insert(entry.name).inserted {
            throw .invalidSpec("duplicate state name \(entry.name)")
        }
        // The first layer holding parameters needs no input gradient (nor do the ones before it).
        firstTrainable = built.firstIndex { entry in
            entry.layer is Linear || entry.layer is Conv2d || entry.layer is BatchNorm || entry.layer is BasicBlock
        } ?? built.count
        if firstTrainable < built.count {
            if let l = built[firstTrainable].layer as? Linear { l.computesInputGradient = false }
            if let c = built[firstTrainable].layer as? Conv2d { c.computesInputGradient = false }
        }
        initialize(seed: seed)
    }

    /// Re-draws every parameter from `seed` and resets BatchNorm statistics and Dropout streams.
    public func initialize(seed: UInt64) {
        var root = SeededGenerator(seed: seed)
        var counter: UInt64 = 0
        var fanIn: [ObjectIdentifier: Int] = [:]
        func visit(_ layer: any Layer) {
            if let l = layer as? Linear { fanIn[ObjectIdentifier(l.weight)] = l.inFeatures; if let b = l.bias { fanIn[ObjectIdentifier(b)] = l.inFeatures } }
            if let c = layer as? Conv2d { fanIn[ObjectIdentifier(c.weight)] = c.patchSize; if let b = c.bias { fanIn[ObjectIdentifier(b)] = c.patchSize } }
            if let b = layer as? BasicBlock {
                visit(b.conv1); visit(b.conv2); if let d = b.downsample { visit(d.conv) }
            }
            if let d = layer as? Dropout { d.generator = root.split(10_000 + counter); counter += 1 }
        }
        for (_, layer) in layers { visit(layer) }
        for entry in state {
            var g = root.split(counter); counter += 1
            switch entry {
            case .parameter(let p):
                if let fan = fanIn[ObjectIdentifier(p)] {
                    let bound = 1 / Float(Double(fan).squareRoot())
                    let count = p.value.count
                    withMutablePointer(&p.value) { v in rngFill(&g, v, count, -bound, bound) }
                } else if p.name.hasSuffix("weight") {
                    p.value = Tensor(repeating: 1, shape: p.value.shape)
                } else {
                    p.value = Tensor(zeros: p.value.shape)
                }
                p.zeroGradient()
            case .buffer(let b):
                b.value = b.name.hasSuffix("running_var") ? Tensor(repeating: 1, shape: b.value.shape) : Tensor(zeros: b.value.shape)
            case .counter(let c):
                c.value = 0
            }
        }
    }

    /// The parameter with this state_dict name, or nil.
    public func parameter(named name: String) -> Parameter? { parameterIndex[name] }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Sets every gradient to zero.
    public func zeroGradients() { for p in parameters { p.zeroGradient() } }

    /// Logits (B, classes) for a batch (B, inputShape...).
    ///
    /// - Throws: `NNError.shapeMismatch` when the batch does not have the model's input shape.
    public func forward(_ x: Tensor<Float>, mode: Mode) throws(NNError) -> Tensor<Float> {
        try forward(x, context: ForwardContext(mode: mode))
    }

    /// Forward with an explicit context (capture hooks).
    public func forward(_ x: Tensor<Float>, context: ForwardContext) throws(NNError) -> Tensor<Float> {
        guard x.rank == inputShape.count + 1, Array(x.shape.dropFirst()) == inputShape, x.shape[0] > 0 else {
            throw .shapeMismatch("model input must be [B] + \(inputShape), got \(x.shape)")
        }
        var h = x
        for (_, layer) in layers { h = layer.forward(h, context) }
        return h
    }

    /// An eval-mode forward that hands each projectable layer's input rows to `body`
    /// (layer, rows (count × d, row-major), row count) without copying them: Linear inputs
    /// (B, in_features), Conv2d im2col patch rows (B·OH·OW, C_in·kh·kw). With
    /// `unfoldWithStrideOne`, strided convolutions report stride-1 patch rows instead (the PGU
    /// reference code's unfolding). The buffer is valid only during the call.
    public func forwardCapturing(_ x: Tensor<Float>, unfoldWithStrideOne: Bool = false,
                                 _ body: @escaping (ProjectableLayer, UnsafeBufferPointer<Float>, Int) -> Void) throws(NNError) -> Tensor<Float> {
        let info = projectableLayers
        let ctx = ForwardContext(mode: .eval, capture: { i, rows, n in body(info[i], rows, n) },
                                 captureWithStrideOne: unfoldWithStrideOne)
        return try forward(x, context: ctx)
    }

    /// Back-propagates dL/dlogits (B, classes) through the last forward, adding to every gradient.
    public func backward(_ dLogits: Tensor<Float>) {
        var d = dLogits
        var i = layers.count - 1
        while i >= firstTrainable {
            d = layers[i].layer.backward(d)
            i -= 1
        }
    }

    /// The state as named tensors in state_dict order (F32 parameters and buffers, I64 counters).
    public func stateDict() -> [NamedTensor] {
        state.map { entry in
            switch entry {
            case .parameter(let p): return NamedTensor(name: p.name, p.value)
            case .buffer(let b): return NamedTensor(name: b.name, b.value)
            case .counter(let c): return NamedTensor(name: c.name, int64: [c.value], shape: [])
            }
        }
    }

    /// Loads a state_dict (any order); every entry must be present with the right shape.
    ///
    /// Float tensors of other float dtypes are converted to F32. Gradients are zeroed.
    /// - Throws: `NNError.invalidStateDict` naming missing, unexpected or mis-shaped tensors.
    public func load(stateDict tensors: [NamedTensor]) throws(NNError) {
        var byName: [String: NamedTensor] = [:]
        for t in tensors { byName[t.name] = t }
        let expected = Set(state.map(\.name))
        let missing = state.map(\.name).filter { byName[$0] == nil }
        let unexpected = tensors.map(\.name).filter { !expected.contains($0) }
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? " (+\(missing.count - 8) more)" : "")") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.prefix(8).joined(separator: ", "))\(unexpected.count > 8 ? " (+\(unexpected.count - 8) more)" : "")") }
            throw .invalidStateDict(parts.joined(separator: "; "))
        }
        // Validate everything before changing anything.
        for entry in state {
            guard let t = byName[entry.name] else { continue }
            let shapeOK: Bool
            switch entry {
            case .counter: shapeOK = t.elementCount == 1
            default: shapeOK = t.shape == entry.shape
            }
            guard shapeOK else {
                throw .invalidStateDict("\(entry.name): expected shape \(entry.shape), got \(t.shape)")
            }
            switch entry {
            case .counter:
                guard t.int64s() != nil else { throw .invalidStateDict("\(entry.name): expected an integer tensor, got \(t.dtype.rawValue)") }
            default:
                guard t.dtype.isFloatingPoint else { throw .invalidStateDict("\(entry.name): expected a float tensor, got \(t.dtype.rawValue)") }
            }
        }
        for entry in state {
            guard let t = byName[entry.name] else { continue }
            switch entry {
            case .parameter(let p):
                if let f = t.floats() { p.value = Tensor(shape: p.value.shape, scalars: f) }
                p.zeroGradient()
            case .buffer(let b):
                if let f = t.floats() { b.value = Tensor(shape: b.value.shape, scalars: f) }
            case .counter(let c):
                c.value = t.int64s()?.first ?? 0
            }
        }
    }
}

@inline(__always)
func rngFill(_ g: inout SeededGenerator, _ p: UnsafeMutablePointer<Float>, _ n: Int, _ low: Float, _ high: Float) {
    for i in 0..<n { p[i] = low + (high - low) * g.uniformFloat() }
}
