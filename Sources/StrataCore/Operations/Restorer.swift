import Dispatch
import FoundationEssentials

/// What a restore wrote.
public struct RestoreResult: Sendable {
    public let snapshot: Snapshot
    public let target: String
    public let bytesWritten: UInt64
    public let seconds: Double
    /// With `skipUnchanged`: bytes of data the block device already held (compared, not written again).
    public let bytesInPlace: UInt64

    init(snapshot: Snapshot, target: String, bytesWritten: UInt64, seconds: Double, bytesInPlace: UInt64 = 0) {
        self.snapshot = snapshot
        self.target = target
        self.bytesWritten = bytesWritten
        self.seconds = seconds
        self.bytesInPlace = bytesInPlace
    }
}

/// Restores a snapshot to a new file (holes stay holes, exact size), an existing block device (in place, zeros
/// written), or standard output (`-`). Every chunk is re-hashed before it is written; a mismatch stops the restore
/// with an error naming the snapshot and offset, and a file target is never left half-written under its final name.
public final class Restorer {
    let repo: Repository
    /// Image bytes whose chunks are grouped by frame before the frames are handed to the workers. A frame whose
    /// chunks fall in two batches is decompressed twice (an increment's new chunks share frames across the image):
    /// on the benchmark's four-snapshot repository 64 MiB batches decompressed 1.98 GB for 1.52 GB of image,
    /// 256 MiB batches 1.74 GB (restore 1.54–1.56 s → 1.41–1.48 s; peak RSS 35 → 41 MiB, the batch's chunk list).
    let batchBytes: Int
    let windowBytes: Int
    let dropLag: Int

    public static let defaultBatchBytes = 256 << 20

    public init(repo: Repository, batchBytes: Int = Restorer.defaultBatchBytes,
                windowBytes: Int = Restorer.defaultWindowBytes, dropLag: Int = Restorer.defaultDropLag) {
        self.repo = repo
        self.batchBytes = batchBytes
        self.windowBytes = windowBytes
        self.dropLag = dropLag
    }

    /// - Parameter skipUnchanged: on a block device, read what it holds and write only the chunks that differ (a
    ///   volume rolled back keeps unchanged blocks shared when it is thin or snapshotted); refused for other targets.
    public func run(_ snapshot: Snapshot, to target: String, force: Bool = false, skipUnchanged: Bool = false,
                    progress: ProgressReporter? = nil) throws -> RestoreResult {
        var device = false
        let replacing = target != "-" && !target.isEmpty && FileSystem.exists(target)
        do {
            return try restore(snapshot, to: try Self.resolveLink(target, repo: repo), force: force,
                               skipUnchanged: skipUnchanged, progress: progress, isDevice: &device)
        } catch {
            let left = target == "-" ? "the output stops short" : device ? "\(target) holds part of the image"
                : replacing ? "\(target) was left as it was" : "nothing was left at \(target)"
            throw Interruption.retell(error, "restore of snapshot \(snapshot.id.shortHex)", left)
        }
    }

    /// The path a restore writes: a symlink's target (a VM's disk linked from where its configuration names it is
    /// restored where it lies, as a device's link is), never a place inside the repository.
    static func resolveLink(_ target: String, repo: Repository) throws -> String {
        guard target != "-", !target.isEmpty else { return target }
        var path = target
        if let link = try? FileSystem.linkStatus(target), link.isSymbolicLink {
            guard let resolved = FileSystem.resolved(target) else {
                throw StrataError(.invalidArgument, "restore target \(target) is a symlink to nothing that exists; remove it or give another path")
            }
            // A device's link (/dev/vg0/data) is opened through the link, and named as the user named it.
            if (try? FileSystem.status(resolved))??.isBlockDevice == true { return target }
            path = resolved
        }
        if let repoPath = FileSystem.resolved(repo.path),
           let directory = FileSystem.resolved(FileSystem.directoryName(path)),
           directory == repoPath || directory.hasPrefix(repoPath + "/") {
            throw StrataError(.invalidArgument, "restore target \(target) is inside the repository \(repo.path); give a path outside it")
        }
        return path
    }

