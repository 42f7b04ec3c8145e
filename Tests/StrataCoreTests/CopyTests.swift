import Foundation
import Testing
import Dispatch
@testable import StrataCore

/// Every progress report an operation makes, with the stage it belongs to.
final class ProgressLog: ProgressReporter, @unchecked Sendable {
    struct Report { var done: Int64; var total: Int64?; var newBytes: Int64 }
    private let lock = NSLock()
    private var current = ""
    private(set) var stages: [String] = []
    private(set) var reports: [String: [Report]] = [:]

    func stage(_ name: String) { lock.withLock { current = name; stages.append(name) } }
    func progress(done: Int64, total: Int64?, newBytes: Int64) {
        lock.withLock { reports[current, default: []].append(Report(done: done, total: total, newBytes: newBytes)) }
    }

    /// The reports of one stage ("" outside stages) go only forward, against one total, and end at it.
    func expectComplete(_ stage: String, total: Int64, sourceLocation: SourceLocation = #_sourceLocation) {
        let list = reports[stage] ?? []
        #expect(!list.isEmpty, "no progress in stage '\(stage)'", sourceLocation: sourceLocation)
        #expect(zip(list, list.dropFirst()).allSatisfy { $0.done <= $1.done && $0.newBytes <= $1.newBytes }, "stage '\(stage)' went back", sourceLocation: sourceLocation)
        #expect(list.allSatisfy { $0.total == total }, "stage '\(stage)' totals \(Set(list.map(\.total)))", sourceLocation: sourceLocation)
        #expect(list.last?.done == total, "stage '\(stage)' ended at \(list.last?.done ?? -1) of \(total)", sourceLocation: sourceLocation)
    }
}

@Suite("Copy and bundle progress")
struct CopyProgressTests {
    @Test("copy, export and import report each stage from zero to its total, and never go back")
    func progress() throws {
        let dir = TemporaryDirectory()
        let plain = try Repository.create(at: dir.file("plain"))
        // Two snapshots of a sparse image: a hole and a zero run count in image bytes, not in data bytes.
        var rng = SeededRandom(seed: 31)
        var bytes = rng.textLike(3 << 20) + [UInt8](repeating: 0, count: 1 << 20) + rng.textLike(1 << 20)
        let path = try dir.write("img", bytes)
        let fd = open(path, O_WRONLY)
        #expect(ftruncate(fd, 8 << 20) == 0)
        close(fd)
        let first = try snap(plain, path)
        bytes.replaceSubrange(0..<100_000, with: rng.textLike(100_000))
        _ = try dir.write("img", bytes)
        let second = try snap(plain, path)
        let dataBytes = Int64(first.manifest.dataBytes + second.manifest.dataBytes)
        #expect(dataBytes < Int64(first.manifest.size + second.manifest.size))

        // Shared chunking: data bytes; the data moved is what the second snapshot adds to the first.
        let log = ProgressLog()
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: plain)
        let r = try SnapshotCopier(from: plain, to: target).copy([first, second], progress: log)
        #expect(r.incremental && log.stages.isEmpty)
        log.expectComplete("", total: dataBytes)
        #expect(log.reports[""]?.last?.newBytes == r.bytesCopied)
        // Both snapshots, copied in one call (the indexes loaded once), restore as they were.
        for (source, copied) in r.copied {
            let original = try SnapshotResolver(repo: plain).resolve(source.hex)
            #expect(try restoreBytes(target, try SnapshotResolver(repo: target).resolve(copied.hex), in: dir) == (try restoreBytes(plain, original, in: dir)))
        }
        #expect(try Checker(repo: target).run(readData: true).isHealthy)

        // A complete copy (into an encrypted repository) goes through the images.
        let complete = ProgressLog()
        let enc = try Repository.create(at: dir.file("enc"), encryption: .chacha20poly1305, passphrase: "e")
        #expect(try !SnapshotCopier(from: plain, to: enc).copy([first, second], progress: complete).incremental)
        complete.expectComplete("", total: Int64(first.manifest.size + second.manifest.size))

