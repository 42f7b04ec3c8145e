import FoundationEssentials

/// The repository's `config` file: written once by `init`, read by every command. JSON, documented in docs/FORMAT.md.
public struct RepositoryConfig: Codable, Sendable, Equatable {
    /// The on-disk format version: 2 for new repositories; this build reads and writes formats 1 and 2 (a
    /// repository keeps its format: a format-1 repository is written in format 1).
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
    /// The encryption scheme of stored objects: `none`, `aes-256-gcm` or `chacha20-poly1305`.
    public var encryption: String
    /// When the repository was created, RFC 3339 UTC.
    public var createdAt: String
    /// How many snapshots may run at once (absent: 5, the EBS rule).
    public var concurrentSnapshots: Int?
    /// Only in the repository a sealed bundle holds: whether its snapshots come from an encrypted repository (then
    /// they may be imported only into an encrypted one: encrypted snapshots stay encrypted). Absent in a sealed
    /// bundle counts as true.
    public var snapshotsEncrypted: Bool?

    public static let defaultConcurrentSnapshots = 5
    public var snapshotLimit: Int { concurrentSnapshots ?? Self.defaultConcurrentSnapshots }

    public static let currentFormat = 2
    /// The formats this build reads and writes.
    public static let supportedFormats: ClosedRange<Int> = 1...2
    public static let defaultPackSize = 16 << 20

    public init(chunker: ChunkerParameters, compression: CompressionParameters, format: Int = currentFormat, createdAt: Date = Date()) {
        self.format = format
        repositoryID = RandomName.make()
        self.chunker = chunker
        chunkHash = "sha256-pages"
        self.compression = compression
        packSize = Self.defaultPackSize
        encryption = "none"
        self.createdAt = Timestamp.format(createdAt)
    }

    /// The version of the pack and index file layouts this repository is written in (its format).
    var structureVersion: UInt32 { UInt32(format) }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self)) + [0x0a]
    }

    /// Decodes and validates a config; anything this build cannot honour is a typed error.
    static func decode(_ bytes: [UInt8], path: String) throws -> RepositoryConfig {
        struct Probe: Decodable { var format: Int? }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)), let format = probe.format else {
            throw StrataError(.damaged, "config \(path) is damaged (not valid JSON with a format number); the repository cannot be opened")
        }
        guard supportedFormats.contains(format) else {
            throw StrataError(.unsupportedFormat, "repository format \(format) is not supported by this strata (it reads formats \(supportedFormats.lowerBound) to \(supportedFormats.upperBound)); upgrade strata")
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
        guard ObjectSealer.Scheme(rawValue: config.encryption) != nil else {
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
    /// Always `zstd` (formats 1 and 2).
    public var algorithm: String
    /// zstd level, 1 to 19.
    public var level: Int
    /// Uncompressed bytes gathered into one frame before it is compressed.
    public var frameSize: Int

    public static let defaultLevel = 3
    /// 2 MiB: on the benchmark fixture 6 MB (1.2%) smaller than 1 MiB frames at the same speed within the
    /// machine's noise (docs/BENCHMARKS.md, "Frame size").
    public static let defaultFrameSize = 2 << 20

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

/// RFC 3339 timestamps in UTC with millisecond precision (`2026-11-25T09:39:52.123Z`). Written with the C library,
/// not Foundation's formatters, which would load ICU's tables (tens of MiB) into every command.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = time_t(t.rounded(.down))
        var millis = Int(((t - Double(seconds)) * 1000).rounded())
        if millis == 1000 { seconds += 1; millis = 0 }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(cFormat: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// Days in a month of the Gregorian calendar (February 29 in leap years).
    public static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`; nil for anything else (a day the month does not have, too).
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func num(_ i: Int, _ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                guard b[k] >= 48 && b[k] <= 57 else { return nil }
                v = v * 10 + Int(b[k] - 48)
            }
            return v
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58,
              let year = num(0, 4), let month = num(5, 2), let day = num(8, 2), let hour = num(11, 2), let minute = num(14, 2),
              let second = num(17, 2), (1...12).contains(month), (1...days(inMonth: month, year: year)).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count && b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count && b[i] >= 48 && b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), oh < 24, i + 3 < b.count, b[i + 3] == 58, let om = num(i + 4, 2), om < 60 {
            offset = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var parts = tm(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds - offset) + fraction)
    }
}

#if canImport(Glibc)
import Glibc
#endif
