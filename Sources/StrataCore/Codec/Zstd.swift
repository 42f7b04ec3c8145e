import CZstd

/// A reusable zstd compression context. One per worker: not thread-safe, cheap to reuse.
final class ZstdCompressor {
    private let context: OpaquePointer
    let level: Int32

    init(level: Int) {
        context = ZSTD_createCCtx()
        self.level = Int32(level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, self.level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 0)
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