        // Export: copying, then writing the bundle's bytes; import: four stages over the bundle, its data and the images.
        let exported = ProgressLog()
        let bundle = dir.file("b.bundle")
        _ = try Bundle.export([second], from: plain, to: bundle, passphrase: nil, progress: exported)
        #expect(exported.stages == ["copying", "writing"])
        exported.expectComplete("copying", total: Int64(second.manifest.dataBytes))
        let bundleSize = try #require(try FileSystem.status(bundle)).size
        exported.expectComplete("writing", total: bundleSize)
        let imported = ProgressLog()
        let other = try Repository.create(at: dir.file("other"))
        let back = try Bundle.import(bundle, into: other, passphrase: nil, progress: imported)
        #expect(imported.stages == ["checking", "unpacking", "verifying", "adding"])
        imported.expectComplete("checking", total: bundleSize - 32)
        imported.expectComplete("unpacking", total: bundleSize - 32)
        #expect(imported.reports["verifying"]?.last.map { $0.done == $0.total } == true)
        imported.expectComplete("adding", total: Int64(second.manifest.dataBytes))
        let copy = try SnapshotResolver(repo: other).resolve(back.copied[0].target.hex)
        #expect(try restoreBytes(other, copy, in: dir) == (try FileSystem.readFile(path)))
    }
}


/// The (compressed, raw) lengths of every chunk frame of a repository's packs.
func chunkFrames(_ repo: Repository) throws -> [[UInt32]] {
    var out: [[UInt32]] = []
    let index = try ChunkIndex.load(repo, strict: true)
    for id in index.packs {
        let toc = try PackFile(id: id, path: repo.packFilePath(id), sealer: repo.sealer).readTOC()
        for f in toc.frames where f.kind == .chunk { out.append([f.compressedLength, f.rawLength]) }
    }
    return out.sorted { ($0[1], $0[0]) < ($1[1], $1[0]) }
}

@Suite("Whole frames between repositories that compress alike")
struct WholeFrameCopyTests {
    /// A plain repository with two snapshots of an 8 MiB text image, the second with 1 MiB rewritten.
    static func source(_ dir: TemporaryDirectory) throws -> (Repository, Snapshot, Snapshot, [UInt8]) {
        let repo = try Repository.create(at: dir.file("source"))
        var rng = SeededRandom(seed: 41)
        var bytes = rng.textLike(8 << 20)
        let path = try dir.write("img", bytes)
        let first = try snap(repo, path)
        _ = try dir.write("first.img", bytes)
        bytes.replaceSubrange((3 << 20)..<(4 << 20), with: rng.textLike(1 << 20))
        _ = try dir.write("img", bytes)
        let second = try snap(repo, path)
        return (repo, first, second, bytes)
    }

