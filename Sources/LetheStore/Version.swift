import LetheTensor

/// A tensor as the store keeps it: name, dtype, shape and the chunk objects holding its bytes.
public struct StoredTensor: Sendable, Equatable {
    /// PyTorch state_dict name.
    public var name: String
    /// Element type.
    public var dtype: DType
    /// Extents, outermost first.
    public var shape: [Int]
    /// Bytes per chunk (the last chunk may be shorter).
    public var chunkBytes: Int
    /// Chunk objects in order.
    public var chunks: [ObjectID]

    /// A stored tensor.
    public init(name: String, dtype: DType, shape: [Int], chunkBytes: Int, chunks: [ObjectID]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.chunkBytes = chunkBytes; self.chunks = chunks
    }

    /// Element count.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Total bytes.
    public var byteCount: Int { elementCount * dtype.byteSize }
    /// The byte range of each chunk.
    public var chunkRanges: [Range<Int>] { ChunkLayout.ranges(byteCount: byteCount, chunkBytes: chunkBytes) }

    var json: CanonicalJSON {
        .object(["name": .string(name), "dtype": .string(dtype.rawValue), "shape": .array(shape.map { .int($0) }),
                 "chunk_bytes": .int(chunkBytes), "chunks": .array(chunks.map { .string($0.hex) })])
    }

    init(_ r: JSONReader) throws(StoreError) {
        name = try r.field("name").string()
        let dt = try r.field("dtype").string()
        guard let d = DType(rawValue: dt) else { throw r.fail("unknown dtype \(dt)") }
        dtype = d
        shape = []
        for x in try r.field("shape").array() {
            let v = try x.int()
            guard v >= 0 else { throw r.fail("negative extent") }
            shape.append(v)
        }
        chunkBytes = try r.field("chunk_bytes").int()
        chunks = []
        for x in try r.field("chunks").array() { chunks.append(try x.id()) }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw r.fail("shape of \(name) overflows") }
            count = p
        }
        guard chunkBytes > 0, chunkBytes % 8 == 0, chunkBytes <= ChunkLayout.maxChunkBytes,
              chunks.count == ChunkLayout.ranges(byteCount: count * dtype.byteSize, chunkBytes: chunkBytes).count else {
            throw r.fail("tensor \(name) has inconsistent chunks")
        }
    }
}

/// A retained basis of one layer, as PGU needs it: U (d × r, F64), σ (r, F64), d and optionally k.
public struct StoredBasis: Sendable, Equatable {
    /// Layer name (e.g. `features.0`).
    public var layer: String
    /// The basis vectors U.
    public var u: StoredTensor
    /// The singular values σ.
    public var sigma: StoredTensor
    /// The input dimension d of the layer.
    public var d: Int
    /// The retained rank k, when chosen.
    public var k: Int?

    var json: CanonicalJSON {
        .object(["layer": .string(layer), "u": u.json, "sigma": sigma.json, "d": .int(d), "k": k.map { .int($0) } ?? .null])
    }

    init(layer: String, u: StoredTensor, sigma: StoredTensor, d: Int, k: Int?) {
        self.layer = layer; self.u = u; self.sigma = sigma; self.d = d; self.k = k
    }

    init(_ r: JSONReader) throws(StoreError) {
        layer = try r.field("layer").string()
        u = try StoredTensor(r.field("u"))
        sigma = try StoredTensor(r.field("sigma"))
        d = try r.field("d").int()
        if let kv = r["k"], !kv.isNull() { k = try kv.int() } else { k = nil }
    }
}

/// Who made a version, when and why.
public struct VersionMetadata: Sendable, Equatable {
    /// Author (user name or tool).
    public var author: String
    /// Seconds since the Unix epoch.
    public var time: Int
    /// Message.
    public var message: String
    /// Digest of the training dataset, when known.
    public var datasetDigest: String?

    /// Metadata; `time` defaults to now.
    public init(author: String, time: Int = Int(Store.now()), message: String, datasetDigest: String? = nil) {
        self.author = author; self.time = time; self.message = message; self.datasetDigest = datasetDigest
    }
}

/// A version: the model spec, tensors, parents, retained bases and metadata.
public struct Version: Sendable, Equatable {
    /// Format of the version object.
    public static let format = 1

    /// The model spec (a blob of JSON text), or nil for a tensors-only import.
    public var spec: ObjectID?
    /// Parent versions (first parent first).
    public var parents: [ObjectID]
    /// Tensors in file order.
    public var tensors: [StoredTensor]
    /// Retained bases, by layer name ascending.
    public var bases: [StoredBasis]
    /// The original safetensors header (a blob), kept so export is byte-identical.
    public var safetensorsHeader: ObjectID?
    /// Author, time, message, dataset digest.
    public var metadata: VersionMetadata

    /// A version.
    public init(spec: ObjectID?, parents: [ObjectID], tensors: [StoredTensor], bases: [StoredBasis],
                safetensorsHeader: ObjectID?, metadata: VersionMetadata) {
        self.spec = spec; self.parents = parents; self.tensors = tensors
        self.bases = bases.sorted { $0.layer < $1.layer }
        self.safetensorsHeader = safetensorsHeader; self.metadata = metadata
    }

    /// The tensor named `name`.
    public func tensor(_ name: String) -> StoredTensor? { tensors.first { $0.name == name } }

    /// Every object this version references directly (spec, header, parents, chunks).
    public var references: [ObjectID] {
        var out: [ObjectID] = parents
        if let spec { out.append(spec) }
        if let safetensorsHeader { out.append(safetensorsHeader) }
        for t in tensors { out += t.chunks }
        for b in bases { out += b.u.chunks + b.sigma.chunks }
        return out
    }

    /// The canonical JSON payload.
    public func encoded() -> [UInt8] {
        var meta: [String: CanonicalJSON] = ["author": .string(metadata.author), "time": .int(metadata.time),
                                             "message": .string(metadata.message)]
        meta["dataset_digest"] = metadata.datasetDigest.map { .string($0) } ?? .null
        return CanonicalJSON.object([
            "format": .int(Version.format),
            "spec": spec.map { .string($0.hex) } ?? .null,
            "parents": .array(parents.map { .string($0.hex) }),
            "tensors": .array(tensors.map(\.json)),
            "bases": .array(bases.map(\.json)),
            "safetensors_header": safetensorsHeader.map { .string($0.hex) } ?? .null,
            "metadata": .object(meta),
        ]).bytes
    }

    /// Parses a version payload; `what` names it in errors.
    public static func decode(_ bytes: [UInt8], what: String) throws(StoreError) -> Version {
        let doc: OrderedJSON
        do { doc = try OrderedJSONParser.parse(bytes) } catch { throw .corruptObject("\(what): version is not JSON (\(error))") }
        let r = JSONReader(value: doc, what: what)
        guard try r.field("format").int() == format else { throw r.fail("unknown version format") }
        var parents: [ObjectID] = []
        for p in try r.field("parents").array() { parents.append(try p.id()) }
        var tensors: [StoredTensor] = []
        for t in try r.field("tensors").array() { tensors.append(try StoredTensor(t)) }
        var bases: [StoredBasis] = []
        for b in try r.field("bases").array() { bases.append(try StoredBasis(b)) }
        let m = try r.field("metadata")
        let meta = VersionMetadata(author: try m.field("author").string(), time: try m.field("time").int(),
                                   message: try m.field("message").string(), datasetDigest: try m.optionalString("dataset_digest"))
        return Version(spec: try r.optionalID("spec"), parents: parents, tensors: tensors, bases: bases,
                       safetensorsHeader: try r.optionalID("safetensors_header"), metadata: meta)
    }
}
