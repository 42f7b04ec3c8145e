import CStrataSignals
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT), SIGTERM (a cron job's `timeout`, a shutdown) and SIGHUP stop a long command cleanly instead of
/// killing it: after `catchSignals()`, the first such signal is only recorded, and the command stops at its next
/// check (a segment read, a map entry, an object copied, a blocked read of a pipe or wait for the lock), removes what
/// it had written and not committed, and reports what it left. A second signal ends the process at once.
public enum Interruption {
    /// Installs the handler (the command line does, for the verbs that write: snap, restore, gc, copy, export, import).
    public static func catchSignals() { strata_catch_interrupts() }

    /// Whether `catchSignals()` is in effect.
    public static var isCatching: Bool { strata_catching_interrupts() != 0 }

    /// Gives the signals back their default action (they end the process again).
    public static func releaseSignals() { strata_release_interrupts() }

    /// The first signal caught, if any.
    public static var signal: Int32? {
        let s = strata_interrupt_signal()
        return s == 0 ? nil : s
    }

    /// Whether a signal was caught (for work that cannot throw where it looks, such as a pool of workers).
    static var isInterrupted: Bool { strata_interrupt_signal() != 0 }

    /// Throws once a signal was caught.
    @inline(__always)
    static func check() throws {
        if strata_interrupt_signal() != 0 { throw interrupted() }
    }

    static func interrupted() -> StrataError {
        StrataError(.interrupted, "interrupted by \(name(signal ?? SIGINT))")
    }

    public static func name(_ s: Int32) -> String {
        switch s {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        default: return "signal \(s)"
        }
    }

    /// An error that stopped an operation part way, retold with what that left: an interruption as what it stopped
    /// (`snapshot of vm interrupted by SIGINT; nothing was committed`), a failed read or write or damage found on the
    /// way with the outcome after its cause (`cannot write pack …: No space left on device; nothing was committed`).
    /// Any other error (refused before anything was done) unchanged. The outermost operation's telling wins (a copy's
    /// snapshot retold as the copy, a copy into a bundle as the export). `failures: false` retells interruptions only,
    /// for an operation whose outcome holds only up to where it stops looking for signals.
    static func retell(_ error: Error, _ what: String, _ outcome: String, failures: Bool = true) -> Error {
        guard let e = error as? StrataError else { return error }
        switch e.code {
        case .interrupted:
            return StrataError(.interrupted, "\(what) interrupted by \(name(signal ?? SIGINT)); \(outcome)")
        case .io where failures, .damaged where failures:
            return StrataError(e.code, e.message, cause: e.cause, outcome: outcome)
        default:
            return error
        }
    }
}
