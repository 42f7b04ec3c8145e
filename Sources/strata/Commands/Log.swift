import ArgumentParser
import Foundation
import StrataCore

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List snapshots, newest first.",
        discussion: """
            Columns: id (12 hex digits), time (local), volume, size, new data it stored, tags, description.

            Examples:
              strata log
              strata log --volume vm.img --json
            """)

    @OptionGroup var repository: RepositoryOptions

    @Option(help: ArgumentHelp("Only snapshots of this volume.", valueName: "name"))
    var volume: String?

    @Flag(help: "Print the list as JSON on stdout.")
    var json = false

    mutating func run() throws {
        let repo = try repository.open()
        let (snapshots, damaged) = try SnapshotCatalog(repo: repo).list(volume: volume)
        for d in damaged {
            Terminal.writeErr("strata: warning: \(d.problem) (not listed; 'strata fsck' reports it, 'strata rm \(d.id.shortHex)' removes it)\n")
        }
        if json {
            try JSONOutput.print(snapshots.map { SnapshotJSON($0) })
            return
        }
        var rows = [["ID", "TIME", "VOLUME", "SIZE", "NEW", "TAGS", "DESCRIPTION"]]
        for s in snapshots {
            let m = s.manifest
            rows.append([s.id.shortHex, Format.localTime(m.createdDate), m.volume, Format.bytes(m.size),
                         Format.bytes(m.newBytes), Format.tags(m.tags),
                         m.description.replacingOccurrences(of: "\n", with: " ")])
        }
        Terminal.writeOut(Format.table(rows))
    }
}
