import ArgumentParser
import FoundationEssentials
import StrataCore

struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy snapshots, with their tags and descriptions, into another repository.",
        discussion: """
            When both repositories share chunking (the target was made with 'init --copy-chunker-from SOURCE'), \
            only chunks the target lacks travel. Otherwise the copy is complete: the image is re-chunked and sealed \
            with the target's keys, and Strata says so, with the byte count, before it starts.

            Examples:
              strata copy latest --to /mnt/offsite.strata
              strata copy 3f9c2a1b 77e0c4d1 --to /mnt/offsite.strata --to-password-file /root/offsite.pass
              strata copy --all --to /mnt/offsite.strata        # every snapshot; those already there are skipped
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("Snapshots to copy: ids, prefixes, refs or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshots: [String] = []

    @Flag(help: "Copy every snapshot (of --volume, if given), oldest first; those the target has are skipped.")
    var all = false

    @Option(help: ArgumentHelp("The target repository.", valueName: "repo"), completion: .directory)
    var to: String

    @Option(help: ArgumentHelp("The passphrase file of the target repository (else $STRATA_TO_PASSWORD_FILE or a prompt).", valueName: "file"), completion: .file())
    var toPasswordFile: String?

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume; with --all: only this volume's.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @OptionGroup var output: OutputOptions

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        guard all != !snapshots.isEmpty else {
            throw StrataError(.invalidArgument, all ? "give snapshots to copy or --all, not both" : "give the snapshots to copy, or --all; see 'strata copy --help'")
        }
        let source = try repository.open()
        let file = toPasswordFile ?? ProcessInfo.processInfo.environment["STRATA_TO_PASSWORD_FILE"]
        let targetPath = to
        let target = try Repository.open(at: targetPath, passphrase: { try Passphrase.read(file: file, command: nil, prompt: "passphrase of \(targetPath): ", environment: false, sources: "--to-password-file or STRATA_TO_PASSWORD_FILE") })
        if !target.isEncrypted, file != nil {
            throw RepositoryOptions.plainButPassphrase(targetPath, toPasswordFile != nil ? "--to-password-file" : "STRATA_TO_PASSWORD_FILE")
        }
        let list: [Snapshot]
        // With --all, snapshots whose manifest is damaged are named, the others copied, and the exit status says so.
        var damaged: [ObjectID] = []
        if all {
            let found = try SnapshotCatalog(repo: source).list(SnapshotFilter(volume: volume))
            for d in found.damaged { Terminal.warn("\(d.problem); it is not copied") }
            damaged = found.damaged.map(\.id)
            list = found.snapshots.map(\.snapshot).sorted { $0.manifest.createdAt < $1.manifest.createdAt }
            if list.isEmpty {
                output.note("copy: no snapshots\(volume.map { " of volume \($0)" } ?? "") to copy")
                if output.json { try CopyReport.print(CopyResult(), verb: "copy", output: output) }
                try Self.failIfDamaged(damaged)
                return
            }
        } else {
            let resolver = SnapshotResolver(repo: source)
            list = try snapshots.map { try resolver.resolve($0, volume: volume, warn: Terminal.warn) }
        }
        let copier = SnapshotCopier(from: source, to: target)
        try copier.check(list)
        if !copier.isIncremental && !output.quiet {
            let bytes = list.reduce(UInt64(0)) { $0 + $1.manifest.dataBytes }
            Terminal.writeErr("copy: the repositories do not share chunking\(source.isEncrypted || target.isEncrypted ? " and keys" : ""): this is a complete copy of \(Format.bytes(bytes)) (\(bytes) bytes) of data\n")
        }
        let bar = output.reporter(verb: "copy")
        let r: CopyResult
        do { r = try copier.copy(list, progress: bar) } catch { bar?.finish(); throw error }
        bar?.finish()
        try CopyReport.print(r, verb: "copy", output: output)
        try Self.failIfDamaged(damaged)
    }

    /// After a `--all` copy that had to leave damaged snapshots behind: exit 4, so that a mirror job notices.
    static func failIfDamaged(_ damaged: [ObjectID]) throws {
        guard !damaged.isEmpty else { return }
        throw StrataError(.damaged, "\(Format.count(damaged.count, "damaged snapshot")) not copied (\(damaged.map(\.shortHex).joined(separator: ", "))); run 'strata fsck'")
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write snapshots into one self-contained, verifiable bundle file.",
        discussion: """
            The bundle can be sealed under its own passphrase (required for an encrypted repository: encrypted \
            snapshots stay encrypted). 'strata import' adds it to any repository.

            Examples:
              strata export latest vm.bundle
              strata export before-upgrade vm.bundle --bundle-password-file /root/share.pass
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The snapshot to export.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshot: String

    @Argument(help: ArgumentHelp("The bundle file to write (must not exist).", valueName: "file"), completion: .file())
    var file: String

    @Option(help: ArgumentHelp("Seal the bundle under the passphrase in this file.", valueName: "file"), completion: .file())
    var bundlePasswordFile: String?

    @Flag(help: "Seal the bundle under a passphrase asked on the terminal.") var seal = false

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @OptionGroup var output: OutputOptions

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        let repo = try repository.open()
        let snap = try SnapshotResolver(repo: repo).resolve(snapshot, volume: volume, warn: Terminal.warn)
        var secret: String?
        if bundlePasswordFile != nil || seal || repo.isEncrypted {
            secret = try Passphrase.new(file: bundlePasswordFile, sources: "--bundle-password-file")
        }
        let bar = output.reporter(verb: "export")
        let r: CopyResult
        do { r = try Bundle.export([snap], from: repo, to: file, passphrase: secret, progress: bar) } catch { bar?.finish(); throw error }
        bar?.finish()
        let size = (try? FileSystem.status(file))??.size ?? 0
        try CopyReport.print(r, verb: "export", output: output, extra: "\(file), \(Format.bytes(size))\(secret == nil ? "" : ", sealed")")
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add the snapshots of a bundle file to the repository.",
        discussion: """
            The bundle is checked whole (checksum, then every chunk re-hashed) before anything is added.

            Example:
              strata import vm.bundle --bundle-password-file /root/share.pass
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The bundle file.", valueName: "file"), completion: .file())
    var file: String

    @Option(help: ArgumentHelp("The passphrase file of a sealed bundle (else asked on the terminal).", valueName: "file"), completion: .file())
    var bundlePasswordFile: String?

    @OptionGroup var output: OutputOptions

    mutating func run() throws {
        // Signals are caught from the start: one that lands while the repository is opened (a passphrase's key
        // derivation takes ~0.2 s) is seen at the operation's first step and reported, not a silent death.
        Interruption.catchSignals()
        let repo = try repository.openForStoring()
        let file = bundlePasswordFile
        let bar = output.reporter(verb: "import")
        let r: CopyResult
        do {
            // The bundle's passphrase is asked once it is unpacked: the progress line must not sit on the prompt.
            r = try Bundle.import(self.file, into: repo, passphrase: {
                bar?.clear()
                return try Passphrase.read(file: file, command: nil, prompt: "bundle passphrase: ", environment: false, sources: "--bundle-password-file")
            }, expectSealed: file != nil, progress: bar)
        } catch { bar?.finish(); throw error }
        bar?.finish()
        try CopyReport.print(r, verb: "import", output: output)
    }
}

enum CopyReport {
    struct JSON: Encodable {
        struct Pair: Encodable { var source: String; var target: String }
        var snapshots: [Pair]
        var incremental: Bool
        var skipped: Int
        var objectsCopied: Int
        var bytesCopied: Int64
        var wholeFrames: Int
        var storedBytes: Int64
        var seconds: Double
    }

    static func print(_ r: CopyResult, verb: String, output: OutputOptions, extra: String = "") throws {
        if output.json {
            try JSONOutput.print(JSON(snapshots: r.copied.map { .init(source: $0.source.hex, target: $0.target.hex) }, incremental: r.incremental,
                                      skipped: r.skipped, objectsCopied: r.objectsCopied, bytesCopied: r.bytesCopied, wholeFrames: r.wholeFrames, storedBytes: r.storedBytes, seconds: r.seconds))
        } else if verb != "export" {
            for pair in r.copied { Terminal.writeOut(pair.target.hex + "\n") }
        }
        // The summary stays on stderr with --json, as for every verb; -q removes it.
        if !output.quiet {
            let ids = r.copied.map { "\($0.source.shortHex) -> \($0.target.shortHex)" }.joined(separator: ", ")
            Terminal.writeErr("\(verb) \(ids)\(extra.isEmpty ? "" : " (\(extra))"): \(r.incremental ? "incremental" : "complete")\(r.skipped > 0 ? ", \(r.skipped) already there" : ""), \(r.objectsCopied) objects (\(Format.bytes(r.bytesCopied))) moved, \(Format.bytes(r.storedBytes)) stored, in \(Format.duration(r.seconds))\n")
        }
    }
}
