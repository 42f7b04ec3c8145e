import Foundation
import Testing

/// kill -9 at random instants of snap, gc, rm, tag and ref, in a loop: afterwards fsck passes, every completed
/// snapshot restores byte for byte, and gc reclaims what the crashes left.
@Suite("crashes", .serialized)
struct CrashTests {
    /// Images that share most of their data, as nightly versions of a disk do.
    static func images(_ s: Scratch) throws -> [(path: String, sha: String)] {
        var rng = SplitMix(seed: 99)
        var base = [UInt8](repeating: 0, count: 24 << 20)
        for i in stride(from: 0, to: 16 << 20, by: 8) {
            let v = rng.next() % 5 == 0 ? rng.next() : UInt64(i >> 9)
            withUnsafeBytes(of: v) { for j in 0..<8 { base[i + j] = $0[j] } }
        }
        var out: [(String, String)] = []
        for n in 0..<4 {
            var image = base
            for _ in 0..<(200 * n) {
                let page = Int(rng.next() % UInt64(base.count / 4096))
                for j in 0..<4096 { image[page * 4096 + j] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            let path = s.file("img\(n)")
            _ = FileManager.default.createFile(atPath: path, contents: Data(image))
            out.append((path, try CLI.exec("sha256sum", [path]).stdout.prefix(64).description))
        }
        return out
    }

    static func listed(_ cli: CLI) throws -> [String] {
        let r = try cli.run(["log", "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        return entries.compactMap { $0["status"] as? String == "completed" ? $0["id"] as? String : nil }
    }

    static func source(_ cli: CLI, _ id: String) throws -> String {
        let r = try cli.run(["show", id, "--json"])
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        return (j["snapshot"] as! [String: Any])["source"] as! String
    }

    @Test("kill -9 in a loop never loses a completed snapshot")
    func killLoop() throws {
        let s = Scratch()
        let imgs = try Self.images(s)
        let shaByPath = Dictionary(uniqueKeysWithValues: imgs.map { ($0.path, $0.sha) })
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        for img in imgs.prefix(2) { #expect(try cli.run(["snap", img.path, "--volume", "disk"]).status == 0) }
        var rng = SplitMix(seed: 7)
        var killed = 0
        var iteration = 0
        // How long each verb takes on this machine, learned from the runs that finished: the kill instant is drawn
        // from that span, so that the loop hits commands mid-way on a fast machine as on a slow one.
        var duration: [String: Double] = [:]
        while iteration < 30 || (killed < 12 && iteration < 90) {
            defer { iteration += 1 }
            let ids = try Self.listed(cli)
            var args: [String]
            switch rng.next() % 6 {
            case 0, 1: args = ["snap", imgs[Int(rng.next() % 4)].path, "--volume", "disk", "-q"]
            case 2: args = ["gc", "-q"]
            case 3: args = ids.count > 2 ? ["rm", "-q", ids[Int(rng.next() % UInt64(ids.count))]] : ["gc", "-q"]
            case 4: args = ids.isEmpty ? ["gc", "-q"] : ["tag", "-q", ids[0], "round=\(iteration)"]
            default: args = ids.isEmpty ? ["gc", "-q"] : ["ref", "add", "--force", "r\(iteration % 3)", ids[0]]
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = args
            p.environment = ["STRATA_REPO": s.file("repo"), "PATH": "/usr/bin:/bin"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            let verb = args[0]
            let span = duration[verb] ?? 0.12
            let started = Date()
            try p.run()
            usleep(UInt32(Double(rng.next() % 1000) / 1000 * span * 1_000_000))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                killed += 1
                p.waitUntilExit()
            } else {
                p.waitUntilExit()
                duration[verb] = Date().timeIntervalSince(started)
            }
            // Whatever the instant, the repository is whole.
            let fsck = try cli.run(["fsck"])
            #expect(fsck.status == 0, "after \(args) (iteration \(iteration)): \(fsck.stderr)")
            if fsck.status != 0 { break }
        }
        // Every snapshot listed restores to exactly the image it was taken from.
        for id in try Self.listed(cli) {
            let out = s.file("out-\(id.prefix(8))")
            let r = try cli.run(["restore", id, out])
            #expect(r.status == 0, "\(r.stderr)")
            let sha = try CLI.exec("sha256sum", [out]).stdout.prefix(64).description
            #expect(sha == shaByPath[try Self.source(cli, id)], "snapshot \(id.prefix(12))")
            try? FileManager.default.removeItem(atPath: out)
        }
        // gc reclaims what the crashes left: no unindexed packs, no tmp files, no journals.
        #expect(try cli.run(["gc"]).status == 0)
        let fsck = try cli.run(["fsck", "--read-data"])
        #expect(fsck.status == 0)
        #expect(!fsck.stderr.contains("note:"), "\(fsck.stderr)")
        #expect((try FileManager.default.contentsOfDirectory(atPath: s.file("repo/tmp"))).isEmpty)
        #expect((try FileManager.default.contentsOfDirectory(atPath: s.file("repo/pending"))).filter { !$0.hasPrefix(".") }.isEmpty)
        #expect(killed >= 12, "only \(killed) of \(iteration) commands were killed mid-way")
    }
}
