import ArgumentParser
import FoundationEssentials
import StrataCore

struct Snap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a snapshot of an image file, a block device or standard input.",
        discussion: """
            Prints the new snapshot's id on stdout and a summary on stderr. Only chunks the repository does not \
            hold yet are stored.

            Examples:
              strata snap vm.img -m "before upgrade" -t env=prod
              strata snap /dev/vg0/data-snap --volume data
              strata snap /var/lib/libvirt/images/vm.img --clone always
              zcat disk.img.gz | strata snap - --volume disk
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("An image file, a block device, or '-' for standard input.", valueName: "source"), completion: .file())
    var source: String

    @Option(help: ArgumentHelp("The volume name (default: the source's file name; required for '-').", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Option(name: [.short, .customLong("message")], help: ArgumentHelp("A description of the snapshot.", valueName: "text"))
    var message: String = ""

    @Option(name: [.short, .customLong("tag")], help: ArgumentHelp("A key=value tag (repeatable).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Fail, committing nothing, if the source changes (size or modification time) while it is read.")
    var failOnChange = false

    @Option(help: ArgumentHelp("Read an image file through an instant clone of it, so the snapshot is one point in time even while a VM writes to it: auto (where its file system can clone: btrfs, XFS with reflink), always (or fail), never.", valueName: "mode"))
    var clone: CloneMode = .auto

    mutating func run() throws {
        let repo = try repository.open()
        var tagMap: [String: String] = [:]
        for t in tags {
            let (k, v) = try Labels.parseTag(t)
            tagMap[k] = v
        }
        let bar = output.reporter(verb: "snap")
        let result: SnapshotResult
        Interruption.catchSignals()
        do {
            let quiet = output.quiet
            result = try Snapshotter(repo: repo).run(
                SnapshotRequest(source: source, volume: volume, description: message, tags: tagMap, failOnChange: failOnChange,
                                clone: clone),
                progress: bar) {
                if !quiet { Terminal.writeErr("waiting for gc to finish…\n") }
            }
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        let m = result.snapshot.manifest
        if output.json {
            try JSONOutput.print(SnapshotJSON(result.snapshot, seconds: result.seconds))
        } else {
            Terminal.writeOut(result.snapshot.id.hex + "\n")
        }
        let rate = result.seconds > 0 ? Double(m.size) / result.seconds : 0
        output.note("snap \(result.snapshot.id.shortHex)  \(Format.bytes(m.size)) in \(Format.duration(result.seconds)) (\(Format.bytes(Int64(rate)))/s), \(Format.bytes(m.newBytes)) new (\(m.newChunks) chunk\(m.newChunks == 1 ? "" : "s")), \(Format.bytes(m.storedBytes)) stored\(result.readFromClone ? ", read from a point-in-time clone" : "")")
        if let why = result.cloneFailure {
            Terminal.writeErr("strata: warning: \(why)\n")
        }
        if m.sourceChanged {
            Terminal.writeErr("strata: warning: \(source) changed while it was read; the snapshot may not be consistent\n")
        }
    }
}

/// The JSON form of a snapshot (docs/CLI.md). Fields are only ever added.
struct SnapshotJSON: Encodable {
    var id: String
    var shortId: String
    var volume: String
    var source: String
    var sourceKind: String
    var size: UInt64
    var dataBytes: UInt64
    var createdAt: String
    var completedAt: String
    var description: String
    /// Tags now: creation tags merged with later changes.
    var tags: [String: String]
    /// Tags given at creation (the immutable manifest's).
    var creationTags: [String: String]
    var refs: [String]
    var protected: Bool
    var chunker: String
    var chunkCount: UInt64
    var newChunks: UInt64
    var newBytes: UInt64
    var storedBytes: UInt64
    var host: String
    var sourceChanged: Bool
    var seconds: Double?
    /// Always "completed" (pending snapshots appear in `log --json` with status "pending" or "failed").
    var status = "completed"

    init(_ s: Snapshot, seconds: Double? = nil) {
        self.init(SnapshotInfo(snapshot: s, tags: s.manifest.tags, refs: [], protected: false), seconds: seconds)
    }

    init(_ info: SnapshotInfo, seconds: Double? = nil) {
        let m = info.manifest
        id = info.id.hex
        shortId = info.id.shortHex
        volume = m.volume
        source = m.source
        sourceKind = m.sourceKind
        size = m.size
        dataBytes = m.dataBytes
        createdAt = m.createdAt
        completedAt = m.completedAt
        description = m.description
        tags = info.tags
        creationTags = m.tags
        refs = info.refs
        protected = info.protected
        chunker = m.chunker
        chunkCount = m.chunkCount
        newChunks = m.newChunks
        newBytes = m.newBytes
        storedBytes = m.storedBytes
        host = m.host
        sourceChanged = m.sourceChanged
        self.seconds = seconds
    }
}

extension CloneMode: ExpressibleByArgument {}
