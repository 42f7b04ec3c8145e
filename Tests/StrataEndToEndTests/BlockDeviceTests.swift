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
    }
}