    @Test("two copies of one snapshot into one repository at once add it once: they take turns, and the second finds it there")
    func copiesAtOnce() throws {
        let dir = TemporaryDirectory()
        let (source, first, _, _) = try Self.source(dir)
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        let skipped = ByteCounter()
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: done) {
                start.wait()
                if let r = try? SnapshotCopier(from: source, to: target).copy([first]) { skipped.add(UInt64(r.skipped)) }
            }
        }
        start.signal(); start.signal()
        done.wait()
        #expect(try SnapshotStore(repo: target).ids().count == 1)
        #expect(skipped.value == 1)
        #expect(try Checker(repo: target).run(readData: true).isHealthy)
    }

    @Test("a first copy moves every frame as it is; the next copies only what is new; both restore byte for byte")
    func frames() throws {
        let dir = TemporaryDirectory()
        let (source, first, second, bytes) = try Self.source(dir)
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        #expect(WholeFrameCopier.applies(from: source, to: target))
        let one = try SnapshotCopier(from: source, to: target).copy([first])
        // The target's chunk frames are the source's first ones, as they were (compressed the same, not again).
        let firstFrames = try chunkFrames(target)
        var sourceFrames = try chunkFrames(source)
        #expect(!firstFrames.isEmpty && firstFrames.count < sourceFrames.count && one.wholeFrames == firstFrames.count)
        for f in firstFrames {
            guard let i = sourceFrames.firstIndex(of: f) else { Issue.record("frame \(f) is not one of the source's"); break }
            sourceFrames.remove(at: i)
        }
        let two = try SnapshotCopier(from: source, to: target).copy([second])
        #expect(two.bytesCopied < one.bytesCopied / 3, "\(two.bytesCopied) of \(one.bytesCopied)")
        #expect(two.wholeFrames == sourceFrames.count, "\(two.wholeFrames) frames whole, \(sourceFrames.count) new")
        #expect(try chunkFrames(target) == (try chunkFrames(source)), "every chunk frame travelled whole")
        let copied = try SnapshotResolver(repo: target).resolve(two.copied[0].target.hex)
        #expect(try restoreBytes(target, copied, in: dir) == bytes)
        #expect(try Checker(repo: target).run(readData: true).isHealthy)
    }

    @Test("a copy reads no frame of chunks the target holds already: with the source's packs failing after 512 KiB of reads, an increment of one changed page copies, and restores byte for byte")
    func readsOnlyWhatIsMissing() throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 77)
        var bytes = (0..<(8 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let image = try dir.write("img", bytes)
        let source = try Repository.create(at: dir.file("source"))
        let first = try snap(source, image)
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        _ = try SnapshotCopier(from: source, to: target).copy([first])
        for i in 0..<4096 { bytes[(4 << 20) + i] ^= 0x5a }
        let second = try snap(source, try dir.write("img", bytes))
        // 8 MiB of chunk frames the target has; what it lacks is one chunk and a few map nodes.
        FaultInjection.install(.init(pathPrefix: source.path + "/packs/", call: "read", errno: EIO, allowance: 512 << 10))
        defer { FaultInjection.remove(pathPrefix: source.path + "/packs/") }
        let two = try SnapshotCopier(from: source, to: target).copy([second])
        FaultInjection.remove(pathPrefix: source.path + "/packs/")
        #expect(two.bytesCopied < 200_000, "\(two.bytesCopied)")
        let copied = try SnapshotResolver(repo: target).resolve(two.copied[0].target.hex)
        #expect(try restoreBytes(target, copied, in: dir) == bytes)
    }

    @Test("an import moves the bundle's frames, verified once as it was unpacked, as they are: every one whole, both snapshots restore")
    func importMovesVerifiedFrames() throws {
        let dir = TemporaryDirectory()
        let (source, first, second, bytes) = try Self.source(dir)
        let bundle = dir.file("b.bundle")
        _ = try Bundle.export([first, second], from: source, to: bundle, passphrase: nil)
        let target = try Repository.create(at: dir.file("target"))
        let r = try Bundle.import(bundle, into: target, passphrase: nil)
        // The bundle holds the source's frames (an export moves them whole too), and they arrive as they are.
        #expect(try chunkFrames(target) == (try chunkFrames(source)))
        #expect(r.wholeFrames == (try chunkFrames(target)).count, "\(r.wholeFrames)")
        let firstBytes = try FileSystem.readFile(dir.file("first.img"))
        for (copied, expected) in zip(r.copied, [firstBytes, bytes]) {
            #expect(try restoreBytes(target, try SnapshotResolver(repo: target).resolve(copied.target.hex), in: dir) == expected)
        }
        let report = try Checker(repo: target).run(readData: true)
        #expect(report.isHealthy && report.notes.isEmpty, "\(report.problems.map(\.message)) \(report.notes)")
        #expect(try GarbageCollector(repo: target).run(dryRun: true).deadObjects == 0)
    }

    @Test("a frame that also holds chunks the snapshot does not use is copied chunk by chunk: nothing dead arrives")
    func onlyWhatIsUsed() throws {
        let dir = TemporaryDirectory()
        let (source, _, second, bytes) = try Self.source(dir)
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        let r = try SnapshotCopier(from: source, to: target).copy([second])
        let copied = try SnapshotResolver(repo: target).resolve(r.copied[0].target.hex)
        #expect(try restoreBytes(target, copied, in: dir) == bytes)
        // The first snapshot's frame with the rewritten stretch holds chunks the second does not use: not copied whole.
        #expect(try chunkFrames(target) != (try chunkFrames(source)))
        let targetFrames = try chunkFrames(target)
        #expect(r.wholeFrames > 0 && r.wholeFrames < targetFrames.count, "\(r.wholeFrames)")
        let gc = try GarbageCollector(repo: target).run(dryRun: true)
        #expect(gc.deadObjects == 0, "dead objects arrived: \(gc.deadObjects)")
    }

    @Test("encrypted with shared chunking: frames travel whole, sealed with the target's key; other settings compress again",
          arguments: [false, true])
    func sealedAndOtherSettings(encrypted: Bool) throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(seed: 42)
        let bytes = rng.textLike(6 << 20)
        let path = try dir.write("img", bytes)
        let source = encrypted ? try Repository.create(at: dir.file("source"), encryption: .aes256gcm, passphrase: "s")
                               : try Repository.create(at: dir.file("source"))
        let s = try snap(source, path)
        let same = encrypted ? try Repository.create(at: dir.file("same"), encryption: .chacha20poly1305, passphrase: "t", chunkingFrom: source)
                             : try Repository.create(at: dir.file("same"), chunkingFrom: source)
        #expect(WholeFrameCopier.applies(from: source, to: same))
        let r = try SnapshotCopier(from: source, to: same).copy([s])
        #expect(try chunkFrames(same).map { $0[1] } == (try chunkFrames(source)).map { $0[1] })
        let sourceFrames = try chunkFrames(source)
        #expect(r.wholeFrames == sourceFrames.count)
        #expect(try restoreBytes(same, try SnapshotResolver(repo: same).resolve(r.copied[0].target.hex), in: dir) == bytes)
        #expect(try Checker(repo: same).run(readData: true).isHealthy)
        // Another level: compressed again, at the target's level.
        let other = encrypted ? try Repository.create(at: dir.file("other"), compression: CompressionParameters(level: 1), encryption: .chacha20poly1305, passphrase: "t", chunkingFrom: source)
                              : try Repository.create(at: dir.file("other"), compression: CompressionParameters(level: 1), chunkingFrom: source)
        #expect(!WholeFrameCopier.applies(from: source, to: other))
        let o = try SnapshotCopier(from: source, to: other).copy([s])
        let otherFrames = try chunkFrames(other)
        #expect(o.wholeFrames == 0 && otherFrames.map { $0[0] } != sourceFrames.map { $0[0] })
        #expect(try restoreBytes(other, try SnapshotResolver(repo: other).resolve(o.copied[0].target.hex), in: dir) == bytes)
    }

    @Test("a damaged frame is never copied whole: the copy fails naming the damage, and nothing is committed", arguments: [0.3, 0.5, 0.9])
    func damagedFrame(at fraction: Double) throws {
        let dir = TemporaryDirectory()
        let (source, first, _, _) = try Self.source(dir)
        let pack = try #require(try source.packFilePaths().max { (try FileSystem.status($0)?.size ?? 0) < (try FileSystem.status($1)?.size ?? 0) })
        var packBytes = try FileSystem.readFile(pack)
        packBytes[Int(Double(packBytes.count) * fraction * 0.8)] ^= 0x20
        _ = try dir.write(String(pack.dropFirst(dir.path.count + 1)), packBytes)
        let target = try Repository.create(at: dir.file("target"), chunkingFrom: source)
        #expect(throws: StrataError.self) { try SnapshotCopier(from: source, to: target).copy([first]) }
        #expect(try SnapshotCatalog(repo: target).list().snapshots.isEmpty)
        #expect(try Checker(repo: target).run(readData: true).isHealthy)
    }
}

@Suite("Export from a repository that cannot be written")
struct ReadOnlyExportTests {
    @Test("export from a repository mounted read-only builds the bundle beside it and leaves nothing there")
    func readOnlySource() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 43)
        let bytes = rng.textLike(3 << 20)
        let s = try snap(repo, try dir.write("img", bytes))
        try FileSystem.makeDirectory(dir.file("out"))
        // mkdir in the repository fails as on a read-only mount (EROFS): the staging goes beside the bundle.
        FaultInjection.install(.init(pathPrefix: repo.path + "/", call: "mkdir", errno: EROFS, allowance: 0))
        defer { FaultInjection.remove(pathPrefix: repo.path + "/") }
        _ = try Bundle.export([s], from: repo, to: dir.file("out/b.bundle"), passphrase: nil)
        #expect(try FileSystem.list(dir.file("out")) == ["b.bundle"])
        #expect(try FileSystem.list(repo.tmpPath).isEmpty)
        let target = try Repository.create(at: dir.file("t"))
        let r = try Bundle.import(dir.file("out/b.bundle"), into: target, passphrase: nil)
        #expect(try restoreBytes(target, try SnapshotResolver(repo: target).resolve(r.copied[0].target.hex), in: dir) == bytes)
    }
}
