import Foundation
import Testing
@testable import StrataCore

@Suite("Codecs")
struct CodecTests {
    static func sampleTOC(_ rng: inout SeededRandom) -> PackTOC {
        var toc = PackTOC()
        var offset = UInt64(PackTOC.headerSize)
        for f in 0..<3 {
            let compressed = UInt32(100 + rng.next() % 1000)
            toc.frames.append(PackFrame(offset: offset, compressedLength: compressed, rawLength: 4 * 4096, kind: f == 2 ? .mapNode : .chunk))
            offset += UInt64(compressed)
            for e in 0..<4 {
                toc.entries.append(PackEntry(id: ObjectID(bytes: rng.bytes(32))!, kind: f == 2 ? .mapNode : .chunk,
                                             frame: UInt32(f), offset: UInt32(e * 4096), length: 4096))
            }
        }
        return toc
    }

    @Test("pack table of contents round-trips in both layouts", arguments: [UInt32(1), 2])
    func tocRoundTrip(version: UInt32) throws {
        var rng = SeededRandom(seed: 1)
        let toc = Self.sampleTOC(&rng)
        let bytes = toc.encoded(version: version)
        let tocOffset = toc.frames.last!.offset + UInt64(toc.frames.last!.compressedLength)
        let decoded = try bytes.withUnsafeBytes { try PackTOC.decode($0, version: version, tocOffset: tocOffset, what: "t") }
        if version == 1 {
            #expect(decoded == toc)
        } else {
            // Format 2 keeps places and lengths, and one digest over the ids in order instead of the ids.
            var expected = toc
            for i in expected.entries.indices { expected.entries[i].id = nil }
            expected.contentDigest = PackTOC.digest(ofIDs: toc.entries.map { $0.id! })
            #expect(decoded == expected)
            #expect(bytes.count < toc.frames.count * 12 + toc.entries.count * 3 + 4 + 1 + 32)
            // The other version's reader refuses it.
            #expect(throws: StrataError.self) { try bytes.withUnsafeBytes { try PackTOC.decode($0, version: 1, tocOffset: tocOffset, what: "t") } }
        }
    }

