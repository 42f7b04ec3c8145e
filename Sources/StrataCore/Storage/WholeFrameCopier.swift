import Dispatch
import FoundationEssentials

/// Copies stored frames from one repository into another as they are, still compressed, when every object in a
/// frame is one the copy needs: a copy between repositories that compress alike then costs a decompression (to
/// verify every object against its id) instead of a decompression and a compression. The frame is opened with the
/// source's keys and sealed with the target's by the packer.
///
/// A frame qualifies when its objects are all chunks, all wanted (the snapshot being copied reaches them) and all
/// unknown to the target: a frame that also holds chunks of other snapshots, or some the target has, is left to the
/// caller's chunk-by-chunk walk, so nothing the target does not need is stored twice or kept dead. Which frames
/// can qualify is known before any is read: a bit per source object (what the snapshot reaches) gives a count per
/// frame, which must equal the frame's object count in its pack's table of contents.
final class WholeFrameCopier {
    private let source: Repository
    private let index: ChunkIndex
    private let packer: ObjectPacker
    /// What the snapshot being copied reaches.
    private let wanted: ObjectMarks
    /// The source was verified whole just before (see `SnapshotCopier.sourceVerified`): frames are read and moved,
    /// not decompressed and hashed again; their objects' ids come from the source's index files.
    private let verified: Bool

    /// One frame being verified: read, decompressed and hashed on a worker.
    private final class Job: @unchecked Sendable {
        let compressed = ByteBuffer(capacity: 1 << 20)
        let raw = ByteBuffer(capacity: 2 << 20)
        let scratch = ByteBuffer(capacity: 64 << 10)
        let decompressor = ZstdDecompressor()
        var file: PackFile?
        var frame = PackFrame(offset: 0, compressedLength: 0, rawLength: 0, kind: .chunk)
        var entries: [PackEntry] = []
        var ids: [(id: ObjectID, offset: UInt32, length: UInt32)] = []
        /// `ids` came from a verified source's index: the frame is only read.
        var verified = false
        var error: Error?
    }

    /// Whether whole frames can travel from `source` to `target`: both must compress alike (level and frame size,
    /// so that the target's frames stay what its config says) and cut and name chunks alike.
    static func applies(from source: Repository, to target: Repository) -> Bool {
        source.config.compression == target.config.compression && source.sharesChunking(with: target)
    }

    init(source: Repository, index: ChunkIndex, packer: ObjectPacker, wanted: ObjectMarks, verified: Bool = false) {
        self.source = source
        self.index = index
        self.packer = packer
        self.wanted = wanted
        self.verified = verified
    }

    private struct FrameKey: Hashable {
        var pack: UInt32
        var offset: UInt64
    }

