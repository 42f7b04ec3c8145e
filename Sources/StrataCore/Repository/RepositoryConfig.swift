import Foundation

/// The repository's `config` file: written once by `init`, read by every command. JSON, documented in docs/FORMAT.md.
public struct RepositoryConfig: Codable, Sendable, Equatable {
    /// The on-disk format version. This build reads and writes format 1.
    public var format: Int
    /// A random identifier of this repository (32 hex digits).
    public var repositoryID: String
    /// How images are cut into chunks.
    public var chunker: ChunkerParameters
    /// How chunk ids are computed: `sha256-pages` (SHA-256 over the SHA-256 of each 4 KiB page).
    public var chunkHash: String
    /// The compressor of pack frames.
    public var compression: CompressionParameters
    /// Target size of a pack file in bytes (a pack is closed once it reaches this size).
    public var packSize: Int
    /// The encryption scheme of stored objects: `none` in this version.
    public var encryption: String
    /// When the repository was created, RFC 3339 UTC.
    public var createdAt: String
    /// How many snapshots may run at once (absent: 5, the EBS rule).
    public var concurrentSnapshots: Int?

    public static let defaultConcurrentSnapshots = 5
    public var snapshotLimit: Int { concurrentSnapshots ?? Self.defaultConcurrentSnapshots }

    public static let currentFormat = 1
    public static let defaultPackSize = 16 << 20

    public init(chunker: ChunkerParameters, compression: CompressionParameters, createdAt: Date = Date()) {
        format = Self.currentFormat
        repositoryID = RandomName.make()
        self.chunker = chunker
        chunkHash = "sha256-pages"
        self.compression = compression
        packSize = Self.defaultPackSize
        encryption = "none"
        self.createdAt = Timestamp.format(createdAt)
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self)) + [0x0a]
    }

    /// Decodes and validates a config; anything this build cannot honour is a typed error.
    static func decode(_ bytes: [UInt8], path: String) throws -> RepositoryConfig {
        struct Probe: Decodable { var format: Int? }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)), let format = probe.format else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository config (not valid JSON with a format number)")
        }
        guard format == currentFormat else {
            throw StrataError(.unsupportedFormat, "repository format \(format) is not supported by this strata (it reads format \(currentFormat)); upgrade strata")
        }
        let config: RepositoryConfig
        do {
            config = try JSONDecoder().decode(RepositoryConfig.self, from: Data(bytes))
        } catch {
            throw StrataError.corrupt("config \(path) is damaged: \(error)")
        }
        try config.chunker.validate()
        try config.compression.validate()
        guard config.chunkHash == "sha256-pages" else {
            throw StrataError(.unsupportedFormat, "chunk hash '\(config.chunkHash)' is not supported by this strata")
        }
        guard config.encryption == "none" else {
            throw StrataError(.unsupportedFormat, "encryption scheme '\(config.encryption)' is not supported by this strata")
        }
        if let n = config.concurrentSnapshots, n < 1 || n > 1000 {
            throw StrataError.corrupt("config \(path) is damaged: concurrentSnapshots \(n) is out of range (1 to 1000)")
        }
        guard config.packSize >= 1 << 20 && config.packSize <= 1 << 30 else {
            throw StrataError.corrupt("config \(path) is damaged: packSize \(config.packSize) is out of range")
        }
        return config
    }
}

/// Compression of pack frames.
public struct CompressionParameters: Codable, Sendable, Equatable {
    /// Always `zstd` in format 1.
    public var algorithm: String
    /// zstd level, 1 to 19.
    public var level: Int
    /// Uncompressed bytes gathered into one frame before it is compressed.
    public var frameSize: Int

    public static let defaultLevel = 3
    public static let defaultFrameSize = 1 << 20

    public init(level: Int = defaultLevel, frameSize: Int = defaultFrameSize) {
        algorithm = "zstd"
        self.level = level
        self.frameSize = frameSize
    }

    func validate() throws {
        guard algorithm == "zstd" else {
            throw StrataError(.unsupportedFormat, "compression '\(algorithm)' is not supported by this strata")
        }
        guard (1...19).contains(level) else {
            throw StrataError(.invalidArgument, "compression level \(level) is out of range (1 to 19)")
        }
        guard frameSize >= 64 << 10 && frameSize <= 16 << 20 else {
            throw StrataError(.invalidArgument, "frame size \(frameSize) is out of range (64 KiB to 16 MiB)")
        }
    }
}

/// RFC 3339 timestamps in UTC with millisecond precision.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = formatter.date(from: text) { return d }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
