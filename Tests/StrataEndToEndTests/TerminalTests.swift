import Foundation
import Testing

/// The terminal experience, tested for real under a pseudo-terminal (`script`), and the exit codes scripts rely on.
@Suite("terminal and exit codes")
struct TerminalTests {
    static var scriptAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/script") }

    @Test("under a terminal, a progress line is drawn in place and erased; the summary line remains",
          .enabled(if: TerminalTests.scriptAvailable, "needs script(1) from util-linux"))
    func progressUnderTTY() throws {
        let s = Scratch()
        let img = try CommandLineTests.image(s, bytes: 96 << 20, seed: 8)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let typescript = s.file("typescript")
        let command = "STRATA_REPO=\(s.file("repo")) \(CLI.binary) snap \(img) --volume tty > \(s.file("id")) "
        let r = try CLI.exec("/usr/bin/script", ["-qfc", command, typescript])
        #expect(r.status == 0, "\(r.stderr)")
        let screen = String(decoding: try Data(contentsOf: URL(fileURLWithPath: typescript)), as: UTF8.self)
        let clear = "\r\u{1B}[2K"
        #expect(screen.components(separatedBy: clear).count >= 3, "the line is drawn, redrawn and erased in place: \(screen.debugDescription)")
        #expect(screen.contains("snap ") && screen.contains("MiB/s"))
        #expect(screen.contains("["), "a bar is drawn")
        // After the last erase only the summary line is left on the screen.
        let tail = screen.components(separatedBy: clear).last!
        #expect(tail.hasPrefix("snap ") && tail.contains(" new (") && tail.contains(" stored"), "\(tail.debugDescription)")
        #expect(!tail.contains("[#") && !tail.contains("[-") && !tail.contains("ETA"), "no progress bar left on the final screen")
        // stdout (redirected) got only the id.
        let id = try String(contentsOfFile: s.file("id"), encoding: .utf8)
        #expect(id.trimmingCharacters(in: .whitespacesAndNewlines).count == 64)
    }

    @Test("without a terminal nothing but the result reaches stdout, and --progress=json emits JSON lines")
    func noTTY() throws {
        let s = Scratch()
        let img = try CommandLineTests.image(s, bytes: 64 << 20, seed: 9)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let plain = try cli.run(["snap", img])
        #expect(plain.stdout.split(separator: "\n").count == 1)
        #expect(!plain.stderr.contains("\u{1B}"), "no escape sequences when stderr is not a terminal")
        let json = try cli.run(["snap", img, "--volume", "j", "--progress", "json", "-q"])
        let events = json.stderr.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!events.isEmpty && events.allSatisfy { $0 != nil }, "\(json.stderr)")
        #expect(events.last!!["event"] as? String == "end")
        #expect(events.last!!["bytesDone"] as? Int == 64 << 20)
    }

    @Test("exit 5 when the lock is busy, exit 6 for a repository from the future")
    func exitCodes() throws {
        let s = Scratch()
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        // Another process holds the lock shared (as a running snapshot does): gc --no-wait fails at once.
        // It holds it until its standard input closes, however long a loaded machine takes to get to gc.
        let holder = Process()
        let input = Pipe()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-s", "-o", s.file("repo/lock"), "-c", "read line"]
        holder.standardInput = input
        try holder.run()
        defer { holder.terminate() }
        // Wait until the holder has the lock (an exclusive try fails), however slow the machine.
        var tries = 0
        while tries < 600, try CLI.exec("/usr/bin/flock", ["-n", "-x", s.file("repo/lock"), "true"]).status == 0 {
            usleep(50_000)
            tries += 1
        }
        let gc = try cli.run(["gc", "--no-wait"])
        #expect(gc.status == 5, "\(gc.stderr)")
        #expect(gc.stderr.hasPrefix("strata: repository is locked"))
        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        // A config written by a future format.
        let config = s.file("repo/config")
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "\"format\" : 2", with: "\"format\" : 3")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let log = try cli.run(["log"])
        #expect(log.status == 6, "\(log.stderr)")
        #expect(log.stderr.contains("format 3"))
    }

    /// Runs a strata command under a pseudo-terminal whose keyboard input is `typed`.
    static func atTerminal(_ command: String, typed: String, scratch: Scratch) throws -> CLI.Result {
        let input = scratch.file("typed-\(UUID().uuidString)")
        try typed.write(toFile: input, atomically: true, encoding: .utf8)
        return try CLI.exec("/usr/bin/timeout", ["20", "/usr/bin/script", "-qec", command, "/dev/null"], stdin: input)
    }

    @Test("passphrases are asked on the terminal: twice at init (a mismatch creates nothing), once to open",
          .enabled(if: TerminalTests.scriptAvailable, "needs script(1) from util-linux"))
    func passphrasePrompts() throws {
        let s = Scratch()
        let repo = s.file("repo")
        let mismatch = try Self.atTerminal("\(CLI.binary) init --encrypt \(repo)", typed: "one\ntwo\n", scratch: s)
        #expect(mismatch.status == 2 && mismatch.stdout.contains("the two passphrases differ"), "\(mismatch.stdout)")
        #expect(!FileManager.default.fileExists(atPath: repo))
        let created = try Self.atTerminal("\(CLI.binary) init --encrypt \(repo)", typed: "tty secret\ntty secret\n", scratch: s)
        #expect(created.status == 0, "\(created.stdout)")
        let opened = try Self.atTerminal("\(CLI.binary) -r \(repo) log", typed: "tty secret\n", scratch: s)
        #expect(opened.status == 0 && opened.stdout.contains("passphrase:"), "\(opened.stdout)")
        let wrong = try Self.atTerminal("\(CLI.binary) -r \(repo) log", typed: "nope\n", scratch: s)
        #expect(wrong.status == 7 && wrong.stdout.contains("wrong passphrase"), "\(wrong.stdout)")
    }

    @Test("Ctrl-C at a passphrase prompt: one line, exit 130, and the terminal echoes again",
          .enabled(if: TerminalTests.scriptAvailable, "needs script(1) from util-linux"))
    func interruptedPrompt() throws {
        let s = Scratch()
        let repo = s.file("repo")
        let created = try Self.atTerminal("\(CLI.binary) init --encrypt \(repo)", typed: "tty secret\ntty secret\n", scratch: s)
        #expect(created.status == 0, "\(created.stdout)")
        // The prompt waits on a terminal whose input stays open; once it is shown, the process gets SIGINT.
        let screen = s.file("screen")
        let script = Process()
        let input = Pipe()
        script.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        script.arguments = ["-qfc", "\(CLI.binary) -r \(repo) log; echo status=$?; stty -a", screen]
        script.standardInput = input
        script.standardOutput = FileHandle.nullDevice
        try script.run()
        _ = waitForText("passphrase:", in: screen)
        let pid = try CLI.exec("/usr/bin/pgrep", ["-f", "^\(CLI.binary) -r \(repo) log$"]).stdout
            .split(separator: "\n").compactMap { Int32($0) }
        #expect(pid.count == 1, "\(pid)")
        for p in pid { kill(p, SIGINT) }
        let shown = waitForText("speed", in: screen)  // stty -a ran
        try? input.fileHandleForWriting.close()
        script.waitUntilExit()
        #expect(shown.contains("strata: passphrase prompt interrupted by SIGINT; nothing was changed"), "\(shown)")
        #expect(shown.contains("status=130"), "\(shown)")
        // stty prints " echo " when echo is on and " -echo " when it is off.
        #expect(shown.contains(" echo ") && !shown.contains("-echo "), "\(shown)")
    }
}

