import Dispatch
import Foundation

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