    private func restore(_ snapshot: Snapshot, to target: String, force: Bool, skipUnchanged: Bool,
                         progress: ProgressReporter?, isDevice: inout Bool) throws -> RestoreResult {
        // A usage mistake is refused before the repository is locked or its index read.
        guard !target.isEmpty else {
            throw StrataError(.invalidArgument, "the restore target is empty: give a file, a block device or '-'")
        }
        if skipUnchanged && (target == "-" || (try? FileSystem.status(target))??.isBlockDevice != true) {
            throw StrataError(.invalidArgument, "--skip-unchanged is for a block device restored in place; \(target == "-" ? "standard output" : target) is not one")
        }
        let clock = ContinuousClock.now
        let lock = try? repo.lock(.shared)  // a read-only repository can still be restored from
        defer { withExtendedLifetime(lock) {} }
        try SnapshotStore(repo: repo).requireStillThere([snapshot])
        let index = try ChunkIndex.load(repo, strict: false)
        let size = snapshot.manifest.size
        guard let root = snapshot.manifest.rootID else { throw StrataError.corrupt("snapshot \(snapshot.id.shortHex) has no map root") }

        if target == "-" {
            let out = FileHandleFD(fd: 1, path: "standard output")
            out.enlargePipeBuffer()
            try restoreSequential(snapshot, root: root, index: index, to: out, progress: progress)
            return RestoreResult(snapshot: snapshot, target: target, bytesWritten: size, seconds: clock.secondsElapsed)
        }

        let existing = try wrap(try FileSystem.status(target), "cannot inspect \(target)")
        if let existing, existing.isBlockDevice {
            guard force else {
                throw StrataError(.invalidArgument, "restore target \(target) is a block device; use --force to overwrite it")
            }
            // O_EXCL: Linux refuses a block device that is mounted or held exclusively by another program (a
            // running VM's disk, an LVM or RAID member), and keeps it from being mounted while it is written.
            let device: FileHandleFD
            do {
                device = try FileHandleFD.open(target, flags: (skipUnchanged ? O_RDWR : O_WRONLY) | O_CLOEXEC | O_EXCL, mode: 0)
            } catch let e as SystemCallError where e.errno == EBUSY {
                throw StrataError(.refused, "restore target \(target) is in use (mounted, or held by another program); nothing was written")
            } catch let e as SystemCallError {
                throw StrataError.io("cannot open \(target)", e)
            }
            isDevice = true
            let deviceSize = try wrap(try device.blockDeviceSize(), "cannot read the size of \(target)")
            guard deviceSize >= Int64(size) else {
                throw StrataError(.invalidArgument, "block device \(target) is too small: \(deviceSize) bytes, the snapshot needs \(size)")
            }
            let inPlace = try restoreParallel(snapshot, root: root, index: index, to: device, writeZeros: true,
                                              skipUnchanged: skipUnchanged, progress: progress)
            try wrap({ try device.fsync(); try device.close() }(), "cannot flush \(target)")
            return RestoreResult(snapshot: snapshot, target: target, bytesWritten: size, seconds: clock.secondsElapsed,
                                 bytesInPlace: inPlace)
        }
        if let existing {
            if existing.isDirectory {
                throw StrataError(.invalidArgument, "restore target \(target) is a directory; give a file path")
            }
            if !force {
                throw StrataError(.invalidArgument, "restore target \(target) exists; use --force to replace it")
            }
        }
        let directory = FileSystem.directoryName(target)
        guard let dirStatus = try? FileSystem.status(directory), dirStatus.isDirectory else {
            throw StrataError(.notFound, "cannot restore to \(target): directory \(directory) does not exist")
        }
        let prefix = "." + FileSystem.baseName(target) + ".strata-"
        DraftFile.removeUnheld(in: directory, prefix: prefix)
        let draft = FileSystem.join(directory, prefix + RandomName.make())
        let file = try wrap(try FileHandleFD.open(draft, flags: O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode: 0o600),
                            "cannot create \(draft)")
        // Held while the draft is written: a draft nobody holds was left by a restore that was killed.
        DraftFile.hold(file.fd)
        do {
            try wrap(try file.truncate(to: Int64(size)), "cannot size \(draft)")
            try restoreParallel(snapshot, root: root, index: index, to: file, writeZeros: false, progress: progress)
            try Interruption.check()
            try wrap({
                try file.fsync()
                try file.close()
                _ = chmod(draft, 0o644 & ~currentUmask())
                try FileSystem.rename(draft, target)
                try FileSystem.syncDirectory(directory)
            }(), "cannot finish writing \(target)")
        } catch {
            try? file.close()
            try? FileSystem.remove(draft)
            throw error
        }
        return RestoreResult(snapshot: snapshot, target: target, bytesWritten: size, seconds: clock.secondsElapsed)
    }

