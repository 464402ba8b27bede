// The JSON record of one evaluation cell (tools/eval/results/<data>-<arch>-<setting>-s<seed>.json).
//
// A cell is one (dataset, architecture, setting, seed). Everything the report shows is derived
// from these files alone, so EVALUATION.md can be re-rendered without re-running anything.
import Foundation
import LetheTensor
import LetheUnlearning

/// Version of the cell file format; the report refuses files of another version.
let cellFormatVersion = 1

/// One evaluation cell.
struct CellResult: Codable, Equatable {
    var format = cellFormatVersion
    var data: String
    var arch: String
    var setting: String
    var seed: UInt64
    /// `git rev-parse --short HEAD` of the code that ran (with `-dirty` for uncommitted changes), when given.
    var commit: String?
    /// The exact command line.
    var command: String
    var machine: MachineInfo
    /// UTC start time, ISO 8601.
    var started: String
    /// Wall seconds of the whole cell.
    var totalSeconds: Double
    /// Training recipe of Original, Retrain and the clean model.
    var training: TrainingRecipe
    /// Baseline hyperparameters.
    var baselines: BaselineRecipe
    /// The PGU configuration every request of the cell used (`PGUConfiguration` as JSON, kept generic
    /// so records stay readable when the configuration gains fields).
    var pgu: JSONAny
    /// Wall seconds to compute the original model's bases (one pass over D_train + eigendecompositions);
    /// not included in PGU's wall time (bases are cached with a version in the store).
    var basesSeconds: Double
    /// Setting-specific facts (forgotten class, poisoned pairs, request sizes).
    var details: [String: String]
    /// One entry per request (one for every setting except sequential ones).
    var steps: [StepResult]
}

/// Where and under what load a cell ran.
struct MachineInfo: Codable, Equatable {
    /// Online processors.
    var processors: Int
    /// `model name` from /proc/cpuinfo.
    var cpu: String
    /// BLAS and layer-loop threads.
    var threads: Int
    /// OpenBLAS's kernel set (nil: recorded before it was, when OpenBLAS's own detection chose it).
    var blasKernel: String?
    /// /proc/loadavg (1, 5, 15 min) when the cell started and ended.
    var loadStart: [Double]
    var loadEnd: [Double]

    /// The current machine.
    static func current(threads: Int) -> MachineInfo {
        MachineInfo(processors: ProcessInfo.processInfo.activeProcessorCount, cpu: cpuModel(), threads: threads,
                    blasKernel: BLASKernel.current, loadStart: loadAverage(), loadEnd: [])
    }

    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    static func loadAverage() -> [Double] {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return [] }
        return text.split(separator: " ").prefix(3).compactMap { Double($0) }
    }
}

/// How Original, Retrain and the clean model are trained.
struct TrainingRecipe: Codable, Equatable {
    var epochs: Int
    var batchSize: Int
    var learningRate: Double
    var schedule: String
    var hidden: [Int]?
    var width: Double?
}

/// The baselines' hyperparameters.
struct BaselineRecipe: Codable, Equatable {
    /// Fine-tune: epochs over D_r.
    var fineTuneEpochs: Int
    /// NegGrad+ and random-label: passes over D_f (each D_f batch paired with a D_r batch).
    var forgetEpochs: Int
    var learningRate: Double
}

/// The measurements after one request.
struct StepResult: Codable, Equatable {
    /// 1-based request number.
    var step: Int
    /// Samples in this request.
    var requestSize: Int
    /// |D_f|: every sample forgotten so far (the set the forget metrics use).
    var forgetCount: Int
    /// |D_r|.
    var retainCount: Int
    var rows: [RowResult]
    /// PGU's own record of this request.
    var pguRun: PGURunInfo?
}

