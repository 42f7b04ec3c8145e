import FoundationEssentials

/// The immutable record of a snapshot: the facts at creation and the root of its chunk map.
/// Stored as canonical JSON (sorted keys) in `snapshots/<id>`, where `<id>` is the SHA-256 of the file's bytes.
public struct Manifest: Codable, Sendable, Equatable {
    public var format: Int
    /// The volume this snapshot is a version of.
    public var volume: String
    /// The path that was read (`-` for standard input).
    public var source: String
    /// `file`, `fileClone` (a file read through a point-in-time clone of it), `blockDevice` or `stream`; readers
    /// show kinds they do not know as they are.
    public var sourceKind: String
    /// Logical size of the image in bytes.
    public var size: UInt64
    /// When the snapshot started (point in time of the image), RFC 3339 UTC.
    public var createdAt: String
    /// When it was committed, RFC 3339 UTC.
    public var completedAt: String
    public var description: String
    /// Tags given at creation (`key=value`).
    public var tags: [String: String]
    /// The chunker in force (`cdc:16K`, `fixed:512K`).
    public var chunker: String
    /// Root of the chunk map (hex id of a map node).
    public var root: String
    /// Bytes of the image that are not zero runs.
    public var dataBytes: UInt64
    /// Chunks in the map (with repeats).
    public var chunkCount: UInt64
    /// Chunks this snapshot added to the repository.
    public var newChunks: UInt64
    /// Uncompressed bytes of the chunks it added.
    public var newBytes: UInt64
    /// Bytes of pack files it wrote (compressed chunks and map nodes, with tables of contents).
    public var storedBytes: UInt64
    /// The host that took it.
    public var host: String
    /// True when the source changed (size or modification time) while it was read.
    public var sourceChanged: Bool

    public static let maxEncodedSize = 1 << 20

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [0x0a]
    }

    static func decode(_ bytes: [UInt8], what: String) throws -> Manifest {
        let m: Manifest
        do {
            m = try JSONDecoder().decode(Manifest.self, from: Data(bytes))
        } catch {
            throw StrataError.corrupt("\(what) is damaged: not a valid manifest")
        }
        guard m.format == 1 else {
            throw StrataError(.unsupportedFormat, "\(what) has format \(m.format), which this strata does not read")
        }
        guard m.rootID != nil else { throw StrataError.corrupt("\(what) is damaged: its map root is not an id") }
        return m
    }

    public var rootID: ObjectID? { ObjectID(hex: root) }
    public var createdDate: Date { Timestamp.parse(createdAt) ?? Date(timeIntervalSince1970: 0) }
}

/// A snapshot as listed: its id and manifest.
public struct Snapshot: Sendable, Equatable {
    public let id: ObjectID
    public let manifest: Manifest
}
