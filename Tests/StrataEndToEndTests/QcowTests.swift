import Foundation
import Testing

/// VM disks in qcow2, as the README suggests keeping them: the `.qcow2` file as it is, changed by qemu's own
/// writer (`qemu-io`, as a guest's writes would change it), and the guest's raw view streamed through qemu-nbd.
@Suite("qcow2 images", .serialized, .enabled(if: Qcow.available, "needs qemu-utils (qemu-img, qemu-io)"))
struct QcowTests {
    @Test("a qcow2 file changed by guest writes: small increments, restores identical, qemu-img check clean; the guest view through qemu-nbd restores to the same disk")
    func qcow2() throws {
        let s = Scratch()
        try Ext4.makeTree(s.file("tree"), megabytes: 16, seed: 4)
        try Ext4.makeImage(s.file("disk.img"), megabytes: 64, tree: s.file("tree"))
        let vm = s.file("vm.qcow2")
        #expect(try CLI.exec("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", s.file("disk.img"), vm]).status == 0)
        let cli = CLI(repo: s.file("repo"))
        #expect(try cli.run(["init", s.file("repo")]).status == 0)
        let first = try cli.run(["snap", "-q", vm, "--volume", "vm"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try CLI.exec("cp", [vm, s.file("day1.qcow2")])

        // 300 scattered 4 KiB guest writes, through qemu's qcow2 driver: clusters rewritten in place or appended.
        var rng = SplitMix(seed: 7)
        var args = ["-f", "qcow2"]
        for _ in 0..<300 {
            let offset = Int(rng.next() % UInt64((64 << 20) / 4096)) * 4096
            args += ["-c", "write -P \(rng.next() % 250 + 1) \(offset) 4k"]
        }
        #expect(try CLI.exec("qemu-io", args + [vm]).status == 0)
        let second = try cli.run(["snap", "-q", vm, "--volume", "vm"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let log = try JSONSerialization.jsonObject(with: Data(try cli.run(["log", "--json"]).stdout.utf8)) as! [[String: Any]]
        let added = log[0]["newBytes"] as! Int, data = log[0]["dataBytes"] as! Int
        #expect(added < data / 3, "300 guest writes added \(added) of \(data) bytes")

        for (id, original) in [(first, s.file("day1.qcow2")), (second, vm)] {
            let out = s.file("restored-\(id.prefix(6)).qcow2")
            #expect(try cli.run(["restore", "-q", id, out]).status == 0)
            #expect(try sameFiles(out, original))
            #expect(try CLI.exec("qemu-img", ["check", "-q", out]).status == 0)
        }

        // The guest's view, streamed: it restores to the raw disk qemu shows.
        guard Qcow.nbdAvailable else { return }
        let piped = try CLI.exec("/bin/sh", ["-c", "nbdcopy -- [ qemu-nbd -r -f qcow2 \(vm) ] - | \(CLI.binary) -r \(s.file("repo")) snap -q - --volume guest"])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(try cli.run(["restore", "-q", "latest", s.file("guest.raw")]).status == 0)
        let compare = try CLI.exec("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", s.file("guest.raw"), vm])
        #expect(compare.status == 0, "\(compare.stdout) \(compare.stderr)")
    }
}

enum Qcow {
    static var available: Bool {
        Ext4.available && (try? CLI.exec("qemu-img", ["--version"]).status) == 0 && (try? CLI.exec("qemu-io", ["--version"]).status) == 0
    }
    static var nbdAvailable: Bool {
        (try? CLI.exec("nbdcopy", ["--version"]).status) == 0 && (try? CLI.exec("qemu-nbd", ["--version"]).status) == 0
    }
}
