import FoundationEssentials

/// Failures injected into the system-call layer by tests (disk full, I/O errors), scoped to paths under a prefix so
/// that tests running in parallel do not disturb each other. Inactive (one relaxed load per call) unless a test
/// installs a rule.
enum FaultInjection {
    struct Rule {
        /// Only files whose path starts with this.
        var pathPrefix: String
        /// `write` (pwrite/write), `fsync`, `rename`, `unlink`, or `*` for every one of them: a crash point, after
        /// which everything fails as if the process had died at that instant. `mkdir` (not a crash point) fails
        /// directory creation, as on a file system mounted read-only. `read` fails positioned reads (a bad
        /// sector, a disk gone) once `allowance` bytes were read. `eof` makes positioned reads end at `allowance`
        /// bytes, as if the file had shrunk to that size after it was opened (errno unused).
        var call: String
        /// The errno to fail with.
        var errno: Int32
        /// Bytes (for writes), or calls (for fsync and `*`), that still succeed before calls start failing.
        var allowance: Int64
        /// Only the first call past the allowance fails; every later one succeeds (a passing I/O error, after which
        /// the operation's clean-up runs, where a crash point stops everything).
        var once = false
        /// Set when a `once` rule has failed its call.
        var fired = false
    }

    nonisolated(unsafe) private static var active = false
    nonisolated(unsafe) private static var rules: [Rule] = []
    private static let lock = Lock()

    static func install(_ rule: Rule) {
        lock.lock()
        rules.append(rule)
        active = true
        lock.unlock()
    }

    static func remove(pathPrefix: String) {
        lock.lock()
        rules.removeAll { $0.pathPrefix == pathPrefix }
        active = !rules.isEmpty
        lock.unlock()
    }

    /// True once a `once` rule for `pathPrefix` has failed its call.
    static func hasFired(pathPrefix: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return rules.contains { $0.pathPrefix == pathPrefix && $0.fired }
    }

    /// Where positioned reads of `path` must end, if an `eof` rule says so.
    @inline(__always)
    static func endOfFile(path: String) -> Int64? {
        guard active else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return rules.first { $0.call == "eof" && path.hasPrefix($0.pathPrefix) }?.allowance
    }

    /// The errno a call on `path` of `bytes` must fail with, if a rule says so.
    @inline(__always)
    static func check(_ call: String, path: String, bytes: Int) -> Int32? {
        guard active else { return nil }
        lock.lock()
        defer { lock.unlock() }
        // A crash point counts the calls that change something; reads do not move it.
        for i in rules.indices where (rules[i].call == call || (rules[i].call == "*" && call != "read" && call != "mkdir")) && path.hasPrefix(rules[i].pathPrefix) {
            // A crash point counts calls; a disk-full rule counts bytes.
            let cost = rules[i].call == "*" ? 1 : Int64(max(bytes, 1))
            if rules[i].allowance >= cost {
                rules[i].allowance -= cost
                return nil
            }
            if rules[i].once {
                if rules[i].fired { return nil }
                rules[i].fired = true
            }
            return rules[i].errno
        }
        return nil
    }
}
