/// The objects that snapshots need: every map node and chunk reachable from the given manifests.
/// Shared subtrees are walked once.
///
/// One bit per object of the index (its record's slot), not a set of ids: on a repository of 165k objects a
/// `Set<ObjectID>` held ~10 MiB, the bits 20 KiB (1 TB of 16 KiB chunks: ~8 MiB of bits against ~5 GiB of ids).
/// Ids without a slot (the index lacks them: a damaged repository) are kept whole on the side.
struct LiveSet {
    private var bits: [UInt64]
    private let index: ChunkIndex
    /// Reachable ids with no slot in the index's table.
    private(set) var unslotted: Set<ObjectID> = []

    private init(index: ChunkIndex) {
        self.index = index
        bits = [UInt64](repeating: 0, count: (index.slotCount + 63) / 64)
    }

    /// Marks everything reachable from `roots`. Throws when a node cannot be read: then nobody can know
    /// what the snapshot needs, and nothing may be deleted.
    static func mark(roots: [(snapshot: ObjectID, root: ObjectID)], reader: ObjectReader) throws -> LiveSet {
        let (live, unreadable) = try mark(roots: roots, reader: reader, tolerant: false)
        precondition(unreadable.isEmpty)
        return live
    }

    /// With `tolerant`, a snapshot whose map cannot be read all the way is listed (with the problem) instead of
    /// stopping the walk; what it was found to reference so far stays marked.
    static func mark(roots: [(snapshot: ObjectID, root: ObjectID)], reader: ObjectReader,
                     tolerant: Bool) throws -> (LiveSet, unreadable: [(id: ObjectID, problem: String)]) {
        var live = LiveSet(index: reader.index)
        var unreadable: [(id: ObjectID, problem: String)] = []
        for (snapshot, root) in roots {
            do {
                try live.visit(root, reader: reader)
            } catch let e as StrataError where e.code == .damaged {
                let problem = "snapshot \(snapshot.shortHex) cannot be read (\(e.message))"
                guard tolerant else { throw StrataError.corrupt("\(problem); run 'strata fsck'") }
                unreadable.append((snapshot, problem))
            }
        }
        return (live, unreadable)
    }

    /// Marks `id`; false if it was marked already.
    private mutating func insert(_ id: ObjectID) -> Bool {
        guard let slot = index.slot(of: id) else { return unslotted.insert(id).inserted }
        let bit: UInt64 = 1 << UInt64(slot & 63)
        guard bits[slot >> 6] & bit == 0 else { return false }
        bits[slot >> 6] |= bit
        return true
    }

    private mutating func visit(_ id: ObjectID, reader: ObjectReader) throws {
        guard insert(id) else { return }
        switch try reader.node(id) {
        case .leaf(let entries):
            for e in entries where e.kind == .chunk { _ = insert(e.id) }
        case .interior(_, let children):
            for c in children { try visit(c.id, reader: reader) }
        }
    }

    func contains(_ id: ObjectID) -> Bool {
        guard let slot = index.slot(of: id) else { return unslotted.contains(id) }
        return bits[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }
}
