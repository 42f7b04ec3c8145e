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
    var id: ObjectID
    var kind: ObjectKind
    var frame: UInt32
    var offset: UInt32
    var length: UInt32
}

/// A pack's table of contents: its frames and the objects in them. Packs end with it, so the index can always be
/// rebuilt from the packs alone. Layout in docs/FORMAT.md.
struct PackTOC: Equatable, Sendable {
    var frames: [PackFrame] = []
    var entries: [PackEntry] = []

    static let headerMagic: [UInt8] = Array("STRATAPK".utf8)
    static let trailerMagic: [UInt8] = Array("STRPKEND".utf8)
    static let tocMagic: [UInt8] = Array("TOC1".utf8)
    static let headerSize = 16
    static let trailerSize = 48
    static let version: UInt32 = 1

    static var header: [UInt8] {
        var w = ByteWriter(capacity: headerSize)
        w.raw(headerMagic)
        w.u32(version)
        w.u32(0)
        return w.bytes
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 16 + frames.count * 20 + entries.count * 48)
        w.raw(Self.tocMagic)
        w.varint(UInt64(frames.count))
        for f in frames {
            w.u8(f.kind.rawValue)
            w.varint(f.offset)
            w.varint(UInt64(f.compressedLength))
            w.varint(UInt64(f.rawLength))
        }
        w.varint(UInt64(entries.count))
        for e in entries {
            w.id(e.id)
            w.u8(e.kind.rawValue)
            w.varint(UInt64(e.frame))
            w.varint(UInt64(e.offset))
            w.varint(UInt64(e.length))
        }
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

    /// Decodes a TOC and checks it against the pack it came from (`fileSize` bytes, TOC starting at `tocOffset`).
    static func decode(_ raw: UnsafeRawBufferPointer, tocOffset: UInt64, what: String) throws -> PackTOC {
        var r = ByteReader(raw, what: what)
        try r.expect(tocMagic)
        var toc = PackTOC()
        let frameCount = try r.count(minimumSize: 4)
        toc.frames.reserveCapacity(frameCount)
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
            expectedOffset = offset + compressed
            toc.frames.append(PackFrame(offset: offset, compressedLength: UInt32(compressed), rawLength: UInt32(rawLength), kind: kind))
        }
        guard expectedOffset == tocOffset else { throw r.fail("frames do not end where the table of contents starts") }
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
        guard r.atEnd else { throw r.fail("trailing bytes") }
        return toc
    }
}
