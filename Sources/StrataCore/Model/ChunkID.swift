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

    /// Recomputes the ids of several objects (a frame's, say): `object(i)` gives object i's bytes and kind, and
    /// `body(i, id)` receives its id, in order. The whole pages of all the chunks among them are hashed two at a time
    /// across chunk boundaries (a chunk of an odd number of pages would otherwise hash one page alone).
    static func objectIDs(count: Int, object: (Int) -> (bytes: UnsafeRawBufferPointer, kind: ObjectKind), scratch: ByteBuffer,
                          identity: IdentityScheme, _ body: (Int, ObjectID) throws -> Void) rethrows {
        var totalPages = 0
        for i in 0..<count {
            let (bytes, kind) = object(i)
            if kind == .chunk { totalPages += (bytes.count + pageSize - 1) / pageSize }
        }
        scratch.reserve(totalPages * 32)
        var waiting: (page: UnsafeRawPointer, digest: UnsafeMutableRawPointer)?
        var slot = 0
        for i in 0..<count {
            let (bytes, kind) = object(i)
            guard kind == .chunk, let base = bytes.baseAddress else { continue }
            var offset = 0
            while offset < bytes.count {
                let n = min(pageSize, bytes.count - offset)
                let page = base + offset, digest = scratch.base + slot * 32
                if n < pageSize {
                    hashPage(UnsafeRawBufferPointer(start: page, count: n), into: digest)
                } else if let w = waiting {
                    hashPagePair(w.page, page, into: w.digest, digest)
                    waiting = nil
                } else {
                    waiting = (page, digest)
                }
                offset += n
                slot += 1
            }
        }
        if let w = waiting { hashPage(UnsafeRawBufferPointer(start: w.page, count: pageSize), into: w.digest) }
        slot = 0
        for i in 0..<count {
            let (bytes, kind) = object(i)
            if kind == .chunk {
                let pages = (bytes.count + pageSize - 1) / pageSize
                try body(i, chunkID(pageDigests: UnsafeRawBufferPointer(start: scratch.base + slot * 32, count: pages * 32), identity: identity))
                slot += pages
            } else {
                try body(i, identity.id(bytes))
            }
        }
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
