import Crypto
import Foundation
import Testing
@testable import StrataCore

/// Strata's SHA-256 (SHA-NI, pages two at a time, when the CPU has it) against FIPS 180-4's examples and against
/// swift-crypto: the chunk ids of every repository depend on it being exactly SHA-256.
@Suite("SHA-256")
struct SHA256Tests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    private func fast(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { b in out.withUnsafeMutableBytes { FastSHA256.hash(b, into: $0.baseAddress!) } }
        return out
    }

    private func reference(_ bytes: ArraySlice<UInt8>) -> [UInt8] { Array(SHA256.hash(data: Array(bytes))) }

    @Test("FIPS 180-4 examples: empty, \"abc\", the two-block 448-bit message, a million 'a'")
    func knownAnswers() {
        #expect(hex(fast([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(fast(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(fast(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(fast([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("one message and two at once equal swift-crypto at every length up to two pages and beyond, at odd addresses")
    func everyLength() {
        var rng = SeededRandom(seed: 256)
        let data = rng.bytes(2 * 8300 + 16)
        data.withUnsafeBytes { all in
            var a = [UInt8](repeating: 0, count: 32), b = a, one = a
            for length in 0...8300 {
                let p = all.baseAddress! + 3, q = all.baseAddress! + 8300 + 5
                FastSHA256.hashPair(p, q, count: length, into: &a, &b)
                FastSHA256.hash(UnsafeRawBufferPointer(start: p, count: length), into: &one)
                let expectA = reference(data[3..<(3 + length)]), expectB = reference(data[(8305)..<(8305 + length)])
                if a != expectA || b != expectB || one != expectA {
                    Issue.record("SHA-256 differs from swift-crypto at length \(length) (hardware: \(FastSHA256.usesHardware))")
                    return
                }
            }
        }
    }

    @Test("consecutive pages (even and odd counts, a short last page) hash like one page at a time",
          arguments: [0, 1, 4095, 4096, 4097, 2 * 4096, 3 * 4096, 5 * 4096 + 100, 64 * 4096])
    func pages(count: Int) {
        var rng = SeededRandom(seed: UInt64(count) + 7)
        let data = rng.bytes(count)
        let pages = (count + 4095) / 4096
        var digests = [UInt8](repeating: 0, count: max(pages, 1) * 32)
        data.withUnsafeBytes { b in
            digests.withUnsafeMutableBytes { out in
                var digester = ChunkHasher.pageDigester()
                var offset = 0
                while offset < count {
                    let n = min(4096, count - offset)
                    digester.add(b.baseAddress! + offset, count: n, digest: out.baseAddress! + offset / 4096 * 32)
                    offset += n
                }
                digester.finish()
            }
        }
        for i in 0..<pages {
            let page = data[(i * 4096)..<min(count, (i + 1) * 4096)]
            #expect(Array(digests[(i * 32)..<(i * 32 + 32)]) == reference(page), "page \(i) of \(count) bytes")
        }
    }

    @Test("a snapshot's chunk ids are SHA-256 over the pages' SHA-256s, whatever mix of data and zero pages the pairs meet")
    func chunkIDsOfAnImage() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 99)
        // Runs of data pages of every parity between zero pages, then a short last page.
        var image: [UInt8] = []
        for run in [1, 2, 3, 4, 5, 7, 1, 1, 9, 16, 33] {
            image += rng.textLike(run * 4096)
            image += [UInt8](repeating: 0, count: 4096 * (run % 3 + 1))
        }
        image += rng.bytes(1234)
        let repo = try Repository.create(at: dir.file("repo"))
        let entries = try repo.entries(of: try snap(repo, try dir.write("img", image)))
        var offset = 0
        var chunks = 0
        for e in entries {
            let end = offset + Int(e.length)
            if e.kind == .chunk {
                var pageDigests: [UInt8] = []
                var o = offset
                while o < end {
                    pageDigests += reference(image[o..<min(end, o + 4096)])
                    o += 4096
                }
                #expect(e.id == ObjectID(bytes: reference(pageDigests[...]))!, "chunk at \(offset)")
                chunks += 1
            } else {
                #expect(image[offset..<end].allSatisfy { $0 == 0 })
            }
            offset = end
        }
        #expect(offset == image.count)
        #expect(chunks >= 11)
    }
}
