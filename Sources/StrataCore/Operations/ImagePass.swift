import Dispatch
import FoundationEssentials

/// One pass over a source: the reading, hashing, cutting and packing loop.
///
/// The source is read in segments into two buffers that take turns. In one parallel step, one task cuts segment
/// k in order (the chunker decides the cuts from page digests, each chunk's id is hashed from its page digests,
/// new chunks go to the packer, which compresses on worker threads) while the other tasks read and hash the pages
/// of segment k + 1, a share each: no core waits for a serial read or the cut. Each buffer keeps room in front of
/// its segment for the chunk still open at the end of the previous one, which is copied there (bytes and page
/// digests), so that a chunk is always contiguous in memory.
final class ImagePass {
    struct Outcome {
        var root: ObjectID
        var size: UInt64
        var dataBytes: UInt64
        var chunkCount: UInt64
        var newChunkBytes: Int64
    }

    /// One segment's memory: room for the open chunk carried over, then the segment; page digests and zero flags.
    private final class SegmentBuffer: @unchecked Sendable {
        let bytes: ByteBuffer
        let digests: ByteBuffer
        let zeros: UnsafeMutablePointer<Bool>
        /// Where the segment's bytes start; a carried chunk ends here.
        let dataStart: Int

        init(dataStart: Int, segmentSize: Int) {
            let page = ChunkerParameters.pageSize
            self.dataStart = dataStart
            bytes = ByteBuffer(capacity: dataStart + segmentSize)
            let pages = (dataStart + segmentSize) / page + 1
            digests = ByteBuffer(capacity: pages * 32)
            zeros = UnsafeMutablePointer<Bool>.allocate(capacity: pages)
            zeros.initialize(repeating: false, count: pages)
        }

        deinit { zeros.deallocate() }
    }

    /// A segment to read: where, how much, the hole before it, and what reading it gave.
    private struct Segment {
        var offset: Int64
        var length: Int
        var holeBefore: Int64
        var buffer: SegmentBuffer
        /// Bytes read: fewer than `length` only at the end of a stream or when a file shrank.
        var count = 0
    }

    private let source: ImageSource
    private let packer: ObjectPacker
    private let chunker: PageChunker
    private let builder: ChunkMapBuilder
    private let progress: ProgressReporter?
    private let segmentSize: Int
    /// Read-and-hash tasks per segment: several per core, so that the cut task's core takes its share too.
    private let shares: Int
    private let buffers: [SegmentBuffer]

    /// The buffer the open chunk lives in.
    private var current: SegmentBuffer
    private var chunkStart = 0       // byte offset in `current` where the open chunk starts
    private var chunkPages = 0
    private var chunkBytes = 0
    private var zeroRun: UInt64 = 0
    private var outcome: Outcome

    private let journal: PendingJournal?
    private let identity: IdentityScheme

    /// How far past the segment being read the kernel is asked to read ahead.
    static let readAhead: Int64 = 8 << 20

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
        let carryRoom = (repo.config.chunker.maxSize + page - 1) / page * page
        buffers = [SegmentBuffer(dataStart: carryRoom, segmentSize: segmentSize),
                   SegmentBuffer(dataStart: carryRoom, segmentSize: segmentSize)]
        current = buffers[1]
        shares = 4 * max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
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
        // The segments, range by range (a stream is one open-ended range, read until it ends), alternating buffers.
        var rangeIndex = 0
        var position: Int64 = 0
        var nextOffset = ranges.first?.start ?? 0
        var turn = 0
        func nextSegment() -> Segment? {
            while rangeIndex < ranges.count {
                let range = ranges[rangeIndex]
                if nextOffset < range.start { nextOffset = range.start }
                if nextOffset >= range.end { rangeIndex += 1; continue }
                let length = Int(min(Int64(segmentSize), range.end - nextOffset))
                let segment = Segment(offset: nextOffset, length: length, holeBefore: nextOffset - position, buffer: buffers[turn])
                turn ^= 1
                position = nextOffset + Int64(length)
                nextOffset = position
                return segment
            }
            return nil
        }

