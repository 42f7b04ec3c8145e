import Foundation

/// A cgroup of the pids controller made for a test: processes moved into it may hold at most `limit` tasks
/// (threads count). cgroup v1 (`/sys/fs/cgroup/pids`) or v2 where the root delegates the pids controller.
struct PidsCgroup {
    /// Where a test cgroup can be made, or nil (not root, or no pids controller).
    static let parent: String? = {
        let fm = FileManager.default
        let v1 = "/sys/fs/cgroup/pids"
        if fm.fileExists(atPath: v1 + "/tasks") && fm.isWritableFile(atPath: v1) { return v1 }
        let v2 = "/sys/fs/cgroup"
        if let control = try? String(contentsOfFile: v2 + "/cgroup.subtree_control", encoding: .utf8),
           control.split(separator: " ").contains(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines) == "pids" }),
           fm.isWritableFile(atPath: v2) {
            return v2
        }
        return nil
    }()

    let path: String

    init(name: String) throws {
        guard let parent = Self.parent else { throw CocoaError(.featureUnsupported) }
        path = parent + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    /// The file a process writes its pid to, to move itself in.
    var procs: String { path + "/cgroup.procs" }

    func limit(_ tasks: Int) throws {
        try "\(tasks)\n".write(toFile: path + "/pids.max", atomically: false, encoding: .utf8)
    }

    /// Removes the cgroup (every process in it has exited).
    func remove() { rmdir(path) }
}
