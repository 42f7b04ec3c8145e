import Foundation
import Testing
import Dispatch
@testable import StrataCore

@Suite("Repository")
struct RepositoryTests {
    @Test("init refuses a non-empty directory and open refuses a non-repository")
    func initAndOpen() throws {
        let dir = TemporaryDirectory()
        _ = try dir.write("junk", [1])
        #expect { try Repository.create(at: dir.path) } throws: { ($0 as? StrataError)?.code == .invalidArgument }
        #expect { try Repository.open(at: dir.path) } throws: { ($0 as? StrataError)?.code == .notARepository }
        #expect { try Repository.open(at: dir.file("nope")) } throws: { ($0 as? StrataError)?.code == .notARepository }
        let repo = try Repository.create(at: dir.file("r"), chunker: .fixed(size: 512 << 10), compression: CompressionParameters(level: 5))
        let reopened = try Repository.open(at: repo.path)
        #expect(reopened.config == repo.config)
        #expect { try Repository.create(at: repo.path) } throws: { ($0 as? StrataError)?.message.contains("already a repository") == true }
    }

    @Test("repository files are private whatever the umask")
    func privateFiles() throws {
        let old = umask(0)
        defer { umask(old) }
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 3)
        _ = try snap(repo, try dir.write("img", rng.bytes(300_000)))
        let e = FileManager.default.enumerator(atPath: repo.path)!
        while let name = e.nextObject() as? String {
            let st = try #require(try FileSystem.linkStatus(repo.path + "/" + name))
            let perms = st.mode & 0o777
            #expect(perms & 0o077 == 0, "\(name) has mode \(String(perms, radix: 8))")
        }
    }

    @Test("a second snapshot stores only what changed; both restore byte for byte")
    func incremental() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 4)
        var image = rng.textLike(2 << 20) + [UInt8](repeating: 0, count: 1 << 20) + rng.bytes(1 << 20)
        let first = try snap(repo, try dir.write("img", image))
        for i in 0..<4096 { image[100 * 4096 + i] = 7 }
        let second = try snap(repo, try dir.write("img", image))
        #expect(first.manifest.dataBytes == UInt64(3 << 20))
        #expect(second.manifest.newBytes <= 3 * 65536)
        #expect(second.manifest.newChunks <= 3)
        let unchanged = try snap(repo, dir.file("img"))
        #expect(unchanged.manifest.newChunks == 0)
        #expect(unchanged.manifest.root == second.manifest.root)
        #expect(try restoreBytes(repo, second, in: dir) == image)
        image.withUnsafeMutableBytes { for i in 0..<4096 { $0[100 * 4096 + i] = 0 } }
        // The first snapshot is unaffected by the second.
        var original = image
        original.replaceSubrange((100 * 4096)..<(101 * 4096), with: try restoreBytes(repo, first, in: dir)[(100 * 4096)..<(101 * 4096)])
        #expect(try restoreBytes(repo, first, in: dir) == original)
    }

    @Test("sparse files: holes are skipped and restored as holes with the exact size")
    func sparse() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        let path = dir.file("sparse.img")
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        var rng = SeededRandom(seed: 5)
        let data = rng.bytes(200_000)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 512 << 20) }
        ftruncate(fd, (1 << 30) + 123)
        close(fd)
        let s = try snap(repo, path)
        #expect(s.manifest.size == UInt64((1 << 30) + 123))
        #expect(s.manifest.dataBytes <= 204_800)
        let out = dir.file("out.img")
        _ = try Restorer(repo: repo).run(s, to: out)
        var st = stat()
        #expect(lstat(out, &st) == 0)
        #expect(st.st_size == (1 << 30) + 123)
        #expect(st.st_blocks * 512 < 4 << 20, "restored file uses \(st.st_blocks * 512) bytes")
        let fh = try FileHandle(forReadingFrom: URL(fileURLWithPath: out))
        try fh.seek(toOffset: 512 << 20)
        #expect(Array(fh.readData(ofLength: data.count)) == data)
    }

    @Test("a restore that drops its written pages from the page cache as it goes writes the same bytes")
    func restoreDroppingPages() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 17)
        // Data, a hole, data: the drops run between writes landing all over the file.
        var image = rng.textLike(3 << 20)
        image += [UInt8](repeating: 0, count: 1 << 20)
        image += rng.bytes(2 << 20)
        let s = try snap(repo, try dir.write("img", image))
        let out = dir.file("out.img")
        // Windows of 64 KiB, each dropped two windows after its write-back starts (the default: 8 MiB, 8 later).
        _ = try Restorer(repo: repo, batchBytes: 256 << 10, windowBytes: 64 << 10, dropLag: 2).run(s, to: out)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == image)
    }

    @Test("a chunk map that covers more than the manifest's size stops the restore before anything past it is written")
    func mapPastSize() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 6)
        let path = dir.file("img")
        _ = FileManager.default.createFile(atPath: path, contents: Data(rng.bytes(3 << 20)))
        let s = try snap(repo, path)
        // The same map under a manifest that claims 1 MiB (a damaged or crafted manifest, stored under its hash).
        var manifest = s.manifest
        manifest.size = 1 << 20
        let id = try SnapshotStore(repo: repo).save(manifest)
        let lying = Snapshot(id: id, manifest: manifest)
        let out = dir.file("out.img")
        #expect {
            _ = try Restorer(repo: repo).run(lying, to: out)
        } throws: { error in
            (error as? StrataError)?.message.contains("its chunk map covers more than the 1048576 bytes the manifest says") == true
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileSystem.list(dir.path).allSatisfy { !$0.contains(".strata-") }, "no draft left")
        let pipe = try FileHandleFD.open(dir.file("stream"), flags: O_WRONLY | O_CREAT, mode: 0o600)
        #expect(throws: StrataError.self) { try Restorer(repo: repo).stream(lying, to: pipe) }
        try pipe.close()
        var st = stat()
        #expect(stat(dir.file("stream"), &st) == 0 && st.st_size <= 1 << 20, "nothing past the claimed size reached the stream")
    }

    @Test("snapshot names: full id, prefix, ref, latest, ambiguity")
    func resolve() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var snaps: [Snapshot] = []
        var rng = SeededRandom(seed: 6)
        for i in 0..<40 {
            snaps.append(try snap(repo, try dir.write("img\(i)", rng.bytes(5000)), volume: i % 2 == 0 ? "even" : "odd"))
        }
        let r = SnapshotResolver(repo: repo)
        let target = snaps[3]
        #expect(try r.resolve(target.id.hex).id == target.id)
        #expect(try r.resolve(target.id.shortHex).id == target.id)
        #expect(try r.resolve(target.id.hex.uppercased()).id == target.id)
        #expect(try r.resolve("latest", volume: "odd").manifest.volume == "odd")
        try RefStore(repo: repo).set("release/v1", to: target.id)
        #expect(try r.resolve("release/v1").id == target.id)
        // Among 40 ids, some 1-digit prefix repeats: any 4-digit prefix of two ids sharing one is checked too.
        let byFirst = Dictionary(grouping: snaps, by: { String($0.id.hex.prefix(1)) })
        let pair = byFirst.values.first { $0.count > 1 }!
        #expect { try r.resolve(String(pair[0].id.hex.prefix(1))) } throws: { ($0 as? StrataError)?.code == .invalidArgument }
        #expect { try r.resolve("0000000000") } throws: { ($0 as? StrataError)?.code == .notFound }
        #expect { try r.resolve("no-such-ref") } throws: { ($0 as? StrataError)?.code == .notFound }
        // A real ambiguity: store variants of a manifest until two ids share their first 4 hex digits (birthday
        // bound: a few hundred tries).
        let store = SnapshotStore(repo: repo)
        var seen: [String: Manifest] = [:]
        var variant = target.manifest
        var collision: String?
        for n in 0..<100_000 where collision == nil {
            variant.description = "variant \(n)"
            let prefix = String(ObjectID.sha256(try variant.encoded()).hex.prefix(4))
            if let other = seen[prefix] {
                _ = try store.save(other)
                _ = try store.save(variant)
                collision = prefix
            } else {
                seen[prefix] = variant
            }
        }
        let prefix = try #require(collision)
        #expect { try r.resolve(prefix) } throws: { error in
            guard let e = error as? StrataError, e.code == .ambiguous else { return false }
            return e.message.hasPrefix("snapshot '\(prefix)' is ambiguous: matches \(prefix)")
        }
    }

    @Test("a pack is finished at 8192 objects however well its data compresses: what the packer holds per unfinished pack does not grow with the image")
    func packObjectCap() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), chunker: .fixed(size: 4096))
        // 10,000 distinct 4 KiB pages of text that compress ~20 to 1: by bytes alone, one pack.
        var text: [UInt8] = []
        var n = 0
        while text.count < 10_000 * 4096 { text += Array("\(n)\n".utf8); n += 7 }
        let s = try snap(repo, try dir.write("img", Array(text.prefix(10_000 * 4096))))
        let counts = try repo.packFilePaths().map { path -> Int in
            let id = ObjectID(hex: String(path.split(separator: "/").last!))!
            return try PackFile(id: id, path: path, sealer: repo.sealer).readTOC().entries.count
        }
        #expect(counts.count >= 2 && counts.allSatisfy { $0 <= ObjectPacker.maxObjectsPerPack + 600 }, "\(counts)")
        #expect(try restoreBytes(repo, s, in: dir) == Array(text.prefix(10_000 * 4096)))
    }

    @Test("gc merges small packs once there are 16 (nightly increments), every snapshot restores, and the next gc leaves the merged pack alone")
    func smallPacksMerged() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 5)
        var bytes = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var snapshots: [(Snapshot, [UInt8])] = []
        for night in 0..<20 {
            for i in 0..<4096 { bytes[night * 40960 + i] = UInt8(truncatingIfNeeded: rng.next()) }
            snapshots.append((try snap(repo, try dir.write("img", bytes)), bytes))
        }
        let before = try repo.packFilePaths().count
        #expect(before == 20)
        let first = try GarbageCollector(repo: repo).run()
        #expect(first.packsRewritten == 20 && first.packsDeleted == 0, "\(first)")
        #expect(try repo.packFilePaths().count == 1)
        for (s, b) in snapshots { #expect(try restoreBytes(repo, s, in: dir) == b) }
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        let second = try GarbageCollector(repo: repo).run()
        #expect(second.packsRewritten == 0)
        #expect(try repo.packFilePaths().count == 1)
    }

    @Test("ref names that escape refs/tags or break git's rules are refused")
    func refNames() throws {
        for bad in ["", "../x", "a/../b", "/abs", "x/", "a..b", "a b", "a\u{1}b", ".hidden", "a/.b", "x.lock", "latest", "a//b", "a:b", String(repeating: "x", count: 300)] {
            #expect(throws: StrataError.self, "\(bad)") { try RefStore.validate(bad) }
        }
        for good in ["v1", "release/2024-01", "nightly_01", "a.b"] {
            try RefStore.validate(good)
        }
        // A control character is shown the way a shell shows it, never raw (an ESC would reach the terminal).
        #expect { try RefStore.validate("a\tb\u{1B}[2J\n") } throws: { error in
            (error as? StrataError)?.message == #"ref name 'a\tb\x1b[2J\n' is not valid: it contains a control character"#
        }
    }

    @Test("protect, tag and ref add racing rm of the same snapshot: either lands before rm looks (rm refuses or takes the ref along) or finds it gone; never a protected snapshot removed, metadata or a ref left naming nothing")
    func racesWithRm() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        let image = try dir.write("img", [UInt8](repeating: 3, count: 8192) + (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        for round in 0..<150 {
            let s = try snap(repo, image, volume: "v\(round)")
            let catalog = SnapshotCatalog(repo: repo)
            let start = DispatchSemaphore(value: 0)
            let done = DispatchGroup()
            let changedFlag = Flag(), removedFlag = Flag()
            DispatchQueue.global().async(group: done) {
                start.wait()
                switch round % 3 {
                case 0: if (try? catalog.setProtected(s.id, true)) != nil { changedFlag.set() }
                case 1: if (try? catalog.tag(s, set: ["k": "v"], remove: [])) != nil { changedFlag.set() }
                default: if (try? catalog.addRef("r\(round)", to: s.id, force: false)) != nil { changedFlag.set() }
                }
            }
            DispatchQueue.global().async(group: done) {
                start.wait()
                if (try? catalog.remove([s.id], force: round % 3 == 2)) != nil { removedFlag.set() }
            }
            start.signal(); start.signal()
            done.wait()
            let changed = changedFlag.isSet, removed = removedFlag.isSet
            let exists = FileSystem.exists(repo.snapshotsPath + "/" + s.id.hex)
            let meta = (try? MetaStore(repo: repo).load(s.id)) ?? SnapshotMeta()
            if round % 3 == 0 {
                #expect(!(changed && removed), "round \(round): a protected snapshot was removed")
                #expect(exists == !removed && meta.protected == changed, "round \(round)")
            }
            #expect(exists || MetaStore(repo: repo).orphanedIDs().isEmpty, "round \(round): metadata left without its snapshot")
            #expect(try RefStore(repo: repo).all().allSatisfy { $0.target.map { FileSystem.exists(repo.snapshotsPath + "/" + $0.hex) } == true },
                    "round \(round): a ref names nothing")
            if exists { _ = try? catalog.setProtected(s.id, false); try catalog.remove([s.id], force: true) }
        }
        #expect(try Checker(repo: repo).run(readData: false).isHealthy)
    }

    @Test("a snapshot removed and its data freed between being named and the reader's lock is reported as removed (exit 3), not as damage")
    func removedBeforeTheLock() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 4)
        let a = try snap(repo, try dir.write("a", rng.bytes(1 << 20)), volume: "a")
        let b = try snap(repo, try dir.write("b", rng.bytes(1 << 20)), volume: "b")
        // Named (resolved) first, as the command line does; then another command's rm and gc run.
        let named = try SnapshotResolver(repo: repo).resolve(a.id.hex)
        try SnapshotCatalog(repo: repo).remove([a.id])
        _ = try GarbageCollector(repo: repo).run()
        func removed(_ e: Error) -> Bool {
            (e as? StrataError)?.code == .notFound && (e as? StrataError)?.message == "snapshot \(a.id.shortHex) was removed (by another command) before it could be read"
        }
        #expect { try Restorer(repo: repo).run(named, to: dir.file("out")) } throws: { removed($0) }
        #expect(!FileSystem.exists(dir.file("out")))
        #expect { try Differ(repo: repo).diff(named, b) } throws: { removed($0) }
        #expect { try Statistics(repo: repo).usage(of: named) } throws: { removed($0) }
        #expect { try Bundle.export([named], from: repo, to: dir.file("x.bundle"), passphrase: nil) } throws: { removed($0) }
        let other = try Repository.create(at: dir.file("o"), chunkingFrom: repo)
        #expect { try SnapshotCopier(from: repo, to: other).copy([named]) } throws: { removed($0) }
    }

    @Test("a name is a ref or a folder of refs, not both; a folder goes with its last ref")
    func refFolders() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        let a = try snap(repo, try dir.write("a", [UInt8](repeating: 7, count: 8192)))
        let refs = RefStore(repo: repo)
        try refs.set("a/b/c", to: a.id)
        let folder = try #require(throws: StrataError.self) { try refs.set("a", to: a.id) }
        #expect(folder.message == "ref 'a' cannot be made: refs named 'a/…' exist, and a name cannot be both a ref and a folder of refs")
        #expect(throws: StrataError.self) { try refs.remove("a/b") }
        try refs.remove("a/b/c")
        #expect(!FileSystem.exists(repo.refsPath + "/a"))
        try refs.set("a", to: a.id)
        #expect(try refs.target(of: "a") == a.id)
        let file = try #require(throws: StrataError.self) { try refs.set("a/x", to: a.id) }
        #expect(file.message == "ref 'a/x' cannot be made: ref 'a' exists, and a name cannot be both a ref and a folder of refs")
        try refs.remove("a")
        // Empty folders an older version left behind are no refs.
        try FileSystem.makeDirectory(repo.refsPath + "/old")
        try FileSystem.makeDirectory(repo.refsPath + "/old/x")
        try refs.set("old", to: a.id)
        #expect(try refs.all().map(\.name) == ["old"])
    }

    @Test("gc frees what only removed snapshots used; every remaining snapshot restores")
    func gc() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 7)
        let base = rng.textLike(3 << 20)
        let a = try snap(repo, try dir.write("a", base))
        var changed = base
        changed.replaceSubrange(0..<(1 << 20), with: rng.bytes(1 << 20))
        let b = try snap(repo, try dir.write("b", changed))
        let c = try snap(repo, try dir.write("c", rng.textLike(1 << 20)))
        let gc = GarbageCollector(repo: repo)
        let dry = try gc.run(dryRun: true)
        #expect(dry.bytesFreed == 0)
        try SnapshotCatalog(repo: repo).remove([a.id])
        let before = try gc.repositoryDataBytes()
        let r = try gc.run()
        #expect(r.bytesFreed > 0)
        #expect(r.packsRewritten + r.packsDeleted >= 1)
        #expect(try gc.repositoryDataBytes() == before - r.bytesFreed)
        #expect(try restoreBytes(repo, b, in: dir) == changed)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        // Keep only the newest: it stays whole.
        try SnapshotCatalog(repo: repo).remove([b.id])
        _ = try gc.run()
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, c, in: dir).count == 1 << 20)
        // Remove everything: nothing is left but the (empty) index.
        try SnapshotCatalog(repo: repo).remove([c.id])
        _ = try gc.run()
        #expect(try gc.repositoryDataBytes() < 200)
        let again = try gc.run()
        #expect(again.bytesFreed == 0)
    }

    @Test("gc removes packs a crashed snapshot left behind and tmp files")
    func gcLeftovers() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 8)
        let keep = try snap(repo, try dir.write("a", rng.bytes(1 << 20)))
        // A snapshot that wrote its packs but never its index or manifest.
        let index = try ChunkIndex.load(repo, strict: true)
        let packer = ObjectPacker(repo: repo, index: index)
        let junk = rng.bytes(200_000)
        try junk.withUnsafeBytes { _ = try packer.add(id: ObjectID.sha256($0), kind: .chunk, bytes: $0) }
        _ = try packer.finish()
        _ = try dir.write("r/tmp/draft-123", [1, 2, 3])
        let report = try Checker(repo: repo).run(readData: false)
        #expect(report.isHealthy)
        #expect(report.notes.count == 2)
        let r = try GarbageCollector(repo: repo).run()
        #expect(r.unindexedPacksDeleted == 1)
        #expect(r.tmpFilesRemoved == 1)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, keep, in: dir).count == 1 << 20)
    }

    @Test("a big snapshot writes its index in parts after their packs, and reads back whole")
    func indexInParts() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 12)
        let image = rng.bytes(40 << 20)
        let s = try Snapshotter(repo: repo, indexFlushLimit: 200).run(SnapshotRequest(source: try dir.write("img", image), volume: "v")).snapshot
        #expect(try FileSystem.list(repo.indexPath).count > 1)
        #expect(try restoreBytes(repo, s, in: dir) == image)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        _ = try GarbageCollector(repo: repo).run()
        #expect(try FileSystem.list(repo.indexPath).count == 1)
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("gc copies the live objects of the packs it rewrites in batches (one pass over the index each), whole packs per batch")
    func gcCopiesInBatches() throws {
        let dir = TemporaryDirectory()
        let repo = try dir.smallPackRepository("r")
        var rng = SeededRandom(seed: 14)
        let base = rng.bytes(6 << 20)
        let a = try snap(repo, try dir.write("a", base))
        // A quarter of every MiB replaced: each of a's packs is left with a dead share well above 10%.
        var changed = base
        for mib in 0..<6 { changed.replaceSubrange((mib << 20)..<((mib << 20) + (256 << 10)), with: rng.bytes(256 << 10)) }
        let b = try snap(repo, try dir.write("b", changed))
        try SnapshotCatalog(repo: repo).remove([a.id])
        let r = try GarbageCollector(repo: repo, indexFileEntries: 50, copyBatchObjects: 1).run()
        #expect(r.packsRewritten >= 3, "\(r.packsRewritten) packs rewritten, one batch each")
        let counts = try repo.indexFileEntryCounts()
        #expect(counts.allSatisfy { $0 <= 50 }, "\(counts)")
        let index = try ChunkIndex.load(repo, strict: true)
        #expect(index.count == counts.reduce(0, +), "no object in two files")
        #expect(try restoreBytes(repo, b, in: dir) == changed)
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.isHealthy && report.notes.isEmpty, "\(report.problems) \(report.notes)")
        // A second gc finds nothing left to rewrite.
        #expect(try GarbageCollector(repo: repo).run().packsRewritten == 0)
    }

    @Test("gc writes the index in files of a bounded number of entries, kept and rewritten ones, and reads it back whole")
    func gcIndexInParts() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 13)
        let base = rng.bytes(24 << 20)
        let a = try snap(repo, try dir.write("a", base))
        var changed = base
        changed.replaceSubrange(0..<(6 << 20), with: rng.bytes(6 << 20))
        let b = try snap(repo, try dir.write("b", changed))
        try SnapshotCatalog(repo: repo).remove([a.id])
        let objects = try ChunkIndex.load(repo, strict: true).count
        let r = try GarbageCollector(repo: repo, indexFileEntries: 100).run()
        #expect(r.packsRewritten + r.packsDeleted >= 1, "a's own data goes")
        let counts = try repo.indexFileEntryCounts()
        #expect(counts.allSatisfy { $0 <= 100 }, "\(counts)")
        let index = try ChunkIndex.load(repo, strict: true)
        #expect(index.count == counts.reduce(0, +), "no object in two files")
        #expect(index.count < objects)
        #expect(try FileSystem.list(repo.indexPath).count >= index.count / 100)
        #expect(try restoreBytes(repo, b, in: dir) == changed)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        _ = try GarbageCollector(repo: repo).run()
        #expect(try FileSystem.list(repo.indexPath).count == 1)
        #expect(try ChunkIndex.load(repo, strict: true).count == index.count)
        #expect(try restoreBytes(repo, b, in: dir) == changed)
    }
}
