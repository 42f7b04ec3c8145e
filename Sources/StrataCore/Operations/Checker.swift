import Dispatch
import FoundationEssentials

/// One problem `fsck` found.
public struct FsckProblem: Sendable, Equatable {
    /// The damaged snapshot, when the problem is in one (nil for repository-wide problems).
    public var snapshot: ObjectID?
    /// The byte range of the image that can no longer be restored, when known.
    public var range: ClosedRange<UInt64>?
    public var message: String
}

/// What `fsck` checked and found.
public struct FsckReport: Sendable {
    public var problems: [FsckProblem] = []
    /// Things that are not damage (left-over packs, temporary files) but worth saying.
    public var notes: [String] = []
    public var snapshotsChecked = 0
    public var packsChecked = 0
    public var objectsIndexed = 0
    public var framesRead = 0
    public var objectsVerified = 0
    public var bytesVerified: Int64 = 0
    public var readData = false
    /// With a sample (`--read-data-subset`): the share of frames that was read, 0 to 1.
    public var sampledFraction: Double?
    public var framesTotal = 0
    /// What `--repair` changed.
    public var repairs: [String] = []
    public var seconds = 0.0

    public var isHealthy: Bool { problems.isEmpty }
    /// Snapshots with at least one problem.
    public var damagedSnapshots: [ObjectID] {
        var seen = Set<ObjectID>()
        return problems.compactMap { $0.snapshot }.filter { seen.insert($0).inserted }
    }
}

/// Checks a repository: config, index files, packs' tables of contents against the index, every manifest and its
/// whole chunk map; with `readData`, also decompresses every frame and re-hashes every object.
/// Each problem names the snapshot and the byte range it can no longer restore.
public final class Checker {
    let repo: Repository

    /// Indexed objects per group of packs checked together (see `defaultPackGroupObjects`).
    let packGroupObjects: Int
    /// Entries per index file that `--repair` writes when it rebuilds the index (gc's size; tests make it small).
    let indexFileEntries: Int

    public convenience init(repo: Repository) { self.init(repo: repo, packGroupObjects: Checker.defaultPackGroupObjects) }

    init(repo: Repository, packGroupObjects: Int, indexFileEntries: Int = ChunkIndex.mergedFileEntries) {
        self.repo = repo
        self.packGroupObjects = packGroupObjects
        self.indexFileEntries = indexFileEntries
    }

    /// - Parameters:
    ///   - readData: decompress and re-hash stored objects.
    ///   - sample: with `readData`, the share of frames to read (chosen at random), e.g. 0.1; nil reads all.
    ///   - repair: drop refs that point nowhere and index entries whose pack is missing or disagrees, remove
    ///     left-over temporary files and failed snapshots' journals; copy the verified objects of a pack whose table
    ///     of contents cannot be read into a new pack. Never deletes a manifest or a pack (a new pack of the same
    ///     name, the same objects packed again, replaces a damaged one). Takes the
    ///     exclusive lock.
    public func run(readData: Bool, sample: Double? = nil, repair: Bool = false, progress: ProgressReporter? = nil) throws -> FsckReport {
        let clock = ContinuousClock.now
        var report = FsckReport()
        report.readData = readData
        let lock = repair ? try repo.lock(.exclusive) : try? repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }

        let index = try ChunkIndex.load(repo, strict: false)
        for f in index.damagedFiles {
            report.problems.append(FsckProblem(snapshot: nil, range: nil, message: f.problem))
        }
        report.objectsIndexed = index.count

        // Objects that cannot be read back, with the reason.
        var bad: [ObjectID: String] = [:]

        // Packs: each indexed pack must exist, its table of contents must verify and agree with the index; with
        // `readData` its frames are read. Packs are taken in groups of about `packGroupObjects` indexed objects,
        // streamed from the index files (which list a pack's objects together), so memory holds one group's
        // entries and tables of contents, not the whole repository's.
        var tocs = [PackTOC?](repeating: nil, count: index.packs.count)
        // Format 2: the id the index gives each TOC position (per pack, in TOC order; nil where none does).
        var indexedIDs = [[ObjectID?]](repeating: [], count: index.packs.count)
        var seen = [Bool](repeating: false, count: index.packs.count)
        var data = DataCheck(total: readData ? index.frameRawBytes : 0, sample: sample, progress: progress)
        // An error that is not damage (fsck cannot go on): thrown once the index pass ends.
        var fatal: Error?

