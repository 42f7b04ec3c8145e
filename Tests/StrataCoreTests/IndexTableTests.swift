import Foundation
import Testing
@testable import StrataCore

/// The compact index against a plain dictionary model: loading with duplicates and damaged files, lookups of
/// present and absent tags, merging additions, the keyed tag against SipHash's reference vectors, and the memory
/// it takes.
@Suite("Compact index")
struct IndexTableTests {
    static func value(_ rng: inout SeededRandom) -> IndexTable.Value {
        IndexTable.Value(frame: UInt32(truncatingIfNeeded: rng.next() % 5000), place: UInt32(truncatingIfNeeded: rng.next()))
    }

    static func id(_ rng: inout SeededRandom) -> ObjectID {
        ObjectID(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
    }

    static func tag(_ rng: inout SeededRandom) -> IndexTag { IndexTag(hi: rng.next(), lo: rng.next()) }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("the tag is SipHash-2-4 with 128-bit output: the reference implementation's vectors")
    func sipHashVectors() {
        // vectors_sip128 of github.com/veorq/SipHash (key 00..0f, message 00..len-1).
        let tagger = IndexTagger(k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908)
        let expected = [0: "a3817f04ba25a8e66df67214c7550293", 1: "da87c1d86b99af44347659119b22fc45",
                        7: "a1f1ebbed8dbc153c0b84aa61ff08239", 8: "3b62a9ba6258f5610f83e264f31497b4",
                        15: "5493e99933b0a8117e08ec0f97cfc3d9", 31: "2939b0183223fafc1723de4f52c43d35",
                        32: "7c3956ca5eeafc3e363e9d556546eb68", 63: "5150d1772f50834a503e069a973fbd7c"]
        for (length, tag) in expected {
            #expect(Self.hex(tagger.sipHash128((0..<length).map { UInt8($0) })) == tag, "length \(length)")
        }
        // The id path is the same function over the four words' little-endian bytes.
        var rng = SeededRandom(seed: 3)
        for _ in 0..<100 {
            let id = Self.id(&rng)
            var bytes: [UInt8] = []
            for w in [id.w0, id.w1, id.w2, id.w3] { for j in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt64(j)))) } }
            let t = tagger.tag(of: id)
            var tagBytes: [UInt8] = []
            for w in [t.hi, t.lo] { for j in 0..<8 { tagBytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt64(j)))) } }
            #expect(tagBytes == tagger.sipHash128(bytes))
        }
    }

    @Test("two indexes tag the same id differently (the key is fresh and secret), and one index always alike")
    func freshKeys() {
        let a = IndexTagger.random(), b = IndexTagger.random()
        let id = ObjectID(w0: 1, w1: 2, w2: 3, w3: 4)
        #expect(a.tag(of: id) != b.tag(of: id))
        #expect(a.tag(of: id) == a.tag(of: id))
        // Ids that share 24 of their 32 bytes get unrelated tags.
        let other = ObjectID(w0: 1, w1: 2, w2: 3, w3: 5)
        #expect(a.tag(of: id).hi != a.tag(of: other).hi)
    }

    @Test("loads, deduplicates (first loaded wins), finds every id and no other", arguments: [0, 1, 7, 100, 5000, 70000])
    func loadAndFind(count: Int) {
        var rng = SeededRandom(seed: UInt64(count) + 1)
        let table = IndexTable()
        var model: [IndexTag: IndexTable.Value] = [:]
        var ids: [IndexTag] = []
        for i in 0..<count {
            // One in ten repeats an earlier tag with another value: the first one must win.
            let id = (i > 0 && rng.next() % 10 == 0) ? ids[Int(rng.next() % UInt64(ids.count))] : Self.tag(&rng)
            var v = Self.value(&rng)
            if model[id] == nil {
                model[id] = v
                ids.append(id)
            } else {
                v.frame = model[id]!.frame + 1  // loaded later, so with a later frame ordinal
            }
            table.append(id, v)
        }
        // A damaged file's records are dropped.
        let mark = table.count
        for _ in 0..<50 { table.append(Self.tag(&rng), Self.value(&rng)) }
        table.truncate(to: mark)
        table.finishLoading()
        #expect(table.count == model.count)
        for (id, v) in model { #expect(table.find(id)?.value == v) }
        for _ in 0..<1000 { #expect(table.find(Self.tag(&rng)) == nil) }
        var previous: IndexTag?
        var seen = 0
        table.forEach { id, v in
            if let p = previous { #expect(p < id) }
            #expect(model[id] == v)
            previous = id
            seen += 1
        }
        #expect(seen == model.count)
    }

    @Test("tags that share their first word (a crowded bucket) are still told apart")
    func crowdedBucket() {
        var rng = SeededRandom(seed: 5)
        let table = IndexTable()
        var model: [IndexTag: IndexTable.Value] = [:]
        for i in 0..<3000 {
            // 200 tags share their first 8 bytes and differ only in the second word.
            let id = i < 200 ? IndexTag(hi: 0xABCD, lo: UInt64(i)) : Self.tag(&rng)
            let v = Self.value(&rng)
            model[id] = v
            table.append(id, v)
        }
        table.finishLoading()
        for (id, v) in model { #expect(table.find(id)?.value == v) }
        #expect(table.find(IndexTag(hi: 0xABCD, lo: 200)) == nil)
    }

    @Test("merging additions keeps the order and finds old and new")
    func merge() {
        var rng = SeededRandom(seed: 9)
        let table = IndexTable()
        var model: [IndexTag: IndexTable.Value] = [:]
        for _ in 0..<2000 {
            let id = Self.tag(&rng), v = Self.value(&rng)
            model[id] = v
            table.append(id, v)
        }
        table.finishLoading()
        for round in 0..<5 {
            var batch: [(tag: IndexTag, value: IndexTable.Value)] = []
            for _ in 0..<(round * 700 + 1) {
                let id = Self.tag(&rng), v = Self.value(&rng)
                model[id] = v
                batch.append((id, v))
            }
            table.merge(sortedNew: batch.sorted { $0.tag < $1.tag })
        }
        #expect(table.count == model.count)
        for (id, v) in model { #expect(table.find(id)?.value == v) }
        var previous: IndexTag?
        table.forEach { id, _ in
            if let p = previous { #expect(p < id) }
            previous = id
        }
    }

    @Test("the chunk index answers like a dictionary across additions and merges, in ~30 bytes per object")
    func chunkIndex() throws {
        var rng = SeededRandom(seed: 21)
        let index = ChunkIndex()
        var model: [ObjectID: ChunkLocation] = [:]
        let packs = (0..<40).map { _ in Self.id(&rng) }
        for i in 0..<60000 {
            let pack = Int(rng.next() % 40)
            let frame = UInt64(rng.next() % 30) << 20
            // Chunks at 4 KiB-aligned places (what the chunker makes) fit a record; map nodes, and a chunk that ends
            // an image whose size is not a multiple of 4 KiB, take the exact side table.
            let exact = i % 50 == 0 || i % 97 == 0
            let loc = ChunkLocation(pack: 0, kind: i % 50 == 0 ? .mapNode : .chunk, frameOffset: frame,
                                    frameCompressedLength: UInt32(frame >> 12) + 100, frameRawLength: 1 << 20,
                                    offset: exact ? UInt32(rng.next() % 1_000_000) : UInt32(rng.next() % 200) * 4096,
                                    length: exact ? UInt32(1 + rng.next() % 40000) : 4096 * UInt32(1 + rng.next() % 16))
            let id = Self.id(&rng)
            index.add(id: id, packID: packs[pack], location: loc)
            var expected = loc
            expected.pack = index.ordinal(ofPack: packs[pack])
            model[id] = expected
            // Adding a known id again changes nothing.
            if i % 1000 == 0 { index.add(id: id, packID: packs[(pack + 1) % 40], location: loc) }
        }
        #expect(index.count == model.count)
        for (id, loc) in model { #expect(index.location(of: id) == loc) }
        #expect(!index.contains(Self.id(&rng)))
        let perObject = Double(index.memoryBytes) / Double(index.count)
        #expect(perObject < 36, "\(perObject) bytes per object (additions not yet merged cost more)")
    }

    @Test("a loaded index gives back every whole id once, at the place it looks the id up at", arguments: [false, true])
    func loadedWholeIDs(encrypted: Bool) throws {
        let dir = TemporaryDirectory()
        let repo = encrypted ? try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "p") : try Repository.create(at: dir.file("r"))
        var rng = SeededRandom(seed: 33)
        let packs = (0..<5).map { _ in Self.id(&rng) }
        func location(_ pack: UInt32) -> ChunkLocation {
            ChunkLocation(pack: pack, kind: rng.next() % 9 == 0 ? .mapNode : .chunk, frameOffset: (rng.next() % 50) << 20,
                          frameCompressedLength: 5000, frameRawLength: 1 << 20, offset: UInt32(rng.next() % 240) << 12,
                          length: 4096 * UInt32(1 + rng.next() % 16))
        }
        var files: [IndexFileContents] = []
        var all: [(ObjectID, ChunkLocation, ObjectID)] = []
        for f in 0..<3 {
            var contents = IndexFileContents(packs: [packs[f], packs[f + 1], packs[f + 2]], entries: [])
            for _ in 0..<20_000 {
                let id = (f > 0 && rng.next() % 20 == 0) ? all[Int(rng.next() % UInt64(all.count))].0 : Self.id(&rng)
                let pack = UInt32(rng.next() % 3)
                let loc = location(pack)
                contents.entries.append((id, loc))
                all.append((id, loc, contents.packs[Int(pack)]))
            }
            files.append(contents)
        }
        let names = try files.map { try ChunkIndex.write($0, to: repo) }
        let index = try ChunkIndex.load(repo, strict: true)
        // For an id two files name, either place will do (both hold the object); it must be the one lookups give.
        var expected: [ObjectID: [(ChunkLocation, ObjectID)]] = [:]
        for name in index.files {
            let contents = files[names.firstIndex(of: name)!]
            for (id, loc) in contents.entries { expected[id, default: []].append((loc, contents.packs[Int(loc.pack)])) }
        }
        var seen: [ObjectID: ChunkLocation] = [:]
        try index.forEach { id, loc in
            #expect(seen[id] == nil, "\(id.shortHex) given twice")
            seen[id] = loc
        }
        #expect(seen.count == expected.count)
        #expect(index.count == expected.count)
        for (id, places) in expected {
            guard let got = seen[id] else { Issue.record("\(id.shortHex) missing"); continue }
            #expect(places.contains { loc, pack in
                var l = got
                l.pack = loc.pack
                return l == loc && index.packs[Int(got.pack)] == pack
            })
            #expect(index.location(of: id) == got)
        }
        let perObject = Double(index.memoryBytes) / Double(index.count)
        #expect(perObject < 26.5, "\(perObject) bytes per object")
        // Without duplicates every entry is the table's (the walk skips the lookups): the same answer.
        let single = try Repository.create(at: dir.file("single"))
        try ChunkIndex.write(files[0], to: single)
        let singleIndex = try ChunkIndex.load(single, strict: true)
        var walked: [ObjectID: ChunkLocation] = [:]
        try singleIndex.forEach { id, loc in
            #expect(walked[id] == nil)
            walked[id] = loc
        }
        #expect(walked.count == files[0].entries.count)
        for (id, loc) in files[0].entries {
            #expect(walked[id].map { singleIndex.packs[Int($0.pack)] } == files[0].packs[Int(loc.pack)])
            #expect(walked[id] == singleIndex.location(of: id))
        }
        // An index file that changes under a loaded index is named, not misread.
        try FileSystem.remove(repo.indexPath + "/" + index.files[1])
        #expect { try index.forEach { _, _ in } } throws: { ($0 as? StrataError)?.message.contains("index file") == true }
    }
}
