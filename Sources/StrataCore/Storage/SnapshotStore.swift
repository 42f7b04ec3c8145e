/// The `snapshots/` directory: one immutable manifest per file, named by the SHA-256 of its bytes.
struct SnapshotStore {
    let repo: Repository

    /// Called once the shared lock is held by a command that resolved its snapshots before taking it: a snapshot
    /// removed in between (and its data freed by a gc that ran before the lock was taken) is reported as removed,
    /// not as a missing pack, which would read as damage. From here on gc waits for the lock.
    func requireStillThere(_ snapshots: [Snapshot]) throws {
        for s in snapshots where !FileSystem.exists(FileSystem.join(repo.snapshotsPath, s.id.hex)) {
            throw StrataError(.notFound, "snapshot \(s.id.shortHex) was removed (by another command) before it could be read")
        }
    }

    /// Ids of every stored manifest (names that are not 64 hex digits are ignored).
    func ids() throws -> [ObjectID] {
        try wrap(try FileSystem.list(repo.snapshotsPath), "cannot list \(repo.snapshotsPath)")
            .compactMap { ObjectID(hex: $0) }
    }

    /// Loads and verifies one manifest.
    func load(_ id: ObjectID) throws -> Manifest {
        let path = FileSystem.join(repo.snapshotsPath, id.hex)
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path, limit: Manifest.maxEncodedSize)
        } catch let e as SystemCallError where e.errno == ENOENT {
            throw StrataError(.notFound, "snapshot \(id.shortHex) does not exist")
        } catch let e as SystemCallError {
            throw StrataError.io("cannot read snapshot \(id.shortHex)", e)
        }
        guard ObjectID.sha256(bytes) == id else {
            throw StrataError.corrupt("snapshot \(id.shortHex) is damaged: its manifest does not match its id")
        }
        let plain = try repo.sealer.open(bytes, .manifest, what: "snapshot \(id.shortHex)")
        return try Manifest.decode(plain, what: "snapshot \(id.shortHex)")
    }

    /// Every snapshot that loads, newest first, plus those that do not with the reason.
    func all() throws -> (snapshots: [Snapshot], damaged: [(id: ObjectID, problem: String)]) {
        var good: [Snapshot] = []
        var bad: [(ObjectID, String)] = []
        for id in try ids() {
            do {
                good.append(Snapshot(id: id, manifest: try load(id)))
            } catch let e as StrataError where e.code == .damaged || e.code == .unsupportedFormat {
                bad.append((id, e.message))
            } catch let e as StrataError where e.code == .notFound && !FileSystem.exists(FileSystem.join(repo.snapshotsPath, id.hex)) {
                // Removed by an rm running beside this listing: it is gone, not a reason to fail.
                continue
            }
        }
        good.sort { ($0.manifest.createdAt, $0.id) > ($1.manifest.createdAt, $1.id) }
        return (good, bad)
    }

    /// Writes a manifest durably and returns its id. When the write fails with the manifest already in place (the
    /// directory's fsync failed after the rename), the manifest is taken back: the command reports that nothing was
    /// committed, so the snapshot must not be listed either (its data stays, for gc or the next snapshot).
    func save(_ manifest: Manifest) throws -> ObjectID {
        try add(manifest).id
    }

    /// `save`, also telling whether the manifest is new (false: these very bytes were stored already).
    func add(_ manifest: Manifest) throws -> (id: ObjectID, added: Bool) {
        let bytes = try repo.sealer.seal(try manifest.encoded(), .manifest)
        let id = ObjectID.sha256(bytes)
        let path = FileSystem.join(repo.snapshotsPath, id.hex)
        let existed = FileSystem.exists(path)
        do {
            try wrap(try AtomicFile.write(bytes, to: path, tmpDirectory: repo.tmpPath), "cannot write snapshot \(path)")
        } catch {
            if !existed && FileSystem.exists(path) {
                try? FileSystem.remove(path)
                try? FileSystem.syncDirectory(repo.snapshotsPath)
            }
            throw error
        }
        return (id, !existed)
    }

    /// Removes a manifest durably.
    func remove(_ id: ObjectID) throws {
        let path = FileSystem.join(repo.snapshotsPath, id.hex)
        try wrap({
            try FileSystem.remove(path)
            try FileSystem.syncDirectory(repo.snapshotsPath)
        }(), "cannot remove snapshot \(id.shortHex)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
