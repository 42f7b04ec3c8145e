import ArgumentParser
import StrataCore

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the repository; exit 4 when anything is damaged.",
        discussion: """
            Checks the config, the index, every pack's table of contents against the index, every manifest and
            every chunk map. With --read-data it also decompresses every frame and re-hashes every chunk.
            Each problem names the snapshot and the byte range it can no longer restore.

            Examples:
              strata fsck
              strata fsck --read-data
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Also decompress and re-hash every stored chunk.")
    var readData = false

    mutating func run() throws {
        let repo = try repository.open()
        let bar = readData ? output.reporter(verb: "fsck") : nil
        let report: FsckReport
        do {
            report = try Checker(repo: repo).run(readData: readData, progress: bar)
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        if output.json {
            try JSONOutput.print(FsckJSON(report))
        } else {
            for p in report.problems { Terminal.writeErr("strata: \(p.message)\n") }
            for n in report.notes { output.note("note: \(n)") }
            let what = report.readData
                ? "\(report.snapshotsChecked) snapshots, \(report.packsChecked) packs, \(report.objectsVerified) objects re-hashed (\(Format.bytes(report.bytesVerified)))"
                : "\(report.snapshotsChecked) snapshots, \(report.packsChecked) packs, \(report.objectsIndexed) indexed objects"
            if report.isHealthy {
                output.note("fsck: ok: \(what) in \(Format.duration(report.seconds))")
            } else {
                let damaged = report.damagedSnapshots.map(\.shortHex).joined(separator: ", ")
                Terminal.writeErr("fsck: \(report.problems.count) problem(s); damaged snapshots: \(damaged.isEmpty ? "none" : damaged); checked \(what)\n")
            }
        }
        if !report.isHealthy { throw ExitCode(ExitStatus.damaged.rawValue) }
    }
}

struct FsckJSON: Encodable {
    struct Problem: Encodable {
        var snapshot: String?
        var start: UInt64?
        var end: UInt64?
        var message: String
    }
    var healthy: Bool
    var readData: Bool
    var snapshotsChecked: Int
    var packsChecked: Int
    var objectsIndexed: Int
    var objectsVerified: Int
    var bytesVerified: Int64
    var damagedSnapshots: [String]
    var problems: [Problem]
    var notes: [String]
    var seconds: Double

    init(_ r: FsckReport) {
        healthy = r.isHealthy
        readData = r.readData
        snapshotsChecked = r.snapshotsChecked
        packsChecked = r.packsChecked
        objectsIndexed = r.objectsIndexed
        objectsVerified = r.objectsVerified
        bytesVerified = r.bytesVerified
        damagedSnapshots = r.damagedSnapshots.map(\.hex)
        problems = r.problems.map { Problem(snapshot: $0.snapshot?.hex, start: $0.range?.lowerBound, end: $0.range.map { $0.upperBound + 1 }, message: $0.message) }
        notes = r.notes
        seconds = r.seconds
    }
}
