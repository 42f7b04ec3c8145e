import Foundation
import Testing
@testable import StrataCore

/// Disk full and I/O errors while writing, injected at the system-call layer.
@Suite("Faults")
struct FaultTests {
    @Test("disk full during snap: a clear error, no manifest, existing snapshots intact, the failed snapshot's packs gone",
          arguments: [0, 2_000, 300_000, 3_000_000, 8_000_000])
    func diskFull(allowance: Int64) throws {
        let dir = TemporaryDirectory()
        // 1 MiB packs, so that the failing snapshot has finished (and durable) packs no index file names yet.
        let repo = try dir.smallPackRepository("r")
        var rng = SeededRandom(seed: 50)
        let first = try snap(repo, try dir.write("a", rng.textLike(4 << 20)))
        let packsBefore = Set(try repo.packFilePaths())
        let big = try dir.write("b", rng.bytes(12 << 20))
        FaultInjection.install(.init(pathPrefix: repo.path + "/", call: "write", errno: ENOSPC, allowance: allowance))
        #expect { try snap(repo, big) } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .io && e.description.hasSuffix("No space left on device; nothing was committed")
        }
        FaultInjection.remove(pathPrefix: repo.path + "/")
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.map(\.id) == [first.id])
        #expect(try PendingStore(repo: repo).all().isEmpty)
        // Its packs (several, with 8 MB allowed) went with the failure: no note, no space held until gc.
        #expect(Set(try repo.packFilePaths()) == packsBefore)
        let afterFailure = try Checker(repo: repo).run(readData: true)
        #expect(afterFailure.isHealthy && afterFailure.notes.isEmpty, "\(afterFailure.notes)")
        _ = try GarbageCollector(repo: repo).run()
        #expect(try FileSystem.list(repo.tmpPath).isEmpty)
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.isHealthy && report.notes.isEmpty, "\(report.notes)")
        #expect(try restoreBytes(repo, first, in: dir).count == 4 << 20)
        // Space is back: the same snapshot now succeeds.
        #expect(try snap(repo, big).manifest.size == 12 << 20)
    }

    @Test("an fsync error is not ignored: the snapshot fails and is not committed", arguments: [0, 1, 2])
    func fsyncError(allowance: Int64) throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 51)
        let image = try dir.write("a", rng.bytes(3 << 20))
        // 0 fails the journal's fsync, 1 the first pack's, 2 a later pack's.
        FaultInjection.install(.init(pathPrefix: repo.tmpPath + "/", call: "fsync", errno: EIO, allowance: allowance))
        #expect { try snap(repo, image) } throws: { ($0 as? StrataError)?.code == .io }
        FaultInjection.remove(pathPrefix: repo.tmpPath + "/")
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.isEmpty)
        #expect(try Checker(repo: repo).run(readData: false).isHealthy)
    }

    @Test("several sources at one point in time are committed together: one that fails leaves none, nor their packs; a manifest that fails takes the others back")
    func snapshotSetFailsWhole() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 57)
        let first = try snap(repo, try dir.write("a", rng.textLike(2 << 20)))
        let packsBefore = Set(try repo.packFilePaths())
        let os = try dir.write("os", rng.bytes(6 << 20))
        let data = try dir.write("data", rng.bytes(6 << 20))
        let requests = [SnapshotRequest(source: os, volume: "os"), SnapshotRequest(source: data, volume: "data")]

        // The second disk has a bad sector: the first, read and packed by then, is not committed either.
        FaultInjection.install(.init(pathPrefix: data, call: "read", errno: EIO, allowance: 3 << 20))
        #expect { try Snapshotter(repo: repo).run(requests) } throws: { error in
            (error as? StrataError)?.description.hasSuffix("Input/output error; nothing was committed") == true
        }
        FaultInjection.remove(pathPrefix: data)
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.map(\.id) == [first.id])
        #expect(Set(try repo.packFilePaths()) == packsBefore, "the first disk's packs went with the failure")
        #expect(try PendingStore(repo: repo).all().isEmpty)
        let afterRead = try Checker(repo: repo).run(readData: true)
        #expect(afterRead.isHealthy && afterRead.notes.isEmpty, "\(afterRead.notes)")

        // The second manifest cannot be written: the first is taken back.
        let snapshots = repo.snapshotsPath + "/"
        FaultInjection.install(.init(pathPrefix: snapshots, call: "rename", errno: EIO, allowance: 1, once: true))
        #expect { try Snapshotter(repo: repo).run(requests) } throws: { error in
            (error as? StrataError)?.description.hasSuffix("Input/output error; nothing was committed") == true
        }
        #expect(FaultInjection.hasFired(pathPrefix: snapshots))
        FaultInjection.remove(pathPrefix: snapshots)
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.map(\.id) == [first.id])
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)

        // The second manifest cannot be written and the first cannot be taken back either: the line names the one
        // that stays (whole, and listed), instead of saying that nothing was committed.
        FaultInjection.install(.init(pathPrefix: snapshots, call: "rename", errno: EIO, allowance: 1, once: true))
        FaultInjection.install(.init(pathPrefix: snapshots, call: "unlink", errno: EIO, allowance: 0, once: true))
        var message = ""
        #expect(throws: StrataError.self) {
            do { _ = try Snapshotter(repo: repo).run(requests) } catch { message = "\(error)"; throw error }
        }
        FaultInjection.remove(pathPrefix: snapshots)
        let stayed = try SnapshotCatalog(repo: repo).list().snapshots.filter { $0.id != first.id }
        #expect(stayed.map(\.snapshot.manifest.volume) == ["os"])
        #expect(message.hasSuffix("Input/output error; snapshot \(stayed.first?.id.shortHex ?? "?") of the same point in time stays, the rest was not committed"), "\(message)")
        if let os0 = stayed.first { #expect(try restoreBytes(repo, os0.snapshot, in: dir) == FileSystem.readFile(os)) }
        try SnapshotStore(repo: repo).remove(try #require(stayed.first).id)

        // Whole again: both, with one creation time.
        let both = try Snapshotter(repo: repo).run(requests)
        #expect(both.map(\.snapshot.manifest.volume) == ["os", "data"])
        #expect(both[0].snapshot.manifest.createdAt == both[1].snapshot.manifest.createdAt)
        #expect(try restoreBytes(repo, both[0].snapshot, in: dir) == FileSystem.readFile(os))
        #expect(try restoreBytes(repo, both[1].snapshot, in: dir) == FileSystem.readFile(data))
    }

    @Test("several sources: `rm` of one's pending id after that source was read cancels them all; nothing is committed")
    func snapshotSetCancelled() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 59)
        let os = try dir.write("os", rng.bytes(2 << 20))
        let data = try dir.write("data", rng.bytes(2 << 20))
        var second = SnapshotRequest(source: data, volume: "data")
        // As the second disk starts being read, someone cancels the first one's snapshot (`strata rm <pending id>`).
        second.beforeReading = {
            let pending = try PendingStore(repo: repo).all()
            let first = try #require(pending.first { $0.volume == "os" })
            #expect(try PendingStore(repo: repo).cancel(first.token))
        }
        #expect { try Snapshotter(repo: repo).run([SnapshotRequest(source: os, volume: "os"), second]) } throws: { error in
            (error as? StrataError).map { $0.code == .refused && $0.message.hasPrefix("snapshot of os was cancelled by 'strata rm ") } == true
        }
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.isEmpty)
        #expect(try repo.packFilePaths().isEmpty)
        #expect(try PendingStore(repo: repo).all().isEmpty)
    }

    @Test("several sources: the same volume twice, standard input among others, or none, are refused before anything is read")
    func snapshotSetRefusals() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 58)
        let a = try dir.write("a.img", rng.bytes(1 << 20))
        let other = dir.file("other")
        try FileSystem.makeDirectory(other)
        let b = other + "/a.img"
        #expect(FileManager.default.createFile(atPath: b, contents: Data(rng.bytes(1 << 20))))
        let refusals: [([SnapshotRequest], String)] = [
            ([SnapshotRequest(source: a), SnapshotRequest(source: b)],
             "two sources would be volume 'a.img': give each its own with --volume, once per source"),
            ([SnapshotRequest(source: a), SnapshotRequest(source: "-", volume: "in")],
             "standard input ('-') cannot be snapshotted together with other sources"),
            ([], "no source given: give an image file, a block device or '-'"),
        ]
        for (requests, message) in refusals {
            #expect { try Snapshotter(repo: repo).run(requests) } throws: { error in
                (error as? StrataError).map { $0.code == .invalidArgument && $0.description == message } == true
            }
        }
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.isEmpty)
        #expect(try repo.packFilePaths().isEmpty)
    }

    @Test("a source that cannot be read (a bad sector): the error names the source; nothing committed, nothing left")
    func sourceReadError() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 53)
        let first = try snap(repo, try dir.write("a", rng.textLike(2 << 20)))
        let packsBefore = Set(try repo.packFilePaths())
        let image = try dir.write("bad", rng.bytes(24 << 20))
        // Reads of the image fail after 20 MiB: a 16 MiB pack is finished (and durable) by then.
        FaultInjection.install(.init(pathPrefix: image, call: "read", errno: EIO, allowance: 20 << 20))
        #expect { try snap(repo, image) } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .io && e.description.contains(image) && e.description.hasSuffix("Input/output error; nothing was committed")
        }
        FaultInjection.remove(pathPrefix: image)
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.map(\.id) == [first.id])
        #expect(try PendingStore(repo: repo).all().isEmpty)
        #expect(Set(try repo.packFilePaths()) == packsBefore)
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.isHealthy && report.notes.isEmpty, "\(report.notes)")
        #expect(try FileSystem.list(repo.tmpPath).isEmpty)
        #expect(try snap(repo, image).manifest.size == 24 << 20)
    }

    @Test("a pack that cannot be read: restore and fsck name it and fail, nothing half-written; readable again, all is well")
    func packReadError() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 54)
        let bytes = rng.textLike(3 << 20)
        let s = try snap(repo, try dir.write("a", bytes))
        let outDir = dir.file("out")
        try FileSystem.makeDirectory(outDir)
        FaultInjection.install(.init(pathPrefix: repo.packsPath + "/", call: "read", errno: EIO, allowance: 0))
        #expect { try Restorer(repo: repo).run(s, to: outDir + "/image") } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .io && e.description.contains(repo.packsPath)
                && e.description.hasSuffix("Input/output error; nothing was left at \(outDir)/image")
        }
        #expect(try FileSystem.list(outDir).isEmpty)
        // fsck cannot read the pack either: it reports the pack with the I/O error, and the snapshot it cannot prove.
        let report = try Checker(repo: repo).run(readData: true)
        #expect(!report.isHealthy)
        #expect(report.problems.first?.message.contains(repo.packsPath) == true && report.problems.first?.message.hasSuffix("Input/output error") == true,
                "\(report.problems)")
        #expect(report.problems.contains { $0.snapshot == s.id })
        FaultInjection.remove(pathPrefix: repo.packsPath + "/")
        #expect(try restoreBytes(repo, s, in: dir) == bytes)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("fsck that runs out of open files or memory part-way fails as a check and never calls it damage: no problem reported, nothing repaired away")
    func fsckOutOfResources() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 56)
        let bytes = rng.textLike(8 << 20)
        let s = try snap(repo, try dir.write("a", bytes))
        func files() throws -> [String: Int] {
            var out: [String: Int] = [:]
            for sub in try FileManager.default.subpathsOfDirectory(atPath: repo.path) {
                let attributes = try FileManager.default.attributesOfItem(atPath: repo.path + "/" + sub)
                if attributes[.type] as? FileAttributeType == .typeRegular { out[sub] = (attributes[.size] as? Int) ?? -1 }
            }
            return out
        }
        let before = try files()
        for code in [EMFILE, ENFILE, ENOMEM] {
            // Reads of the packs fail after the first MiB, as an open or an allocation would part-way.
            FaultInjection.install(.init(pathPrefix: repo.packsPath + "/", call: "read", errno: code, allowance: 1 << 20))
            for repair in [false, true] {
                #expect { try Checker(repo: repo).run(readData: true, repair: repair) } throws: { StrataError.isOutOfResources($0) }
            }
            FaultInjection.remove(pathPrefix: repo.packsPath + "/")
        }
        #expect(try files() == before)
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, s, in: dir) == bytes)
    }

    @Test("a restore that cannot write leaves no file under the final name")
    func restoreWriteError() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 52)
        let s = try snap(repo, try dir.write("a", rng.bytes(3 << 20)))
        let outDir = dir.file("out")
        try FileSystem.makeDirectory(outDir)
        FaultInjection.install(.init(pathPrefix: outDir + "/", call: "write", errno: ENOSPC, allowance: 1 << 20))
        #expect { try Restorer(repo: repo).run(s, to: outDir + "/image") } throws: { ($0 as? StrataError)?.code == .io }
        FaultInjection.remove(pathPrefix: outDir + "/")
        #expect(try FileSystem.list(outDir).isEmpty)
    }
}

