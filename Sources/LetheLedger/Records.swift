import Foundation
import LetheCrypto

/// A dataset the store knows: its content digest, size and where it came from.
public struct DatasetRecord: Sendable, Equatable {
    /// Content digest (lowercase hex), the dataset's identity.
    public var digest: String
    /// Optional human name ("digits", "fashion-mnist").
    public var name: String?
    /// Number of samples.
    public var sampleCount: Int
    /// Where it came from (a path, URL or description).
    public var source: String
    /// When it was recorded.
    public var recordedAt: Date

    /// A dataset record.
    public init(digest: String, name: String? = nil, sampleCount: Int, source: String, recordedAt: Date = Date()) {
        self.digest = digest; self.name = name; self.sampleCount = sampleCount; self.source = source
        self.recordedAt = recordedAt
    }
}

/// One tensor of a version as the store wrote it.
public struct TensorRecord: Sendable, Equatable {
    /// PyTorch-style parameter name (`features.0.weight`).
    public var name: String
    /// Element type (`F32`, ...).
    public var dtype: String
    /// Shape.
    public var shape: [Int]
    /// Uncompressed size in bytes.
    public var bytesLogical: Int64
    /// Bytes actually stored (after codec / delta).
    public var bytesStored: Int64
    /// Codec name (`raw`, `zstd`, `delta+zstd`...).
    public var codec: String
    /// Number of stored chunks.
    public var chunkCount: Int

    /// A tensor record.
    public init(name: String, dtype: String, shape: [Int], bytesLogical: Int64, bytesStored: Int64, codec: String, chunkCount: Int) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.bytesLogical = bytesLogical
        self.bytesStored = bytesStored; self.codec = codec; self.chunkCount = chunkCount
    }
}

/// A model version as the store wrote it (mirrors the store's version object).
public struct VersionRecord: Sendable, Equatable {
    /// Version id (content address).
    public var id: String
    /// Parent version ids, first parent first (empty for a root version).
    public var parents: [String]
    /// Creation time.
    public var createdAt: Date
    /// Who made it.
    public var author: String
    /// Commit-style message.
    public var message: String
    /// Digest of the model spec, if any.
    public var specDigest: String?
    /// Digest of the dataset it was trained on, if any (must be recorded first).
    public var datasetDigest: String?
    /// Total stored bytes.
    public var bytesStored: Int64
    /// Total logical bytes.
    public var bytesLogical: Int64
    /// Its tensors.
    public var tensors: [TensorRecord]

    /// A version record.
    public init(id: String, parents: [String] = [], createdAt: Date = Date(), author: String, message: String,
                specDigest: String? = nil, datasetDigest: String? = nil, bytesStored: Int64, bytesLogical: Int64,
                tensors: [TensorRecord] = []) {
        self.id = id; self.parents = parents; self.createdAt = createdAt; self.author = author; self.message = message
        self.specDigest = specDigest; self.datasetDigest = datasetDigest; self.bytesStored = bytesStored
        self.bytesLogical = bytesLogical; self.tensors = tensors
    }
}

/// A ref moving from one version to another.
public struct RefMove: Sendable, Equatable {
    /// Ref name (`prod`).
    public var ref: String
    /// Where it pointed before (nil when created).
    public var oldVersion: String?
    /// Where it points now.
    public var newVersion: String
    /// Why (`forget R3`, `rollback`, `train`).
    public var reason: String
    /// When.
    public var movedAt: Date

    /// A ref move.
    public init(ref: String, oldVersion: String?, newVersion: String, reason: String, movedAt: Date = Date()) {
        self.ref = ref; self.oldVersion = oldVersion; self.newVersion = newVersion; self.reason = reason; self.movedAt = movedAt
    }
}

/// One sample named by a forget request: its id in the dataset and the SHA-256 of its bytes.
public struct ForgottenSample: Sendable, Equatable, Hashable {
    /// Digest of the dataset the sample belongs to.
    public var datasetDigest: String
    /// Sample id within the dataset (an index or a key).
    public var sampleID: String
    /// SHA-256 of the sample's canonical bytes.
    public var sampleHash: Digest

    /// A forgotten sample.
    public init(datasetDigest: String, sampleID: String, sampleHash: Digest) {
        self.datasetDigest = datasetDigest; self.sampleID = sampleID; self.sampleHash = sampleHash
    }

    /// The bytes this sample contributes as one leaf of the request's sample tree:
    /// `u32be(len(sample_id)) ‖ utf8(sample_id) ‖ sample_hash (32 bytes)`.
    public var leafEntry: [UInt8] {
        var out: [UInt8] = []
        let id = Array(sampleID.utf8)
        out.append(contentsOf: withUnsafeBytes(of: UInt32(id.count).bigEndian, Array.init))
        out.append(contentsOf: id)
        out.append(contentsOf: sampleHash.bytes)
        return out
    }

