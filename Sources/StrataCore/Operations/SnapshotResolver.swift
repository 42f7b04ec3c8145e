/// Turns what a user typed into a snapshot: a full id, a unique prefix of at least 4 hex digits, a ref name,
/// or `latest` (the newest snapshot, or the newest of a volume). A ref name is tried before a prefix.
public struct SnapshotResolver {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// Resolves and loads a snapshot. With `volume`, the snapshot must be of that volume (`latest` picks the
    /// newest of it).
    /// - Throws: `notFound` when nothing matches, `ambiguous` when a prefix matches several snapshots,
    ///   `invalidArgument` when the snapshot is of another volume, `damaged` when its manifest is.
    /// - Parameter warn: told, for `latest`, about each snapshot whose manifest cannot be read: it might be the newest
    ///   (its volume and time are unknown), so the one returned may be older than the user thinks.
    public func resolve(_ spec: String, volume: String? = nil, warn: (String) -> Void = { _ in }) throws -> Snapshot {
        let store = SnapshotStore(repo: repo)
        if spec == "latest" {
            let (snapshots, damaged) = try store.all()
            for d in damaged {
                warn("\(d.problem); 'latest' was chosen without it ('strata fsck' reports it)")
            }
            let all = snapshots.filter { volume == nil || $0.manifest.volume == volume }
            guard let newest = all.first else {
                if let volume { throw StrataError(.notFound, "volume '\(volume)' has no snapshots") }
                throw StrataError(.notFound, "the repository has no snapshots")
            }
            // Snapshots of several volumes taken at one point in time (`snap a.img b.img`) are all the newest: which
            // one a restore should write is the user's to say.
            let together = all.prefix { $0.manifest.createdAt == newest.manifest.createdAt }
            if volume == nil, Set(together.map(\.manifest.volume)).count > 1 {
                let shown = together.map { "\($0.id.shortHex) (\($0.manifest.volume))" }.joined(separator: ", ")
                throw StrataError(.ambiguous, "'latest' is ambiguous: snapshots \(shown) were taken together; give --volume")
            }
            return newest
        }
        let id = try resolveID(spec)
        let manifest = try store.load(id)
        if let volume, manifest.volume != volume {
            throw StrataError(.invalidArgument, "snapshot \(id.shortHex) is of volume '\(manifest.volume)', not '\(volume)'")
        }
        return Snapshot(id: id, manifest: manifest)
    }

    /// Resolves a name to a snapshot id without reading the manifest (so that a damaged one can still be named,
    /// for example to remove it). `latest` is not accepted here.
    /// - Parameter orphans: also match the ids of metadata left without a manifest (a protected snapshot whose
    ///   manifest was lost must still be nameable, to unprotect it).
    public func resolveID(_ spec: String, orphans: Bool = false) throws -> ObjectID {
        do {
            return try resolveManifestID(spec)
        } catch let e as StrataError where orphans && e.code == .notFound {
            let lower = spec.lowercased()
            guard lower.count >= 4, Hex.isHex(Substring(lower)) else { throw e }
            let matches = MetaStore(repo: repo).orphanedIDs().filter { $0.hex.hasPrefix(lower) }
            guard matches.count == 1 else { throw e }
            return matches[0]
        }
    }

    private func resolveManifestID(_ spec: String) throws -> ObjectID {
        let store = SnapshotStore(repo: repo)
        let lower = spec.lowercased()
        if let id = ObjectID(hex: lower) {
            guard FileSystem.exists(FileSystem.join(repo.snapshotsPath, id.hex)) else {
                throw StrataError(.notFound, "snapshot \(id.shortHex) does not exist")
            }
            return id
        }
        if let target = try RefStore(repo: repo).target(of: spec) {
            guard FileSystem.exists(FileSystem.join(repo.snapshotsPath, target.hex)) else {
                throw StrataError(.notFound, "ref '\(spec)' points to snapshot \(target.shortHex), which does not exist")
            }
            return target
        }
        guard Hex.isHex(Substring(lower)) else {
            throw StrataError(.notFound, "snapshot '\(spec)' not found: it is not an id and no ref has that name")
        }
        guard lower.count >= 4 else {
            throw StrataError(.invalidArgument, "snapshot '\(spec)' is too short: give at least 4 hex digits")
        }
        let matches = try store.ids().filter { $0.hex.hasPrefix(lower) }
        if matches.isEmpty { throw StrataError(.notFound, "snapshot '\(spec)' not found") }
        if matches.count > 1 {
            let shown = matches.prefix(5).map { $0.shortHex + "…" }.joined(separator: ", ")
            throw StrataError(.ambiguous, "snapshot '\(spec)' is ambiguous: matches \(shown)")
        }
        return matches[0]
    }
}
