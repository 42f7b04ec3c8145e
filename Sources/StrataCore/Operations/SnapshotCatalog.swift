import FoundationEssentials

/// A snapshot with what may have changed since it was taken: its tags now, the refs that name it, protection.
public struct SnapshotInfo: Sendable {
    public let snapshot: Snapshot
    /// Creation tags merged with later changes.
    public let tags: [String: String]
    public let refs: [String]
    public let protected: Bool

    public init(snapshot: Snapshot, tags: [String: String], refs: [String], protected: Bool) {
        self.snapshot = snapshot
        self.tags = tags
        self.refs = refs
        self.protected = protected
    }

    public var id: ObjectID { snapshot.id }
    public var manifest: Manifest { snapshot.manifest }
}

/// Which snapshots `log` (and retention) consider.
public struct SnapshotFilter: Sendable {
    public var volume: String?
    /// `key=value` requires that tag; a bare `key` requires the tag with any value. All must match.
    public var tags: [(key: String, value: String?)] = []
    public var since: Date?
    public var until: Date?

    public init(volume: String? = nil, tags: [(key: String, value: String?)] = [], since: Date? = nil, until: Date? = nil) {
        self.volume = volume
        self.tags = tags
        self.since = since
        self.until = until
    }

    /// Parses `key=value` or `key` as given to `--tag`.
    public static func parseTag(_ text: String) throws -> (key: String, value: String?) {
        if text.contains("=") {
            let (k, v) = try Labels.parseTag(text)
            return (k, v)
        }
        try Labels.validateTag(key: text, value: "")
        return (text, nil)
    }

    func matches(_ info: SnapshotInfo) -> Bool {
        if let volume, info.manifest.volume != volume { return false }
        for t in tags {
            guard let v = info.tags[t.key] else { return false }
            if let want = t.value, want != v { return false }
        }
        let date = info.manifest.createdDate
        if let since, date < since { return false }
        if let until, date > until { return false }
        return true
    }
}

/// Listing, labelling, protecting and removing snapshots.
public struct SnapshotCatalog {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// Snapshots matching `filter`, newest first, with their current tags, refs and protection; and the manifests
    /// that cannot be read.
    /// Snapshots whose metadata file (later tags, protection) cannot be read.
    public func damagedMetadata() throws -> [(id: ObjectID, problem: String)] {
        try MetaStore(repo: repo).all().damaged.map { (id: $0.0, problem: $0.1) }
    }

    public func list(_ filter: SnapshotFilter = SnapshotFilter()) throws -> (snapshots: [SnapshotInfo], damaged: [(id: ObjectID, problem: String)]) {
        let all = try SnapshotStore(repo: repo).all()
        let meta = try MetaStore(repo: repo).all().meta
        var refsBySnapshot: [ObjectID: [String]] = [:]
        for r in try RefStore(repo: repo).all() {
            if let t = r.target { refsBySnapshot[t, default: []].append(r.name) }
        }
        let infos = all.snapshots.map { s in
            let m = meta[s.id] ?? SnapshotMeta()
            return SnapshotInfo(snapshot: s, tags: m.mergedTags(creation: s.manifest.tags), refs: refsBySnapshot[s.id] ?? [],
                                protected: m.protected)
        }
        return (infos.filter { filter.matches($0) }, all.damaged)
    }

    /// One snapshot with its current tags, refs and protection.
    public func info(_ snapshot: Snapshot) throws -> SnapshotInfo {
        let m = try MetaStore(repo: repo).load(snapshot.id)
        let refs = try RefStore(repo: repo).all().filter { $0.target == snapshot.id }.map(\.name)
        return SnapshotInfo(snapshot: snapshot, tags: m.mergedTags(creation: snapshot.manifest.tags), refs: refs, protected: m.protected)
    }

    /// Sets tags (`set`) and removes tags (`remove`) after creation. Returns the tags now.
    @discardableResult
    public func tag(_ snapshot: Snapshot, set: [String: String], remove: [String]) throws -> [String: String] {
        if let both = remove.first(where: { set[$0] != nil }) {
            throw StrataError(.invalidArgument, "tag '\(both)' is both set and removed; give one or the other")
        }
        for (k, v) in set { try Labels.validateTag(key: k, value: v) }
        for k in remove { try Labels.validateTag(key: k, value: "") }
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let store = MetaStore(repo: repo)
        let meta = try store.exclusively { try requireExists(snapshot.id); return try store.updateHoldingLock(snapshot.id) { m in
            let current = m.mergedTags(creation: snapshot.manifest.tags)
            for k in remove where current[k] == nil {
                throw StrataError(.notFound, "snapshot \(snapshot.id.shortHex) has no tag '\(k)'")
            }
            for k in remove {
                m.tags[k] = nil
                if snapshot.manifest.tags[k] != nil && !m.removedTags.contains(k) { m.removedTags.append(k) }
            }
            for (k, v) in set {
                m.removedTags.removeAll { $0 == k }
                if snapshot.manifest.tags[k] == v { m.tags[k] = nil } else { m.tags[k] = v }
            }
            m.removedTags.sort()
        } }
        return meta.mergedTags(creation: snapshot.manifest.tags)
    }

