import Foundation
import Lethe
import LetheCommandLine
import LetheLedger
import LetheTensor
import LetheUnlearning

/// Opens the store and ledger together (reconciling their refs; repairs are reported on stderr).
func openRepository(_ context: CommandContext) throws -> Repository {
    let explicit = try context.globals.option("store", as: String.self)
    let repo = try Repository.open(try StoreLocation.find(explicit: explicit))
    for line in repo.repairs { context.err("lethe: \(line)\n") }
    return repo
}

/// Reads sample ids from a file: integers separated by newlines, commas or spaces; `#` starts a comment.
func readSampleIDs(_ path: String) throws -> [Int] {
    guard let data = FileManager.default.contents(atPath: path) else { throw EngineError.invalid("cannot read sample id file \(path)") }
    var ids: [Int] = []
    for (n, rawLine) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        for token in line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\r" }) {
            guard let v = Int(token) else { throw EngineError.invalid("\(path):\(n + 1): '\(token)' is not a sample id (an integer)") }
            ids.append(v)
        }
    }
    guard !ids.isEmpty else { throw EngineError.invalid("\(path) names no sample ids") }
    return ids
}

/// PGU and measurement options shared by `forget` (and recorded for replay).
enum RecipeOptions {
    static let specs: [OptionSpec] = [
        .option("gamma", value: "auto|x", help: "CGS threshold: auto (search) or a fixed value in (0, 1].", default: "auto"),
        .option("seed", value: "n", help: "Seed of PGU's shuffling and evaluation subsamples.", default: "0"),
        .option("max-epochs", value: "n", help: "Epoch budget per gamma trial.", default: "100"),
        .option("gamma-trials", value: "n", help: "Trials of the automatic gamma search (from the top of its grid).", default: "8"),
        .option("lr", value: "rate", help: "Learning rate of the first epoch.", default: "0.05"),
        .option("final-lr", value: "rate", help: "Learning rate reached at the last epoch.", default: "0.01"),
        .option("batch-size", value: "n", help: "Forget samples per step.", default: "128"),
        .option("collapse-margin", value: "x", help: "Largest allowed drop of held-out accuracy.", default: "0.01"),
        .option("tolerance", value: "x", help: "Largest allowed orthogonality residual rho.", default: "1e-05"),
        .option("split-seed", value: "n", help: "Seed of the test split into validation (held-out) and test halves.", default: "0"),
        .option("threads", value: "n", help: "OpenBLAS and worker threads (recorded; replay uses the same).", default: "1"),
        StepOptions.step, StepOptions.classTarget, StepOptions.scaleCap,
    ]

    static func parse(_ values: ParsedValues) throws(CommandLineError) -> UnlearningRecipe {
        var c = PGUConfiguration()
        let gamma: String = try values.option("gamma", default: "auto")
        let trials: Int = try values.option("gamma-trials", default: 8)
        if gamma == "auto" {
            c.gamma = .auto(low: 0.3, high: 0.99, maxTrials: trials)
        } else if let g = Double(gamma), g > 0, g <= 1 {
            c.gamma = .fixed(g)
        } else {
            throw .usage("The value '\(gamma)' is invalid for '--gamma': expected auto or a number in (0, 1]")
        }
        c.seed = try values.option("seed", default: 0)
        c.maxEpochs = try values.option("max-epochs", default: 100)
        c.learningRate = try values.option("lr", default: 0.05)
        c.finalLearningRate = try values.option("final-lr", default: 0.01)
        c.batchSize = try values.option("batch-size", default: 128)
        c.collapseMargin = try values.option("collapse-margin", default: 0.01)
        c.tolerance = try values.option("tolerance", default: 1e-5)
        try StepOptions.parse(values, into: &c)
        do { try c.validate() } catch { throw .usage(error.description) }
        let threads: Int = try values.option("threads", default: 1)
        guard threads > 0 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
        var recipe = UnlearningRecipe(configuration: c, splitSeed: try values.option("split-seed", default: 0), threads: threads)
        recipe.blasKernel = BLASKernel.current
        return recipe
    }
}

