import FoundationEssentials

/// What `gc` did (or, with a dry run, would do).
public struct GarbageCollectionResult: Sendable {
    public var dryRun: Bool
    public var snapshots = 0
    public var liveObjects = 0
    public var deadObjects = 0
    public var packsDeleted = 0
    public var packsRewritten = 0
    public var packsWritten = 0
    public var unindexedPacksDeleted = 0
    public var indexFilesMerged = 0
    public var tmpFilesRemoved = 0
    /// Metadata files of snapshots that no longer exist (an interrupted rm), unprotected ones only.
    public var metadataRemoved = 0
    /// Journals of snapshots whose process died before completing.
    public var failedSnapshotsRemoved = 0
    /// Bytes of repository files (packs and index) before and after.
    public var bytesBefore: Int64 = 0
    public var bytesAfter: Int64 = 0
    public var seconds = 0.0

    /// Bytes freed (estimated for a dry run).
    public var bytesFreed: Int64 { max(0, bytesBefore - bytesAfter) }
}

/// Frees what no snapshot references (the EBS deletion model: deleting a snapshot frees only data no other snapshot
/// needs). Under the exclusive lock: mark every object reachable from every manifest; delete packs with no live
/// object; rewrite packs that are mostly dead (live objects copied to new packs first); write one merged index;
/// only then delete the old index files and the old packs. Killed at any step, the repository stays whole:
/// the worst case is garbage that the next gc removes.
public final class GarbageCollector {
    let repo: Repository
    /// A pack whose dead share of bytes is above this is rewritten.
    let rewriteThreshold: Double
    /// A pack smaller than `packSize` over this is small; at least `smallPacksToMerge` of them are rewritten together.
    static let smallPackDivisor = 4
    static let smallPacksToMerge = 16
    /// Entries per index file written (tests make it small to see the index written in parts).
    let indexFileEntries: Int
    /// Live objects of the packs being rewritten that one pass over the index gathers for copying (packs are never
    /// split across passes). Each pass reads the index files once; a batch is ~4 GiB of 16 KiB chunks to copy, so the
    /// passes cost little next to the copy, and the entries held (~70 bytes each) stay at ~18 MiB however much is
    /// rewritten.
    let copyBatchObjects: Int

    public static let defaultCopyBatchObjects = 1 << 18

    public convenience init(repo: Repository, rewriteThreshold: Double = 0.10) {
        self.init(repo: repo, rewriteThreshold: rewriteThreshold, indexFileEntries: ChunkIndex.mergedFileEntries)
    }

    init(repo: Repository, rewriteThreshold: Double = 0.10, indexFileEntries: Int,
         copyBatchObjects: Int = GarbageCollector.defaultCopyBatchObjects) {
        self.repo = repo
        self.rewriteThreshold = rewriteThreshold
        self.indexFileEntries = indexFileEntries
        self.copyBatchObjects = copyBatchObjects
    }

    /// - Parameter progress: told how many bytes of live objects have been copied out of the packs being rewritten
    ///   (the long part of a gc).
    public func run(dryRun: Bool = false, wait: Bool = true, progress: ProgressReporter? = nil,
                    onWait: () -> Void = {}) throws -> GarbageCollectionResult {
        do {
            return try collect(dryRun: dryRun, wait: wait, progress: progress, onWait: onWait)
        } catch {
            // Signals are looked at only up to the end of the copy: from the new index on, gc finishes. A failed write
            // or removal can come later, after packs were deleted, so its error is told as it is.
            throw Interruption.retell(error, "gc", "nothing was deleted", failures: false)
        }
    }

