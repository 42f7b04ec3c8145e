import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// What a copy did.
public struct CopyResult: Sendable {
    /// Source snapshot id → the new snapshot's id in the target.
    public var copied: [(source: ObjectID, target: ObjectID)] = []
    /// True when the repositories share chunking and only missing chunks travelled; false for a complete copy.
    public var incremental = true
    /// Objects (chunks and map nodes) the target lacked and received, and their uncompressed bytes.
    public var objectsCopied = 0
    public var bytesCopied: Int64 = 0
    /// Bytes of pack files written into the target.
    public var storedBytes: Int64 = 0
    /// Frames that travelled as they were stored (compressed, verified, not compressed again).
    public var wholeFrames = 0
    /// Snapshots the target already had (copied before): not copied again.
    public var skipped = 0
    /// Wall time of the whole operation (for export and import, every stage: bundle, checks and copy).
    public var seconds = 0.0

    public init() {}
}

/// What makes two snapshots the same snapshot for `copy`: one copied before has the same volume, point in time,
/// size, data bytes and description (its id differs: its manifest records when and how it was copied).
private struct CopyKey: Hashable {
    var volume: String
    var createdAt: String
    var size: UInt64
    var dataBytes: UInt64
    var description: String?

    init(_ m: Manifest) {
        volume = m.volume
        createdAt = m.createdAt
        size = m.size
        dataBytes = m.dataBytes
        description = m.description
    }
}

/// Copies snapshots into another repository, with their tags and descriptions.
///
/// When both repositories cut and name chunks alike (`sharesChunking`: same chunker and, encrypted, the same id and
/// cut keys, as `init --copy-chunker-from` arranges), chunks and map nodes are copied as they are, and only those
/// the target lacks are read and written: a later snapshot's copy moves only its new data. Otherwise the image is
/// streamed, verified, into the target's own chunker and sealed with the target's keys: a complete copy (the EBS
/// rule for re-encrypting), still deduplicated against what the target holds.
public final class SnapshotCopier {
    let source: Repository
    let target: Repository

    /// Snapshots this copier committed into the target so far (those found already there not counted): what an
    /// interrupted copy did leave.
    public private(set) var committed = 0
    /// The source was verified whole by this process just before (every frame decompressed, every object hashed:
    /// an import's staging repository, checked by `fsck --read-data` in the same call, in its own tmp/ directory).
    /// Whole frames then travel without being decompressed and hashed a second time, their objects named by the
    /// source's index; objects copied one by one are still checked.
    var sourceVerified = false
    private var loadedSourceIndex: ChunkIndex?
    private var loadedTargetIndex: ChunkIndex?

    public init(from source: Repository, to target: Repository) {
        self.source = source
        self.target = target
    }

    /// Whether only missing chunks will travel.
    public var isIncremental: Bool { source.sharesChunking(with: target) }

    /// Throws when these snapshots may not be copied into the target: the same repository, or encrypted snapshots
    /// into an unencrypted repository. `copy` checks this first; a caller can ask before it says anything.
    public func check(_ snapshots: [Snapshot]) throws {
        var a = stat(), b = stat()
        if stat(source.path, &a) == 0 && stat(target.path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            throw StrataError(.invalidArgument, "source and target are the same repository")
        }
        // Encrypted snapshots stay encrypted (as EBS copies them): never into an unencrypted repository. (A sealed
        // bundle of a plain repository says, in its sealed key material, that its snapshots were not encrypted; the
        // config's word is not authenticated and counts for nothing here.)
        if source.snapshotsStayEncrypted && !target.isEncrypted, let first = snapshots.first {
            throw StrataError(.invalidArgument, "snapshot \(first.id.shortHex) is encrypted and \(target.path) is not: encrypted snapshots stay encrypted; copy it into an encrypted repository")
        }
    }

