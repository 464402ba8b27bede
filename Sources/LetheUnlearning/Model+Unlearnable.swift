import LetheNN
import LetheTensor

/// LetheNN models are what PGU unlearns: eval-mode forward (BatchNorm on running statistics,
/// dropout off), layer inputs captured from the forward's own im2col buffers, and in-place
/// access to parameters and gradients.
extension Model: UnlearnableModel {
    public var unlearningLayers: [UnlearningLayer] {
        projectableLayers.map {
            UnlearningLayer(name: $0.name, weightName: $0.weightName, inputDimension: $0.inputDimension, outputCount: $0.outputCount)
        }
    }

    public func forwardForUnlearning(_ x: Tensor<Float>, unfoldStride1: Bool,
                                     capture: ((String, Int, UnsafeBufferPointer<Float>) -> Void)?) -> Tensor<Float> {
        do {
            if let capture {
                return try forwardCapturing(x, unfoldWithStrideOne: unfoldStride1) { layer, rows, n in capture(layer.name, n, rows) }
            }
            return try forward(x, mode: .eval)
        } catch {
            // Inputs come from datasets already checked against the model's input shape.
            preconditionFailure("unlearning forward pass: \(error)")
        }
    }

    public func backwardForUnlearning(_ dLogits: Tensor<Float>) { backward(dLogits) }

    public func withParameter<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        guard let p = parameter(named: name) else { preconditionFailure("no parameter named \(name)") }
        return p.value.scalars.withUnsafeMutableBufferPointer { body($0) }
    }

    public func withGradient<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        guard let p = parameter(named: name) else { preconditionFailure("no parameter named \(name)") }
        return p.grad.scalars.withUnsafeMutableBufferPointer { body($0) }
    }
}

extension LabeledSet {
    /// The images and labels of a LetheNN dataset.
    public init(_ dataset: Dataset) {
        self.init(images: dataset.images, labels: dataset.labels.map(Int.init))
    }
}
