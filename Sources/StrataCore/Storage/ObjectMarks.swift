/// A set of objects kept as one bit per record slot of a loaded index (`ChunkIndex.slot(of:)`), for the walks that
/// mark what snapshots reach (gc's live set, `stats`, fsck's map check): a bit per object instead of a whole id in a
/// hash set (~60–90 bytes per object; 1 TB of 16 KiB chunks: ~8 MiB of bits against ~5 GiB of ids). Ids the index
/// lacks (a damaged repository) are kept whole on the side. Marks of one index only: nothing may be added to it
/// while they are in use.
struct ObjectMarks {
    private var bits: [UInt64]
    let index: ChunkIndex
    /// Marked ids that have no slot in the index.
    private(set) var unslotted: Set<ObjectID> = []

    init(index: ChunkIndex) {
        self.index = index
        bits = [UInt64](repeating: 0, count: (index.slotCount + 63) / 64)
    }

    /// Marks `id`; false if it was marked already.
    @discardableResult
    mutating func insert(_ id: ObjectID) -> Bool {
        guard let slot = index.slot(of: id) else { return unslotted.insert(id).inserted }
        let bit: UInt64 = 1 << UInt64(slot & 63)
        guard bits[slot >> 6] & bit == 0 else { return false }
        bits[slot >> 6] |= bit
        return true
    }

    func contains(_ id: ObjectID) -> Bool {
        guard let slot = index.slot(of: id) else { return unslotted.contains(id) }
        return contains(slot: slot)
    }

    func contains(slot: Int) -> Bool { bits[slot >> 6] & (1 << UInt64(slot & 63)) != 0 }

    /// Adds every mark of `other` (of the same index).
    mutating func formUnion(_ other: ObjectMarks) {
        precondition(other.index === index)
        for i in bits.indices { bits[i] |= other.bits[i] }
        unslotted.formUnion(other.unslotted)
    }

    /// The marked objects the index holds: each one's slot and location.
    func forEachIndexed(_ body: (_ slot: Int, _ location: ChunkLocation) throws -> Void) rethrows {
        for (word, w) in bits.enumerated() where w != 0 {
            var rest = w
            while rest != 0 {
                let slot = word << 6 | rest.trailingZeroBitCount
                rest &= rest - 1
                try body(slot, index.location(atSlot: slot))
            }
        }
    }
}

extension ObjectMarks {
    /// Marks `root` and everything its map reaches, skipping subtrees already marked; returns how many chunk
    /// references the newly walked nodes hold (a chunk used twice counts twice).
    @discardableResult
    /// - Parameter skipping: chunks not to mark (a copy's: those the target holds already, so that their frames
    ///   are not read); they still count.
    mutating func markReachable(from root: ObjectID, reader: ObjectReader, skipping: ((ObjectID) -> Bool)? = nil) throws -> Int {
        guard insert(root) else { return 0 }
        try Interruption.check()
        var chunks = 0
        switch try reader.node(root) {
        case .leaf(let entries):
            for e in entries where e.kind == .chunk {
                chunks += 1
                if skipping?(e.id) != true { insert(e.id) }
            }
        case .interior(_, let children):
            for c in children { chunks += try markReachable(from: c.id, reader: reader, skipping: skipping) }
        }
        return chunks
    }
}
