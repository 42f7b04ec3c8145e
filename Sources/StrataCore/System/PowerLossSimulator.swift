import FoundationEssentials

/// Records, for tests, which effects of file-system calls under a path prefix are not yet durable, and undoes them
/// on demand, as a power loss would: data written since a file's last fsync is lost (the file is emptied), and
/// renames and unlinks not followed by an fsync of their directory are reverted. The repository code is correct
/// only if every completed snapshot survives that.
enum PowerLossSimulator {
    private struct Rename { var from: String; var to: String; var replaced: [UInt8]? }
    private struct Unlink { var path: String; var content: [UInt8] }

    nonisolated(unsafe) private static var active = false
    nonisolated(unsafe) private static var prefix: String?
    nonisolated(unsafe) private static var dirty: Set<String> = []
    nonisolated(unsafe) private static var renames: [Rename] = []
    nonisolated(unsafe) private static var unlinks: [Unlink] = []
    private static let lock = Lock()

    static func start(pathPrefix: String) {
        lock.lock()
        prefix = pathPrefix
        active = true
        dirty = []
        renames = []
        unlinks = []
        lock.unlock()
    }

    /// Called with `lock` held.
    @inline(__always) private static func watching(_ path: String) -> Bool {
        guard let prefix else { return false }
        return path.hasPrefix(prefix)
    }

    static func wrote(_ path: String) {
        guard active else { return }
        lock.lock(); defer { lock.unlock() }
        if watching(path) { dirty.insert(path) }
    }

    static func synced(_ path: String) {
        guard active else { return }
        lock.lock(); defer { lock.unlock() }
        dirty.remove(path)
    }

    static func willRename(_ from: String, _ to: String) {
        guard active else { return }
        lock.lock(); defer { lock.unlock() }
        guard watching(to) else { return }
        let old = FileManager.default.fileExists(atPath: to) ? (try? FileSystem.readFile(to)) : nil
        renames.append(Rename(from: from, to: to, replaced: old))
        if dirty.remove(from) != nil { dirty.insert(to) }
    }

    static func willUnlink(_ path: String) {
        guard active else { return }
        lock.lock(); defer { lock.unlock() }
        guard watching(path), let content = try? FileSystem.readFile(path) else { return }
        unlinks.append(Unlink(path: path, content: content))
    }

    static func syncedDirectory(_ directory: String) {
        guard active else { return }
        lock.lock(); defer { lock.unlock() }
        renames.removeAll { FileSystem.directoryName($0.to) == directory }
        unlinks.removeAll { FileSystem.directoryName($0.path) == directory }
    }

    /// Undoes everything that was not durable, then stops recording.
    static func powerLoss() {
        lock.lock()
        let (d, r, u) = (dirty, renames, unlinks)
        prefix = nil
        active = false
        lock.unlock()
        for path in d where FileManager.default.fileExists(atPath: path) { truncate(path, 0) }
        for rename in r.reversed() {
            if FileManager.default.fileExists(atPath: rename.to) {
                if FileManager.default.fileExists(atPath: FileSystem.directoryName(rename.from)) {
                    _ = Glibc.rename(rename.to, rename.from)
                } else {
                    unlink(rename.to)
                }
            }
            if let old = rename.replaced { _ = FileManager.default.createFile(atPath: rename.to, contents: Data(old)) }
        }
        for x in u.reversed() where !FileManager.default.fileExists(atPath: x.path) {
            _ = FileManager.default.createFile(atPath: x.path, contents: Data(x.content))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
