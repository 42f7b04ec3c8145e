import Dispatch
import FoundationEssentials

/// Packs new objects: gathers them, in order, into ~1 MiB frames per kind, compresses frames on all cores,
/// and appends them in order to pack files. Objects already in the index, or already added, are skipped.
///
/// `add` is called from one thread; compression runs on a bounded number of worker threads.
final class ObjectPacker: @unchecked Sendable {
    /// What the packer wrote.
    struct Totals: Sendable {
        var newObjects = 0
        var newChunks = 0
        var newRawBytes: Int64 = 0
        /// Of `newRawBytes`, the chunks' (a manifest's `newBytes` counts no map nodes).
        var newChunkBytes: Int64 = 0
        var storedBytes: Int64 = 0
        var packs = 0
    }

    /// A frame's one buffer: its objects' bytes while it is filled, then the compressed frame that the writer
    /// appends (compression writes into the compressor's buffer and the two swap). One buffer per frame in flight.
    private final class Frame: @unchecked Sendable {
        var kind: ObjectKind
        var buffer: ByteBuffer
        var rawLength = 0
        var entries: [(id: ObjectID, offset: UInt32, length: UInt32)] = []
        var sequence = 0
        /// The buffer holds an already compressed frame (copied whole from another repository): only sealed.
        var precompressed = false

        init(kind: ObjectKind, capacity: Int) {
            self.kind = kind
            buffer = ByteBuffer(capacity: ZstdCompressor.bound(capacity))
        }
    }

    /// A compression context and the buffer it compresses into (one per concurrent compression).
    private final class Compressor {
        let zstd: ZstdCompressor
        var output: ByteBuffer

        init(level: Int, capacity: Int) {
            zstd = ZstdCompressor(level: level)
            output = ByteBuffer(capacity: ZstdCompressor.bound(capacity))
        }
    }

    private let repo: Repository
    private let index: ChunkIndex
    private let frameSize: Int
    private let packSize: Int
    private let level: Int

    private var current: [ObjectKind: Frame] = [:]
    /// Objects added in this session whose packs are not finished yet. Objects in finished packs move to the
    /// index (on the adding thread), so this set stays as small as the objects in flight.
    private var added: Set<ObjectID> = []
    /// Objects of packs finished since the adding thread last looked, to move from `added` to the index.
    private var finishedObjects: [(id: ObjectID, pack: ObjectID, location: ChunkLocation)] = []

    private let lock = Lock()
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let queue = DispatchQueue(label: "strata.compress", attributes: .concurrent)
    private var freeFrames: [Frame] = []
    private var compressors: [Compressor] = []
    private var completed: [Int: Frame] = [:]
    private var nextSequence = 0
    private var nextToWrite = 0
    private var pack: PackWriter?
    private var failure: Error?
    private var touchedDirectories: Set<String> = []
    /// Objects written to finished packs and not yet named by an index file (pack ordinals into its pack table).
    private var written = IndexFileContents(packs: [], entries: [])
    /// With a limit, an index file is written whenever this many objects are waiting (after their packs are
    /// durable), so that a huge snapshot does not hold all its new index entries in memory.
    private let indexFlushLimit: Int?
    /// With a limit, the most entries one flushed index file holds (gc's files are bounded; a snapshot's are not split).
    private let indexFileMaxEntries: Int?
    /// Index files written along the way.
    private(set) var flushedIndexFiles: [String] = []
    /// Finished packs no index file names yet (those of `written`, and those whose entries `finish` returned until
    /// the caller says it wrote them): what `abandon` removes, since nothing can ever reach them.
    private var unindexedPacks: [ObjectID] = []
    /// Every pack this packer finished. A pack's name is its content's digest, so one can take the name of a pack
    /// already on disk (an interrupted gc's copy of the same objects): whoever deletes packs must spare these.
    private(set) var finishedPacks: Set<ObjectID> = []
    /// Counts kept by the adding thread (new objects) and by the writer (stored bytes, packs; under `lock`).
    private var addedTotals = Totals()
    private var writtenTotals = Totals()
    var totals: Totals {
        lock.lock()
        defer { lock.unlock() }
        var t = addedTotals
        t.storedBytes = writtenTotals.storedBytes
        t.packs = writtenTotals.packs
        return t
    }
    /// Writes frames to packs in order, off the compression threads and outside `lock` (a pack's fsync must not
    /// stall compression).
    private let writerQueue = DispatchQueue(label: "strata.pack-write")
    private var writerScheduled = false

    private let frameCapacity: Int
    private let sealer: ObjectSealer

