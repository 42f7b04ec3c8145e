import Crypto

/// How chunk ids are computed (`sha256-pages`): SHA-256 of each 4 KiB page (the last page may be shorter),
/// then SHA-256 over those 32-byte page digests in order. Hashing each page once yields both the chunker's cut
/// decision and the id. Only this type knows the formula; everything else treats ids as opaque.
enum ChunkHasher {
    static let pageSize = 4096

    /// Computes page digests (SHA-256 of each page) as pages come, two at a time where it can.
    @inline(__always)
    static func pageDigester() -> PagePairHasher { PagePairHasher(pageSize: pageSize) }

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
        var pairs = pageDigester()
        var slot = 0
        for i in 0..<count {
            let (bytes, kind) = object(i)
            guard kind == .chunk, let base = bytes.baseAddress else { continue }
            var offset = 0
            while offset < bytes.count {
                let n = min(pageSize, bytes.count - offset)
                pairs.add(base + offset, count: n, digest: scratch.base + slot * 32)
                offset += n
                slot += 1
            }
        }
        pairs.finish()
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
        var id = ObjectID.zero
        objectIDs(count: 1, object: { _ in (bytes, .chunk) }, scratch: scratch, identity: identity) { _, computed in id = computed }
        return id
    }
}
