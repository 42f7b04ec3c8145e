import Foundation
import Testing

/// Snapshots in progress: the concurrent snapshot limit, pending and failed snapshots in `log`, cancelling with
/// `rm`, and gc waiting for (or refusing to wait for) running snapshots.
@Suite("concurrency", .serialized)
struct ConcurrencyTests {
    /// A `snap -` fed through a pipe that the test controls, so that it stays pending as long as needed.
    final class SlowSnap {
        let process = Process()
        let input = Pipe()
        let errors: URL

        init(repo: String, volume: String, scratch: Scratch) throws {
            errors = URL(fileURLWithPath: scratch.file("snap-\(volume).err"))
            _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["snap", "-", "--volume", volume, "-q"]
            process.environment = ["STRATA_REPO": repo, "PATH": "/usr/bin:/bin"]
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: errors)
            try process.run()
        }

        func feed(_ megabytes: Int) {
            var rng = SplitMix(seed: UInt64(megabytes))
            for _ in 0..<megabytes {
                var block = [UInt8](repeating: 0, count: 1 << 20)
                for i in stride(from: 0, to: block.count, by: 8) { withUnsafeBytes(of: rng.next()) { for j in 0..<8 { block[i + j] = $0[j] } } }
                // The snapshot may have stopped (cancelled or killed): a closed pipe is fine here.
                do { try input.fileHandleForWriting.write(contentsOf: Data(block)) } catch { return }
            }
        }

        func finish() -> Int32 {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// Another process holding the repository lock exclusively, as gc does, until `release()`.
    final class LockHolder {
        let process = Process()
        let input = Pipe()

        init(repo: String, cli: CLI) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            process.arguments = ["-x", "-o", repo + "/lock", "-c", "read line"]
            process.standardInput = input
            try process.run()
            // Held once gc --no-wait finds the lock busy.
            var tries = 0
            while tries < 100, try cli.run(["gc", "--no-wait"]).status != 5 {
                usleep(50_000)
                tries += 1
            }
        }

        func release() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    static func pending(_ cli: CLI) throws -> [[String: Any]] {
        let r = try cli.run(["log", "--json"])
        let all = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        return all.filter { ($0["status"] as? String) != "completed" }
    }

    @Test("limit, pending, cancel, failed, and gc around running snapshots")
    func runningSnapshots() throws {
        signal(SIGPIPE, SIG_IGN)
        let s = Scratch()
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", "--concurrent-snapshots", "1", s.file("repo")]).status == 0)

        let first = try SlowSnap(repo: s.file("repo"), volume: "slow", scratch: s)
        first.feed(2)
        var shown: [[String: Any]] = []
        for _ in 0..<50 where shown.isEmpty { usleep(100_000); shown = try Self.pending(cli) }
        #expect(shown.count == 1 && shown[0]["status"] as? String == "pending" && shown[0]["volume"] as? String == "slow")

        // One more is refused: the limit is 1.
        let img = try CommandLineTests.image(s, bytes: 1 << 20, seed: 3)
        let second = try cli.run(["snap", img])
        #expect(second.status == 5 && second.stderr.contains("concurrent snapshot limit reached"), "\(second.stderr)")
        // gc --no-wait refuses while a snapshot runs.
        #expect(try cli.run(["gc", "--no-wait"]).status == 5)

        // rm of the pending id cancels it: the snapshot stops at its next progress check, committing nothing.
        let token = shown[0]["pendingId"] as! String
        #expect(try cli.run(["rm", token]).status == 0)
        for _ in 0..<3 { first.feed(4); usleep(400_000) }
        let status = first.finish()
        #expect(status != 0)
        #expect(try String(contentsOf: first.errors, encoding: .utf8).contains("cancelled"))
        #expect(try Self.pending(cli).isEmpty)
        #expect(try cli.run(["log", "--json"]).stdout.contains("\"slow\"") == false)

        // A snapshot whose process dies shows as failed; gc removes its journal and packs.
        let doomed = try SlowSnap(repo: s.file("repo"), volume: "doomed", scratch: s)
        doomed.feed(20)
        var tries = 0
        while tries < 300, try Self.pending(cli).isEmpty {
            usleep(100_000)
            tries += 1
        }
        usleep(1_500_000)
        kill(doomed.process.processIdentifier, SIGKILL)
        _ = doomed.finish()
        let failed = try Self.pending(cli)
        #expect(failed.count == 1 && failed[0]["status"] as? String == "failed")
        // rm --json of a pending id: stdout is the JSON object alone (empty), the pending id's line goes to stderr.
        let failedToken = failed[0]["pendingId"] as! String
        let dry = try cli.run(["rm", "--dry-run", "--json", failedToken])
        let object = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any]
        #expect(dry.status == 0 && (object?["removed"] as? [String])?.isEmpty == true && object?["dryRun"] as? Bool == true, "\(dry.stdout)")
        #expect(dry.stderr == "would remove the journal of failed snapshot \(failedToken)\n", "\(dry.stderr)")
        let gc = try cli.run(["gc", "--json"])
        let result = try JSONSerialization.jsonObject(with: Data(gc.stdout.utf8)) as! [String: Any]
        #expect(result["failedSnapshotsRemoved"] as? Int == 1)
        #expect(try Self.pending(cli).isEmpty)
        let fsck = try cli.run(["fsck"])
        #expect(fsck.status == 0 && !fsck.stderr.contains("note:"), "\(fsck.stderr)")
        // And the limit is free again.
        #expect(try cli.run(["snap", img]).status == 0)
    }

