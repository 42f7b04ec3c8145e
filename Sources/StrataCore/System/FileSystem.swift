#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Path-level system calls: directories, renames, removal, durable replacement of files.
public enum FileSystem {
    /// `stat(2)` of a path, following symlinks; nil when nothing is there.
    public static func status(_ path: String) throws -> FileStatus? {
        var st = stat()
        if fstatat(AT_FDCWD, path, &st, 0) == 0 { return FileStatus(st) }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw SystemCallError(call: "stat", path: path, errno: errno)
    }

    /// `lstat(2)`: does not follow a final symlink.
    public static func linkStatus(_ path: String) throws -> FileStatus? {
        var st = stat()
        if Glibc.lstat(path, &st) == 0 { return FileStatus(st) }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw SystemCallError(call: "lstat", path: path, errno: errno)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return Glibc.lstat(path, &st) == 0
    }

    /// Creates a private directory (0700); succeeds when it already exists as a directory.
    public static func makeDirectory(_ path: String) throws {
        if let e = FaultInjection.check("mkdir", path: path, bytes: 0) { throw SystemCallError(call: "mkdir", path: path, errno: e) }
        if Glibc.mkdir(path, 0o700) == 0 { return }
        let e = errno
        if e == EEXIST, let st = try linkStatus(path) {
            if st.isDirectory { return }
            throw SystemCallError(call: "mkdir", path: path, errno: ENOTDIR)
        }
        throw SystemCallError(call: "mkdir", path: path, errno: e)
    }

    /// The names in a directory, without `.` and `..`; empty when the directory does not exist.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw SystemCallError(call: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func rename(_ from: String, _ to: String) throws {
        if let e = FaultInjection.check("rename", path: to, bytes: 0) { throw SystemCallError(call: "rename", path: to, errno: e) }
        PowerLossSimulator.willRename(from, to)
        if Glibc.rename(from, to) != 0 {
            throw SystemCallError(call: "rename", path: to, errno: errno)
        }
    }

    /// Removes a file; succeeds when it is already gone.
    public static func remove(_ path: String) throws {
        if let e = FaultInjection.check("unlink", path: path, bytes: 0) { throw SystemCallError(call: "unlink", path: path, errno: e) }
        PowerLossSimulator.willUnlink(path)
        if Glibc.unlink(path) == 0 || errno == ENOENT { return }
        throw SystemCallError(call: "unlink", path: path, errno: errno)
    }

    public static func removeDirectory(_ path: String) throws {
        if Glibc.rmdir(path) == 0 || errno == ENOENT { return }
        throw SystemCallError(call: "rmdir", path: path, errno: errno)
    }

    /// Makes a directory's entries (creations, renames, removals) durable.
    public static func syncDirectory(_ path: String) throws {
        if let e = FaultInjection.check("fsync", path: path + "/", bytes: 0) { throw SystemCallError(call: "fsync", path: path, errno: e) }
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SystemCallError(call: "open", path: path, errno: errno) }
        defer { Glibc.close(fd) }
        if Glibc.fsync(fd) != 0 && errno != EINVAL {
            throw SystemCallError(call: "fsync", path: path, errno: errno)
        }
        PowerLossSimulator.syncedDirectory(path)
    }

    /// Reads a whole (small) file.
    public static func readFile(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
        let file = try FileHandleFD.open(path, flags: O_RDONLY | O_CLOEXEC | O_NOFOLLOW, mode: 0)
        let size = Int(try file.stat().size)
        if size > limit {
            throw SystemCallError(call: "read", path: path, errno: EFBIG)
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { try file.pread(into: $0.baseAddress!, count: size, offset: 0) }
        if n < size { bytes.removeSubrange(n...) }
        try file.close()
        return bytes
    }

    /// A directory path joined with a name.
    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }

    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The path with every symlink resolved (`realpath`), or nil when it cannot be resolved.
    public static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The absolute form of a path (relative to the working directory), without resolving symlinks.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(cString: buffer)
        return join(cwd, path)
    }
}
