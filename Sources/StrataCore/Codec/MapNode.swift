/// One entry of a chunk map: a chunk of the image or a run of zero bytes.
public struct MapEntry: Equatable, Sendable {
    public enum Kind: UInt8, Sendable { case chunk = 0, zero = 1 }
    public var kind: Kind
    public var length: UInt64
    /// The chunk's id; `ObjectID.zero` for zero runs.
    public var id: ObjectID

    public static func chunk(_ id: ObjectID, length: Int) -> MapEntry { MapEntry(kind: .chunk, length: UInt64(length), id: id) }
    public static func zero(_ length: UInt64) -> MapEntry { MapEntry(kind: .zero, length: length, id: .zero) }
}

/// A child of an interior node: the child's id and how many image bytes it covers.
public struct MapChild: Equatable, Sendable {
    public var id: ObjectID
    public var length: UInt64
}

/// A node of the chunk-map tree, content-addressed (its id is the SHA-256 of its encoding).
/// Leaves list entries; interior nodes list children. Layout in docs/FORMAT.md.
public enum MapNode: Equatable, Sendable {
    case leaf([MapEntry])
    case interior(level: UInt8, [MapChild])

    static let leafTag: UInt8 = 0x4C      // "L"
    static let interiorTag: UInt8 = 0x49  // "I"
    /// Hard bounds on node sizes; encoders never exceed them, decoders refuse more.
    static let maxLeafEntries = 512
    static let maxChildren = 256
    static let maxLevel: UInt8 = 32

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .leaf(let entries):
            w.u8(Self.leafTag)
            w.varint(UInt64(entries.count))
            for e in entries {
                w.u8(e.kind.rawValue)
                w.varint(e.length)
                if e.kind == .chunk { w.id(e.id) }
            }
        case .interior(let level, let children):
            w.u8(Self.interiorTag)
            w.u8(level)
            w.varint(UInt64(children.count))
            for c in children {
                w.id(c.id)
                w.varint(c.length)
            }
        }
        return w.bytes
    }

    static func decode(_ raw: UnsafeRawBufferPointer, what: String) throws -> MapNode {
        var r = ByteReader(raw, what: what)
        let tag = try r.u8()
        switch tag {
        case leafTag:
            let n = try r.count(minimumSize: 2)
            guard n <= maxLeafEntries else { throw r.fail("too many entries (\(n))") }
            var entries: [MapEntry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                guard let kind = MapEntry.Kind(rawValue: try r.u8()) else { throw r.fail("unknown entry kind") }
                let length = try r.varint()
                guard length > 0, length <= UInt64(Int64.max) else { throw r.fail("entry length \(length) is invalid") }
                if kind == .chunk {
                    guard length <= 64 << 20 else { throw r.fail("chunk length \(length) is too large") }
                    entries.append(MapEntry(kind: .chunk, length: length, id: try r.id()))
                } else {
                    entries.append(.zero(length))
                }
            }
            guard r.atEnd else { throw r.fail("trailing bytes") }
            return .leaf(entries)
        case interiorTag:
            let level = try r.u8()
            guard level >= 1 && level <= maxLevel else { throw r.fail("level \(level) is invalid") }
            let n = try r.count(minimumSize: 33)
            guard n >= 1 && n <= maxChildren else { throw r.fail("child count \(n) is invalid") }
            var children: [MapChild] = []
            children.reserveCapacity(n)
            for _ in 0..<n {
                let id = try r.id()
                let length = try r.varint()
                guard length <= UInt64(Int64.max) else { throw r.fail("child length is invalid") }
                children.append(MapChild(id: id, length: length))
            }
            guard r.atEnd else { throw r.fail("trailing bytes") }
            return .interior(level: level, children)
        default:
            throw r.fail("unknown node tag \(tag)")
        }
    }
}
