import Foundation
import Testing

/// What a user sees: results on stdout, one clear line on stderr for each mistake, documented exit codes,
/// and a repository left untouched.
@Suite("command line")
struct CommandLineTests {
    static func image(_ s: Scratch, _ name: String = "img", bytes: Int = 3 << 20, seed: UInt64 = 1) throws -> String {
        var rng = SplitMix(seed: seed)
        var data = [UInt8](repeating: 0, count: bytes)
        for i in stride(from: 0, to: bytes - (1 << 20), by: 8) {
            let v = rng.next() % 4 == 0 ? rng.next() : UInt64(i / 4096)
            withUnsafeBytes(of: v) { for j in 0..<8 { data[i + j] = $0[j] } }
        }
        let path = s.file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(data))
        return path
    }

    static func repoListing(_ path: String) -> [String] {
        (FileManager.default.subpaths(atPath: path) ?? []).sorted()
    }

    @Test("mistakes get one line on stderr, a documented exit code, and change nothing")
    func errors() throws {
        let s = Scratch()
        let img = try Self.image(s)
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        let snapID = try cli.run(["snap", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = FileManager.default.createFile(atPath: s.file("exists.img"), contents: Data([1, 2, 3]))
        try FileManager.default.createDirectory(atPath: s.file("adir"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: s.file("dangling.img"), withDestinationPath: s.file("nothing"))
        try FileManager.default.createSymbolicLink(atPath: s.file("link.img"), withDestinationPath: s.file("exists.img"))
        let before = Self.repoListing(s.file("repo"))

        let cases: [(args: [String], status: Int32, message: String)] = [
            (["log", "-r", s.file("adir")], 3, "is not a Strata repository"),
            (["log", "-r", s.file("missing")], 3, "is not a Strata repository"),
            (["init", s.file("repo")], 2, "already a repository"),
            (["restore", "beef00", s.file("x.img")], 3, "snapshot 'beef00' not found"),
            (["restore", "abc", s.file("x.img")], 2, "too short"),
            (["restore", "no-such-ref", s.file("x.img")], 3, "not found"),
            (["restore", snapID, s.file("exists.img")], 2, "exists; use --force"),
            (["restore", snapID, s.file("adir")], 2, "is a directory"),
            (["restore", snapID, s.file("exists.img"), "--force", "--skip-unchanged"], 2, "--skip-unchanged is for a block device restored in place; \(s.file("exists.img")) is not one"),
            (["restore", snapID, "-", "--skip-unchanged"], 2, "--skip-unchanged is for a block device restored in place; standard output is not one"),
            (["snap", s.file("adir")], 2, "is a directory"),
            (["snap", s.file("nope.img")], 3, "does not exist"),
            (["snap", ""], 2, "the source is empty: give an image file, a block device or '-'"),
            (["snap", img, "-t", "=x"], 2, "tag key"),
            (["snap", "-"], 2, "needs --volume"),
            (["init", "--chunker", "cdc:5000", s.file("r2")], 2, "chunk"),
            (["init", "--format", "3", s.file("r2")], 2, "repository format 3 is not one this strata writes"),
            (["-r", s.file("r3"), "init", s.file("r4")], 2, "two repository paths given"),
            (["-r", s.file("r3"), "init", "--repo", s.file("r4")], 2, "given more than once"),
            (["-r", s.file("r3"), "log", "-r", s.file("repo")], 2, "given more than once"),
            (["fsck", "--read-data", "--read-data-subset", "5%"], 2, "cannot be given together"),
            (["key", "rm", "abcd"], 2, "is not encrypted: it has no keys"),
            (["key", "add"], 2, "is not encrypted: it has no keys"),
            (["rm", snapID, "ffff0000"], 3, "not found"),
            (["frobnicate"], 2, ""),
            (["snap"], 2, "missing expected argument '<source> ...'; see 'strata snap --help'"),
            (["log", "--bogus"], 2, "unknown option '--bogus'; see 'strata log --help'"),
            (["restore", snapID], 2, "missing expected argument '<target>'"),
            (["restore", snapID, ""], 2, "the restore target is empty: give a file, a block device or '-'"),
            (["restore", snapID, s.file("repo/config"), "--force"], 2, "restore target \(s.file("repo/config")) is inside the repository"),
            (["restore", snapID, s.file("dangling.img")], 2, "restore target \(s.file("dangling.img")) is a symlink to nothing that exists"),
            (["restore", snapID, s.file("link.img")], 2, "exists; use --force"),
            (["init", ""], 2, "the repository path is empty"),
            (["export", snapID, ""], 2, "the bundle path is empty"),
            (["export", snapID, "-"], 2, "a bundle is written to a file, not to standard output"),
            (["export", snapID, s.file("adir")], 2, "bundle \(s.file("adir")) is a directory"),
            (["rm", "--keep-within", "9223372036854775807s", "--dry-run"], 2, "duration '9223372036854775807s' is too long: at most 10000y"),
            (["log", "--since", "2026-02-30"], 2, "time '2026-02-30' is not valid"),
            (["rm", "--keep-last", "-1"], 2, "--keep-last must be 0 or more, not -1"),
            (["tag", snapID, "x=1", "--remove", "x"], 2, "tag 'x' is both set and removed; give one or the other"),
            (["ref", "lst"], 2, "unknown command 'ref lst'; did you mean 'ref list'?"),
            (["snap", img, "--volume", " "], 2, "volume name ' ' is not valid: it starts or ends with a blank"),
            (["fsck", "--read-data-subset", "-5"], 2, "--read-data-subset '-5' is not valid"),
        ]
        for c in cases {
            let r = try cli.run(c.args)
            #expect(r.status == c.status, "\(c.args): status \(r.status), stderr \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(c.args) printed on stdout: \(r.stdout)")
            if !c.message.isEmpty {
                #expect(r.stderr.hasPrefix("strata: "), "\(c.args): \(r.stderr)")
                #expect(r.stderr.contains(c.message), "\(c.args): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(c.args): one line, got \(r.stderr)")
            }
        }
        #expect(Self.repoListing(s.file("repo")) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.file("exists.img"))) == Data([1, 2, 3]))
        #expect(!FileManager.default.fileExists(atPath: s.file("nothing")))
        // With --force, a symlink's target is restored and the link stays a link.
        #expect(try cli.run(["restore", "-q", snapID, s.file("link.img"), "--force"]).status == 0)
        #expect(try sameFiles(img, s.file("exists.img")))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: s.file("link.img")) == s.file("exists.img"))
        #expect(!FileManager.default.fileExists(atPath: s.file("r2")))
        #expect(!FileManager.default.fileExists(atPath: s.file("r3")) && !FileManager.default.fileExists(atPath: s.file("r4")))
        // -r before init names the new repository, as it names the repository for every other verb.
        #expect(try cli.run(["-r", s.file("r5"), "init"]).status == 0)
        let keyTypo = try CLI().run(["-r", s.file("r5"), "key", "lst"])
        #expect(keyTypo.status == 2 && keyTypo.stderr == "strata: unknown command 'key lst'; did you mean 'key list'?\n", "\(keyTypo.stderr)")
        #expect(try cli.run(["-r", s.path + "/./r6", "init", s.file("r6")]).status == 0, "the same directory named two ways")
        #expect(try cli.run(["log", "-r", s.file("r5")]).status == 0)
        // rm of an unknown name among known ones removed nothing.
        #expect(try cli.run(["log", "--json"]).stdout.contains(snapID))
    }

    @Test("standard input in, standard output out, --force replaces a file; pseudo-files that say they are empty are read")
    func streams() throws {
        let s = Scratch()
        let img = try Self.image(s, bytes: (2 << 20) + 777, seed: 2)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let r = try cli.run(["snap", "-", "--volume", "piped"], stdin: img)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try cli.run(["restore", "latest", "-"])
        #expect(out.status == 0)
        #expect(out.stdoutBytes == (try Data(contentsOf: URL(fileURLWithPath: img))))
        _ = FileManager.default.createFile(atPath: s.file("target"), contents: Data([9]))
        #expect(try cli.run(["restore", "latest", s.file("target"), "--force"]).status == 0)
        #expect(try sameFiles(img, s.file("target")))
        // The global form -r PATH before the verb works too.
        let log = try CLI().run(["-r", s.file("repo"), "log"])
        #expect(log.status == 0 && log.stdout.contains("piped"))

        // A file that reports a size of 0 but has bytes (/proc, /sys) is read to its end, as a stream; a file that
        // is empty is an empty snapshot.
        let version = try Data(contentsOf: URL(fileURLWithPath: "/proc/version"))
        #expect(try cli.run(["snap", "-q", "/proc/version"]).status == 0)
        #expect(try cli.run(["restore", "latest", "-", "--volume", "version"]).stdoutBytes == version && !version.isEmpty)
        _ = FileManager.default.createFile(atPath: s.file("empty.img"), contents: Data())
        #expect(try cli.run(["snap", "-q", s.file("empty.img")]).status == 0)
        #expect(try cli.run(["restore", "latest", "-", "--volume", "empty.img"]).stdoutBytes.isEmpty)
    }

    @Test("latest, --volume and ref-free prefixes pick the right snapshot")
    func naming() throws {
        let s = Scratch()
        let a = try Self.image(s, "a.img", seed: 3), b = try Self.image(s, "b.img", seed: 4)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let idA = try cli.run(["snap", a]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try cli.run(["snap", b])
        let outA = s.file("outA")
        #expect(try cli.run(["restore", "latest", "--volume", "a.img", outA]).status == 0)
        #expect(try sameFiles(a, outA))
        let log = try cli.run(["log", "--volume", "a.img", "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as! [[String: Any]]
        #expect(entries.count == 1 && entries[0]["id"] as? String == idA)
    }

    @Test("snap --clone: always refuses in one line where no clone can be made (tmpfs) and commits nothing; auto reads the file; a bad mode is a usage error",
          .enabled(if: FileManager.default.isWritableFile(atPath: "/dev/shm"), "needs a tmpfs at /dev/shm"))
    func cloneModes() throws {
        let s = Scratch()
        let shm = "/dev/shm/strata-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: shm) }
        let img = shm + "/disk.img"
        try FileManager.default.copyItem(atPath: try Self.image(s), toPath: img)
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        let auto = try cli.run(["snap", img, "--json"])
        #expect(auto.status == 0 && !auto.stderr.contains("warning"), "\(auto.stderr)")
        #expect(auto.stdout.contains("\"sourceKind\" : \"file\""))
        let before = Self.repoListing(s.file("repo"))
        let refused = try cli.run(["snap", img, "--clone", "always"])
        #expect(refused.status == 1 && refused.stdout.isEmpty)
        #expect(refused.stderr == "strata: cannot take a point-in-time clone of \(img): its file system cannot clone files (btrfs and XFS with reflink can); with --clone auto it is read as it is\n")
        #expect(Self.repoListing(s.file("repo")) == before, "nothing was written")
        let bad = try cli.run(["snap", img, "--clone", "sometimes"])
        #expect(bad.status == 2 && bad.stderr == "strata: the value 'sometimes' is invalid for '--clone <mode>'. Please provide one of 'auto', 'always' or 'never'; see 'strata snap --help'\n", "\(bad.stderr)")
    }

    @Test("snap of several images (a VM's disks): one id per line, a summary each naming its volume, --volume once per source, --json an array; a wrong count of --volume is a usage error")
    func severalSources() throws {
        let s = Scratch()
        let os = try Self.image(s, "os.img")
        let data = try Self.image(s, "data.img", seed: 2)
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        let both = try cli.run(["snap", os, data, "-m", "both"])
        #expect(both.status == 0, "\(both.stderr)")
        let ids = both.stdout.split(separator: "\n").map(String.init)
        #expect(ids.count == 2 && ids.allSatisfy { $0.count == 64 })
        let notes = both.stderr.split(separator: "\n")
        #expect(notes.count == 2 && notes[0].hasPrefix("snap \(ids[0].prefix(12))  os.img  3.0 MiB in ")
                && notes[1].hasPrefix("snap \(ids[1].prefix(12))  data.img  3.0 MiB in "), "\(both.stderr)")

        let named = try cli.run(["snap", os, data, "--volume", "os", "--volume", "data", "--json"])
        #expect(named.status == 0, "\(named.stderr)")
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(named.stdout.utf8)) as? [[String: Any]])
        #expect(objects.compactMap { $0["volume"] as? String } == ["os", "data"])
        #expect(Set(objects.compactMap { $0["createdAt"] as? String }).count == 1, "one point in time")

        // Progress counts the bytes of all the sources together: it never goes back, and ends at their sum.
        let progress = try cli.run(["snap", os, data, "-q", "--progress", "json"])
        #expect(progress.status == 0, "\(progress.stderr)")
        let events = progress.stderr.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let done = events.compactMap { ($0["bytesDone"] as? NSNumber)?.int64Value }
        #expect(!done.isEmpty && done == done.sorted(), "\(progress.stderr)")
        #expect(events.last?["event"] as? String == "end" && (events.last?["bytesTotal"] as? NSNumber)?.int64Value == 6 << 20,
                "\(progress.stderr)")

        let before = Self.repoListing(s.file("repo"))
        let wrong = try cli.run(["snap", os, data, "--volume", "os"])
        #expect(wrong.status == 2 && wrong.stderr == "strata: give --volume once per source (2 sources, 1 --volume); see 'strata snap --help'\n", "\(wrong.stderr)")
        let twice = try cli.run(["snap", os, os])
        #expect(twice.status == 2 && twice.stderr == "strata: two sources would be volume 'os.img': give each its own with --volume, once per source\n", "\(twice.stderr)")
        #expect(Self.repoListing(s.file("repo")) == before, "nothing was written")
        #expect(try cli.run(["log"]).stdout.split(separator: "\n").count == 7, "a header and six snapshots")
        // The newest are two volumes' snapshots of one instant: 'latest' alone does not pick one of them.
        let latest = try cli.run(["restore", "latest", s.file("which.img")])
        #expect(latest.status == 3 && latest.stderr.hasPrefix("strata: 'latest' is ambiguous: snapshots ")
                && latest.stderr.hasSuffix(" were taken together; give --volume\n") && latest.stderr.contains("(os.img)")
                && latest.stderr.contains("(data.img)"), "\(latest.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.file("which.img")))
        #expect(try cli.run(["restore", "-q", "latest", "--volume", "data.img", s.file("which.img")]).status == 0)
        #expect(try sameFiles(data, s.file("which.img")))
    }

    @Test("retention's buckets and log's times are local time as TZ says, in every build (not Foundation's GMT)")
    func localTime() throws {
        let s = Scratch()
        let img = try Self.image(s)
        var cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        #expect(try cli.run(["snap", img]).status == 0)
        let shown = try JSONSerialization.jsonObject(with: Data(try cli.run(["show", "latest", "--json"]).stdout.utf8)) as? [String: Any]
        let createdAt = try #require((shown?["snapshot"] as? [String: Any])?["createdAt"] as? String)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let taken = try #require(formatter.date(from: createdAt))
        // Fourteen hours ahead of UTC and eleven behind: at any moment one of them is on another date than UTC.
        for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = try #require(TimeZone(identifier: zone))
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: taken)
            let day = String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
            let time = day + String(format: " %02d:%02d:%02d", c.hour!, c.minute!, c.second!)
            cli.environment["TZ"] = zone
            let kept = try cli.run(["rm", "--keep-daily", "1", "--dry-run"])
            #expect(kept.status == 0 && kept.stdout.contains("daily \(day)"), "\(zone): \(kept.stdout)")
            #expect(try cli.run(["log"]).stdout.contains(time), "\(zone): log shows local time")
        }
    }

    @Test("help lists every verb; --version names the repository format")
    func help() throws {
        let h = try CLI().run(["--help"])
        #expect(h.status == 0)
        for verb in ["init", "snap", "log", "restore", "rm", "gc", "fsck"] { #expect(h.stdout.contains(verb)) }
        let v = try CLI().run(["--version"])
        #expect(v.stdout.contains("repository format 2; reads formats 1–2"))
    }

    @Test("fsck exits 4 and names the snapshot when a pack is lost")
    func fsckDamage() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 5)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let id = try cli.run(["snap", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let packs = FileManager.default.subpaths(atPath: s.file("repo/packs"))!.filter { $0.count > 60 }
        try FileManager.default.removeItem(atPath: s.file("repo/packs/" + packs[0]))
        let r = try cli.run(["fsck"])
        #expect(r.status == 4)
        #expect(r.stderr.contains(String(id.prefix(12))))
        let restore = try cli.run(["restore", "latest", s.file("out")])
        #expect(restore.status == 4)
        #expect(!FileManager.default.fileExists(atPath: s.file("out")))
        // Over a file that was there (--force), the failure says the file was left as it was, and it was.
        _ = FileManager.default.createFile(atPath: s.file("old.img"), contents: Data([7, 7]))
        let over = try cli.run(["restore", "latest", s.file("old.img"), "--force"])
        #expect(over.status == 4 && over.stderr.hasSuffix("; \(s.file("old.img")) was left as it was\n")
                && over.stderr.split(separator: "\n").count == 1, "\(over.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.file("old.img"))) == Data([7, 7]))
    }

    @Test("protect refuses rm until unprotect; an unknown snapshot is one clear line")
    func protection() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 11)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let id = try cli.run(["snap", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["protect", "latest"]).status == 0)
        let refused = try cli.run(["rm", id])
        #expect(refused.status == 1 && refused.stderr.contains("is protected"), "\(refused.stderr)")
        let unknown = try cli.run(["unprotect", "beefbeef"])
        #expect(unknown.status == 3 && unknown.stderr.split(separator: "\n").count == 1)
        #expect(try cli.run(["unprotect", id]).status == 0)
        #expect(try cli.run(["rm", id]).status == 0)
        // A protected snapshot whose manifest was lost: gc stops (one line, exit 4), unprotect by prefix releases it.
        let lost = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["protect", "-q", lost]).status == 0)
        try FileManager.default.removeItem(atPath: s.file("repo/snapshots/" + lost))
        let stopped = try cli.run(["gc"])
        #expect(stopped.status == 4 && stopped.stderr.hasPrefix("strata: gc stopped: snapshot \(lost.prefix(12)) is protected but its manifest is missing")
                && stopped.stderr.split(separator: "\n").count == 1, "\(stopped.stderr)")
        #expect(try cli.run(["fsck"]).status == 4)
        #expect(try cli.run(["unprotect", String(lost.prefix(8))]).status == 0)
        #expect(try cli.run(["gc", "-q"]).status == 0)
        let clean = try cli.run(["fsck"])
        #expect(clean.status == 0 && !clean.stderr.contains("note:"), "\(clean.stderr)")
    }

    @Test("ref list shows each ref's snapshot and volume, and says which refs are dangling or damaged")
    func refList() throws {
        let s = Scratch()
        let img = try Self.image(s, "vm.img", seed: 12)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let id = try cli.run(["snap", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["ref", "add", "good", "latest"]).status == 0)
        let other = try Self.image(s, "other.img", seed: 14)
        let brokenID = try cli.run(["snap", other]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["ref", "add", "broken", brokenID]).status == 0)
        try "garbage".write(toFile: s.file("repo/snapshots/\(brokenID)"), atomically: true, encoding: .utf8)
        let tags = s.file("repo/refs/tags")
        try String(repeating: "0", count: 64).write(toFile: tags + "/dangling", atomically: true, encoding: .utf8)
        try "not an id".write(toFile: tags + "/damaged", atomically: true, encoding: .utf8)
        let list = try cli.run(["ref", "list"])
        #expect(list.status == 0, "\(list.stderr)")
        let rows = list.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["REF", "SNAPSHOT", "VOLUME", "TIME"])
        #expect(rows.contains { $0.count >= 3 && $0[0] == "damaged" && $0[1] == "(damaged)" && $0[2] == "-" }, "\(list.stdout)")
        #expect(rows.contains { $0.count >= 5 && $0[0] == "dangling" && $0[2...4] == ["(no", "such", "snapshot)"] }, "\(list.stdout)")
        #expect(rows.contains { $0.count >= 4 && $0[0] == "broken" && $0[2...3] == ["(damaged", "snapshot)"] }, "\(list.stdout)")
        #expect(rows.contains { $0.count >= 3 && $0[0] == "good" && id.hasPrefix($0[1]) && $0[2] == "vm.img" }, "\(list.stdout)")
    }

    @Test("once it reads a passphrase strata is not dumpable: no core file, and other processes of its user cannot read its memory (its /proc files belong to root)",
          .enabled(if: getuid() == 0, "runs strata as another user (root)"))
    func passphraseKeepsProcessUndumpable() throws {
        let s = Scratch()
        let home = s.file("nobody")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try "pass\n".write(toFile: home + "/pass", atomically: true, encoding: .utf8)
        #expect(chown(home, 65534, 65534) == 0 && chown(home + "/pass", 65534, 65534) == 0)
        #expect(chmod(s.path, 0o755) == 0)
        // A copy the other user can run wherever the build lies.
        try FileManager.default.copyItem(atPath: CLI.binary, toPath: home + "/strata")
        func asNobody(_ args: [String]) throws -> CLI.Result {
            try CLI.exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", home + "/strata"] + args)
        }
        // The password command looks at who owns its parent's /proc files: the user it runs as while the parent is
        // dumpable, root once it is not.
        let probe = "stat -c %u /proc/$PPID/environ > \(home)/owner; echo pass"
        let vault = try asNobody(["init", "-q", "--encrypt", "--password-file", home + "/pass", home + "/vault"])
        #expect(vault.status == 0, "\(vault.stderr)")
        let logged = try asNobody(["-r", home + "/vault", "log", "--password-command", probe])
        #expect(logged.status == 0, "\(logged.stderr)")
        #expect(try String(contentsOfFile: home + "/owner", encoding: .utf8) == "0\n")
        // The same probe run by a dumpable process of that user sees it owned by the user.
        let shell = try CLI.exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "/bin/sh -c \"$1\"; true", "sh", probe])
        #expect(shell.status == 0)
        #expect(try String(contentsOfFile: home + "/owner", encoding: .utf8) == "65534\n")
    }

    @Test("a passphrase file's first line is the passphrase, whether it ends in \\n, \\r\\n or nothing")
    func passphraseLineEndings() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 13)
        func file(_ name: String, _ bytes: String) throws -> String {
            try bytes.write(toFile: s.file(name), atomically: true, encoding: .utf8)
            return s.file(name)
        }
        let lf = try file("lf", "correct horse\n"), crlf = try file("crlf", "correct horse\r\nsecond line\n")
        let bare = try file("bare", "correct horse"), other = try file("other", "correct horse \n")
        // A repository made from a Windows-edited file opens with the same passphrase typed anywhere else.
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo"), "--encrypt", "--password-file", crlf]).status == 0)
        for f in [lf, crlf, bare] {
            let r = try cli.run(["snap", img, "--password-file", f])
            #expect(r.status == 0, "\(f): \(r.stderr)")
        }
        let viaCommand = try cli.run(["log", "--password-command", "printf 'correct horse\\r\\n'"])
        #expect(viaCommand.status == 0, "\(viaCommand.stderr)")
        // A command that fails, or is killed, gives its exit status or signal in one line, exit 7.
        let failing = try cli.run(["log", "--password-command", "echo 'correct horse'; exit 3"])
        #expect(failing.status == 7 && failing.stderr == "strata: the password command failed (exit 3)\n", "\(failing.stderr)")
        let killed = try cli.run(["log", "--password-command", "kill -9 $$"])
        #expect(killed.status == 7 && killed.stderr == "strata: the password command failed (signal 9)\n", "\(killed.stderr)")
        let wrong = try cli.run(["log", "--password-file", other])
        #expect(wrong.status == 7 && wrong.stderr.hasPrefix("strata: wrong passphrase"), "\(wrong.status) \(wrong.stderr)")
    }

    @Test("latest with a damaged manifest in the repository: the choice is made without it, and a warning says so")
    func latestWithDamagedManifest() throws {
        let s = Scratch()
        let a = try Self.image(s, "a.img", seed: 15), b = try Self.image(s, "b.img", seed: 16)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let older = try cli.run(["snap", a, "--volume", "vm"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let newer = try cli.run(["snap", b, "--volume", "vm"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "garbage".write(toFile: s.file("repo/snapshots/\(newer)"), atomically: true, encoding: .utf8)
        let r = try cli.run(["restore", "-q", "latest", "--volume", "vm", s.file("out.img")])
        #expect(r.status == 0)
        #expect(try sameFiles(a, s.file("out.img")), "the newest readable snapshot, \(older.prefix(12))")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("strata: warning: snapshot \(newer.prefix(12)) is damaged")
                && lines[0].contains("'latest' was chosen without it"), "\(r.stderr)")
        let stats = try cli.run(["stats"])
        #expect(stats.status == 0 && stats.stderr.contains("its data is counted as unreferenced"), "\(stats.stderr)")
        // Damaged metadata (later tags, protection) is named by log too, not silently listed without it.
        #expect(try cli.run(["protect", older]).status == 0)
        try "garbage".write(toFile: s.file("repo/meta/\(older)"), atomically: true, encoding: .utf8)
        let log = try cli.run(["log"])
        #expect(log.status == 0 && log.stderr.contains("its later tags and protection are unknown"), "\(log.stderr)")
    }

    @Test("--json puts the object on stdout and keeps the summary on stderr (rm, retention, copy); -q drops it")
    func jsonKeepsSummary() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 17)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        try cli.run(["init", s.file("other")])
        let a = try cli.run(["snap", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try cli.run(["snap", img])
        let copied = try cli.run(["copy", a, "--to", s.file("other"), "--json"])
        #expect(copied.status == 0 && copied.stdout.hasPrefix("{") && copied.stderr.hasPrefix("copy "), "\(copied.stderr)")
        let again = try cli.run(["copy", a, "--to", s.file("other"), "--json"])
        let j = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as! [String: Any]
        #expect(j["skipped"] as? Int == 1 && again.stderr.contains("1 already there"), "\(again.stdout) \(again.stderr)")
        let quiet = try cli.run(["copy", a, "--to", s.file("other"), "--json", "-q"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        let kept = try cli.run(["rm", "--keep-last", "1", "--json"])
        #expect(kept.status == 0 && kept.stdout.hasPrefix("{") && kept.stderr.hasPrefix("retention: removed 1 of 2 snapshots"), "\(kept.stderr)")
        let removed = try cli.run(["rm", "latest", "--json"])
        #expect(removed.status == 0 && removed.stdout.hasPrefix("{") && removed.stderr.hasPrefix("removed snapshot "), "\(removed.stderr)")
    }

    @Test("a sealed bundle's passphrase comes only from --bundle-password-file or a terminal, and errors name the bundle")
    func bundlePassphrase() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 18)
        let cli = CLI(repo: s.file("repo"))
        try "share\n".write(toFile: s.file("share"), atomically: true, encoding: .utf8)
        try cli.run(["init", s.file("repo")])
        // "other" is encrypted with the bundle's passphrase: were $STRATA_PASSWORD_FILE taken for the bundle's, the
        // import below without --bundle-password-file would succeed.
        try cli.run(["init", s.file("other"), "--encrypt", "--password-file", s.file("share")])
        try cli.run(["init", s.file("plain")])
        _ = try cli.run(["snap", img])
        try "wrong\n".write(toFile: s.file("wrong"), atomically: true, encoding: .utf8)
        let exported = try cli.run(["export", "latest", s.file("b.bundle"), "--bundle-password-file", s.file("share")])
        let bundleSize = Double(try Data(contentsOf: URL(fileURLWithPath: s.file("b.bundle"))).count) / 1024
        // The summary names the bundle's size (it said 0 B once).
        #expect(exported.status == 0 && bundleSize > 10
                && exported.stderr.contains("(\(s.file("b.bundle")), \(Int(bundleSize.rounded())) KiB, sealed)"), "\(exported.stderr) \(bundleSize)")
        // $STRATA_PASSWORD_FILE is the repository's passphrase, never the bundle's.
        var env = CLI(repo: s.file("other"))
        env.environment["STRATA_PASSWORD_FILE"] = s.file("share")
        // Without a controlling terminal (setsid), as under cron: otherwise it would ask on the developer's terminal.
        let noTerminal = try CLI.exec("/usr/bin/setsid", ["-w", CLI.binary, "import", s.file("b.bundle")],
                                      env: ["STRATA_REPO": s.file("other"), "STRATA_PASSWORD_FILE": s.file("share")])
        #expect(noTerminal.status == 7 && noTerminal.stderr.hasSuffix("use --bundle-password-file\n"), "\(noTerminal.stderr)")
        let wrong = try env.run(["import", s.file("b.bundle"), "--bundle-password-file", s.file("wrong")])
        #expect(wrong.status == 7 && wrong.stderr == "strata: wrong passphrase for bundle \(s.file("b.bundle")): it does not open with it\n",
                "\(wrong.stderr)")
        // With JSON progress: the four stages, and one end event (asking for the bundle's passphrase does not end it).
        let imported = try env.run(["import", "-q", s.file("b.bundle"), "--bundle-password-file", s.file("share"), "--progress", "json"])
        #expect(imported.status == 0)
        let events = imported.stderr.split(separator: "\n")
        #expect(events.filter { $0.contains("\"event\":\"end\"") }.count == 1 && events.last?.contains("\"event\":\"end\"") == true, "\(imported.stderr)")
        #expect(events.filter { $0.contains("\"event\":\"stage\"") }.map { $0.split(separator: ",")[2] }
                == ["\"stage\":\"checking\"", "\"stage\":\"unpacking\"", "\"stage\":\"verifying\"", "\"stage\":\"adding\""])
        let notBundle = try env.run(["import", img])
        #expect(notBundle.status == 2 && notBundle.stderr == "strata: \(img) is not a Strata bundle (made by 'strata export')\n", "\(notBundle.stderr)")
        let noDir = try cli.run(["export", "latest", s.file("nodir/x.bundle"), "--bundle-password-file", s.file("share")])
        #expect(noDir.status == 3 && noDir.stderr.contains("directory \(s.file("nodir")) does not exist"), "\(noDir.stderr)")
        // Encrypted snapshots stay encrypted: copying one into a plain repository is one line, before anything else.
        var vault = CLI(repo: s.file("vault"))
        vault.environment["STRATA_PASSWORD_FILE"] = s.file("share")
        #expect(try vault.run(["init", "-q", "--encrypt", s.file("vault")]).status == 0)
        let id = try vault.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // A password file may be a pipe.
        let piped = try CLI.exec("/bin/sh", ["-c", "echo share | \"$0\" -r \"$1\" log --json --password-file /dev/stdin", CLI.binary, s.file("vault")])
        #expect(piped.status == 0 && piped.stdout.contains(id), "\(piped.stderr)")
        let missing = try vault.run(["log", "--password-file", s.file("nofile")])
        #expect(missing.status == 3 && missing.stderr == "strata: cannot read the password file \(s.file("nofile")): No such file or directory\n", "\(missing.stderr)")
        let refused = try vault.run(["copy", "latest", "--to", s.file("plain")])
        #expect(refused.status == 2 && refused.stdout.isEmpty
                && refused.stderr == "strata: snapshot \(id.prefix(12)) is encrypted and \(s.file("plain")) is not: encrypted snapshots stay encrypted; copy it into an encrypted repository\n",
                "\(refused.stderr)")
    }

    @Test("under a low open-files limit (ulimit -n 48), restore, fsck --read-data, copy and gc of a repository of 80 packs work; below the least (40), or with too little address space (ulimit -v 200000), every verb says so in one line")
    func lowOpenFilesLimit() throws {
        let s = Scratch()
        let img = try Self.image(s, bytes: 4 << 20, seed: 21)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", "-q", s.file("repo")])
        // Each snapshot rewrites one page: a pack each, and the latest needs chunks from all of them.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: img))
        for i in 0..<80 {
            try handle.seek(toOffset: UInt64(i) * 40960)
            handle.write(Data(repeating: UInt8(i + 1), count: 4096))
            try handle.synchronize()
            #expect(try cli.run(["snap", "-q", img]).status == 0)
        }
        try handle.close()
        #expect(try FileManager.default.subpathsOfDirectory(atPath: s.file("repo/packs")).filter { $0.count > 60 }.count >= 80)
        try cli.run(["init", "-q", s.file("copy"), "--copy-chunker-from", s.file("repo")])
        func limited(_ n: Int, _ args: String) throws -> CLI.Result {
            try CLI.exec("/bin/sh", ["-c", "ulimit -n \(n) && exec \"$0\" -r \"$1\" " + args, CLI.binary, s.file("repo")])
        }
        let restored = try limited(48, "restore -q latest '\(s.file("out.img"))'")
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.file("out.img"))) == (try Data(contentsOf: URL(fileURLWithPath: img))))
        let checked = try limited(48, "fsck --read-data")
        #expect(checked.status == 0 && checked.stderr.hasPrefix("fsck: ok: 80 snapshots"), "\(checked.stderr)")
        #expect(try limited(48, "copy -q --all --to '\(s.file("copy"))'").status == 0)
        #expect(try limited(48, "rm -q --keep-last 2").status == 0)
        #expect(try limited(48, "gc -q").status == 0)
        let below = try limited(40, "log")
        #expect(below.status == 1 && below.stderr == "strata: the open-files limit is 40 (ulimit -n); strata needs at least 48\n", "\(below.stderr)")
        // Too little address space for the worker threads: restore used to wait for them forever, deaf to SIGTERM.
        let space = try CLI.exec("/bin/sh", ["-c", "ulimit -v 200000 && exec \"$0\" -r \"$1\" restore -q latest \"$2\"", CLI.binary, s.file("repo"), s.file("out2.img")])
        #expect(space.status == 1 && space.stderr == "strata: the address-space limit is 195 MiB (ulimit -v); strata needs at least 512 MiB\n", "\(space.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.file("out2.img")))
    }

    @Test("under a cgroup task limit too low for its threads (pids.max 5) strata says so in one line instead of waiting forever; at 6 snap, export, an import that re-chunks and restore work",
          .enabled(if: PidsCgroup.parent != nil, "needs a writable cgroup with the pids controller (root)"))
    func lowTaskLimit() throws {
        let s = Scratch()
        let img = try Self.image(s, bytes: 8 << 20, seed: 23)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", "-q", s.file("repo")])
        try cli.run(["init", "-q", "--chunker", "fixed:64K", s.file("other")])
        let group = try PidsCgroup(name: "strata-test-\(getpid())")
        defer { group.remove() }
        func limited(_ tasks: Int, _ args: String) throws -> CLI.Result {
            try group.limit(tasks)
            // The time limit is outside the cgroup: a strata that waits for a thread is killed, not waited for.
            return try CLI.exec("timeout", ["-s", "KILL", "60", "/bin/sh", "-c", "echo $$ > \"$2\" && exec \"$0\" -r \"$1\" " + args, CLI.binary, s.file("repo"), group.procs])
        }
        let low = try limited(5, "snap -q '\(img)'")
        #expect(low.status == 1 && low.stderr == "strata: the limit on tasks (a cgroup's pids.max, or ulimit -u) leaves no room for the 5 threads strata needs\n", "\(low.stderr)")
        #expect(try cli.run(["log", "--json"]).stdout.filter { !$0.isWhitespace } == "[]", "nothing was stored")
        #expect(try limited(6, "snap -q '\(img)'").status == 0)
        #expect(try limited(6, "export -q latest '\(s.file("b.bundle"))'").status == 0)
        // An import into a repository of another chunker runs a restore and a snapshot pipeline at once.
        let imported = try CLI.exec("timeout", ["-s", "KILL", "60", "/bin/sh", "-c", "echo $$ > \"$2\" && exec \"$0\" -r \"$1\" import -q \"$3\"", CLI.binary, s.file("other"), group.procs, s.file("b.bundle")])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try limited(6, "restore -q latest '\(s.file("out.img"))'").status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.file("out.img"))) == (try Data(contentsOf: URL(fileURLWithPath: img))))
    }

    @Test("a passphrase given for a repository that says it is not encrypted: snap, import and copy into it refuse to store data in the clear; reading verbs go on")
    func plainButPassphrase() throws {
        let s = Scratch()
        let img = try Self.image(s, seed: 19)
        try "pass\n".write(toFile: s.file("pass"), atomically: true, encoding: .utf8)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", "-q", s.file("repo")])
        let id = try cli.run(["snap", "-q", img]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try cli.run(["export", "latest", s.file("b.bundle")])
        var cron = cli
        cron.environment["STRATA_PASSWORD_FILE"] = s.file("pass")
        let snap = try cron.run(["snap", img])
        #expect(snap.status == 1 && snap.stderr == "strata: repository \(s.file("repo")) is not encrypted, but a passphrase was given (STRATA_PASSWORD_FILE): refusing to store data in it in the clear; for an unencrypted repository, give no passphrase\n", "\(snap.stderr)")
        let imported = try cli.run(["import", s.file("b.bundle"), "--password-file", s.file("pass")])
        #expect(imported.status == 1 && imported.stderr.contains("(--password-file): refusing to store data in it in the clear"), "\(imported.stderr)")
        try cli.run(["init", "-q", s.file("target")])
        let copied = try cli.run(["copy", "latest", "--to", s.file("target"), "--to-password-file", s.file("pass")])
        #expect(copied.status == 1 && copied.stderr.contains("repository \(s.file("target")) is not encrypted, but a passphrase was given (--to-password-file)"), "\(copied.stderr)")
        #expect(try cron.run(["log"]).stdout.contains(id.prefix(12)))
        #expect(try cli.run(["log", "--json"]).stdout.components(separatedBy: "\"id\"").count == 2, "one snapshot, nothing stored since")
        // An unsealed bundle where a sealed one was expected (a bundle passphrase given) is refused: anyone can write one.
        try cli.run(["init", "-q", s.file("vault"), "--encrypt", "--password-file", s.file("pass")])
        let substitute = try cli.run(["-r", s.file("vault"), "import", s.file("b.bundle"), "--password-file", s.file("pass"),
                                      "--bundle-password-file", s.file("pass")])
        #expect(substitute.status == 1 && substitute.stderr == "strata: bundle \(s.file("b.bundle")) is not sealed, but a bundle passphrase was given (a sealed bundle may have been replaced): nothing was imported\n",
                "\(substitute.stderr)")
        #expect(try cli.run(["-r", s.file("vault"), "log", "--json", "--password-file", s.file("pass")]).stdout.filter { !$0.isWhitespace } == "[]", "nothing was imported")
        // A new passphrase must be text: bytes that are not UTF-8 would all read as one replacement character.
        try Data([0x70, 0xE4, 0x73, 0x73, 0x0A]).write(to: URL(fileURLWithPath: s.file("latin1")))
        let latin1 = try cli.run(["init", s.file("enc"), "--encrypt", "--password-file", s.file("latin1")])
        #expect(latin1.status == 2 && latin1.stderr == "strata: the new passphrase is not UTF-8 text (for random bytes, use their base64 or hex)\n", "\(latin1.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.file("enc/config")))
    }

    @Test("copy --all mirrors every snapshot oldest first and skips those the target has; it needs snapshots or --all, not both")
    func copyAll() throws {
        let s = Scratch()
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", "-q", s.file("repo")])
        try cli.run(["init", "-q", s.file("mirror")])
        let a = try cli.run(["snap", "-q", try Self.image(s, "a.img", seed: 31), "--volume", "a"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let b = try cli.run(["snap", "-q", try Self.image(s, "b.img", seed: 32), "--volume", "b"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let onlyA = try cli.run(["copy", "--all", "--volume", "a", "--to", s.file("mirror")])
        #expect(onlyA.status == 0 && onlyA.stdout.split(separator: "\n").count == 1 && onlyA.stderr.contains("copy \(a.prefix(12)) -> "), "\(onlyA.stderr)")
        let both = try cli.run(["copy", "--all", "--to", s.file("mirror"), "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as! [String: Any]
        let pairs = (json["snapshots"] as! [[String: String]]).map { $0["source"]! }
        #expect(both.status == 0 && pairs == [a, b] && json["skipped"] as? Int == 1, "\(both.stdout)")
        let mirrored = try CLI(repo: s.file("mirror")).run(["log", "--json"]).stdout
        #expect(mirrored.contains("\"a\"") && mirrored.contains("\"b\""))
        let none = try cli.run(["copy", "--to", s.file("mirror")])
        #expect(none.status == 2 && none.stderr == "strata: give the snapshots to copy, or --all; see 'strata copy --help'\n", "\(none.stderr)")
        let twice = try cli.run(["copy", "latest", "--all", "--to", s.file("mirror")])
        #expect(twice.status == 2 && twice.stderr == "strata: give snapshots to copy or --all, not both\n", "\(twice.stderr)")
        let empty = try cli.run(["copy", "--all", "--volume", "zz", "--to", s.file("mirror")])
        #expect(empty.status == 0 && empty.stdout.isEmpty && empty.stderr == "copy: no snapshots of volume zz to copy\n", "\(empty.stderr)")
        // A damaged manifest: the others are copied, the damaged one is named, and the exit status is 4.
        let manifest = s.file("repo/snapshots/" + a)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: manifest))
        bytes[bytes.count / 2] ^= 1
        try bytes.write(to: URL(fileURLWithPath: manifest))
        try cli.run(["init", "-q", s.file("mirror2")])
        let partial = try cli.run(["copy", "--all", "--to", s.file("mirror2")])
        let said = partial.stderr.split(separator: "\n")
        #expect(partial.status == 4 && partial.stdout.split(separator: "\n").count == 1 && said.count == 3
                && said[0] == "strata: warning: snapshot \(a.prefix(12)) is damaged: its manifest does not match its id; it is not copied"
                && said[1].hasPrefix("copy \(b.prefix(12)) -> ")
                && said[2] == "strata: 1 damaged snapshot not copied (\(a.prefix(12))); run 'strata fsck'", "\(partial.stderr)")
    }

    @Test("a snapshot whose pack is lost does not stop show of the others or stats: they answer, with a warning")
    func lostPackWarnsElsewhere() throws {
        let s = Scratch()
        let a = try Self.image(s, "a.img", seed: 19), b = try Self.image(s, "b.img", seed: 20)
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let healthy = try cli.run(["snap", a]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        func packs() -> Set<String> { Set(Self.repoListing(s.file("repo")).filter { $0.hasPrefix("packs/") && $0.count > 70 }) }
        let before = packs()
        let broken = try cli.run(["snap", b]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for p in packs().subtracting(before) { try FileManager.default.removeItem(atPath: s.file("repo/" + p)) }
        let show = try cli.run(["show", healthy])
        #expect(show.status == 0 && show.stderr.contains("snapshot \(broken.prefix(12)) cannot be read")
                && show.stderr.contains("may be less than shown"), "\(show.status) \(show.stderr)")
        let stats = try cli.run(["stats"])
        #expect(stats.status == 0 && stats.stderr.contains("its figures below are partial"), "\(stats.status) \(stats.stderr)")
        #expect(try cli.run(["fsck"]).status == 4)
    }
}