/// One method's model after a request.
struct RowResult: Codable, Equatable {
    /// `original`, `clean` (de-poisoning: trained on the clean labels), `retrain`, `pgu`, `finetune`, `neggrad+`, `random-label`.
    var method: String
    var forgetAccuracy: Double
    var retainAccuracy: Double?
    var validationAccuracy: Double
    var testAccuracy: Double
    /// nil: the entropy attack found no signal.
    var entropyMIA: Double?
    var lossMIAAUC: Double
    /// nil for Retrain itself.
    var jsToRetrain: Double?
    var activationDistanceToRetrain: Double?
    /// L2 distance of all parameters to the Original model of the cell.
    var weightDistanceToOriginal: Double
    /// Wall seconds of this method for this request (Original / clean: training).
    var seconds: Double
    /// The time was read from the weight cache, measured in an earlier process.
    var secondsCached: Bool
    /// CPU seconds of the process (all threads) for the same span; independent of other load on the
    /// machine when the cell runs on one thread. nil in records made before it was measured.
    var cpuSeconds: Double?
    /// Class setting: test accuracy on the forgotten class and on the other classes.
    var classTestAccuracy: Double?
    var otherClassesTestAccuracy: Double?
    /// De-poisoning: accuracy on the poisoned samples' true labels (`forgetAccuracy` uses their wrong labels).
    var trueLabelAccuracy: Double?
    /// Counts of D_f softmax entropies in `histogramBins` equal bins over [0, ln classes].
    var entropyHistogram: [Int]
}

/// PGU's record of one request.
struct PGURunInfo: Codable, Equatable {
    /// `applied` or `failed: reason`.
    var status: String
    var gamma: Double?
    var maxRho: Double
    var timings: [String: Double]
    var trials: [Trial]
    var layers: [Layer]

    struct Trial: Codable, Equatable {
        var gamma: Double
        var learningRateScale: Double
        var epochs: Int
        var outcome: String
        var seconds: Double
        /// Layers left out of the trial (class forgetting); nil for none and in older records.
        var leftOut: [String]?
    }

    struct Layer: Codable, Equatable {
        var layer: String
        var dimension: Int
        var k: Int
        var gamma: Double
        var rho: Double
        /// ‖ΔW X_rᵀ‖/‖W X_rᵀ‖ from the retained basis; nil in older records.
        var retainedShift: Double?
        /// The ρ Float32 rounding of the stored weights alone is expected to leave; nil in older records.
        var roundingFloor: Double?
    }

    init(_ r: PGUResult) {
        switch r.status {
        case .applied: status = "applied"
        case .failed(let why): status = "failed: \(why)"
        }
        gamma = r.gamma
        maxRho = r.maxRho
        timings = r.timings
        trials = r.trials.map { Trial(gamma: $0.gamma, learningRateScale: $0.learningRateScale, epochs: $0.epochs,
                                      outcome: $0.outcome.rawValue, seconds: $0.seconds, leftOut: $0.frozenLayers) }
        layers = r.layers.map { Layer(layer: $0.layer, dimension: $0.dimension, k: $0.k, gamma: $0.gamma, rho: $0.rho,
                                      retainedShift: $0.retainedShift, roundingFloor: $0.roundingFloor) }
    }
}

/// Any JSON value (for records whose shape belongs to another module).
enum JSONAny: Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONAny])
    case object([String: JSONAny])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) { self = .string(s) } else if let a = try? c.decode([JSONAny].self) {
            self = .array(a)
        } else { self = .object(try c.decode([String: JSONAny].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The JSON form of an encodable value.
    static func of<T: Encodable>(_ value: T) throws -> JSONAny {
        try JSONDecoder().decode(JSONAny.self, from: JSONEncoder().encode(value))
    }

    /// A compact one-line rendering: `key value` pairs in key order, nested objects in parentheses.
    var compact: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.compact).joined(separator: ", ") + "]"
        case .object(let o):
            return o.keys.sorted().map { k in
                guard let v = o[k] else { return k }
                if case .object(let inner) = v, inner.isEmpty { return k }
                if case .object = v { return "\(k) (\(v.compact))" }
                return "\(k) \(v.compact)"
            }.joined(separator: ", ")
        }
    }
}

/// Bins of the stored entropy histograms.
let histogramBins = 30

enum CellJSON {
    static func encode(_ cell: CellResult) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try e.encode(cell)
    }

    static func decode(_ data: Data) throws -> CellResult {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode(CellResult.self, from: data)
    }

    /// The file name of a cell.
    static func name(data: String, arch: String, setting: String, seed: UInt64) -> String {
        "\(data)-\(arch)-\(setting)-s\(seed).json"
    }
}
