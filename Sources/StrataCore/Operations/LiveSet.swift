/// The objects that snapshots need: every map node and chunk reachable from the given manifests, as marks on the
/// index (`ObjectMarks`). Shared subtrees are walked once.
struct LiveSet {
    private(set) var marks: ObjectMarks

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
        var live = LiveSet(marks: ObjectMarks(index: reader.index))
        var unreadable: [(id: ObjectID, problem: String)] = []
        for (snapshot, root) in roots {
            do {
                try live.marks.markReachable(from: root, reader: reader)
            } catch let e as StrataError where e.code == .damaged {
                let problem = "snapshot \(snapshot.shortHex) cannot be read (\(e.message))"
                guard tolerant else { throw StrataError.corrupt("\(problem); run 'strata fsck'") }
                unreadable.append((snapshot, problem))
            }
        }
        return (live, unreadable)
    }

    /// Reachable ids that the index does not hold a slot for.
    var unslotted: Set<ObjectID> { marks.unslotted }

    func contains(_ id: ObjectID) -> Bool { marks.contains(id) }
}
