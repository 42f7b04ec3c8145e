import Foundation
@testable import StrataCore

/// A seeded generator (SplitMix64) so that every generated input can be reproduced.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            var v = next()
            for _ in 0..<8 where i < n {
                out[i] = UInt8(truncatingIfNeeded: v)
                v >>= 8
                i += 1
            }
        }
        return out
    }

    /// Compressible, varied bytes: runs of words from a small vocabulary mixed with noise.
    mutating func textLike(_ n: Int) -> [UInt8] {
        let words = ["block", "inode", "extent", "journal", "superblock", "strata", "snapshot", "\n", " ", "0x1f", "data"].map { Array($0.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            if next() % 7 == 0 {
                out.append(contentsOf: bytes(Int(next() % 32)))
            } else {
                out.append(contentsOf: words[Int(next() % UInt64(words.count))])
            }
        }
        return Array(out.prefix(n))
    }
}

/// A temporary directory removed at deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("strata-test-XXXXXX").path
        var bytes = Array(template.utf8CString)
        let p = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// A new repository whose packs close at 1 MiB (the smallest the config allows), so that a few MiB of data make
    /// several packs.
    func smallPackRepository(_ name: String) throws -> Repository {
        _ = try Repository.create(at: file(name))
        let config = String(decoding: try FileSystem.readFile(file(name + "/config")), as: UTF8.self)
        _ = try write(name + "/config", Array(config.replacingOccurrences(of: "\"packSize\" : 16777216", with: "\"packSize\" : 1048576").utf8))
        let repo = try Repository.open(at: file(name))
        precondition(repo.config.packSize == 1 << 20)
        return repo
    }
}

extension Repository {
    /// The paths of the pack files on disk.
    func packFilePaths() throws -> [String] {
        var out: [String] = []
        for d in try FileSystem.list(packsPath) {
            for n in try FileSystem.list(packsPath + "/" + d) { out.append(packsPath + "/" + d + "/" + n) }
        }
        return out
    }

    /// How many entries each index file holds, as stored.
    func indexFileEntryCounts() throws -> [Int] {
        try FileSystem.list(indexPath).map { name in
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: FileSystem.join(indexPath, name))))
            return try bytes.withUnsafeBytes { try IndexFileContents.decode($0, what: name) }.0.entries.count
        }
    }

    /// The map entries of a snapshot, in order.
    func entries(of snapshot: Snapshot) throws -> [MapEntry] {
        let index = try ChunkIndex.load(self, strict: true)
        var out: [MapEntry] = []
        try ObjectReader(repo: self, index: index).forEachEntry(root: snapshot.manifest.rootID!) { _, e in out.append(e) }
        return out
    }
}

func snap(_ repo: Repository, _ path: String, volume: String = "v") throws -> Snapshot {
    try Snapshotter(repo: repo).run(SnapshotRequest(source: path, volume: volume)).snapshot
}

func restoreBytes(_ repo: Repository, _ snapshot: Snapshot, in dir: TemporaryDirectory) throws -> [UInt8] {
    let out = dir.file("restore-" + RandomName.make())
    _ = try Restorer(repo: repo).run(snapshot, to: out)
    return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
}
