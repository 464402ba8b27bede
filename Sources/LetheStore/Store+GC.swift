/// What gc did (or, with `dryRun`, would do).
public struct GCReport: Sendable, Equatable {
    /// Objects reachable from the roots.
    public var reachable = 0
    /// Unreachable objects removed (or listed), sorted.
    public var swept: [ObjectID] = []
    /// Unreachable objects kept because they are younger than the grace period.
    public var keptYoung = 0
    /// Bytes freed (or that would be).
    public var bytesFreed = 0
    /// Leftover temp files of interrupted writes removed.
    public var abandonedWrites = 0
    /// Whether nothing was deleted.
    public var dryRun = false
}

extension Store {
    /// Removes objects unreachable from the refs and `extraRoots` (e.g. versions the ledger
    /// references), following parents, specs, headers, tensor and basis chunks and delta bases.
    /// Only objects last written more than `grace` seconds ago are removed (0 = `--prune=now`).
    ///
    /// Holds the store lock exclusively, so no writer is between writing an object and
    /// referencing it. Refuses to run when a reachable version or delta base is unreadable
    /// (sweeping then could lose data that is still referenced): run fsck first.
    public func gc(extraRoots: [ObjectID] = [], grace: Double, dryRun: Bool) throws(StoreError) -> GCReport {
        let lock = try self.lock(exclusive: true)
        defer { lock.unlock() }
        var marked = Set<ObjectID>()
        var versions = try refs.list().map(\.id) + extraRoots
        while let v = versions.popLast() {
            guard marked.insert(v).inserted else { continue }
            let ver: Version
            do { ver = try version(v) } catch {
                throw .corruptObject("gc stopped: reachable version \(v.hex) cannot be read (\(error)); run 'lethe fsck'")
            }
            versions += ver.parents
            for r in ver.references where !ver.parents.contains(r) {
                var cursor: ObjectID? = r
                while let c = cursor, marked.insert(c).inserted {
                    guard objects.backend.has(c) else { break }
                    do { cursor = try objects.header(c).base } catch {
                        throw .corruptObject("gc stopped: reachable object \(c.hex) has a damaged header; run 'lethe fsck'")
                    }
                }
            }
        }
        var report = GCReport(dryRun: dryRun)
        let cutoff = Store.now() - grace
        for id in try objects.backend.list() {
            if marked.contains(id) { report.reachable += 1; continue }
            guard let st = objects.backend.stat(id) else { continue }
            if grace > 0 && st.modified > cutoff { report.keptYoung += 1; continue }
            report.swept.append(id)
            report.bytesFreed += st.size
        }
        if !dryRun { try deleteInSafeOrder(report.swept) }
        if !dryRun {
            let (n, bytes) = try objects.backend.removeAbandonedWrites(olderThan: grace > 0 ? cutoff : Store.now() - 3600)
            report.abandonedWrites = n
            report.bytesFreed += bytes
        }
        return report
    }

    /// Deletes unreachable objects so that a gc killed midway never leaves a version object whose
    /// parent or referenced objects are gone (fsck would report them missing): version objects
    /// first, children before their parents, then chunks and blobs (an unreferenced chunk whose
    /// delta base is gone is never reported). Found by the SIGKILL harness (issue 9).
    func deleteInSafeOrder(_ ids: [ObjectID]) throws(StoreError) {
        var versions: [ObjectID] = [], others: [ObjectID] = []
        for id in ids { if (try? objects.header(id).kind) == .version { versions.append(id) } else { others.append(id) } }
        var parents: [ObjectID: [ObjectID]] = [:]
        for v in versions { parents[v] = (try? version(v).parents) ?? [] }
        var remaining = Set(versions)
        var order: [ObjectID] = []
        while !remaining.isEmpty {
            let referenced = Set(remaining.flatMap { parents[$0] ?? [] })
            var leaves = remaining.filter { !referenced.contains($0) }.sorted()
            if leaves.isEmpty { leaves = remaining.sorted() }  // a parent cycle cannot be hashed; stay total anyway
            order += leaves
            remaining.subtract(leaves)
        }
        for id in order + others { try objects.backend.delete(id) }
    }
}
