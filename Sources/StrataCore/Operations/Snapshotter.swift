import Dispatch
import FoundationEssentials

/// What to snapshot and how to label it.
public struct SnapshotRequest: Sendable {
    /// An image file, a block device, or `-` for standard input.
    public var source: String
    /// The volume name; defaults to the source's file name (required for standard input).
    public var volume: String?
    public var description: String
    public var tags: [String: String]
    /// Fail instead of committing when the source changed (size or modification time) while it was read.
    public var failOnChange: Bool
    /// Whether an image file is read through a clone of it taken when reading starts (see `CloneMode`).
    public var clone: CloneMode
    /// For a copy: the original snapshot, whose creation facts (time, source, host) the new manifest keeps.
    var original: Manifest?
    /// For a copy: runs after the image was read and before anything is committed; throwing aborts the snapshot.
    var beforeCommit: (@Sendable () throws -> Void)?
    /// For tests of the point in time: runs when reading is about to start, after the clone (if any) was taken.
    var beforeReading: (@Sendable () throws -> Void)?

    public init(source: String, volume: String? = nil, description: String = "", tags: [String: String] = [:],
                failOnChange: Bool = false, clone: CloneMode = .auto) {
        self.source = source
        self.volume = volume
        self.description = description
        self.tags = tags
        self.failOnChange = failOnChange
        self.clone = clone
        original = nil
        beforeCommit = nil
        beforeReading = nil
    }
}

/// What a snapshot stored.
public struct SnapshotResult: Sendable {
    public let snapshot: Snapshot
    public let seconds: Double
    public let packsWritten: Int
    /// True when the image was read through a clone taken as reading started: the snapshot is the file as it was
    /// at that instant, whatever was written to it meanwhile.
    public let readFromClone: Bool
    /// With `--clone auto` on a file system that may clone, why no clone was made (the snapshot is still taken).
    public let cloneFailure: String?
}

/// Takes snapshots: reads the source, cuts it into chunks, stores the new ones, builds the chunk map and commits
/// the manifest. Write order: packs (fsynced), then the index file, then the manifest.
public final class Snapshotter {
    let repo: Repository
    let segmentSize: Int
    /// New index entries held in memory before an index file is written (bounds memory for huge images).
    let indexFlushLimit: Int

    /// New objects after which an index file is written (each costs ~120 bytes until then: its entry and its
    /// encoding; 16,384 keeps that under 2 MiB and makes ~6 index files per 1.6 GB of new data, merged by gc).
    public static let defaultIndexFlushLimit = 1 << 14

    public init(repo: Repository, segmentSize: Int = 1 << 20, indexFlushLimit: Int = Snapshotter.defaultIndexFlushLimit) {
        self.repo = repo
        self.segmentSize = segmentSize
        self.indexFlushLimit = indexFlushLimit
    }

    /// Validates labels the way every verb that sets them does.
    public static func validateLabels(volume: String?, description: String, tags: [String: String]) throws {
        if let volume { try Labels.validateVolume(volume) }
        try Labels.validateDescription(description)
        for (k, v) in tags { try Labels.validateTag(key: k, value: v) }
    }

    /// Takes one snapshot.
    /// - Throws: `notFound`/`invalidArgument` for a bad source, `io` when reading or writing fails.
    public func run(_ request: SnapshotRequest, progress: ProgressReporter? = nil, onWait: () -> Void = {}) throws -> SnapshotResult {
        try run([request], progress: progress, onWait: onWait)[0]
    }

