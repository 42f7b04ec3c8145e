import ArgumentParser
import StrataCore

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a snapshot's image to a file, a block device or standard output.",
        discussion: """
            A file target is written under a temporary name and renamed when complete; zero runs stay holes. \
            A block device is written in place. Every chunk is verified before it is written.

            Examples:
              strata restore latest vm-restored.img
              strata restore a1b2c3d4 /dev/vg0/data --force
              strata restore before-upgrade - | qemu-img convert -O qcow2 /dev/stdin vm.qcow2
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Snapshot id, unique id prefix (4+ hex digits), ref name, or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshot: String

    @Argument(help: ArgumentHelp("Target file, block device, or '-' for standard output.", valueName: "target"), completion: .file())
    var target: String

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(help: "Replace an existing target file, or overwrite an existing block device.")
    var force = false

    @Flag(help: "On a block device: read what it holds and write only the chunks that differ (rolling a volume back: unchanged blocks stay shared on thin or snapshotted volumes; costs a read of the image's data).")
    var skipUnchanged = false

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        if target == "-" && output.json {
            throw StrataError(.invalidArgument, "--json cannot be used when restoring to standard output ('-')")
        }
        let repo = try repository.open()
        let snap = try SnapshotResolver(repo: repo).resolve(snapshot, volume: volume, warn: Terminal.warn)
        let bar = target == "-" ? nil : output.reporter(verb: "restore")
        let result: RestoreResult
        do {
            result = try Restorer(repo: repo).run(snap, to: target, force: force, skipUnchanged: skipUnchanged, progress: bar)
        } catch {
            bar?.finish()
            throw error
        }
        bar?.finish()
        if output.json {
            try JSONOutput.print(RestoreJSON(snapshot: snap.id.hex, target: target, bytes: result.bytesWritten,
                                             bytesInPlace: skipUnchanged ? result.bytesInPlace : nil, seconds: result.seconds))
        }
        let rate = result.seconds > 0 ? Double(result.bytesWritten) / result.seconds : 0
        let kept = skipUnchanged ? "; \(Format.bytes(result.bytesInPlace)) of data already in place, not written" : ""
        output.note("restore \(snap.id.shortHex)  \(Format.bytes(result.bytesWritten)) to \(target) in \(Format.duration(result.seconds)) (\(Format.bytes(Int64(rate)))/s), verified\(kept)")
    }
}

struct RestoreJSON: Encodable {
    var snapshot: String
    var target: String
    var bytes: UInt64
    /// With --skip-unchanged only.
    var bytesInPlace: UInt64?
    var seconds: Double
}
