/// What one snapshot costs, now.
public struct SnapshotUsage: Sendable {
    /// Chunks (with repeats) and their bytes: the snapshot's data size without zero runs.
    public var chunks: Int = 0
    /// Distinct chunks the snapshot references, and their uncompressed bytes.
    public var uniqueChunks: Int = 0
    public var uniqueBytes: Int64 = 0
    /// Objects (chunks and map nodes) only this snapshot references: what `rm` of it alone and then `gc` would free.
    public var exclusiveObjects: Int = 0
    /// Uncompressed bytes of those objects.
    public var exclusiveBytes: Int64 = 0
    /// Of those, the uncompressed bytes of chunks (image data; the rest is chunk-map nodes).
    public var exclusiveChunkBytes: Int64 = 0
    /// Their share of the packs' compressed bytes (each object's length scaled by its frame's compression ratio).
    public var exclusiveStoredBytes: Int64 = 0
    /// Other snapshots whose maps could not be read all the way: the exclusive figures may be too high (objects
    /// they share with this one could not be seen).
    public var unreadableOthers: [(id: ObjectID, problem: String)] = []
}

/// Repository totals: what is stored, how much deduplication and compression save, per volume.
public struct RepositoryUsage: Sendable {
    public struct Volume: Sendable {
        public var name: String
        public var snapshots = 0
        public var logicalBytes: Int64 = 0
        public var dataBytes: Int64 = 0
        /// Uncompressed bytes of the distinct chunks this volume's snapshots reference.
        public var uniqueBytes: Int64 = 0
        public var newest: String = ""
    }

    public var snapshots = 0
    /// Sum of the snapshots' image sizes.
    public var logicalBytes: Int64 = 0
    /// Sum of the snapshots' non-zero bytes.
    public var dataBytes: Int64 = 0
    /// Distinct chunks all snapshots reference, and their uncompressed bytes.
    public var uniqueChunks = 0
    public var uniqueBytes: Int64 = 0
    /// Their compressed share of the packs.
    public var uniqueStoredBytes: Int64 = 0
    public var mapNodes = 0
    public var packs = 0
    /// Bytes of pack files on disk (live and dead data).
    public var packBytes: Int64 = 0
    /// Bytes of index files, manifests, refs and metadata.
    public var metadataBytes: Int64 = 0
    /// Uncompressed bytes in packs that no snapshot references (gc frees them, or keeps them when the pack is mostly live).
    public var unreferencedBytes: Int64 = 0
    /// Snapshots whose maps could not be read all the way (their figures are partial).
    public var unreadable: [(id: ObjectID, problem: String)] = []
    public var volumes: [Volume] = []

    /// Non-zero data across snapshots ÷ distinct data: what deduplication saves.
    public var deduplicationRatio: Double { uniqueBytes > 0 ? Double(dataBytes) / Double(uniqueBytes) : 1 }
    /// Distinct data ÷ its compressed size.
    public var compressionRatio: Double { uniqueStoredBytes > 0 ? Double(uniqueBytes) / Double(uniqueStoredBytes) : 1 }
    /// Everything on disk.
    public var storedBytes: Int64 { packBytes + metadataBytes }
}

/// Computes what snapshots cost. Reads chunk maps only, never chunk data; shared subtrees are walked once.
public struct Statistics {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// A snapshot's usage now: its unique data and what removing it alone would free.
    public func usage(of snapshot: Snapshot) throws -> SnapshotUsage {
        let lock = try? repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        try SnapshotStore(repo: repo).requireStillThere([snapshot])
        let index = try ChunkIndex.load(repo, strict: false)
        let reader = ObjectReader(repo: repo, index: index)
        let others = try SnapshotStore(repo: repo).all().snapshots.filter { $0.id != snapshot.id }
        let (otherLive, unreadable) = try LiveSet.mark(roots: others.map { ($0.id, $0.manifest.rootID!) }, reader: reader,
                                                       tolerant: true)
        var mine = ObjectMarks(index: index)
        var usage = SnapshotUsage()
        usage.unreadableOthers = unreadable
        usage.chunks = try mine.markReachable(from: snapshot.manifest.rootID!, reader: reader)
        mine.forEachIndexed { slot, loc in
            if loc.kind == .chunk {
                usage.uniqueChunks += 1
                usage.uniqueBytes += Int64(loc.length)
            }
            if !otherLive.marks.contains(slot: slot) {
                usage.exclusiveObjects += 1
                usage.exclusiveBytes += Int64(loc.length)
                if loc.kind == .chunk { usage.exclusiveChunkBytes += Int64(loc.length) }
                usage.exclusiveStoredBytes += storedShare(loc)
            }
        }
        return usage
    }

