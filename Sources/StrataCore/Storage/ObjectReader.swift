/// Reads verified map nodes and walks chunk maps. One per thread.
final class ObjectReader {
    let repo: Repository
    let index: ChunkIndex
    private let cache: FrameCache

    init(repo: Repository, index: ChunkIndex) {
        self.repo = repo
        self.index = index
        // Map nodes are written in tree order, so a walk reads their frames nearly in sequence: a few suffice.
        cache = FrameCache(repo: repo, index: index, capacity: 3)
    }

    /// Loads and verifies one map node.
    func node(_ id: ObjectID) throws -> MapNode {
        guard let location = index.location(of: id) else {
            throw StrataError.corrupt("map node \(id.shortHex) is missing from the index\(index.missingHint)")
        }
        guard location.kind == .mapNode else { throw StrataError.corrupt("object \(id.shortHex) is not a map node") }
        let bytes = try cache.object(id, at: location)
        guard repo.identity.id(bytes) == id else {
            throw StrataError.corrupt("map node \(id.shortHex) does not match its hash")
        }
        return try MapNode.decode(bytes, what: "map node \(id.shortHex)")
    }

    /// Visits the entries of a chunk map in image order with their offsets.
    /// - Returns: the number of bytes the map covers.
    @discardableResult
    func forEachEntry(root: ObjectID, _ visit: (UInt64, MapEntry) throws -> Void) throws -> UInt64 {
        var offset: UInt64 = 0
        try walk(root, offset: &offset, visit)
        return offset
    }

    private func walk(_ id: ObjectID, offset: inout UInt64, _ visit: (UInt64, MapEntry) throws -> Void) throws {
        switch try node(id) {
        case .leaf(let entries):
            for e in entries {
                try visit(offset, e)
                let (sum, overflow) = offset.addingReportingOverflow(e.length)
                guard !overflow, sum <= UInt64(Int64.max) else { throw StrataError.corrupt("map node \(id.shortHex) covers more than 2^63 bytes") }
                offset = sum
            }
        case .interior(_, let children):
            for c in children {
                let start = offset
                try walk(c.id, offset: &offset, visit)
                guard offset - start == c.length else {
                    throw StrataError.corrupt("map node \(c.id.shortHex) covers \(offset - start) bytes, its parent says \(c.length)")
                }
            }
        }
    }
}