    /// Protects or releases a snapshot.
    /// - Returns: true when releasing it replaced damaged metadata (its later tags are lost; those it was taken with
    ///   stay): the way out for a snapshot whose protection could not be read, which rm refuses to remove.
    @discardableResult
    public func setProtected(_ id: ObjectID, _ protected: Bool) throws -> Bool {
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let store = MetaStore(repo: repo)
        return try store.exclusively {
            // Protection can be released from a snapshot whose manifest was lost (its metadata remains), so that
            // gc, which stops while such a protection exists, can go on.
            if protected || !store.exists(id) { try requireExists(id) }
            do {
                try store.updateHoldingLock(id) { $0.protected = protected }
                return false
            } catch let e as StrataError where e.code == .damaged && !protected {
                try store.remove(id)
                return true
            }
        }
    }

    /// Points a ref at a snapshot. An existing ref that names another snapshot is moved only with `force`.
    public func addRef(_ name: String, to id: ObjectID, force: Bool) throws {
        try RefStore.validate(name)
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        try MetaStore(repo: repo).exclusively {
            try requireExists(id)
            let refs = RefStore(repo: repo)
            if let existing = try? refs.target(of: name), existing != id, !force {
                throw StrataError(.refused, "ref '\(name)' already points to snapshot \(existing.shortHex); use --force to move it")
            }
            try refs.set(name, to: id)
        }
    }

    /// Removes a ref (the snapshot stays).
    public func removeRef(_ name: String) throws {
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        try RefStore(repo: repo).remove(name)
    }

    private func requireExists(_ id: ObjectID) throws {
        guard FileSystem.exists(FileSystem.join(repo.snapshotsPath, id.hex)) else {
            throw StrataError(.notFound, "snapshot \(id.shortHex) does not exist")
        }
    }

    /// Removes manifests under the shared lock; their data stays until gc. A protected snapshot is refused. A snapshot
    /// that a ref names is refused unless `force`, which removes those refs too (before the manifest, so that a crash
    /// in between leaves no ref pointing nowhere). A damaged ref might name any snapshot, so while one exists
    /// nothing is removed without `force` (as a damaged protection flag refuses). Every id is checked before
    /// anything is removed.
    /// - Returns: the ids removed and the refs dropped.
    @discardableResult
    public func remove(_ ids: [ObjectID], force: Bool = false, dryRun: Bool = false) throws -> (removed: [ObjectID], refsDropped: [String]) {
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        // Checked and removed under meta/.lock: a protect, tag or ref add of the same snapshot waits, then finds it
        // gone (or lands first, and is seen here).
        if dryRun { return try checkAndRemove(ids, force: force, dryRun: true) }
        return try MetaStore(repo: repo).exclusively { try checkAndRemove(ids, force: force, dryRun: false) }
    }

    private func checkAndRemove(_ ids: [ObjectID], force: Bool, dryRun: Bool) throws -> (removed: [ObjectID], refsDropped: [String]) {
        let refs = try RefStore(repo: repo).all()
        if let damaged = refs.first(where: { $0.target == nil }), !force, !ids.isEmpty {
            throw StrataError(.damaged, "ref '\(damaged.name)' is damaged: which snapshot it names is unknown, so nothing is removed; run 'strata fsck --repair' to drop it, or use --force")
        }
        let metaStore = MetaStore(repo: repo)
        var dropping: [String] = []
        for id in ids {
            try requireExists(id)  // an rm that ran meanwhile removed it
            let meta: SnapshotMeta
            do { meta = try metaStore.load(id) } catch let e as StrataError where e.code == .damaged {
                throw StrataError(.damaged, "\(e.message): whether snapshot \(id.shortHex) is protected is unknown, so it is not removed; 'strata unprotect \(id.shortHex)' replaces the metadata (its later tags are lost), then it can be removed")
            }
            if meta.protected {
                throw StrataError(.refused, "snapshot \(id.shortHex) is protected; run 'strata unprotect \(id.shortHex)' first")
            }
            let naming = refs.filter { $0.target == id }.map(\.name)
            if !naming.isEmpty && !force {
                let list = naming.map { "'\($0)'" }.joined(separator: ", ")
                throw StrataError(.refused, "snapshot \(id.shortHex) is named by ref \(list); use --force to remove it and the ref")
            }
            dropping += naming
        }
        if dryRun { return (ids, dropping) }
        // Refs first, then each manifest, then its metadata: a crash in between leaves a snapshot without its ref
        // (rm again finishes), or metadata without its snapshot (a note; gc and fsck --repair remove it), never a
        // ref that points nowhere, which fsck counts as damage.
        let refStore = RefStore(repo: repo)
        for name in dropping { try refStore.remove(name) }
        let store = SnapshotStore(repo: repo)
        for id in ids {
            try store.remove(id)
            try metaStore.remove(id)
        }
        return (ids, dropping)
    }
}

/// The version of this build and the repository format it writes.
public enum StrataVersion {
    public static let string = "0.1.0"
    public static let repositoryFormat = RepositoryConfig.currentFormat
}
