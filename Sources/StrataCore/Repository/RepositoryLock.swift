#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The repository lock: `flock(2)` on `REPO/lock`. Shared for commands that add or read snapshots,
/// exclusive for `gc`. The kernel drops it when the process dies, so no stale lock ever needs cleaning by hand.
public final class RepositoryLock: @unchecked Sendable {
    public enum Mode: Sendable { case shared, exclusive }

    private let fd: Int32

    /// Takes the lock. With `wait`, blocks until it is free, calling `onWait` once first; without, fails at once.
    init(path: String, mode: Mode, wait: Bool, onWait: () -> Void) throws {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw StrataError.io("cannot open the repository lock \(path)", SystemCallError(call: "open", path: path, errno: errno)) }
        self.fd = fd
        let op = mode == .shared ? LOCK_SH : LOCK_EX
        if flock(fd, op | LOCK_NB) == 0 { return }
        guard errno == EWOULDBLOCK else {
            let e = errno
            Glibc.close(fd)
            throw StrataError.io("cannot lock \(path)", SystemCallError(call: "flock", path: path, errno: e))
        }
        guard wait else {
            Glibc.close(fd)
            let holder = mode == .exclusive ? "another strata command is using the repository" : "gc is running on the repository"
            throw StrataError(.lockBusy, "repository is locked: \(holder)")
        }
        onWait()
        // While signals are caught, the wait polls (every 100 ms), so that a signal is seen however it lands.
        while Interruption.isCatching {
            if let signal = Interruption.signal {
                Glibc.close(fd)
                throw StrataError(.interrupted, "interrupted by \(Interruption.name(signal)) while waiting for the repository lock; nothing was changed")
            }
            if flock(fd, op | LOCK_NB) == 0 { return }
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let e = errno
                Glibc.close(fd)
                throw StrataError.io("cannot lock \(path)", SystemCallError(call: "flock", path: path, errno: e))
            }
            usleep(100_000)
        }
        while flock(fd, op) != 0 {
            if errno == EINTR { continue }
            let e = errno
            Glibc.close(fd)
            throw StrataError.io("cannot lock \(path)", SystemCallError(call: "flock", path: path, errno: e))
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        Glibc.close(fd)
    }
}
