import ArgumentParser
import FoundationEssentials
import StrataCore

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a snapshot: metadata, tags, refs, protection, sizes and what removing it would free.",
        discussion: """
            'exclusive' is what 'strata rm' of this snapshot alone followed by 'strata gc' would free: the data no \
            other snapshot references (uncompressed, and its share of the compressed packs).

            Examples:
              strata show latest
              strata show 3f9c2a1b --json
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The snapshot: id, prefix, ref or 'latest'.", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshot: String

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(help: "Print as JSON on stdout.")
    var json = false

    struct ShowJSON: Encodable {
        var snapshot: SnapshotJSON
        var uniqueChunks: Int
        var uniqueBytes: Int64
        var exclusiveObjects: Int
        var exclusiveBytes: Int64
        var exclusiveChunkBytes: Int64
        var exclusiveStoredBytes: Int64
    }

    mutating func run() throws {
        let repo = try repository.open()
        let snap = try SnapshotResolver(repo: repo).resolve(snapshot, volume: volume, warn: Terminal.warn)
        let info = try SnapshotCatalog(repo: repo).info(snap)
        let usage = try Statistics(repo: repo).usage(of: snap)
        for d in usage.unreadableOthers {
            Terminal.warn("\(d.problem): what removing \(snap.id.shortHex) would free may be less than shown; run 'strata fsck'")
        }
        if json {
            try JSONOutput.print(ShowJSON(snapshot: SnapshotJSON(info), uniqueChunks: usage.uniqueChunks, uniqueBytes: usage.uniqueBytes,
                                          exclusiveObjects: usage.exclusiveObjects, exclusiveBytes: usage.exclusiveBytes,
                                          exclusiveChunkBytes: usage.exclusiveChunkBytes,
                                          exclusiveStoredBytes: usage.exclusiveStoredBytes))
            return
        }
        let m = snap.manifest
        var rows: [[String]] = [
            ["snapshot", snap.id.hex],
            ["volume", m.volume],
            ["taken", "\(Format.localTime(m.createdDate)) (\(Format.ago(m.createdDate)))"],
            ["source", "\(m.source) (\(m.sourceKind == "fileClone" ? "file, read from a point-in-time clone" : m.sourceKind))\(m.host.isEmpty ? "" : " on \(m.host)")"],
        ]
        if !m.description.isEmpty { rows.append(["description", m.description]) }
        rows.append(["tags", info.tags.isEmpty ? "-" : Format.tags(info.tags)])
        rows.append(["refs", info.refs.isEmpty ? "-" : info.refs.joined(separator: ", ")])
        rows.append(["protected", info.protected ? "yes" : "no"])
        rows.append(["size", "\(Format.bytes(m.size)) (\(m.size) bytes)"])
        rows.append(["data", "\(Format.bytes(m.dataBytes)) not zero, in \(m.chunkCount) chunks (\(usage.uniqueChunks) distinct, \(Format.bytes(usage.uniqueBytes)))"])
        rows.append(["added", "\(Format.bytes(m.newBytes)) of new data when taken (\(m.newChunks) chunks, \(Format.bytes(m.storedBytes)) stored)"])
        rows.append(["exclusive", "\(Format.bytes(usage.exclusiveBytes)) (\(usage.exclusiveBytes) bytes; ~\(Format.bytes(usage.exclusiveStoredBytes)) stored): freed by rm of it alone and gc"])
        rows.append(["chunker", m.chunker])
        if m.sourceChanged { rows.append(["warning", "the source changed while it was read"]) }
        Terminal.writeOut(Format.table(rows))
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show repository totals: logical and stored bytes, deduplication and compression, per volume.",
        discussion: """
            Example:
              strata stats --json
            """)

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Print as JSON on stdout.")
    var json = false

    struct StatsJSON: Encodable {
        struct Volume: Encodable {
            var name: String
            var snapshots: Int
            var logicalBytes: Int64
            var dataBytes: Int64
            var uniqueBytes: Int64
            var newest: String
        }
        var snapshots: Int
        var logicalBytes: Int64
        var dataBytes: Int64
        var uniqueChunks: Int
        var uniqueBytes: Int64
        var uniqueStoredBytes: Int64
        var mapNodes: Int
        var packs: Int
        var packBytes: Int64
        var metadataBytes: Int64
        var storedBytes: Int64
        var unreferencedBytes: Int64
        var deduplicationRatio: Double
        var compressionRatio: Double
        var volumes: [Volume]
    }

    mutating func run() throws {
        let repo = try repository.open()
        for d in try SnapshotCatalog(repo: repo).list().damaged {
            Terminal.warn("\(d.problem); its data is counted as unreferenced below, and gc stops while it is there ('strata fsck' reports it, 'strata rm \(d.id.shortHex)' removes it)")
        }
        let u = try Statistics(repo: repo).repositoryUsage()
        for d in u.unreadable {
            Terminal.warn("\(d.problem): its figures below are partial; run 'strata fsck'")
        }
        if json {
            try JSONOutput.print(StatsJSON(
                snapshots: u.snapshots, logicalBytes: u.logicalBytes, dataBytes: u.dataBytes, uniqueChunks: u.uniqueChunks,
                uniqueBytes: u.uniqueBytes, uniqueStoredBytes: u.uniqueStoredBytes, mapNodes: u.mapNodes, packs: u.packs,
                packBytes: u.packBytes, metadataBytes: u.metadataBytes, storedBytes: u.storedBytes,
                unreferencedBytes: u.unreferencedBytes, deduplicationRatio: u.deduplicationRatio,
                compressionRatio: u.compressionRatio,
                volumes: u.volumes.map { .init(name: $0.name, snapshots: $0.snapshots, logicalBytes: $0.logicalBytes,
                                               dataBytes: $0.dataBytes, uniqueBytes: $0.uniqueBytes, newest: $0.newest) }))
            return
        }
        var out = Format.table([
            ["snapshots", "\(u.snapshots) in \(u.volumes.count) volume(s)"],
            ["logical", "\(Format.bytes(u.logicalBytes)) (sum of image sizes)"],
            ["data", "\(Format.bytes(u.dataBytes)) (sum of non-zero bytes)"],
            ["unique", "\(Format.bytes(u.uniqueBytes)) in \(u.uniqueChunks) distinct chunks (\(String(cFormat: "%.2f", u.deduplicationRatio))x deduplication)"],
            ["stored", "\(Format.bytes(u.storedBytes)) on disk: \(Format.bytes(u.packBytes)) in \(u.packs) packs (\(String(cFormat: "%.2f", u.compressionRatio))x compression), \(Format.bytes(u.metadataBytes)) of index and metadata"],
            ["unreferenced", "\(Format.bytes(u.unreferencedBytes)) uncompressed in packs that no snapshot needs ('strata gc' frees what it can)"],
        ])
        if !u.volumes.isEmpty {
            out += "\n"
            var rows = [["VOLUME", "SNAPSHOTS", "LOGICAL", "DATA", "UNIQUE", "NEWEST"]]
            for v in u.volumes {
                rows.append([v.name, "\(v.snapshots)", Format.bytes(v.logicalBytes), Format.bytes(v.dataBytes), Format.bytes(v.uniqueBytes),
                             Timestamp.parse(v.newest).map(Format.localTime) ?? v.newest])
            }
            out += Format.table(rows)
        }
        Terminal.writeOut(out)
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the byte ranges in which two snapshots differ, from their chunk maps alone.",
        discussion: """
            Reads no chunk data and skips subtrees both snapshots share. Ranges are merged runs of changed chunks, \
            so they are chunk-aligned (a superset of the bytes that differ).

            Examples:
              strata diff 3f9c2a1b latest
              strata diff before-upgrade latest --json
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: ArgumentHelp("The older snapshot.", valueName: "a"), completion: Completions.snapshots) var a: String
    @Argument(help: ArgumentHelp("The newer snapshot.", valueName: "b"), completion: Completions.snapshots) var b: String

    @Option(help: ArgumentHelp("With 'latest': the newest snapshot of this volume.", valueName: "name"), completion: Completions.volumes)
    var volume: String?

    @Flag(help: "Print as JSON on stdout.")
    var json = false

    struct DiffJSON: Encodable {
        struct Range: Encodable { var start: UInt64; var end: UInt64; var length: UInt64 }
        var from: String
        var to: String
        var fromSize: UInt64
        var toSize: UInt64
        var ranges: [Range]
        var count: Int
        var changedBytes: UInt64
        var mapNodesRead: Int
        var subtreesSkipped: Int
    }

    mutating func run() throws {
        let repo = try repository.open()
        let resolver = SnapshotResolver(repo: repo)
        let sa = try resolver.resolve(a, volume: volume), sb = try resolver.resolve(b, volume: volume)
        let d = try Differ(repo: repo).diff(sa, sb)
        if json {
            try JSONOutput.print(DiffJSON(from: sa.id.hex, to: sb.id.hex, fromSize: sa.manifest.size, toSize: sb.manifest.size,
                                          ranges: d.ranges.map { .init(start: $0.lowerBound, end: $0.upperBound, length: $0.upperBound - $0.lowerBound) },
                                          count: d.ranges.count, changedBytes: d.changedBytes, mapNodesRead: d.nodesRead,
                                          subtreesSkipped: d.subtreesSkipped))
            return
        }
        var rows = [["START", "END", "LENGTH"]]
        for r in d.ranges { rows.append(["\(r.lowerBound)", "\(r.upperBound)", Format.bytes(r.upperBound - r.lowerBound)]) }
        if !d.ranges.isEmpty { Terminal.writeOut(Format.table(rows)) }
        Terminal.writeErr("diff \(sa.id.shortHex) \(sb.id.shortHex): \(d.ranges.count) changed ranges, \(Format.bytes(d.changedBytes)) (\(d.changedBytes) bytes); \(d.nodesRead) map nodes read, \(d.subtreesSkipped) shared subtrees skipped\n")
    }
}
