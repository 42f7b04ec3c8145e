import FoundationEssentials

/// A retention policy for scripted snapshots: which snapshots to keep, per volume. A snapshot kept by any rule is
/// kept. Rules work on calendar buckets in a time zone (local time by default, as the C library tells it):
///
/// - `last N`: the N newest snapshots.
/// - `hourly/daily/weekly/monthly/yearly N`: going from newest to oldest, the newest snapshot of each of the N most
///   recent hours / days / ISO weeks / months / years that have a snapshot.
/// - `within D`: every snapshot taken within D of the newest snapshot of its volume (not of now: if snapshots stop,
///   retention never removes the last ones).
///
/// Protected snapshots and snapshots that a ref names are never removed by retention.
public struct RetentionPolicy: Sendable, Equatable {
    public var last = 0
    public var hourly = 0
    public var daily = 0
    public var weekly = 0
    public var monthly = 0
    public var yearly = 0
    public var within: TimeInterval?

    public init(last: Int = 0, hourly: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0,
                within: TimeInterval? = nil) {
        self.last = last
        self.hourly = hourly
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.yearly = yearly
        self.within = within
    }

    /// True when no rule is set (then nothing would be kept, which is refused).
    public var isEmpty: Bool {
        last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0 && within == nil
    }

    /// What retention decided about one snapshot.
    public struct Decision: Sendable {
        public let info: SnapshotInfo
        public let keep: Bool
        /// Why it is kept (`last 1`, `daily 2026-11-24`, `within 7d`, `protected`, `ref v1`); empty when removed.
        public let reasons: [String]
    }

    /// Applies the policy to snapshots (any order, any volumes); returns decisions newest first per volume.
    public func apply(to snapshots: [SnapshotInfo], zone: CivilTimeZone = .local) -> [Decision] {
        var out: [Decision] = []
        let byVolume = Dictionary(grouping: snapshots, by: { $0.manifest.volume })
        for volume in byVolume.keys.sorted() {
            let list = byVolume[volume]!.sorted { ($0.manifest.createdDate, $0.id) > ($1.manifest.createdDate, $1.id) }
            out += decide(list, zone: zone)
        }
        return out
    }

    private func decide(_ list: [SnapshotInfo], zone: CivilTimeZone) -> [Decision] {
        struct Rule {
            var name: String
            var left: Int
            var key: (Date) -> String
            var last: String?
        }
        // The bucket of an instant: its local hour, day, ISO week, month or year, as strftime writes it.
        func key(_ pattern: String) -> (Date) -> String { { zone.format($0, pattern) } }
        var rules = [
            Rule(name: "hourly", left: hourly, key: key("%Y-%m-%d %H:00")),
            Rule(name: "daily", left: daily, key: key("%Y-%m-%d")),
            Rule(name: "weekly", left: weekly, key: key("%G-W%V")),
            Rule(name: "monthly", left: monthly, key: key("%Y-%m")),
            Rule(name: "yearly", left: yearly, key: key("%Y")),
        ]
        let newest = list.first?.manifest.createdDate
        var out: [Decision] = []
        for (position, info) in list.enumerated() {
            let date = info.manifest.createdDate
            var reasons: [String] = []
            if position < last { reasons.append("last \(position + 1)") }
            for i in rules.indices where rules[i].left > 0 {
                let k = rules[i].key(date)
                if k != rules[i].last {
                    rules[i].last = k
                    rules[i].left -= 1
                    reasons.append("\(rules[i].name) \(k)")
                }
            }
            if let within, let newest, newest.timeIntervalSince(date) <= within {
                reasons.append("within \(Duration.describe(within)) of the newest")
            }
            if info.protected { reasons.append("protected") }
            for r in info.refs { reasons.append("ref \(r)") }
            out.append(Decision(info: info, keep: !reasons.isEmpty, reasons: reasons))
        }
        return out
    }
}

/// Durations as people type them: `90m`, `36h`, `7d`, `2w`, `1y` (a year is 365 days), or combinations (`1d12h`).
public enum Duration {
    public static func parse(_ text: String) throws -> TimeInterval {
        guard let total = seconds(text) else {
            throw StrataError(.invalidArgument, "duration '\(text)' is not valid: use a number and a unit (s, m, h, d, w, y), e.g. 7d or 36h")
        }
        guard total <= longest else {
            throw StrataError(.invalidArgument, "duration '\(text)' is too long: at most 10000y")
        }
        return total
    }

    /// The seconds `text` spells, unbounded; nil when it is not a duration.
    private static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400]
        var total: TimeInterval = 0
        var number = ""
        var sawUnit = false
        for c in text {
            if c.isASCII && c.isNumber { number.append(c); continue }
            guard let unit = units[c], let n = Double(number) else { return nil }
            total += n * unit
            number = ""
            sawUnit = true
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// The longest duration accepted (10,000 years): longer ones reach past any date a snapshot can carry.
    static let longest: TimeInterval = 10_000 * 365 * 86400

    static func describe(_ t: TimeInterval) -> String {
        let s = Int(min(max(t, 0), longest))
        if s == 0 { return "0s" }
        if s % 86400 == 0 { return "\(s / 86400)d" }
        if s % 3600 == 0 { return "\(s / 3600)h" }
        if s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }

    /// A point in time: RFC 3339 (`2026-11-01T10:00:00Z`), a date (`2026-11-01`, local midnight), or a duration
    /// before `now` (`7d` means seven days ago).
    public static func parseTime(_ text: String, now: Date = Date(), zone: CivilTimeZone = .local) throws -> Date {
        if let d = Timestamp.parse(text) { return d }
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int($0) }
        if (parts.count == 3 || parts.count == 5 || parts.count == 6), !parts.contains(nil), text.count >= 10,
           Array(text.utf8)[4] == 45, Array(text.utf8)[7] == 45 {
            let p = parts.map { $0! }
            let hour = p.count > 3 ? p[3] : 0, minute = p.count > 4 ? p[4] : 0, second = p.count > 5 ? p[5] : 0
            if (1...12).contains(p[1]), (1...Timestamp.days(inMonth: p[1], year: p[0])).contains(p[2]), (0..<24).contains(hour), (0..<60).contains(minute),
               (0..<61).contains(second),
               let d = zone.date(year: p[0], month: p[1], day: p[2], hour: hour, minute: minute, second: second) { return d }
        }
        if seconds(text) != nil { return now.addingTimeInterval(-(try parse(text))) }
        throw StrataError(.invalidArgument, "time '\(text)' is not valid: use 2026-11-01, '2026-11-01 10:00', RFC 3339, or a duration ago like 7d")
    }
}
