import Foundation
import Testing
@testable import StrataCore

/// An XFS file system (which can clone files) on a loop device, mounted in a temporary directory; unmounted at
/// deinit. Needs root, a free loop device and mkfs.xfs (Debian's xfsprogs).
final class XFSMount {
    static var available: Bool {
        getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/loop-control")
            && ["/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs"].contains { FileManager.default.isExecutableFile(atPath: $0) }
            && (try? exec("losetup", ["-f"]).status) == 0
    }

    let scratch = TemporaryDirectory()
    let path: String

    init() throws {
        let backing = scratch.file("xfs.img")
        path = scratch.file("mnt")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try #require(FileManager.default.createFile(atPath: backing, contents: nil) && truncate(backing, 512 << 20) == 0)
        try Self.run("mkfs.xfs", ["-q", backing])
        try Self.run("mount", ["-o", "loop", backing, path])
    }

    deinit { _ = try? Self.exec("umount", [path]) }

    /// Runs a tool; its exit status and what it wrote on stderr.
    static func exec(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + arguments
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, message)
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let (status, message) = try exec(tool, arguments)
        try #require(status == 0, "\(tool) \(arguments.joined(separator: " ")): \(message)")
    }
}

/// Writes `bytes` over the file at `path` in place (the same inode, as a VM writes to its disk), durably.
private func overwrite(_ path: String, with bytes: [UInt8]) {
    let fd = open(path, O_WRONLY)
    #expect(fd >= 0)
    bytes.withUnsafeBytes { #expect(pwrite(fd, $0.baseAddress!, $0.count, 0) == $0.count) }
    #expect(fsync(fd) == 0)
    close(fd)
}

@Suite("point-in-time clones")
struct CloneTests {
    static let before = { var r = SeededRandom(seed: 71); return r.textLike(6 << 20) }()
    static let after = { var r = SeededRandom(seed: 72); return r.bytes(6 << 20) }()

    @Test("where the file system can clone, the snapshot is the file as it was when reading started, whatever is written to it meanwhile",
          .enabled(if: XFSMount.available, "needs root, loop devices and mkfs.xfs"))
    func cloneKeepsThePointInTime() throws {
        let xfs = try XFSMount()
        defer { withExtendedLifetime(xfs) {} }  // unmounted last, after the read-only view below
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        let image = xfs.path + "/vm.img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(Self.before)))

        for mode in [CloneMode.auto, .always] {
            overwrite(image, with: Self.before)
            var request = SnapshotRequest(source: image, volume: "vm", clone: mode)
            request.beforeReading = { overwrite(image, with: Self.after) }  // a VM writing as the snapshot starts
            let result = try Snapshotter(repo: repo).run(request)
            #expect(result.readFromClone)
            #expect(result.snapshot.manifest.sourceKind == "fileClone")
            #expect(!result.snapshot.manifest.sourceChanged, "a clone cannot change while it is read")
            #expect(try restoreBytes(repo, result.snapshot, in: dir) == Self.before, "\(mode): the image as it was at the clone")
        }
        // Nothing is left beside the image: the clone had no name.
        #expect(try FileManager.default.contentsOfDirectory(atPath: xfs.path).sorted() == ["vm.img"])

        // Through a symlink on another file system (the test's temporary directory), the clone is still made
        // beside the file itself.
        let link = dir.file("vm-link.img")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: image)
        overwrite(image, with: Self.before)
        var viaLink = SnapshotRequest(source: link, volume: "vm", clone: .always)
        viaLink.beforeReading = { overwrite(image, with: Self.after) }
        let linked = try Snapshotter(repo: repo).run(viaLink)
        #expect(linked.readFromClone)
        #expect(linked.cloneFailure == nil)
        #expect(try restoreBytes(repo, linked.snapshot, in: dir) == Self.before)

        // Where the file system could clone but no clone can be made beside the file (here a read-only view of the
        // same folder), auto reads the file itself and says why; always refuses.
        let readOnly = xfs.scratch.file("ro")
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: false)
        try XFSMount.run("mount", ["--bind", xfs.path, readOnly])
        defer { _ = try? XFSMount.exec("umount", [readOnly]) }
        try XFSMount.run("mount", ["-o", "remount,bind,ro", readOnly])
        let viewed = try Snapshotter(repo: repo).run(SnapshotRequest(source: readOnly + "/vm.img", volume: "vm"))
        #expect(!viewed.readFromClone)
        #expect(viewed.cloneFailure == "cannot take a point-in-time clone of \(readOnly)/vm.img: making a file in \(readOnly) failed: Read-only file system; it was read as it is")
        #expect(throws: StrataError.self) {
            try Snapshotter(repo: repo).run(SnapshotRequest(source: readOnly + "/vm.img", volume: "vm", clone: .always))
        }

        // Read as it is, the snapshot gets whatever is there when each part is read, and says the file changed.
        overwrite(image, with: Self.before)
        var request = SnapshotRequest(source: image, volume: "vm", clone: .never)
        request.beforeReading = { overwrite(image, with: Self.after) }
        let live = try Snapshotter(repo: repo).run(request)
        #expect(!live.readFromClone)
        #expect(live.snapshot.manifest.sourceKind == "file")
        #expect(live.snapshot.manifest.sourceChanged)
        #expect(try restoreBytes(repo, live.snapshot, in: dir) == Self.after)
    }

    @Test("several images (a VM's disks) are one point in time: every clone is taken before any image is read",
          .enabled(if: XFSMount.available, "needs root, loop devices and mkfs.xfs"))
    func disksTogether() throws {
        let xfs = try XFSMount()
        defer { withExtendedLifetime(xfs) {} }
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        let os = xfs.path + "/os.img", data = xfs.path + "/data.img"
        for mode in [CloneMode.auto, .never] {
            for image in [os, data] { #expect(FileManager.default.createFile(atPath: image, contents: Data(Self.before))) }
            // The VM writes to both disks as the first one starts being read.
            var first = SnapshotRequest(source: os, volume: "os", clone: mode)
            first.beforeReading = { overwrite(os, with: Self.after); overwrite(data, with: Self.after) }
            let results = try Snapshotter(repo: repo).run([first, SnapshotRequest(source: data, volume: "data", clone: mode)])
            #expect(results.map(\.snapshot.manifest.createdAt) == Array(repeating: results[0].snapshot.manifest.createdAt, count: 2))
            let disks = try results.map { try restoreBytes(repo, $0.snapshot, in: dir) }
            if mode == .auto {
                #expect(results.allSatisfy { $0.readFromClone })
                #expect(disks == [Self.before, Self.before], "both disks as they were when the snapshot started")
            } else {
                // Read one after the other, the second disk is read after the write.
                #expect(disks[1] == Self.after)
            }
        }
    }

    @Test("where the file system cannot clone (tmpfs), auto reads the file itself and always refuses before writing anything",
          .enabled(if: FileManager.default.isWritableFile(atPath: "/dev/shm"), "needs a tmpfs at /dev/shm"))
    func noCloneHere() throws {
        let shm = "/dev/shm/strata-clone-test-" + RandomName.make()
        try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: shm) }
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        let image = shm + "/disk.img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(Self.before)))

        let auto = try Snapshotter(repo: repo).run(SnapshotRequest(source: image, volume: "disk"))
        #expect(!auto.readFromClone)
        #expect(auto.cloneFailure == nil, "a file system that cannot clone is no reason for a warning")
        #expect(auto.snapshot.manifest.sourceKind == "file")
        #expect(try restoreBytes(repo, auto.snapshot, in: dir) == Self.before)

        let packs = try repo.packFilePaths().sorted()
        let snapshots = try SnapshotStore(repo: repo).ids()
        #expect(throws: StrataError.self) {
            do {
                _ = try Snapshotter(repo: repo).run(SnapshotRequest(source: image, volume: "disk", clone: .always))
            } catch let e as StrataError {
                #expect(e.code == .refused)
                #expect(e.message == "cannot take a point-in-time clone of \(image): its file system cannot clone files (btrfs and XFS with reflink can); with --clone auto it is read as it is")
                throw e
            }
        }
        #expect(try repo.packFilePaths().sorted() == packs, "nothing was written")
        #expect(try SnapshotStore(repo: repo).ids() == snapshots)
        #expect(try FileManager.default.contentsOfDirectory(atPath: shm) == ["disk.img"])
    }
}
