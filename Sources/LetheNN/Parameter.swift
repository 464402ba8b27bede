import LetheTensor

/// Whether a forward pass trains (batch statistics, dropout on) or evaluates (running statistics, dropout off).
public enum Mode: String, Sendable, Equatable {
    /// Training: BatchNorm uses batch statistics and updates running ones; Dropout drops.
    case train
    /// Evaluation: BatchNorm uses running statistics; Dropout is the identity.
    case eval
}

/// A trainable tensor with its gradient, shared by reference so an optimizer or a
/// projection step can change it in place.
public final class Parameter {
    /// Full PyTorch state_dict name (`features.0.weight`), set when the model is built.
    public internal(set) var name: String
    /// Current value, laid out as PyTorch lays it out.
    public var value: Tensor<Float>
    /// Accumulated gradient, same shape as `value`; `backward` adds to it.
    public var grad: Tensor<Float>

    /// A parameter with a zero gradient.
    public init(name: String, value: Tensor<Float>) {
        self.name = name
        self.value = value
        self.grad = Tensor(zeros: value.shape)
    }

    /// Sets the gradient to zero without reallocating.
    public func zeroGradient() {
        grad.scalars.withUnsafeMutableBufferPointer { g in
            guard let p = g.baseAddress else { return }
            p.update(repeating: 0, count: g.count)
        }
    }
}

/// A non-trainable Float tensor of a layer (BatchNorm's running statistics).
public final class Buffer {
    /// Full state_dict name (`bn1.running_mean`).
    public internal(set) var name: String
    /// Current value.
    public var value: Tensor<Float>

    /// A buffer.
    public init(name: String, value: Tensor<Float>) { self.name = name; self.value = value }
}

/// An Int64 scalar state entry (BatchNorm's `num_batches_tracked`, stored as an I64 tensor of shape []).
public final class Counter {
    /// Full state_dict name.
    public internal(set) var name: String
    /// Current value.
    public var value: Int64

    /// A counter.
    public init(name: String, value: Int64 = 0) { self.name = name; self.value = value }
}

/// One entry of a model's state in PyTorch state_dict order.
public enum StateEntry {
    /// A trainable parameter (F32).
    case parameter(Parameter)
    /// A Float buffer (F32).
    case buffer(Buffer)
    /// An integer buffer (I64, shape []).
    case counter(Counter)

    /// The entry's full name.
    public var name: String {
        switch self {
        case .parameter(let p): return p.name
        case .buffer(let b): return b.name
        case .counter(let c): return c.name
        }
    }

    /// The entry's shape.
    public var shape: [Int] {
        switch self {
        case .parameter(let p): return p.value.shape
        case .buffer(let b): return b.value.shape
        case .counter: return []
        }
    }
}

/// The kind of a layer whose weight PGU projects.
public enum ProjectableKind: String, Sendable, Equatable {
    /// `nn.Linear`: inputs are rows of in_features.
    case linear
    /// `nn.Conv2d`: inputs are im2col patch rows of C_in·kh·kw.
    case conv2d
}

/// A Conv2d or Linear layer as PGU sees it: the weight it projects and the size of its input rows.
public struct ProjectableLayer: Sendable, Equatable {
    /// Position in execution order (also the index passed to capture callbacks).
    public var index: Int
    /// Module name prefix (`features.0`, `layer1.0.conv1`, `fc`).
    public var name: String
    /// The weight's state_dict name (`features.0.weight`).
    public var weightName: String
    /// The bias's state_dict name, if the layer has one.
    public var biasName: String?
    /// Linear or Conv2d.
    public var kind: ProjectableKind
    /// Input dimension d: in_features, or C_in·kh·kw for a convolution.
    public var inputDimension: Int
    /// Outputs: out_features or C_out.
    public var outputCount: Int
    /// Convolution kernel height (1 for Linear).
    public var kernelH: Int
    /// Convolution kernel width (1 for Linear).
    public var kernelW: Int
    /// Convolution stride (1 for Linear).
    public var stride: Int
    /// Convolution padding (0 for Linear).
    public var padding: Int
    /// Input channels of a convolution (in_features for Linear).
    public var inputChannels: Int
}

