
import Foundation
import Testing
@testable import StrataCore

/// The committed repositories of each format (Fixtures/formatN, made once by their make-fixture.sh) must stay
/// readable and writable forever: every snapshot restores to the recorded bytes and fsck finds it whole.
@Suite("Format compatibility")
struct FormatCompatibilityTests {
    static func fixture(_ format: Int) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/format\(format)")
    }

    /// A writable copy of the fixture repository (the committed one is never written to).
    static func copy(_ format: Int, into dir: TemporaryDirectory) throws -> Repository {
        let target = dir.file("repo")
        try FileManager.default.copyItem(atPath: fixture(format).appendingPathComponent("repo").path, toPath: target)
        for sub in Repository.subdirectories { try FileSystem.makeDirectory(target + "/" + sub) }
        return try Repository.open(at: target)
    }

    /// The fixture's expected.txt: snapshot id, image size, image SHA-256 per line.
    static func expected(_ format: Int) throws -> [[String]] {
        try String(contentsOf: fixture(format).appendingPathComponent("expected.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ").map(String.init) }
    }

    @Test("each format's fixture restores byte for byte and passes fsck --read-data", arguments: [1, 2])
    func restoresFixture(format: Int) throws {
        let dir = TemporaryDirectory()
        let repo = try Self.copy(format, into: dir)
        #expect(repo.config.format == format)
        #expect(repo.config.chunker == .default)
        let lines = try Self.expected(format)
        #expect(lines.count == 2)
        for parts in lines {
            let snapshot = try SnapshotResolver(repo: repo).resolve(parts[0])
            let bytes = try restoreBytes(repo, snapshot, in: dir)
            #expect(bytes.count == Int(parts[1]))
            #expect(ObjectID.sha256(bytes).hex == parts[2])
        }
        #expect(try SnapshotResolver(repo: repo).resolve("fixture-second").id.hex == lines[1][0])
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.snapshotsChecked == 2)
    }

    @Test("a new snapshot can be added to each format's fixture, in that format, and gc keeps it whole", arguments: [1, 2])
    func writesIntoFixture(format: Int) throws {
        let dir = TemporaryDirectory()
        let repo = try Self.copy(format, into: dir)
        var rng = SeededRandom(seed: 77)
        let s = try snap(repo, try dir.write("new.img", rng.textLike(1 << 20)), volume: "fixture")
        try SnapshotCatalog(repo: repo).remove([try SnapshotResolver(repo: repo).resolve(try Self.expected(format)[0][0]).id])
        _ = try GarbageCollector(repo: repo).run()
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, s, in: dir).count == 1 << 20)
        // A repository keeps its format: what was written is in the layouts of that format.
        #expect(try Repository.open(at: repo.path).config.format == format)
        for dir in try FileSystem.list(repo.packsPath) {
            for name in try FileSystem.list(repo.packsPath + "/" + dir) {
                let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: repo.packsPath + "/" + dir + "/" + name)))
                #expect(bytes[8] == UInt8(format), "pack \(name) has version \(bytes[8])")
            }
        }
        for name in try FileSystem.list(repo.indexPath) {
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: repo.indexPath + "/" + name)))
            #expect(bytes[8] == UInt8(format), "index file \(name) has version \(bytes[8])")
        }
    }
}