    /// Pack files in a repository.
    static func packCount(_ repo: String) -> Int {
        let packs = URL(fileURLWithPath: repo + "/packs")
        let all = FileManager.default.enumerator(at: packs, includingPropertiesForKeys: [.isRegularFileKey])?.compactMap { $0 as? URL } ?? []
        return all.filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }.count
    }

    @Test("Ctrl-C or SIGTERM stops a snapshot cleanly: the signal's exit status, one line, nothing left behind",
          arguments: [SIGINT, SIGTERM])
    func interruptedSnapshot(sig: Int32) throws {
        signal(SIGPIPE, SIG_IGN)
        let s = Scratch()
        let repo = s.file("repo")
        let cli = CLI(repo: repo)
        #expect(try cli.run(["init", repo]).status == 0)
        let snap = try SlowSnap(repo: repo, volume: "v", scratch: s)
        // 40 MiB of random bytes: at least one 16 MiB pack is finished (and durable) before the signal.
        snap.feed(40)
        var tries = 0
        while tries < 100, Self.packCount(repo) == 0 {
            usleep(100_000)
            tries += 1
        }
        #expect(Self.packCount(repo) > 0, "a pack was finished before the signal")
        kill(snap.process.processIdentifier, sig)
        let status = snap.finish()
        let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(snap.process.terminationReason == .exit && status == 128 + sig, "\(snap.process.terminationReason) \(status)")
        #expect(try String(contentsOf: snap.errors, encoding: .utf8) == "strata: snapshot of v interrupted by \(name); nothing was committed\n")
        // No snapshot, no journal, no pack, no temporary file: nothing for gc to do.
        #expect(try cli.run(["log", "--json"]).stdout.contains("\"id\"") == false)
        #expect(try Self.pending(cli).isEmpty)
        #expect(Self.packCount(repo) == 0)
        let fsck = try cli.run(["fsck"])
        #expect(fsck.status == 0 && !fsck.stderr.contains("note:"), "\(fsck.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/tmp").isEmpty)
    }

    @Test("Ctrl-C while waiting for the repository lock stops the wait: exit 130, nothing changed")
    func interruptedLockWait() throws {
        let s = Scratch()
        let repo = s.file("repo")
        let cli = CLI(repo: repo)
        #expect(try cli.run(["init", repo]).status == 0)
        let img = try CommandLineTests.image(s, bytes: 1 << 20, seed: 4)
        let holder = try LockHolder(repo: repo, cli: cli)
        defer { holder.release() }
        let errors = s.file("wait.err")
        let waiting = try Self.start(["snap", img], repo: repo, errors: errors)
        _ = waitForText("waiting", in: errors, seconds: 5)
        kill(waiting.processIdentifier, SIGINT)
        waiting.waitUntilExit()
        #expect(waiting.terminationReason == .exit && waiting.terminationStatus == 130)
        #expect(try String(contentsOfFile: errors, encoding: .utf8) == "waiting for gc to finish…\nstrata: interrupted by SIGINT while waiting for the repository lock; nothing was changed\n")
        holder.release()
        #expect(try Self.pending(cli).isEmpty)
        #expect(try cli.run(["log", "--json"]).stdout.contains("\"id\"") == false)
    }

    @Test("Ctrl-C stops a restore to a pipe that is not read: exit 130, one line")
    func interruptedRestoreToPipe() throws {
        signal(SIGPIPE, SIG_IGN)
        let s = Scratch()
        let repo = s.file("repo")
        let cli = CLI(repo: repo)
        #expect(try cli.run(["init", repo]).status == 0)
        let img = try CommandLineTests.image(s, bytes: 8 << 20, seed: 5)
        let id = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let errors = s.file("restore.err")
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let out = Pipe()
        let restore = Process()
        restore.executableURL = URL(fileURLWithPath: CLI.binary)
        restore.arguments = ["restore", "latest", "-"]
        restore.environment = ["STRATA_REPO": repo, "PATH": "/usr/bin:/bin"]
        restore.standardOutput = out
        restore.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try restore.run()
        // Once bytes arrive the restore is writing (its handler is in place); then nobody reads and it blocks.
        let first = try out.fileHandleForReading.read(upToCount: 4096)
        #expect(first?.isEmpty == false)
        usleep(300_000)
        kill(restore.processIdentifier, SIGINT)
        restore.waitUntilExit()
        #expect(restore.terminationReason == .exit && restore.terminationStatus == 130)
        #expect(try String(contentsOfFile: errors, encoding: .utf8) == "strata: restore of snapshot \(id.prefix(12)) interrupted by SIGINT; the output stops short\n")
    }

    /// Runs `strata` with `--progress json` and sends it SIGINT as soon as its stderr shows `marker` (a progress
    /// event of the stage to stop in): its exit status and what it wrote on stderr.
    static func interrupt(_ args: [String], repo: String, at marker: String) throws -> (status: Int32, stderr: String) {
        let p = Process()
        let errors = Pipe()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = args + ["--progress", "json"]
        p.environment = ["STRATA_REPO": repo, "PATH": "/usr/bin:/bin"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = errors
        try p.run()
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains(marker) {
            let more = errors.fileHandleForReading.availableData
            if more.isEmpty { break }
            seen += more
        }
        kill(p.processIdentifier, SIGINT)
        seen += errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit)
        return (p.terminationStatus, String(decoding: seen, as: UTF8.self))
    }

    @Test("Ctrl-C stops gc, copy, export, import and a restore to a file in any stage: exit 130, one line, nothing left half-done",
          arguments: ["gc", "copy", "export copying", "export writing", "import checking", "import unpacking", "import verifying",
                      "import adding", "restore"])
    func interruptedCommands(step: String) throws {
        let s = Scratch()
        let repo = s.file("repo")
        let cli = CLI(repo: repo)
        #expect(try cli.run(["init", "-q", repo]).status == 0)
        // 48 MiB of random data, snapshotted twice: the second time with one 4 KiB block in 64 rewritten, so
        // removing the first leaves every pack about a quarter dead, and gc rewrites them all.
        let img = s.file("img")
        var bytes = FileHandle(forReadingAtPath: "/dev/urandom")!.readData(ofLength: 48 << 20)
        #expect(FileManager.default.createFile(atPath: img, contents: bytes))
        let first = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fresh = FileHandle(forReadingAtPath: "/dev/urandom")!.readData(ofLength: 4096)
        for block in stride(from: 0, to: (48 << 20) / 4096, by: 64) { bytes.replaceSubrange(block * 4096..<(block + 1) * 4096, with: fresh) }
        #expect(FileManager.default.createFile(atPath: img, contents: bytes))
        let second = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.count == 64 && second.count == 64)
        let verb = String(step.split(separator: " ")[0])
        let stage = step.split(separator: " ").dropFirst().first.map { ",\"stage\":\"\($0)\"" } ?? ""
        let marker = "{\"event\":\"progress\",\"verb\":\"\(verb)\"\(stage)"
        let target = s.file("target")
        let bundle = s.file("b.bundle")
        let out = s.file("out.img")
        var args: [String]
        var message: String
        switch verb {
        case "gc":
            #expect(try cli.run(["rm", "-q", first]).status == 0)
            args = ["gc"]
            message = "gc interrupted by SIGINT; nothing was deleted"
        case "copy":
            #expect(try cli.run(["init", "-q", target]).status == 0)
            args = ["copy", second, "--to", target]
            message = "copy of snapshot \(second.prefix(12)) interrupted by SIGINT; it was not copied"
        case "export":
            args = ["export", second, bundle]
            message = "export to \(bundle) interrupted by SIGINT; no bundle was written"
        case "import":
            #expect(try cli.run(["export", "-q", second, bundle]).status == 0)
            #expect(try cli.run(["init", "-q", target]).status == 0)
            args = ["-r", target, "import", bundle]
            message = "import of bundle \(bundle) interrupted by SIGINT; nothing was added"
        default:
            args = ["restore", second, out]
            message = "restore of snapshot \(second.prefix(12)) interrupted by SIGINT; nothing was left at \(out)"
        }
        let r = try Self.interrupt(args, repo: repo, at: marker)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("{") }
        #expect(r.status == 130 && lines == ["strata: " + message], "\(step): \(r.status) \(lines)")
        // (Which stage it stops in depends on how soon this process sees the event and signals: a short stage can end
        // first, and the next one stops instead. The outcome must be the same whichever it is.)
        // Nothing half-done: no bundle, image or draft beside them; no snapshot in the target; every repository
        // whole, its temporary files gone; a gc stopped mid-way completes when run again.
        let left = try FileManager.default.contentsOfDirectory(atPath: s.path).filter { !["repo", "target", "img"].contains($0) }
        #expect(left == (verb == "import" ? ["b.bundle"] : []), "\(step): \(left)")
        for path in [repo] + (FileManager.default.fileExists(atPath: target) ? [target] : []) {
            let fsck = try CLI(repo: path).run(["fsck", "--read-data"])
            #expect(fsck.status == 0 && !fsck.stderr.contains("note:"), "\(step): \(path): \(fsck.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/tmp").isEmpty, "\(step): \(path)/tmp")
        }
        if FileManager.default.fileExists(atPath: target) {
            #expect(try CLI(repo: target).run(["log", "--json"]).stdout.contains("\"id\"") == false, "\(step): a snapshot was added")
        }
        if verb == "gc" {
            #expect(try cli.run(["gc", "-q"]).status == 0)
            #expect(try cli.run(["restore", "-q", second, out]).status == 0)
            #expect(try sameFiles(out, img))
        }
    }

    /// Starts `strata` with its stderr going to a file.
    static func start(_ args: [String], repo: String, errors: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = args
        p.environment = ["STRATA_REPO": repo, "PATH": "/usr/bin:/bin"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try p.run()
        return p
    }

    @Test("gc waits for a running snapshot; snap, fsck, fsck --repair, restore, copy and import wait for gc; each then goes on")
    func waits() throws {
        signal(SIGPIPE, SIG_IGN)
        let s = Scratch()
        let repo = s.file("repo")
        let cli = CLI(repo: repo)
        #expect(try cli.run(["init", repo]).status == 0)
        let img = try CommandLineTests.image(s, bytes: 2 << 20, seed: 8)
        let first = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // gc while a snapshot runs: it says it waits, and runs once the snapshot is committed.
        let snap = try SlowSnap(repo: repo, volume: "slow", scratch: s)
        snap.feed(2)
        var tries = 0
        while tries < 100, try Self.pending(cli).isEmpty {
            usleep(100_000)
            tries += 1
        }
        let gcErrors = s.file("gc.err")
        let gc = try Self.start(["gc"], repo: repo, errors: gcErrors)
        #expect(waitForText("waiting", in: gcErrors) == "waiting for other strata commands to finish…\n")
        usleep(300_000)
        #expect(gc.isRunning, "gc did not wait for the snapshot")
        snap.feed(1)
        #expect(snap.finish() == 0)
        gc.waitUntilExit()
        #expect(gc.terminationStatus == 0)
        let gcSaid = try String(contentsOfFile: gcErrors, encoding: .utf8)
        #expect(gcSaid.hasPrefix("waiting for other strata commands to finish…\ngc: freed "), "\(gcSaid)")
        #expect(try cli.run(["log", "--json"]).stdout.contains("\"slow\""))

        // Another repository to copy and import from.
        let other = s.file("other")
        #expect(try cli.run(["init", other]).status == 0)
        let otherImage = try CommandLineTests.image(s, "other.img", bytes: 2 << 20, seed: 9)
        #expect(try cli.run(["-r", other, "snap", "-q", otherImage, "--volume", "copied"]).status == 0)
        #expect(try cli.run(["-r", other, "snap", "-q", otherImage, "--volume", "imported"]).status == 0)
        #expect(try cli.run(["-r", other, "export", "-q", "latest", s.file("b.bundle")]).status == 0)

        // While gc holds the lock (here flock(1), as gc holds it: exclusively), snap says it waits; fsck, restore,
        // a copy into the repository and an import into it wait without a word; when it is released, all finish.
        let holder = try LockHolder(repo: repo, cli: cli)
        defer { holder.release() }
        let waiting = [("snap", ["snap", img, "--volume", "later"]), ("fsck", ["fsck", "-q"]), ("restore", ["restore", "-q", first, s.file("out.img")]),
                       ("copy", ["-r", other, "copy", "-q", "--volume", "copied", "latest", "--to", repo]),
                       ("import", ["import", "-q", s.file("b.bundle")]), ("repair", ["fsck", "-q", "--repair"])]
        let processes = try waiting.map { try Self.start($0.1, repo: repo, errors: s.file($0.0 + ".err")) }
        #expect(waitForText("waiting", in: s.file("snap.err")) == "waiting for gc to finish…\n")
        usleep(300_000)
        for (p, (name, _)) in zip(processes, waiting) { #expect(p.isRunning, "\(name) did not wait for gc") }
        for quiet in ["fsck", "restore", "copy", "import", "repair"] {
            #expect(try String(contentsOfFile: s.file(quiet + ".err"), encoding: .utf8).isEmpty, "\(quiet)")
        }
        #expect(!FileManager.default.fileExists(atPath: s.file("out.img")))
        holder.release()
        for (p, (name, _)) in zip(processes, waiting) {
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(name): \((try? String(contentsOfFile: s.file(name + ".err"), encoding: .utf8)) ?? "")")
        }
        let log = try cli.run(["log", "--json"]).stdout
        for volume in ["later", "copied", "imported"] { #expect(log.contains("\"\(volume)\""), "\(volume)") }
        #expect(try sameFiles(s.file("out.img"), img))
    }
}