        func checkPack(_ ordinal: Int, _ entries: [(ObjectID, ChunkLocation)]) {
            let packID = index.packs[ordinal]
            report.packsChecked += 1
            seen[ordinal] = true
            do {
                let pack = try PackFile(id: packID, path: repo.packFilePath(packID), sealer: repo.sealer)
                let toc = try pack.readTOC()
                tocs[ordinal] = toc
                let disagrees = "the index disagrees with the table of contents of pack \(packID.shortHex)"
                func sameFrame(_ e: PackEntry, _ loc: ChunkLocation) -> Bool {
                    let f = toc.frames[Int(e.frame)]
                    return e.kind == loc.kind && e.offset == loc.offset && e.length == loc.length && f.offset == loc.frameOffset
                        && f.compressedLength == loc.frameCompressedLength && f.rawLength == loc.frameRawLength
                }
                if let digest = toc.contentDigest {
                    // No ids in the TOC: each indexed object must sit exactly at an object's place; when the index
                    // names every object of the pack, the ids it gives must hash to the TOC's content digest.
                    var frameAt: [UInt64: Int] = [:]
                    for (i, f) in toc.frames.enumerated() { frameAt[f.offset] = i }
                    var entryAt: [UInt64: Int] = [:]
                    for (i, e) in toc.entries.enumerated() { entryAt[UInt64(e.frame) << 32 | UInt64(e.offset)] = i }
                    var ids = [ObjectID?](repeating: nil, count: toc.entries.count)
                    for (id, loc) in entries {
                        guard let f = frameAt[loc.frameOffset], let i = entryAt[UInt64(f) << 32 | UInt64(loc.offset)],
                              ids[i] == nil, sameFrame(toc.entries[i], loc) else {
                            bad[id] = disagrees
                            continue
                        }
                        ids[i] = id
                    }
                    if !ids.contains(nil) && PackTOC.digest(ofIDs: ids.map { $0! }) != digest {
                        report.problems.append(FsckProblem(snapshot: nil, range: nil, message: "pack \(packID.shortHex): the ids the index gives its objects do not match the pack's content digest; 'strata fsck --read-data' finds the objects that differ"))
                    }
                    indexedIDs[ordinal] = ids
                } else {
                    var inTOC: [ObjectID: PackEntry] = [:]
                    for e in toc.entries { inTOC[e.id!] = e }
                    for (id, loc) in entries {
                        guard let e = inTOC[id], Int(e.frame) < toc.frames.count, sameFrame(e, loc) else {
                            bad[id] = disagrees
                            continue
                        }
                    }
                }
            } catch let e as StrataError where (e.code == .damaged || e.code == .io) && !e.isOutOfResources {
                report.problems.append(FsckProblem(snapshot: nil, range: nil, message: e.description))
                for (id, _) in entries { bad[id] = e.message }
            } catch {
                if fatal == nil { fatal = error }
            }
        }

        var group: [Int] = []
        var groupObjects = 0
        func finishGroup() {
            if readData && fatal == nil {
                do { try verifyData(index: index, packs: group, tocs: tocs, indexedIDs: indexedIDs, into: &data) } catch { fatal = error }
            }
            for p in group {
                tocs[p] = nil
                indexedIDs[p] = []
            }
            group.removeAll(keepingCapacity: true)
            groupObjects = 0
        }
        func add(_ ordinal: Int, _ entries: [(ObjectID, ChunkLocation)]) {
            checkPack(ordinal, entries)
            group.append(ordinal)
            groupObjects += entries.count
            if groupObjects >= packGroupObjects { finishGroup() }
        }
        // Index files list a pack's objects together, so a pack is usually complete at the end of its run; one that
        // files list apart (possible, never written so) waits, whole packs only are checked.
        let objectsPerPack = index.objectsPerPack()
        var waiting: [Int: [(ObjectID, ChunkLocation)]] = [:]
        var current = -1
        var run: [(ObjectID, ChunkLocation)] = []
        func finishRun() {
            guard current >= 0, fatal == nil else { return }
            let entries = (waiting.removeValue(forKey: current) ?? []) + run
            run.removeAll(keepingCapacity: true)
            if entries.count < objectsPerPack[current] {
                waiting[current] = entries
            } else {
                add(current, entries)
            }
        }
        try index.forEach { id, loc in
            if Int(loc.pack) != current {
                finishRun()
                current = Int(loc.pack)
            }
            run.append((id, loc))
        }
        finishRun()
        if let fatal { throw fatal }
        // Packs still short of their count (none unless the files and the table disagree), then packs the index
        // names but lists no object of.
        for (p, entries) in waiting.sorted(by: { $0.key < $1.key }) where fatal == nil { add(p, entries) }
        for p in index.packs.indices where !seen[p] && fatal == nil { add(p, []) }
        finishGroup()
        if let fatal { throw fatal }
        // Packs on disk that no index names: left by an interrupted snapshot or gc; gc removes them.
        let indexed = Set(index.packs)
        var unindexed = 0
        for dir in (try? FileSystem.list(repo.packsPath)) ?? [] {
            for name in (try? FileSystem.list(FileSystem.join(repo.packsPath, dir))) ?? [] {
                if let id = ObjectID(hex: name), !indexed.contains(id) { unindexed += 1 }
            }
        }

