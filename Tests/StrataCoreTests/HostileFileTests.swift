import Foundation
import Testing
@testable import StrataCore

/// Pending journals and ref files meet bit rot and hand edits: every reader gets a typed answer (never a crash),
/// fsck names what it cannot read, gc and --repair clean what no running snapshot holds, and no snapshot is lost.
@Suite("Hostile journals and refs")
struct HostileFileTests {
    /// One mutation of a file's bytes: a flipped bit, a cut, random bytes, nothing, or well-formed JSON that lies.
    static func mutate(_ original: [UInt8], token: String, _ rng: inout SeededRandom) -> [UInt8] {
        var bytes = original
        switch rng.next() % 6 {
        case 0:
            if !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 << (rng.next() % 8)) }
        case 1: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(max(bytes.count, 1)))))
        case 2: bytes = rng.bytes(Int(rng.next() % 300) + 1)
        case 3: bytes = []
        case 4:
            // Another journal's token: its gc must not remove someone else's files.
            bytes = Array(#"{"token":"0123456789abcdef","volume":"v","source":"/x","startedAt":"2026-01-01T00:00:00Z","pid":1,"host":"h","bytesDone":0,"newBytes":0}"#.utf8)
        default:
            bytes = Array(#"{"token":"\#(token)","volume":7,"pid":"x"}"#.utf8)
        }
        return bytes
    }

    @Test("damaged journals: log skips them, fsck notes them, gc removes them unless their snapshot runs",
          arguments: [false, true])
    func damagedJournals(encrypted: Bool) throws {
        let dir = TemporaryDirectory()
        let repo = encrypted ? try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "pw")
                             : try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: encrypted ? 41 : 40)
        let image = rng.textLike(200_000)
        let kept = try snap(repo, try dir.write("img", image))
        let store = PendingStore(repo: repo)
        for attempt in 0..<12 {
            // A snapshot that died: its journal stays, its lock is free.
            var journal: PendingJournal? = try store.begin(volume: "v", source: "/x", totalBytes: 1, limit: 5)
            let token = journal!.token
            journal = nil
            let path = FileSystem.join(store.directory, token)
            let mutated = Self.mutate(try FileSystem.readFile(path), token: token, &rng)
            try AtomicFile.write(mutated, to: path, tmpDirectory: repo.tmpPath)

            #expect(!(try store.all()).contains { $0.token == token }, "attempt \(attempt)")
            #expect(try store.unreadable().map(\.token) == [token], "attempt \(attempt)")
            let report = try Checker(repo: repo).run(readData: false)
            #expect(report.problems.isEmpty, "attempt \(attempt): \(report.problems)")
            #expect(report.notes.contains { $0.contains("pending journal \(token) cannot be read") }, "attempt \(attempt)")
            let gc = try GarbageCollector(repo: repo).run()
            #expect(gc.failedSnapshotsRemoved == 1, "attempt \(attempt)")
            #expect(!FileSystem.exists(path) && !FileSystem.exists(path + ".lock"), "attempt \(attempt)")
        }
        // A damaged journal whose snapshot still runs is left alone and said to be running.
        let running = try store.begin(volume: "v", source: "/x", totalBytes: 1, limit: 5)
        let path = FileSystem.join(store.directory, running.token)
        try AtomicFile.write(rng.bytes(40), to: path, tmpDirectory: repo.tmpPath)
        #expect(try Checker(repo: repo).run(readData: false).notes.contains { $0.contains("still running") })
        #expect(try GarbageCollector(repo: repo).run(wait: false).failedSnapshotsRemoved == 0)
        #expect(FileSystem.exists(path))
        withExtendedLifetime(running) {}
        #expect(try restoreBytes(repo, kept, in: dir) == image)
    }

    @Test("damaged refs: listed without a target, named by fsck, removed by --repair; other names still resolve")
    func damagedRefs() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 43)
        let image = rng.textLike(100_000)
        let s = try snap(repo, try dir.write("img", image))
        let refs = RefStore(repo: repo)
        try refs.set("good", to: s.id)
        for attempt in 0..<15 {
            try refs.set("victim", to: s.id)
            let path = FileSystem.join(repo.refsPath, "victim")
            var mutated = Self.mutate(try FileSystem.readFile(path), token: "", &rng)
            // A mutation that still spells the same id is no damage: make sure this one is.
            if ObjectID(hex: String(decoding: mutated, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) != nil {
                mutated = Array("not an id".utf8)
            }
            try AtomicFile.write(mutated, to: path, tmpDirectory: repo.tmpPath)

            let listed = try refs.all()
            #expect(listed.contains { $0.name == "victim" && $0.target == nil }, "attempt \(attempt)")
            #expect(throws: StrataError.self) { try SnapshotResolver(repo: repo).resolve("victim") }
            #expect(try SnapshotResolver(repo: repo).resolve("good").id == s.id)
            let report = try Checker(repo: repo).run(readData: false)
            #expect(report.problems.map(\.message) == ["ref 'victim' is damaged"], "attempt \(attempt)")
            let repaired = try Checker(repo: repo).run(readData: false, repair: true)
            #expect(repaired.repairs.contains { $0.contains("victim") }, "attempt \(attempt)")
            #expect(try refs.target(of: "victim") == nil && (try refs.all()).map(\.name) == ["good"])
        }
        #expect(try restoreBytes(repo, s, in: dir) == image)
    }

    @Test("while a ref is damaged nothing is removed without --force: it might name the snapshot")
    func damagedRefGuardsRemoval() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 44)
        let a = try snap(repo, try dir.write("a", rng.textLike(50_000)))
        let b = try snap(repo, try dir.write("b", rng.textLike(50_000)))
        try RefStore(repo: repo).set("keep", to: a.id)
        try AtomicFile.write(Array("garbage".utf8), to: FileSystem.join(repo.refsPath, "keep"), tmpDirectory: repo.tmpPath)
        let catalog = SnapshotCatalog(repo: repo)
        for dryRun in [true, false] {
            #expect { try catalog.remove([a.id], dryRun: dryRun) } throws: { e in
                (e as? StrataError)?.code == .damaged && (e as? StrataError)?.message.contains("ref 'keep' is damaged") == true
            }
        }
        #expect(try catalog.list().snapshots.count == 2)
        #expect(try catalog.remove([b.id], force: true).removed == [b.id])
        _ = try Checker(repo: repo).run(readData: false, repair: true)
        #expect(try catalog.remove([a.id]).removed == [a.id])
    }

    @Test("a directory or symlink with a journal's name is not a journal: gc and fsck leave it and succeed")
    func strangeEntriesInPending() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 45)
        _ = try snap(repo, try dir.write("a", rng.textLike(50_000)))
        let store = PendingStore(repo: repo)
        try FileSystem.makeDirectory(store.directory)
        try FileManager.default.createDirectory(atPath: FileSystem.join(store.directory, "00000000000000bb"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: FileSystem.join(store.directory, "00000000000000cc"), withDestinationPath: "/etc/passwd")
        #expect(try store.all().isEmpty && (try store.unreadable()).isEmpty)
        #expect(try GarbageCollector(repo: repo).run().failedSnapshotsRemoved == 0)
        #expect(try Checker(repo: repo).run(readData: false).isHealthy)
    }
}
