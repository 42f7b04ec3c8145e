import Dispatch
import Foundation

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
    /// For a copy: the original snapshot, whose creation facts (time, source, host) the new manifest keeps.
    var original: Manifest?
    /// For a copy: runs after the image was read and before anything is committed; throwing aborts the snapshot.
    var beforeCommit: (() throws -> Void)?

    public init(source: String, volume: String? = nil, description: String = "", tags: [String: String] = [:],
                failOnChange: Bool = false) {
        self.source = source
        self.volume = volume
        self.description = description
        self.tags = tags
        self.failOnChange = failOnChange
        original = nil
        beforeCommit = nil
    }
}

/// What a snapshot stored.
public struct SnapshotResult: Sendable {
    public let snapshot: Snapshot
    public let seconds: Double
    public let packsWritten: Int
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

    public init(repo: Repository, segmentSize: Int = 2 << 20, indexFlushLimit: Int = Snapshotter.defaultIndexFlushLimit) {
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
        let started = Date()
        let clock = ContinuousClock.now
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
        // The snapshot's point in time is when reading starts, not when the command started waiting for gc.
        let started = Date()
        let clock = ContinuousClock.now
        let index = try ChunkIndex.load(repo, strict: true)
        let journal = try PendingStore(repo: repo).begin(
            volume: volume, source: request.source == "-" ? "-" : FileSystem.absolute(request.source),
            totalBytes: source.size, limit: repo.config.snapshotLimit)
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
            if !contents.entries.isEmpty { try ChunkIndex.write(contents, to: repo) }
            let original = request.original
            let manifest = Manifest(
                format: 1, volume: volume,
                source: original?.source ?? (request.source == "-" ? "-" : FileSystem.absolute(request.source)),
                sourceKind: original?.sourceKind ?? source.kind.rawValue, size: outcome.size,
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
                                  packsWritten: packer.totals.packs)
        } catch {
            packer.abandon()
            throw error
        }
    }
}

/// One pass over a source: the reading, hashing, cutting and packing loop.
///
/// The source is read in segments into one reused buffer. Each segment's pages are zero-checked and hashed on all
/// cores; then, in order, the chunker decides the cuts, each chunk's id is hashed from its page digests, and new
/// chunks go to the packer (which compresses on worker threads). A chunk still open at the end of a segment is moved
/// to the front of the buffer, so a chunk is always contiguous in memory.
final class ImagePass {
    struct Outcome {
        var root: ObjectID
        var size: UInt64
        var dataBytes: UInt64
        var chunkCount: UInt64
        var newChunkBytes: Int64
    }

    private let source: ImageSource
    private let packer: ObjectPacker
    private let chunker: PageChunker
    private let builder: ChunkMapBuilder
    private let progress: ProgressReporter?
    private let segmentSize: Int
    private let buffer: ByteBuffer
    private let digests: ByteBuffer
    private var zeroPage: [Bool]
    private let workers: Int

    private var chunkStart = 0       // byte offset in buffer where the open chunk starts
    private var chunkPages = 0
    private var chunkBytes = 0
    private var zeroRun: UInt64 = 0
    private var outcome: Outcome

    private let journal: PendingJournal?
    private let identity: IdentityScheme

    init(repo: Repository, source: ImageSource, packer: ObjectPacker, segmentSize: Int, progress: ProgressReporter?,
         journal: PendingJournal? = nil) throws {
        self.journal = journal
        identity = repo.identity
        self.source = source
        self.packer = packer
        self.progress = progress
        self.segmentSize = segmentSize
        chunker = PageChunker(repo.config.chunker, identity: repo.identity)
        let page = ChunkerParameters.pageSize
        let capacity = segmentSize + repo.config.chunker.maxSize + page
        buffer = ByteBuffer(capacity: capacity)
        digests = ByteBuffer(capacity: (capacity / page + 1) * 32)
        zeroPage = [Bool](repeating: false, count: capacity / page + 1)
        workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        builder = ChunkMapBuilder { node in
            let bytes = node.encoded()
            let id = repo.identity.id(bytes)
            try bytes.withUnsafeBytes { _ = try packer.add(id: id, kind: .mapNode, bytes: $0) }
            return id
        }
        outcome = Outcome(root: .zero, size: 0, dataBytes: 0, chunkCount: 0, newChunkBytes: 0)
    }

