import Foundation
import Testing
@testable import StrataCore

/// The pass reads segment k + 1 while it cuts segment k, carrying the open chunk between two buffers: whatever the
/// segment size and whether the source is a sparse file or a stream, the chunk map must be the same.
@Suite("Image pass")
struct ImagePassTests {
    /// A sparse image: text and random runs, zero pages inside the data, a hole in the middle, a partial last page.
    static func sparseImage(_ dir: TemporaryDirectory, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        var rng = SeededRandom(seed: seed)
        var image = rng.textLike(3 << 20) + [UInt8](repeating: 0, count: 5 * 4096) + rng.bytes(1 << 20)
        let hole = [UInt8](repeating: 0, count: 2 << 20)
        image += hole + rng.textLike(700 * 1024 + 1234)
        let path = dir.file("sparse-\(seed).img")
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        #expect(fd >= 0)
        // Write the data around the hole so that the file really has one (SEEK_HOLE reports it).
        let holeStart = (4 << 20) + 5 * 4096
        image.withUnsafeBytes { raw in
            _ = pwrite(fd, raw.baseAddress!, holeStart, 0)
            _ = pwrite(fd, raw.baseAddress! + holeStart + hole.count, image.count - holeStart - hole.count, off_t(holeStart + hole.count))
        }
        close(fd)
        return (path, image)
    }

    @Test("the chunk map does not depend on the segment size, for a sparse file and for a stream",
          arguments: [4096, 3 * 4096, 17 * 4096, 256 << 10, 1 << 20])
    func segmentSizes(segment: Int) throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        let (path, image) = try Self.sparseImage(dir, seed: 3)
        let reference = try Snapshotter(repo: repo, segmentSize: 4 << 20).run(SnapshotRequest(source: path, volume: "ref")).snapshot
        let file = try Snapshotter(repo: repo, segmentSize: segment).run(SnapshotRequest(source: path, volume: "file")).snapshot
        #expect(file.manifest.root == reference.manifest.root)
        #expect(file.manifest.chunkCount == reference.manifest.chunkCount)
        #expect(file.manifest.dataBytes == reference.manifest.dataBytes)
        #expect(file.manifest.size == UInt64(image.count))
        #expect(file.manifest.newChunks == 0, "the same image again stores nothing")

        // The same bytes as a stream (read in order, no holes reported).
        let handle = try FileHandleFD.openForReading(path)
        let streamed = try Snapshotter(repo: repo, segmentSize: segment)
            .run(SnapshotRequest(source: "-", volume: "stream"), source: ImageSource(stream: handle, name: "stream"), progress: nil, onWait: {})
            .snapshot
        try handle.close()
        #expect(streamed.manifest.root == reference.manifest.root)
        #expect(streamed.manifest.size == UInt64(image.count))
        #expect(try restoreBytes(repo, streamed, in: dir) == image)
    }

    @Test("a snapshot read from a real pipe asks for a 1 MiB pipe buffer and gives the file's chunk map")
    func pipe() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        let (path, image) = try Self.sparseImage(dir, seed: 5)
        let reference = try snap(repo, path)
        var fds: [Int32] = [0, 0]
        #expect(Glibc.pipe(&fds) == 0)
        let writeEnd = fds[1]
        let writer = Thread {
            image.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Glibc.write(writeEnd, raw.baseAddress! + done, min(10_000, raw.count - done))
                    if n <= 0 { break }
                    done += n
                }
            }
            Glibc.close(writeEnd)
        }
        let handle = FileHandleFD(fd: fds[0], path: "pipe")
        let source = ImageSource(stream: handle, name: "pipe")
        let maximum = (try? String(contentsOfFile: "/proc/sys/fs/pipe-max-size", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        if maximum >= 1 << 20 {
            #expect(fcntl(fds[0], 1032 /* F_GETPIPE_SZ */) == 1 << 20)
        }
        writer.start()
        let streamed = try Snapshotter(repo: repo)
            .run(SnapshotRequest(source: "-", volume: "pipe"), source: source, progress: nil, onWait: {}).snapshot
        try handle.close()
        #expect(streamed.manifest.root == reference.manifest.root)
        #expect(streamed.manifest.size == UInt64(image.count))
    }

    @Test("a file that ends early inside a segment fails the snapshot at the last whole page read, and stores nothing",
          arguments: [(Int64((2 << 20) + (516 << 10) + 100), UInt64((2 << 20) + (516 << 10))),
                      (Int64((2 << 20) + (512 << 10)), UInt64((2 << 20) + (512 << 10))),
                      (Int64(100), UInt64(0))])
    func shrinksWhileRead(end: Int64, failsAt: UInt64) throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("repo"))
        var rng = SeededRandom(seed: 9)
        let image = rng.textLike(6 << 20)
        let path = dir.file("shrinking.img")
        _ = FileManager.default.createFile(atPath: path, contents: Data(image))
        // Reads of the image end at `end` bytes, as if it had been truncated after the snapshot opened it.
        FaultInjection.install(.init(pathPrefix: path, call: "eof", errno: 0, allowance: end))
        #expect {
            _ = try Snapshotter(repo: repo, segmentSize: 1 << 20).run(SnapshotRequest(source: path, volume: "v"))
        } throws: { error in
            let e = error as? StrataError
            return e?.code == .io && e?.message == "source \(path) ended early at byte \(failsAt) (it shrank while being read)"
        }
        FaultInjection.remove(pathPrefix: path)
        #expect(try SnapshotCatalog(repo: repo).list().snapshots.isEmpty)
        // Whatever the failed pass packed is unreferenced; the next snapshot of the whole image restores exactly.
        let snapshot = try Snapshotter(repo: repo, segmentSize: 1 << 20).run(SnapshotRequest(source: path, volume: "v")).snapshot
        #expect(try restoreBytes(repo, snapshot, in: dir) == image)
    }
}
