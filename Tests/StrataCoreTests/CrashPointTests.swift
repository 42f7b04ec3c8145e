import Foundation
import Testing
@testable import StrataCore

/// A deterministic companion to the kill -9 loop: every operation is stopped at each of its writes, fsyncs, renames
/// and unlinks in turn (from that instant on every such call fails, as if the process had died there, so no
/// clean-up runs). After each stop the repository must pass fsck, every completed snapshot must restore, and the
/// next gc must leave nothing behind.
@Suite("Crash points", .serialized)
struct CrashPointTests {
    static func image(_ dir: TemporaryDirectory, _ name: String, seed: UInt64) throws -> String {
        var rng = SeededRandom(seed: seed)
        return try dir.write(name, rng.textLike(700_000) + rng.bytes(1 << 20))
    }

    /// Runs `operation` with a crash after `n` calls under the repository, for n = 0, 1, 2, … until it completes.
    /// With `powerLoss`, after each stop everything not yet durable is undone too (unsynced data, and renames and
    /// unlinks whose directory was not fsynced), as a power cut would.
    static func sweep(_ name: String, powerLoss: Bool = false, setUp: (TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]),
                      operation: (Repository, TemporaryDirectory) throws -> [Snapshot: [UInt8]]) throws -> Int {
        // The starting state is built once and copied for every crash point.
        let template = TemporaryDirectory()
        let (templateRepo, before) = try setUp(template)
        var n: Int64 = 0
        while true {
            var expected = before
            let dir = TemporaryDirectory()
            for name in try FileSystem.list(template.path) {
                try FileManager.default.copyItem(atPath: template.file(name), toPath: dir.file(name))
            }
            let repo = try Repository.open(at: dir.file(FileSystem.baseName(templateRepo.path)))
            if powerLoss { PowerLossSimulator.start(pathPrefix: repo.path + "/") }
            FaultInjection.install(.init(pathPrefix: repo.path + "/", call: "*", errno: EIO, allowance: n))
            let completed: Bool
            do {
                // A snapshot the operation reported complete must survive whatever follows.
                expected.merge(try operation(repo, dir)) { a, _ in a }
                completed = true
            } catch { completed = false }
            FaultInjection.remove(pathPrefix: repo.path + "/")
            if powerLoss { PowerLossSimulator.powerLoss() }
            let report = try Checker(repo: repo).run(readData: true)
            #expect(report.isHealthy, "\(name) stopped after \(n) calls: \(report.problems.map(\.message))")
            if !name.hasPrefix("rm") {
                for snapshot in expected.keys {
                    #expect((try? SnapshotResolver(repo: repo).resolve(snapshot.id.hex)) != nil, "\(name) stopped after \(n) calls lost \(snapshot.id.shortHex)")
                }
            }
            for (snapshot, bytes) in expected where (try? SnapshotResolver(repo: repo).resolve(snapshot.id.hex)) != nil && n % 4 == 0 {
                #expect(try restoreBytes(repo, snapshot, in: dir) == bytes, "\(name) stopped after \(n) calls: \(snapshot.id.shortHex)")
            }
            _ = try GarbageCollector(repo: repo).run()
            let after = try Checker(repo: repo).run(readData: false)
            #expect(after.isHealthy && after.notes.isEmpty, "\(name) stopped after \(n) calls, then gc: \(after.problems.map(\.message)) \(after.notes)")
            if completed || n > 400 { return Int(n) }
            n += 1
        }
    }

    static func twoSnapshots(_ dir: TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]) {
        let repo = try Repository.create(at: dir.file("r"))
        let a = try snap(repo, try image(dir, "a", seed: 1))
        let b = try snap(repo, try image(dir, "b", seed: 2))
        return (repo, [a: try FileSystem.readFile(dir.file("a")), b: try FileSystem.readFile(dir.file("b"))])
    }

    /// Two snapshots, the older one removed: gc has packs to delete and to rewrite.
    static func firstRemoved(_ dir: TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]) {
        var (repo, expected) = try twoSnapshots(dir)
        let first = expected.keys.sorted { $0.manifest.createdAt < $1.manifest.createdAt }[0]
        try SnapshotCatalog(repo: repo).remove([first.id])
        expected[first] = nil
        return (repo, expected)
    }

    /// A base image, the same with 64 blocks changed, and with 32 of those changed; the middle one removed: its
    /// pack is half dead, so gc rewrites it (the copy is the same bytes, so the same pack name, every time).
    static func halfDead(_ dir: TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]) {
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 5)
        let base = rng.textLike(4 << 20)
        var full = base
        var half = base
        for i in 0..<64 {
            let block = Int(rng.next() % UInt64(base.count / 4096))
            let bytes = rng.bytes(4096)
            full.replaceSubrange(block * 4096..<(block + 1) * 4096, with: bytes)
            if i < 32 { half.replaceSubrange(block * 4096..<(block + 1) * 4096, with: bytes) }
        }
        let b = try snap(repo, try dir.write("base", base), volume: "base")
        let f = try snap(repo, try dir.write("full", full), volume: "g")
        let h = try snap(repo, try dir.write("half", half), volume: "g")
        try SnapshotCatalog(repo: repo).remove([f.id])
        return (repo, [b: base, h: half])
    }

    @Test("gc rewriting a half-dead pack stopped at every call: the next gc, writing the same pack again, keeps it")
    func gcRewriteAtEveryCall() throws {
        let calls = try Self.sweep("gc rewrite", setUp: Self.halfDead) { repo, _ in
            let result = try GarbageCollector(repo: repo).run()
            #expect(result.packsRewritten > 0)
            return [:]
        }
        #expect(calls > 5 && calls < 400, "gc made \(calls) calls")
    }

    @Test("a packer that fails after packing again a pack that is already there (the same objects, so the same name) leaves that pack in place")
    func abandonSparesAnExistingPack() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 8)
        let objects = (0..<40).map { _ in rng.textLike(20_000) }
        func pack(_ index: ChunkIndex) throws -> (ObjectPacker, IndexFileContents) {
            let packer = ObjectPacker(repo: repo, index: index)
            for bytes in objects {
                try bytes.withUnsafeBytes { raw in
                    _ = try packer.add(id: ChunkHasher.objectID(of: raw, kind: .chunk, scratch: ByteBuffer(capacity: 64 << 10), identity: repo.identity), kind: .chunk, bytes: raw)
                }
            }
            return (packer, try packer.finish())
        }
        let (first, contents) = try pack(ChunkIndex())
        try first.writeIndex(contents)
        let packs = try repo.packFilePaths()
        #expect(packs.count == 1)
        // The same objects packed again by a packer that does not know them, which then fails before its index.
        let (second, again) = try pack(ChunkIndex())
        #expect(again.packs == contents.packs, "the same objects make the same pack")
        second.abandon()
        #expect(try repo.packFilePaths() == packs, "the pack an index file names is still there")
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
    }

    @Test("snap stopped at every call")
    func snapAtEveryCall() throws {
        let calls = try Self.sweep("snap", setUp: Self.twoSnapshots) { repo, dir in
            let s = try snap(repo, try Self.image(dir, "c", seed: 3))
            return [s: try FileSystem.readFile(dir.file("c"))]
        }
        #expect(calls > 15 && calls < 400, "snap made \(calls) calls")
    }

    @Test("gc stopped at every call (with packs to delete and to rewrite)")
    func gcAtEveryCall() throws {
        let calls = try Self.sweep("gc", setUp: Self.firstRemoved) { repo, _ in
            _ = try GarbageCollector(repo: repo).run()
            return [:]
        }
        #expect(calls > 5 && calls < 400, "gc made \(calls) calls")
    }

    @Test("gc writing its index in parts stopped at every call, and with a power cut after")
    func gcIndexInPartsAtEveryCall() throws {
        for powerLoss in [false, true] {
            let calls = try Self.sweep("gc in parts", powerLoss: powerLoss, setUp: Self.firstRemoved) { repo, _ in
                _ = try GarbageCollector(repo: repo, indexFileEntries: 16).run()
                #expect(try FileSystem.list(repo.indexPath).count > 2)
                return [:]
            }
            #expect(calls > 10 && calls < 400, "gc made \(calls) calls")
        }
    }

    @Test("snap and gc stopped at every call, then a power cut that drops everything not yet durable")
    func powerLossAtEveryCall() throws {
        _ = try Self.sweep("snap + power loss", powerLoss: true, setUp: Self.twoSnapshots) { repo, dir in
            let s = try snap(repo, try Self.image(dir, "c", seed: 3))
            return [s: try FileSystem.readFile(dir.file("c"))]
        }
        _ = try Self.sweep("gc + power loss", powerLoss: true, setUp: Self.firstRemoved) { repo, _ in
            _ = try GarbageCollector(repo: repo).run()
            return [:]
        }
    }

    /// A source with two snapshots, the first copied into a target: the copy of the second has objects to add.
    static func copySetUp(_ dir: TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]) {
        let source = try Repository.create(at: dir.file("source"))
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        let a = try snap(source, try image(dir, "a", seed: 1))
        _ = try SnapshotCopier(from: source, to: target).copy([a])
        _ = try snap(source, try image(dir, "b", seed: 2))
        let copied = try SnapshotCatalog(repo: target).list().snapshots[0].snapshot
        return (target, [copied: try FileSystem.readFile(dir.file("a"))])
    }

    @Test("copy stopped at every call in the target, and with a power cut after")
    func copyAtEveryCall() throws {
        for powerLoss in [false, true] {
            let calls = try Self.sweep("copy", powerLoss: powerLoss, setUp: Self.copySetUp) { target, dir in
                let source = try Repository.open(at: dir.file("source"))
                let newest = try SnapshotCatalog(repo: source).list().snapshots.max { $0.snapshot.manifest.createdAt < $1.snapshot.manifest.createdAt }!
                let result = try SnapshotCopier(from: source, to: target).copy([newest.snapshot])
                return [try SnapshotResolver(repo: target).resolve(result.copied[0].target.hex): try FileSystem.readFile(dir.file("b"))]
            }
            #expect(calls > 10 && calls < 400, "copy made \(calls) calls")
        }
    }

    @Test("fsck --repair stopped at every call while it rebuilds a damaged index: running it again repairs, nothing is lost")
    func repairAtEveryCall() throws {
        let template = TemporaryDirectory()
        let (templateRepo, expected) = try Self.twoSnapshots(template)
        let indexFile = try FileSystem.list(templateRepo.indexPath)[0]
        _ = try DamageTests.patch(FileSystem.join(templateRepo.indexPath, indexFile)) { $0[$0.count / 2] ^= 0x10 }
        #expect(try !Checker(repo: templateRepo).run(readData: false).isHealthy)
        var n: Int64 = 0
        while true {
            let dir = TemporaryDirectory()
            try FileManager.default.copyItem(atPath: template.file("r"), toPath: dir.file("r"))
            let repo = try Repository.open(at: dir.file("r"))
            FaultInjection.install(.init(pathPrefix: repo.path + "/", call: "*", errno: EIO, allowance: n))
            let completed = (try? Checker(repo: repo).run(readData: false, repair: true)) != nil
            FaultInjection.remove(pathPrefix: repo.path + "/")
            // Whatever the stop left, a repair run to the end makes the repository whole with every snapshot.
            _ = try Checker(repo: repo).run(readData: false, repair: true)
            let report = try Checker(repo: repo).run(readData: true)
            #expect(report.isHealthy, "repair stopped after \(n) calls, then run again: \(report.problems.map(\.message))")
            for (snapshot, bytes) in expected where n % 2 == 0 {
                #expect(try restoreBytes(repo, snapshot, in: dir) == bytes, "repair stopped after \(n) calls: \(snapshot.id.shortHex)")
            }
            if completed || n > 400 {
                #expect(n > 3 && n < 400, "repair made \(n) calls")
                return
            }
            n += 1
        }
    }

    @Test("rm, tag and ref stopped at every call")
    func smallVerbsAtEveryCall() throws {
        _ = try Self.sweep("rm", setUp: Self.twoSnapshots) { repo, _ in
            try SnapshotCatalog(repo: repo).remove([try SnapshotCatalog(repo: repo).list().snapshots[0].id])
            return [:]
        }
        // A snapshot with later tags, named by a ref, removed with --force: no stop leaves a ref pointing nowhere
        // (fsck damage), and the metadata a stop leaves behind is gone after the sweep's gc (no notes).
        let named: (TemporaryDirectory) throws -> (Repository, [Snapshot: [UInt8]]) = { dir in
            let (repo, expected) = try Self.twoSnapshots(dir)
            let first = try SnapshotCatalog(repo: repo).list().snapshots[0]
            _ = try SnapshotCatalog(repo: repo).tag(first.snapshot, set: ["k": "v"], remove: [])
            try SnapshotCatalog(repo: repo).addRef("keep", to: first.id, force: false)
            return (repo, expected)
        }
        let calls = try Self.sweep("rm --force", setUp: named) { repo, _ in
            try SnapshotCatalog(repo: repo).remove([try SnapshotCatalog(repo: repo).list().snapshots[0].id], force: true)
            return [:]
        }
        #expect(calls >= 6, "rm --force made \(calls) calls")
        _ = try Self.sweep("tag", setUp: Self.twoSnapshots) { repo, _ in
            try SnapshotCatalog(repo: repo).tag(try SnapshotCatalog(repo: repo).list().snapshots[0].snapshot, set: ["k": "v"], remove: [])
            return [:]
        }
        _ = try Self.sweep("ref", setUp: Self.twoSnapshots) { repo, _ in
            try SnapshotCatalog(repo: repo).addRef("r", to: try SnapshotCatalog(repo: repo).list().snapshots[0].id, force: false)
            return [:]
        }
    }
}

