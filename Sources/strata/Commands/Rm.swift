import ArgumentParser
import StrataCore

struct Rm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove snapshots (their manifests); 'gc' frees the data no other snapshot needs.",
        discussion: """
            Examples:
              strata rm a1b2c3d4
              strata rm a1b2c3d4 e5f6a7b8 && strata gc
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("Snapshots to remove: ids, prefixes, ref names or 'latest'.", valueName: "snapshot"))
    var snapshots: [String]

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    @Option(help: ArgumentHelp("Only snapshots of this volume ('latest' is the newest of it).", valueName: "name"))
    var volume: String?

    @Flag(help: "Also remove snapshots that refs name, and those refs.")
    var force = false

    mutating func run() throws {
        let repo = try repository.open()
        let resolver = SnapshotResolver(repo: repo)
        // Resolve every name first: a typo in the third removes nothing. A damaged manifest can still be removed
        // by its id or prefix.
        var ids: [ObjectID] = []
        for s in snapshots {
            let id = s == "latest" || volume != nil ? try resolver.resolve(s, volume: volume).id : try resolver.resolveID(s)
            if !ids.contains(id) { ids.append(id) }
        }
        let (removed, refs) = try SnapshotCatalog(repo: repo).remove(ids, force: force)
        if !quiet {
            for s in removed { Terminal.writeErr("removed snapshot \(s.shortHex)\n") }
            for r in refs { Terminal.writeErr("removed ref '\(r)'\n") }
            Terminal.writeErr("run 'strata gc' to free the data no remaining snapshot references\n")
        }
    }
}
