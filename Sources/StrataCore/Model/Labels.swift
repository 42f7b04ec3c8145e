#if canImport(Glibc)
import Glibc
#endif

/// Rules for the names and labels users give: volumes, tags and descriptions.
public enum Labels {
    /// A name as it can be shown on one line: control characters escaped as a shell or C string would show them (`\\t`,
    /// `\\n`, `\\r`, `\\x1b`), at most `limit` characters.
    public static func printable(_ s: String, limit: Int = 80) -> String {
        var out = ""
        for scalar in s.unicodeScalars.prefix(limit) {
            switch scalar.value {
            case 0x09: out += "\\t"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0..<0x20, 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return s.unicodeScalars.count > limit ? out + "…" : out
    }

    static func hasControl(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    public static func validateVolume(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 255 else {
            throw StrataError(.invalidArgument, "volume name '\(printable(name))' is not valid: it must be 1 to 255 bytes")
        }
        guard !hasControl(name) else {
            throw StrataError(.invalidArgument, "volume name is not valid: it contains a control character")
        }
        // Blanks at either end would not show in `log`'s column, and a name that is only blanks not at all.
        guard name.first?.isWhitespace == false, name.last?.isWhitespace == false else {
            throw StrataError(.invalidArgument, "volume name '\(printable(name))' is not valid: it starts or ends with a blank")
        }
    }

    public static func validateTag(key: String, value: String) throws {
        guard !key.isEmpty, key.utf8.count <= 128, !key.contains("="), !hasControl(key) else {
            throw StrataError(.invalidArgument, "tag key '\(printable(key))' is not valid: 1 to 128 bytes, no '=' and no control characters")
        }
        guard value.utf8.count <= 256, !hasControl(value) else {
            throw StrataError(.invalidArgument, "tag '\(printable(key))' has a value that is not valid: at most 256 bytes, no control characters")
        }
    }

    public static func validateDescription(_ text: String) throws {
        guard text.utf8.count <= 4096 else {
            throw StrataError(.invalidArgument, "description is too long: at most 4096 bytes")
        }
        guard !text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || $0.value == 0x7f }) else {
            throw StrataError(.invalidArgument, "description contains a control character")
        }
    }

    /// Parses `key=value` (a missing `=` means an empty value).
    public static func parseTag(_ text: String) throws -> (String, String) {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let key = parts[0]
        let value = parts.count > 1 ? parts[1] : ""
        try validateTag(key: key, value: value)
        return (key, value)
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }
}
