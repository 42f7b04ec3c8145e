import ArgumentParser
import StrataCore
#if canImport(Glibc)
import Glibc
#endif

/// The exit statuses of `strata`, documented in docs/CLI.md. One place maps errors to them.
enum ExitStatus: Int32 {
    case success = 0
    /// An operation failed: I/O error, refused action, internal error.
    case failure = 1
    /// The command line was wrong: unknown flag, bad value, missing argument.
    case usage = 2
    /// A snapshot, ref, file or repository was not found, or a snapshot prefix is ambiguous.
    case notFound = 3
    /// Stored data is damaged (fsck found problems, or a restore met a chunk that does not verify).
    case damaged = 4
    /// The repository lock is held by another process.
    case lockBusy = 5
    /// The repository was written by a format this strata does not read.
    case unsupportedFormat = 6
    /// The passphrase of an encrypted repository is wrong or missing.
    case authentication = 7

    static func of(_ error: StrataError) -> ExitStatus {
        switch error.code {
        case .invalidArgument: return .usage
        case .notARepository, .notFound, .ambiguous: return .notFound
        case .damaged: return .damaged
        case .lockBusy: return .lockBusy
        case .unsupportedFormat: return .unsupportedFormat
        case .authentication: return .authentication
        case .io, .internalError, .refused: return .failure
        case .interrupted: return .failure  // the process exits 128 + the signal instead (`exitStatus(of:)`)
        }
    }
}

/// The exit status for an error: an interrupted command exits as a process killed by its signal would (130 for
/// Ctrl-C, 143 for SIGTERM), so that shells and cron wrappers see the usual status; every other error by its code.
func exitStatus(of error: StrataError) -> Int32 {
    if error.code == .interrupted { return 128 + (Interruption.signal ?? SIGINT) }
    return ExitStatus.of(error).rawValue
}