    /// Map-node frames close at this size even when chunk frames are bigger: map nodes are mostly ids, which do
    /// not compress, and every map walker (restore, fsck, diff, gc) caches a few decompressed map-node frames. With
    /// 2 MiB frames this kept restore's peak RSS at 37–40 MiB instead of 42–47 (docs/BENCHMARKS.md).
    static let mapNodeFrameSize = 512 << 10

    /// Raw bytes of frames in flight the default aims at: 2 × cores + 1 frames of 1 or 2 MiB on 2 cores. It was 8 MiB
    /// (4 frames of 2 MiB) while Foundation's libraries took ~3.5 MiB of every command; with 5 the cutting thread
    /// waits less for a free frame: day2-scatter 0.81–0.83 s against 0.85–0.94, first snapshot's peak 42.0–42.1 against
    /// 39.9–40.0 MiB (static build, interleaved; docs/BENCHMARKS.md).
    static let inFlightBudget = 10 << 20

    /// - Parameter maxFramesInFlight: frames being filled, compressed or written at once. Each holds one buffer of
    ///   about the frame size (objects, then the compressed frame); each concurrent compression one more. Default:
    ///   as many as `inFlightBudget` holds, at least cores + 1 (so that every core compresses while the cutting
    ///   thread fills the next) and at most 2 × cores + 1. Measured on the benchmark fixture's first snapshot, 2 cores,
    ///   2 MiB frames (docs/BENCHMARKS.md, "Format 2 and 2 MiB frames"), interleaved runs: 3 frames 3.73–3.94 s and
    ///   41.9–42.0 MiB peak (static build; 47.6–48.1 with the shared Swift runtime), 4 frames 3.30–3.34 s and
    ///   45.5–45.9 MiB (49.5–50.0).
    init(repo: Repository, index: ChunkIndex, maxFramesInFlight: Int? = nil, indexFlushLimit: Int? = nil,
         indexFileMaxEntries: Int? = nil) {
        self.repo = repo
        self.indexFlushLimit = indexFlushLimit
        self.indexFileMaxEntries = indexFileMaxEntries
        self.index = index
        frameSize = repo.config.compression.frameSize
        sealer = repo.sealer
        frameCapacity = frameSize + max(repo.config.chunker.maxSize, 64 << 10) + 4096
        let cores = min(ProcessInfo.processInfo.activeProcessorCount, 8)
        let inFlight = maxFramesInFlight ?? max(cores + 1, min(2 * cores + 1, Self.inFlightBudget / frameSize))
        packSize = repo.config.packSize
        level = repo.config.compression.level
        slots = DispatchSemaphore(value: max(inFlight, 2))
    }

    /// True when the object is stored already or was added in this session.
    @inline(__always) func isKnown(_ id: ObjectID) -> Bool {
        index.contains(id) || added.contains(id)
    }

    /// Adds an object unless it is known. Returns true when it was new.
    @discardableResult
    func add(id: ObjectID, kind: ObjectKind, bytes: UnsafeRawBufferPointer) throws -> Bool {
        if isKnown(id) { return false }
        try checkFailure()
        added.insert(id)
        let frame = try currentFrame(kind)
        frame.entries.append((id, UInt32(frame.buffer.count), UInt32(bytes.count)))
        frame.buffer.append(bytes.baseAddress!, count: bytes.count)
        addedTotals.newObjects += 1
        if kind == .chunk {
            addedTotals.newChunks += 1
            addedTotals.newChunkBytes += Int64(bytes.count)
        }
        addedTotals.newRawBytes += Int64(bytes.count)
        if frame.buffer.count >= (kind == .chunk ? frameSize : min(frameSize, Self.mapNodeFrameSize)) {
            current[kind] = nil
            submit(frame)
        }
        return true
    }

    /// Adds a frame compressed elsewhere (another repository's, verified by the caller) as it is: its objects must
    /// all be unknown (`isKnown` false), their offsets and lengths those of `rawLength` bytes once decompressed.
    /// It is sealed for this repository and written in order with the frames `add` fills.
    func addCompressed(kind: ObjectKind, compressed: UnsafeRawBufferPointer, rawLength: Int,
                       entries: [(id: ObjectID, offset: UInt32, length: UInt32)]) throws {
        try checkFailure()
        let frame = takeFrame(kind)
        frame.buffer.reserve(compressed.count + 64)
        frame.buffer.append(compressed.baseAddress!, count: compressed.count)
        frame.rawLength = rawLength
        frame.precompressed = true
        frame.entries = entries
        for e in entries {
            added.insert(e.id)
            addedTotals.newObjects += 1
            if kind == .chunk {
                addedTotals.newChunks += 1
                addedTotals.newChunkBytes += Int64(e.length)
            }
            addedTotals.newRawBytes += Int64(e.length)
        }
        submit(frame)
    }

