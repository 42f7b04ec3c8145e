import Foundation
import Testing
@testable import StrataCore

/// The compact index against a plain dictionary model: loading with duplicates and damaged files, lookups of
/// present and absent ids, merging additions, and the memory it takes.
@Suite("Compact index")
struct IndexTableTests {
    static func value(_ rng: inout SeededRandom) -> IndexTable.Value {
        IndexTable.Value(frame: UInt32(truncatingIfNeeded: rng.next() % 5000), offset: UInt32(truncatingIfNeeded: rng.next() % (1 << 20)),
                         lengthAndKind: UInt32(truncatingIfNeeded: rng.next() % (1 << 31)) | (rng.next() % 2 == 0 ? 0 : 1 << 31))
    }

    static func id(_ rng: inout SeededRandom) -> ObjectID {
        ObjectID(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
    }

    @Test("loads, deduplicates (first loaded wins), finds every id and no other", arguments: [0, 1, 7, 100, 5000, 70000])
    func loadAndFind(count: Int) {
        var rng = SeededRandom(seed: UInt64(count) + 1)
        let table = IndexTable()
        var model: [ObjectID: IndexTable.Value] = [:]
        var ids: [ObjectID] = []
        for i in 0..<count {
            // One in ten repeats an earlier id with another value: the first one must win.
            let id = (i > 0 && rng.next() % 10 == 0) ? ids[Int(rng.next() % UInt64(ids.count))] : Self.id(&rng)
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
        for _ in 0..<50 { table.append(Self.id(&rng), Self.value(&rng)) }
        table.truncate(to: mark)
        table.finishLoading()
        #expect(table.count == model.count)
        for (id, v) in model { #expect(table.find(id) == v) }
        for _ in 0..<1000 { #expect(table.find(Self.id(&rng)) == nil) }
        var previous: ObjectID?
        var seen = 0
        table.forEach { id, v in
            if let p = previous { #expect(p < id) }
            #expect(model[id] == v)
            previous = id
            seen += 1
        }
        #expect(seen == model.count)
    }

    @Test("ids that share a long prefix (a crowded bucket) are still told apart")
    func crowdedBucket() {
        var rng = SeededRandom(seed: 5)
        let table = IndexTable()
        var model: [ObjectID: IndexTable.Value] = [:]
        for i in 0..<3000 {
            // 200 ids share their first 8 bytes and differ only in the last word.
            let id = i < 200 ? ObjectID(w0: 0xABCD, w1: 1, w2: 2, w3: UInt64(i)) : Self.id(&rng)
            let v = Self.value(&rng)
            model[id] = v
            table.append(id, v)
        }
        table.finishLoading()
        for (id, v) in model { #expect(table.find(id) == v) }
        #expect(table.find(ObjectID(w0: 0xABCD, w1: 1, w2: 2, w3: 200)) == nil)
    }

    @Test("merging additions keeps the order and finds old and new")
    func merge() {
        var rng = SeededRandom(seed: 9)
        let table = IndexTable()
        var model: [ObjectID: IndexTable.Value] = [:]
        for _ in 0..<2000 {
            let id = Self.id(&rng), v = Self.value(&rng)
            model[id] = v
            table.append(id, v)
        }
        table.finishLoading()
        for round in 0..<5 {
            var batch: [(id: ObjectID, value: IndexTable.Value)] = []
            for _ in 0..<(round * 700 + 1) {
                let id = Self.id(&rng), v = Self.value(&rng)
                model[id] = v
                batch.append((id, v))
            }
            table.merge(sortedNew: batch.sorted { $0.id < $1.id })
        }
        #expect(table.count == model.count)
        for (id, v) in model { #expect(table.find(id) == v) }
        var previous: ObjectID?
        table.forEach { id, _ in
            if let p = previous { #expect(p < id) }
            previous = id
        }
    }

    @Test("the chunk index answers like a dictionary across loads and additions, in ~45 bytes per object")
    func chunkIndex() throws {
        var rng = SeededRandom(seed: 21)
        let index = ChunkIndex()
        var model: [ObjectID: ChunkLocation] = [:]
        let packs = (0..<40).map { _ in Self.id(&rng) }
        for i in 0..<60000 {
            let pack = Int(rng.next() % 40)
            let frame = UInt64(rng.next() % 30) << 20
            let loc = ChunkLocation(pack: 0, kind: i % 50 == 0 ? .mapNode : .chunk, frameOffset: frame,
                                    frameCompressedLength: UInt32(frame >> 12) + 100, frameRawLength: 1 << 20,
                                    offset: UInt32(rng.next() % 1000) * 1024, length: 4096 * UInt32(1 + rng.next() % 8))
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
        #expect(index.entries.count == model.count)
        let perObject = Double(index.memoryBytes) / Double(index.count)
        #expect(perObject < 64, "\(perObject) bytes per object")
    }
}
