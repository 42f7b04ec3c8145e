import CStrataHash
import Crypto

/// SHA-256 on the hot paths (every page of an image is hashed when it is snapshotted, restored or checked).
///
/// On x86-64 CPUs with the SHA extensions it uses Strata's own SHA-NI code (`CStrataHash`), which hashes two
/// pages at once: one message's rounds wait on the SHA unit's latency, two fill it (on this project's AMD EPYC
/// build machine, one core hashes 4 KiB pages at 3.5 GB/s two at a time against 1.8 GB/s one at a time; see
/// docs/BENCHMARKS.md). Elsewhere it is swift-crypto's SHA-256. Both compute the same function (FIPS 180-4); the
/// tests compare them on every length up to two pages and on random pages.
enum FastSHA256 {
    /// Whether this process hashes with the CPU's SHA extensions.
    static let usesHardware: Bool = strata_sha256_hw_available() != 0

    /// Writes SHA-256(`bytes`) to `out` (32 bytes).
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        if usesHardware {
            strata_sha256_hw(bytes.baseAddress, bytes.count, out.assumingMemoryBound(to: UInt8.self))
        } else {
            portableHash(bytes, into: out)
        }
    }

    /// Writes SHA-256 of `count` bytes at `a` to `outA` and of `count` bytes at `b` to `outB`.
    @inline(__always)
    static func hashPair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int,
                         into outA: UnsafeMutableRawPointer, _ outB: UnsafeMutableRawPointer) {
        if usesHardware {
            strata_sha256_hw_x2(a, b, count, outA.assumingMemoryBound(to: UInt8.self), outB.assumingMemoryBound(to: UInt8.self))
        } else {
            portableHash(UnsafeRawBufferPointer(start: a, count: count), into: outA)
            portableHash(UnsafeRawBufferPointer(start: b, count: count), into: outB)
        }
    }

    /// swift-crypto's SHA-256: the path on CPUs without the SHA extensions, and the tests' reference.
    static func portableHash(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        var h = SHA256()
        h.update(bufferPointer: bytes)
        h.finalize().withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: 32) }
    }
}

/// Hashes pages as they come, two whole pages at a time (`FastSHA256.hashPair`): a whole page waits for the next
/// one, a short page is hashed at once, and `finish` hashes a page still waiting. Each digest goes where `add` says;
/// the pages must stay in place until their digests are written.
struct PagePairHasher {
    let pageSize: Int
    private var waiting: (page: UnsafeRawPointer, digest: UnsafeMutableRawPointer)?

    init(pageSize: Int) { self.pageSize = pageSize }

    @inline(__always)
    mutating func add(_ page: UnsafeRawPointer, count: Int, digest: UnsafeMutableRawPointer) {
        if count < pageSize {
            FastSHA256.hash(UnsafeRawBufferPointer(start: page, count: count), into: digest)
        } else if let w = waiting {
            FastSHA256.hashPair(w.page, page, count: pageSize, into: w.digest, digest)
            waiting = nil
        } else {
            waiting = (page, digest)
        }
    }

    /// Hashes the page still waiting for a second, if any.
    mutating func finish() {
        guard let w = waiting else { return }
        FastSHA256.hash(UnsafeRawBufferPointer(start: w.page, count: pageSize), into: w.digest)
        waiting = nil
    }
}
