import CGlibcExtras

/// Keeps the secrets a process holds (a passphrase, the keys it unseals) out of what leaves the process by accident.
///
/// Swift gives no control over copies of a string or an array, so key bytes cannot be reliably zeroed after use, and
/// locking them in memory (`mlock`) covers only the buffers Strata allocates itself. What leaks them in practice is a
/// core file (a crash of a nightly job under a system that keeps cores) and another process of the same user reading
/// this one's memory; both end when the process is not dumpable, as ssh-agent and gpg-agent make themselves.
public enum SecretMemory {
    /// Marks the process not dumpable (`prctl(PR_SET_DUMPABLE, 0)`) for the rest of its life: a crash leaves no core
    /// file, and processes of the same user (root excepted) can neither ptrace it nor read its memory through
    /// `/proc`. Called before any passphrase is read. Harmless to call again; a failure (not Linux) is ignored.
    public static func keepOutOfCoreDumps() {
        _ = strata_set_undumpable()
    }
}