    private func currentFrame(_ kind: ObjectKind) throws -> Frame {
        if let f = current[kind] { return f }
        let f = takeFrame(kind)
        current[kind] = f
        return f
    }

    /// A free frame (waiting for one), emptied; objects of packs finished meanwhile move to the index.
    private func takeFrame(_ kind: ObjectKind) -> Frame {
        slots.wait()
        lock.lock()
        let frame = freeFrames.popLast() ?? Frame(kind: kind, capacity: frameCapacity)
        let finished = finishedObjects
        finishedObjects.removeAll(keepingCapacity: true)
        lock.unlock()
        for o in finished {
            index.add(id: o.id, packID: o.pack, location: o.location)
            added.remove(o.id)
        }
        frame.kind = kind
        frame.buffer.count = 0
        frame.precompressed = false
        frame.entries.removeAll(keepingCapacity: true)
        return frame
    }

    private func submit(_ frame: Frame) {
        frame.sequence = nextSequence
        nextSequence += 1
        group.enter()
        queue.async { [self] in
            defer { group.leave() }
            compress(frame)
        }
    }

    private func compress(_ frame: Frame) {
        // A frame copied whole needs no compression context (nor its buffer).
        let compressor: Compressor? = frame.precompressed ? nil : lock.withLock { compressors.popLast() } ?? Compressor(level: level, capacity: frameCapacity)
        var error: Error?
        do {
            if let compressor {
                frame.rawLength = frame.buffer.count
                compressor.output.reserve(ZstdCompressor.bound(frame.rawLength))
                let n = try compressor.zstd.compress(frame.buffer.bytes, into: UnsafeMutableRawBufferPointer(start: compressor.output.base,
                                                                                                          count: compressor.output.capacity))
                compressor.output.count = n
                // The objects' bytes are no longer needed: the frame takes the compressed frame's buffer, and the
                // compressor the objects' buffer for its next frame (both have room for a compressed frame).
                swap(&frame.buffer, &compressor.output)
            }
            if sealer.isEncrypted {
                try sealer.sealInPlace(frame.buffer, .frame)
            }
        } catch let e {
            error = e
        }
        lock.lock()
        defer { lock.unlock() }
        if let compressor { compressors.append(compressor) }
        if let error, failure == nil { failure = error }
        completed[frame.sequence] = frame
        if !writerScheduled && completed[nextToWrite] != nil {
            writerScheduled = true
            group.enter()
            writerQueue.async { [self] in
                defer { group.leave() }
                drain()
            }
        }
    }

    /// Writes completed frames in order, on the writer queue, until the next one in order is not ready.
    private func drain() {
        while true {
            lock.lock()
            guard let frame = completed.removeValue(forKey: nextToWrite) else {
                writerScheduled = false
                lock.unlock()
                return
            }
            nextToWrite += 1
            let failed = failure != nil
            lock.unlock()
            if !failed {
                do {
                    try write(frame)
                } catch let e {
                    lock.lock()
                    if failure == nil { failure = e }
                    lock.unlock()
                }
            }
            lock.lock()
            freeFrames.append(frame)
            lock.unlock()
            slots.signal()
        }
    }

    private func write(_ frame: Frame) throws {
        if pack == nil { pack = try PackWriter(repo: repo) }
        let p = pack!
        try p.append(compressed: frame.buffer.bytes, rawLength: frame.rawLength, kind: frame.kind, entries: frame.entries)
        if p.size >= Int64(packSize) || p.toc.entries.count >= Self.maxObjectsPerPack { try finishPack() }
    }

    /// A pack is finished at this many objects even when it holds fewer bytes than `packSize`: what the packer keeps
    /// per object until a pack is finished and indexed (its table of contents, the entries for the index file)
    /// must not grow with the image. Data that compresses very well made single packs of 65,000 objects and more
    /// (256 MiB of text in 4 KiB chunks: one 58 MiB snapshot process, 67 MiB for 1 GiB); the benchmark's packs hold
    /// ~3,000 and are unaffected.
    static let maxObjectsPerPack = 8192

