/// What copying a store's objects and refs to other backends did.
public struct MigrationReport: Sendable, Equatable {
    /// Objects in the source.
    public var objects = 0
    /// Objects written to the target.
    public var copied = 0
    /// Objects the target already held (checked by decoding before being accepted).
    public var alreadyPresent = 0
    /// Bytes written.
    public var bytesCopied = 0
    /// Ref moves replayed into the target's history.
    public var refMoves = 0
    /// Refs in the source, with their versions, sorted by name.
    public var refs: [String] = []
    /// The target's fsck after the copy (full: every object read back, decoded and re-hashed).
    public var verifiedObjects = 0
}

extension Store {
    /// Copies every object and every ref (with its whole history, times and reasons kept) to
    /// `backend` and `refs`, then verifies the copy: a full fsck of a store over the target
    /// (every object read back, decoded and re-hashed against its id; every reference present),
    /// the target holds every source object, and every ref points where it does here.
    ///
    /// Objects go first (write-once: an object already in the target is decoded and hash-checked
    /// instead), refs last, so an interrupted run leaves the target without refs or with a
    /// prefix of the history, never a ref naming missing objects; re-running completes it.
    /// The target's refs must be empty or exactly a prefix of this store's history.
    public func copy(to backend: any ObjectBackend, refs target: any RefBackend,
                     progress: ((Int, Int) -> Void)? = nil) throws(StoreError) -> MigrationReport {
        let lock = try self.lock(exclusive: true)  // no local writer or gc while copying
        defer { lock.unlock() }
        var report = MigrationReport()
        let ids = try objects.backend.list()
        report.objects = ids.count
        let targetStore = ObjectStore(backend: backend)
        for (n, id) in ids.enumerated() {
            let bytes = try objects.backend.get(id)
            if try backend.put(id, bytes) {
                report.copied += 1; report.bytesCopied += bytes.count
            } else {
                let h = try targetStore.header(id)
                _ = try targetStore.get(id, kind: h.kind)
                report.alreadyPresent += 1
            }
            progress?(n + 1, ids.count)
        }
        try backend.flush()

        // Refs: replay the history move by move into the target, skipping a prefix it already has.
        let moves = try refs.history(nil)
        var done: [String: Int] = [:]
        let existing = try target.history(nil)
        for m in existing { done[m.ref, default: 0] += 1 }
        var seen: [String: Int] = [:]
        for m in moves {
            seen[m.ref, default: 0] += 1
            let k = seen[m.ref] ?? 0
            if k <= done[m.ref, default: 0] {
                let theirs = existing.filter { $0.ref == m.ref }[k - 1]
                guard theirs.new == m.new, theirs.old == m.old else {
                    throw .invalidInput("the target's history of ref \(m.ref) differs from this store's at move \(k); refusing to merge histories")
                }
                continue
            }
            _ = try target.set(m.ref, to: m.new, reason: m.reason, expected: .some(m.old), time: m.time)
            report.refMoves += 1
        }
        // A ref whose file disagrees with its history (moved without a log line) gets one more move.
        for (name, id) in try refs.list() where try target.get(name) != id {
            _ = try target.set(name, to: id, reason: "migrate-store: current value", expected: nil, time: nil)
            report.refMoves += 1
        }

        // Verify the copy through a store over the target.
        let check = try Store(directory: directory, backend: backend, refs: target)
        let fsck = try check.fsck()
        guard fsck.isClean else {
            let first = fsck.corrupt.first.map { "\($0.id.hex): \($0.reason)" } ?? fsck.missing.first.map { "missing \($0.id.hex)" } ?? "affected refs \(fsck.affectedRefs)"
            throw .corruptObject("the copy does not verify: \(first)")
        }
        let present = Set(try backend.list())
        if let absent = ids.first(where: { !present.contains($0) }) { throw .missingObject("\(absent.hex) was copied but is not listed by the target") }
        let here = try refs.list(), there = try target.list()
        guard here.map(\.name) == there.map(\.name), here.map(\.id) == there.map(\.id) else {
            throw .invalidInput("the target's refs differ after the copy: \(there.map { "\($0.name)=\($0.id.short)" })")
        }
        report.refs = here.map { "\($0.name)=\($0.id.hex)" }
        report.verifiedObjects = fsck.objectsChecked
        return report
    }
}