        if readData {
            data.progress?.progress(done: data.bytes, total: max(data.total, data.bytes), newBytes: 0)
            for m in data.packProblems { report.problems.append(FsckProblem(snapshot: nil, range: nil, message: m)) }
            report.notes += data.packNotes
            report.objectsVerified = data.verified
            report.framesRead = data.framesRead
            report.framesTotal = data.framesTotal
            report.bytesVerified = data.bytes
            if sample != nil { report.sampledFraction = data.framesTotal > 0 ? Double(data.framesRead) / Double(data.framesTotal) : 1 }
            for (id, why) in data.damage where bad[id] == nil { bad[id] = why }
        }

        // Snapshots: every manifest decodes and every part of its map is readable.
        let (snapshots, damagedManifests) = try SnapshotStore(repo: repo).all()
        for d in damagedManifests {
            report.problems.append(FsckProblem(snapshot: d.id, range: nil, message: d.problem))
        }
        let walker = MapChecker(reader: ObjectReader(repo: repo, index: index), index: index, bad: bad)
        for s in snapshots {
            report.snapshotsChecked += 1
            let what = "snapshot \(s.id.shortHex) (\(s.manifest.volume))"
            let damage = try walker.check(root: s.manifest.rootID!, length: s.manifest.size)
            for d in damage {
                report.problems.append(FsckProblem(snapshot: s.id, range: d.start...(d.end - 1),
                                                   message: "\(what): bytes \(d.start)-\(d.end - 1) cannot be restored: \(d.reason)"))
            }
        }
        let known = Set(snapshots.map(\.id)).union(damagedManifests.map(\.id))
        for ref in (try? RefStore(repo: repo).all()) ?? [] {
            if let target = ref.target {
                if !known.contains(target) {
                    report.problems.append(FsckProblem(snapshot: nil, range: nil, message: "ref '\(ref.name)' points to snapshot \(target.shortHex), which does not exist"))
                }
            } else {
                report.problems.append(FsckProblem(snapshot: nil, range: nil, message: "ref '\(ref.name)' is damaged"))
            }
        }
        let metaStore = MetaStore(repo: repo)
        for (id, problem) in (try? metaStore.all().damaged) ?? [] {
            report.problems.append(FsckProblem(snapshot: id, range: nil, message: "\(problem): its later tags and protection are unknown"))
        }
        // Metadata without its manifest: what an rm stopped between the two removals leaves (a note), or a manifest
        // lost to damage; a protected one was data the user meant to keep, and gc stops while it is there.
        for id in metaStore.orphanedIDs() where !known.contains(id) {
            guard let meta = try? metaStore.load(id) else { continue }  // reported as damaged above
            if meta.protected {
                report.problems.append(FsckProblem(snapshot: id, range: nil, message: "snapshot \(id.shortHex) is protected but its manifest is missing: what it holds can no longer be found, and gc stops until its manifest is put back (snapshots/\(id.hex)) or 'strata unprotect \(id.hex)'"))
            } else if !repair {
                report.notes.append("metadata of snapshot \(id.shortHex) remains without its manifest (left by an interrupted rm); 'strata fsck --repair' removes it")
            }
        }
        for journal in (try? PendingStore(repo: repo).unreadable()) ?? [] where !repair || journal.alive {
            report.notes.append(journal.alive
                ? "pending journal \(journal.token) cannot be read; the snapshot that holds it is still running"
                : "pending journal \(journal.token) cannot be read (damaged, or left by a failed snapshot); 'strata gc' or 'strata fsck --repair' removes it")
        }
        // Packs the index does not name are usually what an interrupted command left (gc removes them). When
        // snapshots lack objects too, those packs may be what holds them (index files lost): repair reads them back.
        let lacking = report.problems.contains { $0.snapshot != nil }
        if unindexed > 0 && !repair {
            report.notes.append(lacking
                ? "\(unindexed) pack(s) are not in the index; 'strata fsck --repair' adds what they hold back to it"
                : "\(unindexed) pack(s) are not in the index (left by an interrupted command); 'strata gc' removes them")
        }
        let leftovers = ((try? FileSystem.list(repo.tmpPath)) ?? []).count
        if leftovers > 0 && !repair { report.notes.append("\(leftovers) temporary file(s) in tmp/ (left by an interrupted command); 'strata gc' or 'strata fsck --repair' removes them") }
        if repair { try self.repair(&report, index: index, bad: bad, known: known, reindex: unindexed > 0 && lacking) }
        report.seconds = clock.secondsElapsed
        return report
    }

    /// Fixes what can be fixed without judging data: see `run`.
    private func repair(_ report: inout FsckReport, index: ChunkIndex, bad: [ObjectID: String], known: Set<ObjectID>,
                        reindex: Bool) throws {
        let refs = RefStore(repo: repo)
        for ref in (try? refs.all()) ?? [] where ref.target == nil || !known.contains(ref.target!) {
            try refs.remove(ref.name)
            report.repairs.append("removed ref '\(ref.name)' (\(ref.target == nil ? "it was damaged" : "it pointed nowhere"))")
        }
        // Unprotected metadata left without its manifest; a protected one stays (the user unprotects it).
        let metaStore = MetaStore(repo: repo)
        for id in metaStore.orphanedIDs() where !known.contains(id) {
            guard let meta = try? metaStore.load(id), !meta.protected else { continue }
            try metaStore.remove(id)
            report.repairs.append("removed the metadata of snapshot \(id.shortHex) (its manifest is gone)")
        }
        // The index is rebuilt from the packs themselves whenever anything in it is wrong: every pack on disk whose
        // table of contents verifies contributes its objects, except objects that failed their hash. Entries that
        // point nowhere go; objects a damaged index file named are found again in their packs. Dropping unreadable
        // entries also lets the next snapshot of the same data store those chunks anew, healing every snapshot that
        // needs them.
        var unreadable: [ObjectID] = []
        if !bad.isEmpty { unreadable = bad.keys.filter { index.contains($0) } }
        if !unreadable.isEmpty || !index.damagedFiles.isEmpty || reindex {
            if (try? FileSystem.status(repo.indexPath)) == nil {
                try wrap(try FileSystem.makeDirectory(repo.indexPath), "cannot recreate \(repo.indexPath)")
                try wrap(try FileSystem.syncDirectory(repo.path), "cannot sync \(repo.path)")
                report.repairs.append("recreated the missing index/ directory")
            }
            // The first pack that holds an object names it; a readable copy wins over one fsck found bad. The
            // rebuilt index is written in files of about `indexFileEntries` entries as the packs are read (a pack's
            // entries stay in one file), and the ids already listed are an in-memory index of their own: memory is
            // the index and one file's entries, as in gc, not every entry at once.
            let listed = ChunkIndex()
            var rebuilt = IndexFileContents(packs: [], entries: [])
            var names: [String] = []
            var rebuiltCount = 0
            var packsRead = 0
            // Packs on disk whose table of contents cannot be read (a damaged trailer, bytes added at the end).
            var withoutTOC: [ObjectID] = []
            for dir in (try? FileSystem.list(repo.packsPath)) ?? [] {
                for name in (try? FileSystem.list(FileSystem.join(repo.packsPath, dir))) ?? [] {
                    guard let packID = ObjectID(hex: name) else { continue }
                    guard let toc = try? PackFile(id: packID, path: repo.packFilePath(packID), sealer: repo.sealer).readTOC() else {
                        withoutTOC.append(packID)
                        continue
                    }
                    packsRead += 1
                    let ordinal = UInt32(rebuilt.packs.count)
                    // Format-2 ids are computed from the data, so each is proven at its place; format-1 ids are
                    // the TOC's word, which a failed hash check overrides.
                    for (e, id) in (try? objectIDs(toc, packID: packID, index: index)) ?? []
                    where toc.contentDigest != nil || bad[id] == nil || index.location(of: id).map({ index.packs[Int($0.pack)] != packID }) == true {
                        guard !listed.contains(id) else { continue }
                        if rebuilt.packs.count == ordinal { rebuilt.packs.append(packID) }
                        let f = toc.frames[Int(e.frame)]
                        let location = ChunkLocation(
                            pack: ordinal, kind: e.kind, frameOffset: f.offset, frameCompressedLength: f.compressedLength,
                            frameRawLength: f.rawLength, offset: e.offset, length: e.length)
                        rebuilt.entries.append((id, location))
                        listed.add(id: id, packID: packID, location: location)
                        rebuiltCount += 1
                    }
                    if rebuilt.entries.count >= indexFileEntries {
                        names.append(try ChunkIndex.write(rebuilt, to: repo))
                        rebuilt = IndexFileContents(packs: [], entries: [])
                    }
                }
            }
            let (salvaged, salvageFile) = try salvage(withoutTOC, index: index, listed: listed, report: &report)
            // Named by content, it may be named as an old file was (the same objects, packed again the same way).
            if let salvageFile { names.append(salvageFile) }
            // The last part (at least one file, empty when no pack could be read: the old files must go either way).
            if !rebuilt.entries.isEmpty || names.isEmpty { names.append(try ChunkIndex.write(rebuilt, to: repo)) }
            let written = Set(names)
            for old in index.files + index.damagedFiles.map(\.name) where !written.contains(old) {
                try wrap(try FileSystem.remove(FileSystem.join(repo.indexPath, old)), "cannot remove an old index file")
            }
            try wrap(try FileSystem.syncDirectory(repo.indexPath), "cannot sync \(repo.indexPath)")
            report.repairs.append("rebuilt the index from \(packsRead) pack(s): \(rebuiltCount) objects")
            let leftOut = unreadable.filter { !salvaged.contains($0) }.count
            if leftOut > 0 {
                report.repairs.append("left out \(leftOut) objects that cannot be read (snapshotting the same data again stores them anew)")
            }
            if !index.damagedFiles.isEmpty { report.repairs.append("replaced \(index.damagedFiles.count) damaged index file(s)") }
        }
        var removed = 0
        for name in (try? FileSystem.list(repo.tmpPath)) ?? [] {
            try? FileManager.default.removeItem(atPath: FileSystem.join(repo.tmpPath, name))
            removed += 1
        }
        if removed > 0 { report.repairs.append("removed \(removed) temporary file(s) from tmp/") }
        let journals = try PendingStore(repo: repo).removeFailed()
        if journals > 0 { report.repairs.append("removed \(journals) failed snapshot journal(s)") }
    }

    /// Copies into a new pack the objects that the current index places in `packs`, packs whose tables of contents
    /// cannot be read: their frames may be intact (restore reads them where the index says, without the table), and a
    /// rebuild from tables of contents alone dropped them, after which gc deleted the pack as one no index names. Each
    /// object is re-hashed before it is copied; objects that `listed` holds already (a readable copy) stay where they
    /// are. A new pack may take the damaged one's name (the same objects packed again the same way) and replace it.
    /// Writes the new pack's index file; returns the ids copied and the file's name.
    private func salvage(_ packs: [ObjectID], index: ChunkIndex, listed: ChunkIndex,
                         report: inout FsckReport) throws -> (copied: Set<ObjectID>, indexFile: String?) {
        let ordinals = Set(packs.compactMap { id in index.packs.firstIndex(of: id).map { UInt32($0) } })
        guard !ordinals.isEmpty else { return ([], nil) }
        var frames: [UInt32: [UInt64: [(id: ObjectID, location: ChunkLocation)]]] = [:]
        try index.forEach { id, location in
            guard ordinals.contains(location.pack), !listed.contains(id) else { return }
            frames[location.pack, default: [:]][location.frameOffset, default: []].append((id, location))
        }
        let packer = ObjectPacker(repo: repo, index: listed)
        var copied: Set<ObjectID> = []
        let compressed = ByteBuffer(capacity: 1 << 20)
        let raw = ByteBuffer(capacity: 2 << 20)
        let scratch = ByteBuffer(capacity: 64 << 10)
        let decompressor = ZstdDecompressor()
        var told: [(pack: ObjectID, copied: Int, lost: Int)] = []
        do {
            for (ordinal, inPack) in frames.sorted(by: { $0.key < $1.key }) {
                let packID = index.packs[Int(ordinal)]
                let pack = try PackFile(id: packID, path: repo.packFilePath(packID), sealer: repo.sealer)
                var count = 0
                var lost = 0
                for (offset, objects) in inPack.sorted(by: { $0.key < $1.key }) {
                    let frame = objects[0].location
                    do {
                        try pack.decompressFrame(offset: offset, compressedLength: Int(frame.frameCompressedLength),
                                                 rawLength: Int(frame.frameRawLength), into: raw, compressed: compressed,
                                                 decompressor: decompressor)
                    } catch {
                        if StrataError.isOutOfResources(error) { throw error }
                        lost += objects.count
                        continue
                    }
                    let inFrame = objects.filter { Int($0.location.offset) + Int($0.location.length) <= raw.count }
                    lost += objects.count - inFrame.count
                    var verified: [Bool] = Array(repeating: false, count: inFrame.count)
                    ChunkHasher.objectIDs(count: inFrame.count,
                                          object: { (raw.slice(Int(inFrame[$0].location.offset), Int(inFrame[$0].location.length)), inFrame[$0].location.kind) },
                                          scratch: scratch, identity: repo.identity) { i, id in verified[i] = id == inFrame[i].id }
                    for (i, object) in inFrame.enumerated() {
                        guard verified[i] else { lost += 1; continue }
                        try packer.add(id: object.id, kind: object.location.kind,
                                       bytes: raw.slice(Int(object.location.offset), Int(object.location.length)))
                        copied.insert(object.id)
                        count += 1
                    }
                }
                told.append((packID, count, lost))
            }
            let file = try packer.writeIndex(try packer.finish())
            for t in told {
                let lost = t.lost > 0 ? " (\(t.lost) more cannot be read)" : ""
                // Packed again the same way, the objects make a pack of the same name, which replaced the damaged one.
                let after = packer.finishedPacks.contains(t.pack) ? ", which replaced it under the same name"
                    : "; 'strata gc' removes the damaged pack"
                report.repairs.append("copied \(t.copied) objects out of pack \(t.pack.shortHex), whose table of contents cannot be read, into a new pack\(lost)\(after)")
            }
            return (copied, file)
        } catch {
            packer.abandon()
            throw error
        }
    }

    /// The ids of a pack's objects for rebuilding the index, in TOC order. A format-1 TOC lists them. For a
    /// format-2 pack they are computed from the data (every frame decompressed, every object hashed); when the
    /// result hashes to the TOC's content digest all of them are given, otherwise (damaged data) only those that
    /// the current index also gives at the same place, and none for a frame that cannot be read.
    private func objectIDs(_ toc: PackTOC, packID: ObjectID, index: ChunkIndex) throws -> [(entry: PackEntry, id: ObjectID)] {
        if toc.contentDigest == nil { return toc.entries.map { ($0, $0.id!) } }
        let pack = try PackFile(id: packID, path: repo.packFilePath(packID), sealer: repo.sealer)
        let compressed = ByteBuffer(capacity: 1 << 20)
        let raw = ByteBuffer(capacity: 2 << 20)
        let scratch = ByteBuffer(capacity: 64 << 10)
        let decompressor = ZstdDecompressor()
        var ids = [ObjectID?](repeating: nil, count: toc.entries.count)
        var first = 0
        for (f, frame) in toc.frames.enumerated() {
            var end = first
            while end < toc.entries.count && toc.entries[end].frame == UInt32(f) { end += 1 }
            defer { first = end }
            do {
                try pack.decompressFrame(offset: frame.offset, compressedLength: Int(frame.compressedLength), rawLength: Int(frame.rawLength),
                                         into: raw, compressed: compressed, decompressor: decompressor)
            } catch {
                continue
            }
            ChunkHasher.objectIDs(count: end - first, object: { (raw.slice(Int(toc.entries[first + $0].offset), Int(toc.entries[first + $0].length)), toc.entries[first + $0].kind) },
                                  scratch: scratch, identity: repo.identity) { i, id in ids[first + i] = id }
        }
        if !ids.contains(nil), PackTOC.digest(ofIDs: ids.map { $0! }) == toc.contentDigest {
            return zip(toc.entries, ids).map { ($0, $1!) }
        }
        // Damaged: keep only what the index already gave at the same place.
        return zip(toc.entries, ids).compactMap { e, id in
            guard let id, let loc = index.location(of: id), index.packs[Int(loc.pack)] == packID,
                  loc.frameOffset == toc.frames[Int(e.frame)].offset, loc.offset == e.offset else { return nil }
            return (e, id)
        }
    }

    /// Indexed objects per group of packs that `run` checks together (their entries and tables of contents are what
    /// fsck holds in memory beyond the index; ~16 MiB for a group with `readData`).
    static let defaultPackGroupObjects = 1 << 16

    /// What reading the data found, over every group of packs.
    private struct DataCheck {
        /// Bytes to verify, for progress (the index's frames; a sample's share of them).
        var total: Int64
        let sample: Double?
        let progress: ProgressReporter?
        var verified = 0
        var framesRead = 0
        var framesTotal = 0
        var bytes: Int64 = 0
        var damage: [ObjectID: String] = [:]
        var packProblems: [String] = []
        var packNotes: [String] = []
        var lastReport = ContinuousClock.now

        init(total: Int64, sample: Double?, progress: ProgressReporter?) {
            self.total = sample.map { Int64(Double(total) * min(max($0, 0), 1)) } ?? total
            self.sample = sample
            self.progress = progress
        }
    }

    /// Decompresses the frames of `packs` on all cores (all, or a random `sample` share) and re-hashes every
    /// object in them against its id: the TOC's (format 1) or the one the index gives its place (format 2). A
    /// format-2 pack read whole must also hash to its TOC's content digest.
    private func verifyData(index: ChunkIndex, packs: [Int], tocs: [PackTOC?], indexedIDs: [[ObjectID?]],
                            into data: inout DataCheck) throws {
        struct Job { var pack: Int; var frame: Int; var raw: Int64 }
        var jobs: [Job] = []
        for p in packs {
            guard let toc = tocs[p] else { continue }
            for (f, frame) in toc.frames.enumerated() { jobs.append(Job(pack: p, frame: f, raw: Int64(frame.rawLength))) }
        }
        data.framesTotal += jobs.count
        if let sample = data.sample, sample < 1 {
            jobs.shuffle()
            jobs = Array(jobs.prefix(Int((Double(jobs.count) * sample).rounded(.up))))
            jobs.sort { ($0.pack, $0.frame) < ($1.pack, $1.frame) }
        }
        // Per (pack, frame): the TOC's positions of its objects (everything the pack holds is verified, not only
        // what is indexed), and the first entry's ordinal in the TOC.
        var entriesByFrame: [Int: [[(ordinal: Int, entry: PackEntry)]]] = [:]
        for p in packs {
            guard let toc = tocs[p] else { continue }
            var out = [[(ordinal: Int, entry: PackEntry)]](repeating: [], count: toc.frames.count)
            for (i, e) in toc.entries.enumerated() { out[Int(e.frame)].append((i, e)) }
            entriesByFrame[p] = out
        }
        // Format 2, per pack, for the content digest: frames read whole, whether an indexed object failed its hash,
        // and the ids computed for objects the index does not name (the others are the index's, once verified).
        var framesVerified: [Int: Int] = [:]
        var mismatched: Set<Int> = []
        var unindexedIDs: [Int: [Int: ObjectID]] = [:]
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let lock = Lock()
        var next = 0
        var shared = data
        var outOfResources: Error?
        // Frames are asked for a few ahead of those being read (a repository checked at night is not in the page
        // cache, and a disk's own read-ahead of 128 KiB leaves it idle between the workers' reads).
        let prefetcher = PackPrefetcher(repo: repo, index: index)
        let prefetchLock = Lock()
        let ahead = 4 * workers
        for j in jobs.indices.prefix(ahead) {
            let f = tocs[jobs[j].pack]!.frames[jobs[j].frame]
            prefetcher.prefetch(pack: jobs[j].pack, offset: f.offset, length: Int(f.compressedLength))
        }
        let frozenEntries = entriesByFrame
        entriesByFrame = [:]
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let compressed = ByteBuffer(capacity: 1 << 20)
            let raw = ByteBuffer(capacity: 2 << 20)
            let scratch = ByteBuffer(capacity: 64 << 10)
            let decompressor = ZstdDecompressor()
            var packFiles: [Int: PackFile] = [:]
            var myVerified = 0
            var myBytes: Int64 = 0
            var myDamage: [ObjectID: String] = [:]
            var myUnindexed: [(ordinal: Int, id: ObjectID)] = []
            var myMismatch = false
            var myFrameVerified = false
            while true {
                lock.lock()
                let j = next
                next += 1
                if let progress = shared.progress, ContinuousClock.now - shared.lastReport > .milliseconds(100) {
                    shared.lastReport = ContinuousClock.now
                    progress.progress(done: shared.bytes, total: max(shared.total, shared.bytes), newBytes: 0)
                }
                lock.unlock()
                // The hint can wait on the disk: outside the lock that hands out frames.
                if j + ahead < jobs.count {
                    let a = jobs[j + ahead], f = tocs[a.pack]!.frames[a.frame]
                    prefetchLock.withLock { prefetcher.prefetch(pack: a.pack, offset: f.offset, length: Int(f.compressedLength)) }
                }
                // A caught signal (an import's check of its bundle) stops the workers at their next frame.
                guard j < jobs.count, !Interruption.isInterrupted else { break }
                let job = jobs[j]
                let packID = index.packs[job.pack]
                let frame = tocs[job.pack]!.frames[job.frame]
                let entries = frozenEntries[job.pack]![job.frame]
                let expected = { (ordinal: Int, e: PackEntry) -> ObjectID? in
                    e.id ?? indexedIDs[job.pack][ordinal]
                }
                do {
                    let pack: PackFile
                    if let p = packFiles[job.pack] { pack = p } else {
                        pack = try PackFile(id: packID, path: repo.packFilePath(packID), sealer: repo.sealer)
                        packFiles = [job.pack: pack]
                    }
                    try pack.decompressFrame(offset: frame.offset, compressedLength: Int(frame.compressedLength), rawLength: Int(frame.rawLength),
                                         into: raw, compressed: compressed, decompressor: decompressor)
                    ChunkHasher.objectIDs(count: entries.count, object: { (raw.slice(Int(entries[$0].1.offset), Int(entries[$0].1.length)), entries[$0].1.kind) },
                                          scratch: scratch, identity: repo.identity) { i, actual in
                        let (ordinal, e) = entries[i]
                        guard let want = expected(ordinal, e) else {
                            myUnindexed.append((ordinal, actual))
                            return
                        }
                        if actual == want {
                            myVerified += 1
                        } else {
                            myMismatch = true
                            // Only the copy the index names matters: an old damaged copy that a repair left behind
                            // (and a new snapshot replaced) harms no snapshot.
                            if let loc = index.location(of: want), loc.pack == UInt32(job.pack), loc.frameOffset == frame.offset, loc.offset == e.offset {
                                myDamage[want] = "object \(want.shortHex) in pack \(packID.shortHex) does not match its hash"
                            }
                        }
                    }
                    myBytes += Int64(frame.rawLength)
                    myFrameVerified = true
                } catch {
                    // Out of open files or memory: this process's trouble, not the repository's damage.
                    if StrataError.isOutOfResources(error) {
                        lock.withLock { if outOfResources == nil { outOfResources = error } }
                        break
                    }
                    let why = (error as? StrataError)?.description ?? "\(error)"
                    for (ordinal, e) in entries {
                        guard let want = expected(ordinal, e) else { continue }
                        if let loc = index.location(of: want), loc.pack == UInt32(job.pack), loc.frameOffset == frame.offset { myDamage[want] = why }
                    }
                }
                lock.lock()
                shared.verified += myVerified
                shared.bytes += myBytes
                shared.damage.merge(myDamage) { a, _ in a }
                if tocs[job.pack]!.contentDigest != nil {
                    if myFrameVerified { framesVerified[job.pack, default: 0] += 1 }
                    if myMismatch { mismatched.insert(job.pack) }
                    for c in myUnindexed { unindexedIDs[job.pack, default: [:]][c.ordinal] = c.id }
                }
                myVerified = 0
                myBytes = 0
                myDamage.removeAll()
                myUnindexed.removeAll(keepingCapacity: true)
                myMismatch = false
                myFrameVerified = false
                lock.unlock()
            }
        }
        try Interruption.check()
        if let outOfResources { throw outOfResources }
        data = shared
        data.framesRead += jobs.count
        // A format-2 pack read whole: what it holds must be what its TOC was written for. (An object the index
        // names and the data does not match is reported above; this catches damage to the rest.)
        for p in packs {
            guard let toc = tocs[p], let digest = toc.contentDigest, framesVerified[p] == toc.frames.count, !mismatched.contains(p) else { continue }
            let ids = toc.entries.indices.map { indexedIDs[p][$0] ?? unindexedIDs[p]![$0]! }
            if PackTOC.digest(ofIDs: ids) != digest {
                // Every object the index names in this pack verified above; when it names them all, its ids are
                // what differs. Otherwise the difference may lie in objects no snapshot can use (a copy `--repair`
                // left out of the index and a later snapshot stored again, a duplicate): restoring is not
                // affected, so it is a note; the pack goes when gc rewrites or deletes it.
                let unused = indexedIDs[p].filter { $0 == nil }.count
                if unused == 0 {
                    data.packProblems.append("pack \(index.packs[p].shortHex): its data does not match the content digest of its table of contents")
                } else {
                    data.packNotes.append("pack \(index.packs[p].shortHex) does not match the content digest of its table of contents, but every object the index uses from it verified: the difference is in the \(unused) object(s) it holds that no snapshot uses (left out by a repair, or duplicates); they go when gc rewrites or deletes the pack")
                }
            }
        }
    }
}

