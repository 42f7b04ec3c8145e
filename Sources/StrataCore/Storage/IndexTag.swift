/// A 128-bit stand-in for a 256-bit object id inside the in-memory index: SipHash-2-4 with 128-bit output
/// (Aumasson and Bernstein, the reference `siphash.c` with `outlen == 16`) of the id under a key drawn from the
/// system's random generator each time an index is made, and never stored.
///
/// Why a keyed tag and not the id's first 16 bytes: ids are chosen by whoever writes the image (in a plain
/// repository an id is the SHA-256 of the data), so two chunks whose ids share a 128-bit prefix can be forged with
/// ~2^64 hash evaluations, and the index would then answer "stored" for a chunk it does not hold. Under a secret key
/// no one can aim at a collision: two different ids share a tag with probability 2^-128, and a whole run that looks up
/// `p` ids in an index of `n` objects meets a false match with probability at most p·n/2^128 (~2^-76 for 1 TB of
/// unique data looked up in full against itself).
struct IndexTag: Hashable, Comparable, Sendable {
    var hi: UInt64
    var lo: UInt64

    static func < (a: IndexTag, b: IndexTag) -> Bool { a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo }
}

/// Computes `IndexTag`s under one secret key.
struct IndexTagger: Sendable {
    let k0: UInt64
    let k1: UInt64

    init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A tagger with a fresh key from the system's random generator.
    static func random() -> IndexTagger {
        var rng = SystemRandomNumberGenerator()
        return IndexTagger(k0: rng.next(), k1: rng.next())
    }

    /// The tag of an id: SipHash-2-4-128 of its 32 bytes, taken as the four words in order (each word as the
    /// little-endian 8 bytes of its value; any fixed one-to-one encoding serves, the key is never stored).
    @inline(__always) func tag(of id: ObjectID) -> IndexTag {
        var s = State(k0: k0, k1: k1)
        s.absorb(id.w0)
        s.absorb(id.w1)
        s.absorb(id.w2)
        s.absorb(id.w3)
        return s.finish(length: 32)
    }

    /// SipHash-2-4-128 of any bytes, for tests against the reference vectors. Returns the 16 output bytes.
    func sipHash128(_ bytes: [UInt8]) -> [UInt8] {
        var s = State(k0: k0, k1: k1)
        var i = 0
        while i + 8 <= bytes.count {
            var m: UInt64 = 0
            for j in 0..<8 { m |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
            s.absorb(m)
            i += 8
        }
        var last: UInt64 = 0
        for j in 0..<(bytes.count - i) { last |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
        let t = s.finish(length: bytes.count, tail: last)
        var out: [UInt8] = []
        for word in [t.hi, t.lo] { for j in 0..<8 { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(j)))) } }
        return out
    }

    private struct State {
        var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64

        @inline(__always) init(k0: UInt64, k1: UInt64) {
            v0 = 0x736f_6d65_7073_6575 ^ k0
            v1 = 0x646f_7261_6e64_6f6d ^ k1 ^ 0xee
            v2 = 0x6c79_6765_6e65_7261 ^ k0
            v3 = 0x7465_6462_7974_6573 ^ k1
        }

        @inline(__always) mutating func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }

        @inline(__always) mutating func absorb(_ m: UInt64) {
            v3 ^= m
            round(); round()
            v0 ^= m
        }

        /// The last block (length byte and the 0–7 bytes left over), then the two 64-bit halves of the output.
        @inline(__always) mutating func finish(length: Int, tail: UInt64 = 0) -> IndexTag {
            let b = UInt64(truncatingIfNeeded: length) << 56 | tail
            absorb(b)
            v2 ^= 0xee
            round(); round(); round(); round()
            let first = v0 ^ v1 ^ v2 ^ v3
            v1 ^= 0xdd
            round(); round(); round(); round()
            return IndexTag(hi: first, lo: v0 ^ v1 ^ v2 ^ v3)
        }
    }
}

private extension UInt64 {
    @inline(__always) func rotatedLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
