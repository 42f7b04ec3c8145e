#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FoundationEssentials

/// The process's open-files limit, and how many packs Strata's caches of open packs may each hold within it.
///
/// A restore or check keeps recently used packs open in several caches (one per worker, one for map nodes, one for
/// read-ahead hints). With a fixed 16–64 packs each they asked for ~150 descriptors, and under `ulimit -n 64` a
/// restore of a repository of many packs crashed inside Dispatch (SIGILL) and `fsck` called a healthy repository
/// damaged ("cannot open pack …: Too many open files"). Each cache now holds at most what the limit leaves room for.
public enum OpenFiles {
    /// The least soft limit Strata runs with: its own files (locks, the source or target, drafts, an index file,
    /// the pack being written), Dispatch's and the caches' one pack each.
    public static let minimumLimit = 48

    /// Raises the soft limit to the hard limit (many systems start processes at 1024 under a far larger hard limit)
    /// and returns the soft limit in force afterwards.
    @discardableResult
    public static func raiseLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return Int.max }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            // Far more than any command needs; a hard limit of "unlimited" is not taken literally.
            raised.rlim_cur = min(limit.rlim_max, 1 << 20)
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, rlim_t(Int.max)))
    }

    /// Packs one cache may keep open: what the soft limit leaves after Strata's own files, shared by the caches a
    /// restore or check runs at once (two per core and two more), between 1 and 64.
    static let packsPerCache: Int = {
        var limit = rlimit()
        let soft = getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 ? Int(min(limit.rlim_cur, 1 << 20)) : 1 << 20
        let caches = 2 + 2 * max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        return max(1, min(64, (soft - 32) / caches))
    }()

    #if canImport(Glibc)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #endif
}

/// The process's address-space limit (`ulimit -v`). Below a few hundred MiB the threads a snapshot or restore starts
/// cannot be created, and Dispatch then waits for them forever, deaf to Ctrl-C and SIGTERM (restore hung under
/// `ulimit -v 200000`, worked at 300000).
public enum AddressSpace {
    /// The least limit Strata runs with, in bytes.
    public static let minimumLimit: UInt64 = 512 << 20

    /// The soft limit in bytes, or nil when there is none.
    public static var limit: UInt64? {
        var l = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &l) == 0, l.rlim_cur != rlim_t.max else { return nil }
        return UInt64(l.rlim_cur)
    }
}

/// Room for the threads a command starts. A cgroup's task limit (`pids.max`) and `ulimit -u` count every thread, and
/// when Dispatch cannot create a thread a pipeline needs it waits for it forever, deaf to Ctrl-C and SIGTERM: under
/// `pids.max` 4 a snapshot hung, under 5 an import that re-chunks (two pipelines); under 6 every verb ran (measured on
/// 2 cores). What a pipeline waits for is its other stages (the cutting thread, the pack writer, the write-back
/// hints), not a worker per core, so more cores should not need more: a pool with fewer threads than cores is slower.
public enum TaskLimit {
    /// Threads beside the calling one that a command must be able to run at once.
    public static let threadsNeeded = 5

    /// Whether `count` threads can run at once beside the calling one, measured by starting them: each waits until
    /// all are started (or one could not be), then all are joined, so the tasks are free again on return:
    /// 0.2–0.5 ms (five threads started and joined, measured in C). Another process of the same cgroup may take tasks
    /// afterwards; this finds a limit set too low.
    public static func hasRoom(for count: Int = threadsNeeded) -> Bool {
        let release = DispatchSemaphore(value: 0)
        var threads: [pthread_t] = []
        for _ in 0..<count {
            guard let thread = SystemThread.start({ release.wait() }) else { break }
            threads.append(thread)
        }
        for _ in threads { release.signal() }
        for thread in threads { pthread_join(thread, nil) }
        return threads.count == count
    }
}
