/// Builds a chunk map as a tree while the image streams through it, writing each finished node at once.
///
/// A leaf ends after a chunk whose id has its low 6 bits zero (about 64 entries a leaf), an interior node after a
/// child whose id has its low 5 bits zero (about 32 children), or when a node is full. Because boundaries come from
/// ids, a change in one place of the image does not move the node boundaries after it: unchanged stretches of the
/// image keep their nodes, which the next snapshot shares. Memory is one node per level.
final class ChunkMapBuilder {
    static let leafMask: UInt64 = 63
    static let interiorMask: UInt64 = 31

    private var leaf: [MapEntry] = []
    private var levels: [[MapChild]] = []
    private(set) var totalLength: UInt64 = 0
    private let store: (MapNode) throws -> ObjectID

    /// - Parameter store: persists a node and returns its id.
    init(store: @escaping (MapNode) throws -> ObjectID) {
        self.store = store
        leaf.reserveCapacity(MapNode.maxLeafEntries)
    }

    func appendChunk(_ id: ObjectID, length: Int) throws {
        totalLength += UInt64(length)
        leaf.append(.chunk(id, length: length))
        if id.w3 & Self.leafMask == 0 || leaf.count >= MapNode.maxLeafEntries {
            try closeLeaf()
        }
    }

    func appendZero(_ length: UInt64) throws {
        guard length > 0 else { return }
        totalLength += length
        if let last = leaf.last, last.kind == .zero {
            leaf[leaf.count - 1].length += length
            return
        }
        leaf.append(.zero(length))
        if leaf.count >= MapNode.maxLeafEntries { try closeLeaf() }
    }

    private func closeLeaf() throws {
        let length = leaf.reduce(UInt64(0)) { $0 + $1.length }
        let id = try store(.leaf(leaf))
        leaf.removeAll(keepingCapacity: true)
        try push(MapChild(id: id, length: length), level: 0)
    }

    /// Adds a child to interior level `level` (0 is the first level above the leaves).
    private func push(_ child: MapChild, level: Int) throws {
        if levels.count == level { levels.append([]) }
        levels[level].append(child)
        if child.id.w3 & Self.interiorMask == 0 || levels[level].count >= MapNode.maxChildren {
            try closeLevel(level)
        }
    }

    private func closeLevel(_ level: Int) throws {
        let children = levels[level]
        levels[level].removeAll(keepingCapacity: true)
        let length = children.reduce(UInt64(0)) { $0 + $1.length }
        let id = try store(.interior(level: UInt8(level + 1), children))
        try push(MapChild(id: id, length: length), level: level + 1)
    }

    /// Closes every open node and returns the root's id.
    func finish() throws -> ObjectID {
        if !leaf.isEmpty || levels.isEmpty {
            try closeLeaf()
        }
        var level = 0
        while level < levels.count {
            let isTop = level == levels.count - 1
            if isTop && levels[level].count == 1 {
                return levels[level][0].id
            }
            if !levels[level].isEmpty { try closeLevel(level) }
            level += 1
        }
        throw StrataError.bug("chunk map builder ended without a root")
    }
}
