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
        if request.source.isEmpty { throw ImageSource.emptyPath }
        if request.source == "-" && request.volume == nil {
            throw StrataError(.invalidArgument, "reading standard input needs --volume NAME")
        }
        let volume = request.volume ?? FileSystem.baseName(request.source)
        try Self.validateLabels(volume: volume, description: request.description, tags: request.tags)
        let source = try ImageSource(path: request.source)
        return try run(request, source: source, progress: progress, onWait: onWait)
    }

    /// Takes a snapshot of an already opened source.
    func run(_ request: SnapshotRequest, source: ImageSource, progress: ProgressReporter?, onWait: () -> Void) throws -> SnapshotResult {
        let volume = request.volume ?? FileSystem.baseName(request.source)
        let lock = try repo.lock(.shared, onWait: onWait)
        defer { withExtendedLifetime(lock) {} }
        let clock = ContinuousClock.now
        let index = try ChunkIndex.load(repo, strict: true)
        try index.requirePacksPresent(in: repo, for: "a snapshot")
        // The snapshot's point in time is when reading starts (the clone, when there is one), not when the command
        // started waiting for gc.
        try source.takeClone(request.clone)
        let started = Date()
        try request.beforeReading?()
        let journal: PendingJournal
        do {
            journal = try PendingStore(repo: repo).begin(
                volume: volume, source: request.source == "-" ? "-" : FileSystem.absolute(request.source),
                totalBytes: source.size, limit: repo.config.snapshotLimit)
        } catch {
            throw Interruption.retell(error, "snapshot of \(volume)", "nothing was committed")
        }
        defer { journal.finish() }
        let packer = ObjectPacker(repo: repo, index: index, indexFlushLimit: indexFlushLimit)
        do {
            // The pass (and its read buffer) is gone before the packer's last index contents are encoded.
            let outcome = try ImagePass(repo: repo, source: source, packer: packer, segmentSize: segmentSize,
                                        progress: progress, journal: journal).run()
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
            try packer.writeIndex(contents)
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
            let id = try SnapshotStore(repo: repo).save(manifest)
            return SnapshotResult(snapshot: Snapshot(id: id, manifest: manifest),
                                  seconds: clock.secondsElapsed,
                                  packsWritten: packer.totals.packs, readFromClone: source.isClone,
                                  cloneFailure: source.cloneFailure)
        } catch {
            packer.abandon()
            throw Interruption.retell(error, "snapshot of \(volume)", "nothing was committed")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
