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

    /// Hashes `count` bytes at `base` as consecutive pages of `pageSize` bytes (the last may be shorter), writing
    /// each page's 32-byte digest in order to `out`.
    static func hashPages(_ base: UnsafeRawPointer, count: Int, pageSize: Int, into out: UnsafeMutableRawPointer) {
        let whole = count / pageSize
        var i = 0
        while i + 1 < whole {
            hashPair(base + i * pageSize, base + (i + 1) * pageSize, count: pageSize, into: out + i * 32, out + (i + 1) * 32)
            i += 2
        }
        if i < whole {
            hash(UnsafeRawBufferPointer(start: base + i * pageSize, count: pageSize), into: out + i * 32)
            i += 1
        }
        if whole * pageSize < count {
            hash(UnsafeRawBufferPointer(start: base + whole * pageSize, count: count - whole * pageSize), into: out + whole * 32)
        }
    }

    /// swift-crypto's SHA-256: the path on CPUs without the SHA extensions, and the tests' reference.
    static func portableHash(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        var h = SHA256()
        h.update(bufferPointer: bytes)
        h.finalize().withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: 32) }
    }
}