    /// Repository totals.
    public func repositoryUsage() throws -> RepositoryUsage {
        let lock = try? repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let index = try ChunkIndex.load(repo, strict: false)
        let reader = ObjectReader(repo: repo, index: index)
        let snapshots = try SnapshotStore(repo: repo).all().snapshots
        var u = RepositoryUsage()
        var volumes: [String: (RepositoryUsage.Volume, ObjectMarks)] = [:]
        for s in snapshots {
            let m = s.manifest
            u.snapshots += 1
            u.logicalBytes += Int64(m.size)
            u.dataBytes += Int64(m.dataBytes)
            var v = volumes[m.volume] ?? (RepositoryUsage.Volume(name: m.volume), ObjectMarks(index: index))
            v.0.snapshots += 1
            v.0.logicalBytes += Int64(m.size)
            v.0.dataBytes += Int64(m.dataBytes)
            if m.createdAt > v.0.newest { v.0.newest = m.createdAt }
            do {
                try v.1.markReachable(from: m.rootID!, reader: reader)
            } catch let e as StrataError where e.code == .damaged {
                // One unreadable snapshot does not hide the others' figures; its objects seen so far count.
                u.unreadable.append((s.id, "snapshot \(s.id.shortHex) cannot be read (\(e.message))"))
            }
            volumes[m.volume] = v
        }
        var all = ObjectMarks(index: index)
        for (_, v) in volumes { all.formUnion(v.1) }
        all.forEachIndexed { _, loc in
            if loc.kind == .chunk {
                u.uniqueChunks += 1
                u.uniqueBytes += Int64(loc.length)
            } else {
                u.mapNodes += 1
            }
            u.uniqueStoredBytes += storedShare(loc)
        }
        for slot in 0..<index.slotCount where !all.contains(slot: slot) {
            u.unreferencedBytes += Int64(index.location(atSlot: slot).length)
        }
        u.volumes = volumes.values.map { v in
            var vol = v.0
            v.1.forEachIndexed { _, loc in
                if loc.kind == .chunk { vol.uniqueBytes += Int64(loc.length) }
            }
            return vol
        }.sorted { $0.name < $1.name }
        for dir in (try? FileSystem.list(repo.packsPath)) ?? [] {
            let dirPath = FileSystem.join(repo.packsPath, dir)
            for name in (try? FileSystem.list(dirPath)) ?? [] {
                u.packs += 1
                u.packBytes += (try? FileSystem.linkStatus(FileSystem.join(dirPath, name)))??.size ?? 0
            }
        }
        for dir in [repo.indexPath, repo.snapshotsPath, repo.metaPath, repo.refsPath] {
            for name in (try? FileSystem.list(dir)) ?? [] {
                if let st = (try? FileSystem.linkStatus(FileSystem.join(dir, name))) ?? nil, st.isRegularFile { u.metadataBytes += st.size }
            }
        }
        return u
    }

    /// An object's share of its frame's compressed bytes.
    private func storedShare(_ loc: ChunkLocation) -> Int64 {
        guard loc.frameRawLength > 0 else { return 0 }
        return Int64((Double(loc.length) * Double(loc.frameCompressedLength) / Double(loc.frameRawLength)).rounded())
    }
}
