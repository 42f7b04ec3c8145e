#if canImport(Glibc)
import Glibc
#endif

/// Whether `snap` reads an image file through a clone of it (a reflink: an instant copy that shares the file's
/// blocks), so that the snapshot is the file as it was at one instant even while something (a running VM) writes to
/// it. Only some file systems can clone a file (btrfs, XFS with reflink, bcachefs, ZFS with block cloning).
public enum CloneMode: String, Sendable, CaseIterable {
    /// Clone where the file system can; elsewhere read the file itself (and warn if it changed while it was read).
    case auto
    /// Clone or fail, committing nothing.
    case always
    /// Read the file itself.
    case never
}

/// What a snapshot reads: a regular file (holes skipped), a block device, or a stream (standard input).
final class ImageSource {
    enum Kind: String { case file, blockDevice, stream }

    let path: String
    let kind: Kind
    private(set) var file: FileHandleFD
    /// Size in bytes; nil for a stream until it ends.
    private(set) var size: Int64?
    let initialStatus: FileStatus?
    /// True once `takeClone` replaced the file by a clone of it: what is read then cannot change.
    private(set) var isClone = false
    /// With `--clone auto`, why no clone was made where the file system may well clone files (a folder that may not
    /// be written to, no space): said as a warning, since the snapshot is then not one point in time.
    private(set) var cloneFailure: String?

    /// A stream read from an open descriptor (a pipe).
    init(stream: FileHandleFD, name: String) {
        path = name
        file = stream
        kind = .stream
        size = nil
        initialStatus = nil
        stream.enlargePipeBuffer()
    }

    /// An empty path (an unset variable in a script): said before anything else about the source.
    static var emptyPath: StrataError {
        StrataError(.invalidArgument, "the source is empty: give an image file, a block device or '-'")
    }

    init(path: String) throws {
        self.path = path
        if path == "-" {
            file = FileHandleFD(fd: 0, path: "standard input")
            kind = .stream
            size = nil
            initialStatus = nil
            file.enlargePipeBuffer()
            return
        }
        guard !path.isEmpty else { throw Self.emptyPath }
        guard let st = try wrap(try FileSystem.status(path), "cannot read \(path)") else {
            throw StrataError(.notFound, "source \(path) does not exist")
        }
        if st.isDirectory {
            throw StrataError(.invalidArgument, "source \(path) is a directory; give an image file, a block device or '-'")
        }
        let opened: FileHandleFD
        do {
            opened = try FileHandleFD.openForReading(path)
        } catch let e as SystemCallError {
            throw StrataError.io("cannot open source \(path)", e)
        }
        file = opened
        if st.isBlockDevice {
            kind = .blockDevice
            size = try wrap(try opened.blockDeviceSize(), "cannot read the size of \(path)")
        } else if st.isRegularFile && !(st.size == 0 && Self.holdsData(opened)) {
            kind = .file
            size = st.size
        } else {
            // A pipe, a character device, or a file that says it is empty and is not (a /proc or /sys file): read
            // as a stream, to its end.
            kind = .stream
            size = nil
            opened.enlargePipeBuffer()
        }
        initialStatus = st
    }

    /// For an image file and `mode` auto or always: from now on reads a clone of the file taken at this instant,
    /// made beside it (a file without a name, gone when closed, so nothing is ever left there). With auto, where
    /// the clone cannot be made (the file system cannot clone, the folder is not writable) the file itself is read.
    /// - Throws: `refused` with `always` when no clone can be made.
    func takeClone(_ mode: CloneMode) throws {
        guard mode != .never, kind == .file, !isClone else { return }
        // Beside the file itself, not beside a symlink to it: a clone must be on the file's own file system.
        let directory = FileSystem.directoryName(FileSystem.resolved(path) ?? path)
        let copy: FileHandleFD
        do {
            copy = try FileHandleFD.clone(of: file, inDirectory: directory)
        } catch let e as SystemCallError {
            let unsupported = [EOPNOTSUPP, EINVAL, ENOTTY, EISDIR, EXDEV].contains(e.errno)
            let why = unsupported ? "its file system cannot clone files (btrfs and XFS with reflink can)"
                : "\(e.call == "open" ? "making a file in \(directory)" : "cloning it") failed: \(e.reason)"
            guard mode == .always else {
                if !unsupported { cloneFailure = "cannot take a point-in-time clone of \(path): \(why); it was read as it is" }
                return
            }
            throw StrataError(.refused, "cannot take a point-in-time clone of \(path): \(why); with --clone auto it is read as it is")
        }
        let st = try wrap(try copy.stat(), "cannot read the clone of \(path)")
        file = copy
        size = st.size
        isClone = true
    }

    /// Whether a file that reports a size of 0 gives bytes when read anyway (pseudo-files report 0).
    private static func holdsData(_ file: FileHandleFD) -> Bool {
        var byte: UInt8 = 0
        return ((try? file.pread(into: &byte, count: 1, offset: 0)) ?? 0) > 0
    }

    /// Page-aligned ranges that may hold data, in order; everything else is a hole (reads as zeros).
    /// Only regular files report holes; the ranges are checked by content anyway.
    func dataRanges() throws -> [(start: Int64, end: Int64)] {
        guard kind == .file, let size else { return [(0, size ?? Int64.max)] }
        let page = Int64(ChunkerParameters.pageSize)
        var ranges: [(Int64, Int64)] = []
        var offset: Int64 = 0
        while offset < size {
            guard let dataStart = try wrap(try file.nextData(from: offset), "cannot read \(path)"), dataStart < size else { break }
            let holeStart = try wrap(try file.nextHole(from: dataStart, size: size), "cannot read \(path)")
            let start = dataStart / page * page
            var end = (holeStart + page - 1) / page * page
            if end > size { end = size }
            if let last = ranges.last, last.1 >= start {
                ranges[ranges.count - 1].1 = max(last.1, end)
            } else {
                ranges.append((start, end))
            }
            offset = max(end, holeStart)
            if holeStart >= size { break }
        }
        return ranges
    }

    /// Reads up to `count` bytes at `offset` (streams ignore the offset and read sequentially).
    func read(into buffer: UnsafeMutableRawPointer, count: Int, offset: Int64) throws -> Int {
        try wrap({
            kind == .stream ? try file.read(into: buffer, count: count) : try file.pread(into: buffer, count: count, offset: offset)
        }(), "cannot read source \(path)")
    }

    /// What the manifest records as its `sourceKind`: `file`, `fileClone` (a file read through a point-in-time
    /// clone), `blockDevice` or `stream`.
    var manifestKind: String { isClone ? "fileClone" : kind.rawValue }

    /// True when the file's size or modification time moved since it was opened (never for a clone).
    func changedSinceOpen() -> Bool {
        guard kind == .file, !isClone, let before = initialStatus, let after = try? FileSystem.status(path) else { return false }
        return after.size != before.size || after.modificationTime.tv_sec != before.modificationTime.tv_sec
            || after.modificationTime.tv_nsec != before.modificationTime.tv_nsec
    }
}
