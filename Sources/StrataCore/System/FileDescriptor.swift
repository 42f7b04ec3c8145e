#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CGlibcExtras

/// An open file. Every system call Strata makes on file contents goes through this type, so a failure
/// always names the call, the path and the errno.
public final class FileHandleFD: @unchecked Sendable {
    public let fd: Int32
    public let path: String
    private var closed = false

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        if !closed { _ = Glibc.close(fd) }
    }

    /// Opens `path` for reading.
    public static func openForReading(_ path: String) throws -> FileHandleFD {
        try open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
    }

    /// Creates a new private file (0600) that must not exist yet; symlinks are not followed.
    static func createExclusive(_ path: String) throws -> FileHandleFD {
        try open(path, flags: O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode: 0o600)
    }

    /// An instant copy of `source`'s current contents that nothing else can change: a file without a name in
    /// `directory` (on `source`'s file system) sharing `source`'s blocks, gone when closed. Throws where the file
    /// system cannot clone (`clone`, EOPNOTSUPP/EINVAL/EXDEV) or has no unnamed files (`open`).
    static func clone(of source: FileHandleFD, inDirectory directory: String) throws -> FileHandleFD {
        let fd = strata_open_unnamed(directory)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: directory, errno: errno) }
        let copy = FileHandleFD(fd: fd, path: source.path)
        while strata_clone_file(fd, source.fd) != 0 {
            if errno == EINTR { continue }
            throw SystemCallError(call: "clone", path: source.path, errno: errno)
        }
        return copy
    }

    static func open(_ path: String, flags: Int32, mode: mode_t) throws -> FileHandleFD {
        while true {
            let fd = Glibc.open(path, flags, mode)
            if fd >= 0 { return FileHandleFD(fd: fd, path: path) }
            if errno == EINTR { continue }
            throw SystemCallError(call: "open", path: path, errno: errno)
        }
    }

    public func close() throws {
        guard !closed else { return }
        closed = true
        if Glibc.close(fd) != 0 && errno != EINTR {
            throw SystemCallError(call: "close", path: path, errno: errno)
        }
    }

    /// Reads up to `count` bytes at `offset`; returns fewer only at end of file.
    public func pread(into buffer: UnsafeMutableRawPointer, count: Int, offset: Int64) throws -> Int {
        var count = count
        if let end = FaultInjection.endOfFile(path: path) { count = Int(max(0, min(Int64(count), end - offset))) }
        if let e = FaultInjection.check("read", path: path, bytes: count) {
            throw SystemCallError(call: "pread", path: path, errno: e)
        }
        var done = 0
        while done < count {
            let n = Glibc.pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw SystemCallError(call: "pread", path: path, errno: errno)
        }
        return done
    }

    /// Reads sequentially (pipes and terminals), up to `count` bytes; fewer only at end of input.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        while done < count {
            // A signal that arrives once some bytes moved cuts the call short instead of failing it with EINTR:
            // look for a caught signal before blocking again, or Ctrl-C would wait for the next bytes.
            try waitReady(Int16(POLLIN))
            let n = Glibc.read(fd, buffer + done, count - done)
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw SystemCallError(call: "read", path: path, errno: errno)
        }
        return done
    }

    /// While signals are caught (`Interruption`), waits until the descriptor is ready, looking for a caught signal
    /// at least every 250 ms: a signal that lands between the last check and a blocking call would otherwise go
    /// unseen until the pipe moves. Otherwise returns at once.
    private func waitReady(_ events: Int16) throws {
        guard Interruption.isCatching else { return }
        var ready = pollfd(fd: fd, events: events, revents: 0)
        while true {
            try Interruption.check()
            let r = poll(&ready, 1, 250)
            // Ready, closed or failed: the read or write itself tells which.
            if r > 0 || (r < 0 && errno != EINTR) { return }
        }
    }

    /// Writes all of `count` bytes at `offset`.
    public func pwrite(_ buffer: UnsafeRawPointer, count: Int, offset: Int64) throws {
        if let e = FaultInjection.check("write", path: path, bytes: count) {
            throw SystemCallError(call: "pwrite", path: path, errno: e)
        }
        PowerLossSimulator.wrote(path)
        var done = 0
        while done < count {
            let n = Glibc.pwrite(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n >= 0 { done += n; continue }
            if errno == EINTR { continue }
            throw SystemCallError(call: "pwrite", path: path, errno: errno)
        }
    }

    /// Writes all of `count` bytes at the current position (pipes and standard output).
    public func write(_ buffer: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            try waitReady(Int16(POLLOUT))  // as in `read`: a signal may cut a write short without EINTR
            let n = Glibc.write(fd, buffer + done, count - done)
            if n >= 0 { done += n; continue }
            if errno == EINTR { continue }
            throw SystemCallError(call: "write", path: path, errno: errno)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0.baseAddress!, count: $0.count) }
    }

    /// Asks the kernel to start writing `count` bytes at `offset` back to the disk now, without waiting for them.
    /// Only a hint that lets a long write overlap the disk with the work that follows; durability still comes from
    /// `fsync`, and a failure here is ignored (the `fsync` reports it).
    public func startWriteback(offset: Int64, count: Int) {
        _ = strata_start_writeback(fd, offset, Int64(count))
    }

    /// Waits for `count` bytes at `offset` to be written back to the disk (starting it for any still dirty), so that
    /// their cached pages are clean. Not durability (no device flush, no metadata): a hint's companion; errors are
    /// left to `fsync`.
    public func waitForWriteback(offset: Int64, count: Int) {
        _ = strata_wait_writeback(fd, offset, Int64(count))
    }

    /// On a pipe, asks the kernel for a 1 MiB buffer instead of the default 64 KiB: a stream of a disk image then
    /// moves in fewer, larger steps (`cat` of the benchmark's 4 GiB image into a reader: 3.9–6.1 s with the default,
    /// 1.9–2.8 s with 1 MiB). Anything else, or a refusal (the user's pipe quota), leaves it as it is.
    public func enlargePipeBuffer() {
        _ = strata_set_pipe_size(fd, 1 << 20)
    }

    /// Lets the kernel drop this file's cached pages that are clean (`POSIX_FADV_DONTNEED`; pages still dirty or
    /// being written stay): `count` bytes at `offset`, or from `offset` to the end when `count` is 0. Only a hint, for
    /// a long write that should not fill memory with its own pages, or data read once.
    public func dropCachedPages(offset: Int64 = 0, count: Int64 = 0) {
        _ = posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_DONTNEED)
    }

    /// Asks the kernel to start reading `count` bytes at `offset` into its cache without waiting for them
    /// (`POSIX_FADV_WILLNEED`). Only a hint.
    public func startReading(offset: Int64, count: Int) {
        _ = posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_WILLNEED)
    }

    /// Allocates `count` bytes at `offset` for data about to be written (the file system may then lay them out
    /// at once). Only a hint: where the file system cannot, nothing happens (never glibc's emulation, which would
    /// write zeros); a real lack of space is reported by the writes that follow.
    /// True on a copy-on-write file system (btrfs) where allocating ahead buys nothing and costs: writes into
    /// preallocated extents skip its compression.
    public var isOnCopyOnWriteFileSystem: Bool {
        strata_file_system_type(fd) == 0x9123_683E  // BTRFS_SUPER_MAGIC
    }

    public func preallocate(offset: Int64, count: Int64) {
        _ = strata_preallocate(fd, offset, count)
    }

    public func fsync() throws {
        if let e = FaultInjection.check("fsync", path: path, bytes: 0) {
            throw SystemCallError(call: "fsync", path: path, errno: e)
        }
        while Glibc.fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw SystemCallError(call: "fsync", path: path, errno: errno)
        }
        PowerLossSimulator.synced(path)
    }

    public func truncate(to size: Int64) throws {
        while Glibc.ftruncate(fd, off_t(size)) != 0 {
            if errno == EINTR { continue }
            throw SystemCallError(call: "ftruncate", path: path, errno: errno)
        }
    }

    public func stat() throws -> FileStatus {
        var st = Glibc.stat()
        if Glibc.fstat(fd, &st) != 0 { throw SystemCallError(call: "fstat", path: path, errno: errno) }
        return FileStatus(st)
    }

    /// The size of a block device in bytes.
    public func blockDeviceSize() throws -> Int64 {
        // BLKGETSIZE64 = _IOR(0x12, 114, size_t)
        var size: UInt64 = 0
        let request: UInt = 0x8008_1272
        if ioctl(fd, request, &size) != 0 {
            throw SystemCallError(call: "ioctl(BLKGETSIZE64)", path: path, errno: errno)
        }
        return Int64(size)
    }

    /// Makes `count` bytes at `offset` of a block device read as zeros without writing them from here: first by
    /// releasing the blocks where the device guarantees zeros for them (thin volumes, SSDs, loop devices), else by its
    /// write-zeroes command or the kernel's own zero pages. False when the device or kernel can do neither (or the
    /// range is not aligned to the device's sectors); the caller then writes zeros. The cached pages of the range are
    /// dropped by the kernel; durability comes from the `fsync` that follows, as for writes.
    func zeroDeviceRange(offset: Int64, count: Int64) -> Bool {
        for unmap: Int32 in [1, 0] {
            while true {
                if strata_zero_device_range(fd, offset, count, unmap) == 0 { return true }
                if errno != EINTR { break }
            }
        }
        return false
    }

    /// The next offset at or after `offset` that holds data, or nil when only a hole follows.
    /// Returns `offset` itself when the file system cannot tell holes apart.
    public func nextData(from offset: Int64) throws -> Int64? {
        let r = lseek(fd, off_t(offset), 3 /* SEEK_DATA */)
        if r >= 0 { return Int64(r) }
        if errno == ENXIO { return nil }
        if errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP { return offset }
        throw SystemCallError(call: "lseek(SEEK_DATA)", path: path, errno: errno)
    }

    /// The next hole at or after `offset` (end of file counts as a hole).
    public func nextHole(from offset: Int64, size: Int64) throws -> Int64 {
        let r = lseek(fd, off_t(offset), 4 /* SEEK_HOLE */)
        if r >= 0 { return Int64(r) }
        if errno == ENXIO { return size }
        if errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP { return size }
        throw SystemCallError(call: "lseek(SEEK_HOLE)", path: path, errno: errno)
    }
}

/// The facts of `stat(2)` that Strata uses.
public struct FileStatus: Sendable {
    public let size: Int64
    public let mode: mode_t
    public let modificationTime: timespec

    init(_ st: stat) {
        size = Int64(st.st_size)
        mode = st.st_mode
        modificationTime = st.st_mtim
    }

    public var isDirectory: Bool { (mode & S_IFMT) == S_IFDIR }
    public var isRegularFile: Bool { (mode & S_IFMT) == S_IFREG }
    public var isBlockDevice: Bool { (mode & S_IFMT) == S_IFBLK }
    public var isSymbolicLink: Bool { (mode & S_IFMT) == S_IFLNK }
}
