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

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"))
    var volume: String?

    mutating func run() throws {
        let repo = try repository.open()
        let resolver = SnapshotResolver(repo: repo)
        // Resolve every name first: a typo in the third removes nothing.
        var ids: [Snapshot] = []
        for s in snapshots {
            let snap = try resolver.resolve(s, volume: volume)
            if !ids.contains(where: { $0.id == snap.id }) { ids.append(snap) }
        }
        let removed = try SnapshotCatalog(repo: repo).remove(ids.map(\.id))
        if !quiet {
            for s in removed { Terminal.writeErr("removed snapshot \(s.shortHex)\n") }
            Terminal.writeErr("run 'strata gc' to free the data no remaining snapshot references\n")
        }
    }
}
