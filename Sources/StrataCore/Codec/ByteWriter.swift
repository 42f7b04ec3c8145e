/// Appends little-endian integers, varints and ids to a growing byte array (the encoders of every binary format).
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// LEB128 unsigned varint.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func id(_ id: ObjectID) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 32))
        bytes.withUnsafeMutableBytes { id.store(to: $0.baseAddress! + start) }
    }

    mutating func raw(_ other: [UInt8]) { bytes.append(contentsOf: other) }
}

/// Reads what `ByteWriter` wrote, checking every bound: damaged or hostile input gives a typed error, never a crash.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    /// Names the object being decoded, for error messages.
    let what: String

    init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var remaining: Int { bytes.count - position }
    var atEnd: Bool { position == bytes.count }

    func fail(_ problem: String) -> StrataError {
        StrataError.corrupt("\(what) is damaged: \(problem) at byte \(position)")
    }

    mutating func need(_ n: Int) throws {
        if n < 0 || n > remaining { throw fail("truncated") }
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u32() throws -> UInt32 {
        try need(4)
        defer { position += 4 }
        return UInt32(littleEndian: bytes.baseAddress!.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64() throws -> UInt64 {
        try need(8)
        defer { position += 8 }
        return UInt64(littleEndian: bytes.baseAddress!.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift == 63 && b > 1 { throw fail("varint overflows 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw fail("varint too long") }
        }
    }

    mutating func id() throws -> ObjectID {
        try need(32)
        defer { position += 32 }
        return ObjectID(bytes: bytes.baseAddress! + position)
    }

    mutating func expect(_ magic: [UInt8]) throws {
        try need(magic.count)
        for (i, b) in magic.enumerated() where bytes[position + i] != b {
            throw fail("bad magic")
        }
        position += magic.count
    }

    /// A count read from input that must fit in what remains (each element at least `minimumSize` bytes).
    mutating func count(minimumSize: Int) throws -> Int {
        let n = try varint()
        guard n <= UInt64(remaining / max(minimumSize, 1)) else { throw fail("count \(n) exceeds the data") }
        return Int(n)
    }
}
