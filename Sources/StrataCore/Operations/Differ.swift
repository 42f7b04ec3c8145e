/// The byte ranges in which two snapshots differ (what EBS exposes as changed blocks).
public struct SnapshotDiff: Sendable {
    /// Changed ranges, merged and in order: `start..<end`.
    public var ranges: [Range<UInt64>] = []
    public var changedBytes: UInt64 { ranges.reduce(0) { $0 + ($1.upperBound - $1.lowerBound) } }
    /// Map nodes read, and subtrees skipped because both snapshots share them.
    public var nodesRead = 0
    public var subtreesSkipped = 0
}

/// Compares two chunk maps without reading chunk data. Both maps are walked together by image offset; a subtree
/// that both have at the same offset is skipped whole. Where chunk boundaries differ, the overlap is compared:
/// two zero runs are equal; two chunks are equal only when they are the same chunk at the same offset.
/// Bytes past the end of the shorter image count as changed.
public struct Differ {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    private enum Item {
        case node(ObjectID, start: UInt64, length: UInt64)
        case entry(MapEntry, start: UInt64)

        var start: UInt64 {
            switch self {
            case .node(_, let s, _), .entry(_, let s): return s
            }
        }
        var end: UInt64 {
            switch self {
            case .node(_, let s, let l): return s + l
            case .entry(let e, let s): return s + e.length
            }
        }
    }

    public func diff(_ a: Snapshot, _ b: Snapshot) throws -> SnapshotDiff {
        let lock = try? repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        try SnapshotStore(repo: repo).requireStillThere([a, b])
        let index = try ChunkIndex.load(repo, strict: false)
        let reader = ObjectReader(repo: repo, index: index)
        var result = SnapshotDiff()
        // Each side is a stack of items still to visit, the next one last.
        var sideA: [Item] = [.node(a.manifest.rootID!, start: 0, length: a.manifest.size)]
        var sideB: [Item] = [.node(b.manifest.rootID!, start: 0, length: b.manifest.size)]
        var position: UInt64 = 0

        func changed(_ r: Range<UInt64>) {
            guard !r.isEmpty else { return }
            if let last = result.ranges.last, last.upperBound == r.lowerBound {
                result.ranges[result.ranges.count - 1] = last.lowerBound..<r.upperBound
            } else {
                result.ranges.append(r)
            }
        }
        func expand(_ side: inout [Item]) throws {
            guard case .node(let id, let start, _) = side.removeLast() else { return }
            result.nodesRead += 1
            var offset = start
            var children: [Item] = []
            switch try reader.node(id) {
            case .leaf(let entries):
                for e in entries {
                    children.append(.entry(e, start: offset))
                    offset += e.length
                }
            case .interior(_, let kids):
                for c in kids {
                    children.append(.node(c.id, start: offset, length: c.length))
                    offset += c.length
                }
            }
            side.append(contentsOf: children.reversed())
        }
        /// Drops items that end at or before `position`.
        func trim(_ side: inout [Item]) {
            while let top = side.last, top.end <= position { side.removeLast() }
        }

        while true {
            trim(&sideA)
            trim(&sideB)
            guard let topA = sideA.last, let topB = sideB.last else { break }
            if case .node(let idA, let sA, let lA) = topA, case .node(let idB, let sB, let lB) = topB,
               idA == idB, sA == sB, lA == lB {
                result.subtreesSkipped += 1
                position = sA + lA
                continue
            }
            if case .node = topA { try expand(&sideA); continue }
            if case .node = topB { try expand(&sideB); continue }
            guard case .entry(let eA, let sA) = topA, case .entry(let eB, let sB) = topB else { break }
            let end = min(topA.end, topB.end)
            let same = (eA.kind == .zero && eB.kind == .zero) || (eA.kind == .chunk && eB.kind == .chunk && eA.id == eB.id && sA == sB)
            if !same { changed(max(position, max(sA, sB))..<end) }
            position = end
        }
        // Whatever remains on the longer side is changed.
        let longest = max(a.manifest.size, b.manifest.size)
        if position < longest { changed(position..<longest) }
        return result
    }
}
