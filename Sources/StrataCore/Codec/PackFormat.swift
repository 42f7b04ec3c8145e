/// What a stored object is.
public enum ObjectKind: UInt8, Sendable {
    /// A run of image pages; its id is SHA-256 over the SHA-256 of each page.
    case chunk = 0
    /// A node of a chunk map; its id is the SHA-256 of its bytes.
    case mapNode = 1
}

/// One zstd frame of a pack.
struct PackFrame: Equatable, Sendable {
    var offset: UInt64
    var compressedLength: UInt32
    var rawLength: UInt32
    var kind: ObjectKind
}

/// One object in a pack's table of contents.
struct PackEntry: Equatable, Sendable {
    /// The object's id. A format-2 TOC does not hold ids (the index files do; the data gives them back): nil when
    /// decoded from one.
    var id: ObjectID?
    var kind: ObjectKind
    var frame: UInt32
    var offset: UInt32
    var length: UInt32
}

/// A pack's table of contents: its frames and the objects in them. Packs end with it. Layout in docs/FORMAT.md §6.
///
/// Format 1 (`TOC1`) lists each object's id, kind, frame, offset and length, so the index can be rebuilt from TOCs
/// alone. Format 2 (`TOC2`) lists per frame only the objects' lengths (objects are contiguous from offset 0) and one
/// digest over the ids of all objects in order: ~3 bytes per object instead of ~40. The ids live in the index files
/// (as object names live in git's `.idx`, not its `.pack`); rebuilding an index from format-2 packs decompresses and
/// hashes their data, and the digest proves the result.
struct PackTOC: Equatable, Sendable {
    var frames: [PackFrame] = []
    var entries: [PackEntry] = []
    /// Format 2: SHA-256 over the 32-byte ids of every object, in TOC order. Nil in a format-1 TOC.
    var contentDigest: ObjectID?

    static let headerMagic: [UInt8] = Array("STRATAPK".utf8)
    static let trailerMagic: [UInt8] = Array("STRPKEND".utf8)
    static let tocMagic1: [UInt8] = Array("TOC1".utf8)
    static let tocMagic2: [UInt8] = Array("TOC2".utf8)
    static let headerSize = 16
    static let trailerSize = 48
    /// Pack versions this build reads; it writes the repository's format.
    static let versions: ClosedRange<UInt32> = 1...2