    /// The commitment to a request's samples: the RFC 6962 Merkle root over `leafEntry` of
    /// each sample, in the order given. Recompute it from re-supplied samples to check them.
    public static func merkleRoot(_ samples: [ForgottenSample]) -> Digest {
        Merkle.root(samples.map { Merkle.leafHash($0.leafEntry) })
    }
}

/// A data-deletion (GDPR Art. 17) request as received.
public struct ForgetRequest: Sendable, Equatable {
    /// Request id (`R1`, a ticket number...).
    public var id: String
    /// Who asked (a label, never personal data beyond what is needed).
    public var requester: String
    /// Legal ground (`GDPR Art. 17(1)(b)`).
    public var legalGround: String
    /// When it was received.
    public var receivedAt: Date
    /// When it must be done by; defaults to received + 30 days.
    public var deadline: Date
    /// Dataset the samples belong to (must be recorded first).
    public var datasetDigest: String
    /// The ref it targets, if any.
    public var ref: String?
    /// The samples named (ids and hashes only).
    public var samples: [ForgottenSample]

    /// A request; `deadline` defaults to `receivedAt` + 30 days.
    public init(id: String, requester: String, legalGround: String, receivedAt: Date = Date(), deadline: Date? = nil,
                datasetDigest: String, ref: String? = nil, samples: [ForgottenSample]) {
        self.id = id; self.requester = requester; self.legalGround = legalGround; self.receivedAt = receivedAt
        self.deadline = deadline ?? receivedAt.addingTimeInterval(30 * 86_400)
        self.datasetDigest = datasetDigest; self.ref = ref; self.samples = samples
    }

    /// The Merkle root of `samples` (see `ForgottenSample.merkleRoot`).
    public var samplesRoot: Digest { ForgottenSample.merkleRoot(samples) }
}

/// The final status of a request.
public enum RequestStatus: String, Sendable, Equatable, CaseIterable {
    /// Recorded, not yet decided.
    case received
    /// Forgotten; a new version exists.
    case applied
    /// Refused (e.g. already forgotten, not a valid ground).
    case rejected
    /// The engine failed (e.g. a ρ_l above tolerance); nothing changed.
    case failed
}

/// Per-layer figures of a PGU run.
public struct LayerStat: Sendable, Equatable {
    /// Layer name (`features.0`).
    public var layer: String
    /// Dimension d_l of the layer's input space.
    public var d: Int
    /// Retained core-space rank k_l.
    public var k: Int
    /// Energy threshold γ used to pick k.
    public var gamma: Double?
    /// Residual ρ_l = ‖ΔW U_k‖ / ‖ΔW‖.
    public var rho: Double?

    /// A layer stat.
    public init(layer: String, d: Int, k: Int, gamma: Double?, rho: Double?) {
        self.layer = layer; self.d = d; self.k = k; self.gamma = gamma; self.rho = rho
    }
}

/// A metric before and after a request (accuracies, MIA, JS...).
public struct MetricValue: Sendable, Equatable {
    /// Metric name (`forget_acc`).
    public var name: String
    /// Value before.
    public var before: Double?
    /// Value after.
    public var after: Double?

    /// A metric.
    public init(name: String, before: Double?, after: Double?) { self.name = name; self.before = before; self.after = after }
}

/// Wall time of one engine phase.
public struct PhaseTiming: Sendable, Equatable {
    /// Phase name (`gram`, `downdate`, `sgd`...).
    public var phase: String
    /// Seconds.
    public var seconds: Double

    /// A timing.
    public init(phase: String, seconds: Double) { self.phase = phase; self.seconds = seconds }
}

/// The decision on a request and everything needed to replay and audit it.
public struct RequestOutcome: Sendable, Equatable {
    /// The request.
    public var requestID: String
    /// `.applied`, `.rejected` or `.failed` (never `.received`).
    public var status: RequestStatus
    /// When it was decided.
    public var decidedAt: Date
    /// The version the engine started from.
    public var versionBefore: String?
    /// The version it produced (applied only).
    public var versionAfter: String?
    /// Method (`pgu`, `finetune`...).
    public var method: String?
    /// Every hyperparameter, as a JSON object text.
    public var hyperparameters: String
    /// Every seed, as JSON text.
    public var seeds: String
    /// BLAS / worker thread count used (replay uses the same).
    public var threadCount: Int?
    /// Why it was rejected or failed.
    public var reason: String?
    /// Per-layer d/k/γ/ρ.
    public var layers: [LayerStat]
    /// Metrics before/after.
    public var metrics: [MetricValue]
    /// Phase timings.
    public var timings: [PhaseTiming]