/// `--step` and `--class-target`, shared by `forget` and `unlearn`.
enum StepOptions {
    static let step = OptionSpec.option("step", value: "s", help: "auto (normalized for samples, plain for a class), normalized (steps keep the unprojected gradient's length) or plain.", default: "auto")
    static let classTarget = OptionSpec.option("class-target", value: "x|chance", help: "Class forgetting stops when the class's accuracy reaches this.", default: "0.02")
    static let scaleCap = OptionSpec.option("scale-cap", value: "c|none", help: "Normalized steps: the largest factor a projected gradient is stretched by (1: plain steps; none: no limit).",
                                           default: defaultScaleCap)
    static let defaultScaleCap = PGUConfiguration().normalizedScaleCap.map { String(format: "%g", $0) } ?? "none"

    static func parse(_ values: ParsedValues, into c: inout PGUConfiguration) throws(CommandLineError) {
        let step: String = try values.option("step", default: "auto")
        if step == "auto" {
            c.stepScaling = nil
        } else if let s = PGUConfiguration.StepScaling(rawValue: step) {
            c.stepScaling = s
        } else {
            throw .usage("The value '\(step)' is invalid for '--step': expected auto, normalized or plain")
        }
        let target: String = try values.option("class-target", default: "0.02")
        if target == "chance" {
            c.classTargetAccuracy = nil
        } else if let t = Double(target), t >= 0, t < 1 {
            c.classTargetAccuracy = t
        } else {
            throw .usage("The value '\(target)' is invalid for '--class-target': expected chance or a number in [0, 1)")
        }
        let cap: String = try values.option("scale-cap", default: defaultScaleCap)
        guard let parsed = PGUConfiguration.scaleCap(parsing: cap) else {
            throw .usage("The value '\(cap)' is invalid for '--scale-cap': expected none or a number of at least 1")
        }
        c.normalizedScaleCap = parsed
    }
}

/// `progress` for the engine: one line per message on stderr.
func engineProgress(_ context: CommandContext) -> (String) -> Void {
    { context.err("  \($0)\n") }
}

/// `s` padded with spaces to `width` characters (on the left when `left`).
func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return left ? fill + s : s + fill
}

func fmt(_ v: Double?, _ f: String = "%.4f") -> String { v.map { String(format: f, $0) } ?? "—" }

extension JSONValue {
    static func optional(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
    static func optional(_ v: String?) -> JSONValue { v.map { .string($0) } ?? .null }
}

/// JSON of a layer report.
func layerJSON(_ l: LayerReport) -> JSONValue {
    .object(["layer": .string(l.layer), "d": .int(l.dimension), "k": .int(l.k), "gamma": .number(l.gamma), "rho": .number(l.rho),
             "update_norm": .number(l.updateNorm), "retained_shift": JSONValue.optional(l.retainedShift),
             "rounding_floor": JSONValue.optional(l.roundingFloor)])
}

/// Text table of per-layer figures.
func layerTable(_ layers: [LayerReport]) -> String {
    var s = pad("layer", 20) + "       d       k   gamma        rho  rounding floor  retained shift\n"
    for l in layers {
        s += pad(l.layer, 20) + String(format: " %7d %7d  %6.4f  %9.3e  ", l.dimension, l.k, l.gamma, l.rho)
            + (l.roundingFloor.map { String(format: "%14.3e", $0) } ?? pad("—", 14, left: true)) + "  "
            + (l.retainedShift.map { String(format: "%14.3e", $0) } ?? pad("—", 14, left: true)) + "\n"
    }
    return s
}

/// Text table of metrics (histogram bins left out).
func metricTable(_ metrics: [MetricValue]) -> String {
    var s = pad("metric", 32) + "     before      after\n"
    let noSignal = metrics.first { $0.name == "mia_entropy_no_signal" }
    for m in metrics where !m.name.hasPrefix("forget_entropy_hist") && m.name != "mia_entropy_no_signal" {
        var b = fmt(m.before), a = fmt(m.after)
        if m.name == "mia_entropy" {
            if noSignal?.before == 1 { b = "no signal" }
            if noSignal?.after == 1 { a = "no signal" }
        }
        s += pad(m.name, 32) + " " + pad(b, 10, left: true) + " " + pad(a, 10, left: true) + "\n"
    }
    return s
}