    private func finishPack() throws {
        guard let p = pack else { return }
        pack = nil
        do {
            let (id, size, toc, existed) = try p.finish()
            touchedDirectories.insert(FileSystem.directoryName(repo.packFilePath(id)))
            let ordinal = UInt32(written.packs.count)
            written.packs.append(id)
            // A pack of the same name that was there before (the same objects, packed by an interrupted command;
            // perhaps named by an index file) is not this packer's to remove if it fails.
            if !existed { unindexedPacks.append(id) }
            finishedPacks.insert(id)
            lock.lock()
            defer { lock.unlock() }
            writtenTotals.storedBytes += size
            writtenTotals.packs += 1
            for e in toc.entries {
                let f = toc.frames[Int(e.frame)]
                let location = ChunkLocation(pack: ordinal, kind: e.kind, frameOffset: f.offset,
                                             frameCompressedLength: f.compressedLength, frameRawLength: f.rawLength,
                                             offset: e.offset, length: e.length)
                written.entries.append((e.id!, location))
                finishedObjects.append((e.id!, id, location))
            }
        } catch {
            p.abandon()
            throw error
        }
        if let limit = indexFlushLimit, written.entries.count >= limit {
            try syncPackDirectories()
            var rest = written.entries[...]
            // Once one part is in place, it names the packs: they stay even if a later part fails.
            var named = false
            do {
                while !rest.isEmpty {
                    let part = rest.prefix(indexFileMaxEntries ?? rest.count)
                    rest = rest.dropFirst(part.count)
                    flushedIndexFiles.append(try ChunkIndex.write(IndexFileContents(packs: written.packs, entries: Array(part)),
                                                                  to: repo, ifLeftInPlace: { named = true }))
                    named = true
                }
            } catch {
                if named { unindexedPacks = [] }
                throw error
            }
            written = IndexFileContents(packs: [], entries: [])
            unindexedPacks = []
        }
    }

    /// Makes the renames of finished packs durable (before any index file names them).
    private func syncPackDirectories() throws {
        try wrap({
            for dir in touchedDirectories.sorted() { try FileSystem.syncDirectory(dir) }
            if !touchedDirectories.isEmpty { try FileSystem.syncDirectory(repo.packsPath) }
        }(), "cannot sync \(repo.packsPath)")
        touchedDirectories.removeAll()
    }

    private func checkFailure() throws {
        lock.lock()
        let f = failure
        lock.unlock()
        if let f { throw f }
    }

    /// Flushes every frame, finishes the last pack and makes the pack directories durable. Returns the index file
    /// contents for the new objects not yet named by a flushed index file (empty when nothing is left). The
    /// in-memory index holds every object written (in packs not yet named by an index file until the caller
    /// writes the returned contents).
    func finish() throws -> IndexFileContents {
        for kind in [ObjectKind.chunk, .mapNode] {
            if let f = current[kind] {
                current[kind] = nil
                if f.entries.isEmpty {
                    lock.lock(); freeFrames.append(f); lock.unlock()
                    slots.signal()
                } else {
                    submit(f)
                }
            }
        }
        group.wait()
        // No worker and no writer runs any more.
        if let failure = (lock.withLock { failure }) {
            pack?.abandon()
            pack = nil
            throw failure
        }
        try finishPack()
        try syncPackDirectories()
        // Nothing more to compress: the frame buffers and compression contexts go before the caller encodes.
        let finished: [(id: ObjectID, pack: ObjectID, location: ChunkLocation)] = lock.withLock {
            freeFrames.removeAll()
            compressors.removeAll()
            defer { finishedObjects = [] }
            return finishedObjects
        }
        let out = written
        written = IndexFileContents(packs: [], entries: [])
        for o in finished { index.add(id: o.id, packID: o.pack, location: o.location) }
        added = []
        return out
    }

    /// Writes the index file naming the contents `finish` returned (none if they are empty); their packs are the
    /// repository's then. A write that fails with the file already in place (its directory's fsync failed after the
    /// rename) leaves them the repository's too: `abandon` must not remove packs that an index file names, or a
    /// later snapshot, trusting the index, would store none of their objects and could not be restored.
    /// Returns the index file's name (nil when there was nothing to write).
    @discardableResult
    func writeIndex(_ contents: IndexFileContents) throws -> String? {
        var name: String?
        if !contents.entries.isEmpty {
            name = try ChunkIndex.write(contents, to: repo, ifLeftInPlace: { self.unindexedPacks = [] })
        }
        unindexedPacks = []
        return name
    }

    /// Waits for workers, removes the unfinished pack draft and the finished packs no index file names (after an
    /// error elsewhere). Those packs are this packer's own and unreachable: a disk that filled up gets their space
    /// back at once, not at the next gc. Packs named by an index file flushed along the way stay (a later snapshot
    /// reuses their objects; gc removes them if none does).
    func abandon() {
        for kind in [ObjectKind.chunk, .mapNode] where current[kind] != nil {
            current[kind] = nil
            slots.signal()
        }
        group.wait()
        lock.lock()
        pack?.abandon()
        pack = nil
        lock.unlock()
        for id in unindexedPacks { try? FileSystem.remove(repo.packFilePath(id)) }
        unindexedPacks = []
    }
}
