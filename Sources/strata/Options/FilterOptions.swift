import ArgumentParser
import FoundationEssentials
import StrataCore

/// `--volume`, `--tag`, `--since`, `--until`: which snapshots a listing or retention considers.
struct FilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only snapshots of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Option(name: [.customLong("tag")], help: ArgumentHelp("Only snapshots with this tag: key=value, or key for any value (repeatable; all must match).", valueName: "key[=value]"))
    var tags: [String] = []

    @Option(help: ArgumentHelp("Only snapshots taken at or after this time: 2026-11-01, '2026-11-01 10:00', RFC 3339, or a duration ago (7d).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Only snapshots taken at or before this time (same forms as --since).", valueName: "time"))
    var until: String?

    func filter() throws -> SnapshotFilter {
        SnapshotFilter(volume: volume, tags: try tags.map(SnapshotFilter.parseTag),
                       since: try since.map { try Duration.parseTime($0) }, until: try until.map { try Duration.parseTime($0) })
    }
}
