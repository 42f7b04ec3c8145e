// SHA-256 (FIPS 180-4) on the x86 SHA extensions. See include/strata_sha256.h for why two messages at once.
//
// Register layout, as SHA256RNDS2 wants it: the state lives in two vectors, ABEF (A in the highest lane) and CDGH.
// One SHA256RNDS2 does two rounds: given CDGH, ABEF and two message-plus-constant words, it returns the new ABEF; the
// old ABEF is then the new CDGH (after two rounds C, D, G, H are the old A, B, E, F). So four rounds are two calls
// with the vectors' roles swapped, and the names are right again afterwards (ROUNDS4).
// The message schedule, four words at a time: with M[i] = W[4i..4i+3],
//   M[i] = SHA256MSG2(SHA256MSG1(M[i-4], M[i-3]) + (W[4i-7..4i-4] = ALIGNR(M[i-1], M[i-2], 4 bytes)), M[i-1]).
#include "strata_sha256.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define STRATA_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t initialState[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static const uint32_t roundConstants[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

int strata_sha256_hw_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

// Each 32-bit word's bytes reversed: message words and digest words are big-endian.
#define BSWAP32_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

#define LOAD_WORDS(p, offset) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + (offset))), BSWAP32_MASK)

// Four rounds with message words w and round constants k[0..3].
#define ROUNDS4(abef, cdgh, w, k)                                                                                  \
    do {                                                                                                           \
        __m128i wk_ = _mm_add_epi32((w), _mm_load_si128((const __m128i *)(k)));                                    \
        (cdgh) = _mm_sha256rnds2_epu32((cdgh), (abef), wk_);                                                       \
        wk_ = _mm_shuffle_epi32(wk_, 0x0E);                                                                        \
        (abef) = _mm_sha256rnds2_epu32((abef), (cdgh), wk_);                                                       \
    } while (0)

// m0 = M[i-4] becomes M[i], given m1 = M[i-3], m2 = M[i-2], m3 = M[i-1].
#define SCHEDULE(m0, m1, m2, m3)                                                                                   \
    (m0) = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), _mm_alignr_epi8((m3), (m2), 4)), (m3))

STRATA_SHA_TARGET static inline void loadState(const uint32_t s[8], __m128i *abef, __m128i *cdgh) {
    __m128i dcba = _mm_loadu_si128((const __m128i *)&s[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&s[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    *abef = _mm_alignr_epi8(cdab, efgh, 8);
    *cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
}

STRATA_SHA_TARGET static inline void storeDigest(__m128i abef, __m128i cdgh, uint8_t *out) {
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, BSWAP32_MASK));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, BSWAP32_MASK));
}