/// Walks chunk maps and collects the byte ranges that cannot be restored. Results per node are remembered, so a
/// subtree shared by many snapshots is checked once: a bit per index slot for a node found whole (the usual case),
/// the damage itself for the others.
final class MapChecker {
    struct Damage { var start: UInt64; var end: UInt64; var reason: String }

    private let reader: ObjectReader
    private let index: ChunkIndex
    private let bad: [ObjectID: String]
    private var whole: ObjectMarks
    private var memo: [ObjectID: [Damage]] = [:]

    init(reader: ObjectReader, index: ChunkIndex, bad: [ObjectID: String]) {
        self.reader = reader
        self.index = index
        self.bad = bad
        whole = ObjectMarks(index: index)
    }

    /// - Throws: only when this process runs out of open files or memory (never a verdict on the repository).
    func check(root: ObjectID, length: UInt64) throws -> [Damage] {
        merge(try node(root, length: length))
    }

    /// Damage relative to the start of the node.
    private func node(_ id: ObjectID, length: UInt64) throws -> [Damage] {
        if whole.contains(id) { return [] }
        if let m = memo[id] { return m }
        var out: [Damage] = []
        if let why = bad[id] {
            out = [Damage(start: 0, end: length, reason: "map node \(id.shortHex): \(why)")]
        } else {
            do {
                switch try reader.node(id) {
                case .leaf(let entries):
                    var offset: UInt64 = 0
                    for e in entries {
                        if e.kind == .chunk {
                            if let why = bad[e.id] {
                                out.append(Damage(start: offset, end: offset + e.length, reason: why))
                            } else if let loc = index.location(of: e.id) {
                                if loc.kind != .chunk || UInt64(loc.length) != e.length {
                                    out.append(Damage(start: offset, end: offset + e.length, reason: "chunk \(e.id.shortHex) has the wrong kind or length in the index"))
                                }
                            } else {
                                out.append(Damage(start: offset, end: offset + e.length, reason: "chunk \(e.id.shortHex) is missing"))
                            }
                        }
                        offset = offset &+ e.length
                    }
                    if offset != length {
                        out.append(Damage(start: 0, end: max(length, 1), reason: "map node \(id.shortHex) covers \(offset) bytes, expected \(length)"))
                    }
                case .interior(_, let children):
                    var offset: UInt64 = 0
                    for c in children {
                        for d in try node(c.id, length: c.length) {
                            out.append(Damage(start: offset + d.start, end: offset + d.end, reason: d.reason))
                        }
                        offset = offset &+ c.length
                    }
                    if offset != length {
                        out.append(Damage(start: 0, end: max(length, 1), reason: "map node \(id.shortHex) covers \(offset) bytes, expected \(length)"))
                    }
                }
            } catch {
                if StrataError.isOutOfResources(error) { throw error }
                let why = (error as? StrataError)?.message ?? "\(error)"
                out = [Damage(start: 0, end: max(length, 1), reason: why)]
            }
        }
        if out.isEmpty { whole.insert(id) } else { memo[id] = out }
        return out
    }

    /// Merges touching ranges that share a reason, so a lost pack is one line per snapshot stretch, not per chunk.
    private func merge(_ damage: [Damage]) -> [Damage] {
        var out: [Damage] = []
        for d in damage.sorted(by: { $0.start < $1.start }) {
            if var last = out.last, last.end >= d.start, last.reason == d.reason {
                last.end = max(last.end, d.end)
                out[out.count - 1] = last
            } else {
                out.append(d)
            }
        }
        return out
    }
}
