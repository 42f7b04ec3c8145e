import ArgumentParser
import StrataCore

struct Ref: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Name snapshots with refs (git-style tags) usable wherever a snapshot is expected.",
        discussion: """
            Examples:
              strata ref add before-upgrade 3f9c2a1b
              strata restore before-upgrade vm.img
              strata ref list --json
              strata ref rm before-upgrade
            """,
        subcommands: [RefAdd.self, RefRemove.self, RefList.self])
}

struct RefAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Point a ref at a snapshot.",
        discussion: """
            Examples:
              strata ref add before-upgrade 3f9c2a1b
              strata ref add release/v1 latest --volume vm.img
              strata ref add before-upgrade latest --force
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The ref name (git's rules: no '..', no spaces, no leading or trailing '/').", valueName: "name"))
    var name: String

    @Argument(help: ArgumentHelp("The snapshot: id, prefix, ref or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshot: String

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(help: "Move the ref if it already points to another snapshot.")
    var force = false

    mutating func run() throws {
        let repo = try repository.open()
        try RefStore.validate(name)
        let snap = try SnapshotResolver(repo: repo).resolve(snapshot, volume: volume, warn: Terminal.warn)
        try SnapshotCatalog(repo: repo).addRef(name, to: snap.id, force: force)
        Terminal.writeErr("ref '\(name)' -> \(snap.id.shortHex)\n")
    }
}

struct RefRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove refs (the snapshots stay).",
        discussion: """
            Examples:
              strata ref rm before-upgrade
              strata ref rm release/v1 release/v2
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("Ref names.", valueName: "name"), completion: Completions.refs)
    var names: [String]

    mutating func run() throws {
        let repo = try repository.open()
        for n in names {
            try SnapshotCatalog(repo: repo).removeRef(n)
            Terminal.writeErr("removed ref '\(n)'\n")
        }
    }
}

struct RefList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List refs and the snapshots they name.",
        discussion: """
            Examples:
              strata ref list
              strata ref list --json
            """)

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Print the list as JSON on stdout.")
    var json = false

    struct Entry: Encodable {
        var name: String
        var snapshot: String?
        var volume: String?
        var createdAt: String?
    }

    mutating func run() throws {
        let repo = try repository.open()
        let (infos, damaged) = try SnapshotCatalog(repo: repo).list()
        let byID = Dictionary(uniqueKeysWithValues: infos.map { ($0.id, $0) })
        let damagedIDs = Set(damaged.map(\.id))
        let refs = try RefStore(repo: repo).all()
        let entries = refs.map { r in
            Entry(name: r.name, snapshot: r.target?.hex, volume: r.target.flatMap { byID[$0]?.manifest.volume },
                  createdAt: r.target.flatMap { byID[$0]?.manifest.createdAt })
        }
        if json {
            try JSONOutput.print(entries)
            return
        }
        var rows = [["REF", "SNAPSHOT", "VOLUME", "TIME"]]
        for e in entries {
            let time = e.createdAt.flatMap(Timestamp.parse).map(Format.localTime) ?? ""
            // A damaged ref names no snapshot; a dangling one names a snapshot the repository does not have; a
            // snapshot whose manifest cannot be read is there but damaged ('strata fsck' says more).
            let target = e.snapshot.flatMap { ObjectID(hex: $0) }
            let volume = e.snapshot == nil ? "-"
                : e.volume ?? (target.map { damagedIDs.contains($0) } == true ? "(damaged snapshot)" : "(no such snapshot)")
            rows.append([e.name, e.snapshot.map { String($0.prefix(12)) } ?? "(damaged)", volume, time])
        }
        Terminal.writeOut(Format.table(rows))
    }
}