/// Carries the mode and the optional input-capture hook through one forward pass.
public final class ForwardContext {
    /// Train or eval.
    public let mode: Mode
    /// Called by every projectable layer with (layer index, input rows, row count); rows are
    /// the layer's own buffer (no copy) and are valid only during the call.
    public let capture: ((Int, UnsafeBufferPointer<Float>, Int) -> Void)?
    /// When true, a strided convolution reports patch rows unfolded with stride 1 (as the
    /// PGU reference code does) instead of the rows it computes with.
    public let captureWithStrideOne: Bool

    /// A context.
    public init(mode: Mode, capture: ((Int, UnsafeBufferPointer<Float>, Int) -> Void)? = nil,
                captureWithStrideOne: Bool = false) {
        self.mode = mode; self.capture = capture; self.captureWithStrideOne = captureWithStrideOne
    }
}

/// A layer: a forward/backward pair that caches what its backward needs.
///
/// Shapes include the batch dimension. `backward` adds parameter gradients into
/// `Parameter.grad` and returns the gradient with respect to the last forward input.
public protocol Layer: AnyObject {
    /// The per-sample output shape for a per-sample input shape, or an error if the input does not fit.
    func outputShape(_ input: [Int]) throws(NNError) -> [Int]
    /// Forward pass on a batch.
    func forward(_ x: Tensor<Float>, _ context: ForwardContext) -> Tensor<Float>
    /// Backward pass: accumulates parameter gradients, returns dL/dx.
    func backward(_ dy: Tensor<Float>) -> Tensor<Float>
    /// Names the layer's state under `prefix` and appends it (and projectable layers) to the registry.
    func register(prefix: String, into registry: inout LayerRegistry)
}

/// What building a model collects from its layers, in PyTorch state_dict order.
public struct LayerRegistry {
    /// State entries in state_dict order.
    public internal(set) var state: [StateEntry] = []
    /// Projectable layers in execution order.
    public internal(set) var projectable: [ProjectableLayer] = []

    /// An empty registry (register a layer into it to list its state).
    public init() {}

    mutating func add(parameter p: Parameter, prefix: String, name: String) {
        p.name = join(prefix, name); state.append(.parameter(p))
    }
    mutating func add(buffer b: Buffer, prefix: String, name: String) {
        b.name = join(prefix, name); state.append(.buffer(b))
    }
    mutating func add(counter c: Counter, prefix: String, name: String) {
        c.name = join(prefix, name); state.append(.counter(c))
    }
}

@inline(__always) func join(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : prefix + "." + name
}

extension Tensor where Scalar == Float {
    /// A zero tensor filled with `memset`: LetheTensor's generic `init(zeros:)` is not specialized
    /// across modules and copies element by element, which is slow on activation-sized tensors.
    @inlinable
    static func zeroed(_ shape: [Int]) -> Tensor<Float> {
        filled(shape: shape) { p in p.initialize(repeating: 0, count: shape.reduce(1, *)) }
    }

    /// A tensor whose scalars are written by `fill` (no zeroing pass first).
    @inlinable
    static func filled(shape: [Int], _ fill: (UnsafeMutablePointer<Float>) -> Void) -> Tensor<Float> {
        let n = shape.reduce(1, *)
        let scalars = [Float](unsafeUninitializedCapacity: n) { buf, count in
            if let p = buf.baseAddress { fill(p) }
            count = n
        }
        return Tensor(shape: shape, scalars: scalars)
    }
}

/// Shorthand to read a tensor's storage.
@inline(__always) func withPointer<R>(_ t: Tensor<Float>, _ body: (UnsafePointer<Float>) -> R) -> R {
    t.scalars.withUnsafeBufferPointer { b in
        guard let p = b.baseAddress else {
            // Zero-sized tensors: hand out a valid dangling pointer that is never read.
            var z: Float = 0
            return withUnsafePointer(to: &z) { body($0) }
        }
        return body(p)
    }
}

/// Shorthand to write a tensor's storage.
@inline(__always) func withMutablePointer<R>(_ t: inout Tensor<Float>, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    t.scalars.withUnsafeMutableBufferPointer { b in
        guard let p = b.baseAddress else {
            var z: Float = 0
            return withUnsafeMutablePointer(to: &z) { body($0) }
        }
        return body(p)
    }
}
