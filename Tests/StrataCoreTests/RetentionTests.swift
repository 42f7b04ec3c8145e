import Foundation
import Testing
@testable import StrataCore

/// Retention with synthetic timestamps and an injected time zone.
@Suite("Retention")
struct RetentionTests {
    static func info(_ date: Date, volume: String = "v", protected: Bool = false, refs: [String] = [], n: Int) -> SnapshotInfo {
        var bytes = [UInt8](repeating: 0, count: 32)
        withUnsafeBytes(of: UInt64(n).bigEndian) { for i in 0..<8 { bytes[24 + i] = $0[i] } }
        let m = Manifest(format: 1, volume: volume, source: "/x", sourceKind: "file", size: 0, createdAt: Timestamp.format(date),
                         completedAt: Timestamp.format(date), description: "", tags: [:], chunker: "cdc:16K",
                         root: String(repeating: "0", count: 64), dataBytes: 0, chunkCount: 0, newChunks: 0, newBytes: 0,
                         storedBytes: 0, host: "", sourceChanged: false)
        return SnapshotInfo(snapshot: Snapshot(id: ObjectID(bytes: bytes)!, manifest: m), tags: [:], refs: refs, protected: protected)
    }

    static func utc(_ text: String) -> Date { Timestamp.parse(text)! }

    /// A year of nightly snapshots at 02:30 UTC.
    static func nightly(days: Int = 366, from start: String = "2025-11-25T02:30:00Z") -> [SnapshotInfo] {
        let base = utc(start)
        return (0..<days).map { info(base.addingTimeInterval(Double($0) * 86400), n: $0) }
    }

