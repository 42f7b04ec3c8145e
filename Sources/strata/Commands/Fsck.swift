import ArgumentParser
import StrataCore

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the repository; exit 4 when anything is damaged.",
        discussion: """
            Checks the config, the index, every pack's table of contents against the index, every manifest and \
            every chunk map. With --read-data it also decompresses every frame and re-hashes every chunk. \
            Each problem names the snapshot and the byte range it can no longer restore.

            Examples:
              strata fsck
              strata fsck --read-data
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Also decompress and re-hash every stored chunk.")
    var readData = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Decompress and re-hash a random sample of the stored data, e.g. 10% (for nightly runs).", valueName: "percent"))
    var readDataSubset: String?

    @Flag(help: "Fix what is safe to fix: drop refs and index entries that point nowhere, remove temporary files and failed snapshots' journals. Never deletes a manifest or a pack.")
    var repair = false

    func sampleFraction() throws -> Double? {
        guard let text = readDataSubset else { return nil }
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(number), value > 0, value <= 100 else {
            throw StrataError(.invalidArgument, "--read-data-subset '\(text)' is not valid: give a percentage above 0 and at most 100, e.g. 10%")
        }
        return value / 100
    }

    mutating func run() throws {
        if readData && readDataSubset != nil {
            throw StrataError(.invalidArgument, "--read-data and --read-data-subset cannot be given together: the first reads all the data, the second a sample")
        }
        let sample = try sampleFraction()
        let repo = try repository.open()
        let reads = readData || sample != nil
        let bar = reads ? output.reporter(verb: "fsck") : nil
        let report: FsckReport
        do {
            var first = try Checker(repo: repo).run(readData: reads, sample: sample, repair: repair, progress: bar)
            if repair && !first.repairs.isEmpty {
                // Judge the repository as the repairs left it: the exit status says whether damage remains.
                let repairs = first.repairs
                first = try Checker(repo: repo).run(readData: reads, sample: sample, repair: false, progress: bar)
                first.repairs = repairs
            }
            report = first
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        // --json prints the report on stdout; the stderr lines stay (as for every verb; -q removes the notes).
        if output.json { try JSONOutput.print(FsckJSON(report)) }
        for p in report.problems { Terminal.writeErr("strata: \(p.message)\n") }
        for n in report.notes { output.note("note: \(n)") }
        for r in report.repairs { output.note("repaired: \(r)") }
        var what = report.readData
            ? "\(Format.count(report.snapshotsChecked, "snapshot")), \(Format.count(report.packsChecked, "pack")), \(Format.count(report.objectsVerified, "object")) re-hashed (\(Format.bytes(report.bytesVerified)))"
            : "\(Format.count(report.snapshotsChecked, "snapshot")), \(Format.count(report.packsChecked, "pack")), \(Format.count(report.objectsIndexed, "indexed object"))"
        if let f = report.sampledFraction {
            what += String(cFormat: "; sampled %d of %d frames (%.1f%%)", report.framesRead, report.framesTotal, f * 100)
        }
        if report.isHealthy {
            output.note("fsck: ok: \(what) in \(Format.duration(report.seconds))")
        } else {
            let damaged = report.damagedSnapshots.map(\.shortHex).joined(separator: ", ")
            Terminal.writeErr("fsck: \(report.problems.count) problem(s); damaged snapshots: \(damaged.isEmpty ? "none" : damaged); checked \(what)\n")
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
    var sampledFraction: Double?
    var framesRead: Int
    var framesTotal: Int
    var repairs: [String]
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
        sampledFraction = r.sampledFraction
        framesRead = r.framesRead
        framesTotal = r.framesTotal
        repairs = r.repairs
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
