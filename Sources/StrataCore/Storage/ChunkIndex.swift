/// The in-memory index of every stored object: id → location. Loaded from the `index/` files.
///
/// Objects live in a compact sorted table (`IndexTable`, 24-byte records) under a keyed 128-bit tag of their id
/// (`IndexTag`); frame facts (pack, offset, lengths) are kept once per frame, not per object, and a chunk's place
/// in its frame in pages (others' exactly, on the side). Objects added in this
/// process wait in a small dictionary that is merged into the table once it holds an eighth of it, so that memory
/// stays ~25–40 bytes per object whatever the count. Whole ids are on disk, in the index files: `forEach` reads
/// them again. Reads may run on several threads at once; additions happen on one thread with no reader running.
final class ChunkIndex: @unchecked Sendable {
    private(set) var packs: [ObjectID] = []
    private var packOrdinals: [ObjectID: UInt32] = [:]
    private var frames: [FrameFacts] = []
    private var frameOrdinals: [FrameFacts: UInt32] = [:]
    private let tagger = IndexTagger.random()
    private let table = IndexTable()
    private var recent: [ObjectID: IndexTable.Value] = [:]
    /// Places of objects a record cannot hold in its 32 bits (map nodes, chunks not aligned to 4 KiB pages).
    private struct ExactPlace {
        var offset: UInt32
        /// Bit 31: object kind (0 chunk, 1 map node); bits 0–30: length.
        var lengthAndKind: UInt32
    }
    private var exactPlaces: [ExactPlace] = []
    /// The repository whose index files were loaded, to read their whole ids again.
    private var source: Repository?
    /// True once objects added in this process joined the table: their whole ids are then in no file it read.
    private var tableHoldsAdditions = false
    /// True when no id was in two of the loaded index files (or twice in one): each entry is then the table's.
    private var filesHoldEachIDOnce = false
    /// Index files read, by name.
    private(set) var files: [String] = []
    /// Index files that could not be read, with the reason (fsck reports them).
    private(set) var damagedFiles: [(name: String, problem: String)] = []

    /// Said after "… is missing from the index" when index files were skipped as damaged: they may be why.
    var missingHint: String {
        guard let first = damagedFiles.first else { return "" }
        let more = damagedFiles.count > 1 ? " (and \(damagedFiles.count - 1) more)" : ""
        return "; \(first.problem)\(more); 'strata fsck --repair' rebuilds the index from the packs"
    }

    /// Where a frame is. Two entries that disagree on a frame's lengths get two records, so that fsck can name
    /// each disagreement with the pack's table of contents.
    private struct FrameFacts: Hashable {
        var pack: UInt32
        var compressedLength: UInt32
        var rawLength: UInt32
        var offset: UInt64
    }

    init() {}

    /// Loads every index file of the repository. Damaged files are skipped and listed in `damagedFiles`
    /// unless `strict`, in which case the first one throws.
    static func load(_ repo: Repository, strict: Bool) throws -> ChunkIndex {
        let index = ChunkIndex()
        index.source = repo
        let names = try wrap(try FileSystem.list(repo.indexPath), "cannot list \(repo.indexPath)")
        for name in names where !name.hasPrefix(".") {
            let mark = index.table.count
            do {
                var ordinals: [UInt32] = []
                try read(name, of: repo, packs: { ordinals = $0.map { index.ordinal(ofPack: $0) } }, entry: { id, location in
                    var l = location
                    l.pack = ordinals[Int(location.pack)]
                    index.table.append(index.tagger.tag(of: id), index.value(for: l))
                })
                index.files.append(name)
            } catch let error as StrataError where error.code == .damaged && !strict {
                index.table.truncate(to: mark)
                index.damagedFiles.append((name, error.message))
            }
        }
        let loaded = index.table.count
        index.table.finishLoading()
        index.filesHoldEachIDOnce = index.table.count == loaded
        return index
    }

    /// Reads one index file: checks its name against its checksum, opens it when sealed, and delivers its pack table,
    /// then each entry (pack as an ordinal into that table). A damaged file throws after some entries were delivered.
    private static func read(_ name: String, of repo: Repository, packs: ([ObjectID]) -> Void,
                             entry: (ObjectID, ChunkLocation) -> Void) throws {
        let path = FileSystem.join(repo.indexPath, name)
        let stored = try wrap(try FileSystem.readFile(path), "cannot read index file \(path)")
        var bytes = stored
        if repo.sealer.isEncrypted {
            guard ObjectID.sha256(stored).hex == name else {
                throw StrataError.corrupt("index file \(name.prefix(12)) is damaged: its name does not match its checksum")
            }
            bytes = try repo.sealer.open(stored, .index, what: "index file \(name.prefix(12))")
        }
        let id = try bytes.withUnsafeBytes { raw in
            try IndexFileContents.decode(raw, what: "index file \(name.prefix(12))", packs: packs, entry: entry)
        }
        guard repo.sealer.isEncrypted || id.hex == name else {
            throw StrataError.corrupt("index file \(name.prefix(12)) is damaged: its name does not match its checksum")
        }
    }