    /// The stretch of the image sent to the disk at once, as soon as every byte the restore writes into it is written
    /// (`RestoreWriteback`). Without a write-back hint the kernel keeps the whole image dirty (far below its threshold
    /// on a large machine) and the final fsync waits for all of it; with one the disk works while the CPUs decompress.
    public static let defaultWindowBytes = 8 << 20
    /// How many finished windows stay in the cache before their pages are dropped (by then they are on disk). The
    /// restored image then does not push the machine's page cache out, and its pages are reused for the writes that
    /// follow: on a VM whose host takes free memory back, a page touched for the first time costs ~2 µs (a new 200 MB
    /// file: 0.47 s of system time, 0.03 s into pages just freed); restore with cold memory went from 1.82–2.70 s to
    /// 1.40–1.50 s when it began dropping its pages.
    public static let defaultDropLag = 8
    /// Frames asked of the kernel ahead of the one handed to a worker. Until session 16 a batch's frames (~100 MB of
    /// packs) were all asked for at its start: the kernel read them into new pages, which on a VM whose host takes
    /// free memory back cost as much system time as the restore's own work (with `FrameCacheReader` dropping what
    /// it has read, 8 frames ahead: restore right after the benchmark's snapshots 1.42–1.74 s against 1.73–2.04 s).
    static let framesReadAhead = 8
    /// Zero runs at least this long are zeroed by a block device itself (`FileHandleFD.zeroDeviceRange`) rather than
    /// written: restoring the benchmark's day1 image (4 GiB, 1.5 GB of data) onto a loop device over a new sparse file
    /// took 1.9–2.5 s instead of 7.9–10.6 s, and the file holds 1.5 GB afterwards instead of 4.3 (BENCHMARKS, "Restore
    /// onto a block device"). Shorter runs (zero pages among data) are cheaper written than waited for one device
    /// command at a time.
    static let deviceZeroingMinimum: UInt64 = 1 << 20
    /// The most one device command zeroes (a device without a write-zeroes command has the kernel write zero pages;
    /// a signal is seen between pieces).
    static let deviceZeroingPiece: UInt64 = 256 << 20

    /// One chunk to place: where in the image, which object, where it is stored.
    private struct Piece {
        var imageOffset: UInt64
        var id: ObjectID
        var location: ChunkLocation
    }

    /// A frame to read with the pieces that come from it, and the buffer it is decompressed into.
    private final class FrameJob: @unchecked Sendable {
        let location: ChunkLocation
        var pieces: [Piece] = []
        var buffer: ByteBuffer?

        init(location: ChunkLocation) { self.location = location }
    }

