/// Listing and removing snapshots (the manifests; their data stays until gc).
public struct SnapshotCatalog {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// Completed snapshots, newest first, optionally of one volume.
    public func list(volume: String? = nil) throws -> [Snapshot] {
        try SnapshotStore(repo: repo).all().snapshots.filter { volume == nil || $0.manifest.volume == volume }
    }

    /// Removes manifests under the shared lock. Returns the ids removed.
    @discardableResult
    public func remove(_ ids: [ObjectID]) throws -> [ObjectID] {
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let store = SnapshotStore(repo: repo)
        for id in ids { try store.remove(id) }
        return ids
    }
}

/// The version of this build and the repository format it writes.
public enum StrataVersion {
    public static let string = "0.1.0"
    public static let repositoryFormat = RepositoryConfig.currentFormat
}