    /// Throws when a pack this index names is not in the repository's `packs/` (lost, or deleted by hand), or is
    /// shorter than the frames the index places in it (cut short, as by an interrupted copy of the repository):
    /// whatever is written next would take the objects it held as stored and depend on them. `what` is the
    /// operation refused ("a snapshot", "a copy"). One directory listing per `packs/xx/` and one `stat` per pack;
    /// what a pack's bytes say is for `fsck --read-data`.
    func requirePacksPresent(in repo: Repository, for what: String) throws {
        guard !packs.isEmpty else { return }
        var present: Set<ObjectID> = []
        for dir in try wrap(try FileSystem.list(repo.packsPath), "cannot list \(repo.packsPath)") where !dir.hasPrefix(".") {
            let dirPath = FileSystem.join(repo.packsPath, dir)
            guard (try? FileSystem.status(dirPath))??.isDirectory == true else { continue }
            for name in try wrap(try FileSystem.list(dirPath), "cannot list \(dirPath)") {
                if let id = ObjectID(hex: name) { present.insert(id) }
            }
        }
        let advice = "the index names it, so \(what) now could depend on what it held; run 'strata fsck --repair', after which the next snapshot stores that data again"
        let missing = packs.filter { !present.contains($0) }
        if let first = missing.first {
            let more = missing.count > 1 ? " (and \(missing.count - 1) more)" : ""
            throw StrataError.corrupt("pack \(first.shortHex) is missing\(more) (\(repo.packFilePath(first))): \(advice)")
        }
        var ends = [UInt64](repeating: 0, count: packs.count)
        for f in frames { ends[Int(f.pack)] = max(ends[Int(f.pack)], f.offset + UInt64(f.compressedLength)) }
        for (ordinal, id) in packs.enumerated() {
            let path = repo.packFilePath(id)
            guard let size = (try? FileSystem.status(path))??.size, UInt64(size) < ends[ordinal] else { continue }
            throw StrataError.corrupt("pack \(id.shortHex) is cut short (\(path)): \(size) bytes, where the index places data up to byte \(ends[ordinal]); \(advice)")
        }
    }

    func ordinal(ofPack id: ObjectID) -> UInt32 {
        if let o = packOrdinals[id] { return o }
        let o = UInt32(packs.count)
        packs.append(id)
        packOrdinals[id] = o
        return o
    }

    private func value(for l: ChunkLocation) -> IndexTable.Value {
        let facts = FrameFacts(pack: l.pack, compressedLength: l.frameCompressedLength, rawLength: l.frameRawLength,
                               offset: l.frameOffset)
        let frame: UInt32
        if let last = frames.last, last == facts {
            // Index files list a frame's objects together: most lookups are the frame before.
            frame = UInt32(frames.count - 1)
        } else if let f = frameOrdinals[facts] {
            frame = f
        } else {
            frame = UInt32(frames.count)
            frames.append(facts)
            frameOrdinals[facts] = frame
        }
        precondition(l.length < 1 << 31)
        // A chunk at a 4 KiB-aligned place (all but the odd last chunk of an image whose size is not a multiple of
        // 4 KiB) fits the record: offset in pages in bits 0–14, length in pages in bits 15–30. Anything else (map
        // nodes, odd chunks) is kept exactly on the side; bit 31 marks it and bits 0–30 say where.
        if l.kind == .chunk, l.offset & 0xfff == 0, l.length & 0xfff == 0, l.offset >> 12 < 1 << 15, l.length >> 12 < 1 << 16 {
            return IndexTable.Value(frame: frame, place: (l.offset >> 12) | (l.length >> 12) << 15)
        }
        precondition(exactPlaces.count < 1 << 31)
        exactPlaces.append(ExactPlace(offset: l.offset, lengthAndKind: l.length | (l.kind == .mapNode ? 1 << 31 : 0)))
        return IndexTable.Value(frame: frame, place: 1 << 31 | UInt32(exactPlaces.count - 1))
    }

