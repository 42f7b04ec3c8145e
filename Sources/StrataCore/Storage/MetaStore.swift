import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// What may change about a snapshot after it was taken: tags set or removed later, and protection.
/// Stored as JSON in `meta/<snapshot id>`, replaced atomically; the manifest itself never changes.
public struct SnapshotMeta: Codable, Sendable, Equatable {
    /// Tags set after creation (they override creation tags with the same key).
    public var tags: [String: String] = [:]
    /// Creation tags removed after creation.
    public var removedTags: [String] = []
    /// A protected snapshot cannot be removed, by `rm` or by retention, until it is unprotected.
    public var protected = false

    public init() {}

    var isEmpty: Bool { tags.isEmpty && removedTags.isEmpty && !protected }

    /// The tags people see: creation tags, minus removed ones, overlaid with later ones.
    public func mergedTags(creation: [String: String]) -> [String: String] {
        var out = creation
        for k in removedTags { out[k] = nil }
        for (k, v) in tags { out[k] = v }
        return out
    }
}

/// The `meta/` directory. Changes are read-modify-write under an exclusive lock of `meta/.lock`, so two `tag`
/// commands at once never lose an update.
struct MetaStore {
    let repo: Repository

    private func path(_ id: ObjectID) -> String { FileSystem.join(repo.metaPath, id.hex) }

    func load(_ id: ObjectID) throws -> SnapshotMeta {
        let p = path(id)
        guard FileSystem.exists(p) else { return SnapshotMeta() }
        let stored = try wrap(try FileSystem.readFile(p, limit: 1 << 20), "cannot read \(p)")
        let bytes = try repo.sealer.open(stored, .meta, context: id.hex, what: "metadata of snapshot \(id.shortHex)")
        do {
            return try JSONDecoder().decode(SnapshotMeta.self, from: Data(bytes))
        } catch {
            throw StrataError.corrupt("metadata of snapshot \(id.shortHex) is damaged (\(p))")
        }
    }

    /// All metadata files, by snapshot id (damaged ones are skipped and reported).
    func all() throws -> (meta: [ObjectID: SnapshotMeta], damaged: [(ObjectID, String)]) {
        var out: [ObjectID: SnapshotMeta] = [:]
        var bad: [(ObjectID, String)] = []
        for name in try wrap(try FileSystem.list(repo.metaPath), "cannot list \(repo.metaPath)") {
            guard let id = ObjectID(hex: name) else { continue }
            do { out[id] = try load(id) } catch let e as StrataError { bad.append((id, e.message)) }
        }
        return (out, bad)
    }

    /// True when `meta/<id>` is there.
    func exists(_ id: ObjectID) -> Bool { FileSystem.exists(path(id)) }

    /// Ids whose metadata remains while their manifest does not: left by an `rm` stopped between the two removals,
    /// or by a manifest lost to damage (then a protected one means data the user meant to keep).
    func orphanedIDs() -> [ObjectID] {
        ((try? FileSystem.list(repo.metaPath)) ?? []).compactMap { ObjectID(hex: $0) }
            .filter { !FileSystem.exists(FileSystem.join(repo.snapshotsPath, $0.hex)) }
            .sorted { $0.hex < $1.hex }
    }

    /// Runs `body` holding `meta/.lock` (not reentrant): under it a snapshot's existence is checked and its
    /// metadata, refs or manifest changed by rm, protect, tag and ref add, so that a removal and a change of the same
    /// snapshot cannot interleave (a protect landing between rm's check and its removal would be lost with the
    /// snapshot; a ref or tag added then would name nothing).
    func exclusively<T>(_ body: () throws -> T) throws -> T {
        try wrap(try FileSystem.makeDirectory(repo.metaPath), "cannot create \(repo.metaPath)")
        let lockPath = FileSystem.join(repo.metaPath, ".lock")
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StrataError.io("cannot open \(lockPath)", SystemCallError(call: "open", path: lockPath, errno: errno)) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw StrataError.io("cannot lock \(lockPath)", SystemCallError(call: "flock", path: lockPath, errno: errno))
        }
        return try body()
    }

    /// Applies `change` to a snapshot's metadata atomically and durably, holding `meta/.lock`.
    @discardableResult
    func update(_ id: ObjectID, _ change: (inout SnapshotMeta) throws -> Void) throws -> SnapshotMeta {
        try exclusively { try updateHoldingLock(id, change) }
    }

    /// `update` for a caller inside `exclusively`.
    @discardableResult
    func updateHoldingLock(_ id: ObjectID, _ change: (inout SnapshotMeta) throws -> Void) throws -> SnapshotMeta {
        var meta = try load(id)
        try change(&meta)
        let p = path(id)
        if meta.isEmpty {
            try wrap(try FileSystem.remove(p), "cannot remove \(p)")
            try wrap(try FileSystem.syncDirectory(repo.metaPath), "cannot sync \(repo.metaPath)")
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let bytes = try repo.sealer.seal(Array(try encoder.encode(meta)) + [0x0a], .meta, context: id.hex)
            try wrap(try AtomicFile.write(bytes, to: p, tmpDirectory: repo.tmpPath), "cannot write \(p)")
        }
        return meta
    }

    /// Removes a snapshot's metadata (after its manifest is gone).
    func remove(_ id: ObjectID) throws {
        let p = path(id)
        guard FileSystem.exists(p) else { return }
        try wrap(try FileSystem.remove(p), "cannot remove \(p)")
        try wrap(try FileSystem.syncDirectory(repo.metaPath), "cannot sync \(repo.metaPath)")
    }
}
