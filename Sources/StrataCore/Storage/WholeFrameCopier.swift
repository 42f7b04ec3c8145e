/// Copies stored frames from one repository into another as they are, still compressed, when every object in a
/// frame is one the copy needs: a copy between repositories that compress alike then costs a decompression (to
/// verify every object against its id) instead of a decompression and a compression. The frame is opened with the
/// source's keys and sealed with the target's by the packer.
///
/// A frame qualifies when its objects are all chunks, all wanted (the snapshot being copied reaches them) and all
/// unknown to the target: a frame that also holds chunks of other snapshots, or some the target has, is copied
/// chunk by chunk by the caller instead, so nothing the target does not need is stored twice or kept dead.
final class WholeFrameCopier {
    private let source: Repository
    private let index: ChunkIndex
    private let packer: ObjectPacker
    /// What the snapshot being copied reaches.
    private let wanted: ObjectMarks
    /// How many of the objects the index places in each frame the snapshot reaches: a frame qualifies only if that
    /// is all of its objects, which is known before it is read (a VM disk's scattered writes leave most old frames
    /// with a chunk or two the newest snapshot no longer uses).
    private var wantedPerFrame: [FrameKey: Int32] = [:]
    private var packs: [UInt32: (file: PackFile, toc: PackTOC)] = [:]
    /// Frames already considered (each is looked at once, whatever the answer).
    private var tried: Set<FrameKey> = []
    private let compressed = ByteBuffer(capacity: 1 << 20)
    private let raw = ByteBuffer(capacity: 2 << 20)
    private let scratch = ByteBuffer(capacity: 64 << 10)
    private let decompressor = ZstdDecompressor()

    /// Whether whole frames can travel from `source` to `target`: both must compress alike (level and frame size,
    /// so that the target's frames stay what its config says) and cut and name chunks alike.
    static func applies(from source: Repository, to target: Repository) -> Bool {
        source.config.compression == target.config.compression && source.sharesChunking(with: target)
    }

    init(source: Repository, index: ChunkIndex, packer: ObjectPacker, wanted: ObjectMarks) {
        self.source = source
        self.index = index
        self.packer = packer
        self.wanted = wanted
        wanted.forEachIndexed { _, location in wantedPerFrame[location.frameKey, default: 0] += 1 }
    }

    /// Copies the frame that holds `location` if it qualifies and was not considered before. Returns the objects
    /// and raw bytes it added to the target, or nil when the caller must copy what it needs chunk by chunk.
    func copyFrame(of location: ChunkLocation) throws -> (objects: Int, bytes: Int64)? {
        guard location.kind == .chunk, tried.insert(location.frameKey).inserted else { return nil }
        let (file, toc) = try pack(location.pack)
        guard let f = toc.frames.firstIndex(where: { $0.offset == location.frameOffset }) else { return nil }
        let frame = toc.frames[f]
        let entries = toc.entries.filter { $0.frame == UInt32(f) }
        guard frame.kind == .chunk, !entries.isEmpty, Int(wantedPerFrame[location.frameKey] ?? 0) == entries.count,
              entries.allSatisfy({ $0.kind == .chunk }),
              frame.compressedLength == location.frameCompressedLength, frame.rawLength == location.frameRawLength else { return nil }
        try file.readFrame(offset: frame.offset, length: Int(frame.compressedLength), into: compressed)
        raw.reserve(Int(frame.rawLength))
        raw.count = Int(frame.rawLength)
        try decompressor.decompress(compressed.bytes, into: UnsafeMutableRawBufferPointer(start: raw.base, count: raw.count),
                                    what: "frame at \(frame.offset) of pack \(file.id.shortHex)")
        // The ids come from the data itself: an object that does not hash to an id the snapshot wants (damaged, or
        // another snapshot's) sends the frame down the chunk-by-chunk path, which names any damage.
        var ids: [(id: ObjectID, offset: UInt32, length: UInt32)] = []
        ids.reserveCapacity(entries.count)
        var seen = Set<ObjectID>()
        var qualifies = true
        guard entries.allSatisfy({ Int($0.offset) + Int($0.length) <= raw.count }) else { return nil }
        ChunkHasher.objectIDs(count: entries.count, object: { (self.raw.slice(Int(entries[$0].offset), Int(entries[$0].length)), .chunk) },
                              scratch: scratch, identity: source.identity) { i, id in
            if !wanted.contains(id) || packer.isKnown(id) || !seen.insert(id).inserted { qualifies = false }
            ids.append((id, entries[i].offset, entries[i].length))
        }
        guard qualifies else { return nil }
        try packer.addCompressed(kind: .chunk, compressed: compressed.bytes, rawLength: raw.count, entries: ids)
        return (ids.count, ids.reduce(Int64(0)) { $0 + Int64($1.length) })
    }

    private func pack(_ ordinal: UInt32) throws -> (file: PackFile, toc: PackTOC) {
        if let p = packs[ordinal] { return p }
        // A copy walks an image mostly in order, so its frames come from a few packs at a time.
        if packs.count >= 8 { packs.removeAll() }
        let id = index.packs[Int(ordinal)]
        let file = try PackFile(id: id, path: source.packFilePath(id), sealer: source.sealer)
        let p = (file, try file.readTOC())
        packs[ordinal] = p
        return p
    }
}
