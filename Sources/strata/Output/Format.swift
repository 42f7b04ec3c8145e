import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import StrataCore

/// Human formatting: sizes in binary units, durations, local times, relative ages.
enum Format {
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(n)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(n) B" }
        return String(cFormat: value < 10 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }

    static func bytes(_ n: UInt64) -> String { bytes(Int64(clamping: n)) }

    static func duration(_ seconds: Double) -> String {
        if seconds < 10 { return String(cFormat: "%.2f s", seconds) }
        if seconds < 60 { return String(cFormat: "%.1f s", seconds) }
        let s = Int(seconds)
        if s < 3600 { return "\(s / 60)m\(String(cFormat: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(cFormat: "%02d", (s % 3600) / 60))m"
    }

    /// Local time, second precision, for tables (the C library's time zone rules, not ICU's).
    static func localTime(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "3 hours ago", "2 days ago".
    static func ago(_ date: Date, now: Date = Date()) -> String {
        let s = Int(now.timeIntervalSince(date))
        if s < 0 { return "in the future" }
        func ago(_ n: Int, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s") ago" }
        if s < 60 { return ago(s, "second") }
        if s < 3600 { return ago(s / 60, "minute") }
        if s < 86400 { return ago(s / 3600, "hour") }
        if s < 86400 * 60 { return ago(s / 86400, "day") }
        if s < 86400 * 730 { return ago(s / (86400 * 30), "month") }
        return ago(s / (86400 * 365), "year")
    }

    static func tags(_ tags: [String: String]) -> String {
        tags.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// "1 snapshot", "2 snapshots": a count with its noun.
    static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }

    /// Lays out rows in columns separated by two spaces; the last column is not padded.
    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count - 1 { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// JSON output: sorted keys, one document on stdout.
enum JSONOutput {
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        Terminal.writeOut(String(decoding: data, as: UTF8.self) + "\n")
    }
}
