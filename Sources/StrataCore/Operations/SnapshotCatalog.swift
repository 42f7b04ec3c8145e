/// Listing and removing snapshots (the manifests; their data stays until gc).
public struct SnapshotCatalog {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// Completed snapshots, newest first, optionally of one volume, and the manifests that cannot be read.
    public func list(volume: String? = nil) throws -> (snapshots: [Snapshot], damaged: [(id: ObjectID, problem: String)]) {
        let all = try SnapshotStore(repo: repo).all()
        return (all.snapshots.filter { volume == nil || $0.manifest.volume == volume }, all.damaged)
    }

    /// Removes manifests under the shared lock; their data stays until gc. A snapshot that a ref names is refused
    /// unless `force`, which removes those refs too (after the manifest, so a crash never leaves a ref without
    /// its snapshot for long: fsck reports and `fsck --repair` drops such refs). Every id is checked before
    /// anything is removed.
    /// - Returns: the ids removed and the refs dropped.
    @discardableResult
    public func remove(_ ids: [ObjectID], force: Bool = false) throws -> (removed: [ObjectID], refsDropped: [String]) {
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let refs = try RefStore(repo: repo).all()
        var dropping: [String] = []
        for id in ids {
            let naming = refs.filter { $0.target == id }.map(\.name)
            if !naming.isEmpty && !force {
                let list = naming.map { "'\($0)'" }.joined(separator: ", ")
                throw StrataError(.refused, "snapshot \(id.shortHex) is named by ref \(list); use --force to remove it and the ref")
            }
            dropping += naming
        }
        let store = SnapshotStore(repo: repo)
        for id in ids { try store.remove(id) }
        let refStore = RefStore(repo: repo)
        for name in dropping { try refStore.remove(name) }
        return (ids, dropping)
    }
}

/// The version of this build and the repository format it writes.
public enum StrataVersion {
    public static let string = "0.1.0"
    public static let repositoryFormat = RepositoryConfig.currentFormat
}
