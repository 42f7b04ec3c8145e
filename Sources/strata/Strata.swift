import ArgumentParser
import FoundationEssentials
import StrataCore
#if canImport(Glibc)
import Glibc
#endif

/// The `strata` command: parses arguments, calls StrataCore, formats output and maps errors to exit statuses.
struct Strata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Versions disk images and block volumes in a local, content-addressed repository.",
        discussion: """
            Snapshots are incremental and deduplicated: each one stores only chunks the repository lacks. \
            Every verb that works on a repository takes -r/--repo PATH or $STRATA_REPO (init also takes it as its argument).

            Quick start:
              strata init /srv/images.strata && export STRATA_REPO=/srv/images.strata
              strata snap vm.img -m "before upgrade"
              strata log
              strata restore latest vm-restored.img
            """,
        version: "strata \(StrataVersion.string) (repository format \(StrataVersion.repositoryFormat); reads formats \(RepositoryConfig.supportedFormats.lowerBound)–\(RepositoryConfig.supportedFormats.upperBound))",
        groupedSubcommands: [
            CommandGroup(name: "Snapshot", subcommands: [Init.self, Snap.self, Restore.self]),
            CommandGroup(name: "Inspection", subcommands: [Log.self, Show.self, Diff.self, Stats.self]),
            CommandGroup(name: "Labelling", subcommands: [Tag.self, Ref.self, Protect.self, Unprotect.self]),
            CommandGroup(name: "Maintenance", subcommands: [Rm.self, GC.self, Fsck.self, Bench.self]),
            CommandGroup(name: "Keys and sharing", subcommands: [Key.self, Copy.self, Export.self, Import.self]),
        ]
    )
}

@main
enum Main {
    /// Accepts `-r PATH`/`--repo PATH` before the verb too (`strata -r repo log`) by moving it after the verb.
    static func arguments(_ args: [String]) -> [String] {
        guard let first = args.first else { return args }
        // Options may follow the (sub)verb's arguments, so the pair moves to the end: `strata -r R ref add N S`
        // becomes `strata ref add N S -r R`.
        // `bench` needs no repository: the pair is dropped, so that an alias like `strata -r ~/repo` works with it.
        if (first == "-r" || first == "--repo"), args.count >= 3 {
            return args[2] == Bench._commandName ? Array(args.dropFirst(2)) : Array(args.dropFirst(2)) + [first, args[1]]
        }
        if first.hasPrefix("--repo="), args.count >= 2 {
            return args[1] == Bench._commandName ? Array(args.dropFirst()) : Array(args.dropFirst()) + [first]
        }
        return args
    }

    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.isEmpty {
            Terminal.writeErr(Strata.helpMessage() + "\n")
            exit(ExitStatus.usage.rawValue)
        }
        // Given twice (`strata -r A log -r B`), the parser would silently keep the last one.
        if args.filter({ $0 == "-r" || $0 == "--repo" || $0.hasPrefix("--repo=") }).count > 1 {
            Terminal.writeErr("strata: the repository is given more than once (-r/--repo): give it once\n")
            exit(ExitStatus.usage.rawValue)
        }
        let verbs = Strata.configuration.groupedSubcommands.flatMap { $0.subcommands }.map { $0._commandName } + ["help"]
        // -r PATH in front moves after the verb; a first word that is no verb is named also behind it.
        let moved = Main.arguments(args)
        if let first = moved.first, !first.hasPrefix("-"), !verbs.contains(first) {
            let guess = verbs.min { editDistance($0, first) < editDistance($1, first) }!
            let hint = editDistance(guess, first) <= 2 ? "; did you mean '\(guess)'?" : "; see 'strata --help'"
            Terminal.writeErr("strata: unknown command '\(first)'\(hint)\n")
            exit(ExitStatus.usage.rawValue)
        }
        // A verb of two words with a wrong second word (`strata -r R ref lst`): named as such, not as the -r the
        // parser would then find unknown.
        if moved.count >= 2, !moved[1].hasPrefix("-"),
           let group = Strata.configuration.groupedSubcommands.flatMap({ $0.subcommands }).first(where: { $0._commandName == moved[0] }),
           !group.configuration.subcommands.isEmpty {
            let words = group.configuration.subcommands.map { $0._commandName }
            if !words.contains(moved[1]) {
                let guess = words.min { editDistance($0, moved[1]) < editDistance($1, moved[1]) }!
                let hint = editDistance(guess, moved[1]) <= 2 ? "; did you mean '\(moved[0]) \(guess)'?" : "; see 'strata \(moved[0]) --help'"
                Terminal.writeErr("strata: unknown command '\(moved[0]) \(moved[1])'\(hint)\n")
                exit(ExitStatus.usage.rawValue)
            }
        }
        let command: ParsableCommand
        do {
            command = try Strata.parseAsRoot(moved)
        } catch {
            if Strata.exitCode(for: error) == .success {
                Strata.exit(withError: error)  // --help and --version: printed on stdout, exit 0
            }
            Terminal.writeErr(usageError(error, verb: args.first { verbs.contains($0) }) + "\n")
            exit(ExitStatus.usage.rawValue)
        }
        // Below this many open files a command could fail half-way (Dispatch itself crashed when it ran out): said
        // in one line before anything is read or written.
        let openFiles = OpenFiles.raiseLimit()
        if openFiles < OpenFiles.minimumLimit {
            Terminal.writeErr("strata: the open-files limit is \(openFiles) (ulimit -n); strata needs at least \(OpenFiles.minimumLimit)\n")
            exit(ExitStatus.failure.rawValue)
        }
        if let space = AddressSpace.limit, space < AddressSpace.minimumLimit {
            Terminal.writeErr("strata: the address-space limit is \(space >> 20) MiB (ulimit -v); strata needs at least \(AddressSpace.minimumLimit >> 20) MiB\n")
            exit(ExitStatus.failure.rawValue)
        }
        // Under a task limit (pids.max, ulimit -u) too low for a pipeline's threads, Dispatch waited forever.
        if !TaskLimit.hasRoom() {
            Terminal.writeErr("strata: the limit on tasks (a cgroup's pids.max, or ulimit -u) leaves no room for the \(TaskLimit.threadsNeeded) threads strata needs\n")
            exit(ExitStatus.failure.rawValue)
        }
        do {
            var c = command
            try c.run()
            exit(0)
        } catch let e as StrataError {
            Terminal.writeErr("strata: \(e.description)\n")
            exit(exitStatus(of: e))
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            if Strata.exitCode(for: error) == .success { Strata.exit(withError: error) }
            Terminal.writeErr(usageError(error, verb: args.first { verbs.contains($0) }) + "\n")
            exit(ExitStatus.usage.rawValue)
        }
    }
}

/// A command line the parser refused, as one line: `strata: missing expected argument '<source>'; see 'strata snap --help'`.
func usageError(_ error: Error, verb: String?) -> String {
    var message = Strata.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad command line"
    if message.hasPrefix("strata: ") { message.removeFirst("strata: ".count) }
    if let first = message.first, first.isUppercase, message.dropFirst().first?.isLowercase == true {
        message = first.lowercased() + message.dropFirst()
    }
    // The parser ends some sentences with a full stop ("Please provide one of 'auto', 'always' or 'never'.").
    if message.hasSuffix(".") { message.removeLast() }
    return "strata: \(message); see 'strata \(verb.map { $0 + " " } ?? "")--help'"
}

/// Levenshtein distance, for suggesting a verb when one is misspelled.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    var row = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: y.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return x.isEmpty ? y.count : row[y.count]
}
