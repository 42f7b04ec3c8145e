/// Reads a pack file: its table of contents and its frames.
final class PackFile {
    let id: ObjectID
    let path: String
    let file: FileHandleFD
    let size: Int64
    let sealer: ObjectSealer

    init(id: ObjectID, path: String, sealer: ObjectSealer) throws {
        self.id = id
        self.path = path
        self.sealer = sealer
        do {
            file = try FileHandleFD.openForReading(path)
            size = try file.stat().size
        } catch let e as SystemCallError where e.errno == ENOENT {
            throw StrataError(.damaged, "pack \(id.shortHex) is missing (\(path))")
        } catch let e as SystemCallError {
            throw StrataError.io("cannot open pack \(path)", e)
        }
    }

    /// Reads and verifies the table of contents: the trailer must be intact and the TOC must hash to the pack's id.
    func readTOC() throws -> PackTOC {
        let what = "pack \(id.shortHex)"
        guard size >= Int64(PackTOC.headerSize + PackTOC.trailerSize) else {
            throw StrataError.corrupt("\(what) is truncated (\(size) bytes)")
        }
        var header = [UInt8](repeating: 0, count: PackTOC.headerSize)
        var trailer = [UInt8](repeating: 0, count: PackTOC.trailerSize)
        try wrap({
            _ = try header.withUnsafeMutableBytes { try file.pread(into: $0.baseAddress!, count: PackTOC.headerSize, offset: 0) }
            _ = try trailer.withUnsafeMutableBytes {
                try file.pread(into: $0.baseAddress!, count: PackTOC.trailerSize, offset: size - Int64(PackTOC.trailerSize))
            }
        }(), "cannot read \(path)")
        guard Array(header.prefix(8)) == PackTOC.headerMagic else { throw StrataError.corrupt("\(what) has a damaged header") }
        let version = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard PackTOC.versions.contains(version) else {
            throw StrataError(.unsupportedFormat, "\(what) has pack version \(version), which this strata does not read")
        }
        let (tocLength, tocID): (UInt64, ObjectID) = try trailer.withUnsafeBytes { raw in
            var r = ByteReader(raw, what: what + " trailer")
            let length = try r.u64()
            let tocID = try r.id()
            try r.expect(PackTOC.trailerMagic)
            return (length, tocID)
        }
        let maxTOC = UInt64(size) - UInt64(PackTOC.headerSize + PackTOC.trailerSize)
        guard tocLength <= maxTOC else { throw StrataError.corrupt("\(what) is truncated or has a damaged trailer") }
        // Full ids: a damaged trailer usually differs from the pack's name past the short prefix.
        guard tocID == id else { throw StrataError.corrupt("\(what) has a trailer that names another pack: \(tocID.hex), not \(id.hex) (a damaged trailer, or a pack renamed)") }
        let tocOffset = UInt64(size) - UInt64(PackTOC.trailerSize) - tocLength
        var toc = [UInt8](repeating: 0, count: Int(tocLength))
        try wrap({
            _ = try toc.withUnsafeMutableBytes { try file.pread(into: $0.baseAddress!, count: Int(tocLength), offset: Int64(tocOffset)) }
        }(), "cannot read \(path)")
        guard ObjectID.sha256(toc) == id else {
            throw StrataError.corrupt("\(what): table of contents does not match its hash")
        }
        let plain = try sealer.open(toc, .toc, what: "the table of contents of \(what)")
        return try plain.withUnsafeBytes { try PackTOC.decode($0, version: version, tocOffset: tocOffset, what: what) }
    }

    /// Reads the compressed bytes of a frame into `buffer` (grown as needed).
    func readFrame(offset: UInt64, length: Int, into buffer: ByteBuffer) throws {
        buffer.reserve(length)
        guard Int64(offset) + Int64(length) <= size else {
            throw StrataError.corrupt("pack \(id.shortHex) is truncated: frame at \(offset) is cut off")
        }
        let n = try wrap(try file.pread(into: buffer.base, count: length, offset: Int64(offset)), "cannot read \(path)")
        guard n == length else { throw StrataError.corrupt("pack \(id.shortHex) is truncated: frame at \(offset) is cut off") }
        buffer.count = length
        if sealer.isEncrypted {
            try sealer.openInPlace(buffer, .frame, what: "frame at \(offset) of pack \(id.shortHex)")
        }
    }
    /// Reads a frame and decompresses it into `raw` (sized to the frame's raw length); `compressed` is scratch.
    func decompressFrame(offset: UInt64, compressedLength: Int, rawLength: Int, into raw: ByteBuffer,
                         compressed: ByteBuffer, decompressor: ZstdDecompressor) throws {
        try readFrame(offset: offset, length: compressedLength, into: compressed)
        raw.reserve(rawLength)
        raw.count = rawLength
        try decompressor.decompress(compressed.bytes, into: UnsafeMutableRawBufferPointer(start: raw.base, count: rawLength),
                                    what: "frame at \(offset) of pack \(id.shortHex)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
