import Foundation
import Testing

/// Block devices as source and as in-place restore target, on a loop device (needs root and /dev/loop-control).
enum LoopDevices {
    static var available: Bool {
        getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/loop-control") && (try? CLI.exec("losetup", ["-f"]).status) == 0
    }
}

@Suite("block devices", .enabled(if: LoopDevices.available, "needs root and loop devices"))
struct BlockDeviceTests {

    @Test("snapshot a block device and restore it in place after it was overwritten")
    func loopDevice() throws {
        let s = Scratch()
        let backing = s.file("backing.img")
        var rng = SplitMix(seed: 42)
        var data = [UInt8](repeating: 0, count: 32 << 20)
        for i in stride(from: 0, to: 12 << 20, by: 8) {
            let v = rng.next() % 3 == 0 ? rng.next() : UInt64(i >> 12)
            withUnsafeBytes(of: v) { for j in 0..<8 { data[i + j] = $0[j] } }
        }
        _ = FileManager.default.createFile(atPath: backing, contents: Data(data))
        let attach = try CLI.exec("losetup", ["-f", "--show", backing])
        try #require(attach.status == 0, "losetup: \(attach.stderr)")
        let device = attach.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? CLI.exec("losetup", ["-d", device]) }

        let cli = CLI(repo: s.file("repo"))
        try cli.run(["init", s.file("repo")])
        let snap = try cli.run(["snap", device, "--volume", "blk"])
        #expect(snap.status == 0, "\(snap.stderr)")
        let copy = s.file("copy.img")
        #expect(try cli.run(["restore", "latest", copy]).status == 0)
        #expect(try sameFiles(copy, backing))
        // Scribble over the device, then restore in place: zero runs are written as zeros too.
        let scribble = try CLI.exec("dd", ["if=/dev/urandom", "of=\(device)", "bs=1M", "count=20", "conv=fsync", "status=none"])
        #expect(scribble.status == 0)
        let refused = try cli.run(["restore", "latest", "--volume", "blk", device])
        #expect(refused.status == 2 && refused.stderr.contains("--force"), "a block device is overwritten only with --force")
        // A device in use (mounted, a running VM's disk: held with O_EXCL) is refused even with --force, untouched.
        let before = s.file("before.img"), after = s.file("after.img")
        #expect(try CLI.exec("dd", ["if=\(device)", "of=\(before)", "bs=1M", "status=none"]).status == 0)
        let holder = open(device, O_RDONLY | O_EXCL)
        try #require(holder >= 0, "cannot hold \(device): errno \(errno)")
        let busy = try cli.run(["restore", "latest", "--volume", "blk", device, "--force"])
        close(holder)
        #expect(busy.status == 1, "\(busy.stderr)")
        #expect(busy.stderr == "strata: restore target \(device) is in use (mounted, or held by another program); nothing was written\n")
        #expect(try CLI.exec("dd", ["if=\(device)", "of=\(after)", "bs=1M", "status=none"]).status == 0)
        #expect(try sameFiles(before, after), "the device in use was not written")
        let back = try cli.run(["restore", "latest", "--volume", "blk", device, "--force"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try sameFiles(device, copy))
        // The image's last 20 MiB are one zero run: the device zeroes it itself, and a loop device does that by
        // releasing the backing file's blocks, so the scribbled-over file holds the 12 MiB of data again, not 32.
        let name = (device as NSString).lastPathComponent
        let zeroesLimit = (try? String(contentsOfFile: "/sys/block/\(name)/queue/write_zeroes_max_bytes", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        if zeroesLimit > 0 {
            var st = stat()
            #expect(stat(backing, &st) == 0)
            #expect(Int(st.st_blocks) * 512 <= 13 << 20, "backing file holds \(Int(st.st_blocks) * 512) bytes after the restore")
        }

        // Rolling back a device that holds the image but 1 MiB, with --skip-unchanged: only the chunks that differ are
        // written (what the device wrote, from its statistics: those chunks and the 20 MiB zero run, not the 12 MiB
        // of data again; without the flag it writes 32 MiB).
        let patch = try CLI.exec("dd", ["if=/dev/urandom", "of=\(device)", "bs=1M", "seek=3", "count=1", "conv=fsync,notrunc", "status=none"])
        #expect(patch.status == 0)
        func sectorsWritten() throws -> Int {
            let fields = try String(contentsOfFile: "/sys/block/\(name)/stat", encoding: .utf8).split(separator: " ")
            return Int(fields[6]) ?? 0
        }
        let sectorsBefore = try sectorsWritten()
        let rollback = try cli.run(["restore", "latest", "--volume", "blk", device, "--force", "--skip-unchanged", "--json"])
        #expect(rollback.status == 0, "\(rollback.stderr)")
        let written = (try sectorsWritten() - sectorsBefore) * 512
        #expect(try sameFiles(device, copy))
        let json = try JSONSerialization.jsonObject(with: Data(rollback.stdout.utf8)) as? [String: Any]
        let inPlace = json?["bytesInPlace"] as? Int ?? 0
        #expect(inPlace >= 10 << 20 && inPlace <= 11 << 20, "\(inPlace) bytes of data already in place")
        #expect(written <= (20 << 20) + (2 << 20), "the device wrote \(written) bytes")
        #expect(rollback.stderr.contains("of data already in place, not written"), "\(rollback.stderr)")
        // Only for a block device.
        let onFile = try cli.run(["restore", "latest", "--volume", "blk", s.file("new.img"), "--skip-unchanged"])
        #expect(onFile.status == 2)
        #expect(onFile.stderr == "strata: --skip-unchanged is for a block device restored in place; \(s.file("new.img")) is not one\n")
        #expect(!FileManager.default.fileExists(atPath: s.file("new.img")))
    }
}
