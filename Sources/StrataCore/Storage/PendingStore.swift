import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A snapshot in progress, as its journal in `pending/<token>` records it.
public struct PendingSnapshot: Codable, Sendable, Equatable {
    public var token: String
    public var volume: String
    public var source: String
    public var startedAt: String
    public var pid: Int32
    public var host: String
    /// Bytes of the source read so far, and its size when known.
    public var bytesDone: Int64
    public var totalBytes: Int64?
    /// New data found so far (uncompressed).
    public var newBytes: Int64
    /// Set by the reader: true while the process that writes it is alive (it holds `pending/<token>.lock`).
    public var alive: Bool = false

    enum CodingKeys: String, CodingKey { case token, volume, source, startedAt, pid, host, bytesDone, totalBytes, newBytes }
}

/// Journals of snapshots in progress. A running `snap` holds an exclusive `flock` on `pending/<token>.lock` for its
/// whole life; when it dies, the kernel releases it, so a journal whose lock can be taken belongs to a failed
/// snapshot (its packs are garbage that `gc` removes, with the journal). `pending/<token>.cancel` asks a running
/// snapshot to stop.
public struct PendingStore {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    var directory: String { FileSystem.join(repo.path, "pending") }
    private func journalPath(_ token: String) -> String { FileSystem.join(directory, token) }
    private func lockPath(_ token: String) -> String { FileSystem.join(directory, token + ".lock") }
    private func cancelPath(_ token: String) -> String { FileSystem.join(directory, token + ".cancel") }

    static func isToken(_ s: String) -> Bool { s.utf8.count == 16 && Hex.isHex(Substring(s)) }

    /// Every readable journal, with `alive` set from its lock.
    public func all() throws -> [PendingSnapshot] {
        try journals().readable
    }

    /// Journals that cannot be read, opened or decoded (damaged on disk, or not written by Strata), by token, with
    /// whether a process still holds their lock.
    public func unreadable() throws -> [(token: String, alive: Bool)] {
        try journals().unreadable
    }

    private func journals() throws -> (readable: [PendingSnapshot], unreadable: [(token: String, alive: Bool)]) {
        var readable: [PendingSnapshot] = []
        var unreadable: [(token: String, alive: Bool)] = []
        for name in try wrap(try FileSystem.list(directory), "cannot list \(directory)") where Self.isToken(name) {
            // Only regular files are journals (a directory or symlink with a token's name is not Strata's).
            guard (try? FileSystem.linkStatus(journalPath(name)))??.isRegularFile == true else { continue }
            guard let stored = try? FileSystem.readFile(journalPath(name), limit: 1 << 20),
                  let bytes = try? repo.sealer.open(stored, .journal, context: name, what: "journal"),
                  var p = try? JSONDecoder().decode(PendingSnapshot.self, from: Data(bytes)), p.token == name else {
                unreadable.append((name, isAlive(name)))
                continue
            }
            p.alive = isAlive(name)
            readable.append(p)
        }
        return (readable.sorted { $0.startedAt > $1.startedAt }, unreadable.sorted { $0.token < $1.token })
    }

