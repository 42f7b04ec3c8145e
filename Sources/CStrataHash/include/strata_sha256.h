// SHA-256 with the x86 SHA extensions (SHA-NI), one message or two of the same length at once.
//
// One SHA-256 compression is a chain of dependent rounds, and SHA256RNDS2's latency, not its throughput, bounds a
// single message. Two independent messages in lockstep fill the gaps: on CPUs whose SHA unit is pipelined (AMD Zen,
// recent Intel) hashing two 4 KiB pages together costs little more than one. Strata hashes every page of an image,
// so pages are hashed in pairs. Callers must check strata_sha256_hw_available() first; elsewhere they use another
// SHA-256 implementation (the functions below are only defined for x86-64 and must not be called when it returns 0).
#ifndef STRATA_SHA256_H
#define STRATA_SHA256_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has the SHA extensions and SSE4.1 (and this build targets x86-64), else 0.
int strata_sha256_hw_available(void);

/// out = SHA-256(data[0..<length]) (32 bytes).
void strata_sha256_hw(const void *data, size_t length, uint8_t *out);

/// outA = SHA-256(a[0..<length]), outB = SHA-256(b[0..<length]): two messages of the same length hashed together.
void strata_sha256_hw_x2(const void *a, const void *b, size_t length, uint8_t *outA, uint8_t *outB);

#endif