@Suite("Symlinks")
struct SymlinkTests {
    @Test("a symlink planted in place of a repository directory is refused, not followed")
    func plantedSymlink() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        try FileSystem.makeDirectory(dir.file("elsewhere"))
        try FileManager.default.removeItem(atPath: repo.snapshotsPath)
        try FileManager.default.createSymbolicLink(atPath: repo.snapshotsPath, withDestinationPath: dir.file("elsewhere"))
        #expect { try Repository.open(at: repo.path) } throws: { ($0 as? StrataError)?.message.contains("snapshots is not a directory") == true }
        #expect(try FileSystem.list(dir.file("elsewhere")).isEmpty)
    }
}

/// Changes the source file the first time progress is reported (at the latest when reading ends, before the
/// snapshot is committed), as a VM still writing to its disk would.
final class ChangingSource: ProgressReporter, @unchecked Sendable {
    let path: String
    var done = false
    init(path: String) { self.path = path }
    func progress(done bytes: Int64, total: Int64?, newBytes: Int64) {
        guard !done else { return }
        done = true
        let fh = FileHandle(forWritingAtPath: path)!
        fh.seekToEndOfFile()
        fh.write(Data([1, 2, 3]))
        fh.closeFile()
    }
}

@Suite("Changing sources")
struct ChangingSourceTests {
    @Test("a source that changes while it is read is flagged, or refused with --fail-on-change")
    func changedWhileRead() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 60)
        let path = try dir.write("img", rng.bytes(1 << 20))
        let flagged = try Snapshotter(repo: repo).run(SnapshotRequest(source: path, volume: "v"), progress: ChangingSource(path: path))
        #expect(flagged.snapshot.manifest.sourceChanged)
        let strict = SnapshotRequest(source: path, volume: "v", failOnChange: true)
        #expect { try Snapshotter(repo: repo).run(strict, progress: ChangingSource(path: path)) } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .refused && e.message.contains("changed while it was read")
        }
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.count == 1)
        let unchanged = try Snapshotter(repo: repo).run(strict)
        #expect(!unchanged.snapshot.manifest.sourceChanged)
    }
}
