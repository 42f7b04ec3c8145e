import ArgumentParser
import Foundation
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

    @Option(help: ArgumentHelp("cdc:SIZE (content-defined, 4 KiB-aligned, average SIZE) or fixed:SIZE.", valueName: "kind:size"))
    var chunker: String = "cdc:16K"

    @Option(help: ArgumentHelp("zstd level for pack frames, 1 (fastest) to 19.", valueName: "level"))
    var compressionLevel: Int = CompressionParameters.defaultLevel

    @Option(help: ArgumentHelp("How many snapshots may run at once (default 5).", valueName: "n"))
    var concurrentSnapshots: Int?

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    mutating func run() throws {
        guard let target = path ?? ProcessInfo.processInfo.environment["STRATA_REPO"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw StrataError(.invalidArgument, "no repository path given: strata init PATH (or set STRATA_REPO)")
        }
        let chunkerParameters = try ChunkerParameters.parse(chunker)
        let repo = try Repository.create(at: target, chunker: chunkerParameters,
                                         compression: CompressionParameters(level: compressionLevel),
                                         concurrentSnapshots: concurrentSnapshots)
        if !quiet {
            Terminal.writeErr("created repository \(repo.path) (format \(repo.config.format), chunker \(repo.config.chunker), zstd level \(repo.config.compression.level))\n")
        }
    }
}
