import ArgumentParser
import StrataCore

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Free the data that no remaining snapshot references.",
        discussion: """
            Deletes packs with no live chunk and rewrites packs that are mostly dead. Takes the repository lock \
            exclusively: it waits for running snapshots (or fails at once with --no-wait).

            Examples:
              strata gc --dry-run
              strata gc
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Say what would be freed, change nothing.")
    var dryRun = false

    @Flag(help: "Fail at once if another command holds the repository.")
    var noWait = false

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        let repo = try repository.open()
        let quiet = output.quiet
        let bar = output.reporter(verb: "gc")
        let r: GarbageCollectionResult
        do {
            r = try GarbageCollector(repo: repo).run(dryRun: dryRun, wait: !noWait, progress: bar) {
                if !quiet { Terminal.writeErr("waiting for other strata commands to finish…\n") }
            }
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        // --json prints the result on stdout; the summary stays on stderr (-q removes it).
        if output.json { try JSONOutput.print(GCJSON(r)) }
        let verb = dryRun ? "would free" : "freed"
        var removed = [Format.count(r.unindexedPacksDeleted, "left-over pack"), Format.count(r.failedSnapshotsRemoved, "failed snapshot journal")]
        if r.tmpFilesRemoved > 0 { removed.append(Format.count(r.tmpFilesRemoved, "temporary file")) }
        if r.metadataRemoved > 0 { removed.append(Format.count(r.metadataRemoved, "left-over metadata file")) }
        let list = removed.dropLast().joined(separator: ", ") + " and " + removed.last!
        output.note("gc: \(verb) \(Format.bytes(r.bytesFreed)) (\(r.bytesFreed) bytes): \(Format.count(r.packsDeleted, "pack")) deleted, \(r.packsRewritten) rewritten, \(list) removed; \(Format.count(r.liveObjects, "live object")) in \(Format.count(r.snapshots, "snapshot")); \(Format.bytes(r.bytesAfter)) stored, in \(Format.duration(r.seconds))")
    }
}

struct GCJSON: Encodable {
    var dryRun: Bool
    var snapshots: Int
    var liveObjects: Int
    var deadObjects: Int
    var packsDeleted: Int
    var packsRewritten: Int
    var packsWritten: Int
    var unindexedPacksDeleted: Int
    var failedSnapshotsRemoved: Int
    var tmpFilesRemoved: Int
    var metadataRemoved: Int
    var bytesBefore: Int64
    var bytesAfter: Int64
    var bytesFreed: Int64
    var seconds: Double

    init(_ r: GarbageCollectionResult) {
        dryRun = r.dryRun
        snapshots = r.snapshots
        liveObjects = r.liveObjects
        deadObjects = r.deadObjects
        packsDeleted = r.packsDeleted
        packsRewritten = r.packsRewritten
        packsWritten = r.packsWritten
        unindexedPacksDeleted = r.unindexedPacksDeleted
        failedSnapshotsRemoved = r.failedSnapshotsRemoved
        tmpFilesRemoved = r.tmpFilesRemoved
        metadataRemoved = r.metadataRemoved
        bytesBefore = r.bytesBefore
        bytesAfter = r.bytesAfter
        bytesFreed = r.bytesFreed
        seconds = r.seconds
    }
}