    @Test("a year of nightly snapshots: daily 7, weekly 4, monthly 12")
    func cronRecipe() {
        let snaps = Self.nightly()
        let decisions = RetentionPolicy(daily: 7, weekly: 4, monthly: 12).apply(to: snaps, zone: .named("UTC")!)
        let kept = decisions.filter(\.keep)
        // 7 newest days; weekly and monthly keep the newest of each bucket (some coincide with daily ones).
        let newest = decisions.prefix(7)
        #expect(newest.allSatisfy { $0.keep && $0.reasons.contains { $0.hasPrefix("daily") } })
        #expect(decisions.filter { $0.reasons.contains { $0.hasPrefix("weekly") } }.count == 4)
        #expect(decisions.filter { $0.reasons.contains { $0.hasPrefix("monthly") } }.count == 12)
        #expect(kept.count >= 12 && kept.count <= 7 + 4 + 12)
        // The monthly keeps are the last day of each month (the newest snapshot of the month).
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for d in decisions where d.reasons.contains(where: { $0.hasPrefix("monthly") }) && d.info.id != decisions[0].info.id {
            let next = d.info.manifest.createdDate.addingTimeInterval(86400)
            #expect(calendar.component(.month, from: next) != calendar.component(.month, from: d.info.manifest.createdDate),
                    "\(d.info.manifest.createdAt) is not a month end")
        }
        // Every snapshot is decided exactly once.
        #expect(decisions.count == snaps.count)
    }

    @Test("month ends: 31st, 30th, February 28th and leap day 29th")
    func monthEnds() {
        let dates = ["2024-01-31T23:59:00Z", "2024-02-01T00:01:00Z", "2024-02-29T12:00:00Z", "2024-03-01T00:00:00Z",
                     "2025-02-28T23:00:00Z", "2025-03-01T01:00:00Z", "2025-04-30T22:00:00Z"]
        let snaps = dates.enumerated().map { Self.info(Self.utc($0.element), n: $0.offset) }
        let d = RetentionPolicy(monthly: 10).apply(to: snaps, zone: .named("UTC")!)
        let kept = Set(d.filter(\.keep).map(\.info.manifest.createdAt))
        // Newest per month: Apr 2025, Mar 2025, Feb 2025, Mar 2024, Feb 2024 (the 29th), Jan 2024.
        #expect(kept == Set(["2025-04-30T22:00:00.000Z", "2025-03-01T01:00:00.000Z", "2025-02-28T23:00:00.000Z",
                             "2024-03-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z", "2024-01-31T23:59:00.000Z"]))
    }

    @Test("buckets follow local time: a snapshot at 23:30 UTC is the next day in Berlin")
    func timeZones() {
        let snaps = [Self.info(Self.utc("2026-03-10T23:30:00Z"), n: 1), Self.info(Self.utc("2026-03-10T12:00:00Z"), n: 2)]
        let utc = RetentionPolicy(daily: 5).apply(to: snaps, zone: .named("UTC")!)
        #expect(utc.filter(\.keep).count == 1)  // same UTC day: only the newest
        let berlin = RetentionPolicy(daily: 5).apply(to: snaps, zone: .named("Europe/Berlin")!)
        #expect(berlin.filter(\.keep).count == 2)  // 00:30 on the 11th and 13:00 on the 10th
    }

    @Test("DST: the repeated hour in autumn is one hourly bucket; the skipped hour in spring loses nothing")
    func daylightSaving() {
        let ny = CivilTimeZone.named("America/New_York")!
        // 2026-11-01 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) are the same local hour.
        let autumn = [Self.info(Self.utc("2026-11-01T05:30:00Z"), n: 1), Self.info(Self.utc("2026-11-01T06:30:00Z"), n: 2),
                      Self.info(Self.utc("2026-11-01T07:30:00Z"), n: 3)]
        let a = RetentionPolicy(hourly: 10).apply(to: autumn, zone: ny)
        #expect(a.filter(\.keep).count == 2)
        #expect(!a.first { $0.info.manifest.createdAt.hasPrefix("2026-11-01T05:30") }!.keep)
        // 2026-03-08: 02:00 local does not exist; hourly snapshots at 06:30Z, 07:30Z (03:30 EDT) are distinct hours.
        let spring = [Self.info(Self.utc("2026-03-08T06:30:00Z"), n: 4), Self.info(Self.utc("2026-03-08T07:30:00Z"), n: 5)]
        #expect(RetentionPolicy(hourly: 10).apply(to: spring, zone: ny).allSatisfy { $0.keep })
        // Daily over the DST change: 23 and 25 hour days are still one bucket each.
        let days = (0..<6).map { Self.info(Self.utc("2026-11-01T04:00:00Z").addingTimeInterval(Double($0) * 6 * 3600), n: 10 + $0) }
        let daily = RetentionPolicy(daily: 10).apply(to: days, zone: ny)
        #expect(daily.filter(\.keep).count == 2)
    }

    @Test("last, within, protection and refs; volumes are independent")
    func otherRules() {
        let base = Self.utc("2026-01-01T00:00:00Z")
        var snaps = (0..<10).map { Self.info(base.addingTimeInterval(Double($0) * 3600), n: $0) }
        snaps.append(Self.info(base.addingTimeInterval(-86400 * 30), protected: true, n: 100))
        snaps.append(Self.info(base.addingTimeInterval(-86400 * 40), refs: ["golden"], n: 101))
        snaps += (0..<3).map { Self.info(base.addingTimeInterval(Double($0)), volume: "other", n: 200 + $0) }
        let d = RetentionPolicy(last: 2, within: 3 * 3600).apply(to: snaps, zone: .named("UTC")!)
        let v = d.filter { $0.info.manifest.volume == "v" }
        // last 2 + within 3h of the newest (hours 9, 8, 7, 6) + protected + ref.
        #expect(v.filter(\.keep).count == 6)
        #expect(v.first { $0.info.protected }!.reasons == ["protected"])
        #expect(v.first { !$0.info.refs.isEmpty }!.reasons == ["ref golden"])
        let other = d.filter { $0.info.manifest.volume == "other" }
        #expect(other.filter(\.keep).count == 3)  // last 2 + within 3h
    }

    @Test("durations and times parse")
    func parsing() throws {
        #expect(try Duration.parse("7d") == 7 * 86400)
        #expect(try Duration.parse("1d12h") == 36 * 3600)
        #expect(try Duration.parse("2w") == 14 * 86400)
        for bad in ["", "7", "d", "7x", "-1d", "1.5d"] { #expect(throws: StrataError.self) { try Duration.parse(bad) } }
        let now = Self.utc("2026-06-01T00:00:00Z")
        #expect(try Duration.parseTime("7d", now: now) == now.addingTimeInterval(-7 * 86400))
        #expect(try Duration.parseTime("2026-05-01", zone: .named("UTC")!) == Self.utc("2026-05-01T00:00:00Z"))
        #expect(try Duration.parseTime("2026-05-01T10:00:00Z") == Self.utc("2026-05-01T10:00:00Z"))
        #expect(throws: StrataError.self) { try Duration.parseTime("yesterday") }
    }

    @Test("durations too long, days a month does not have and offsets past a day are refused, not crashed on")
    func outOfRange() throws {
        for huge in ["9223372036854775807s", "999999999999y", "10001y", "99999999999999999999999d"] {
            #expect(throws: StrataError.self) { try Duration.parse(huge) }
            #expect(throws: StrataError.self) { try Duration.parseTime(huge) }
        }
        #expect(try Duration.parse("10000y") == Duration.longest)
        #expect(Duration.describe(0) == "0s")
        #expect(Duration.describe(.infinity) == "3650000d")
        for bad in ["2026-02-30", "2026-04-31", "2025-02-29", "2026-02-30T10:00:00Z", "2026-05-01T10:00:00+25:00", "2026-05-01T10:00:00+01:60"] {
            #expect(throws: StrataError.self) { try Duration.parseTime(bad) }
        }
        #expect(try Duration.parseTime("2024-02-29", zone: .named("UTC")!) == Self.utc("2024-02-29T00:00:00Z"))
        #expect(try Duration.parseTime("2026-05-01T10:00:00+02:00") == Self.utc("2026-05-01T08:00:00Z"))
        // A retention policy with the longest duration keeps everything and describes it.
        let newest = Self.utc("2026-06-01T00:00:00Z")
        let policy = RetentionPolicy(within: try Duration.parse("10000y"))
        let kept = policy.apply(to: [Self.info(newest, n: 1), Self.info(newest.addingTimeInterval(-86400 * 3650), n: 2)],
                                zone: .named("UTC")!)
        #expect(kept.count == 2 && kept.allSatisfy { $0.keep && $0.reasons == ["within 3650000d of the newest"] })
    }
}
