import Foundation
import Testing

/// The docs stay in sync with the binary: every verb `strata --help` lists has a section in docs/CLI.md, and every
/// verb's help has an example.
@Suite("docs")
struct DocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func verbs() throws -> [String] {
        let help = try CLI().run(["--help"]).stdout
        var out: [String] = []
        var inSection = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix("SUBCOMMANDS:") { inSection = true; continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { inSection = false; continue }
            if inSection, line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first {
                out.append(String(name))
            }
        }
        return out
    }

    @Test("docs/CLI.md has a section for every verb in --help")
    func cliReferenceCoversEveryVerb() throws {
        let verbs = try Self.verbs()
        #expect(verbs.count >= 18, "\(verbs)")
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/CLI.md"), encoding: .utf8)
        let headings = doc.split(separator: "\n").filter { $0.hasPrefix("### ") }.map { $0.dropFirst(4).replacingOccurrences(of: "`", with: "") }
        for verb in verbs {
            #expect(headings.contains { $0 == verb || $0.hasPrefix(verb + " ") || $0.hasPrefix("strata " + verb) }, "docs/CLI.md has no section for '\(verb)'")
        }
    }

    @Test("every verb's --help shows an example")
    func everyVerbHasAnExample() throws {
        for verb in try Self.verbs() {
            let help = try CLI().run([verb, "--help"]).stdout
            #expect(help.contains("strata \(verb)"), "'strata \(verb) --help' has no example")
        }
    }
}
