import Crypto

/// How chunk ids are computed (`sha256-pages`): SHA-256 of each 4 KiB page (the last page may be shorter),
/// then SHA-256 over those 32-byte page digests in order. Hashing each page once yields both the chunker's cut
/// decision and the id. Only this type knows the formula; everything else treats ids as opaque.
enum ChunkHasher {
    static let pageSize = 4096

    /// Writes the SHA-256 of one page to `out` (32 bytes).
    @inline(__always)
    static func hashPage(_ page: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        FastSHA256.hash(page, into: out)
    }

    /// Writes the SHA-256 of two whole pages to `outA` and `outB` (hashed together: see `FastSHA256`).
    @inline(__always)
    static func hashPagePair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer,
                             into outA: UnsafeMutableRawPointer, _ outB: UnsafeMutableRawPointer) {
        FastSHA256.hashPair(a, b, count: pageSize, into: outA, outB)
    }

    /// The chunk id from its consecutive page digests: SHA-256 over them, or HMAC-SHA256 under the repository's id
    /// key in an encrypted repository.
    @inline(__always)
    static func chunkID(pageDigests: UnsafeRawBufferPointer, identity: IdentityScheme) -> ObjectID {
        identity.id(pageDigests)
    }

    /// Recomputes any stored object's id from its bytes: a chunk's from its pages, a map node's from its encoding.
    static func objectID(of bytes: UnsafeRawBufferPointer, kind: ObjectKind, scratch: ByteBuffer, identity: IdentityScheme) -> ObjectID {
        kind == .chunk ? chunkID(of: bytes, scratch: scratch, identity: identity) : identity.id(bytes)
    }

    /// Recomputes a chunk's id from its bytes (restore and fsck verify with it).
    static func chunkID(of bytes: UnsafeRawBufferPointer, scratch: ByteBuffer, identity: IdentityScheme) -> ObjectID {
        let pages = (bytes.count + pageSize - 1) / pageSize
        scratch.reserve(pages * 32)
        if let base = bytes.baseAddress {
            FastSHA256.hashPages(base, count: bytes.count, pageSize: pageSize, into: scratch.base)
        }
        return chunkID(pageDigests: UnsafeRawBufferPointer(start: scratch.base, count: pages * 32), identity: identity)
    }
}
