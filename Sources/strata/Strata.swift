import ArgumentParser
import Foundation
import StrataCore

/// The `strata` command: parses arguments, calls StrataCore, formats output and maps errors to exit statuses.
struct Strata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Versions disk images and block volumes in a local, content-addressed repository.",
        discussion: """
            Snapshots are incremental and deduplicated: each one stores only chunks the repository lacks.
            Every verb except init takes -r/--repo PATH or $STRATA_REPO.

            Quick start:
              strata init /srv/images.strata && export STRATA_REPO=/srv/images.strata
              strata snap vm.img -m "before upgrade"
              strata log
              strata restore latest vm-restored.img
            """,
        version: "strata \(StrataVersion.string) (repository format \(StrataVersion.repositoryFormat))",
        subcommands: [Init.self, Snap.self, Log.self, Restore.self, Rm.self, GC.self, Fsck.self],
        groupedSubcommands: []
    )
}

@main
enum Main {
    /// Accepts `-r PATH`/`--repo PATH` before the verb too (`strata -r repo log`) by moving it after the verb.
    static func arguments(_ args: [String]) -> [String] {
        guard let first = args.first else { return args }
        if (first == "-r" || first == "--repo"), args.count >= 3 {
            return [args[2], first, args[1]] + args.dropFirst(3)
        }
        if first.hasPrefix("--repo="), args.count >= 2 {
            return [args[1], first] + args.dropFirst(2)
        }
        return args
    }

    static func main() {
        let command: ParsableCommand
        do {
            command = try Strata.parseAsRoot(Main.arguments(Array(CommandLine.arguments.dropFirst())))
        } catch {
            if Strata.exitCode(for: error) == .success {
                Strata.exit(withError: error)  // --help and --version: printed on stdout, exit 0
            }
            Terminal.writeErr(Strata.fullMessage(for: error) + "\n")
            exit(ExitStatus.usage.rawValue)
        }
        do {
            var c = command
            try c.run()
            exit(0)
        } catch let e as StrataError {
            Terminal.writeErr("strata: \(e.description)\n")
            exit(ExitStatus.of(e).rawValue)
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            if Strata.exitCode(for: error) == .success { Strata.exit(withError: error) }
            Terminal.writeErr(Strata.fullMessage(for: error) + "\n")
            exit(ExitStatus.usage.rawValue)
        }
    }
}