    private func location(_ v: IndexTable.Value) -> ChunkLocation {
        let f = frames[Int(v.frame)]
        if v.place >> 31 == 0 {
            return ChunkLocation(pack: f.pack, kind: .chunk, frameOffset: f.offset, frameCompressedLength: f.compressedLength,
                                 frameRawLength: f.rawLength, offset: (v.place & 0x7fff) << 12, length: (v.place >> 15) << 12)
        }
        let e = exactPlaces[Int(v.place & 0x7fff_ffff)]
        return ChunkLocation(pack: f.pack, kind: e.lengthAndKind >> 31 == 1 ? .mapNode : .chunk, frameOffset: f.offset,
                             frameCompressedLength: f.compressedLength, frameRawLength: f.rawLength,
                             offset: e.offset, length: e.lengthAndKind & 0x7fff_ffff)
    }

    /// Adds one object written in this process (pack given by id), unless the id is known.
    func add(id: ObjectID, packID: ObjectID, location: ChunkLocation) {
        guard !contains(id) else { return }
        var l = location
        l.pack = ordinal(ofPack: packID)
        recent[id] = value(for: l)
        // The dictionary costs ~80 bytes an entry against the table's 24.5: merged into the table once it holds a
        // 32nd of it (at most ~2.5 bytes per indexed object; with an eighth, a first snapshot of 4 GiB of new data
        // held 2.6 MiB here). A merge moves the table once, so each object added costs ~32 records moved: nothing
        // beside the chunk it names.
        if recent.count >= max(1 << 14, table.count / 32) { mergeRecent() }
    }

    private func mergeRecent() {
        let items = recent.map { (tag: tagger.tag(of: $0.key), value: $0.value) }.sorted { $0.tag < $1.tag }
        recent = [:]
        table.merge(sortedNew: items)
        tableHoldsAdditions = true
    }

    @inline(__always) func contains(_ id: ObjectID) -> Bool {
        table.find(tagger.tag(of: id)) != nil || (!recent.isEmpty && recent[id] != nil)
    }

    @inline(__always) func location(of id: ObjectID) -> ChunkLocation? {
        if let v = table.find(tagger.tag(of: id))?.value ?? (recent.isEmpty ? nil : recent[id]) { return location(v) }
        return nil
    }

    var count: Int { table.count + recent.count }

    /// Where an object's record sits (0..<`slotCount`), for marks kept as one bit per object (`ObjectMarks`): nil for an
    /// id the index lacks, or one added in this process and not yet merged. Stable until the next merge.
    @inline(__always) func slot(of id: ObjectID) -> Int? {
        table.find(tagger.tag(of: id))?.position
    }

    /// The number of record slots `slot(of:)` ranges over.
    var slotCount: Int { table.count }

    /// The location of the object in record slot `slot` (0..<`slotCount`).
    func location(atSlot slot: Int) -> ChunkLocation { location(table.value(atPosition: slot)) }

    /// How many objects the index holds in each pack (by ordinal).
    func objectsPerPack() -> [Int] {
        var counts = [Int](repeating: 0, count: packs.count)
        table.forEach { _, v in counts[Int(frames[Int(v.frame)].pack)] += 1 }
        for v in recent.values { counts[Int(frames[Int(v.frame)].pack)] += 1 }
        return counts
    }

    /// Uncompressed bytes of every frame the index names (what `fsck --read-data` reads, for its progress).
    var frameRawBytes: Int64 { frames.reduce(0) { $0 + Int64($1.rawLength) } }

    /// Every object with its whole id and location: the entries of the loaded index files (read again: the table
    /// keeps tags, not ids) that the table holds, each once, then the additions of this process. For an index that
    /// was loaded and not added to, or made empty and added to below the merge size (gc and fsck use it so).
    func forEach(_ body: (ObjectID, ChunkLocation) -> Void) throws {
        precondition(!tableHoldsAdditions, "whole ids of merged additions are not kept")
        if let repo = source, !files.isEmpty {
            var yielded = [UInt64](repeating: 0, count: filesHoldEachIDOnce ? 0 : (table.count + 63) / 64)
            for name in files {
                var ordinals: [UInt32?] = []
                var changed = false
                try Self.read(name, of: repo, packs: { ordinals = $0.map { self.packOrdinals[$0] } }, entry: { id, location in
                    guard let pack = ordinals[Int(location.pack)] else {
                        changed = true
                        return
                    }
                    var l = location
                    l.pack = pack
                    if self.filesHoldEachIDOnce {
                        body(id, l)
                        return
                    }
                    guard let found = self.table.find(self.tagger.tag(of: id)) else {
                        changed = true
                        return
                    }
                    // Of two entries for one id, the table kept the first loaded; the other is not the object's place.
                    let position = found.position
                    guard yielded[position >> 6] & (1 << UInt64(position & 63)) == 0, self.location(found.value) == l else { return }
                    yielded[position >> 6] |= 1 << UInt64(position & 63)
                    body(id, l)
                })
                if changed {
                    throw StrataError.corrupt("index file \(name.prefix(12)) changed while it was in use; run the command again")
                }
            }
        }
        for (id, v) in recent { body(id, location(v)) }
    }

