import Foundation
import Testing
@testable import StrataCore

/// The other side of the crash points: one write, fsync, rename or unlink fails (a passing I/O error, a disk that
/// was full for a moment) and everything after it works, so the operation's own clean-up runs. At every such call in
/// turn: the operation fails with a typed error of one line, or completes; every snapshot it did not remove still
/// restores; the repository passes fsck; gc then leaves nothing behind; and the same operation run again succeeds.
@Suite("Passing faults", .serialized)
struct PassingFaultTests {
    /// Runs `operation` with the `n`th mutating call under the repository failing with EIO, for n = 0, 1, 2, … until
    /// it completes untouched; then runs `retry` on the same repository. Returns the number of calls. A failure's
    /// line ends with `outcome` when one is given (what the operation says it left, checked against what it left).
    static func sweep(_ name: String, setUp: (TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]),
                      outcome: String? = nil,
                      operation: (Repository, TemporaryDirectory) throws -> [Snapshot: [UInt8]],
                      removes: Bool = false) throws -> Int {
        let template = TemporaryDirectory()
        let (templateRepo, before) = try setUp(template)
        var n: Int64 = 0
        while true {
            let dir = TemporaryDirectory()
            for name in try FileSystem.list(template.path) {
                try FileManager.default.copyItem(atPath: template.file(name), toPath: dir.file(name))
            }
            let repo = try Repository.open(at: dir.file(FileSystem.baseName(templateRepo.path)))
            FaultInjection.install(.init(pathPrefix: repo.path + "/", call: "*", errno: EIO, allowance: n, once: true))
            var expected = before
            var failed = false
            do {
                expected.merge(try operation(repo, dir)) { a, _ in a }
            } catch {
                failed = true
                let message = (error as? StrataError)?.description ?? ""
                #expect(error is StrataError && !message.isEmpty && !message.contains("\n"),
                        "\(name) with call \(n) failing: \(type(of: error)) \(error)")
                if let outcome { #expect(message.hasSuffix("; " + outcome), "\(name) with call \(n) failing: \(message)") }
                // gc can fail after it deleted packs: it must not say that it deleted nothing.
                #expect(!message.contains("nothing was deleted"), "\(name) with call \(n) failing: \(message)")
            }
            // Whether the one failing call was reached: a run that never got to it is the last of the sweep.
            let reached = FaultInjection.hasFired(pathPrefix: repo.path + "/")
            FaultInjection.remove(pathPrefix: repo.path + "/")

            let report = try Checker(repo: repo).run(readData: true)
            #expect(report.isHealthy, "\(name) with call \(n) failing: \(report.problems.map(\.message))")
            let resolver = SnapshotResolver(repo: repo)
            for (snapshot, bytes) in expected {
                guard (try? resolver.resolve(snapshot.id.hex)) != nil else {
                    #expect(removes, "\(name) with call \(n) failing lost \(snapshot.id.shortHex)")
                    continue
                }
                #expect(try restoreBytes(repo, snapshot, in: dir) == bytes, "\(name) with call \(n) failing: \(snapshot.id.shortHex)")
            }
            // A failed operation committed nothing: no snapshot is listed that was not there before.
            let listedIDs = Set(try SnapshotCatalog(repo: repo).list().snapshots.map(\.id))
            if failed {
                #expect(listedIDs.isSubset(of: Set(before.keys.map(\.id))), "\(name) with call \(n) failing committed a snapshot")
            }
            // Every snapshot listed is whole.
            for listed in try SnapshotCatalog(repo: repo).list().snapshots {
                #expect(throws: Never.self, "\(name) with call \(n) failing: \(listed.id.shortHex)") {
                    _ = try restoreBytes(repo, listed.snapshot, in: dir)
                }
            }
            if failed {
                // Nothing sticks: the same operation now succeeds.
                #expect(throws: Never.self, "\(name) with call \(n) failing, run again") { _ = try operation(repo, dir) }
            }
            _ = try GarbageCollector(repo: repo).run()
            let after = try Checker(repo: repo).run(readData: true)
            #expect(after.isHealthy && after.notes.isEmpty, "\(name) with call \(n) failing, then gc: \(after.notes)")
            let left = try FileSystem.list(repo.tmpPath)
            #expect(left.isEmpty, "\(name) with call \(n) failing left \(left)")
            #expect(try PendingStore(repo: repo).all().isEmpty && (try PendingStore(repo: repo).unreadable()).isEmpty,
                    "\(name) with call \(n) failing left a pending snapshot")
            if !reached { return Int(n) }
            if n > 400 { Issue.record("\(name) never completed"); return Int(n) }
            n += 1
        }
    }

    @Test("snap with one call failing, at each call in turn")
    func snap() throws {
        let calls = try Self.sweep("snap", setUp: CrashPointTests.twoSnapshots, outcome: "nothing was committed") { repo, dir in
            let s = try StrataCoreTests.snap(repo, try CrashPointTests.image(dir, "c", seed: 3))
            return [s: try FileSystem.readFile(dir.file("c"))]
        }
        #expect(calls > 15 && calls < 400, "snap made \(calls) calls")
    }

    @Test("snap writing index files along the way (1 MiB packs, a file every 4 objects), one call failing at each call in turn")
    func snapWithIndexFlushes() throws {
        let calls = try Self.sweep("snap with flushes", setUp: { dir in
            let repo = try dir.smallPackRepository("r")
            let a = try StrataCoreTests.snap(repo, try CrashPointTests.image(dir, "a", seed: 1))
            return (repo, [a: try FileSystem.readFile(dir.file("a"))])
        }, outcome: "nothing was committed") { repo, dir in
            var rng = SeededRandom(seed: 4)
            let path = try dir.write("c", rng.bytes(3 << 20))
            let s = try Snapshotter(repo: repo, indexFlushLimit: 4).run(SnapshotRequest(source: path, volume: "v")).snapshot
            #expect(try FileSystem.list(repo.indexPath).count >= 3)
            return [s: try FileSystem.readFile(path)]
        }
        #expect(calls > 15 && calls < 400, "snap made \(calls) calls")
    }

    @Test("gc with one call failing, at each call in turn (packs to delete and to rewrite; its index in one file and in parts)")
    func gc() throws {
        for entries in [ChunkIndex.mergedFileEntries, 16] {
            let calls = try Self.sweep("gc (\(entries) entries a file)", setUp: CrashPointTests.firstRemoved) { repo, _ in
                _ = try GarbageCollector(repo: repo, indexFileEntries: entries).run()
                return [:]
            }
            #expect(calls > 5 && calls < 400, "gc made \(calls) calls")
        }
    }

    @Test("copy with one call failing in the target, at each call in turn")
    func copy() throws {
        let calls = try Self.sweep("copy", setUp: { dir in
            let source = try Repository.create(at: dir.file("source"))
            let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
            let a = try StrataCoreTests.snap(source, try CrashPointTests.image(dir, "a", seed: 1))
            _ = try SnapshotCopier(from: source, to: target).copy([a])
            _ = try StrataCoreTests.snap(source, try CrashPointTests.image(dir, "b", seed: 2))
            let copied = try SnapshotCatalog(repo: target).list().snapshots[0].snapshot
            return (target, [copied: try FileSystem.readFile(dir.file("a"))])
        }, outcome: "it was not copied") { target, dir in
            let source = try Repository.open(at: dir.file("source"))
            let newest = try SnapshotCatalog(repo: source).list().snapshots.max { $0.snapshot.manifest.createdAt < $1.snapshot.manifest.createdAt }!
            let result = try SnapshotCopier(from: source, to: target).copy([newest.snapshot])
            // An already copied snapshot is skipped (a run again), so the result may be empty.
            guard let copied = result.copied.first else { return [:] }
            return [try SnapshotResolver(repo: target).resolve(copied.target.hex): try FileSystem.readFile(dir.file("b"))]
        }
        #expect(calls > 10 && calls < 400, "copy made \(calls) calls")
    }

    @Test("rm, tag and ref with one call failing, at each call in turn")
    func smallVerbs() throws {
        _ = try Self.sweep("rm", setUp: CrashPointTests.twoSnapshots, operation: { repo, _ in
            let catalog = SnapshotCatalog(repo: repo)
            if let oldest = try catalog.list().snapshots.first { try catalog.remove([oldest.id]) }
            return [:]
        }, removes: true)
        _ = try Self.sweep("tag", setUp: CrashPointTests.twoSnapshots) { repo, _ in
            try SnapshotCatalog(repo: repo).tag(try SnapshotCatalog(repo: repo).list().snapshots[0].snapshot, set: ["k": "v"], remove: [])
            return [:]
        }
        _ = try Self.sweep("ref", setUp: CrashPointTests.twoSnapshots) { repo, _ in
            try SnapshotCatalog(repo: repo).addRef("r", to: try SnapshotCatalog(repo: repo).list().snapshots[0].id, force: true)
            return [:]
        }
    }
}