    private func collect(dryRun: Bool, wait: Bool, progress: ProgressReporter?,
                         onWait: () -> Void) throws -> GarbageCollectionResult {
        let clock = ContinuousClock.now
        var result = GarbageCollectionResult(dryRun: dryRun)
        let lock = try repo.lock(.exclusive, wait: wait, onWait: onWait)
        defer { withExtendedLifetime(lock) {} }

        let index = try ChunkIndex.load(repo, strict: true)
        let (snapshots, damaged) = try SnapshotStore(repo: repo).all()
        if let bad = damaged.first {
            throw StrataError.corrupt("gc stopped: \(bad.problem), so what it needs is unknown; run 'strata fsck'")
        }
        // A protected snapshot whose manifest is missing may get it back (from a copy of the repository): its data
        // is not freed until it is, or until the user releases the protection.
        let metaStore = MetaStore(repo: repo)
        // Read once: under the exclusive lock no rm runs, so what is orphaned now is what gc removes at its end.
        let orphans = metaStore.orphanedIDs().map { (id: $0, protected: (try? metaStore.load($0))?.protected) }
        for (id, protected) in orphans where protected == true {
            throw StrataError.corrupt("gc stopped: snapshot \(id.shortHex) is protected but its manifest is missing, so what it needs is unknown; put the manifest back (snapshots/\(id.hex)) or run 'strata unprotect \(id.hex)'")
        }
        result.snapshots = snapshots.count
        let reader = ObjectReader(repo: repo, index: index)
        let live = try LiveSet.mark(roots: snapshots.map { ($0.id, $0.manifest.rootID!) }, reader: reader)

        // Per pack: live and total bytes, from the index.
        // Counts first; entries are gathered later only for the packs that need them (memory stays at one copy).
        struct PackUse { var live: Int64 = 0; var total: Int64 = 0; var liveObjects = 0 }
        var use = [PackUse](repeating: PackUse(), count: index.packs.count)
        try index.forEach { id, loc in
            let p = Int(loc.pack)
            use[p].total += Int64(loc.length)
            if live.contains(id) {
                use[p].live += Int64(loc.length)
                use[p].liveObjects += 1
                result.liveObjects += 1
            } else {
                result.deadObjects += 1
            }
        }
        let missingLive = live.unslotted.filter { !index.contains($0) }.count
        if missingLive > 0 {
            throw StrataError.corrupt("gc stopped: \(missingLive) objects that snapshots need are missing from the index; run 'strata fsck'")
        }

        // Pack files on disk.
        var onDisk: [ObjectID: (path: String, size: Int64)] = [:]
        for dir in try wrap(try FileSystem.list(repo.packsPath), "cannot list \(repo.packsPath)") {
            let dirPath = FileSystem.join(repo.packsPath, dir)
            for name in try wrap(try FileSystem.list(dirPath), "cannot list \(dirPath)") {
                let path = FileSystem.join(dirPath, name)
                guard let id = ObjectID(hex: name), let st = try? FileSystem.linkStatus(path), st.isRegularFile else { continue }
                onDisk[id] = (path, st.size)
            }
        }
        var indexBytes: Int64 = 0
        for name in index.files {
            indexBytes += (try? FileSystem.status(FileSystem.join(repo.indexPath, name)))??.size ?? 0
        }
        result.bytesBefore = onDisk.values.reduce(0) { $0 + $1.size } + indexBytes

        var deletePacks: [ObjectID] = []
        var rewritePacks: [Int] = []
        var keptBytes: Int64 = 0
        var kept = [Bool](repeating: false, count: index.packs.count)
        for (ordinal, packID) in index.packs.enumerated() {
            let u = use[ordinal]
            let size = onDisk[packID]?.size ?? 0
            if u.live == 0 {
                deletePacks.append(packID)
            } else if u.total > 0 && Double(u.total - u.live) / Double(u.total) > rewriteThreshold {
                rewritePacks.append(ordinal)
            } else {
                kept[ordinal] = true
                keptBytes += size
            }
        }
        // Small packs (a nightly increment's few chunks and its map nodes) are merged once there are many: under
        // nightly snapshots and retention they otherwise only accumulate (2,000 nights: 830 packs of median 129 KB,
        // and a restore opened 768 of them, 0.19–0.31 s against 0.13 from a fresh repository). Merged, at least 16
        // become one, so each byte is rewritten a few times at most before its pack is no longer small.
        let small = kept.indices.filter { kept[$0] && (onDisk[index.packs[$0]]?.size ?? 0) < Int64(repo.config.packSize / Self.smallPackDivisor) }
        if small.count >= Self.smallPacksToMerge {
            for ordinal in small {
                kept[ordinal] = false
                keptBytes -= onDisk[index.packs[ordinal]]?.size ?? 0
                rewritePacks.append(ordinal)
            }
            rewritePacks.sort()
        }
        let indexed = Set(index.packs)
        let unindexed = onDisk.keys.filter { !indexed.contains($0) }
        result.packsDeleted = deletePacks.count
        result.packsRewritten = rewritePacks.count
        result.unindexedPacksDeleted = unindexed.count

        if dryRun {
            var estimate = keptBytes
            for ordinal in rewritePacks {
                let size = onDisk[index.packs[ordinal]]?.size ?? 0
                estimate += Int64(Double(size) * Double(use[ordinal].live) / Double(max(use[ordinal].total, 1)))
            }
            result.bytesAfter = estimate + indexBytes
            result.seconds = clock.secondsElapsed
            return result
        }

        // Copy live objects out of mostly-dead packs, verifying each on the way.
        try Interruption.check()
        let fresh = ChunkIndex()
        // The copies' index entries go to index files as their packs become durable, every 16,384 objects as a
        // snapshot's do, in files of at most `indexFileEntries` (they name only new packs, so a gc stopped half-way
        // leaves objects listed twice, which readers accept): what gc holds does not grow with what it rewrites.
        let packer = ObjectPacker(repo: repo, index: fresh, indexFlushLimit: min(indexFileEntries, Snapshotter.defaultIndexFlushLimit),
                                  indexFileMaxEntries: indexFileEntries)
        var rewrittenContents = IndexFileContents(packs: [], entries: [])
        if !rewritePacks.isEmpty {
            let cache = FrameCache(repo: repo, index: index, capacity: 2)
            let scratch = ByteBuffer(capacity: 64 << 10)
            let toCopyBytes = rewritePacks.reduce(Int64(0)) { $0 + use[$1].live }
            // The packs to rewrite in batches of about `copyBatchObjects` live objects, whole packs each.
            var batches: [[Int]] = [[]]
            var batchObjects = 0
            for ordinal in rewritePacks {
                if !batches[batches.count - 1].isEmpty && batchObjects + use[ordinal].liveObjects > copyBatchObjects {
                    batches.append([])
                    batchObjects = 0
                }
                batches[batches.count - 1].append(ordinal)
                batchObjects += use[ordinal].liveObjects
            }
            var copiedBytes: Int64 = 0
            do {
                for batch in batches {
                    // The live objects of this batch's packs, gathered in one pass over the index.
                    var inBatch = [Bool](repeating: false, count: index.packs.count)
                    for ordinal in batch { inBatch[ordinal] = true }
                    var toCopy: [Int: [(ObjectID, ChunkLocation)]] = [:]
                    try index.forEach { id, loc in
                        if inBatch[Int(loc.pack)] && live.contains(id) { toCopy[Int(loc.pack), default: []].append((id, loc)) }
                    }
                    for ordinal in batch {
                        let entries = (toCopy[ordinal] ?? []).sorted { ($0.1.frameOffset, $0.1.offset) < ($1.1.frameOffset, $1.1.offset) }
                        for (id, loc) in entries {
                            try Interruption.check()
                            let bytes = try cache.object(id, at: loc)
                            let ok = ChunkHasher.objectID(of: bytes, kind: loc.kind, scratch: scratch, identity: repo.identity) == id
                            guard ok else {
                                throw StrataError.corrupt("gc stopped: object \(id.shortHex) in pack \(index.packs[ordinal].shortHex) does not match its hash; run 'strata fsck'")
                            }
                            try packer.add(id: id, kind: loc.kind, bytes: bytes)
                            copiedBytes += Int64(bytes.count)
                            progress?.progress(done: copiedBytes, total: toCopyBytes, newBytes: 0)
                        }
                    }
                }
                rewrittenContents = try packer.finish()
            } catch {
                packer.abandon()
                throw error
            }
            result.packsWritten = packer.totals.packs
        }

        let needsNewIndex = !deletePacks.isEmpty || !rewritePacks.isEmpty || index.files.count > 1
        if needsNewIndex {
            // The index for everything live: kept entries (pack ordinals of `index`) and rewritten ones (of `fresh`),
            // in files of at most `indexFileEntries` entries (one file for all but the largest repositories).
            // A kept pack keeps all its index entries, dead ones included: they stay valid (the pack is still
            // there), a later snapshot may reuse them, and the pack's dead share stays visible to the next gc.
            var newNames = try index.write(where: { _, location in kept[Int(location.pack)] }, maxEntries: indexFileEntries, to: repo)
            newNames += packer.flushedIndexFiles
            var rest = rewrittenContents.entries[...]
            // (At least one file, empty when nothing is kept: the old files must go either way.)
            while !rest.isEmpty || newNames.isEmpty {
                let part = rest.prefix(indexFileEntries)
                rest = rest.dropFirst(part.count)
                newNames.append(try ChunkIndex.write(IndexFileContents(packs: rewrittenContents.packs, entries: Array(part)), to: repo))
            }
            result.indexFilesMerged = index.files.count
            // The new index is durable: the old files, then the packs nothing names any more, can go.
            let keep = Set(newNames)
            try wrap({
                for name in index.files where !keep.contains(name) {
                    try FileSystem.remove(FileSystem.join(repo.indexPath, name))
                }
                try FileSystem.syncDirectory(repo.indexPath)
            }(), "cannot remove old index files")
        }
        var touched: Set<String> = []
        // A pack this gc wrote can bear the name of one it found unindexed or meant to delete: an earlier gc,
        // interrupted after writing its copy of the same live objects and before indexing it, left that very pack,
        // and this gc wrote it again and indexed it. Deleting it would lose live data.
        let written = packer.finishedPacks
        result.unindexedPacksDeleted = unindexed.filter { !written.contains($0) }.count
        try wrap({
            let doomed = (deletePacks + rewritePacks.map { index.packs[$0] } + unindexed).filter { !written.contains($0) }
            for id in doomed {
                guard let entry = onDisk[id] else { continue }
                try FileSystem.remove(entry.path)
                touched.insert(FileSystem.directoryName(entry.path))
            }
            for dir in touched.sorted() {
                try FileSystem.syncDirectory(dir)
                if (try FileSystem.list(dir)).isEmpty { try FileSystem.removeDirectory(dir) }
            }
            if !touched.isEmpty { try FileSystem.syncDirectory(repo.packsPath) }
        }(), "cannot remove packs")
        // Under the exclusive lock no snapshot runs: every journal left is a failed snapshot's. Its packs went above:
        // unindexed ones with the unindexed packs, and those a large snapshot had already indexed as packs whose
        // objects no manifest references.
        result.failedSnapshotsRemoved = try PendingStore(repo: repo).removeFailed()
        // Under the exclusive lock nothing is being written: whatever tmp/ holds is left over from a crash.
        for name in (try? FileSystem.list(repo.tmpPath)) ?? [] {
            // Drafts, and staging folders of interrupted exports and imports.
            try? FileManager.default.removeItem(atPath: FileSystem.join(repo.tmpPath, name))
            result.tmpFilesRemoved += 1
        }
        // Metadata an interrupted rm left without its manifest; a protected one stopped gc above.
        for (id, protected) in orphans where protected == false {
            try metaStore.remove(id)
            result.metadataRemoved += 1
        }
        result.bytesAfter = try repositoryDataBytes()
        result.seconds = clock.secondsElapsed
        return result
    }

    /// Bytes of pack and index files now.
    func repositoryDataBytes() throws -> Int64 {
        var total: Int64 = 0
        for dir in try wrap(try FileSystem.list(repo.packsPath), "cannot list packs") {
            let dirPath = FileSystem.join(repo.packsPath, dir)
            for name in (try? FileSystem.list(dirPath)) ?? [] {
                total += (try? FileSystem.linkStatus(FileSystem.join(dirPath, name)))??.size ?? 0
            }
        }
        for name in (try? FileSystem.list(repo.indexPath)) ?? [] {
            total += (try? FileSystem.linkStatus(FileSystem.join(repo.indexPath, name)))??.size ?? 0
        }
        return total
    }


}