    /// Takes a snapshot of each source at one point in time, as of a VM's disks: every image file's clone (see
    /// `CloneMode`) is taken before any source is read, every snapshot gets that instant as its creation time, and
    /// the snapshots are committed together at the end: when any source fails, none is. Each source is its own
    /// volume; volumes must differ, and standard input (`-`) goes alone.
    /// - Throws: `invalidArgument` for a bad or repeated source or volume, `notFound`, `io` as `run(_:)`.
    public func run(_ requests: [SnapshotRequest], progress: ProgressReporter? = nil, onWait: () -> Void = {}) throws -> [SnapshotResult] {
        guard !requests.isEmpty else { throw StrataError(.invalidArgument, "no source given: give an image file, a block device or '-'") }
        var volumes: Set<String> = []
        for request in requests {
            if request.source.isEmpty { throw ImageSource.emptyPath }
            if request.source == "-" && requests.count > 1 {
                throw StrataError(.invalidArgument, "standard input ('-') cannot be snapshotted together with other sources")
            }
            if request.source == "-" && request.volume == nil {
                throw StrataError(.invalidArgument, "reading standard input needs --volume NAME")
            }
            let volume = request.volume ?? FileSystem.baseName(request.source)
            try Self.validateLabels(volume: volume, description: request.description, tags: request.tags)
            guard volumes.insert(volume).inserted else {
                throw StrataError(.invalidArgument, "two sources would be volume '\(volume)': give each its own with --volume, once per source")
            }
        }
        let sources = try requests.map { try ImageSource(path: $0.source) }
        return try run(requests, sources: sources, progress: progress, onWait: onWait)
    }

    /// Takes a snapshot of an already opened source.
    func run(_ request: SnapshotRequest, source: ImageSource, progress: ProgressReporter?, onWait: () -> Void) throws -> SnapshotResult {
        try run([request], sources: [source], progress: progress, onWait: onWait)[0]
    }

    /// A source read and packed, its manifest not yet committed.
    private struct Staged {
        let volume: String
        let manifest: Manifest
        let packer: ObjectPacker
        let contents: IndexFileContents
        let seconds: Double
        let readFromClone: Bool
        let cloneFailure: String?
    }

