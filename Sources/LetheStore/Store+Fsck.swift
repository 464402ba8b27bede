/// What fsck found.
public struct FsckReport: Sendable, Equatable {
    /// Objects examined.
    public var objectsChecked = 0
    /// Version objects parsed.
    public var versionsChecked = 0
    /// Objects whose stored bytes are damaged, with the reason, sorted by id.
    public var corrupt: [(id: ObjectID, reason: String)] = []
    /// Objects referenced but absent, with what references them, sorted by id.
    public var missing: [(id: ObjectID, referencedBy: [String])] = []
    /// Versions that cannot be fully read (they reference a corrupt or missing object,
    /// directly or through a delta base), sorted.
    public var affectedVersions: [ObjectID] = []
    /// Refs whose version is missing, corrupt or affected, sorted.
    public var affectedRefs: [String] = []

    /// True when nothing is wrong.
    public var isClean: Bool { corrupt.isEmpty && missing.isEmpty && affectedVersions.isEmpty && affectedRefs.isEmpty }

    public static func == (a: FsckReport, b: FsckReport) -> Bool {
        a.objectsChecked == b.objectsChecked && a.versionsChecked == b.versionsChecked
            && a.corrupt.map(\.id) == b.corrupt.map(\.id) && a.missing.map(\.id) == b.missing.map(\.id)
            && a.affectedVersions == b.affectedVersions && a.affectedRefs == b.affectedRefs
    }
}

extension Store {
    /// Checks every object and reference.
    ///
    /// Full mode reads every object, checks its header, length and body checksum (which pins
    /// damage to the file that holds it), then decodes it and re-hashes the payload against
    /// the id. `quick` checks headers and references only. Every version that references a
    /// damaged or missing object (directly, or through a chunk's delta base) is reported, and
    /// every ref pointing at such a version or at a missing one.
    public func fsck(quick: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws(StoreError) -> FsckReport {
        var report = FsckReport()
        let ids = try objects.backend.list()
        let present = Set(ids)
        var headers: [ObjectID: ObjectHeader] = [:]
        var bad: [ObjectID: String] = [:]
        for (n, id) in ids.enumerated() {
            report.objectsChecked += 1
            do {
                headers[id] = quick ? try objects.header(id) : try objects.verifyStored(id)
            } catch {
                bad[id] = error.description
            }
            progress?(n + 1, ids.count)
        }
        if !quick {
            // Decode and re-hash objects whose own file and whole delta chain are intact.
            for id in ids where bad[id] == nil {
                if chainProblem(id, headers: headers, present: present, bad: bad) != nil { continue }
                do { _ = try objects.get(id) } catch { bad[id] = error.description }
            }
        }
        var missing: [ObjectID: Set<String>] = [:]
        var affected = Set<ObjectID>()
        var versionIDs: [ObjectID] = []
        for id in ids where bad[id] == nil && headers[id]?.kind == .version {
            versionIDs.append(id)
            let v: Version
            do { v = try version(id) } catch { bad[id] = error.description; continue }
            report.versionsChecked += 1
            var refsWithKind: [(ObjectID, ObjectKind, Int?)] = v.parents.map { ($0, .version, nil) }
            if let s = v.spec { refsWithKind.append((s, .blob, nil)) }
            if let h = v.safetensorsHeader { refsWithKind.append((h, .blob, nil)) }
            for t in v.tensors + v.bases.flatMap({ [$0.u, $0.sigma] }) {
                for (c, r) in zip(t.chunks, t.chunkRanges) { refsWithKind.append((c, .chunk, r.count)) }
            }
            for (r, kind, length) in refsWithKind {
                if !present.contains(r) {
                    missing[r, default: []].insert("version \(id.hex)")
                    affected.insert(id)
                    continue
                }
                if bad[r] != nil { affected.insert(id); continue }
                if let h = headers[r], h.kind != kind || (length != nil && h.payloadLength != length) {
                    bad[r] = "\(r.hex): referenced as a \(kind.name)\(length.map { " of \($0) bytes" } ?? "") but is a \(h.kind.name) of \(h.payloadLength) bytes"
                    affected.insert(id)
                    continue
                }
                if kind == .chunk, let problem = chainProblem(r, headers: headers, present: present, bad: bad) {
                    if case .missing(let m) = problem { missing[m, default: []].insert("chunk \(r.hex)") }
                    affected.insert(id)
                }
            }
        }
        // Versions that turned out corrupt while parsing are not "affected"; they are corrupt.
        affected.subtract(bad.keys)
        for (name, id) in try refs.list() {
            if !present.contains(id) {
                missing[id, default: []].insert("ref \(name)")
                report.affectedRefs.append(name)
            } else if bad[id] != nil || affected.contains(id) || headers[id]?.kind != .version {
                report.affectedRefs.append(name)
            }
        }
        report.corrupt = bad.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 }
        report.missing = missing.map { ($0.key, $0.value.sorted()) }.sorted { $0.0 < $1.0 }
        report.affectedVersions = affected.sorted()
        report.affectedRefs.sort()
        return report
    }

    enum ChainProblem { case missing(ObjectID), damaged(ObjectID) }

    /// The first missing or damaged object on the delta chain below `id` (excluding `id`), or nil.
    func chainProblem(_ id: ObjectID, headers: [ObjectID: ObjectHeader], present: Set<ObjectID>,
                      bad: [ObjectID: String]) -> ChainProblem? {
        var cursor = headers[id]?.base
        var steps = 0
        while let b = cursor, steps <= ObjectHeader.maxDeltaDepth {
            if !present.contains(b) { return .missing(b) }
            if bad[b] != nil { return .damaged(b) }
            cursor = headers[b]?.base
            steps += 1
        }
        return nil
    }
}
