import LetheNN
import LetheTensor

/// A Conv2d or Linear layer whose weight PGU updates.
public struct UnlearningLayer: Sendable, Equatable {
    /// Name prefix in the state_dict (`features.0`).
    public var name: String
    /// Weight parameter name (`features.0.weight`).
    public var weightName: String
    /// Input dimension d: C_in·kh·kw for Conv2d, in_features for Linear.
    public var inputDimension: Int
    /// Output count: C_out or out_features. The weight reshaped is (outputCount × d).
    public var outputCount: Int

    /// A layer description.
    public init(name: String, weightName: String, inputDimension: Int, outputCount: Int) {
        self.name = name; self.weightName = weightName; self.inputDimension = inputDimension; self.outputCount = outputCount
    }
}

/// What the PGU engine needs from a model: eval-mode forward with access to each projectable
/// layer's input rows, a backward pass from logits, and in-place access to weights and gradients.
///
/// BatchNorm stays in eval mode and dropout is off throughout unlearning (the paper's setup).
public protocol UnlearnableModel: AnyObject {
    /// Every Conv2d and Linear layer, in forward order.
    var unlearningLayers: [UnlearningLayer] { get }

    /// Eval-mode forward pass that keeps what `backward` needs; returns logits (batch × classes).
    ///
    /// When `capture` is non-nil it is called once per projectable layer with that layer's input
    /// rows (rows × d, row-major): Linear inputs, or Conv2d im2col patch rows at the positions
    /// the layer computes (at every stride-1 position when `unfoldStride1` is true).
    func forwardForUnlearning(_ x: Tensor<Float>, unfoldStride1: Bool,
                              capture: ((_ layer: String, _ rows: Int, _ data: UnsafeBufferPointer<Float>) -> Void)?) -> Tensor<Float>

    /// Backward pass from dLoss/dLogits of the last `forwardForUnlearning`, accumulating gradients.
    func backwardForUnlearning(_ dLogits: Tensor<Float>)

    /// Sets every gradient to zero.
    func zeroGradients()

    /// In-place access to a parameter's values.
    func withParameter<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R

    /// In-place access to a parameter's gradient.
    func withGradient<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R
}

extension UnlearnableModel {
    /// A copy of a parameter's values.
    public func parameterValues(_ name: String) -> [Float] { withParameter(name) { Array($0) } }

    /// Overwrites a parameter's values.
    public func setParameterValues(_ name: String, _ values: [Float]) {
        withParameter(name) { p in
            precondition(p.count == values.count, "\(name): \(values.count) values for \(p.count) scalars")
            for i in 0..<p.count { p[i] = values[i] }
        }
    }

    /// Logits for a whole set, in eval mode, batch by batch.
    public func logits(_ images: Tensor<Float>, batchSize: Int = Training.evaluationBatchSize) -> Tensor<Float> {
        let n = images.shape[0]
        let per = images.count / max(n, 1)
        var out: [Float] = []
        var classes = 0
        var start = 0
        while start < n {
            let end = min(n, start + batchSize)
            var shape = images.shape; shape[0] = end - start
            let batch = Tensor(shape: shape, scalars: Array(images.scalars[(start * per)..<(end * per)]))
            let z = forwardForUnlearning(batch, unfoldStride1: false, capture: nil)
            classes = z.shape[1]
            out.append(contentsOf: z.scalars)
            start = end
        }
        return Tensor(shape: [n, classes], scalars: out)
    }
}