        // Read-ahead: the kernel is asked for the data up to `readAhead` bytes past the segment being read, so that
        // an image that is not in the page cache (a nightly snapshot) streams from the disk while the pages before
        // it are hashed and cut. A disk's own read-ahead (128 KiB by default) leaves it idle between the reads.
        var hintRange = 0
        var hinted: Int64 = 0
        func readAheadTo(_ limit: Int64) {
            guard source.kind != .stream else { return }
            while hintRange < ranges.count && hinted < limit {
                let range = ranges[hintRange]
                if hinted < range.start { hinted = range.start }
                if hinted >= range.end { hintRange += 1; continue }
                let end = min(range.end, limit)
                source.file.startReading(offset: hinted, count: Int(end - hinted))
                hinted = end
            }
        }
        var lastReport = ContinuousClock.now
        var imageOffset: Int64 = 0
        var segment = nextSegment()
        readAheadTo((segment?.offset ?? 0) + Self.readAhead)
        if var first = segment {
            try readAndHash(&first, alongside: nil)
            segment = first
        }
        while let s = segment {
            if s.holeBefore > 0 {
                try closeChunk()
                zeroRun += UInt64(s.holeBefore)
            }
            if s.count == 0 && source.kind == .stream { break }
            if s.count == 0 {
                throw StrataError(.io, "source \(source.path) ended early at byte \(s.offset) (it shrank while being read)")
            }
            // Carry the open chunk to the front of this segment's buffer.
            if chunkBytes > 0 {
                let page = ChunkerParameters.pageSize
                let to = s.buffer.dataStart - chunkBytes
                (s.buffer.bytes.base + to).copyMemory(from: current.bytes.base + chunkStart, byteCount: chunkBytes)
                (s.buffer.digests.base + to / page * 32).copyMemory(from: current.digests.base + chunkStart / page * 32,
                                                                     byteCount: chunkPages * 32)
                chunkStart = to
            }
            current = s.buffer
            // Cut this segment while the next one is read and hashed.
            var next = s.count == s.length ? nextSegment() : nil
            if let n = next { readAheadTo(n.offset + Self.readAhead) }
            if var n = next {
                try readAndHash(&n, alongside: { try self.cut(count: s.count, imageOffset: s.offset) })
                next = n
            } else {
                try cut(count: s.count, imageOffset: s.offset)
            }
            imageOffset = s.offset + Int64(s.count)
            if s.count < s.length {
                if source.kind == .stream { break }
                throw StrataError(.io, "source \(source.path) ended early at byte \(imageOffset) (it shrank while being read)")
            }
            if ContinuousClock.now - lastReport > .milliseconds(100) {
                lastReport = ContinuousClock.now
                progress?.progress(done: imageOffset, total: source.size, newBytes: outcome.newChunkBytes)
                try journal?.progress(done: imageOffset, newBytes: outcome.newChunkBytes)
            }
            segment = next
        }
        try closeChunk()
        if let size = source.size, source.kind != .stream, size > imageOffset {
            zeroRun += UInt64(size - imageOffset)
            imageOffset = size
        }
        try flushZero()
        outcome.root = try builder.finish()
        outcome.size = builder.totalLength
        progress?.progress(done: imageOffset, total: source.size ?? imageOffset, newBytes: outcome.newChunkBytes)
        return outcome
    }

    // MARK: Reading and hashing

    /// Reads `segment` and zero-checks and hashes its pages on all cores, running `alongside` (the previous
    /// segment's cut) as one more task of the same parallel step. Sets `segment.count` to the bytes read from its
    /// start: fewer than asked only when the source ended, and then whole pages only (a file or device).
    private func readAndHash(_ segment: inout Segment, alongside: (() throws -> Void)?) throws {
        let buffer = segment.buffer
        let page = ChunkerParameters.pageSize
        let failures = ErrorBox()
        if source.kind == .stream {
            // A stream is read in order before the parallel step; its pages are hashed in it.
            segment.count = try source.read(into: buffer.bytes.base + buffer.dataStart, count: segment.length, offset: segment.offset)
        }
        let stream = source.kind == .stream
        let length = stream ? segment.count : segment.length
        let offset = segment.offset
        let pages = (length + page - 1) / page
        let perShare = max(1, (pages + shares - 1) / shares)
        let tasks = (pages + perShare - 1) / perShare
        let got = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(tasks, 1))
        defer { got.deallocate() }
        got.initialize(repeating: 0)
        let extra = alongside == nil ? 0 : 1
        DispatchQueue.concurrentPerform(iterations: tasks + extra) { i in
            if extra == 1 && i == 0 {
                do { try alongside!() } catch { failures.set(error) }
                return
            }
            let share = i - extra
            let lo = share * perShare, hi = min(pages, lo + perShare)
            let start = lo * page, shareLength = min(length, hi * page) - start
            do {
                let n = stream ? shareLength
                    : try source.read(into: buffer.bytes.base + buffer.dataStart + start, count: shareLength, offset: offset + Int64(start))
                got[share] = n
                // Whole pages, and a partial last page only at the true end of what was read.
                let whole = n == shareLength ? hi - lo : n / page
                if whole > 0 { Self.hash(pages: lo, lo + whole, count: n == shareLength ? length : start + whole * page, in: buffer) }
            } catch {
                failures.set(error)
            }
        }
        if let error = failures.error { throw error }
        if stream { return }
        var n = 0
        for share in 0..<tasks {
            let lo = share * perShare, hi = min(pages, lo + perShare)
            let shareLength = min(length, hi * page) - lo * page
            if got[share] < shareLength {
                n += got[share] / page * page
                break
            }
            n += got[share]
        }
        segment.count = n
    }

    /// Zero-checks and hashes pages `lo..<hi` of the `count` bytes at the buffer's segment start. Data pages are
    /// hashed two at a time (`ChunkHasher.pageDigester`); a short last page and an odd one out alone.
    private static func hash(pages lo: Int, _ hi: Int, count: Int, in buffer: SegmentBuffer) {
        let page = ChunkerParameters.pageSize
        let base = buffer.bytes.base + buffer.dataStart
        let digestBase = buffer.digests.base + buffer.dataStart / page * 32
        let zeros = buffer.zeros + buffer.dataStart / page
        var pairs = ChunkHasher.pageDigester()
        for i in lo..<hi {
            let len = min(page, count - i * page)
            let bytes = UnsafeRawBufferPointer(start: base + i * page, count: len)
            zeros[i] = ZeroScan.isZero(bytes)
            if !zeros[i] { pairs.add(base + i * page, count: len, digest: digestBase + i * 32) }
        }
        pairs.finish()
    }

    // MARK: Cutting (one task at a time, in order)

    /// Cuts the `count` hashed bytes of the current buffer's segment, which start at image offset `imageOffset`.
    private func cut(count: Int, imageOffset: Int64) throws {
        let page = ChunkerParameters.pageSize
        let buffer = current
        let firstPage = buffer.dataStart / page
        let pages = (count + page - 1) / page
        var pageOffset = imageOffset
        for i in 0..<pages {
            let len = min(page, count - i * page)
            let at = buffer.dataStart + i * page
            if buffer.zeros[firstPage + i] {
                try closeChunk()
                zeroRun += UInt64(len)
            } else {
                try flushZero()
                if chunkPages == 0 { chunkStart = at }
                chunkPages += 1
                chunkBytes += len
                outcome.dataBytes += UInt64(len)
                let end = UInt64(pageOffset) + UInt64(len)
                if chunker.cutAfter(pagesInChunk: chunkPages, digest: buffer.digests.base + at / page * 32,
                                    page: UnsafeRawBufferPointer(start: buffer.bytes.base + at, count: len), endOffset: end) {
                    try closeChunk()
                }
            }
            pageOffset += Int64(len)
        }
    }

    private func flushZero() throws {
        if zeroRun > 0 {
            try builder.appendZero(zeroRun)
            zeroRun = 0
        }
    }

    private func closeChunk() throws {
        guard chunkPages > 0 else { return }
        let page = ChunkerParameters.pageSize
        let id = ChunkHasher.chunkID(pageDigests: UnsafeRawBufferPointer(start: current.digests.base + chunkStart / page * 32,
                                                                         count: chunkPages * 32),
                                     identity: identity)
        let bytes = UnsafeRawBufferPointer(start: current.bytes.base + chunkStart, count: chunkBytes)
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
