#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Threads of Strata's own, outside Dispatch's pool: for work that blocks for a long time (one end of a pipe for a
/// whole copy), which must never hold a pool thread the work on the other end needs, and for counting how many
/// threads the system still lets the process start (`TaskLimit`).
enum SystemThread {
    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread, to be joined with `pthread_join`; nil (and `body` not run) when the system
    /// cannot make one.
    static func start(_ body: @escaping () -> Void) -> pthread_t? {
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let made = pthread_create(&thread, nil, { raw in
            Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, work)
        guard made == 0 else {
            Unmanaged<Work>.fromOpaque(work).release()
            return nil
        }
        return thread
    }

    /// Starts `body` on a new thread that nobody joins; false (and `body` not run) when the system cannot make one.
    static func startDetached(_ body: @escaping () -> Void) -> Bool {
        guard let thread = start(body) else { return false }
        pthread_detach(thread)
        return true
    }
}
