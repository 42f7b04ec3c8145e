import ArgumentParser
import FoundationEssentials
import StrataCore

/// `-r/--repo PATH`, defaulting to `$STRATA_REPO`.
struct RepositoryOptions: ParsableArguments {
    @Option(name: [.short, .customLong("repo")], help: ArgumentHelp("The repository (default: $STRATA_REPO).", valueName: "path"),
            completion: .directory)
    var repo: String?

    @OptionGroup var passphrase: PassphraseOptions

    func path() throws -> String {
        if let repo, !repo.isEmpty { return repo }
        if let env = ProcessInfo.processInfo.environment["STRATA_REPO"], !env.isEmpty { return env }
        throw StrataError(.invalidArgument, "no repository given: use -r PATH or set STRATA_REPO")
    }

    func open() throws -> Repository {
        let path = try path()
        let repo: Repository
        let read = PassphraseOptions.Remembered()
        do {
            repo = try Repository.open(at: path, passphrase: passphrase.provider(remember: read))
        } catch let error as StrataError where error.code == .authentication && error.message.hasPrefix("wrong passphrase") {
            // Before 430092d a file or command ending in "\r\n" gave its whole text, "\r\n" included; a repository
            // made that way still opens with the same file (the bytes already read: a command is not run again).
            guard let data = read.data, let legacy = Passphrase.legacyLine(data),
                  let opened = try? Repository.open(at: path, passphrase: { legacy }) else { throw error }
            repo = opened
        }
        Allocator.tune(for: repo)
        return repo
    }

    /// Where a passphrase for this repository was given (an option, or the environment), or nil.
    var passphraseSource: String? {
        let env = ProcessInfo.processInfo.environment
        if passphrase.passwordFile != nil { return "--password-file" }
        if passphrase.passwordCommand != nil { return "--password-command" }
        if let v = env["STRATA_PASSWORD_FILE"], !v.isEmpty { return "STRATA_PASSWORD_FILE" }
        if let v = env["STRATA_PASSWORD_COMMAND"], !v.isEmpty { return "STRATA_PASSWORD_COMMAND" }
        return nil
    }

    /// Opens the repository to store images in it (`snap`, `import`). Its config is not authenticated: a
    /// repository that says it is not encrypted while a passphrase was given for it (a cron job's
    /// STRATA_PASSWORD_FILE) is refused, so that an edited or swapped config never has an image stored in the clear.
    func openForStoring() throws -> Repository {
        let repo = try open()
        if !repo.isEncrypted, let source = passphraseSource {
            throw Self.plainButPassphrase(try path(), source)
        }
        return repo
    }

    static func plainButPassphrase(_ path: String, _ source: String) -> StrataError {
        StrataError(.refused, "repository \(path) is not encrypted, but a passphrase was given (\(source)): refusing to store data in it in the clear; for an unencrypted repository, give no passphrase")
    }
}

/// `--json`, `--quiet` and `--progress` shared by verbs that report.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but results and errors.")
    var quiet = false

    @Option(help: ArgumentHelp("Progress on stderr: auto (a live line when stderr is a terminal), always, never, or json (one JSON object per line).", valueName: "when"))
    var progress: ProgressMode = .auto

    /// The progress reporter to pass to an operation, or nil.
    func reporter(verb: String) -> ProgressDisplay? {
        if progress == .json { return JSONProgress(verb: verb) }
        if quiet { return nil }
        switch progress {
        case .never, .json: return nil
        case .always: return ProgressLine(verb: verb)
        case .auto: return Terminal.stderrIsTTY ? ProgressLine(verb: verb) : nil
        }
    }

    /// Writes a human summary line on stderr unless quiet.
    func note(_ line: String) {
        if !quiet { Terminal.writeErr(line + "\n") }
    }
}

enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never, json
}
