#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call, on which path, with which `errno`.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// The name of the call, for example `fsync`.
    public let call: String
    /// The path the call acted on, when there is one.
    public let path: String?
    /// The `errno` value the call left behind.
    public let errno: Int32

    public init(call: String, path: String?, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// The C library's text for the error number.
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String {
        "'\(call)' failed: (\(errno)) \(reason)"
    }
}

/// Every error Strata's library reports. The `message` is the one line a user reads; `code` decides the exit status.
public struct StrataError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. The command line maps each code to one exit status.
    public enum Code: String, Sendable {
        /// The user asked for something that cannot be done as asked (bad flag value, bad name, target exists).
        case invalidArgument
        /// The path is not a Strata repository.
        case notARepository
        /// A snapshot, ref or file named by the user does not exist.
        case notFound
        /// A snapshot prefix matches several snapshots.
        case ambiguous
        /// Stored data is missing or does not verify.
        case damaged
        /// The repository was written by a format this build does not read.
        case unsupportedFormat
        /// The repository lock is held by another process.
        case lockBusy
        /// An operating system call failed (disk full, permission denied, I/O error).
        case io
        /// A state that cannot happen unless Strata has a bug.
        case internalError
        /// A protected or otherwise guarded object was not changed.
        case refused
        /// The passphrase is wrong or missing.
        case authentication
        /// A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the command; what it had not committed was removed.
        case interrupted
    }

    public let code: Code
    public let message: String
    public let cause: SystemCallError?
    /// What the failure left, told by the operation it stopped (`nothing was committed`), after the cause.
    public let outcome: String?

    public init(_ code: Code, _ message: String, cause: SystemCallError? = nil, outcome: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.outcome = outcome
    }

    public var description: String {
        var line = message
        if let cause { line += ": \(cause.reason)" }
        if let outcome { line += "; \(outcome)" }
        return line
    }

    static func io(_ what: String, _ cause: SystemCallError) -> StrataError {
        StrataError(.io, what, cause: cause)
    }

    /// Whether this process ran out of a resource (open files, memory) rather than meeting a fault in the data or the
    /// disk: never a verdict on the repository.
    var isOutOfResources: Bool { cause.map { Self.outOfResources.contains($0.errno) } ?? false }

    static func isOutOfResources(_ error: Error) -> Bool {
        if let e = error as? StrataError { return e.isOutOfResources }
        if let e = error as? SystemCallError { return outOfResources.contains(e.errno) }
        return false
    }

    private static let outOfResources: Set<Int32> = [EMFILE, ENFILE, ENOMEM]

    static func corrupt(_ what: String) -> StrataError {
        StrataError(.damaged, what)
    }

    static func bug(_ what: String) -> StrataError {
        assertionFailure(what)
        return StrataError(.internalError, "internal error (a bug in strata, please report it): \(what)")
    }
}
