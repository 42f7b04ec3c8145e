import CGlibcExtras
import StrataCore

/// glibc allocator tuning for the work a repository brings.
enum Allocator {
    /// In a plain repository, buffers of 128 KiB and more are mapped and unmapped instead of kept in the heap:
    /// glibc otherwise raises that threshold after the first large free and holds freed buffers (measured: the
    /// first snapshot of the benchmark image peaks at 52 MiB instead of 62, at the same speed). An encrypted
    /// repository keeps glibc's default: there swift-crypto returns every sealed or opened frame in a new buffer,
    /// and mapping each afresh costs page faults (measured: fsck --read-data 1.16 s instead of 0.90 s, the first
    /// snapshot +0.3 s).
    static func tune(for repo: Repository) {
        if !repo.isEncrypted { mallopt(M_MMAP_THRESHOLD, 128 << 10) }
    }
}