    static func header(version: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: headerSize)
        w.raw(headerMagic)
        w.u32(version)
        w.u32(0)
        return w.bytes
    }

    /// SHA-256 over the ids, concatenated in order (the format-2 content digest).
    static func digest(ofIDs ids: [ObjectID]) -> ObjectID {
        var w = ByteWriter(capacity: ids.count * 32)
        for id in ids { w.id(id) }
        return ObjectID.sha256(w.bytes)
    }

    /// Encodes in the TOC layout of pack `version` (1 or 2). Every entry must carry its id; entries must be in
    /// frame order and, within a frame, contiguous from offset 0 (what PackWriter produces) for version 2.
    func encoded(version: UInt32) -> [UInt8] {
        if version == 1 {
            var w = ByteWriter(capacity: 16 + frames.count * 20 + entries.count * 48)
            w.raw(Self.tocMagic1)
            w.varint(UInt64(frames.count))
            for f in frames {
                w.u8(f.kind.rawValue)
                w.varint(f.offset)
                w.varint(UInt64(f.compressedLength))
                w.varint(UInt64(f.rawLength))
            }
            w.varint(UInt64(entries.count))
            for e in entries {
                w.id(e.id!)
                w.u8(e.kind.rawValue)
                w.varint(UInt64(e.frame))
                w.varint(UInt64(e.offset))
                w.varint(UInt64(e.length))
            }
            return w.bytes
        }
        precondition(version == 2, "unknown pack version \(version)")
        var counts = [Int](repeating: 0, count: frames.count)
        for e in entries { counts[Int(e.frame)] += 1 }
        var w = ByteWriter(capacity: 48 + frames.count * 24 + entries.count * 3)
        w.raw(Self.tocMagic2)
        w.varint(UInt64(frames.count))
        for (f, n) in zip(frames, counts) {
            w.u8(f.kind.rawValue)
            w.varint(f.offset)
            w.varint(UInt64(f.compressedLength))
            w.varint(UInt64(f.rawLength))
            w.varint(UInt64(n))
        }
        for e in entries { w.varint(UInt64(e.length)) }
        w.id(Self.digest(ofIDs: entries.map { $0.id! }))
        return w.bytes
    }

    /// The trailer that follows the TOC: its length, its SHA-256 (which is also the pack's id) and a magic.
    static func trailer(tocLength: Int, tocID: ObjectID) -> [UInt8] {
        var w = ByteWriter(capacity: trailerSize)
        w.u64(UInt64(tocLength))
        w.id(tocID)
        w.raw(trailerMagic)
        return w.bytes
    }

    /// Decodes a TOC of pack `version` and checks it against the pack it came from (TOC starting at `tocOffset`).
    static func decode(_ raw: UnsafeRawBufferPointer, version: UInt32 = 1, tocOffset: UInt64, what: String) throws -> PackTOC {
        var r = ByteReader(raw, what: what)
        try r.expect(version == 1 ? tocMagic1 : tocMagic2)
        var toc = PackTOC()
        let frameCount = try r.count(minimumSize: version == 1 ? 4 : 5)
        toc.frames.reserveCapacity(frameCount)
        var objectCounts: [Int] = []
        var expectedOffset = UInt64(headerSize)
        for _ in 0..<frameCount {
            guard let kind = ObjectKind(rawValue: try r.u8()) else { throw r.fail("unknown frame kind") }
            let offset = try r.varint()
            let compressed = try r.varint()
            let rawLength = try r.varint()
            guard offset == expectedOffset, compressed > 0, compressed <= UInt64(UInt32.max),
                  rawLength > 0, rawLength <= 64 << 20, compressed <= tocOffset, offset <= tocOffset - compressed else {
                throw r.fail("frame table is inconsistent")
            }
            if version != 1 {
                let n = try r.varint()
                guard n > 0, n <= rawLength else { throw r.fail("frame table is inconsistent") }
                objectCounts.append(Int(n))
            }
            expectedOffset = offset + compressed
            toc.frames.append(PackFrame(offset: offset, compressedLength: UInt32(compressed), rawLength: UInt32(rawLength), kind: kind))
        }
        guard expectedOffset == tocOffset else { throw r.fail("frames do not end where the table of contents starts") }
        if version == 1 {
            let entryCount = try r.count(minimumSize: 36)
            toc.entries.reserveCapacity(entryCount)
            for _ in 0..<entryCount {
                let id = try r.id()
                guard let kind = ObjectKind(rawValue: try r.u8()) else { throw r.fail("unknown object kind") }
                let frame = try r.varint()
                let offset = try r.varint()
                let length = try r.varint()
                guard frame < UInt64(toc.frames.count) else { throw r.fail("entry names frame \(frame) of \(toc.frames.count)") }
                let f = toc.frames[Int(frame)]
                guard f.kind == kind, length > 0, length <= UInt64(f.rawLength), offset <= UInt64(f.rawLength) - length else {
                    throw r.fail("entry lies outside its frame")
                }
                toc.entries.append(PackEntry(id: id, kind: kind, frame: UInt32(frame), offset: UInt32(offset), length: UInt32(length)))
            }
        } else {
            // Each object length takes at least a byte and the digest 32: the counts cannot ask for more than is there.
            let total = objectCounts.reduce(0, +)
            guard total <= r.remaining - 32 else { throw r.fail("object count \(total) exceeds the table's size") }
            toc.entries.reserveCapacity(total)
            for (f, frame) in toc.frames.enumerated() {
                var offset: UInt64 = 0
                for _ in 0..<objectCounts[f] {
                    let length = try r.varint()
                    guard length > 0, length <= UInt64(frame.rawLength) - offset else { throw r.fail("object lies outside its frame") }
                    toc.entries.append(PackEntry(id: nil, kind: frame.kind, frame: UInt32(f), offset: UInt32(offset), length: UInt32(length)))
                    offset += length
                }
                guard offset == UInt64(frame.rawLength) else { throw r.fail("objects do not cover frame \(f)") }
            }
            toc.contentDigest = try r.id()
        }
        guard r.atEnd else { throw r.fail("trailing bytes") }
        return toc
    }
}
