import LetheTensor

/// A retained basis to store with a version: U (d × r), σ (r), d and optionally k.
public struct BasisInput: Sendable {
    /// Layer name.
    public var layer: String
    /// U as an F64 tensor named `<layer>.U`.
    public var u: NamedTensor
    /// σ as an F64 vector named `<layer>.sigma`.
    public var sigma: NamedTensor
    /// The layer's input dimension.
    public var d: Int
    /// The retained rank.
    public var k: Int?

    /// A basis from a d × r matrix and r singular values.
    public init(layer: String, u: Tensor<Double>, sigma: [Double], d: Int, k: Int?) {
        self.layer = layer
        self.u = NamedTensor(name: layer + ".U", dtype: .f64, shape: u.shape, data: u.scalars.withUnsafeBytes { Array($0) })
        self.sigma = NamedTensor(name: layer + ".sigma", dtype: .f64, shape: [sigma.count], data: sigma.withUnsafeBytes { Array($0) })
        self.d = d; self.k = k
    }
}

extension Store {
    /// Writes a new version = `parent` with `changed` tensors replaced or added, `removed`
    /// dropped and `bases` merged in by layer (nil keeps the parent's); each chunk is stored
    /// with the smallest codec, XOR-delta against the parent's same-named tensor when it helps.
    /// With `ref`, the ref moves to the new version (the moment it becomes visible).
    ///
    /// - Parameter spec: new model spec JSON text; nil keeps the parent's.
    public func writeVersion(parent: ObjectID?, changed: [NamedTensor], removed: [String] = [], bases: [BasisInput]? = nil,
                             spec: [UInt8]? = nil, metadata: VersionMetadata,
                             ref: (name: String, reason: String)? = nil) throws(StoreError) -> WriteResult {
        let p = try parent.map { (id) throws(StoreError) -> Version in try version(id) }
        if let spec {
            do { _ = try OrderedJSONParser.parse(spec) } catch { throw .invalidInput("model spec is not JSON: \(error)") }
        }
        var names = Set<String>()
        for t in changed {
            try Store.validateName(t.name)
            guard names.insert(t.name).inserted else { throw .invalidInput("tensor \(t.name) given twice") }
        }
        let lock = try self.lock(exclusive: false)
        defer { lock.unlock() }
        do {
            return try writeVersionData(parent: parent, p, changed: changed, removed: removed, bases: bases, spec: spec,
                                        metadata: metadata, ref: ref)
        } catch {
            objects.backend.discardPending()  // nothing half-written stays behind
            throw error
        }
    }

    private func writeVersionData(parent: ObjectID?, _ p: Version?, changed: [NamedTensor], removed: [String], bases: [BasisInput]?,
                                  spec: [UInt8]?, metadata: VersionMetadata,
                                  ref: (name: String, reason: String)?) throws(StoreError) -> WriteResult {
        var stats = WriteStats()
        var tensors = (p?.tensors ?? []).filter { !removed.contains($0.name) }
        for t in changed {
            let stored = try storeTensor(t, parent: p?.tensor(t.name), stats: &stats)
            if let i = tensors.firstIndex(where: { $0.name == t.name }) { tensors[i] = stored } else { tensors.append(stored) }
        }
        var basisList = p?.bases ?? []
        for b in bases ?? [] {
            let old = basisList.first { $0.layer == b.layer }
            let u = try storeTensor(b.u, parent: old?.u, stats: &stats)
            let s = try storeTensor(b.sigma, parent: old?.sigma, stats: &stats)
            let nb = StoredBasis(layer: b.layer, u: u, sigma: s, d: b.d, k: b.k)
            if let i = basisList.firstIndex(where: { $0.layer == b.layer }) { basisList[i] = nb } else { basisList.append(nb) }
        }
        var specID = p?.spec
        if let spec {
            let r = try objects.put(kind: .blob, payload: spec)
            stats.add(r, payload: 0)
            specID = r.id
        }
        let v = Version(spec: specID, parents: parent.map { [$0] } ?? [], tensors: tensors, bases: basisList,
                        safetensorsHeader: p?.safetensorsHeader, metadata: metadata)
        let id = try commit(v, ref: ref, stats: &stats)
        return WriteResult(version: id, stats: stats)
    }

    /// The bases of a version, decoded: per layer U (d × r), σ, d and k.
    public func bases(of id: ObjectID) throws(StoreError) -> [(layer: String, u: Tensor<Double>, sigma: [Double], d: Int, k: Int?)] {
        var out: [(String, Tensor<Double>, [Double], Int, Int?)] = []
        for b in try version(id).bases {
            let u = try read(b.u), s = try read(b.sigma)
            guard u.dtype == .f64, s.dtype == .f64 else { throw .corruptObject("basis \(b.layer) is not F64") }
            let uv = u.data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let sv = s.data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            out.append((b.layer, Tensor(shape: u.shape, scalars: uv), sv, b.d, b.k))
        }
        return out
    }

    /// The model spec JSON text of a version, or nil.
    public func spec(of id: ObjectID) throws(StoreError) -> [UInt8]? {
        guard let s = try version(id).spec else { return nil }
        return try blob(s)
    }
}
