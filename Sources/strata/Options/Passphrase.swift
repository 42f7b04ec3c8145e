import ArgumentParser
import FoundationEssentials
import StrataCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the passphrase of an encrypted repository comes from: `--password-file`, `--password-command`,
/// `$STRATA_PASSWORD_FILE`, `$STRATA_PASSWORD_COMMAND`, or a prompt on the terminal. Never a command-line argument.
struct PassphraseOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read the passphrase from this file (its first line).", valueName: "file"), completion: .file())
    var passwordFile: String?

    @Option(help: ArgumentHelp("Run this shell command and use the first line it prints as the passphrase.", valueName: "command"))
    var passwordCommand: String?

    /// What a provider read from the password file or command, kept so that it is read (and a command run) once.
    final class Remembered { var data: Data? }

    /// A provider that resolves the passphrase only when a repository turns out to be encrypted.
    func provider(prompt: String = "passphrase: ", remember: Remembered? = nil) -> () throws -> String {
        { try Passphrase.read(file: passwordFile, command: passwordCommand, prompt: prompt, remember: remember) }
    }
}

enum Passphrase {
    /// Where a repository's own passphrase can come from, for the error when there is no terminal to ask on.
    static let repositorySources = "--password-file, STRATA_PASSWORD_FILE or --password-command"

    /// - Parameter environment: fall back to `$STRATA_PASSWORD_FILE` / `$STRATA_PASSWORD_COMMAND`. Only for the
    ///   repository's own passphrase: a bundle's or another repository's passphrase is never taken from them.
    /// - Parameter sources: where else the passphrase can come from, for the error when there is no terminal.
    /// - Parameter strict: a new passphrase (a key file about to be written): refused unless it is UTF-8 text.
    static func read(file: String?, command: String?, prompt: String, environment: Bool = true,
                     sources: String = Passphrase.repositorySources,
                     remember: PassphraseOptions.Remembered? = nil, strict: Bool = false) throws -> String {
        SecretMemory.keepOutOfCoreDumps()
        if let data = try source(file: file, command: command, environment: environment) {
            remember?.data = data
            if strict { try requireText(firstLineBytes(data)) }
            let line = firstLine(data)
            // No repository has an empty passphrase (init refuses one): say what is wrong, not "wrong passphrase".
            guard !line.isEmpty else { throw StrataError(.invalidArgument, "the passphrase is empty (the first line of the password file or command)") }
            return line
        }
        return try prompted(prompt, sources: sources, strict: strict)
    }

