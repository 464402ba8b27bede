/// Everything an auditor gets for a store or a single request, rendered as JSON or HTML.
public struct AuditReport: Sendable, Codable, Equatable {
    /// When the report was made (ISO 8601, UTC).
    public var generatedAt: String
    /// The store the report describes.
    public var store: String
    /// The latest signed checkpoint and whether the whole log verified against it.
    public var log: LogStatus
    /// Per forget request.
    public var requests: [RequestAudit]
    /// Versions, requests and ref moves in time order.
    public var timeline: [TimelineEvent]

    /// A report.
    public init(generatedAt: String, store: String, log: LogStatus, requests: [RequestAudit], timeline: [TimelineEvent]) {
        self.generatedAt = generatedAt; self.store = store; self.log = log; self.requests = requests; self.timeline = timeline
    }
}

/// State of the tamper-evident log.
public struct LogStatus: Sendable, Codable, Equatable {
    public var treeSize: Int
    public var rootHash: String
    public var checkpointSignatureValid: Bool
    /// `lethe verify` passed: every row recomputes to the signed roots.
    public var verified: Bool
    /// The first problem found, when not verified.
    public var problem: String?

    public init(treeSize: Int, rootHash: String, checkpointSignatureValid: Bool, verified: Bool, problem: String? = nil) {
        self.treeSize = treeSize; self.rootHash = rootHash; self.checkpointSignatureValid = checkpointSignatureValid
        self.verified = verified; self.problem = problem
    }
}

/// One metric measured before and after a request.
public struct MetricRow: Sendable, Codable, Equatable {
    public var name: String
    public var before: Double?
    public var after: Double?
    public init(name: String, before: Double?, after: Double?) { self.name = name; self.before = before; self.after = after }
}

/// Per-layer facts of a request.
public struct LayerRow: Sendable, Codable, Equatable {
    public var layer: String
    public var d: Int
    public var k: Int
    public var gamma: Double
    public var rho: Double
    public init(layer: String, d: Int, k: Int, gamma: Double, rho: Double) {
        self.layer = layer; self.d = d; self.k = k; self.gamma = gamma; self.rho = rho
    }
}

/// A histogram with shared bin edges and one or more named series.
public struct Histogram: Sendable, Codable, Equatable {
    /// Bin edges, count = bins + 1.
    public var edges: [Double]
    /// Counts per series name, each of length bins.
    public var series: [String: [Int]]
    public init(edges: [Double], series: [String: [Int]]) { self.edges = edges; self.series = series }

    /// Counts `values` into `bins` equal bins over [low, high] (values outside are clamped).
    public static func counts(_ values: [Double], low: Double, high: Double, bins: Int) -> [Int] {
        var c = [Int](repeating: 0, count: bins)
        guard high > low, bins > 0 else { return c }
        for v in values where v.isFinite {
            let i = Int(((v - low) / (high - low) * Double(bins)).rounded(.down))
            c[min(max(i, 0), bins - 1)] += 1
        }
        return c
    }
}

/// A Merkle inclusion proof of a request's ledger entry against a checkpoint.
public struct InclusionProofRecord: Sendable, Codable, Equatable {
    public var leafIndex: Int
    public var treeSize: Int
    public var leafHash: String
    public var path: [String]
    public var rootHash: String
    public var verified: Bool
    public init(leafIndex: Int, treeSize: Int, leafHash: String, path: [String], rootHash: String, verified: Bool) {
        self.leafIndex = leafIndex; self.treeSize = treeSize; self.leafHash = leafHash; self.path = path
        self.rootHash = rootHash; self.verified = verified
    }
}

/// The audit of one forget request.
public struct RequestAudit: Sendable, Codable, Equatable {
    public var id: String
    public var requester: String
    public var legalGround: String
    public var status: String
    public var receivedAt: String
    public var deadline: String
    public var appliedAt: String?
    /// Applied on or before the deadline (nil while not applied).
    public var deadlineMet: Bool?
    public var method: String
    public var sampleCount: Int
    public var merkleRoot: String
    public var versionBefore: String
    public var versionAfter: String?
    public var metrics: [MetricRow]
    public var layers: [LayerRow]
    public var entropyHistogram: Histogram?
    public var inclusionProof: InclusionProofRecord?
    /// Later versions or ref moves that brought the forgotten samples back (empty when none).
    public var reintroductions: [String]
    /// Engine phases with their wall time, every γ trial included (nil in reports made without them).
    public var phases: [PhaseRow]?

    public init(id: String, requester: String, legalGround: String, status: String, receivedAt: String, deadline: String,
                appliedAt: String?, deadlineMet: Bool?, method: String, sampleCount: Int, merkleRoot: String,
                versionBefore: String, versionAfter: String?, metrics: [MetricRow], layers: [LayerRow],
                entropyHistogram: Histogram?, inclusionProof: InclusionProofRecord?, reintroductions: [String], phases: [PhaseRow]? = nil) {
        self.id = id; self.requester = requester; self.legalGround = legalGround; self.status = status
        self.receivedAt = receivedAt; self.deadline = deadline; self.appliedAt = appliedAt; self.deadlineMet = deadlineMet
        self.method = method; self.sampleCount = sampleCount; self.merkleRoot = merkleRoot
        self.versionBefore = versionBefore; self.versionAfter = versionAfter; self.metrics = metrics; self.layers = layers
        self.entropyHistogram = entropyHistogram; self.inclusionProof = inclusionProof; self.reintroductions = reintroductions
        self.phases = phases
    }
}

/// One engine phase of a request (`forget_gram`, `trial 2: gamma 0.8175 met after 24 epochs ...`).
public struct PhaseRow: Sendable, Codable, Equatable {
    public var phase: String
    public var seconds: Double
    public init(phase: String, seconds: Double) { self.phase = phase; self.seconds = seconds }
}

/// A point on the store's timeline.
public struct TimelineEvent: Sendable, Codable, Equatable {
    /// ISO 8601 time.
    public var time: String
    /// `version`, `request`, `ref`, `rollback`, `exception`, `gc`.
    public var kind: String
    /// Short label (version id prefix, request id, ref name).
    public var label: String
    public var detail: String
    public init(time: String, kind: String, label: String, detail: String) {
        self.time = time; self.kind = kind; self.label = label; self.detail = detail
    }
}
