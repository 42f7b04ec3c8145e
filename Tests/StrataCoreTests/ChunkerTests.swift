import Foundation
import Testing
@testable import StrataCore

@Suite("Chunking")
struct ChunkerTests {
    @Test("cdc chunks are whole pages, within min and max, and zero pages become zero runs")
    func alignedAndBounded() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 1)
        var image = rng.textLike(3 << 20)
        // A zero stretch in the middle (4 pages) and a short, non-zero tail page.
        for i in (1 << 20)..<((1 << 20) + 4 * 4096) { image[i] = 0 }
        image += rng.bytes(1000)
        let repo = try Repository.create(at: dir.file("repo"))
        let s = try snap(repo, try dir.write("img", image))
        let entries = try repo.entries(of: s)
        var offset: UInt64 = 0
        let p = repo.config.chunker
        for (i, e) in entries.enumerated() {
            #expect(offset % 4096 == 0, "entry \(i) starts at \(offset)")
            let isLast = i == entries.count - 1
            if e.kind == .chunk {
                #expect(e.length <= UInt64(p.maxSize))
                if !isLast { #expect(e.length % 4096 == 0) }
                let next = i + 1 < entries.count ? entries[i + 1] : nil
                // Shorter than min only when a zero run or the end follows.
                if e.length < UInt64(p.minSize) { #expect(next == nil || next!.kind == .zero) }
            }
            offset += e.length
        }
        #expect(offset == UInt64(image.count))
        #expect(entries.contains(.zero(4 * 4096)))
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("average chunk size is near the configured average")
    func averageSize() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 2)
        let image = rng.bytes(8 << 20)
        let repo = try Repository.create(at: dir.file("repo"))
        let entries = try repo.entries(of: try snap(repo, try dir.write("img", image)))
        let mean = Double(image.count) / Double(entries.count)
        #expect(mean > 12 * 1024 && mean < 20 * 1024, "mean chunk \(mean)")
    }

    @Test("boundaries re-synchronise after an insertion that shifts the data", arguments: [1, 3, 17])
    func stableUnderShift(pages: Int) throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: UInt64(10 + pages))
        let original = rng.textLike(4 << 20)
        let shifted = rng.bytes(pages * 4096) + original
        let repo = try Repository.create(at: dir.file("repo"))
        let a = Set(try repo.entries(of: try snap(repo, try dir.write("a", original))).map(\.id))
        let bEntries = try repo.entries(of: try snap(repo, try dir.write("b", shifted)))
        let shared = bEntries.filter { a.contains($0.id) }.count
        #expect(Double(shared) / Double(bEntries.count) > 0.95, "shared \(shared) of \(bEntries.count)")
    }

    @Test("an in-place 4 KiB write changes at most a few chunks")
    func inPlaceWrite() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 5)
        var image = rng.textLike(4 << 20)
        let repo = try Repository.create(at: dir.file("repo"))
        let first = try snap(repo, try dir.write("img", image))
        let before = Set(try repo.entries(of: first).map(\.id))
        let page = 517
        for i in 0..<4096 { image[page * 4096 + i] ^= 0x5a }
        let second = try Snapshotter(repo: repo).run(SnapshotRequest(source: try dir.write("img", image), volume: "v")).snapshot
        let after = try repo.entries(of: second)
        let changed = after.filter { !before.contains($0.id) }
        #expect(changed.count >= 1 && changed.count <= 3)
        #expect(changed.reduce(0) { $0 + $1.length } <= 2 * 65536)
        #expect(second.manifest.newChunks == UInt64(changed.count))
    }

    @Test("fixed chunks cut at multiples of the size")
    func fixedChunks() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 6)
        let image = rng.bytes(1 << 20 + 8192)
        let repo = try Repository.create(at: dir.file("repo"), chunker: try .parse("fixed:64K"))
        let entries = try repo.entries(of: try snap(repo, try dir.write("img", image)))
        #expect(entries.count == 17)
        #expect(entries.dropLast().allSatisfy { $0.length == 65536 })
        #expect(entries.last!.length == 8192)
    }

    @Test("chunker parameters parse and validate")
    func parameters() throws {
        #expect(try ChunkerParameters.parse("cdc:16K") == .cdc(average: 16384))
        #expect(try ChunkerParameters.parse("fixed:512K") == .fixed(size: 512 << 10))
        #expect(try ChunkerParameters.parse("cdc:1M").maxSize == 4 << 20)
        for bad in ["cdc", "cdc:", "cdc:5000", "fixed:0", "zip:16K", "cdc:4K", "fixed:32M", "cdc:-16K"] {
            #expect(throws: StrataError.self, "\(bad)") { try ChunkerParameters.parse(bad) }
        }
    }

    @Test("zero detection")
    func zeroScan() {
        var page = [UInt8](repeating: 0, count: 4096)
        #expect(page.withUnsafeBytes { ZeroScan.isZero($0) })
        for i in [0, 7, 8, 63, 64, 2048, 4095] {
            page[i] = 1
            #expect(!page.withUnsafeBytes { ZeroScan.isZero($0) })
            page[i] = 0
        }
        let odd = [UInt8](repeating: 0, count: 1001)
        #expect(odd.withUnsafeBytes { ZeroScan.isZero($0) })
    }
}