    /// Restores with a pipeline: this thread walks the map and groups chunks by the frame that holds them; worker
    /// threads read, decompress and verify a frame, then write its chunks themselves, joining runs that are contiguous
    /// in both the frame and the image into one pwrite, and tell the kernel which stretches of the image are
    /// finished (`RestoreWriteback`). Without that the kernel keeps the whole image dirty in memory (far below its
    /// write-back threshold on a large machine) and the final fsync waits for all of it; with it the disk works
    /// while the CPUs decompress (restore of the benchmark image 1.19–1.25 s instead of 1.61–1.69 s, measured
    /// interleaved). A separate writer thread was measured slower than workers writing (1.70–1.95 s): it left a core
    /// idle whenever the writer was behind. Frames in flight are bounded, so memory does not grow with the image.
    /// `skipUnchanged` (a block device opened for reading too): each chunk is compared with what the device holds
    /// and written only where it differs. Returns the bytes of data found in place.
    @discardableResult
    private func restoreParallel(_ snapshot: Snapshot, root: ObjectID, index: ChunkIndex, to out: FileHandleFD,
                                 writeZeros: Bool, skipUnchanged: Bool = false, progress: ProgressReporter?) throws -> UInt64 {
        let reader = ObjectReader(repo: repo, index: index)
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let what = "snapshot \(snapshot.id.shortHex)"
        let errors = ErrorBox()
        let slots = DispatchSemaphore(value: workers * 2)
        let group = DispatchGroup()
        let workQueue = DispatchQueue(label: "strata.restore.frames", attributes: .concurrent)
        let buffers = Pool<ByteBuffer>()
        let compareBuffers = Pool<ByteBuffer>()
        let inPlaceBytes = ByteCounter()
        let caches = Pool<FrameCacheReader>()
        let repo = self.repo
        // Zeros are written only to block devices; a file keeps its holes.
        let zeros = ByteBuffer(capacity: writeZeros ? 1 << 20 : 64)
        memset(zeros.base, 0, zeros.capacity)

        let writeback = RestoreWriteback(out: out, windowBytes: UInt64(windowBytes), dropLag: dropLag)
        // Set once the device could not zero a range itself: the rest of the zeros are written.
        let deviceZeroingFailed = Flag()

        @Sendable func place(_ bytes: UnsafeRawPointer, count: Int, at offset: UInt64) throws {
            try wrap(try out.pwrite(bytes, count: count, offset: Int64(offset)), "cannot write \(out.path)")
            writeback.wrote(offset: offset, length: UInt64(count))
        }

        /// With `skipUnchanged`, the pieces (sorted by image offset) whose bytes the device does not hold already; the
        /// others are counted as in place and reported written to the write-back tracker. What the device holds under
        /// a run of pieces contiguous in the image is read at once (a frame's worth at most); a piece whose bytes
        /// cannot be read back is written.
        @Sendable func differing(_ sorted: [Piece], in buffer: ByteBuffer, frameRawLength: Int) -> [Piece] {
            guard skipUnchanged else { return sorted }
            let current = compareBuffers.take { ByteBuffer(capacity: frameRawLength) }
            defer { compareBuffers.give(current) }
            var changed: [Piece] = []
            var i = 0
            while i < sorted.count {
                var end = i + 1
                while end < sorted.count,
                      sorted[end].imageOffset == sorted[end - 1].imageOffset + UInt64(sorted[end - 1].location.length) {
                    end += 1
                }
                let start = sorted[i].imageOffset
                let length = Int(sorted[end - 1].imageOffset - start) + Int(sorted[end - 1].location.length)
                current.reserve(length)
                let read = (try? out.pread(into: current.base, count: length, offset: Int64(start))) ?? 0
                for piece in sorted[i..<end] {
                    let n = Int(piece.location.length)
                    let at = Int(piece.imageOffset - start)
                    if at + n <= read && memcmp(current.base + at, buffer.base + Int(piece.location.offset), n) == 0 {
                        inPlaceBytes.add(UInt64(n))
                        writeback.wrote(offset: piece.imageOffset, length: UInt64(n))
                    } else {
                        changed.append(piece)
                    }
                }
                i = end
            }
            return changed
        }

        /// Writes the job's pieces, joining contiguous runs, and releases its slot.
        @Sendable func write(_ job: FrameJob) {
            defer {
                if let b = job.buffer { buffers.give(b) }
                slots.signal()
                group.leave()
            }
            guard !errors.hasError, let buffer = job.buffer else { return }
            let pieces = differing(job.pieces.sorted { $0.imageOffset < $1.imageOffset }, in: buffer,
                                   frameRawLength: Int(job.location.frameRawLength))
            var i = 0
            while i < pieces.count {
                var end = i + 1
                var length = Int(pieces[i].location.length)
                while end < pieces.count,
                      pieces[end].imageOffset == pieces[i].imageOffset + UInt64(length),
                      Int(pieces[end].location.offset) == Int(pieces[i].location.offset) + length {
                    length += Int(pieces[end].location.length)
                    end += 1
                }
                do {
                    try place(buffer.base + Int(pieces[i].location.offset), count: length, at: pieces[i].imageOffset)
                } catch {
                    errors.set(error)
                    return
                }
                i = end
            }
        }

        /// Runs on a worker: reads, decompresses and verifies one frame, then writes it.
        @Sendable func process(_ job: FrameJob) {
            let cache = caches.take { FrameCacheReader(repo: repo, index: index) }
            defer { caches.give(cache) }
            do {
                // A caught signal stops the frames already handed out too (a batch holds up to 256 MiB of data).
                try Interruption.check()
                let buffer = buffers.take { ByteBuffer(capacity: Int(job.location.frameRawLength)) }
                job.buffer = buffer
                try cache.read(job.location, into: buffer)
                let pieces = job.pieces
                try ChunkHasher.objectIDs(count: pieces.count, object: { (buffer.slice(Int(pieces[$0].location.offset), Int(pieces[$0].location.length)), .chunk) },
                                          scratch: cache.scratch, identity: repo.identity) { i, id in
                    let piece = pieces[i]
                    guard id == piece.id else {
                        throw StrataError.corrupt("\(what): bytes \(piece.imageOffset)-\(piece.imageOffset + UInt64(piece.location.length) - 1) cannot be restored: chunk \(piece.id.shortHex) does not match its hash")
                    }
                }
            } catch let e as StrataError where e.code == .damaged && !e.message.hasPrefix(what) {
                let first = job.pieces.first!
                errors.set(StrataError.corrupt("\(what): bytes from \(first.imageOffset) cannot be restored: \(e.message)"))
            } catch {
                errors.set(error)
            }
            write(job)
        }

        var pending: [FrameKey: FrameJob] = [:]
        var order: [FrameJob] = []
        var batchData = 0
        var done: UInt64 = 0
        // A file target (not on btrfs, where writes into preallocated extents would skip its compression and
        // copy-on-write) gets its data runs allocated before they are written (holes stay holes): ext4 then skips
        // delayed allocation for each of the many writes, which arrive in frame order, not image order (restore
        // 1.09–1.16 s against 1.18–1.28 s, system time 0.38–0.44 s against 0.51–0.67 s, interleaved).
        var run: (start: UInt64, end: UInt64)?
        let allocates = !writeZeros && !out.isOnCopyOnWriteFileSystem
        func allocateRun() {
            guard allocates, let r = run, r.end > r.start else { return }
            out.preallocate(offset: Int64(r.start), count: Int64(r.end - r.start))
            run = (r.end, r.end)
        }
        // Frames are asked for `framesReadAhead` ahead of the jobs handed out, so that the kernel reads them while
        // the workers decompress, into the pages the workers' reads let go of.
        let prefetcher = PackPrefetcher(repo: repo, index: index)
        func submit() {
            allocateRun()
            writeback.publish(closingBelow: done)
            for job in order.prefix(Self.framesReadAhead) { prefetcher.prefetch(job.location) }
            for (i, job) in order.enumerated() {
                if errors.hasError || Interruption.signal != nil { break }
                slots.wait()
                if i + Self.framesReadAhead < order.count { prefetcher.prefetch(order[i + Self.framesReadAhead].location) }
                group.enter()
                workQueue.async { process(job) }
            }
            pending.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            batchData = 0
            progress?.progress(done: Int64(done), total: Int64(snapshot.manifest.size), newBytes: 0)
        }

        let covered: UInt64
        do {
            covered = try reader.forEachEntry(root: root) { offset, entry in
                if errors.hasError { throw errors.error! }
                try Interruption.check()
                // Nothing past the snapshot's size is ever allocated or written (a block device holds other data
                // there), however the map is damaged.
                guard offset + entry.length <= snapshot.manifest.size else {
                    throw StrataError.corrupt("\(what): its chunk map covers more than the \(snapshot.manifest.size) bytes the manifest says")
                }
                done = offset + entry.length
                switch entry.kind {
                case .zero:
                    allocateRun()
                    run = nil
                    guard writeZeros else { return }
                    writeback.plan(offset: offset, length: entry.length)
                    writeback.publish(closingBelow: done)
                    slots.wait()
                    group.enter()
                    workQueue.async {
                        defer { slots.signal(); group.leave() }
                        var o = offset
                        let end = offset + entry.length
                        // A long run is zeroed by the device itself (released, where it guarantees zeros for released
                        // blocks: a thin volume stays thin), a piece at a time so that a signal is not held up.
                        while end - o >= Self.deviceZeroingMinimum && !deviceZeroingFailed.isSet && !errors.hasError {
                            let n = min(Self.deviceZeroingPiece, (end - o) & ~4095)
                            guard out.zeroDeviceRange(offset: Int64(o), count: Int64(n)) else {
                                deviceZeroingFailed.set()
                                break
                            }
                            writeback.wrote(offset: o, length: n)
                            o += n
                            do { try Interruption.check() } catch { errors.set(error) }
                        }
                        while o < end && !errors.hasError {
                            let n = Int(min(UInt64(1 << 20), end - o))
                            do { try place(zeros.base, count: n, at: o) } catch { errors.set(error) }
                            o += UInt64(n)
                        }
                    }
                case .chunk:
                    guard let location = index.location(of: entry.id), location.kind == .chunk,
                          UInt64(location.length) == entry.length else {
                        throw StrataError.corrupt("\(what): bytes \(offset)-\(offset + entry.length - 1) cannot be restored: chunk \(entry.id.shortHex) is missing from the index\(index.missingHint)")
                    }
                    let key = location.frameKey
                    let job: FrameJob
                    if let j = pending[key] { job = j } else {
                        job = FrameJob(location: location)
                        pending[key] = job
                        order.append(job)
                    }
                    job.pieces.append(Piece(imageOffset: offset, id: entry.id, location: location))
                    writeback.plan(offset: offset, length: entry.length)
                    run = (run?.start ?? offset, offset + entry.length)
                    batchData += Int(entry.length)
                    if batchData >= batchBytes { submit() }
                }
            }
            submit()
            writeback.publish(closingBelow: .max)
        } catch {
            group.wait()
            writeback.finish()
            throw error
        }
        group.wait()
        writeback.finish()
        if let e = errors.error { throw e }
        guard covered == snapshot.manifest.size else {
            throw StrataError.corrupt("\(what): its chunk map covers \(covered) bytes, the manifest says \(snapshot.manifest.size)")
        }
        return inPlaceBytes.value
    }

