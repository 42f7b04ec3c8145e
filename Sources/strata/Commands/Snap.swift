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
              strata snap vm-os.img vm-data.img -m "before upgrade"
              zcat disk.img.gz | strata snap - --volume disk
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("An image file, a block device, or '-' for standard input; several (a VM's disks) are snapshotted at one point in time, one snapshot each.", valueName: "source"), completion: .file())
    var sources: [String]

    @Option(help: ArgumentHelp("The volume name (default: the source's file name; required for '-'); with several sources, once per source, in order.", valueName: "name"), completion: Completions.volumes)
    var volume: [String] = []

    @Option(name: [.short, .customLong("message")], help: ArgumentHelp("A description of the snapshot.", valueName: "text"))
    var message: String = ""

    @Option(name: [.short, .customLong("tag")], help: ArgumentHelp("A key=value tag (repeatable).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Fail, committing nothing, if the source changes (size or modification time) while it is read.")
    var failOnChange = false

    @Option(help: ArgumentHelp("Read an image file through an instant clone of it, so the snapshot is one point in time even while a VM writes to it: auto (where its file system can clone: btrfs, XFS with reflink), always (or fail), never.", valueName: "mode"))
    var clone: CloneMode = .auto

    func validate() throws {
        guard volume.isEmpty || volume.count == sources.count else {
            throw ValidationError("give --volume once per source (\(sources.count) sources, \(volume.count) --volume)")
        }
    }

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        let repo = try repository.openForStoring()
        var tagMap: [String: String] = [:]
        for t in tags {
            let (k, v) = try Labels.parseTag(t)
            tagMap[k] = v
        }
        let requests = sources.enumerated().map { i, source in
            SnapshotRequest(source: source, volume: volume.isEmpty ? nil : volume[i], description: message, tags: tagMap,
                            failOnChange: failOnChange, clone: clone)
        }
        let bar = output.reporter(verb: "snap")
        let results: [SnapshotResult]
        do {
            let quiet = output.quiet
            results = try Snapshotter(repo: repo).run(requests, progress: bar) {
                if !quiet { Terminal.writeErr("waiting for gc to finish…\n") }
            }
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        if output.json {
            let objects = results.map { SnapshotJSON($0.snapshot, seconds: $0.seconds) }
            if objects.count == 1 { try JSONOutput.print(objects[0]) } else { try JSONOutput.print(objects) }
        } else {
            Terminal.writeOut(results.map { $0.snapshot.id.hex + "\n" }.joined())
        }
        for (result, source) in zip(results, sources) {
            let m = result.snapshot.manifest
            let rate = result.seconds > 0 ? Double(m.size) / result.seconds : 0
            output.note("snap \(result.snapshot.id.shortHex)  \(results.count > 1 ? m.volume + "  " : "")\(Format.bytes(m.size)) in \(Format.duration(result.seconds)) (\(Format.bytes(Int64(rate)))/s), \(Format.bytes(m.newBytes)) new (\(m.newChunks) chunk\(m.newChunks == 1 ? "" : "s")), \(Format.bytes(m.storedBytes)) stored\(result.readFromClone ? ", read from a point-in-time clone" : "")")
            if let why = result.cloneFailure {
                Terminal.writeErr("strata: warning: \(why)\n")
            }
            if m.sourceChanged {
                Terminal.writeErr("strata: warning: \(source) changed while it was read; the snapshot may not be consistent\n")
            }
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
