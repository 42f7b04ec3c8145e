/// Where an object lives: which pack, which frame of it, and where in the decompressed frame.
struct ChunkLocation: Equatable, Sendable {
    /// Ordinal of the pack in the index's pack table.
    var pack: UInt32
    var kind: ObjectKind
    var frameOffset: UInt64
    var frameCompressedLength: UInt32
    var frameRawLength: UInt32
    var offset: UInt32
    var length: UInt32

    /// Identifies the frame (pack ordinal and offset), for caches and grouping.
    var frameKey: FrameKey { FrameKey(pack: pack, offset: frameOffset) }
}

struct FrameKey: Hashable, Sendable {
    var pack: UInt32
    var offset: UInt64
}
