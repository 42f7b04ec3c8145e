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
    static func main() {
        let command: ParsableCommand
        do {
            command = try Strata.parseAsRoot()
        } catch {
            let status = Strata.exitCode(for: error)
            let message = Strata.fullMessage(for: error)
            if status == .success {
                if !message.isEmpty { Terminal.writeOut(message + "\n") }
                exit(0)
            }
            Terminal.writeErr(message + "\n")
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
            let status = Strata.exitCode(for: error)
            Terminal.writeErr(Strata.fullMessage(for: error) + "\n")
            exit(status == .success ? 0 : ExitStatus.usage.rawValue)
        }
    }
}
