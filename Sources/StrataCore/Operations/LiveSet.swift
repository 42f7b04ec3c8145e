/// The objects that snapshots need: every map node and chunk reachable from the given manifests.
/// Shared subtrees are walked once.
struct LiveSet {
    private(set) var ids: Set<ObjectID> = []

    /// Marks everything reachable from `roots`. Throws when a node cannot be read: then nobody can know
    /// what the snapshot needs, and nothing may be deleted.
    static func mark(roots: [(snapshot: ObjectID, root: ObjectID)], reader: ObjectReader) throws -> LiveSet {
        var live = LiveSet()
        for (snapshot, root) in roots {
            do {
                try live.visit(root, reader: reader)
            } catch let e as StrataError where e.code == .damaged {
                throw StrataError.corrupt("snapshot \(snapshot.shortHex) cannot be read (\(e.message)); run 'strata fsck'")
            }
        }
        return live
    }

    private mutating func visit(_ id: ObjectID, reader: ObjectReader) throws {
        guard ids.insert(id).inserted else { return }
        switch try reader.node(id) {
        case .leaf(let entries):
            for e in entries where e.kind == .chunk { ids.insert(e.id) }
        case .interior(_, let children):
            for c in children { try visit(c.id, reader: reader) }
        }
    }

    func contains(_ id: ObjectID) -> Bool { ids.contains(id) }
}
