import CZstd

/// A reusable zstd compression context. One per worker: not thread-safe, cheap to reuse.
final class ZstdCompressor {
    private let context: OpaquePointer
    let level: Int32

    /// The hash table size (log2 of its entries) used at level 3 (the default) instead of zstd's 2^17.
    static let levelThreeHashLog: Int32 = 16

    init(level: Int) {
        context = ZSTD_createCCtx()
        self.level = Int32(level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, self.level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 0)
        // Level 3 sizes its match finder for streams: a 2^17-entry hash table and a 2^16-entry chain table, 768 KiB
        // that do not fit beside a 1 MiB frame in one core's L2 cache. Strata compresses independent ~1 MiB
        // frames; with 2^16 hash entries the first snapshot of the benchmark image takes 2.53–2.66 s instead of
        // 2.68–2.99 and its packs grow 0.3% (488.8 MB instead of 487.3; increments +0.005 / +0.012 / +0.2 MB),
        // measured interleaved. Other levels keep zstd's own parameters. Readers are unaffected: decompression
        // needs no parameters.
        if level == 3 {
            ZSTD_CCtx_setParameter(context, ZSTD_c_hashLog, Self.levelThreeHashLog)
        }
    }

    deinit { ZSTD_freeCCtx(context) }

    static func bound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    /// Compresses `source` into `destination` (at least `bound(source.count)` bytes); returns the compressed size.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = ZSTD_compress2(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(n) != 0 {
            throw StrataError.bug("zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        return n
    }
}

/// A reusable zstd decompression context.
final class ZstdDecompressor {
    private let context: OpaquePointer

    init() { context = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one frame that must expand to exactly `destination.count` bytes.
    func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, what: String) throws {
        let n = ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(n) != 0 {
            throw StrataError.corrupt("\(what) does not decompress: \(String(cString: ZSTD_getErrorName(n)))")
        }
        if n != destination.count {
            throw StrataError.corrupt("\(what) decompresses to \(n) bytes, expected \(destination.count)")
        }
    }
}