    /// An outcome.
    public init(requestID: String, status: RequestStatus, decidedAt: Date = Date(), versionBefore: String? = nil,
                versionAfter: String? = nil, method: String? = nil, hyperparameters: String = "{}", seeds: String = "{}",
                threadCount: Int? = nil, reason: String? = nil, layers: [LayerStat] = [], metrics: [MetricValue] = [],
                timings: [PhaseTiming] = []) {
        self.requestID = requestID; self.status = status; self.decidedAt = decidedAt; self.versionBefore = versionBefore
        self.versionAfter = versionAfter; self.method = method; self.hyperparameters = hyperparameters; self.seeds = seeds
        self.threadCount = threadCount; self.reason = reason; self.layers = layers; self.metrics = metrics; self.timings = timings
    }
}

/// How a rollback was performed.
public enum RollbackMode: String, Sendable, Equatable {
    /// The target contained no later-forgotten samples.
    case plain
    /// Later requests were re-applied on top of the target, giving `resultVersion`.
    case reapply
    /// Forced over a compliance objection (recorded with a compliance exception).
    case force
}

/// A ref rolled back to an earlier version.
public struct RollbackRecord: Sendable, Equatable {
    /// The ref.
    public var ref: String
    /// Where it pointed.
    public var fromVersion: String?
    /// The version rolled back to.
    public var toVersion: String
    /// How.
    public var mode: RollbackMode
    /// Why (required for `.force`).
    public var reason: String?
    /// The version the ref ends at (differs from `toVersion` for `.reapply`).
    public var resultVersion: String?
    /// When.
    public var performedAt: Date

    /// A rollback.
    public init(ref: String, fromVersion: String?, toVersion: String, mode: RollbackMode, reason: String? = nil,
                resultVersion: String? = nil, performedAt: Date = Date()) {
        self.ref = ref; self.fromVersion = fromVersion; self.toVersion = toVersion; self.mode = mode; self.reason = reason
        self.resultVersion = resultVersion; self.performedAt = performedAt
    }
}

/// An object removed by garbage collection.
public struct GCDeletion: Sendable, Equatable {
    /// Object id.
    public var object: String
    /// Object kind (`tensor`, `basis`, `version`).
    public var kind: String
    /// Bytes freed.
    public var bytes: Int64
    /// Why (`unreachable`).
    public var reason: String
    /// When.
    public var deletedAt: Date

    /// A deletion.
    public init(object: String, kind: String, bytes: Int64, reason: String, deletedAt: Date = Date()) {
        self.object = object; self.kind = kind; self.bytes = bytes; self.reason = reason; self.deletedAt = deletedAt
    }
}

/// A deliberate departure from the forget guarantees (e.g. `rollback --force`).
public struct ComplianceException: Sendable, Equatable {
    /// Kind (`forced-rollback`).
    public var kind: String
    /// The reason given.
    public var reason: String
    /// Who.
    public var author: String
    /// Requests affected.
    public var requestIDs: [String]
    /// When.
    public var createdAt: Date

    /// An exception.
    public init(kind: String, reason: String, author: String, requestIDs: [String], createdAt: Date = Date()) {
        self.kind = kind; self.reason = reason; self.author = author; self.requestIDs = requestIDs; self.createdAt = createdAt
    }
}

/// Ledger timestamps: UTC `YYYY-MM-DDTHH:MM:SS.sssZ`, millisecond precision, sortable as text.
public enum LedgerTime {
    /// Formats a date.
    public static func string(_ date: Date) -> String {
        let totalMS = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var secs = totalMS / 1000, ms = totalMS % 1000
        if ms < 0 { ms += 1000; secs -= 1 }
        var t = time_t(secs)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// Parses the ledger format back; nil when malformed.
    public static func date(_ text: String) -> Date? {
        let u = Array(text.utf8)
        guard u.count == 24, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58, u[19] == 46, u[23] == 90 else { return nil }
        func num(_ r: Range<Int>) -> Int32? { Int32(String(decoding: u[r], as: UTF8.self)) }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16),
              let s = num(17..<19), let ms = num(20..<23) else { return nil }
        var parts = tm()
        parts.tm_year = y - 1900; parts.tm_mon = mo - 1; parts.tm_mday = d; parts.tm_hour = h; parts.tm_min = mi; parts.tm_sec = s
        let t = timegm(&parts)
        return Date(timeIntervalSince1970: Double(t) + Double(ms) / 1000)
    }
}