    /// Copies the snapshots, oldest first as given, each with its tags and description.
    /// - Parameter progress: told how many bytes of the snapshots were copied (or found already there) of all of
    ///   them — their data bytes (zero runs are free) when chunks travel as they are, their image bytes when the
    ///   images are re-chunked — and how many bytes of data moved so far (`newBytes`).
    public func copy(_ snapshots: [Snapshot], progress: ProgressReporter? = nil) throws -> CopyResult {
        let clock = ContinuousClock.now
        try check(snapshots)
        // The indexes are kept for this call only (another process may change the target between calls).
        loadedSourceIndex = nil
        loadedTargetIndex = nil
        defer {
            loadedSourceIndex = nil
            loadedTargetIndex = nil
        }
        var result = CopyResult()
        result.incremental = isIncremental
        let sourceLock = try? source.lock(.shared)
        // The target's lock is held for the whole call, as a snapshot holds it: the index kept in memory from one
        // snapshot to the next must not miss a gc in between (it could delete an object the index still names).
        let targetLock = try target.lock(.shared)
        // Copies and imports into one repository take turns (`copy.lock`): two copies of the same snapshot at once
        // would each find it missing and add it twice; in turn, the second finds it there.
        let copyLock = try RepositoryLock(path: FileSystem.join(target.path, "copy.lock"), mode: .exclusive, wait: true, onWait: {})
        defer { withExtendedLifetime((sourceLock, targetLock, copyLock)) {} }
        try SnapshotStore(repo: source).requireStillThere(snapshots)
        let catalog = SnapshotCatalog(repo: source)
        // The target's snapshots, read once (a mirror of a thousand snapshots would read them a thousand times).
        var there: [CopyKey: Snapshot] = [:]
        for s in try SnapshotStore(repo: target).all().snapshots { there[CopyKey(s.manifest)] = s }
        let size = { (s: Snapshot) in Int64(result.incremental ? s.manifest.dataBytes : s.manifest.size) }
        let total = snapshots.reduce(Int64(0)) { $0 + size($1) }
        var before: Int64 = 0
        for snapshot in snapshots {
            defer {
                before += size(snapshot)
                progress?.progress(done: before, total: total, newBytes: result.bytesCopied)
            }
            // A snapshot copied before (same volume, point in time, size and data) is not copied again.
            let m = snapshot.manifest
            if let existing = there[CopyKey(m)] {
                result.copied.append((snapshot.id, existing.id))
                result.skipped += 1
                continue
            }
            let info = try catalog.info(snapshot)
            let copied: Snapshot
            do {
                let part = progress.map { PartProgress($0, before: before, total: total, newBefore: result.bytesCopied) }
                copied = result.incremental ? try copyObjects(snapshot, result: &result, progress: part)
                                            : try copyStream(snapshot, result: &result, progress: part)
            } catch {
                throw Interruption.retell(error, "copy of snapshot \(snapshot.id.shortHex)",
                                          "it was not copied" + (committed > 0 ? " (the \(committed) before it were)" : ""))
            }
            // Tags set after creation travel as later tags in the target too.
            let later = info.tags.filter { snapshot.manifest.tags[$0.key] != $0.value }
            let removed = snapshot.manifest.tags.keys.filter { info.tags[$0] == nil }
            if !later.isEmpty || !removed.isEmpty {
                try SnapshotCatalog(repo: target).tag(copied, set: later, remove: Array(removed))
            }
            result.copied.append((snapshot.id, copied.id))
            there[CopyKey(copied.manifest)] = copied
            committed += 1
        }
        result.seconds = clock.secondsElapsed
        return result
    }