extension Snapshot: Hashable {
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// One stop of the sweeps below, under `prefix`: with the mode "crash + power loss" every write, fsync, rename and
/// unlink from the `n`th on fails (as if the process died there) and what was not yet durable is then undone, as a
/// power cut would; with "one failing call" only the `n`th fails and the operation's clean-up runs.
struct FaultStop<T> {
    var result: T?
    /// The operation's error, checked to be a typed one.
    var error: Error?
    /// The sweep is over: the operation ran past every call the mode could fail.
    var isLast: Bool

    init(_ mode: String, under prefix: String, after n: Int64, _ body: () throws -> T) {
        let once = mode.hasPrefix("one")
        if mode.contains("power") { PowerLossSimulator.start(pathPrefix: prefix) }
        FaultInjection.install(.init(pathPrefix: prefix, call: "*", errno: EIO, allowance: n, once: once))
        do {
            result = try body()
        } catch {
            self.error = error
            #expect(error is StrataError, "\(mode) after \(n) calls: \(error)")
        }
        let fired = FaultInjection.hasFired(pathPrefix: prefix)
        FaultInjection.remove(pathPrefix: prefix)
        if mode.contains("power") { PowerLossSimulator.powerLoss() }
        isLast = once ? !fired : error == nil
    }
}

/// `export` stopped at each of its calls — the staging repository in the source's tmp/, the bundle's draft beside
/// it, its rename and the directory's fsync — by a crash (every later call fails too, no clean-up runs), by a crash
/// followed by a power cut, and by one passing error (the clean-up runs).
@Suite("Export faults", .serialized)
struct ExportFaultTests {
    @Test("export stopped at every call: a bundle it reported written survives a power cut and imports; none is half there; the source stays whole",
          arguments: ["crash", "crash + power loss", "one failing call"])
    func exportAtEveryCall(mode: String) throws {
        let template = TemporaryDirectory()
        let templateRepo = try Repository.create(at: template.file("r"))
        let s = try snap(templateRepo, try CrashPointTests.image(template, "a", seed: 1))
        let image = try FileSystem.readFile(template.file("a"))
        var n: Int64 = 0
        while true {
            let dir = TemporaryDirectory()
            try FileManager.default.copyItem(atPath: template.file("r"), toPath: dir.file("r"))
            try FileSystem.makeDirectory(dir.file("out"))
            let repo = try Repository.open(at: dir.file("r"))
            let bundle = dir.file("out/b.bundle")
            let stop = FaultStop(mode, under: dir.path + "/", after: n) { try Bundle.export([s], from: repo, to: bundle, passphrase: nil) }
            if stop.result != nil {
                // Reported written: it is there, whole, after a power cut too.
                let target = try Repository.create(at: dir.file("t"))
                let result = try Bundle.import(bundle, into: target, passphrase: nil)
                let copied = try SnapshotResolver(repo: target).resolve(result.copied[0].target.hex)
                #expect(try restoreBytes(target, copied, in: dir) == image, "\(mode) after \(n) calls")
            } else if mode.hasPrefix("one") {
                // The clean-up ran: no bundle, no draft beside it, no staging repository in the source.
                let out = try FileSystem.list(dir.file("out")), staged = try FileSystem.list(repo.tmpPath)
                #expect(out.isEmpty && staged.isEmpty, "\(mode) after \(n) calls left \(out) \(staged)")
            } else if FileSystem.exists(bundle) {
                // A crash after the rename: the bundle is whole.
                let target = try Repository.create(at: dir.file("t"))
                _ = try Bundle.import(bundle, into: target, passphrase: nil)
            } else {
                // A crash before it: the next export of the same name removes the draft the crash left.
                _ = try Bundle.export([s], from: repo, to: bundle, passphrase: nil)
                let out = try FileSystem.list(dir.file("out"))
                #expect(out == ["b.bundle"], "\(mode) after \(n) calls, then export again: \(out)")
            }
            // The source is whole whatever happened, and its next gc clears a staging repository left by a crash.
            _ = try GarbageCollector(repo: repo).run()
            let report = try Checker(repo: repo).run(readData: true)
            #expect(report.isHealthy && report.notes.isEmpty, "\(mode) after \(n) calls: \(report.problems.map(\.message)) \(report.notes)")
            let left = try FileSystem.list(repo.tmpPath)
            #expect(left.isEmpty, "\(mode) after \(n) calls, then gc: \(left)")
            if stop.isLast || n > 600 {
                #expect(n > 10 && n < 600, "export made \(n) calls")
                return
            }
            n += 1
        }
    }
}

/// The key verbs stopped at every call: the repository must always open with a passphrase the user still has.
@Suite("Key faults", .serialized)
struct KeyFaultTests {
    @Test("key passwd, add and rm stopped at every call (a crash and a power cut, one passing error): the old or the new passphrase opens the repository and its snapshot restores",
          arguments: ["crash + power loss", "one failing call"])
    func keysAtEveryCall(mode: String) throws {
        let template = TemporaryDirectory()
        let created = try Repository.create(at: template.file("r"), encryption: .aes256gcm, passphrase: "old pw")
        let s = try snap(created, try CrashPointTests.image(template, "a", seed: 1))
        let image = try FileSystem.readFile(template.file("a"))
        // The template's key files at scrypt's least cost (the sweep opens the repository many times), as files of
        // an older, cheaper setting would be.
        let keysDirectory = KeyStore(repo: created).directory
        let original = try KeyStore(repo: created).list()[0].id
        for pw in ["old pw", "spare"] {
            try KeyStore.save(try KeyFile.make(created.keys!, passphrase: pw, n: 1 << 10), directory: keysDirectory, tmp: created.tmpPath)
        }
        try FileSystem.remove(FileSystem.join(keysDirectory, original))
        let spare = try KeyStore(repo: created).list().last!.id
        for verb in ["passwd", "add", "rm"] {
            var n: Int64 = 0
            while true {
                let dir = TemporaryDirectory()
                try FileManager.default.copyItem(atPath: template.file("r"), toPath: dir.file("r"))
                let repo = try Repository.open(at: dir.file("r"), passphrase: { "old pw" })
                let stop = FaultStop(mode, under: repo.path + "/", after: n) {
                    switch verb {
                    case "passwd": try KeyStore(repo: repo).changePassphrase(to: "new pw", cost: 1 << 10)
                    case "add": try KeyStore(repo: repo).add(passphrase: "new pw", cost: 1 << 10)
                    default: try KeyStore(repo: repo).remove(spare)
                    }
                }
                let completed = stop.result != nil
                // The passphrase the user changes opens it, before or after the change; adding one or removing
                // another never takes it away.
                let mine = verb == "passwd" ? ["old pw", "new pw"] : ["old pw"]
                let opened = mine.lazy.compactMap { pw in try? Repository.open(at: repo.path, passphrase: { pw }) }.first
                #expect(opened != nil, "\(verb), \(mode) after \(n) calls: neither \(mine) opens the repository")
                if completed {
                    // What the verb reported done is durable.
                    let works = { (pw: String) in (try? Repository.open(at: repo.path, passphrase: { pw })) != nil }
                    switch verb {
                    case "passwd": #expect(works("new pw") && !works("old pw"), "\(verb), \(mode) after \(n) calls")
                    case "add": #expect(works("new pw") && works("old pw"), "\(verb), \(mode) after \(n) calls")
                    default: #expect(!works("spare") && works("old pw"), "\(verb), \(mode) after \(n) calls")
                    }
                }
                if let any = opened {
                    #expect(try restoreBytes(any, s, in: dir) == image, "\(verb), \(mode) after \(n) calls")
                }
                if stop.isLast || n > 100 {
                    #expect(n >= 1 && n < 100, "\(verb) made \(n) calls")
                    break
                }
                n += 1
            }
        }
    }
}

/// `import` stopped at each of its calls in the repository it adds to: unpacking the bundle into tmp/, the copy's
/// packs, index and manifest.
@Suite("Import faults", .serialized)
struct ImportFaultTests {
    @Test("import stopped at every call: what it reported imported survives a power cut; after one passing error nothing is left and it imports again",
          arguments: ["crash + power loss", "one failing call"])
    func importAtEveryCall(mode: String) throws {
        let template = TemporaryDirectory()
        let source = try Repository.create(at: template.file("source"))
        let s = try snap(source, try CrashPointTests.image(template, "a", seed: 1))
        let image = try FileSystem.readFile(template.file("a"))
        _ = try Bundle.export([s], from: source, to: template.file("b.bundle"), passphrase: nil)
        _ = try Repository.create(at: template.file("r"))
        var n: Int64 = 0
        while true {
            let dir = TemporaryDirectory()
            for name in ["r", "b.bundle"] { try FileManager.default.copyItem(atPath: template.file(name), toPath: dir.file(name)) }
            let repo = try Repository.open(at: dir.file("r"))
            let stop = FaultStop(mode, under: repo.path + "/", after: n) {
                try Bundle.import(dir.file("b.bundle"), into: repo, passphrase: nil).copied.first?.target
            }
            let lastError = stop.error.map { "\($0)" } ?? ""
            if let imported = stop.result ?? nil {
                let copied = try SnapshotResolver(repo: repo).resolve(imported.hex)
                #expect(try restoreBytes(repo, copied, in: dir) == image, "\(mode) after \(n) calls")
            } else if mode.hasPrefix("one") {
                let staged = try FileSystem.list(repo.tmpPath)
                #expect(staged.isEmpty, "\(mode) after \(n) calls left \(staged)")
                #expect(try SnapshotCatalog(repo: repo).list().snapshots.isEmpty, "\(mode) after \(n) calls: \(lastError)")
                // Nothing sticks: it imports now.
                let again = try Bundle.import(dir.file("b.bundle"), into: repo, passphrase: nil)
                #expect(try restoreBytes(repo, try SnapshotResolver(repo: repo).resolve(again.copied[0].target.hex), in: dir) == image)
            }
            _ = try GarbageCollector(repo: repo).run()
            let report = try Checker(repo: repo).run(readData: true)
            #expect(report.isHealthy && report.notes.isEmpty, "\(mode) after \(n) calls: \(report.problems.map(\.message)) \(report.notes)")
            let left = try FileSystem.list(repo.tmpPath)
            #expect(left.isEmpty, "\(mode) after \(n) calls, then gc: \(left)")
            if stop.isLast || n > 600 {
                #expect(n > 10 && n < 600, "import made \(n) calls")
                return
            }
            n += 1
        }
    }
}
