import Testing
@testable import StrataCore

@Suite("Chunk map")
struct ChunkMapTests {
    /// Builds a map in memory; returns the root and the node store.
    static func build(_ entries: [MapEntry]) throws -> (ObjectID, [ObjectID: MapNode]) {
        var nodes: [ObjectID: MapNode] = [:]
        let builder = ChunkMapBuilder { node in
            let id = ObjectID.sha256(node.encoded())
            nodes[id] = node
            return id
        }
        for e in entries {
            if e.kind == .chunk { try builder.appendChunk(e.id, length: Int(e.length)) } else { try builder.appendZero(e.length) }
        }
        return (try builder.finish(), nodes)
    }

    static func flatten(_ id: ObjectID, _ nodes: [ObjectID: MapNode]) -> [MapEntry] {
        switch nodes[id]! {
        case .leaf(let e): return e
        case .interior(_, let children): return children.flatMap { flatten($0.id, nodes) }
        }
    }

    static func entries(_ n: Int, seed: UInt64) -> [MapEntry] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { i in i % 10 == 9 ? .zero(4096) : .chunk(ObjectID(bytes: rng.bytes(32))!, length: 16384) }
    }

    @Test("the tree lists the entries in order", arguments: [0, 1, 63, 1000, 50_000])
    func roundTrip(count: Int) throws {
        let input = Self.entries(count, seed: 1)
        let (root, nodes) = try Self.build(input)
        #expect(Self.flatten(root, nodes) == input)
        if count > 10_000 {
            guard case .interior(let level, _) = nodes[root]! else { Issue.record("root is a leaf"); return }
            #expect(level >= 2)
            // Every node stays within its bounds.
            for node in nodes.values {
                switch node {
                case .leaf(let e): #expect(e.count <= MapNode.maxLeafEntries)
                case .interior(_, let c): #expect(c.count <= MapNode.maxChildren)
                }
            }
        }
    }

    @Test("consecutive zero runs merge, and splitting them does not change the tree")
    func zeroMerge() throws {
        let a = try Self.build([.zero(4096), .zero(8192), .zero(4096)])
        let b = try Self.build([.zero(16384)])
        #expect(a.0 == b.0)
    }

    @Test("a change in one place keeps almost every node shared")
    func sharing() throws {
        var input = Self.entries(20_000, seed: 2)
        let (_, before) = try Self.build(input)
        var rng = SeededRandom(seed: 99)
        input[7_000] = .chunk(ObjectID(bytes: rng.bytes(32))!, length: 16384)
        input.insert(.chunk(ObjectID(bytes: rng.bytes(32))!, length: 4096), at: 12_000)
        let (_, after) = try Self.build(input)
        let fresh = after.keys.filter { before[$0] == nil }.count
        #expect(fresh <= 12, "\(fresh) new nodes of \(after.count)")
    }
}
