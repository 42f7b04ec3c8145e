import Crypto

/// A 256-bit content address: of a chunk, a chunk-map node, a pack's table of contents or a manifest.
/// Stored as four words so that hashing and comparing it costs a few instructions.
public struct ObjectID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let byteCount = 32
    public static let zero = ObjectID(w0: 0, w1: 0, w2: 0, w3: 0)

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// Reads 32 bytes (big-endian words, so that the order of ids is the order of their bytes).
    public init(bytes: UnsafeRawPointer) {
        w0 = UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
        w1 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        w3 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self = bytes.withUnsafeBytes { ObjectID(bytes: $0.baseAddress!) }
    }

    public init?(hex: String) {
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// The SHA-256 of a digest's bytes as an id.
    init(digest: SHA256.Digest) {
        self = digest.withUnsafeBytes { ObjectID(bytes: $0.baseAddress!) }
    }

    /// SHA-256 of a byte range.
    public static func sha256(_ raw: UnsafeRawBufferPointer) -> ObjectID {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { out in
            FastSHA256.hash(raw, into: out.baseAddress!)
            return ObjectID(bytes: UnsafeRawPointer(out.baseAddress!))
        }
    }

    public static func sha256(_ bytes: [UInt8]) -> ObjectID {
        bytes.withUnsafeBytes { sha256($0) }
    }

    /// Writes the 32 bytes to `out`.
    public func store(to out: UnsafeMutableRawPointer) {
        out.storeBytes(of: w0.bigEndian, as: UInt64.self)
        (out + 8).storeBytes(of: w1.bigEndian, as: UInt64.self)
        (out + 16).storeBytes(of: w2.bigEndian, as: UInt64.self)
        (out + 24).storeBytes(of: w3.bigEndian, as: UInt64.self)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { store(to: $0.baseAddress!) }
        return out
    }

    public var hex: String { Hex.encode(bytes) }

    /// The first 12 hex digits, as people see it.
    public var shortHex: String { String(hex.prefix(12)) }

    public var description: String { hex }

    public static func < (a: ObjectID, b: ObjectID) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }

    public func hash(into hasher: inout Hasher) {
        // The id is already uniformly distributed: one word is enough.
        hasher.combine(w1)
    }
}
