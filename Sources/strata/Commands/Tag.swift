import ArgumentParser
import StrataCore

struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set or remove a snapshot's tags after it was taken.",
        discussion: """
            Later tags live in the repository's mutable metadata; the snapshot's manifest (and its id) never \
            changes. 'log' and 'show' present the merged view.

            Examples:
              strata tag 3f9c2a1b env=prod owner=ops
              strata tag latest --remove env
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The snapshot: id, prefix, ref or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshot: String

    @Argument(help: ArgumentHelp("Tags to set.", valueName: "key=value"))
    var tags: [String] = []

    @Option(name: .customLong("remove"), help: ArgumentHelp("A tag key to remove (repeatable).", valueName: "key"))
    var remove: [String] = []

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    mutating func run() throws {
        guard !tags.isEmpty || !remove.isEmpty else {
            throw StrataError(.invalidArgument, "give tags to set (key=value) or --remove KEY")
        }
        var set: [String: String] = [:]
        for t in tags {
            guard t.contains("=") else { throw StrataError(.invalidArgument, "tag '\(t)' is not key=value (to remove a tag: --remove \(t))") }
            let (k, v) = try Labels.parseTag(t)
            set[k] = v
        }
        let repo = try repository.open()
        let snap = try SnapshotResolver(repo: repo).resolve(snapshot, volume: volume, warn: Terminal.warn)
        let now = try SnapshotCatalog(repo: repo).tag(snap, set: set, remove: remove)
        if !quiet { Terminal.writeErr("snapshot \(snap.id.shortHex) tags: \(now.isEmpty ? "none" : Format.tags(now))\n") }
    }
}

struct Protect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Protect snapshots: rm and retention refuse to remove them until unprotected.",
        discussion: """
            Examples:
              strata protect 3f9c2a1b
              strata unprotect 3f9c2a1b
            """)

    @OptionGroup var target: ProtectionTarget

    mutating func run() throws {
        try target.apply(protect: true)
    }
}

struct Unprotect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Release protected snapshots so that they can be removed.",
        discussion: """
            Example:
              strata unprotect 3f9c2a1b && strata rm 3f9c2a1b
            """)

    @OptionGroup var target: ProtectionTarget

    mutating func run() throws {
        try target.apply(protect: false)
    }
}

/// What `protect` and `unprotect` share: the snapshots, and how to change them.
struct ProtectionTarget: ParsableArguments {
    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("Snapshots: ids, prefixes, refs or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshots: [String]

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    func apply(protect: Bool) throws {
        let repo = try repository.open()
        let resolver = SnapshotResolver(repo: repo)
        // Releasing needs no manifest: a damaged or lost one must not keep a snapshot protected for good.
        let ids = try snapshots.map {
            protect || $0 == "latest" || volume != nil ? try resolver.resolve($0, volume: volume).id
                : try resolver.resolveID($0, orphans: true)
        }
        for id in ids {
            if try SnapshotCatalog(repo: repo).setProtected(id, protect) {
                Terminal.warn("the metadata of snapshot \(id.shortHex) was damaged and is replaced: the tags set after it was taken are lost")
            }
            if !quiet { Terminal.writeErr("snapshot \(id.shortHex) is \(protect ? "protected" : "no longer protected")\n") }
        }
    }
}