    /// Moves every frame that qualifies, in the source's pack order, verifying as many frames at a time as there
    /// are cores (the packer writes them, in order, on its own threads). `progress` hears the data bytes moved so
    /// far. Returns the objects, their raw bytes and the frames moved; what is left is the caller's to copy.
    func moveFrames(progress: (Int64) -> Void) throws -> (objects: Int, bytes: Int64, frames: Int) {
        // How many of the objects the index places in each frame the snapshot reaches, by pack.
        var perPack: [UInt32: [UInt64: Int]] = [:]
        wanted.forEachIndexed { _, location in
            if location.kind == .chunk { perPack[location.pack, default: [:]][location.frameOffset, default: 0] += 1 }
        }
        // A verified source's objects, by frame, as its index files name them (the index in memory keeps no whole ids).
        var known: [FrameKey: [(id: ObjectID, offset: UInt32, length: UInt32)]] = [:]
        if verified {
            try index.forEach { id, location in
                guard location.kind == .chunk && wanted.contains(id) else { return }
                known[FrameKey(pack: location.pack, offset: location.frameOffset), default: []].append((id, location.offset, location.length))
            }
        }
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let jobs = (0..<workers).map { _ in Job() }
        var waiting = 0
        var moved = (objects: 0, bytes: Int64(0), frames: 0)
        let identity = source.identity
        func flush() throws {
            let batch = Array(jobs.prefix(waiting))
            waiting = 0
            DispatchQueue.concurrentPerform(iterations: batch.count) { i in
                let job = batch[i]
                do {
                    if job.verified { try Self.read(job) } else { try Self.verify(job, identity: identity) }
                } catch { job.error = error }
            }
            for job in batch {
                if let error = job.error { throw error }
                // The ids come from the data: one the snapshot does not reach (damaged, or another snapshot's) or the
                // target has leaves the frame to the chunk-by-chunk walk, which names any damage.
                var seen = Set<ObjectID>()
                guard !job.ids.isEmpty, job.ids.allSatisfy({ wanted.contains($0.id) && !packer.isKnown($0.id) && seen.insert($0.id).inserted })
                else { continue }
                try packer.addCompressed(kind: .chunk, compressed: job.compressed.bytes, rawLength: Int(job.frame.rawLength), entries: job.ids)
                moved.objects += job.ids.count
                moved.bytes += job.ids.reduce(Int64(0)) { $0 + Int64($1.length) }
                moved.frames += 1
            }
            progress(moved.bytes)
        }
        for pack in perPack.keys.sorted() {
            try Interruption.check()
            let id = index.packs[Int(pack)]
            let file = try PackFile(id: id, path: source.packFilePath(id), sealer: source.sealer)
            let toc = try file.readTOC()
            var entries = [[PackEntry]](repeating: [], count: toc.frames.count)
            for e in toc.entries where Int(e.frame) < entries.count { entries[Int(e.frame)].append(e) }
            let wantedHere = perPack[pack]!
            let movable = toc.frames.indices.filter { f in
                let frame = toc.frames[f]
                guard frame.kind == .chunk, let count = wantedHere[frame.offset] else { return false }
                return count == entries[f].count && entries[f].allSatisfy({ $0.kind == .chunk })
            }
            // The pack's frames to move are asked for at once: a source out of the page cache then streams from
            // the disk instead of waiting for each frame in turn (a disk's own read-ahead is 128 KiB).
            for f in movable { file.file.startReading(offset: Int64(toc.frames[f].offset), count: Int(toc.frames[f].compressedLength)) }
            for f in movable {
                let frame = toc.frames[f]
                let job = jobs[waiting]
                job.file = file
                job.frame = frame
                job.entries = entries[f]
                job.ids.removeAll(keepingCapacity: true)
                job.error = nil
                job.verified = false
                if verified, var ids = known[FrameKey(pack: pack, offset: frame.offset)] {
                    // The index must name exactly the frame's objects, at their places; otherwise verify as usual.
                    ids.sort { $0.offset < $1.offset }
                    let places = entries[f].sorted { $0.offset < $1.offset }
                    if ids.count == places.count && zip(ids, places).allSatisfy({ $0.offset == $1.offset && $0.length == $1.length }) {
                        job.ids = ids
                        job.verified = true
                    }
                }
                waiting += 1
                if waiting == jobs.count { try flush() }
            }
        }
        if waiting > 0 { try flush() }
        for job in jobs { job.file = nil }
        return moved
    }

    /// Reads a job's compressed frame (on a worker), for a verified source.
    private static func read(_ job: Job) throws {
        guard let file = job.file else { return }
        try file.readFrame(offset: job.frame.offset, length: Int(job.frame.compressedLength), into: job.compressed)
    }

    /// Reads, decompresses and hashes a job's frame (on a worker).
    private static func verify(_ job: Job, identity: IdentityScheme) throws {
        guard let file = job.file else { return }
        let frame = job.frame
        try file.readFrame(offset: frame.offset, length: Int(frame.compressedLength), into: job.compressed)
        job.raw.reserve(Int(frame.rawLength))
        job.raw.count = Int(frame.rawLength)
        try job.decompressor.decompress(job.compressed.bytes, into: UnsafeMutableRawBufferPointer(start: job.raw.base, count: job.raw.count),
                                        what: "frame at \(frame.offset) of pack \(file.id.shortHex)")
        let entries = job.entries
        guard entries.allSatisfy({ Int($0.offset) + Int($0.length) <= job.raw.count }) else { return }
        var ids: [(id: ObjectID, offset: UInt32, length: UInt32)] = []
        ids.reserveCapacity(entries.count)
        ChunkHasher.objectIDs(count: entries.count, object: { (job.raw.slice(Int(entries[$0].offset), Int(entries[$0].length)), .chunk) },
                              scratch: job.scratch, identity: identity) { i, id in
            ids.append((id, entries[i].offset, entries[i].length))
        }
        job.ids = ids
    }
}