    /// True when a process holds the journal's lock.
    func isAlive(_ token: String) -> Bool {
        let fd = open(lockPath(token), O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }

    /// Starts a journal for a new snapshot unless `limit` snapshots are already running.
    func begin(volume: String, source: String, totalBytes: Int64?, limit: Int) throws -> PendingJournal {
        try wrap(try FileSystem.makeDirectory(directory), "cannot create \(directory)")
        // Count and register under one lock, so that two snapshots starting at once cannot both pass the limit.
        let gatePath = FileSystem.join(directory, ".lock")
        let gate = open(gatePath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard gate >= 0 else { throw StrataError.io("cannot open \(gatePath)", SystemCallError(call: "open", path: gatePath, errno: errno)) }
        defer { close(gate) }
        while flock(gate, LOCK_EX) != 0 && errno == EINTR {}
        let running = try all().filter(\.alive).count
        if running >= limit {
            throw StrataError(.lockBusy, "concurrent snapshot limit reached (\(running) in progress; the limit is \(limit))")
        }
        let token = String(RandomName.make().prefix(16))
        let lock = open(lockPath(token), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw StrataError.io("cannot create a pending journal", SystemCallError(call: "open", path: lockPath(token), errno: errno)) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw StrataError.bug("a new pending lock is held by someone else")
        }
        let journal = PendingJournal(store: self, lockFD: lock,
                                     state: PendingSnapshot(token: token, volume: volume, source: source,
                                                            startedAt: Timestamp.format(Date()), pid: getpid(), host: Labels.hostName(),
                                                            bytesDone: 0, totalBytes: totalBytes, newBytes: 0))
        try journal.write()
        return journal
    }

    /// Asks a running snapshot to stop, or removes the journal of a failed one. Returns true when it was running.
    @discardableResult
    public func cancel(_ token: String) throws -> Bool {
        guard Self.isToken(token), FileSystem.exists(journalPath(token)) else {
            throw StrataError(.notFound, "pending snapshot '\(token)' does not exist")
        }
        if isAlive(token) {
            try wrap(try AtomicFile.write([], to: cancelPath(token), tmpDirectory: repo.tmpPath), "cannot cancel \(token)")
            // The snapshot may have finished (and removed its journal) between the check and the write: then the
            // request reaches no one, and is taken back.
            if !FileSystem.exists(journalPath(token)) { try? FileSystem.remove(cancelPath(token)) }
            return true
        }
        try removeJournal(token)
        return false
    }

    func cancelRequested(_ token: String) -> Bool { FileSystem.exists(cancelPath(token)) }

    func write(_ state: PendingSnapshot) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try wrap(try AtomicFile.write(try repo.sealer.seal(Array(try encoder.encode(state)) + [0x0a], .journal, context: state.token), to: journalPath(state.token), tmpDirectory: repo.tmpPath),
                 "cannot write the pending journal")
    }

    func removeJournal(_ token: String) throws {
        try wrap({
            try FileSystem.remove(journalPath(token))
            try FileSystem.remove(cancelPath(token))
            try FileSystem.remove(lockPath(token))
            try FileSystem.syncDirectory(directory)
        }(), "cannot remove the pending journal \(token)")
    }

    /// Removes the journals of failed snapshots, and unreadable journals no running process holds (called by gc
    /// under the exclusive lock). Returns how many.
    func removeFailed() throws -> Int {
        var n = 0
        let (readable, unreadable) = try journals()
        for token in readable.filter({ !$0.alive }).map(\.token) + unreadable.filter({ !$0.alive }).map(\.token) {
            try removeJournal(token)
            n += 1
        }
        // Lock files whose journal was never written, and cancel requests whose snapshot ended before seeing them.
        for name in (try? FileSystem.list(directory)) ?? [] where name.hasSuffix(".lock") && name != ".lock" {
            let token = String(name.dropLast(5))
            if !FileSystem.exists(journalPath(token)) && !isAlive(token) { try? FileSystem.remove(lockPath(token)) }
        }
        for name in (try? FileSystem.list(directory)) ?? [] where name.hasSuffix(".cancel") {
            let token = String(name.dropLast(7))
            if Self.isToken(token) && !FileSystem.exists(journalPath(token)) { try? FileSystem.remove(cancelPath(token)) }
        }
        return n
    }
}

/// The journal a running snapshot keeps: progress updates, cancellation, and removal when it completes.
final class PendingJournal {
    private let store: PendingStore
    private let lockFD: Int32
    private(set) var state: PendingSnapshot
    private var lastWrite = ContinuousClock.now

    init(store: PendingStore, lockFD: Int32, state: PendingSnapshot) {
        self.store = store
        self.lockFD = lockFD
        self.state = state
    }

    deinit { close(lockFD) }

    var token: String { state.token }

    func write() throws { try store.write(state) }

    /// Records progress (at most once a second) and stops the snapshot when `rm` asked for it.
    func progress(done: Int64, newBytes: Int64) throws {
        try Interruption.check()
        state.bytesDone = done
        state.newBytes = newBytes
        guard ContinuousClock.now - lastWrite > .seconds(1) else { return }
        lastWrite = ContinuousClock.now
        try checkCancelled()
        try write()
    }

    /// Stops the snapshot when `rm` asked for it.
    func checkCancelled() throws {
        if store.cancelRequested(state.token) {
            throw StrataError(.refused, "snapshot of \(state.volume) was cancelled by 'strata rm \(state.token)'")
        }
    }

    /// Removes the journal (after the manifest is durable, or after a failure was cleaned up).
    func finish() {
        try? store.removeJournal(state.token)
    }
}
