import ArgumentParser
import FoundationEssentials
import StrataCore

struct Rm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove snapshots by name or by a retention policy; 'gc' then frees the data no other snapshot needs.",
        discussion: """
            By name: removes those snapshots' manifests. Protected snapshots are refused; a snapshot that a ref \
            names needs --force (which removes the ref too).

            By policy (any --keep-* flag): per volume, keeps every snapshot that some rule keeps and removes the \
            rest of the snapshots that match --volume/--tag/--since/--until. Protected snapshots and snapshots \
            that a ref names are always kept. --dry-run shows what would go and why each kept one stays.

            Examples:
              strata rm 3f9c2a1b 77e0c4d1 && strata gc
              strata rm --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
              strata rm --keep-last 3 --volume vm.img --tag env=test
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var filter: FilterOptions

    @Argument(help: ArgumentHelp("Snapshots to remove: ids, prefixes, ref names or 'latest' (not with --keep-*).", valueName: "snapshot"), completion: Completions.snapshots)
    var snapshots: [String] = []

    @Flag(help: "Also remove snapshots that refs name, and those refs (not with --keep-*).")
    var force = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the N newest snapshots.", valueName: "n")) var keepLast = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest snapshot of each of the last N hours that have one.", valueName: "n")) var keepHourly = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest snapshot of each of the last N days that have one.", valueName: "n")) var keepDaily = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest snapshot of each of the last N ISO weeks that have one.", valueName: "n")) var keepWeekly = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest snapshot of each of the last N months that have one.", valueName: "n")) var keepMonthly = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest snapshot of each of the last N years that have one.", valueName: "n")) var keepYearly = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep every snapshot taken within this duration of the newest one considered, per volume (7d, 36h, 2w).", valueName: "duration"))
    var keepWithin: String?

    @Flag(help: "Show what would be removed, remove nothing.")
    var dryRun = false

    @Flag(help: "Print what was (or would be) removed and kept as JSON on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but results and errors.")
    var quiet = false

    func policy() throws -> RetentionPolicy {
        for (flag, n) in [("--keep-last", keepLast), ("--keep-hourly", keepHourly), ("--keep-daily", keepDaily),
                          ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly), ("--keep-yearly", keepYearly)] where n < 0 {
            throw StrataError(.invalidArgument, "\(flag) must be 0 or more, not \(n)")
        }
        return RetentionPolicy(last: keepLast, hourly: keepHourly, daily: keepDaily, weekly: keepWeekly,
                               monthly: keepMonthly, yearly: keepYearly, within: try keepWithin.map(Duration.parse))
    }

    mutating func run() throws {
        let repo = try repository.open()
        let policy = try policy()
        if !policy.isEmpty {
            guard snapshots.isEmpty else { throw StrataError(.invalidArgument, "give snapshots to remove or --keep-* rules, not both") }
            guard !force else { throw StrataError(.invalidArgument, "--force cannot be used with --keep-* rules: retention never removes snapshots that refs name") }
            try retention(repo, policy)
            return
        }
        guard !snapshots.isEmpty else {
            throw StrataError(.invalidArgument, "give the snapshots to remove, or a retention policy with a rule above 0 (--keep-last N, --keep-daily N, …; 0 means the rule is not used)")
        }
        if !filter.tags.isEmpty || filter.since != nil || filter.until != nil {
            throw StrataError(.invalidArgument, "--tag, --since and --until select snapshots for --keep-* rules only")
        }
        let resolver = SnapshotResolver(repo: repo)
        // Resolve every name first: a typo in the third removes nothing. A damaged manifest can still be removed
        // by its id or prefix.
        var ids: [ObjectID] = []
        let pending = PendingStore(repo: repo)
        // Running and failed snapshots by token, and journals that cannot be read (fsck names them by token too).
        var running: [String: Bool] = [:]
        for p in try pending.all() { running[p.token] = p.alive }
        for j in try pending.unreadable() { running[j.token] = j.alive }
        let pendingTokens = Set(running.keys)
        for s in snapshots where pendingTokens.contains(s) {
            if dryRun {
                // With --json, stdout holds the JSON object alone.
                let line = running[s] == true ? "would ask pending snapshot \(s) to stop\n" : "would remove the journal of failed snapshot \(s)\n"
                if json { Terminal.writeErr(line) } else { Terminal.writeOut(line) }
                continue
            }
            let running = try pending.cancel(s)
            Terminal.writeErr(running ? "asked pending snapshot \(s) to stop\n" : "removed the journal of failed snapshot \(s)\n")
        }
        for s in snapshots where !pendingTokens.contains(s) {
            let id = s == "latest" || filter.volume != nil ? try resolver.resolve(s, volume: filter.volume).id : try resolver.resolveID(s)
            if !ids.contains(id) { ids.append(id) }
        }
        // A dry run applies the same guards (protection, refs) and says what would happen.
        let (removed, refs) = ids.isEmpty ? ([], []) : try SnapshotCatalog(repo: repo).remove(ids, force: force, dryRun: dryRun)
        if json {
            try JSONOutput.print(RemovalJSON(removed: removed.map(\.hex), refsRemoved: refs, kept: [], dryRun: dryRun))
        } else if dryRun {
            for id in removed { Terminal.writeOut("would remove \(id.shortHex)\n") }
            for r in refs { Terminal.writeOut("would remove ref '\(r)'\n") }
        }
        // The summary stays on stderr with --json, as for every verb; -q removes it.
        if !quiet && !dryRun && !ids.isEmpty {
            for s in removed { Terminal.writeErr("removed snapshot \(s.shortHex)\n") }
            for r in refs { Terminal.writeErr("removed ref '\(r)'\n") }
            Terminal.writeErr("run 'strata gc' to free the data no remaining snapshot references\n")
        }
    }

    private func retention(_ repo: Repository, _ policy: RetentionPolicy) throws {
        let catalog = SnapshotCatalog(repo: repo)
        let candidates = try catalog.list(try filter.filter()).snapshots
        let decisions = policy.apply(to: candidates)
        let doomed = decisions.filter { !$0.keep }.map(\.info.id)
        // The dry run applies the same guards as the real one (a damaged ref or protection flag refuses).
        if !doomed.isEmpty { try catalog.remove(doomed, dryRun: dryRun) }
        if json {
            try JSONOutput.print(RemovalJSON(
                removed: doomed.map(\.hex), refsRemoved: [],
                kept: decisions.filter(\.keep).map { .init(id: $0.info.id.hex, volume: $0.info.manifest.volume, reasons: $0.reasons) },
                dryRun: dryRun))
        } else {
            var rows = [["ACTION", "ID", "TIME", "VOLUME", "WHY KEPT"]]
            for d in decisions {
                let action = d.keep ? "keep" : (dryRun ? "would remove" : "removed")
                rows.append([action, d.info.id.shortHex, Format.localTime(d.info.manifest.createdDate), d.info.manifest.volume,
                             d.reasons.joined(separator: ", ")])
            }
            Terminal.writeOut(Format.table(rows))
        }
        if !quiet {
            let verb = dryRun ? "would remove" : "removed"
            Terminal.writeErr("retention: \(verb) \(doomed.count) of \(decisions.count) snapshots\(dryRun || doomed.isEmpty ? "" : "; run 'strata gc' to free their data")\n")
        }
    }
}

struct RemovalJSON: Encodable {
    struct Kept: Encodable {
        var id: String
        var volume: String
        var reasons: [String]
    }
    var removed: [String]
    var refsRemoved: [String]
    var kept: [Kept]
    var dryRun: Bool
}