    /// Shared chunking: walks the source map and copies every object the target lacks, verified on the way.
    private func copyObjects(_ snapshot: Snapshot, result: inout CopyResult, progress: ProgressReporter?) throws -> Snapshot {
        // Both indexes are loaded once per call: the source's does not change under its lock, and the target's
        // in memory gains every object this copier writes (a copy that fails is not continued).
        let sourceIndex = try loadedSourceIndex ?? ChunkIndex.load(source, strict: false)
        let targetIndex: ChunkIndex
        if let loaded = loadedTargetIndex {
            targetIndex = loaded
        } else {
            targetIndex = try ChunkIndex.load(target, strict: true)
            try targetIndex.requirePacksPresent(in: target, for: "a copy")
        }
        loadedSourceIndex = sourceIndex
        loadedTargetIndex = targetIndex
        let reader = ObjectReader(repo: source, index: sourceIndex)
        let chunks = FrameCache(repo: source, index: sourceIndex, capacity: 2)
        let scratch = ByteBuffer(capacity: 64 << 10)
        let packer = ObjectPacker(repo: target, index: targetIndex, indexFlushLimit: Snapshotter.defaultIndexFlushLimit)
        // Repositories that compress alike exchange whole frames when all of a frame's chunks are this snapshot's
        // and new to the target (a first copy, a new snapshot's own frames): no compressing again. What it reaches
        // is marked first (a bit per source object), so that no frame brings chunks the snapshot does not use.
        // Every node walked, with the data bytes under it.
        var visited: [ObjectID: Int64] = [:]
        let what = "snapshot \(snapshot.id.shortHex)"
        // Data bytes the walk has covered, for progress (a subtree met again counts without a second walk); the
        // frames moved whole before it count until it passes them.
        var walked: Int64 = 0
        var movedWhole: Int64 = 0
        let bytesBefore = result.bytesCopied
        do {
            if WholeFrameCopier.applies(from: source, to: target) {
                var marks = ObjectMarks(index: sourceIndex)
                // Chunks the target holds are not wanted: a frame of them is neither read nor verified (a nightly
                // mirror of a big volume re-read the whole snapshot's data from the source when nothing was missing).
                try marks.markReachable(from: snapshot.manifest.rootID!, reader: reader, skipping: { packer.isKnown($0) })
                let moved = try WholeFrameCopier(source: source, index: sourceIndex, packer: packer, wanted: marks,
                                                 verified: sourceVerified).moveFrames { bytes in
                    progress?.progress(done: bytes, total: nil, newBytes: bytes)
                }
                result.objectsCopied += moved.objects
                result.bytesCopied += moved.bytes
                result.wholeFrames += moved.frames
                movedWhole = moved.bytes
            }
            // Every object is checked on its own: a node the target lists may be a dead one whose children are gone.
            func visit(_ id: ObjectID) throws -> Int64 {
                if let seen = visited[id] {
                    walked += seen
                    return seen
                }
                var covered: Int64 = 0
                let node = try reader.node(id)
                switch node {
                case .leaf(let entries):
                    try Interruption.check()
                    for e in entries where e.kind == .chunk && !packer.isKnown(e.id) {
                        guard let loc = sourceIndex.location(of: e.id) else {
                            throw StrataError.corrupt("\(what) cannot be copied: chunk \(e.id.shortHex) is missing")
                        }
                        let bytes = try chunks.object(e.id, at: loc)
                        guard ChunkHasher.chunkID(of: bytes, scratch: scratch, identity: source.identity) == e.id else {
                            throw StrataError.corrupt("\(what) cannot be copied: chunk \(e.id.shortHex) does not match its hash")
                        }
                        try packer.add(id: e.id, kind: .chunk, bytes: bytes)
                        result.objectsCopied += 1
                        result.bytesCopied += Int64(bytes.count)
                    }
                    covered = entries.reduce(Int64(0)) { $0 + ($1.kind == .chunk ? Int64($1.length) : 0) }
                    walked += covered
                    progress?.progress(done: max(walked, movedWhole), total: nil, newBytes: result.bytesCopied - bytesBefore)
                case .interior(_, let children):
                    for c in children { covered += try visit(c.id) }
                }
                visited[id] = covered
                if !packer.isKnown(id) {
                    let bytes = node.encoded()
                    try bytes.withUnsafeBytes { _ = try packer.add(id: id, kind: .mapNode, bytes: $0) }
                    result.objectsCopied += 1
                    result.bytesCopied += Int64(bytes.count)
                }
                return covered
            }
            _ = try visit(snapshot.manifest.rootID!)
            let contents = try packer.finish()
            try Interruption.check()
            try packer.writeIndex(contents)
            result.storedBytes += packer.totals.storedBytes
        } catch {
            packer.abandon()
            // Its in-memory index may name packs the abandon removed.
            loadedTargetIndex = nil
            throw error
        }
        var manifest = snapshot.manifest
        manifest.completedAt = Timestamp.format(Date())
        manifest.newChunks = UInt64(packer.totals.newChunks)
        manifest.newBytes = UInt64(packer.totals.newChunkBytes)
        manifest.storedBytes = UInt64(packer.totals.storedBytes)
        let id = try SnapshotStore(repo: target).save(manifest)
        return Snapshot(id: id, manifest: manifest)
    }

    /// Different chunking or keys: streams the verified image through a pipe into the target's snapshotter.
    private func copyStream(_ snapshot: Snapshot, result: inout CopyResult, progress: ProgressReporter?) throws -> Snapshot {
        // A failing target closes the pipe early: the writer must get EPIPE, not die of SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw StrataError.io("cannot copy", SystemCallError(call: "pipe", path: nil, errno: errno)) }
        let readEnd = FileHandleFD(fd: fds[0], path: "copy of snapshot \(snapshot.id.shortHex)")
        let writeEnd = FileHandleFD(fd: fds[1], path: "copy pipe")
        let failure = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        let restorer = Restorer(repo: source)
        let started = SystemThread.startDetached {
            do { try restorer.stream(snapshot, to: writeEnd) } catch { failure.set(error) }
            try? writeEnd.close()
            done.signal()
        }
        guard started else { throw StrataError.io("cannot copy", SystemCallError(call: "pthread_create", path: nil, errno: EAGAIN)) }
        let m = snapshot.manifest
        var request = SnapshotRequest(source: m.source, volume: m.volume, description: m.description, tags: m.tags)
        request.original = m
        // Nothing is committed unless the whole image arrived, verified: the source side must have ended cleanly.
        // (Called on this thread, inside the snapshot below.)
        let sourceFinished = Flag()
        request.beforeCommit = {
            done.wait()
            sourceFinished.set()
            if let e = failure.error { throw e }
        }
        let outcome: SnapshotResult
        do {
            outcome = try Snapshotter(repo: target).run(request, source: ImageSource(stream: readEnd, name: "copy of \(snapshot.id.shortHex)"),
                                                        progress: progress, onWait: {})
        } catch {
            try? readEnd.close()
            if !sourceFinished.isSet { done.wait() }
            throw failure.error ?? error
        }
        result.objectsCopied += Int(outcome.snapshot.manifest.newChunks)
        result.bytesCopied += Int64(outcome.snapshot.manifest.newBytes)
        result.storedBytes += Int64(outcome.snapshot.manifest.storedBytes)
        return outcome.snapshot
    }
}
