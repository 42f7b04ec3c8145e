/// How an image is cut into chunks, as recorded in the config.
///
/// `cdc`: content-defined boundaries at 4 KiB-aligned offsets, between `minSize` and `maxSize`, averaging about
/// `averageSize`. `fixed`: a cut every `averageSize` bytes of the image (then `minSize == maxSize == averageSize`).
/// In both, zero pages are never part of a chunk: they form zero runs.
public struct ChunkerParameters: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable { case cdc, fixed }

    public var kind: Kind
    public var minSize: Int
    public var averageSize: Int
    public var maxSize: Int

    public static let pageSize = 4096
    public static let `default` = ChunkerParameters.cdc(average: 16 << 10)

    /// Content-defined chunking with the given average: min = average/4 (at least one page), max = 4 × average.
    public static func cdc(average: Int) -> ChunkerParameters {
        ChunkerParameters(kind: .cdc, minSize: max(pageSize, average / 4 / pageSize * pageSize), averageSize: average,
                          maxSize: average * 4)
    }

    public static func fixed(size: Int) -> ChunkerParameters {
        ChunkerParameters(kind: .fixed, minSize: size, averageSize: size, maxSize: size)
    }

    /// Parses `cdc:16K`, `cdc:16384`, `fixed:512K` (suffixes K, M; sizes multiples of 4 KiB).
    public static func parse(_ text: String) throws -> ChunkerParameters {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let size = ByteSize.parse(parts[1]) else {
            throw StrataError(.invalidArgument, "chunker '\(text)' is not valid: use cdc:SIZE or fixed:SIZE, e.g. cdc:16K or fixed:512K")
        }
        guard size > 0, size % pageSize == 0 else {
            throw StrataError(.invalidArgument, "chunker '\(text)' is not valid: the size must be a positive multiple of 4 KiB (4K, 8K, 16K…)")
        }
        guard size <= 16 << 20 else {
            throw StrataError(.invalidArgument, "chunker '\(text)' is not valid: the size must be at most 16M")
        }
        let p: ChunkerParameters
        switch parts[0] {
        case "cdc":
            guard size <= 4 << 20 else {
                throw StrataError(.invalidArgument, "chunker '\(text)' is not valid: a cdc average must be at most 4M")
            }
            p = .cdc(average: size)
        case "fixed": p = .fixed(size: size)
        default:
            throw StrataError(.invalidArgument, "chunker '\(text)' is not valid: the kind must be cdc or fixed")
        }
        try p.validate()
        return p
    }

    func validate() throws {
        let page = Self.pageSize
        for s in [minSize, averageSize, maxSize] where s % page != 0 || s <= 0 {
            throw StrataError(.invalidArgument, "chunk size \(s) is not a positive multiple of 4 KiB")
        }
        guard minSize <= averageSize && averageSize <= maxSize && maxSize <= 16 << 20 else {
            throw StrataError(.invalidArgument, "chunk sizes must satisfy min ≤ average ≤ max ≤ 16 MiB")
        }
        if kind == .cdc {
            guard averageSize >= 2 * page && averageSize > minSize else {
                throw StrataError(.invalidArgument, "a cdc average chunk size must be at least 8 KiB")
            }
        } else {
            guard minSize == averageSize && maxSize == averageSize else {
                throw StrataError(.invalidArgument, "a fixed chunker has one size")
            }
        }
    }

    public var description: String {
        switch kind {
        case .cdc: return "cdc:\(ByteSize.compact(averageSize))"
        case .fixed: return "fixed:\(ByteSize.compact(averageSize))"
        }
    }
}

/// Byte counts as people write them.
public enum ByteSize {
    /// Parses `4096`, `16K`, `16KiB`, `1M`, `2G` (binary units).
    public static func parse(_ text: String) -> Int? {
        var t = text.uppercased()
        for suffix in ["IB", "B"] where t.hasSuffix(suffix) && t.count > suffix.count { t.removeLast(suffix.count); break }
        var multiplier = 1
        if let last = t.last, let m = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String(last)] {
            multiplier = m
            t.removeLast()
        }
        guard let n = Int(t), n >= 0, n <= Int.max / multiplier else { return nil }
        return n * multiplier
    }

    /// `16K`, `512K`, `1M`: the shortest exact form.
    public static func compact(_ n: Int) -> String {
        if n >= 1 << 20 && n % (1 << 20) == 0 { return "\(n >> 20)M" }
        if n >= 1 << 10 && n % (1 << 10) == 0 { return "\(n >> 10)K" }
        return "\(n)"
    }
}
