#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// Text made by the C library's `printf` formatting (`%.1f`, `%02d`, `%3.0f%%`): numbers as people read them,
    /// without Foundation. Floating point as `Double`; an `Int` under `%d` gives its low 32 bits (as Foundation's
    /// `String(format:)` did), so values beyond ±2^31 take `%ld`. No `%@`: join Swift strings outside the format.
    public init(cFormat format: String, _ arguments: CVarArg...) {
        var size = 128
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let n = withVaList(arguments) { vsnprintf(&buffer, size, format, $0) }
            if n < 0 { self = format; return }
            if Int(n) < size { self = String(cString: buffer); return }
            size = Int(n) + 1
        }
    }
}