    func run() throws -> Outcome {
        let ranges = try source.dataRanges()
        var imageOffset: Int64 = 0
        var lastReport = ContinuousClock.now
        for range in ranges {
            if range.start > imageOffset {
                try closeChunk()
                zeroRun += UInt64(range.start - imageOffset)
            }
            imageOffset = range.start
            while imageOffset < range.end {
                let carry = chunkBytes
                if carry > 0 && chunkStart > 0 {
                    // Keep the open chunk contiguous: move its bytes and page digests to the front.
                    memmove(buffer.base, buffer.base + chunkStart, carry)
                    memmove(digests.base, digests.base + chunkStart / 4096 * 32, chunkPages * 32)
                }
                chunkStart = 0
                let want = Int(min(Int64(segmentSize), range.end - imageOffset))
                let n = try source.read(into: buffer.base + carry, count: want, offset: imageOffset)
                if n == 0 && source.kind == .stream { break }
                if n == 0 {
                    throw StrataError(.io, "source \(source.path) ended early at byte \(imageOffset) (it shrank while being read)")
                }
                try process(carry: carry, count: n, imageOffset: imageOffset)
                imageOffset += Int64(n)
                if n < want && source.kind == .stream { break }
                if n < want {
                    throw StrataError(.io, "source \(source.path) ended early at byte \(imageOffset) (it shrank while being read)")
                }
                if ContinuousClock.now - lastReport > .milliseconds(100) {
                    lastReport = ContinuousClock.now
                    progress?.progress(done: imageOffset, total: source.size, newBytes: packer.totals.newRawBytes)
                    try journal?.progress(done: imageOffset, newBytes: packer.totals.newRawBytes)
                }
            }
        }
        try closeChunk()
        if let size = source.size, source.kind != .stream, size > imageOffset {
            zeroRun += UInt64(size - imageOffset)
            imageOffset = size
        }
        try flushZero()
        outcome.root = try builder.finish()
        outcome.size = builder.totalLength
        progress?.progress(done: imageOffset, total: source.size ?? imageOffset, newBytes: packer.totals.newRawBytes)
        return outcome
    }

    /// Handles `count` new bytes at `buffer[carry...]`, which start at image offset `imageOffset`.
    private func process(carry: Int, count: Int, imageOffset: Int64) throws {
        let page = ChunkerParameters.pageSize
        let firstPage = carry / page
        let pages = (count + page - 1) / page
        let base = buffer.base + carry
        let digestBase = digests.base + carry / page * 32
        // Hash and zero-check every page of the segment on all cores.
        zeroPage.withUnsafeMutableBufferPointer { zeros in
            let zerosBase = zeros.baseAddress! + firstPage
            let perWorker = (pages + workers - 1) / workers
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = w * perWorker
                let hi = min(pages, lo + perWorker)
                if lo >= hi { return }
                for i in lo..<hi {
                    let len = min(page, count - i * page)
                    let bytes = UnsafeRawBufferPointer(start: base + i * page, count: len)
                    if ZeroScan.isZero(bytes) {
                        zerosBase[i] = true
                    } else {
                        zerosBase[i] = false
                        ChunkHasher.hashPage(bytes, into: digestBase + i * 32)
                    }
                }
            }
        }
        // Cut, in order.
        var pageOffset = imageOffset
        for i in 0..<pages {
            let len = min(page, count - i * page)
            let at = carry + i * page
            if zeroPage[firstPage + i] {
                try closeChunk()
                zeroRun += UInt64(len)
            } else {
                try flushZero()
                if chunkPages == 0 { chunkStart = at }
                chunkPages += 1
                chunkBytes += len
                outcome.dataBytes += UInt64(len)
                let end = UInt64(pageOffset) + UInt64(len)
                if chunker.cutAfter(pagesInChunk: chunkPages, digest: digests.base + at / page * 32,
                                    page: UnsafeRawBufferPointer(start: buffer.base + at, count: len), endOffset: end) {
                    try closeChunk()
                }
            }
            pageOffset += Int64(len)
        }
        if chunkPages == 0 { chunkStart = 0 }
    }

    private func flushZero() throws {
        if zeroRun > 0 {
            try builder.appendZero(zeroRun)
            zeroRun = 0
        }
    }

    private func closeChunk() throws {
        guard chunkPages > 0 else { return }
        let id = ChunkHasher.chunkID(pageDigests: UnsafeRawBufferPointer(start: digests.base + chunkStart / 4096 * 32, count: chunkPages * 32),
                                     identity: identity)
        let bytes = UnsafeRawBufferPointer(start: buffer.base + chunkStart, count: chunkBytes)
        if try packer.add(id: id, kind: .chunk, bytes: bytes) {
            outcome.newChunkBytes += Int64(chunkBytes)
        }
        try builder.appendChunk(id, length: chunkBytes)
        outcome.chunkCount += 1
        chunkStart += chunkBytes
        chunkPages = 0
        chunkBytes = 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
