import Foundation
import Testing
@testable import StrataCore

@Suite("Snapshot lifecycle")
struct LifecycleTests {
    /// The EBS deletion example, scaled down: a volume snapshotted as A; 40% of it changed and snapshotted as B
    /// (B adds only the changed data); A deleted and gc run: B still restores, and the store holds A's unchanged
    /// data plus B's changes. Fixed 64 KiB chunks and random data make every number exact.
    @Test("the EBS example: incremental snapshots, deletion and what is stored, exactly")
    func ebsExample() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), chunker: .fixed(size: 64 << 10))
        let block = 64 << 10, blocks = 160  // a "10 GiB" volume of 10 MiB
        var rng = SeededRandom(seed: 40)
        var volume = rng.bytes(blocks * block)
        let a = try snap(repo, try dir.write("vol", volume), volume: "vol")
        #expect(a.manifest.newBytes == UInt64(volume.count))

        // State 2: 40% of the blocks change.
        let changedBlocks = Array(stride(from: 0, to: blocks, by: 5).flatMap { [$0, $0 + 1] })  // 2 of every 5
        #expect(changedBlocks.count == blocks * 2 / 5)
        for b in changedBlocks { volume.replaceSubrange((b * block)..<((b + 1) * block), with: rng.bytes(block)) }
        let b = try snap(repo, try dir.write("vol", volume), volume: "vol")
        let changedBytes = UInt64(changedBlocks.count * block)
        #expect(b.manifest.newBytes == changedBytes)
        #expect(b.manifest.newChunks == UInt64(changedBlocks.count))

        let stats = Statistics(repo: repo)
        let before = try stats.repositoryUsage()
        #expect(before.uniqueBytes == Int64(volume.count) + Int64(changedBytes))
        #expect(before.dataBytes == 2 * Int64(volume.count))
        // A alone holds the old versions of the changed blocks; B alone holds their new versions.
        #expect(try stats.usage(of: a).exclusiveChunkBytes == Int64(changedBytes))
        #expect(try stats.usage(of: b).exclusiveChunkBytes == Int64(changedBytes))

        // State 3: A deleted, gc run: B restores; the store holds A's unchanged data plus B's changes.
        try SnapshotCatalog(repo: repo).remove([a.id])
        let gc = try GarbageCollector(repo: repo).run()
        #expect(gc.bytesFreed > 0)
        #expect(try restoreBytes(repo, b, in: dir) == volume)
        let after = try stats.repositoryUsage()
        #expect(after.uniqueBytes == Int64(volume.count))
        #expect(after.unreferencedBytes == 0, "gc rewrote or deleted every pack holding A's old blocks")
        #expect(try stats.usage(of: b).exclusiveChunkBytes == Int64(volume.count))
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("tags after creation merge with creation tags; the manifest never changes")
    func tags() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 41)
        let s = try Snapshotter(repo: repo).run(SnapshotRequest(source: try dir.write("img", rng.bytes(100_000)), volume: "v",
                                                                  tags: ["env": "test", "owner": "ops"])).snapshot
        let catalog = SnapshotCatalog(repo: repo)
        #expect(try catalog.tag(s, set: ["env": "prod", "tier": "gold"], remove: ["owner"]) == ["env": "prod", "tier": "gold"])
        #expect(try catalog.info(s).tags == ["env": "prod", "tier": "gold"])
        #expect(try SnapshotResolver(repo: repo).resolve(s.id.hex).manifest.tags == ["env": "test", "owner": "ops"])
        #expect(try catalog.tag(s, set: ["owner": "ops"], remove: ["tier"]) == ["env": "prod", "owner": "ops"])
        #expect { try catalog.tag(s, set: [:], remove: ["nope"]) } throws: { ($0 as? StrataError)?.code == .notFound }
        #expect(try catalog.list(SnapshotFilter(tags: [("env", "prod")])).snapshots.count == 1)
        #expect(try catalog.list(SnapshotFilter(tags: [("env", "test")])).snapshots.isEmpty)
        #expect(try catalog.list(SnapshotFilter(tags: [("owner", nil)])).snapshots.count == 1)
        #expect(throws: StrataError.self) { try catalog.tag(s, set: ["bad\u{1}key": "x"], remove: []) }
    }

    @Test("protection and refs guard removal; --force drops the ref; retention keeps them")
    func guards() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 42)
        let a = try snap(repo, try dir.write("a", rng.bytes(50_000)))
        let b = try snap(repo, try dir.write("b", rng.bytes(50_000)))
        let catalog = SnapshotCatalog(repo: repo)
        try catalog.setProtected(a.id, true)
        #expect { try catalog.remove([a.id], force: true) } throws: { ($0 as? StrataError)?.code == .refused }
        try catalog.addRef("keep/me", to: b.id, force: false)
        #expect { try catalog.addRef("keep/me", to: a.id, force: false) } throws: { ($0 as? StrataError)?.code == .refused }
        #expect { try catalog.remove([b.id]) } throws: { ($0 as? StrataError)?.message.contains("keep/me") == true }
        let decisions = RetentionPolicy(last: 0, hourly: 0, daily: 0, within: 0).apply(to: try catalog.list().snapshots)
        #expect(decisions.allSatisfy { $0.keep })
        let (removed, refs) = try catalog.remove([b.id], force: true)
        #expect(removed == [b.id] && refs == ["keep/me"])
        #expect(try RefStore(repo: repo).all().isEmpty)
        try catalog.setProtected(a.id, false)
        try catalog.remove([a.id])
        #expect(try catalog.list().snapshots.isEmpty)
        #expect(try FileSystem.list(repo.metaPath).filter { !$0.hasPrefix(".") }.isEmpty)
    }

    @Test("diff reports exactly the changed chunks and skips shared subtrees")
    func diff() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), chunker: .fixed(size: 16 << 10))
        var rng = SeededRandom(seed: 43)
        var image = rng.bytes(32 << 20)
        let a = try snap(repo, try dir.write("img", image))
        for page in [10, 11, 5000, 7000] { image.replaceSubrange((page * 4096)..<((page + 1) * 4096), with: rng.bytes(4096)) }
        let b = try snap(repo, try dir.write("img", image))
        let d = try Differ(repo: repo).diff(a, b)
        // Pages 10 and 11 share one 16 KiB chunk (pages 8-11); 5000 and 7000 are chunks of their own.
        let page: UInt64 = 4096
        let expected: [Range<UInt64>] = [(8 * page)..<(12 * page), (5000 * page)..<(5004 * page), (7000 * page)..<(7004 * page)]
        #expect(d.ranges == expected)
        #expect(d.changedBytes == 3 * 16384)
        #expect(d.subtreesSkipped > 0)
        let total = try repo.entries(of: a).count
        #expect(d.nodesRead < total / 16, "read \(d.nodesRead) nodes for \(total) chunks")
        #expect(try Differ(repo: repo).diff(a, a).ranges.isEmpty)
        // A longer image: the new tail is changed.
        let c = try snap(repo, try dir.write("img", image + rng.bytes(8192)))
        #expect(try Differ(repo: repo).diff(b, c).ranges == [UInt64(32 << 20)..<UInt64((32 << 20) + 8192)])
    }
}
