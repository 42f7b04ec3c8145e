import ArgumentParser
import FoundationEssentials
import StrataCore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new repository.",
        discussion: """
            The directory must not exist or be empty. Chunking and compression are fixed for the repository's life.

            Examples:
              strata init /srv/images.strata
              strata init --chunker fixed:512K /srv/ebs-like.strata
            """)

    @Argument(help: ArgumentHelp("Where to create the repository (default: $STRATA_REPO).", valueName: "path"), completion: .directory)
    var path: String?

    /// `-r PATH` as every other verb takes it (`strata -r R init`, an alias): the same as the path argument.
    @Option(name: [.short, .customLong("repo")], help: .hidden)
    var repo: String?

    @Option(help: ArgumentHelp("cdc:SIZE (content-defined, 4 KiB-aligned, average SIZE) or fixed:SIZE.", valueName: "kind:size"))
    var chunker: String = "cdc:16K"

    @Option(help: ArgumentHelp("zstd level for pack frames, 1 (fastest) to 19.", valueName: "level"))
    var compressionLevel: Int = CompressionParameters.defaultLevel

    @Option(help: ArgumentHelp("Uncompressed bytes per zstd frame: 64K to 16M (default 2M).", valueName: "size"))
    var frameSize: String = "2M"

    @Option(help: ArgumentHelp("The repository format: 2 (default), or 1 for strata versions that read only format 1 (format 1 packs also list every chunk id: ~40 more bytes per chunk).", valueName: "n"))
    var format: Int = RepositoryConfig.currentFormat

    @Option(help: ArgumentHelp("How many snapshots may run at once (default 5).", valueName: "n"))
    var concurrentSnapshots: Int?

    @Flag(help: "Encrypt everything stored (asks for a passphrase twice, or reads --password-file).")
    var encrypt = false

    @Option(help: ArgumentHelp("The cipher of an encrypted repository: aes-256-gcm (default) or chacha20-poly1305.", valueName: "cipher"))
    var cipher: String = ObjectSealer.Scheme.aes256gcm.rawValue

    @Option(help: ArgumentHelp("Share chunking (and, encrypted, the chunk id and cut keys) with this repository, so that 'copy' between them moves only missing chunks.", valueName: "repo"), completion: .directory)
    var copyChunkerFrom: String?

    @OptionGroup var passphrase: PassphraseOptions

    @Option(help: ArgumentHelp("The passphrase file of the --copy-chunker-from repository.", valueName: "file"), completion: .file())
    var fromPasswordFile: String?

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    func frameBytes() throws -> Int {
        guard let n = ByteSize.parse(frameSize) else {
            throw StrataError(.invalidArgument, "frame size '\(frameSize)' is not valid: use a size like 1M or 512K")
        }
        return n
    }

    mutating func run() throws {
        func same(_ a: String, _ b: String) -> Bool {
            URL(fileURLWithPath: FileSystem.absolute(a)).standardizedFileURL.path
                == URL(fileURLWithPath: FileSystem.absolute(b)).standardizedFileURL.path
        }
        if let path, let repo, !same(path, repo) {
            throw StrataError(.invalidArgument, "two repository paths given ('\(Labels.printable(repo))' with -r and '\(Labels.printable(path))'): give one")
        }
        guard let target = path ?? repo ?? ProcessInfo.processInfo.environment["STRATA_REPO"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw StrataError(.invalidArgument, "no repository path given: strata init PATH (or set STRATA_REPO)")
        }
        let chunkerParameters = try ChunkerParameters.parse(chunker)
        guard let scheme = ObjectSealer.Scheme(rawValue: cipher), scheme != .none else {
            throw StrataError(.invalidArgument, "cipher '\(cipher)' is not known: use aes-256-gcm or chacha20-poly1305")
        }
        let fromFile = fromPasswordFile
        let source = try copyChunkerFrom.map { path in
            try Repository.open(at: path, passphrase: { try Passphrase.read(file: fromFile, command: nil, prompt: "passphrase of \(path): ", environment: false, sources: "--from-password-file") })
        }
        let secret = encrypt ? try Passphrase.new(file: passphrase.passwordFile ?? ProcessInfo.processInfo.environment["STRATA_PASSWORD_FILE"],
                                                  command: passphrase.passwordCommand) : nil
        let repo = try Repository.create(at: target, chunker: chunkerParameters,
                                         compression: CompressionParameters(level: compressionLevel, frameSize: try frameBytes()),
                                         concurrentSnapshots: concurrentSnapshots, encryption: encrypt ? scheme : .none,
                                         passphrase: secret, chunkingFrom: source, format: format)
        if !quiet {
            let sealing = repo.isEncrypted ? ", encrypted with \(repo.config.encryption)" : ""
            let sharing = source.map { ", sharing chunking with \($0.path)" } ?? ""
            Terminal.writeErr("created repository \(repo.path) (format \(repo.config.format), chunker \(repo.config.chunker), zstd level \(repo.config.compression.level)\(sealing)\(sharing))\n")
        }
    }
}
