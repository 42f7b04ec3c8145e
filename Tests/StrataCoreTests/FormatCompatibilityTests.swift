
import Foundation
import Testing
@testable import StrataCore

/// The committed format-1 repository (Fixtures/format1, made by its make-fixture.sh) must stay readable forever:
/// every snapshot restores to the recorded bytes and fsck finds it whole.
@Suite("Format 1 compatibility")
struct FormatCompatibilityTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/format1")

    /// A writable copy of the fixture repository (the committed one is never written to).
    static func copy(into dir: TemporaryDirectory) throws -> Repository {
        let target = dir.file("repo")
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("repo").path, toPath: target)
        for sub in Repository.subdirectories { try FileSystem.makeDirectory(target + "/" + sub) }
        return try Repository.open(at: target)
    }

    @Test("the format-1 fixture restores byte for byte and passes fsck --read-data")
    func restoresFixture() throws {
        let dir = TemporaryDirectory()
        let repo = try Self.copy(into: dir)
        #expect(repo.config.format == 1)
        #expect(repo.config.chunker == .default)
        let lines = try String(contentsOf: Self.fixture.appendingPathComponent("expected.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count == 2)
        for line in lines {
            let parts = line.split(separator: " ").map(String.init)
            let snapshot = try SnapshotResolver(repo: repo).resolve(parts[0])
            let bytes = try restoreBytes(repo, snapshot, in: dir)
            #expect(bytes.count == Int(parts[1]))
            #expect(ObjectID.sha256(bytes).hex == parts[2])
        }
        #expect(try SnapshotResolver(repo: repo).resolve("fixture-second").id.hex == lines[1].split(separator: " ")[0])
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.snapshotsChecked == 2)
    }

    @Test("a new snapshot can be added to a format-1 repository and gc keeps it whole")
    func writesIntoFixture() throws {
        let dir = TemporaryDirectory()
        let repo = try Self.copy(into: dir)
        var rng = SeededRandom(seed: 77)
        let s = try snap(repo, try dir.write("new.img", rng.textLike(1 << 20)), volume: "fixture")
        try SnapshotCatalog(repo: repo).remove([try SnapshotResolver(repo: repo).resolve("d0f6").id])
        _ = try GarbageCollector(repo: repo).run()
        #expect(try Checker(repo: repo).run(readData: true).isHealthy)
        #expect(try restoreBytes(repo, s, in: dir).count == 1 << 20)
    }
}
