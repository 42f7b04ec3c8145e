import ArgumentParser
import FoundationEssentials
import StrataCore

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List snapshots, newest first.",
        discussion: """
            Columns: id (12 hex digits), time (local), volume, size, new data it stored, tags (now), refs and \
            protection, description.

            Examples:
              strata log
              strata log --volume vm.img --json
              strata log --tag env=prod --since 7d
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var filter: FilterOptions

    @Flag(help: "Print the list as JSON on stdout.")
    var json = false

    mutating func run() throws {
        let repo = try repository.open()
        let (snapshots, damaged) = try SnapshotCatalog(repo: repo).list(try filter.filter())
        for d in damaged {
            Terminal.writeErr("strata: warning: \(d.problem) (not listed; 'strata fsck' reports it, 'strata rm \(d.id.shortHex)' removes it)\n")
        }
        for d in try SnapshotCatalog(repo: repo).damagedMetadata() {
            Terminal.warn("\(d.problem): its later tags and protection are unknown (listed without them; 'strata fsck' reports it)")
        }
        for r in try RefStore(repo: repo).all() where r.target == nil {
            Terminal.writeErr("strata: warning: ref '\(r.name)' is damaged; rm refuses to remove snapshots until 'strata fsck --repair' drops it\n")
        }
        for j in try PendingStore(repo: repo).unreadable() where !j.alive {
            Terminal.writeErr("strata: warning: pending journal \(j.token) cannot be read; 'strata gc' or 'strata rm \(j.token)' removes it\n")
        }
        let f = try filter.filter()
        let pending = try PendingStore(repo: repo).all().filter { f.volume == nil || $0.volume == f.volume }
        if json {
            try JSONOutput.print(pending.map { LogEntryJSON.pending(PendingJSON($0)) } + snapshots.map { LogEntryJSON.snapshot(SnapshotJSON($0)) })
            return
        }
        var rows = [["ID", "TIME", "VOLUME", "SIZE", "NEW", "TAGS", "REFS", "DESCRIPTION"]]
        for p in pending {
            let started = Timestamp.parse(p.startedAt) ?? Date()
            var state = p.alive ? "pending" : "failed"
            if p.alive, let total = p.totalBytes, total > 0 {
                state += String(cFormat: " %.0f%%", 100 * Double(p.bytesDone) / Double(total))
            } else if p.alive {
                state += " \(Format.bytes(p.bytesDone)) read"
            }
            if !p.alive { state += " (process \(p.pid) died; 'strata gc' cleans up)" }
            rows.append([p.token, Format.localTime(started), p.volume, p.totalBytes.map(Format.bytes) ?? "?", Format.bytes(p.newBytes), "", "", state])
        }
        for s in snapshots {
            let m = s.manifest
            var refs = s.refs.joined(separator: ",")
            if s.protected { refs = refs.isEmpty ? "protected" : refs + ",protected" }
            rows.append([s.id.shortHex, Format.localTime(m.createdDate), m.volume, Format.bytes(m.size),
                         Format.bytes(m.newBytes), Format.tags(s.tags), refs,
                         m.description.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " ")])
        }
        Terminal.writeOut(Format.table(rows))
    }
}

/// A pending (or failed) snapshot in `log --json`.
struct PendingJSON: Encodable {
    var status: String
    var pendingId: String
    var volume: String
    var source: String
    var startedAt: String
    var pid: Int32
    var host: String
    var bytesDone: Int64
    var totalBytes: Int64?
    var newBytes: Int64

    init(_ p: PendingSnapshot) {
        status = p.alive ? "pending" : "failed"
        pendingId = p.token
        volume = p.volume
        source = p.source
        startedAt = p.startedAt
        pid = p.pid
        host = p.host
        bytesDone = p.bytesDone
        totalBytes = p.totalBytes
        newBytes = p.newBytes
    }
}

/// One element of `log --json`: a completed snapshot (status "completed") or a pending/failed one.
enum LogEntryJSON: Encodable {
    case snapshot(SnapshotJSON)
    case pending(PendingJSON)

    func encode(to encoder: Encoder) throws {
        switch self {
        case .snapshot(let s): try s.encode(to: encoder)
        case .pending(let p): try p.encode(to: encoder)
        }
    }
}
