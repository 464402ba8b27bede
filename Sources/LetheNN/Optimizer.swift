import LetheTensor
#if canImport(Glibc)
import Glibc
#endif

/// An optimizer updates parameters in place from their gradients.
public protocol Optimizer: AnyObject {
    /// Learning rate used by the next `step` (schedules set it each epoch).
    var learningRate: Float { get set }
    /// Applies one update to every parameter from its current gradient.
    func step(_ parameters: [Parameter])
}

/// `torch.optim.SGD`: with weight decay λ, momentum μ, dampening 0:
/// g ← g + λ·w; b ← μ·b + g (b = g on the first step); g ← g + μ·b (nesterov) or b; w ← w − lr·g.
public final class SGD: Optimizer {
    /// Learning rate.
    public var learningRate: Float
    /// Momentum μ (0 disables the buffer).
    public let momentum: Float
    /// L2 weight decay λ.
    public let weightDecay: Float
    /// Nesterov momentum.
    public let nesterov: Bool
    private var buffers: [ObjectIdentifier: [Float]] = [:]

    /// An SGD optimizer.
    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate; self.momentum = momentum; self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    /// Updates every parameter in place from its current gradient.
    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, mu = momentum, wd = weightDecay, nest = nesterov
        for p in parameters {
            let n = p.value.count
            let key = ObjectIdentifier(p)
            let first = buffers[key] == nil
            var buf = buffers.removeValue(forKey: key) ?? (mu != 0 ? [Float](repeating: 0, count: n) : [])
            withMutablePointer(&p.value) { w in
                withPointer(p.grad) { g in
                    if mu == 0 {
                        for i in 0..<n { w[i] -= lr * (g[i] + wd * w[i]) }
                        return
                    }
                    buf.withUnsafeMutableBufferPointer { bb in
                        guard let b = bb.baseAddress else { return }
                        for i in 0..<n {
                            let d = g[i] + wd * w[i]
                            let v = first ? d : mu * b[i] + d
                            b[i] = v
                            w[i] -= lr * (nest ? d + mu * v : v)
                        }
                    }
                }
            }
            if mu != 0 { buffers[key] = buf }
        }
    }
}

/// `torch.optim.Adam` (L2 weight decay added to the gradient, no amsgrad):
/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; w ← w − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε).
public final class Adam: Optimizer {
    /// Learning rate.
    public var learningRate: Float
    /// β1.
    public let beta1: Float
    /// β2.
    public let beta2: Float
    /// ε.
    public let epsilon: Float
    /// L2 weight decay.
    public let weightDecay: Float
    private var moments: [ObjectIdentifier: ([Float], [Float])] = [:]
    private var t = 0

    /// An Adam optimizer.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    /// Updates every parameter in place from its current gradient.
    public func step(_ parameters: [Parameter]) {
        t += 1
        let b1 = beta1, b2 = beta2, eps = epsilon, wd = weightDecay, lr = learningRate
        let c1 = 1 - Float(pow(Double(b1), Double(t))), c2 = 1 - Float(pow(Double(b2), Double(t)))
        let c2s = c2.squareRoot()
        for p in parameters {
            let n = p.value.count, key = ObjectIdentifier(p)
            var (m, v) = moments.removeValue(forKey: key) ?? ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
            withMutablePointer(&p.value) { w in
                withPointer(p.grad) { g in
                    m.withUnsafeMutableBufferPointer { mm in
                        v.withUnsafeMutableBufferPointer { vv in
                            for i in 0..<n {
                                let d = g[i] + wd * w[i]
                                mm[i] = b1 * mm[i] + (1 - b1) * d
                                vv[i] = b2 * vv[i] + (1 - b2) * d * d
                                // PyTorch: denom = sqrt(v)/sqrt(c2) + eps; w -= (lr/c1) · m / denom
                                w[i] -= (lr / c1) * mm[i] / (vv[i].squareRoot() / c2s + eps)
                            }
                        }
                    }
                }
            }
            moments[key] = (m, v)
        }
    }
}

/// Learning-rate schedules, evaluated per epoch (0-based) as PyTorch's epoch-stepped schedulers.
public enum LRSchedule: Sendable, Equatable {
    /// lr₀ for every epoch.
    case constant
    /// lr₀ · γ^⌊epoch / stepSize⌋ (`StepLR`).
    case step(stepSize: Int, gamma: Float)
    /// lr₀ · γ^epoch (`ExponentialLR`).
    case exponential(gamma: Float)
    /// η_min + (lr₀ − η_min)·(1 + cos(π·epoch/T))/2 (`CosineAnnealingLR` with T_max = T).
    case cosine(totalEpochs: Int, minimum: Float)

    /// The learning rate for `epoch` from base rate `base`.
    public func rate(base: Float, epoch: Int) -> Float {
        switch self {
        case .constant: return base
        case .step(let s, let g): return base * Float(pow(Double(g), Double(epoch / max(s, 1))))
        case .exponential(let g): return base * Float(pow(Double(g), Double(epoch)))
        case .cosine(let t, let mn):
            let c = cos(Double.pi * Double(min(epoch, t)) / Double(max(t, 1)))
            return mn + (base - mn) * Float((1 + c) / 2)
        }
    }

    /// Parses `constant`, `step:S:G`, `exp:G`, `cosine` (T = `epochs`) or `cosine:MIN`.
    public static func parse(_ text: String, epochs: Int) throws(NNError) -> LRSchedule {
        let parts = text.split(separator: ":").map(String.init)
        switch parts.first ?? "" {
        case "constant" where parts.count == 1: return .constant
        case "step" where parts.count == 3:
            if let s = Int(parts[1]), let g = Float(parts[2]), s > 0 { return .step(stepSize: s, gamma: g) }
        case "exp" where parts.count == 2, "exponential" where parts.count == 2:
            if let g = Float(parts[1]) { return .exponential(gamma: g) }
        case "cosine" where parts.count <= 2:
            let mn = parts.count == 2 ? Float(parts[1]) : 0
            if let mn { return .cosine(totalEpochs: epochs, minimum: mn) }
        default: break
        }
        throw .invalidConfiguration("unknown LR schedule \"\(text)\" (constant, step:SIZE:GAMMA, exp:GAMMA, cosine[:MIN])")
    }
}