    /// Takes snapshots of already opened sources, one point in time for all (see `run(_:progress:onWait:)`).
    func run(_ requests: [SnapshotRequest], sources: [ImageSource], progress: ProgressReporter?,
             onWait: () -> Void) throws -> [SnapshotResult] {
        let lock = try repo.lock(.shared, onWait: onWait)
        defer { withExtendedLifetime(lock) {} }
        // A snapshot's time runs from the lock (any wait for gc is not counted); with several sources, each from the
        // end of the one before.
        var clock = ContinuousClock.now
        let index = try ChunkIndex.load(repo, strict: true)
        try index.requirePacksPresent(in: repo, for: "a snapshot")
        // The snapshots' point in time is when reading starts (the clones, when there are any, all taken before any
        // source is read), not when the command started waiting for gc.
        for (request, source) in zip(requests, sources) { try source.takeClone(request.clone) }
        let started = Date()
        var journals: [PendingJournal] = []
        defer { journals.forEach { $0.finish() } }
        var staged: [Staged] = []
        // Until the commit below, a failure leaves nothing: every packer so far removes the packs no index file names.
        func abandonAll() { staged.forEach { $0.packer.abandon() } }
        // Several sources report progress as one: bytes of all of them (none is a stream, so all sizes are known).
        let total = sources.reduce(Int64(0)) { $0 + ($1.size ?? 0) }
        var before: Int64 = 0, newBefore: Int64 = 0
        for (request, source) in zip(requests, sources) {
            let volume = request.volume ?? FileSystem.baseName(request.source)
            let packer = ObjectPacker(repo: repo, index: index, indexFlushLimit: indexFlushLimit)
            do {
                try request.beforeReading?()
                journals.append(try PendingStore(repo: repo).begin(
                    volume: volume, source: request.source == "-" ? "-" : FileSystem.absolute(request.source),
                    totalBytes: source.size, limit: repo.config.snapshotLimit))
                // The pass (and its read buffer) is gone before the packer's last index contents are encoded.
                let part = requests.count == 1 ? progress
                    : progress.map { PartProgress($0, before: before, total: total, newBefore: newBefore) }
                let outcome = try ImagePass(repo: repo, source: source, packer: packer, segmentSize: segmentSize,
                                            progress: part, journal: journals.last!).run()
                before += Int64(outcome.size)
                newBefore += Int64(outcome.newChunkBytes)
                let contents = try packer.finish()
                let changed = source.changedSinceOpen()
                if changed && request.failOnChange {
                    throw StrataError(.refused, "source \(request.source) changed while it was read (size or modification time); no snapshot was committed")
                }
                try request.beforeCommit?()
                if let original = request.original, outcome.size != original.size {
                    throw StrataError.corrupt("the copy of a \(original.size)-byte snapshot received \(outcome.size) bytes")
                }
                // A pipe's writer killed by the same Ctrl-C ends the input early: never commit what a signal cut short.
                try Interruption.check()
                let original = request.original
                let manifest = Manifest(
                    format: 1, volume: volume,
                    source: original?.source ?? (request.source == "-" ? "-" : FileSystem.absolute(request.source)),
                    sourceKind: original?.sourceKind ?? source.manifestKind, size: outcome.size,
                    createdAt: original?.createdAt ?? Timestamp.format(started), completedAt: Timestamp.format(Date()),
                    description: request.description, tags: request.tags,
                    chunker: repo.config.chunker.description, root: outcome.root.hex,
                    dataBytes: outcome.dataBytes, chunkCount: outcome.chunkCount,
                    newChunks: UInt64(packer.totals.newChunks), newBytes: UInt64(outcome.newChunkBytes),
                    storedBytes: UInt64(packer.totals.storedBytes), host: original?.host ?? Labels.hostName(),
                    sourceChanged: original?.sourceChanged ?? changed)
                staged.append(Staged(volume: volume, manifest: manifest, packer: packer, contents: contents,
                                     seconds: clock.secondsElapsed, readFromClone: source.isClone,
                                     cloneFailure: source.cloneFailure))
                clock = ContinuousClock.now
            } catch {
                packer.abandon()
                abandonAll()
                throw Interruption.retell(error, "snapshot of \(volume)", "nothing was committed")
            }
        }

        // A source whose snapshot `rm` cancelled after it was read cancels the set: asked once more before any commit.
        do {
            for journal in journals { try journal.checkCancelled() }
        } catch {
            abandonAll()
            throw error
        }
        // Commit: every index file, then every manifest. A manifest that fails takes the set's earlier ones back.
        let store = SnapshotStore(repo: repo)
        var saved: [ObjectID] = []
        var results: [SnapshotResult] = []
        for (i, s) in staged.enumerated() {
            do {
                try s.packer.writeIndex(s.contents)
            } catch {
                staged[i...].forEach { $0.packer.abandon() }
                throw Interruption.retell(error, "snapshot of \(s.volume)", "nothing was committed")
            }
        }
        for s in staged {
            do {
                // Only manifests this call added are taken back (one already there, byte for byte, stays).
                let (id, added) = try store.add(s.manifest)
                if added { saved.append(id) }
                results.append(SnapshotResult(snapshot: Snapshot(id: id, manifest: s.manifest), seconds: s.seconds,
                                              packsWritten: s.packer.totals.packs, readFromClone: s.readFromClone,
                                              cloneFailure: s.cloneFailure))
            } catch {
                let kept = saved.filter { (try? store.remove($0)) == nil }
                let outcome = kept.isEmpty ? "nothing was committed"
                    : "snapshot\(kept.count == 1 ? "" : "s") \(kept.map(\.shortHex).joined(separator: ", ")) of the same point in time stay\(kept.count == 1 ? "s" : ""), the rest was not committed"
                throw Interruption.retell(error, "snapshot of \(s.volume)", outcome)
            }
        }
        return results
    }
}

#if canImport(Glibc)
import Glibc
#endif
