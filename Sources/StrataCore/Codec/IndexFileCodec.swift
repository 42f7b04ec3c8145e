/// An index file: immutable, names packs and maps object ids to their place in them. Its name is the SHA-256
/// of its bytes before the trailing hash. Layout in docs/FORMAT.md.
struct IndexFileContents: Sendable {
    var packs: [ObjectID]
    /// Entries with `pack` as an ordinal into `packs`.
    var entries: [(id: ObjectID, location: ChunkLocation)]

    static let magic: [UInt8] = Array("STRATAIX".utf8)
    /// Index file versions this build reads; it writes the repository's format.
    static let versions: ClosedRange<UInt32> = 1...2

    /// Encodes in index layout `version` (1: entries sorted by id, each with its frame; 2: a frame table, each
    /// frame followed by its objects in offset order); returns the bytes and the file's id.
    func encoded(version: UInt32) -> (bytes: [UInt8], id: ObjectID) {
        var copy = self
        return copy.sortAndEncode(version: version)
    }

    /// Sorts the entries in place (the layout's order), then encodes.
    mutating func sortAndEncode(version: UInt32) -> (bytes: [UInt8], id: ObjectID) {
        var w = ByteWriter(capacity: 32 + packs.count * 32 + entries.count * (version == 1 ? 56 : 40))
        w.raw(Self.magic)
        w.u32(version)
        w.u32(0)
        w.varint(UInt64(packs.count))
        for p in packs { w.id(p) }
        if version == 1 {
            entries.sort { $0.id < $1.id }
            w.varint(UInt64(entries.count))
            for (id, loc) in entries {
                w.id(id)
                w.varint(UInt64(loc.pack))
                w.u8(loc.kind.rawValue)
                w.varint(loc.frameOffset)
                w.varint(UInt64(loc.frameCompressedLength))
                w.varint(UInt64(loc.frameRawLength))
                w.varint(UInt64(loc.offset))
                w.varint(UInt64(loc.length))
            }
        } else {
            precondition(version == 2, "unknown index version \(version)")
            // Objects grouped by frame (a frame record per run of equal frame facts, so any input round-trips).
            func frameKey(_ l: ChunkLocation) -> (UInt32, UInt64, UInt8, UInt32, UInt32) {
                (l.pack, l.frameOffset, l.kind.rawValue, l.frameCompressedLength, l.frameRawLength)
            }
            entries.sort {
                let a = frameKey($0.location), b = frameKey($1.location)
                return a != b ? a < b : $0.location.offset < $1.location.offset
            }
            var runs: [Range<Int>] = []
            var i = 0
            while i < entries.count {
                var j = i + 1
                while j < entries.count, frameKey(entries[j].location) == frameKey(entries[i].location) { j += 1 }
                runs.append(i..<j)
                i = j
            }
            w.varint(UInt64(runs.count))
            for run in runs {
                let f = entries[run.lowerBound].location
                w.varint(UInt64(f.pack))
                w.u8(f.kind.rawValue)
                w.varint(f.frameOffset)
                w.varint(UInt64(f.frameCompressedLength))
                w.varint(UInt64(f.frameRawLength))
                w.varint(UInt64(run.count))
                for (id, loc) in entries[run] {
                    w.id(id)
                    w.varint(UInt64(loc.offset))
                    w.varint(UInt64(loc.length))
                }
            }
        }
        let id = ObjectID.sha256(w.bytes)
        w.id(id)
        return (w.bytes, id)
    }

    static func decode(_ raw: UnsafeRawBufferPointer, what: String) throws -> (IndexFileContents, ObjectID) {
        var contents = IndexFileContents(packs: [], entries: [])
        let id = try decode(raw, what: what, packs: { contents.packs = $0 },
                            entry: { contents.entries.append(($0, $1)) })
        return (contents, id)
    }

    /// Decodes without building the entry array: `packs` receives the pack table, then `entry` each entry (with
    /// `pack` an ordinal into that table), in file order. The checksum is verified before anything is delivered;
    /// a later structural error throws after some entries were delivered.
    static func decode(_ raw: UnsafeRawBufferPointer, what: String, packs deliverPacks: ([ObjectID]) -> Void,
                       entry deliver: (ObjectID, ChunkLocation) -> Void) throws -> ObjectID {
        guard raw.count >= 16 + 32 else { throw StrataError.corrupt("\(what) is damaged: truncated (\(raw.count) bytes)") }
        let body = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 32)])
        let stored = ObjectID(bytes: raw.baseAddress! + raw.count - 32)
        guard ObjectID.sha256(body) == stored else { throw StrataError.corrupt("\(what) is damaged: checksum mismatch") }
        var r = ByteReader(body, what: what)
        try r.expect(magic)
        let version = try r.u32()
        guard versions.contains(version) else { throw r.fail("unknown index version \(version)") }
        _ = try r.u32()
        let packCount = try r.count(minimumSize: 32)
        var packs: [ObjectID] = []
        packs.reserveCapacity(packCount)
        for _ in 0..<packCount { packs.append(try r.id()) }
        deliverPacks(packs)
        if version == 1 {
            let entryCount = try r.count(minimumSize: 39)
            for _ in 0..<entryCount {
                let id = try r.id()
                let pack = try r.varint()
                guard pack < UInt64(packs.count) else { throw r.fail("entry names pack \(pack) of \(packs.count)") }
                guard let kind = ObjectKind(rawValue: try r.u8()) else { throw r.fail("unknown object kind") }
                let frameOffset = try r.varint()
                let compressed = try r.varint()
                let frameRaw = try r.varint()
                let offset = try r.varint()
                let length = try r.varint()
                guard compressed <= UInt64(UInt32.max), frameRaw <= 64 << 20, length > 0, length <= frameRaw, offset <= frameRaw - length else {
                    throw r.fail("entry is inconsistent")
                }
                deliver(id, ChunkLocation(pack: UInt32(pack), kind: kind, frameOffset: frameOffset,
                                          frameCompressedLength: UInt32(compressed), frameRawLength: UInt32(frameRaw),
                                          offset: UInt32(offset), length: UInt32(length)))
            }
        } else {
            let frameCount = try r.count(minimumSize: 6 + 34)
            for _ in 0..<frameCount {
                let pack = try r.varint()
                guard pack < UInt64(packs.count) else { throw r.fail("frame names pack \(pack) of \(packs.count)") }
                guard let kind = ObjectKind(rawValue: try r.u8()) else { throw r.fail("unknown object kind") }
                let frameOffset = try r.varint()
                let compressed = try r.varint()
                let frameRaw = try r.varint()
                guard compressed > 0, compressed <= UInt64(UInt32.max), frameRaw > 0, frameRaw <= 64 << 20 else {
                    throw r.fail("frame is inconsistent")
                }
                let entryCount = try r.count(minimumSize: 34)
                guard entryCount > 0 else { throw r.fail("frame lists no object") }
                for _ in 0..<entryCount {
                    let id = try r.id()
                    let offset = try r.varint()
                    let length = try r.varint()
                    guard length > 0, length <= frameRaw, offset <= frameRaw - length else { throw r.fail("entry is inconsistent") }
                    deliver(id, ChunkLocation(pack: UInt32(pack), kind: kind, frameOffset: frameOffset,
                                              frameCompressedLength: UInt32(compressed), frameRawLength: UInt32(frameRaw),
                                              offset: UInt32(offset), length: UInt32(length)))
                }
            }
        }
        guard r.atEnd else { throw r.fail("trailing bytes") }
        return stored
    }
}