    /// Every object and its location, as an array.
    func entries() throws -> [(id: ObjectID, location: ChunkLocation)] {
        var out: [(id: ObjectID, location: ChunkLocation)] = []
        out.reserveCapacity(count)
        try forEach { out.append(($0, $1)) }
        return out
    }

    /// Bytes the index holds for its objects (records, directory, frames; not the pack table), for measurements.
    var memoryBytes: Int {
        table.memoryBytes + frames.count * 2 * MemoryLayout<FrameFacts>.stride + recent.count * 64
            + exactPlaces.capacity * MemoryLayout<ExactPlace>.stride
    }

    /// Index contents for a set of entries, with a compact pack table.
    func contents(of entries: [(id: ObjectID, location: ChunkLocation)]) -> IndexFileContents {
        var builder = ContentsBuilder(packs: packs)
        for (id, loc) in entries { builder.add(id, loc) }
        return builder.contents
    }

    /// Entries per index file that `gc` writes: its memory holds one file's entries (~100 bytes each with the
    /// encoding), not the whole index's (1 TB of 16 KiB chunks: ~240 files).
    static let mergedFileEntries = 1 << 16

    /// Writes the objects that `include` keeps as durable index files of at most `maxEntries` entries each,
    /// gathered in one pass; returns their names (none when nothing is kept).
    func write(where include: (ObjectID, ChunkLocation) -> Bool, maxEntries: Int = ChunkIndex.mergedFileEntries,
               to repo: Repository) throws -> [String] {
        var names: [String] = []
        var builder = ContentsBuilder(packs: packs)
        var failure: Error?
        try forEach { id, loc in
            guard failure == nil, include(id, loc) else { return }
            builder.add(id, loc)
            guard builder.contents.entries.count >= maxEntries else { return }
            do { names.append(try Self.write(builder.contents, to: repo)) } catch { failure = error }
            builder = ContentsBuilder(packs: packs)
        }
        if let failure { throw failure }
        if !builder.contents.entries.isEmpty { names.append(try Self.write(builder.contents, to: repo)) }
        return names
    }

    /// Builds index file contents with a pack table holding only the packs its entries name.
    private struct ContentsBuilder {
        let packs: [ObjectID]
        var remap: [UInt32: UInt32] = [:]
        var contents = IndexFileContents(packs: [], entries: [])

        init(packs: [ObjectID]) { self.packs = packs }

        mutating func add(_ id: ObjectID, _ loc: ChunkLocation) {
            var l = loc
            if let o = remap[loc.pack] { l.pack = o } else {
                let o = UInt32(contents.packs.count)
                contents.packs.append(packs[Int(loc.pack)])
                remap[loc.pack] = o
                l.pack = o
            }
            contents.entries.append((id, l))
        }
    }

    /// Writes an index file durably (tmp, fsync, rename, directory fsync) and returns its name. When the write fails
    /// with the file already in place (the directory's fsync failed after the rename), `ifLeftInPlace` runs before
    /// the error is thrown: the file is read from then on, so the packs it names must stay.
    @discardableResult
    static func write(_ contents: IndexFileContents, to repo: Repository, ifLeftInPlace: () -> Void = {}) throws -> String {
        var c = contents
        var (bytes, id) = c.sortAndEncode(version: repo.config.structureVersion)
        if repo.sealer.isEncrypted {
            // Sealed, an index file is named by the hash of what is stored.
            bytes = try repo.sealer.seal(bytes, .index)
            id = ObjectID.sha256(bytes)
        }
        let path = FileSystem.join(repo.indexPath, id.hex)
        do {
            try wrap(try AtomicFile.write(bytes, to: path, tmpDirectory: repo.tmpPath), "cannot write index file \(path)")
        } catch {
            if FileSystem.exists(path) { ifLeftInPlace() }
            throw error
        }
        return id.hex
    }
}
