/// Reads and decompresses frames, keeping the most recent few (map nodes cluster in a few frames; a sequential
/// restore reads each data frame once). Not thread-safe: one per worker.
final class FrameCache {
    private let repo: Repository
    private let index: ChunkIndex
    private let capacity: Int
    private var frames: [(key: FrameKey, data: ByteBuffer)] = []
    private var openPacks: [UInt32: PackFile] = [:]
    private let compressed = ByteBuffer(capacity: 1 << 20)
    private let decompressor = ZstdDecompressor()

    init(repo: Repository, index: ChunkIndex, capacity: Int = 4) {
        self.repo = repo
        self.index = index
        self.capacity = capacity
    }

    private func pack(_ ordinal: UInt32) throws -> PackFile {
        if let p = openPacks[ordinal] { return p }
        if openPacks.count >= min(64, OpenFiles.packsPerCache) { openPacks.removeAll() }
        let id = index.packs[Int(ordinal)]
        let p = try PackFile(id: id, path: repo.packFilePath(id), sealer: repo.sealer)
        openPacks[ordinal] = p
        return p
    }

    /// The decompressed frame that holds `location`.
    func frame(for location: ChunkLocation) throws -> ByteBuffer {
        let key = location.frameKey
        if let i = frames.firstIndex(where: { $0.key == key }) {
            let hit = frames.remove(at: i)
            frames.append(hit)
            return hit.data
        }
        let buffer: ByteBuffer
        if frames.count >= capacity {
            buffer = frames.removeFirst().data
        } else {
            buffer = ByteBuffer(capacity: Int(location.frameRawLength))
        }
        let p = try pack(location.pack)
        try p.decompressFrame(offset: location.frameOffset, compressedLength: Int(location.frameCompressedLength),
                             rawLength: Int(location.frameRawLength), into: buffer, compressed: compressed, decompressor: decompressor)
        frames.append((key, buffer))
        return buffer
    }

    /// The bytes of one object (valid until the next call), unverified.
    func object(_ id: ObjectID, at location: ChunkLocation) throws -> UnsafeRawBufferPointer {
        let f = try frame(for: location)
        guard Int(location.offset) + Int(location.length) <= f.count else {
            throw StrataError.corrupt("object \(id.shortHex) lies outside its frame")
        }
        return f.slice(Int(location.offset), Int(location.length))
    }
}


/// Reads and decompresses whole frames into a caller's buffer (no cache): one per worker thread of a restore.
///
/// Once a frame is read, the kernel is told it may drop the pack's pages that held it (`POSIX_FADV_DONTNEED`): a
/// restore reads each frame once, and the pages freed are the ones the next frames are read into. Read into new
/// pages instead, 0.6 GB of packs cost the benchmark's restore up to 0.3 CPU-s in copying out of memory that this
/// VM's host had taken back (right after the four snapshots, which drop their packs once durable: restore 1.42–1.74 s
/// against 1.73–2.04, system time 0.89–1.23 s against 1.26–1.65, six rounds taking turns; with the packs cached
/// 1.40–1.57 s against 1.46–1.66; docs/BENCHMARKS.md, session 16).
final class FrameCacheReader {
    private let repo: Repository
    private let index: ChunkIndex
    private var openPacks: [UInt32: PackFile] = [:]
    private let compressed = ByteBuffer(capacity: 1 << 20)
    private let decompressor = ZstdDecompressor()
    /// Scratch space for re-hashing chunks.
    let scratch = ByteBuffer(capacity: 64 << 10)

    init(repo: Repository, index: ChunkIndex) {
        self.repo = repo
        self.index = index
    }

    func read(_ location: ChunkLocation, into buffer: ByteBuffer) throws {
        let p: PackFile
        if let open = openPacks[location.pack] { p = open } else {
            if openPacks.count >= min(16, OpenFiles.packsPerCache) { openPacks.removeAll() }
            let id = index.packs[Int(location.pack)]
            p = try PackFile(id: id, path: repo.packFilePath(id), sealer: repo.sealer)
            openPacks[location.pack] = p
        }
        try p.decompressFrame(offset: location.frameOffset, compressedLength: Int(location.frameCompressedLength),
                             rawLength: Int(location.frameRawLength), into: buffer, compressed: compressed, decompressor: decompressor)
        p.file.dropCachedPages(offset: Int64(location.frameOffset), count: Int64(location.frameCompressedLength))
    }
}
