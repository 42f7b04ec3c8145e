import ArgumentParser
import FoundationEssentials
import StrataCore

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the passphrases (key files) of an encrypted repository.",
        discussion: """
            Every key file wraps the same repository keys under its own passphrase; any of them opens the repository.

            Examples:
              strata key list
              strata key add --new-password-file /root/second.pass
              strata key passwd
              strata key rm 3f9c2a1b7e40aa01
            """,
        subcommands: [KeyList.self, KeyAdd.self, KeyRemove.self, KeyPasswd.self])
}

struct KeyList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List key files.",
        discussion: """
            Examples:
              strata key list
              strata key list --json
            """)
    @OptionGroup var repository: RepositoryOptions
    @Flag(help: "Print as JSON on stdout.") var json = false

    struct Entry: Encodable { var id: String; var createdAt: String; var host: String; var kdf: String; var n: Int; var r: Int; var p: Int; var current: Bool }

    mutating func run() throws {
        let repo = try repository.openWithKeys()
        let entries = try KeyStore(repo: repo).list().map {
            Entry(id: $0.id, createdAt: $0.createdAt, host: $0.host, kdf: $0.kdf, n: $0.n, r: $0.r, p: $0.p, current: $0.id == repo.openedKeyID)
        }
        if json { try JSONOutput.print(entries); return }
        var rows = [["KEY", "CREATED", "HOST", "KDF", ""]]
        for e in entries {
            rows.append([e.id, Timestamp.parse(e.createdAt).map(Format.localTime) ?? e.createdAt, e.host,
                         "\(e.kdf) N=\(e.n) r=\(e.r) p=\(e.p)", e.current ? "(opened this time)" : ""])
        }
        Terminal.writeOut(Format.table(rows))
    }
}

struct KeyAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a passphrase.",
        discussion: """
            Examples:
              strata key add
              strata key add --new-password-file /root/second.pass
            """)
    @OptionGroup var repository: RepositoryOptions
    @Option(help: ArgumentHelp("Read the new passphrase from this file (else asked twice on the terminal).", valueName: "file"), completion: .file())
    var newPasswordFile: String?

    mutating func run() throws {
        let repo = try repository.openWithKeys()
        let id = try KeyStore(repo: repo).add(passphrase: try Passphrase.new(file: newPasswordFile, sources: "--new-password-file"))
        Terminal.writeErr("added key \(id)\n")
    }
}

struct KeyRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a key file (never the last one).",
        discussion: """
            Examples:
              strata key rm 0410a147740ff6c1
            """)
    @OptionGroup var repository: RepositoryOptions
    @Argument(help: ArgumentHelp("The key id (see 'strata key list').", valueName: "key")) var key: String

    mutating func run() throws {
        let repo = try repository.openWithKeys()
        try KeyStore(repo: repo).remove(key)
        Terminal.writeErr("removed key \(key)\n")
    }
}

struct KeyPasswd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd", abstract: "Change the passphrase of the key that opens the repository.",
        discussion: """
            Examples:
              strata key passwd
              strata key passwd --password-file old.pass --new-password-file new.pass
            """)
    @OptionGroup var repository: RepositoryOptions
    @Option(help: ArgumentHelp("Read the new passphrase from this file (else asked twice on the terminal).", valueName: "file"), completion: .file())
    var newPasswordFile: String?

    mutating func run() throws {
        let repo = try repository.openWithKeys()
        let id = try KeyStore(repo: repo).changePassphrase(to: try Passphrase.new(file: newPasswordFile, sources: "--new-password-file"))
        Terminal.writeErr("replaced key \(repo.openedKeyID ?? "") with \(id)\n")
    }
}

extension RepositoryOptions {
    /// Opens the repository for a `key` verb: a plain one is refused before any passphrase is asked for.
    func openWithKeys() throws -> Repository {
        let repo = try open()
        guard repo.isEncrypted else { throw StrataError(.invalidArgument, "repository \(repo.path) is not encrypted: it has no keys") }
        return repo
    }
}