    @Test("a format-2 TOC whose objects do not cover their frame is refused")
    func tocGaps() throws {
        var rng = SeededRandom(seed: 5)
        var toc = Self.sampleTOC(&rng)
        toc.frames[1].rawLength += 1
        let tocOffset = toc.frames.last!.offset + UInt64(toc.frames.last!.compressedLength)
        let bytes = toc.encoded(version: 2)
        #expect { try bytes.withUnsafeBytes { try PackTOC.decode($0, version: 2, tocOffset: tocOffset, what: "t") } } throws: {
            ($0 as? StrataError)?.message.contains("do not cover frame 1") == true
        }
    }

    @Test("index file round-trips in both layouts and detects damage", arguments: [UInt32(1), 2])
    func indexRoundTrip(version: UInt32) throws {
        var rng = SeededRandom(seed: 2)
        let packs = [ObjectID(bytes: rng.bytes(32))!, ObjectID(bytes: rng.bytes(32))!]
        var entries: [(id: ObjectID, location: ChunkLocation)] = []
        for i in 0..<50 {
            // Two packs, frames of 5 objects each (frame offsets 16, 1015, ...), objects of 100 bytes.
            let frame = UInt64(i / 10)
            entries.append((ObjectID(bytes: rng.bytes(32))!, ChunkLocation(pack: UInt32(i % 2), kind: frame == 4 ? .mapNode : .chunk,
                                                                            frameOffset: 16 + frame * 999, frameCompressedLength: 999,
                                                                            frameRawLength: 1 << 20, offset: UInt32((i % 10) / 2 * 100), length: 100)))
        }
        let (bytes, id) = IndexFileContents(packs: packs, entries: entries).encoded(version: version)
        let (decoded, decodedID) = try bytes.withUnsafeBytes { try IndexFileContents.decode($0, what: "i") }
        #expect(decodedID == id)
        #expect(decoded.packs == packs)
        let sorted = entries.sorted { $0.id < $1.id }
        let decodedSorted = decoded.entries.sorted { $0.id < $1.id }
        #expect(decodedSorted.map(\.id) == sorted.map(\.id))
        #expect(decodedSorted.map(\.location) == sorted.map(\.location))
        if version == 1 {
            #expect(decoded.entries.map(\.id) == sorted.map(\.id))
        } else {
            // Grouped by frame: the frame's facts once (10 frames here), then 32 + 2 + 1 bytes per object at most.
            #expect(bytes.count <= 16 + 1 + 64 + 1 + 10 * 12 + 50 * 35 + 32)
        }
        var damaged = bytes
        damaged[40] ^= 1
        #expect(throws: StrataError.self) { try damaged.withUnsafeBytes { try IndexFileContents.decode($0, what: "i") } }
    }

    @Test("map nodes round-trip")
    func mapNodeRoundTrip() throws {
        var rng = SeededRandom(seed: 3)
        let leaf = MapNode.leaf([.chunk(ObjectID(bytes: rng.bytes(32))!, length: 16384), .zero(1 << 40), .chunk(ObjectID(bytes: rng.bytes(32))!, length: 100)])
        let interior = MapNode.interior(level: 2, [MapChild(id: ObjectID(bytes: rng.bytes(32))!, length: 12345)])
        for node in [leaf, interior, .leaf([])] {
            let bytes = node.encoded()
            #expect(try bytes.withUnsafeBytes { try MapNode.decode($0, what: "n") } == node)
        }
    }

    /// Every decoder, fed random bytes and mutations of valid encodings, throws a typed error or decodes: never crashes.
    @Test("decoders refuse random and mutated input with a typed error", arguments: [11, 12, 13, 14])
    func decodersFuzz(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let toc = Self.sampleTOC(&rng)
        let tocBytes = toc.encoded(version: 1)
        let toc2Bytes = toc.encoded(version: 2)
        let tocOffset = toc.frames.last!.offset + UInt64(toc.frames.last!.compressedLength)
        let node = MapNode.leaf((0..<40).map { i in i % 3 == 0 ? .zero(UInt64(4096 * (i + 1))) : .chunk(ObjectID(bytes: rng.bytes(32))!, length: 4096 * i) }).encoded()
        let (index, _) = IndexFileContents(packs: [ObjectID(bytes: rng.bytes(32))!], entries: [(ObjectID(bytes: rng.bytes(32))!, ChunkLocation(pack: 0, kind: .chunk, frameOffset: 16, frameCompressedLength: 10, frameRawLength: 100, offset: 0, length: 100))]).encoded(version: 1)
        let index2 = IndexFileContents(packs: [ObjectID(bytes: rng.bytes(32))!], entries: [(ObjectID(bytes: rng.bytes(32))!, ChunkLocation(pack: 0, kind: .chunk, frameOffset: 16, frameCompressedLength: 10, frameRawLength: 100, offset: 0, length: 100))]).encoded(version: 2).bytes
        let manifest = Array(#"{"format":1,"volume":"v","root":"00"}"#.utf8)
        let config = try RepositoryConfig(chunker: .default, compression: CompressionParameters()).encoded()

        func attempts(_ base: [UInt8]) -> [[UInt8]] {
            var out: [[UInt8]] = [rng.bytes(Int(rng.next() % 300)), [], Array(base.prefix(Int(rng.next() % UInt64(base.count + 1))))]
            for _ in 0..<150 {
                var m = base
                switch rng.next() % 4 {
                case 0: if !m.isEmpty { m[Int(rng.next() % UInt64(m.count))] ^= UInt8(1 << (rng.next() % 8)) }
                case 1: if !m.isEmpty { m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                case 2: m = Array(m.prefix(Int(rng.next() % UInt64(m.count + 1))))
                default: m.insert(contentsOf: rng.bytes(Int(rng.next() % 9) + 1), at: Int(rng.next() % UInt64(m.count + 1)))
                }
                out.append(m)
            }
            return out
        }
        var errors = 0
        func check(_ body: () throws -> Void) {
            do { try body() } catch is StrataError { errors += 1 } catch { Issue.record("untyped error \(error)") }
        }
        for input in attempts(tocBytes) { check { _ = try input.withUnsafeBytes { try PackTOC.decode($0, version: 1, tocOffset: tocOffset, what: "t") } } }
        for input in attempts(toc2Bytes) { check { _ = try input.withUnsafeBytes { try PackTOC.decode($0, version: 2, tocOffset: tocOffset, what: "t") } } }
        for input in attempts(node) { check { _ = try input.withUnsafeBytes { try MapNode.decode($0, what: "n") } } }
        for input in attempts(index2) { check { _ = try input.withUnsafeBytes { try IndexFileContents.decode($0, what: "i") } } }
        for input in attempts(index) { check { _ = try input.withUnsafeBytes { try IndexFileContents.decode($0, what: "i") } } }
        for input in attempts(manifest) { check { _ = try Manifest.decode(input, what: "m") } }
        for input in attempts(config) { check { _ = try RepositoryConfig.decode(input, path: "c") } }
        #expect(errors > 700)
    }

    @Test("a config from the future or garbage is refused")
    func futureConfig() throws {
        var config = try RepositoryConfig(chunker: .default, compression: CompressionParameters()).encoded()
        let text = String(decoding: config, as: UTF8.self).replacingOccurrences(of: "\"format\" : 2", with: "\"format\" : 3")
        #expect(text.contains("\"format\" : 3"))
        config = Array(text.utf8)
        #expect { try RepositoryConfig.decode(config, path: "c") } throws: { ($0 as? StrataError)?.code == .unsupportedFormat }
        #expect { try RepositoryConfig.decode(Array("garbage".utf8), path: "c") } throws: { ($0 as? StrataError)?.code == .damaged }
    }

    @Test("a repository of a format this build does not write is refused before anything is created")
    func unknownFormatAtInit() throws {
        let dir = TemporaryDirectory()
        for format in [0, 3] {
            #expect { try Repository.create(at: dir.file("r\(format)"), format: format) } throws: {
                ($0 as? StrataError)?.code == .invalidArgument && ($0 as? StrataError)?.message.contains("format \(format)") == true
            }
            #expect(!FileManager.default.fileExists(atPath: dir.file("r\(format)")))
        }
        #expect(try Repository.create(at: dir.file("one"), format: 1).config.format == 1)
        #expect(try Repository.open(at: dir.file("one")).config.format == 1)
    }

    @Test("varints round-trip at the edges")
    func varints() throws {
        var w = ByteWriter()
        let values: [UInt64] = [0, 1, 127, 128, 16383, 16384, UInt64(UInt32.max), UInt64.max]
        for v in values { w.varint(v) }
        let decoded: [UInt64] = try w.bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, what: "v")
            let out = try values.map { _ in try r.varint() }
            #expect(r.atEnd)
            return out
        }
        #expect(decoded == values)
    }

    @Test("zstd compresses and decompresses, and refuses a damaged frame")
    func zstd() throws {
        var rng = SeededRandom(seed: 4)
        let input = rng.textLike(300_000)
        let c = ZstdCompressor(level: 3)
        var out = [UInt8](repeating: 0, count: ZstdCompressor.bound(input.count))
        let n = try input.withUnsafeBytes { i in try out.withUnsafeMutableBytes { try c.compress(i, into: $0) } }
        #expect(n < input.count / 2)
        var back = [UInt8](repeating: 0, count: input.count)
        let d = ZstdDecompressor()
        try out.prefix(n).withUnsafeBytes { src in try back.withUnsafeMutableBytes { try d.decompress(src, into: $0, what: "f") } }
        #expect(back == input)
        // A damaged frame header is refused; damage inside a frame may decode to other bytes (frames carry no
        // checksum: every chunk is re-hashed after decompression instead), but never to the original.
        var bad = Array(out.prefix(n))
        bad[0] ^= 0xff
        #expect(throws: StrataError.self) {
            try bad.withUnsafeBytes { src in try back.withUnsafeMutableBytes { try d.decompress(src, into: $0, what: "f") } }
        }
        bad = Array(out.prefix(n))
        bad[n / 2] ^= 0xff
        back = [UInt8](repeating: 0, count: input.count)
        let decodedDamaged: Bool = (try? bad.withUnsafeBytes { src in try back.withUnsafeMutableBytes { try d.decompress(src, into: $0, what: "f") } }) != nil
        #expect(!decodedDamaged || back != input)
    }
}