    /// A passphrase is text: scrypt is given its UTF-8 bytes, and bytes that are not UTF-8 would each read as the
    /// same replacement character (two different passphrases opening one repository). New key files get only text;
    /// one made by an earlier strata from such bytes still opens with them.
    static func requireText(_ bytes: some Collection<UInt8>) throws {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw StrataError(.invalidArgument, "the new passphrase is not UTF-8 text (for random bytes, use their base64 or hex)")
        }
    }

    /// The bytes of the password file or the password command's output, or nil when the passphrase is to be asked.
    static func source(file: String?, command: String?, environment: Bool = true) throws -> Data? {
        let env = ProcessInfo.processInfo.environment
        // What the command line says wins over the environment; a file wins over a command.
        var file = file
        var command = command
        if file == nil && command == nil && environment {
            file = env["STRATA_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            if file == nil { command = env["STRATA_PASSWORD_COMMAND"].flatMap { $0.isEmpty ? nil : $0 } }
        }
        if let file { return Data(try contents(of: file)) }
        if let command { return Data(try output(of: command)) }
        return nil
    }

    /// The first 64 KiB of a password file: a regular file, or a pipe (`<(pass show x)`, `/dev/stdin`).
    static func contents(of file: String) throws -> [UInt8] {
        let handle: FileHandleFD
        do {
            handle = try FileHandleFD.openForReading(file)
        } catch let e as SystemCallError {
            throw StrataError(e.errno == ENOENT || e.errno == ENOTDIR ? .notFound : .io,
                              "cannot read the password file \(file): \(String(cString: strerror(e.errno)))")
        }
        defer { try? handle.close() }
        var bytes = [UInt8](repeating: 0, count: 64 << 10)
        do {
            let n = try bytes.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: $0.count) }
            bytes.removeSubrange(n...)
        } catch let e as SystemCallError {
            throw StrataError(.io, "cannot read the password file \(file): \(String(cString: strerror(e.errno)))")
        }
        return bytes
    }

    /// What `/bin/sh -c command` prints on its standard output (its standard error stays the terminal's).
    static func output(of command: String) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw StrataError(.authentication, "the password command could not be started: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let words: [String] = ["/bin/sh", "-c", command]
        let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for a in arguments { free(a) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, arguments, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw StrataError(.authentication, "the password command could not be started: \(String(cString: strerror(spawned)))")
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fds[0], &buffer, buffer.count)
            if n > 0 { out += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // As the C macros say: the low 7 bits are the signal that ended it, else the exit code is in the next byte.
        let signal = status & 0x7f, code = (status >> 8) & 0xff
        guard signal == 0 && code == 0 else {
            throw StrataError(.authentication, "the password command failed (\(signal == 0 ? "exit \(code)" : "signal \(signal)"))")
        }
        return out
    }

    /// What versions before 430092d read from a file or command whose first line ends in "\r\n" (the whole text:
    /// Swift counts "\r\n" as one Character), or nil when that is no different from what is read now.
    static func legacyLine(_ data: Data) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        var scalars = (text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").unicodeScalars[...]
        while scalars.first == "\r" { scalars = scalars.dropFirst() }
        while scalars.last == "\r" { scalars = scalars.dropLast() }
        let old = String(String.UnicodeScalarView(scalars))
        return old == firstLine(data) || old.isEmpty ? nil : old
    }

    /// The first line, without its line ending (`\n` or `\r\n`). Cut in bytes: Swift counts "\r\n" as one
    /// Character, so splitting the decoded text at "\n" would keep a Windows-edited file whole, `\r` and all.
    static func firstLine(_ data: Data) -> String {
        String(decoding: firstLineBytes(data), as: UTF8.self)
    }

    static func firstLineBytes(_ data: Data) -> Data {
        var line = data.prefix { $0 != 0x0A }
        if line.last == 0x0D { line = line.dropLast() }
        return line
    }

    /// Asks on the controlling terminal with echo off.
    static func prompted(_ prompt: String, sources: String = Passphrase.repositorySources, strict: Bool = false) throws -> String {
        SecretMemory.keepOutOfCoreDumps()
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else {
            throw StrataError(.authentication, "a passphrase is needed and there is no terminal to ask it on: use \(sources)")
        }
        defer { close(tty) }
        // Ctrl-C at the prompt must not leave the terminal without echo: the signal is caught while echo is off, the
        // terminal restored, and the command stops with the usual status.
        let catching = Interruption.isCatching
        if !catching { Interruption.catchSignals() }
        defer { if !catching { Interruption.releaseSignals() } }
        var old = termios()
        tcgetattr(tty, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        // TCSANOW, not TCSAFLUSH: a passphrase typed (or fed) ahead of the prompt is kept, not discarded.
        tcsetattr(tty, TCSANOW, &quiet)
        defer { tcsetattr(tty, TCSANOW, &old) }
        _ = prompt.withCString { Glibc.write(tty, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var c: UInt8 = 0
        while Glibc.read(tty, &c, 1) == 1 && c != 10 && bytes.count < 4096 { bytes.append(c) }
        _ = Glibc.write(tty, "\n", 1)
        if let signal = Interruption.signal {
            throw StrataError(.interrupted, "passphrase prompt interrupted by \(Interruption.name(signal)); nothing was changed")
        }
        if strict { try requireText(bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A new passphrase: from a file or command when given, else asked twice on the terminal.
    static func new(file: String?, command: String? = nil,
                    sources: String = Passphrase.repositorySources) throws -> String {
        if file != nil || command != nil { return try read(file: file, command: command, prompt: "", strict: true) }
        let first = try prompted("new passphrase: ", sources: sources, strict: true)
        let second = try prompted("repeat the new passphrase: ", sources: sources, strict: true)
        guard first == second else { throw StrataError(.invalidArgument, "the two passphrases differ") }
        return first
    }
}