    /// Writes a snapshot's image, verified, in order to a stream (a pipe or standard output).
    func stream(_ snapshot: Snapshot, to out: FileHandleFD, progress: ProgressReporter? = nil) throws {
        let index = try ChunkIndex.load(repo, strict: false)
        guard let root = snapshot.manifest.rootID else { throw StrataError.corrupt("snapshot \(snapshot.id.shortHex) has no map root") }
        try restoreSequential(snapshot, root: root, index: index, to: out, progress: progress)
    }

    /// Restores in image order to a stream.
    private func restoreSequential(_ snapshot: Snapshot, root: ObjectID, index: ChunkIndex, to out: FileHandleFD,
                                   progress: ProgressReporter?) throws {
        let reader = ObjectReader(repo: repo, index: index)
        let cache = FrameCache(repo: repo, index: index, capacity: 2)
        let scratch = ByteBuffer(capacity: 64 << 10)
        let zeros = ByteBuffer(capacity: 1 << 20)
        memset(zeros.base, 0, 1 << 20)
        let what = "snapshot \(snapshot.id.shortHex)"
        let covered = try reader.forEachEntry(root: root) { offset, entry in
            try Interruption.check()
            guard offset + entry.length <= snapshot.manifest.size else {
                throw StrataError.corrupt("\(what): its chunk map covers more than the \(snapshot.manifest.size) bytes the manifest says")
            }
            switch entry.kind {
            case .zero:
                var left = entry.length
                while left > 0 {
                    let n = Int(min(UInt64(1 << 20), left))
                    try wrap(try out.write(zeros.base, count: n), "cannot write to standard output")
                    left -= UInt64(n)
                }
            case .chunk:
                guard let location = index.location(of: entry.id), location.kind == .chunk else {
                    throw StrataError.corrupt("\(what): bytes \(offset)-\(offset + entry.length - 1) cannot be restored: chunk \(entry.id.shortHex) is missing from the index\(index.missingHint)")
                }
                let bytes: UnsafeRawBufferPointer
                do {
                    bytes = try cache.object(entry.id, at: location)
                } catch let e as StrataError where e.code == .damaged {
                    throw StrataError.corrupt("\(what): bytes \(offset)-\(offset + entry.length - 1) cannot be restored: \(e.message)")
                }
                guard bytes.count == Int(entry.length), ChunkHasher.chunkID(of: bytes, scratch: scratch, identity: repo.identity) == entry.id else {
                    throw StrataError.corrupt("\(what): bytes \(offset)-\(offset + entry.length - 1) cannot be restored: chunk \(entry.id.shortHex) does not match its hash")
                }
                try wrap(try out.write(bytes.baseAddress!, count: bytes.count), "cannot write to standard output")
            }
            progress?.progress(done: Int64(offset + entry.length), total: Int64(snapshot.manifest.size), newBytes: 0)
        }
        guard covered == snapshot.manifest.size else {
            throw StrataError.corrupt("\(what): its chunk map covers \(covered) bytes, the manifest says \(snapshot.manifest.size)")
        }
    }
}

/// A sum that several workers add to.
final class ByteCounter: @unchecked Sendable {
    private let lock = Lock()
    private var total: UInt64 = 0

    func add(_ n: UInt64) { lock.withLock { total += n } }

    var value: UInt64 { lock.withLock { total } }
}

/// The first error raised by any of several workers.
final class ErrorBox: @unchecked Sendable {
    private let lock = Lock()
    private var first: Error?

    func set(_ e: Error) {
        lock.lock()
        if first == nil { first = e }
        lock.unlock()
    }

    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
    var hasError: Bool { error != nil }
}

func currentUmask() -> mode_t {
    let m = umask(0o022)
    umask(m)
    return m
}

#if canImport(Glibc)
import Glibc
#endif
