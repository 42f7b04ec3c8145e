import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Local dates and times of instants, from the C library: it follows `TZ` and /etc/localtime and reads the tz
/// database itself, so the buckets of retention and the dates people type mean the same in every build (Foundation
/// without its internationalization library knows only GMT).
public struct CivilTimeZone: Sendable, Equatable {
    /// A tz database name (`Europe/Berlin`), or nil for the process's local time.
    public let name: String?

    /// Local time: `TZ`, or else /etc/localtime.
    public static let local = CivilTimeZone(name: nil)

    /// A zone of the tz database (`UTC`, `Europe/Berlin`); nil when /usr/share/zoneinfo has no such zone.
    public static func named(_ name: String) -> CivilTimeZone? {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains(".."),
              (try? FileSystem.status("/usr/share/zoneinfo/" + name))??.isRegularFile == true else { return nil }
        return CivilTimeZone(name: name)
    }

    /// The C library keeps one time zone per process: a named zone is set, used and put back under this lock.
    private static let lock = Lock()

    private func within<T>(_ body: () -> T) -> T {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        guard let name else {
            tzset()
            return body()
        }
        let saved = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", name, 1)
        tzset()
        defer {
            if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
            tzset()
        }
        return body()
    }

    /// `date` in this zone, formatted by `strftime` (`%Y-%m-%d`, `%G-W%V`).
    public func format(_ date: Date, _ pattern: String) -> String {
        within {
            var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
            var parts = tm()
            localtime_r(&seconds, &parts)
            var buffer = [CChar](repeating: 0, count: 128)
            let n = strftime(&buffer, buffer.count, pattern, &parts)
            return n > 0 ? String(cString: buffer) : ""
        }
    }

    /// The instant of a wall-clock date and time in this zone (`mktime`: a time skipped or repeated by a daylight
    /// saving change is taken as the C library resolves it); nil when it cannot be represented.
    public func date(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) -> Date? {
        within {
            var parts = tm(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            parts.tm_isdst = -1
            let t = mktime(&parts)
            return t == -1 ? nil : Date(timeIntervalSince1970: TimeInterval(t))
        }
    }
}

extension tm {
    /// The C library's broken-down time from calendar fields (month 1–12), for `mktime` and `timegm`.
    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        self.init()
        tm_year = Int32(year - 1900)
        tm_mon = Int32(month - 1)
        tm_mday = Int32(day)
        tm_hour = Int32(hour)
        tm_min = Int32(minute)
        tm_sec = Int32(second)
    }
}