STRATA_SHA_TARGET static void compress1(__m128i *abef, __m128i *cdgh, const uint8_t *p, size_t blocks) {
    __m128i s0 = *abef, s1 = *cdgh;
    for (; blocks > 0; blocks--, p += 64) {
        const __m128i save0 = s0, save1 = s1;
        __m128i m0 = LOAD_WORDS(p, 0), m1 = LOAD_WORDS(p, 16), m2 = LOAD_WORDS(p, 32), m3 = LOAD_WORDS(p, 48);
        ROUNDS4(s0, s1, m0, &roundConstants[0]);
        ROUNDS4(s0, s1, m1, &roundConstants[4]);
        ROUNDS4(s0, s1, m2, &roundConstants[8]);
        ROUNDS4(s0, s1, m3, &roundConstants[12]);
        for (int i = 16; i < 64; i += 16) {
            SCHEDULE(m0, m1, m2, m3);
            ROUNDS4(s0, s1, m0, &roundConstants[i]);
            SCHEDULE(m1, m2, m3, m0);
            ROUNDS4(s0, s1, m1, &roundConstants[i + 4]);
            SCHEDULE(m2, m3, m0, m1);
            ROUNDS4(s0, s1, m2, &roundConstants[i + 8]);
            SCHEDULE(m3, m0, m1, m2);
            ROUNDS4(s0, s1, m3, &roundConstants[i + 12]);
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }
    *abef = s0;
    *cdgh = s1;
}

// The same as compress1 on two messages, statement by statement, so that each lane's rounds run in the other's
// latency shadow.
STRATA_SHA_TARGET static void compress2(__m128i *abefA, __m128i *cdghA, __m128i *abefB, __m128i *cdghB,
                                        const uint8_t *p, const uint8_t *q, size_t blocks) {
    __m128i sa0 = *abefA, sa1 = *cdghA, sb0 = *abefB, sb1 = *cdghB;
    for (; blocks > 0; blocks--, p += 64, q += 64) {
        const __m128i savea0 = sa0, savea1 = sa1, saveb0 = sb0, saveb1 = sb1;
        __m128i a0 = LOAD_WORDS(p, 0), a1 = LOAD_WORDS(p, 16), a2 = LOAD_WORDS(p, 32), a3 = LOAD_WORDS(p, 48);
        __m128i b0 = LOAD_WORDS(q, 0), b1 = LOAD_WORDS(q, 16), b2 = LOAD_WORDS(q, 32), b3 = LOAD_WORDS(q, 48);
        ROUNDS4(sa0, sa1, a0, &roundConstants[0]);
        ROUNDS4(sb0, sb1, b0, &roundConstants[0]);
        ROUNDS4(sa0, sa1, a1, &roundConstants[4]);
        ROUNDS4(sb0, sb1, b1, &roundConstants[4]);
        ROUNDS4(sa0, sa1, a2, &roundConstants[8]);
        ROUNDS4(sb0, sb1, b2, &roundConstants[8]);
        ROUNDS4(sa0, sa1, a3, &roundConstants[12]);
        ROUNDS4(sb0, sb1, b3, &roundConstants[12]);
        for (int i = 16; i < 64; i += 16) {
            SCHEDULE(a0, a1, a2, a3);
            SCHEDULE(b0, b1, b2, b3);
            ROUNDS4(sa0, sa1, a0, &roundConstants[i]);
            ROUNDS4(sb0, sb1, b0, &roundConstants[i]);
            SCHEDULE(a1, a2, a3, a0);
            SCHEDULE(b1, b2, b3, b0);
            ROUNDS4(sa0, sa1, a1, &roundConstants[i + 4]);
            ROUNDS4(sb0, sb1, b1, &roundConstants[i + 4]);
            SCHEDULE(a2, a3, a0, a1);
            SCHEDULE(b2, b3, b0, b1);
            ROUNDS4(sa0, sa1, a2, &roundConstants[i + 8]);
            ROUNDS4(sb0, sb1, b2, &roundConstants[i + 8]);
            SCHEDULE(a3, a0, a1, a2);
            SCHEDULE(b3, b0, b1, b2);
            ROUNDS4(sa0, sa1, a3, &roundConstants[i + 12]);
            ROUNDS4(sb0, sb1, b3, &roundConstants[i + 12]);
        }
        sa0 = _mm_add_epi32(sa0, savea0);
        sa1 = _mm_add_epi32(sa1, savea1);
        sb0 = _mm_add_epi32(sb0, saveb0);
        sb1 = _mm_add_epi32(sb1, saveb1);
    }
    *abefA = sa0;
    *cdghA = sa1;
    *abefB = sb0;
    *cdghB = sb1;
}

// The padded end of a message: its last length % 64 bytes, 0x80, zeros, and the length in bits (big-endian) in
// the last 8 bytes of one or two blocks. Returns the number of blocks.
static size_t padTail(const uint8_t *message, size_t length, uint8_t tail[128]) {
    size_t rest = length % 64;
    size_t blocks = rest + 9 <= 64 ? 1 : 2;
    memset(tail, 0, 128);
    if (rest > 0) memcpy(tail, message + (length - rest), rest);
    tail[rest] = 0x80;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) tail[blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    return blocks;
}

STRATA_SHA_TARGET void strata_sha256_hw(const void *data, size_t length, uint8_t *out) {
    const uint8_t *p = data;
    __m128i abef, cdgh;
    loadState(initialState, &abef, &cdgh);
    compress1(&abef, &cdgh, p, length / 64);
    uint8_t tail[128];
    size_t blocks = padTail(p, length, tail);
    compress1(&abef, &cdgh, tail, blocks);
    storeDigest(abef, cdgh, out);
}

STRATA_SHA_TARGET void strata_sha256_hw_x2(const void *a, const void *b, size_t length, uint8_t *outA, uint8_t *outB) {
    const uint8_t *p = a, *q = b;
    __m128i abefA, cdghA, abefB, cdghB;
    loadState(initialState, &abefA, &cdghA);
    abefB = abefA;
    cdghB = cdghA;
    compress2(&abefA, &cdghA, &abefB, &cdghB, p, q, length / 64);
    uint8_t tailA[128], tailB[128];
    size_t blocks = padTail(p, length, tailA);
    padTail(q, length, tailB);
    compress2(&abefA, &cdghA, &abefB, &cdghB, tailA, tailB, blocks);
    storeDigest(abefA, cdghA, outA);
    storeDigest(abefB, cdghB, outB);
}

#else

// Not x86-64: strata_sha256_hw_available() says 0 and callers hash with their portable SHA-256; these are never
// reached, and stop the program if they are.
int strata_sha256_hw_available(void) { return 0; }
void strata_sha256_hw(const void *data, size_t length, uint8_t *out) { (void)data; (void)length; (void)out; __builtin_trap(); }
void strata_sha256_hw_x2(const void *a, const void *b, size_t length, uint8_t *outA, uint8_t *outB) {
    (void)a; (void)b; (void)length; (void)outA; (void)outB;
    __builtin_trap();
}

#endif
