import Foundation
import Testing
@testable import StrataCore

@Suite("Damage")
struct DamageTests {
    /// Rewrites a file with `change` applied to its bytes; returns the new bytes.
    @discardableResult
    static func patch(_ path: String, _ change: (inout [UInt8]) -> Void) throws -> [UInt8] {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        change(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return bytes
    }

    static func packs(_ repo: Repository) throws -> [String] { try repo.packFilePaths() }

    static func setup(_ dir: TemporaryDirectory, format: Int = RepositoryConfig.currentFormat) throws -> (Repository, Snapshot, [UInt8]) {
        let repo = try Repository.create(at: dir.file("r"), format: format)
        var rng = SeededRandom(seed: 9)
        let image = rng.textLike(3 << 20)
        return (repo, try snap(repo, try dir.write("img", image)), image)
    }

    @Test("a flipped byte in a frame: fsck --read-data names the snapshot and range; restore fails and leaves no file",
          arguments: [1, 2])
    func flippedByte(format: Int) throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir, format: format)
        let pack = try Self.packs(repo)[0]
        try Self.patch(pack) { $0[5000] ^= 0x40 }
        #expect(try Checker(repo: repo).run(readData: false).isHealthy, "structure is intact")
        let report = try Checker(repo: repo).run(readData: true)
        #expect(!report.isHealthy)
        #expect(report.damagedSnapshots == [s.id])
        #expect(report.problems.contains { $0.range != nil && $0.message.contains(s.id.shortHex) })
        let out = dir.file("out.img")
        #expect { try Restorer(repo: repo).run(s, to: out) } throws: { ($0 as? StrataError)?.code == .damaged }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("out.img") }.isEmpty)
    }

    @Test("a deleted or truncated pack is named by fsck without reading data")
    func missingPack() throws {
        for mode in ["delete", "truncate"] {
            let dir = TemporaryDirectory()
            let (repo, s, _) = try Self.setup(dir)
            let pack = try Self.packs(repo)[0]
            if mode == "delete" { try FileSystem.remove(pack) } else { truncate(pack, 1000) }
            let report = try Checker(repo: repo).run(readData: false)
            #expect(report.damagedSnapshots == [s.id], "\(mode)")
            #expect { try Restorer(repo: repo).run(s, to: dir.file("o")) } throws: { ($0 as? StrataError)?.code == .damaged }
            #expect { try GarbageCollector(repo: repo).run() } throws: { ($0 as? StrataError)?.code == .damaged }
        }
    }

    @Test("a pack lost or cut short under the index: snap and copy refuse, writing nothing; after fsck --repair the next snapshot stores the data again",
          arguments: ["delete", "truncate"])
    func snapRefusesOverMissingPack(mode: String) throws {
        let dir = TemporaryDirectory()
        let (repo, first, image) = try Self.setup(dir)
        let target = try Repository.create(at: dir.file("t"), chunkingFrom: repo)
        _ = try SnapshotCopier(from: repo, to: target).copy([first])
        var changed = image
        changed.replaceSubrange(0..<4096, with: [UInt8](repeating: 7, count: 4096))
        let path = try dir.write("img2", changed)
        for r in [repo, target] {
            let pack = try Self.packs(r)[0]
            if mode == "delete" { try FileSystem.remove(pack) } else { truncate(pack, 1000) }
        }
        let problem = mode == "delete" ? "is missing" : "is cut short"
        let files = { (r: Repository) in try [r.indexPath, r.snapshotsPath, r.tmpPath, r.packsPath].map { try FileSystem.list($0) } }
        let before = try files(repo)
        // Before, the snapshot took the lost pack's chunks as stored: it committed and could not be restored.
        #expect { try snap(repo, path) } throws: { error in
            let e = error as? StrataError
            return e?.code == .damaged && e!.message.hasPrefix("pack ") && e!.message.contains(problem)
                && e!.message.contains("a snapshot now could depend on what it held; run 'strata fsck --repair'")
        }
        #expect(try files(repo) == before && (try PendingStore(repo: repo).all()).isEmpty)
        let source = try Repository.create(at: dir.file("s"), chunkingFrom: repo)
        let other = try snap(source, path)
        #expect { try SnapshotCopier(from: source, to: target).copy([other]) } throws: { error in
            (error as? StrataError)?.message.contains("a copy now could depend on what it held") == true
        }
        #expect(try SnapshotCatalog(repo: target).list().snapshots.count == 1)

        // fsck --repair drops what the lost pack held from the index; the next snapshot stores it again, and every
        // snapshot of that data restores (the first one too: the same chunks and map nodes are back).
        _ = try Checker(repo: repo).run(readData: false, repair: true)
        let second = try snap(repo, path)
        #expect(try restoreBytes(repo, second, in: dir) == changed)
        _ = try snap(repo, try dir.write("img", image))
        #expect(try restoreBytes(repo, first, in: dir) == image)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("fsck finds the same whatever the size of its groups of packs, also in packs whose objects two index files list apart",
          arguments: [false, true])
    func packGroupsAndSplitPacks(split: Bool) throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 21)
        var snapshots: [Snapshot] = []
        for i in 0..<3 { snapshots.append(try snap(repo, try dir.write("img\(i)", rng.textLike(2 << 20)))) }
        if split {
            // Two index files, each naming every other object of every pack.
            let index = try ChunkIndex.load(repo, strict: true)
            var halves: [[(id: ObjectID, location: ChunkLocation)]] = [[], []]
            var counted: [UInt32: Int] = [:]
            for e in try index.entries() {
                let n = counted[e.location.pack, default: 0]
                counted[e.location.pack] = n + 1
                halves[n % 2].append(e)
            }
            let old = try FileSystem.list(repo.indexPath)
            for half in halves { try ChunkIndex.write(index.contents(of: half), to: repo) }
            for name in old { try FileSystem.remove(FileSystem.join(repo.indexPath, name)) }
            #expect(try FileSystem.list(repo.indexPath).count == 2)
        }
        let packs = try Self.packs(repo).sorted()
        #expect(packs.count >= 3)
        func reports() throws -> [FsckReport] {
            try [1, 7, Checker.defaultPackGroupObjects].map { try Checker(repo: repo, packGroupObjects: $0).run(readData: true) }
        }
        let whole = try reports()
        for r in whole {
            #expect(r.isHealthy, "\(r.problems.map(\.message))")
            #expect(r.objectsVerified == whole[2].objectsVerified && r.objectsVerified == r.objectsIndexed)
            #expect(r.framesRead == whole[2].framesRead && r.bytesVerified == whole[2].bytesVerified)
            #expect(r.packsChecked == packs.count)
        }
        try Self.patch(packs[1]) { $0[5000] ^= 0x40 }
        let damaged = try reports()
        for r in damaged {
            #expect(!r.isHealthy)
            #expect(Set(r.problems.map(\.message)) == Set(damaged[2].problems.map(\.message)))
            #expect(Set(r.damagedSnapshots) == Set(damaged[2].damagedSnapshots))
            #expect(r.objectsVerified == damaged[2].objectsVerified && r.objectsVerified < r.objectsIndexed)
        }
        #expect(!damaged[2].damagedSnapshots.isEmpty)
        #expect(Set(damaged[2].damagedSnapshots).isSubset(of: Set(snapshots.map(\.id))))
    }

    @Test("fsck stops with 'unsupported' at a pack of a version this build does not read, touching nothing")
    func packFromTheFuture() throws {
        let dir = TemporaryDirectory()
        let (repo, s, image) = try Self.setup(dir)
        let pack = try Self.packs(repo)[0]
        let bytes = try Self.patch(pack) { $0.replaceSubrange(8..<12, with: [99, 0, 0, 0]) }
        for readData in [false, true] {
            #expect(performing: { try Checker(repo: repo).run(readData: readData) }, throws: { error in
                guard let e = error as? StrataError else { return false }
                return e.code == .unsupportedFormat && e.message.contains("pack version 99")
            })
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: pack)) == Data(bytes))
        // Restore reads frames where the index says and re-hashes every chunk: the bytes are still proven.
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("gc refuses, deleting nothing, when snapshots need chunks the index lacks (its map nodes still indexed)")
    func liveChunksMissingFromIndex() throws {
        let dir = TemporaryDirectory()
        let (repo, _, image) = try Self.setup(dir)
        var changed = image
        for i in stride(from: 0, to: changed.count, by: 64 << 10) { changed[i] ^= 0xff }
        let second = try snap(repo, try dir.write("img2", changed))
        let old = try ChunkIndex.load(repo, strict: true)
        // The index file that only the second snapshot wrote, rewritten without its chunks.
        let names = try FileSystem.list(repo.indexPath).filter { !$0.hasPrefix(".") }
        #expect(names.count == 2)
        var rewritten = false
        for name in names {
            let path = FileSystem.join(repo.indexPath, name)
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            var (contents, _) = try bytes.withUnsafeBytes { try IndexFileContents.decode($0, what: name) }
            guard contents.entries.contains(where: { $0.id == second.manifest.rootID }) else { continue }
            contents.entries.removeAll { $0.location.kind == .chunk }
            try FileSystem.remove(path)
            try ChunkIndex.write(contents, to: repo)
            rewritten = true
        }
        #expect(rewritten)
        let packsBefore = try Self.packs(repo).sorted()
        let indexBefore = try FileSystem.list(repo.indexPath).sorted()
        #expect { try GarbageCollector(repo: repo).run() } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .damaged && e.message.contains("missing from the index")
        }
        #expect(try Self.packs(repo).sorted() == packsBefore)
        #expect(try FileSystem.list(repo.indexPath).sorted() == indexBefore)
        #expect(old.count > (try ChunkIndex.load(repo, strict: true)).count)
    }

    @Test("a damaged manifest and a dangling ref are reported")
    func manifestAndRef() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        let path = repo.snapshotsPath + "/" + s.id.hex
        try Self.patch(path) { $0[10] ^= 1 }
        try RefStore(repo: repo).set("gone", to: ObjectID(bytes: [UInt8](repeating: 0xab, count: 32))!)
        let report = try Checker(repo: repo).run(readData: false)
        #expect(report.damagedSnapshots == [s.id])
        #expect(report.problems.contains { $0.message.contains("ref 'gone'") })
        #expect { try SnapshotResolver(repo: repo).resolve(s.id.hex) } throws: { ($0 as? StrataError)?.code == .damaged }
        #expect { try GarbageCollector(repo: repo).run() } throws: { ($0 as? StrataError)?.code == .damaged }
    }

    @Test("an index that disagrees with a pack's table of contents is named by fsck", arguments: [1, 2])
    func indexDisagrees(format: Int) throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir, format: format)
        let index = try ChunkIndex.load(repo, strict: true)
        // Replace the index with one whose first chunk points at the wrong offset in its frame.
        var entries = try index.entries()
        let victim = entries.firstIndex { $0.location.kind == .chunk && $0.location.offset > 0 }!
        entries[victim].location.offset -= 1
        for name in index.files { try FileSystem.remove(repo.indexPath + "/" + name) }
        try ChunkIndex.write(index.contents(of: entries), to: repo)
        let report = try Checker(repo: repo).run(readData: false)
        #expect(report.damagedSnapshots == [s.id])
        #expect(report.problems.contains { $0.message.contains("disagrees with the table of contents") })
    }

    @Test("fsck --repair rebuilds a damaged index from the packs: nothing is lost, gc keeps the data")
    func repairRebuildsIndex() throws {
        let dir = TemporaryDirectory()
        let (repo, s, image) = try Self.setup(dir)
        for name in try FileSystem.list(repo.indexPath) {
            var bytes = try FileSystem.readFile(repo.indexPath + "/" + name)
            bytes[bytes.count / 2] ^= 0xff
            try Data(bytes).write(to: URL(fileURLWithPath: repo.indexPath + "/" + name))
        }
        let before = try Checker(repo: repo).run(readData: false)
        #expect(!before.isHealthy)
        #expect { try GarbageCollector(repo: repo).run() } throws: { ($0 as? StrataError)?.code == .damaged }
        // A restore meanwhile says which index file is damaged and what rebuilds it.
        #expect { _ = try restoreBytes(repo, s, in: dir) } throws: { error in
            let m = (error as? StrataError)?.message ?? ""
            return m.contains("is missing from the index; index file") && m.hasSuffix("'strata fsck --repair' rebuilds the index from the packs")
        }
        let repaired = try Checker(repo: repo).run(readData: false, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("rebuilt the index") })
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
        _ = try GarbageCollector(repo: repo).run()
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("a pack whose table of contents cannot be read (bytes added at its end, or its trailer overwritten): restore still reads it; fsck --repair copies its objects into a new pack instead of dropping them, and gc then removes the damaged pack",
          arguments: [false, true], [1, 2])
    func repairSalvagesPackWithoutTOC(overwrite: Bool, format: Int) throws {
        let dir = TemporaryDirectory()
        let (repo, s, image) = try Self.setup(dir, format: format)
        let packs = try Self.packs(repo)
        let damaged = try #require(packs.max { (try FileSystem.readFile($0)).count < (try FileSystem.readFile($1)).count })
        let damagedBytes = try Self.patch(damaged) { bytes in
            if overwrite {
                for i in (bytes.count - 8)..<bytes.count { bytes[i] ^= 0x5a }
            } else {
                bytes += Array("XXXX".utf8)
            }
        }
        #expect(try restoreBytes(repo, s, in: dir) == image, "the index places every object: no table of contents needed")
        #expect(!(try Checker(repo: repo).run(readData: true)).isHealthy)
        let repaired = try Checker(repo: repo).run(readData: true, repair: true)
        // Packed again the same way (format 2, plain), the objects make a pack of the damaged one's name, which replaces it.
        #expect(repaired.repairs.contains { $0.hasPrefix("copied ") && $0.contains("whose table of contents cannot be read, into a new pack")
                                            && ($0.hasSuffix("; 'strata gc' removes the damaged pack") || $0.hasSuffix(", which replaced it under the same name")) },
                "\(repaired.repairs)")
        #expect(!repaired.repairs.contains { $0.hasPrefix("left out") }, "\(repaired.repairs)")
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
        #expect(try restoreBytes(repo, s, in: dir) == image)
        _ = try GarbageCollector(repo: repo).run()
        #expect((try? FileSystem.readFile(damaged)).map { $0 != damagedBytes } ?? true, "the damaged pack is gone")
        let clean = try Checker(repo: repo).run(readData: true)
        #expect(clean.isHealthy && clean.notes.isEmpty, "\(clean.problems) \(clean.notes)")
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("a pack without a readable table of contents and with a damaged frame: repair copies what verifies, leaves the rest out and says how many; the next snapshot of the same data heals it", arguments: [1, 2])
    func repairSalvagesPartOfPack(format: Int) throws {
        let dir = TemporaryDirectory()
        let (repo, _, image) = try Self.setup(dir, format: format)
        let damaged = try #require(try Self.packs(repo).max { (try FileSystem.readFile($0)).count < (try FileSystem.readFile($1)).count })
        try Self.patch(damaged) { bytes in
            bytes[bytes.count / 3] ^= 0xff
            bytes += Array("XXXX".utf8)
        }
        let repaired = try Checker(repo: repo).run(readData: true, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("copied ") && $0.contains(" more cannot be read)") }, "\(repaired.repairs)")
        #expect(repaired.repairs.contains { $0.hasPrefix("left out ") }, "\(repaired.repairs)")
        #expect(!repaired.isHealthy)
        // The repaired index is consistent (only data is missing): the same image stored again heals every snapshot.
        let s = try snap(repo, dir.file("img"))
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
        #expect(try restoreBytes(repo, s, in: dir) == image)
        _ = try GarbageCollector(repo: repo).run()
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("lost index files, or a lost index directory: fsck points to --repair (not gc), which reads the packs back",
          arguments: [(1, false), (2, false), (2, true)])
    func repairLostIndex(format: Int, removeDirectory: Bool) throws {
        let dir = TemporaryDirectory()
        let (repo, s, image) = try Self.setup(dir, format: format)
        for name in try FileSystem.list(repo.indexPath) { try FileSystem.remove(repo.indexPath + "/" + name) }
        if removeDirectory { #expect(rmdir(repo.indexPath) == 0) }
        let before = try Checker(repo: repo).run(readData: false)
        #expect(before.damagedSnapshots == [s.id])
        #expect(before.notes.contains { $0.contains("'strata fsck --repair' adds what they hold back") }, "\(before.notes)")
        #expect(!before.notes.contains { $0.contains("'strata gc' removes them") }, "gc must not be suggested: \(before.notes)")
        #expect { try GarbageCollector(repo: repo).run() } throws: { ($0 as? StrataError)?.code == .damaged }
        let repaired = try Checker(repo: repo).run(readData: false, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("rebuilt the index") }, "\(repaired.repairs)")
        #expect(repaired.repairs.contains("recreated the missing index/ directory") == removeDirectory)
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
        _ = try GarbageCollector(repo: repo).run()
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("--repair rebuilds a lost index in files of a bounded number of entries, each object in one file")
    func repairIndexInParts() throws {
        let dir = TemporaryDirectory()
        let repo = try dir.smallPackRepository("r")
        var rng = SeededRandom(seed: 19)
        let image = rng.bytes(5 << 20) + rng.textLike(3 << 20)
        let s = try snap(repo, try dir.write("img", image))
        let objects = try ChunkIndex.load(repo, strict: true).count
        let packs = try Self.packs(repo).count
        #expect(packs >= 3)
        for name in try FileSystem.list(repo.indexPath) { try FileSystem.remove(repo.indexPath + "/" + name) }
        let repaired = try Checker(repo: repo, packGroupObjects: Checker.defaultPackGroupObjects, indexFileEntries: 40).run(readData: false, repair: true)
        #expect(repaired.repairs.contains("rebuilt the index from \(packs) pack(s): \(objects) objects"), "\(repaired.repairs)")
        let counts = try repo.indexFileEntryCounts()
        #expect(counts.count > 1 && counts.count <= packs)
        let index = try ChunkIndex.load(repo, strict: true)
        #expect(index.count == objects && counts.reduce(0, +) == objects, "every object once")
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("format 2: an index that gives two objects each other's ids is caught by the pack's content digest")
    func swappedIDs() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        let index = try ChunkIndex.load(repo, strict: true)
        // Two chunks of the same pack and kind trade places in the index: every place still matches the TOC.
        var entries = try index.entries()
        let a = entries.firstIndex { $0.location.kind == .chunk }!
        let b = entries.firstIndex { $0.location.kind == .chunk && $0.location.pack == entries[a].location.pack
            && $0.location.length == entries[a].location.length && $0.id != entries[a].id }!
        (entries[a].location, entries[b].location) = (entries[b].location, entries[a].location)
        for name in index.files { try FileSystem.remove(repo.indexPath + "/" + name) }
        try ChunkIndex.write(index.contents(of: entries), to: repo)
        let quick = try Checker(repo: repo).run(readData: false)
        #expect(quick.problems.contains { $0.message.contains("do not match the pack's content digest") }, "\(quick.problems)")
        let full = try Checker(repo: repo).run(readData: true)
        #expect(full.damagedSnapshots == [s.id])
        #expect(full.problems.filter { $0.message.contains("does not match its hash") }.count >= 1, "\(full.problems)")
        // Repair rebuilds the index from the data itself: the ids go back to their places and nothing is lost.
        let repaired = try Checker(repo: repo).run(readData: true, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("rebuilt the index") }, "\(repaired.repairs)")
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
    }

    @Test("format 2: a repair over a damaged frame keeps only the objects the data still proves")
    func repairOverDamagedFrame() throws {
        let dir = TemporaryDirectory()
        let (repo, s, image) = try Self.setup(dir)
        let pack = try Self.packs(repo)[0]
        try Self.patch(pack) { $0[5000] ^= 0x40 }
        let before = try Checker(repo: repo).run(readData: true)
        #expect(before.damagedSnapshots == [s.id])
        let repaired = try Checker(repo: repo).run(readData: true, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("left out") }, "\(repaired.repairs)")
        // The damaged objects are out of the index; snapshotting the same image stores them again and heals it.
        let again = try snap(repo, try dir.write("img2", image))
        #expect(try restoreBytes(repo, again, in: dir) == image)
        #expect(try restoreBytes(repo, s, in: dir) == image)
        // Nothing any snapshot uses is damaged any more: a clean check (the damaged copy left in the old pack is a
        // note when the frame still decompresses), every time.
        for _ in 0..<2 {
            let after = try Checker(repo: repo).run(readData: true)
            #expect(after.isHealthy, "\(after.problems.map(\.message))")
            #expect(after.notes.allSatisfy { $0.contains("every object the index uses from it verified") }, "\(after.notes)")
        }
        _ = try GarbageCollector(repo: repo).run()
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("format 2: a flipped byte that leaves its frame readable: after repair and a new snapshot fsck --read-data is clean, with a note on the old pack")
    func repairedFlipIsANote() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 21)
        let image = rng.bytes(8 << 20)  // incompressible: zstd stores its blocks raw, so a flipped byte stays a flipped byte
        let s = try snap(repo, try dir.write("img", image))
        let pack = try Self.packs(repo)[0]
        let size = try FileSystem.status(pack)!.size
        _ = try Self.patch(pack) { $0[Int(size) / 2] ^= 0xff }
        #expect(try Checker(repo: repo).run(readData: true).damagedSnapshots == [s.id])
        _ = try Checker(repo: repo).run(readData: true, repair: true)
        _ = try snap(repo, try dir.write("img2", image))
        let after = try Checker(repo: repo).run(readData: true)
        #expect(after.isHealthy, "\(after.problems.map(\.message))")
        #expect(after.notes.count == 1 && after.notes[0].contains("the difference is in the 1 object(s) it holds that no snapshot uses"), "\(after.notes)")
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("damaged metadata: fsck names it and rm refuses rather than ignore a possible protection")
    func damagedMeta() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        try SnapshotCatalog(repo: repo).setProtected(s.id, true)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: repo.metaPath + "/" + s.id.hex))
        #expect(try Checker(repo: repo).run(readData: false).damagedSnapshots == [s.id])
        #expect { try SnapshotCatalog(repo: repo).remove([s.id], force: true) } throws: { ($0 as? StrataError)?.code == .damaged }
    }

    @Test("damaged metadata of a protected snapshot: unprotect replaces it (saying so), then rm removes the snapshot")
    func damagedMetaUnprotected() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        try SnapshotCatalog(repo: repo).setProtected(s.id, true)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: repo.metaPath + "/" + s.id.hex))
        #expect(try SnapshotCatalog(repo: repo).setProtected(s.id, false) == true)
        #expect(try Checker(repo: repo).run(readData: false).isHealthy)
        try SnapshotCatalog(repo: repo).remove([s.id])
        #expect(try SnapshotStore(repo: repo).ids().isEmpty)
    }

    @Test("a protected snapshot whose manifest is damaged can be unprotected by name and removed; gc then goes on")
    func damagedProtectedManifest() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        try SnapshotCatalog(repo: repo).setProtected(s.id, true)
        _ = try Self.patch(repo.snapshotsPath + "/" + s.id.hex) { $0[$0.count / 2] ^= 1 }
        #expect { try GarbageCollector(repo: repo).run(dryRun: true) } throws: { ($0 as? StrataError)?.code == .damaged }
        let id = try SnapshotResolver(repo: repo).resolveID(String(s.id.hex.prefix(8)), orphans: true)
        #expect(id == s.id)
        #expect { try SnapshotCatalog(repo: repo).remove([id]) } throws: { ($0 as? StrataError)?.code == .refused }
        #expect(try SnapshotCatalog(repo: repo).setProtected(id, false) == false)
        try SnapshotCatalog(repo: repo).remove([id])
        let gc = try GarbageCollector(repo: repo).run(dryRun: false)
        #expect(gc.bytesFreed > 0)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("a protected snapshot whose manifest is lost: fsck names it, gc frees nothing until it is unprotected by id or prefix; unprotected leftovers are a note that --repair clears")
    func lostProtectedManifest() throws {
        let dir = TemporaryDirectory()
        let (repo, s, _) = try Self.setup(dir)
        try SnapshotCatalog(repo: repo).setProtected(s.id, true)
        _ = try SnapshotCatalog(repo: repo).tag(s, set: ["k": "v"], remove: [])
        let manifest = repo.snapshotsPath + "/" + s.id.hex
        let saved = try Data(contentsOf: URL(fileURLWithPath: manifest))
        try FileSystem.remove(manifest)
        let report = try Checker(repo: repo).run(readData: false)
        #expect(!report.isHealthy && report.problems.count == 1
                && report.problems[0].message.hasPrefix("snapshot \(s.id.shortHex) is protected but its manifest is missing"), "\(report.problems)")
        let stopped = #expect(throws: StrataError.self) { try GarbageCollector(repo: repo).run(dryRun: false) }
        #expect(stopped?.code == .damaged && stopped?.message.contains("is protected but its manifest is missing") == true)
        #expect(try Self.packs(repo).count > 0, "nothing was freed")
        // Putting the manifest back is the repair: everything is as it was.
        try saved.write(to: URL(fileURLWithPath: manifest))
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        try FileSystem.remove(manifest)
        // The protection is released by prefix (no manifest needed); the tag keeps the metadata: a note, then repaired.
        #expect { try SnapshotResolver(repo: repo).resolveID(String(s.id.hex.prefix(6))) } throws: { ($0 as? StrataError)?.code == .notFound }
        let id = try SnapshotResolver(repo: repo).resolveID(String(s.id.hex.prefix(6)), orphans: true)
        try SnapshotCatalog(repo: repo).setProtected(id, false)
        let after = try Checker(repo: repo).run(readData: false)
        #expect(after.isHealthy && after.notes.contains { $0.hasPrefix("metadata of snapshot \(s.id.shortHex) remains without its manifest") }, "\(after.notes)")
        let repaired = try Checker(repo: repo).run(readData: false, repair: true)
        #expect(repaired.repairs.contains { $0.hasPrefix("removed the metadata of snapshot \(s.id.shortHex)") }, "\(repaired.repairs)")
        #expect(!FileSystem.exists(repo.metaPath + "/" + s.id.hex))
        #expect(try GarbageCollector(repo: repo).run(dryRun: false).bytesFreed > 0)
    }

    @Test("fsck --read-data-subset reads a random share of the frames and says how much")
    func sampledCheck() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), compression: CompressionParameters(frameSize: 1 << 20))
        var rng = SeededRandom(seed: 13)
        _ = try snap(repo, try dir.write("img", rng.bytes(20 << 20)))
        let full = try Checker(repo: repo).run(readData: true)
        let sample = try Checker(repo: repo).run(readData: true, sample: 0.25)
        #expect(full.framesRead == full.framesTotal && full.framesTotal >= 20)
        #expect(sample.framesRead == Int((Double(full.framesTotal) * 0.25).rounded(.up)))
        #expect(sample.sampledFraction! > 0.2 && sample.sampledFraction! < 0.35)
        #expect(sample.isHealthy)
    }
}
