import Testing
@testable import StrataCore

/// The C library's formatting and time zones, which replaced Foundation's.
@Suite("C formatting and time zones")
struct CFormatTests {
    @Test("String(cFormat:) formats as printf does, however long the result")
    func formats() {
        #expect(String(cFormat: "%.2f s", 3.14159) == "3.14 s")
        #expect(String(cFormat: "%02d:%02d", 7, 5) == "07:05")
        #expect(String(cFormat: "%3.0f%%", 42.4) == " 42%")
        #expect(String(cFormat: "%ld", Int.max) == "9223372036854775807")
        #expect(String(cFormat: "%g", 0.001) == "0.001")
        // Longer than the first buffer: formatted again into one that fits.
        let long = String(cFormat: "%400d|", 1)
        #expect(long.count == 401 && long.hasSuffix("1|") && long.hasPrefix("   "))
    }

    @Test("time zones by tz database name; anything else is refused")
    func zones() {
        #expect(CivilTimeZone.named("UTC") != nil)
        #expect(CivilTimeZone.named("Europe/Berlin") != nil)
        for bad in ["", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe"] {
            #expect(CivilTimeZone.named(bad) == nil, "\(bad)")
        }
        // 2026-03-10T23:30:00Z is the 11th in Berlin, the 10th in UTC; local midnight parses back.
        let instant = Timestamp.parse("2026-03-10T23:30:00Z")!
        #expect(CivilTimeZone.named("Europe/Berlin")!.format(instant, "%Y-%m-%d %H:%M") == "2026-03-11 00:30")
        #expect(CivilTimeZone.named("UTC")!.format(instant, "%Y-%m-%d %H:%M") == "2026-03-10 23:30")
        #expect(CivilTimeZone.named("Europe/Berlin")!.date(year: 2026, month: 3, day: 11) == Timestamp.parse("2026-03-10T23:00:00Z"))
    }
}
