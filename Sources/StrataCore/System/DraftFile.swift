#if canImport(Glibc)
import Glibc
#endif

/// Drafts written beside their final name and renamed into place when whole (a restored image, a bundle). A draft
/// is held with `flock` while it is written, so that one nobody holds was left by a process that was killed, and
/// the next run writing the same name removes it.
enum DraftFile {
    /// Holds the draft open as `fd` for as long as the descriptor stays open.
    static func hold(_ fd: Int32) {
        _ = flock(fd, LOCK_EX | LOCK_NB)
    }

    /// Removes the drafts in `directory` named `prefix` + 32 hex digits that no process holds.
    static func removeUnheld(in directory: String, prefix: String) {
        for name in (try? FileSystem.list(directory)) ?? [] where name.hasPrefix(prefix) && name.utf8.count == prefix.utf8.count + 32 {
            let path = FileSystem.join(directory, name)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && flock(fd, LOCK_EX | LOCK_NB) == 0 {
                try? FileSystem.remove(path)
            }
            Glibc.close(fd)
        }
    }
}
