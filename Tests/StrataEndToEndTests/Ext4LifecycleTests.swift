import Foundation
import Testing

/// The whole loop on real ext4 images, through the binary: init, snap, change, snap, log, restore, cmp, e2fsck,
/// rm, gc, fsck.
@Suite("ext4 images end to end", .serialized, .enabled(if: Ext4.available, "needs e2fsprogs (mke2fs, debugfs, e2fsck)"))
struct Ext4LifecycleTests {
    @Test("snapshots of a changing ext4 image restore byte for byte and pass e2fsck; rm + gc keep the rest whole")
    func lifecycle() throws {
        let s = Scratch()
        try Ext4.makeTree(s.file("tree"), megabytes: 24, seed: 1)
        let day1 = s.file("day1.img"), day2 = s.file("day2.img"), day3 = s.file("day3.img")
        try Ext4.makeImage(day1, megabytes: 96, tree: s.file("tree"))
        _ = try CLI.exec("cp", ["--sparse=always", day1, day2])
        try Ext4.mutate(day2, scratch: s, seed: 2)
        _ = try CLI.exec("cp", ["--sparse=always", day2, day3])
        try Ext4.scatterWrites(day3, percent: 1, seed: 3)
        #expect(try Ext4.fsckClean(day2))

        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        var ids: [String] = []
        for (img, msg) in [(day1, "day one"), (day2, "day two"), (day3, "day three")] {
            let r = try cli.run(["snap", img, "--volume", "disk", "-m", msg, "-t", "env=test"])
            #expect(r.status == 0, "\(r.stderr)")
            let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.count == 64 && id.allSatisfy(\.isHexDigit), "stdout carries only the id: \(r.stdout)")
            ids.append(id)
        }

        // log --json lists them newest first with what each added.
        let log = try cli.run(["log", "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as! [[String: Any]]
        #expect(entries.map { $0["id"] as! String } == ids.reversed())
        let newBytes = entries.map { $0["newBytes"] as! Int }
        let dataBytes = entries.last!["dataBytes"] as! Int
        #expect(newBytes[2] == entries.last!["newBytes"] as! Int)
        #expect(newBytes[0] < dataBytes / 5, "day3 (1% scattered writes) added \(newBytes[0]) of \(dataBytes)")
        #expect(newBytes[1] < dataBytes / 4, "day2 (a few files) added \(newBytes[1]) of \(dataBytes)")
        #expect((entries[0]["tags"] as! [String: String]) == ["env": "test"])

        // Every snapshot restores exactly; the valid filesystems pass e2fsck.
        for (id, img) in zip(ids, [day1, day2, day3]) {
            let out = s.file("out-\(id.prefix(8)).img")
            let r = try cli.run(["restore", String(id.prefix(8)), out])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try sameFiles(img, out))
            if img != day3 { #expect(try Ext4.fsckClean(out)) }
            try FileManager.default.removeItem(atPath: out)
        }
        #expect(try cli.run(["fsck", "--read-data"]).status == 0)

        // Keep only the newest: it stays whole and gc frees bytes.
        let rm = try cli.run(["rm", ids[0], ids[1]])
        #expect(rm.status == 0)
        let gc = try cli.run(["gc", "--json"])
        #expect(gc.status == 0, "\(gc.stderr)")
        let gcResult = try JSONSerialization.jsonObject(with: Data(gc.stdout.utf8)) as! [String: Any]
        #expect((gcResult["bytesFreed"] as! Int) > 0)
        #expect(try cli.run(["fsck", "--read-data"]).status == 0)
        let out = s.file("last.img")
        #expect(try cli.run(["restore", "latest", out]).status == 0)
        #expect(try sameFiles(day3, out))
    }

    @Test("a rebuilt filesystem holding mostly the same files re-synchronises")
    func rebuiltFilesystem() throws {
        let s = Scratch()
        try Ext4.makeTree(s.file("tree"), megabytes: 24, seed: 4)
        try Ext4.makeImage(s.file("a.img"), megabytes: 64, tree: s.file("tree"))
        // The same files plus a few more, laid out by a fresh mke2fs.
        try Ext4.makeTree(s.file("tree/extra"), megabytes: 1, seed: 5)
        try Ext4.makeImage(s.file("b.img"), megabytes: 64, tree: s.file("tree"))
        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        try cli.run(["snap", s.file("a.img"), "--volume", "disk"])
        let b = try cli.run(["snap", s.file("b.img"), "--volume", "disk", "--json"])
        let result = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        let added = result["newBytes"] as! Int, data = result["dataBytes"] as! Int
        #expect(added < data / 3, "rebuilt filesystem added \(added) of \(data) bytes")
        let out = s.file("b-out.img")
        #expect(try cli.run(["restore", "latest", out]).status == 0)
        #expect(try sameFiles(s.file("b.img"), out))
        #expect(try Ext4.fsckClean(out))
    }
}
