/// The in-memory index of every stored object: id → location. Loaded from the `index/` files.
final class ChunkIndex: @unchecked Sendable {
    private(set) var packs: [ObjectID] = []
    private var packOrdinals: [ObjectID: UInt32] = [:]
    private(set) var locations: [ObjectID: ChunkLocation] = [:]
    /// Index files read, by name.
    private(set) var files: [String] = []
    /// Index files that could not be read, with the reason (fsck reports them).
    private(set) var damagedFiles: [(name: String, problem: String)] = []

    init() {}

    /// Loads every index file of the repository. Damaged files are skipped and listed in `damagedFiles`
    /// unless `strict`, in which case the first one throws.
    static func load(_ repo: Repository, strict: Bool) throws -> ChunkIndex {
        let index = ChunkIndex()
        let names = try wrap(try FileSystem.list(repo.indexPath), "cannot list \(repo.indexPath)")
        for name in names where !name.hasPrefix(".") {
            let path = FileSystem.join(repo.indexPath, name)
            do {
                let stored = try wrap(try FileSystem.readFile(path), "cannot read index file \(path)")
                var bytes = stored
                if repo.sealer.isEncrypted {
                    guard ObjectID.sha256(stored).hex == name else {
                        throw StrataError.corrupt("index file \(name.prefix(12)) is damaged: its name does not match its checksum")
                    }
                    bytes = try repo.sealer.open(stored, .index, what: "index file \(name.prefix(12))")
                }
                let (contents, id) = try bytes.withUnsafeBytes { try IndexFileContents.decode($0, what: "index file \(name.prefix(12))") }
                guard repo.sealer.isEncrypted || id.hex == name else {
                    throw StrataError.corrupt("index file \(name.prefix(12)) is damaged: its name does not match its checksum")
                }
                index.add(contents)
                index.files.append(name)
            } catch let error as StrataError where error.code == .damaged && !strict {
                index.damagedFiles.append((name, error.message))
            }
        }
        return index
    }

    func ordinal(ofPack id: ObjectID) -> UInt32 {
        if let o = packOrdinals[id] { return o }
        let o = UInt32(packs.count)
        packs.append(id)
        packOrdinals[id] = o
        return o
    }

    func add(_ contents: IndexFileContents) {
        let map = contents.packs.map { ordinal(ofPack: $0) }
        locations.reserveCapacity(locations.count + contents.entries.count)
        for (id, loc) in contents.entries where locations[id] == nil {
            var l = loc
            l.pack = map[Int(loc.pack)]
            locations[id] = l
        }
    }

    /// Adds one object written in this process (pack given by id).
    func add(id: ObjectID, packID: ObjectID, location: ChunkLocation) {
        guard locations[id] == nil else { return }
        var l = location
        l.pack = ordinal(ofPack: packID)
        locations[id] = l
    }

    @inline(__always) func contains(_ id: ObjectID) -> Bool { locations[id] != nil }
    @inline(__always) func location(of id: ObjectID) -> ChunkLocation? { locations[id] }

    var count: Int { locations.count }

    /// Index contents for a set of entries, with a compact pack table.
    func contents(of entries: [(id: ObjectID, location: ChunkLocation)]) -> IndexFileContents {
        var table: [ObjectID] = []
        var remap: [UInt32: UInt32] = [:]
        var out: [(id: ObjectID, location: ChunkLocation)] = []
        out.reserveCapacity(entries.count)
        for (id, loc) in entries {
            var l = loc
            if let o = remap[loc.pack] { l.pack = o } else {
                let o = UInt32(table.count)
                table.append(packs[Int(loc.pack)])
                remap[loc.pack] = o
                l.pack = o
            }
            out.append((id, l))
        }
        return IndexFileContents(packs: table, entries: out)
    }

    /// Writes an index file durably (tmp, fsync, rename, directory fsync) and returns its name.
    @discardableResult
    static func write(_ contents: IndexFileContents, to repo: Repository) throws -> String {
        var c = contents
        var (bytes, id) = c.sortAndEncode()
        if repo.sealer.isEncrypted {
            // Sealed, an index file is named by the hash of what is stored.
            bytes = try repo.sealer.seal(bytes, .index)
            id = ObjectID.sha256(bytes)
        }
        let path = FileSystem.join(repo.indexPath, id.hex)
        try wrap(try AtomicFile.write(bytes, to: path, tmpDirectory: repo.tmpPath), "cannot write index file \(path)")
        return id.hex
    }
}
