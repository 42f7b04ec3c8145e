/// Turns what a user typed into a snapshot: a full id, a unique prefix of at least 4 hex digits, a ref name,
/// or `latest` (the newest snapshot, or the newest of a volume).
public struct SnapshotResolver {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// - Throws: `notFound` when nothing matches, `ambiguous` when a prefix matches several snapshots.
    public func resolve(_ spec: String, volume: String? = nil) throws -> Snapshot {
        let store = SnapshotStore(repo: repo)
        if spec == "latest" {
            let all = try store.all().snapshots.filter { volume == nil || $0.manifest.volume == volume }
            guard let newest = all.first else {
                if let volume { throw StrataError(.notFound, "volume '\(volume)' has no snapshots") }
                throw StrataError(.notFound, "the repository has no snapshots")
            }
            return newest
        }
        let lower = spec.lowercased()
        if let id = ObjectID(hex: lower) {
            return Snapshot(id: id, manifest: try store.load(id))
        }
        if let target = try RefStore(repo: repo).target(of: spec) {
            do {
                return Snapshot(id: target, manifest: try store.load(target))
            } catch let e as StrataError where e.code == .notFound {
                throw StrataError(.notFound, "ref '\(spec)' points to snapshot \(target.shortHex), which does not exist")
            }
        }
        guard Hex.isHex(Substring(lower)) else {
            throw StrataError(.notFound, "snapshot '\(spec)' not found: no ref has that name")
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
        return Snapshot(id: matches[0], manifest: try store.load(matches[0]))
    }
}
