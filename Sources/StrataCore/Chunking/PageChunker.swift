/// Decides where chunks end, one page at a time, from the page's SHA-256 (already computed for the chunk id).
///
/// `cdc`: after a page, with `n` pages in the chunk, cut when `n ≥ maxPages`, or when `n ≥ minPages` and either the
/// first 8 bytes of the page digest (big-endian) are below `threshold`, or the page ends in 64 zero bytes (the
/// zero-padded tail of a file: a natural boundary that re-synchronises after files move).
/// `fixed`: cut when the page ends at a multiple of the chunk size in the image.
/// Zero pages never enter a chunk (the caller cuts before them); the end of the input is always a cut.
struct PageChunker {
    let kind: ChunkerParameters.Kind
    let minPages: Int
    let maxPages: Int
    let threshold: UInt64
    let fixedSize: UInt64
    let identity: IdentityScheme

    init(_ p: ChunkerParameters, identity: IdentityScheme = .plain) {
        self.identity = identity
        kind = p.kind
        let page = ChunkerParameters.pageSize
        minPages = p.minSize / page
        maxPages = p.maxSize / page
        let divisor = UInt64(p.averageSize / page - minPages + 1)
        threshold = UInt64.max / max(divisor, 1)
        fixedSize = UInt64(p.averageSize)
    }

    /// Whether to cut after a page.
    /// - Parameters:
    ///   - pagesInChunk: pages in the chunk including this one.
    ///   - digest: the page's SHA-256.
    ///   - page: the page's bytes.
    ///   - endOffset: the image offset just after the page.
    @inline(__always)
    func cutAfter(pagesInChunk: Int, digest: UnsafeRawPointer, page: UnsafeRawBufferPointer, endOffset: UInt64) -> Bool {
        switch kind {
        case .fixed:
            return endOffset % fixedSize == 0 || pagesInChunk >= maxPages
        case .cdc:
            if pagesInChunk >= maxPages { return true }
            if pagesInChunk < minPages { return false }
            if identity.cutValue(digest) < threshold { return true }
            // The zero-padded end of a file: a structural cut kept in encrypted repositories too (chunk sizes are
            // only ever stored sealed; without it a rebuilt filesystem stores ~50% more, measured in BENCHMARKS.md).
            return page.count == ChunkerParameters.pageSize
                && ZeroScan.isZero(UnsafeRawBufferPointer(rebasing: page[(page.count - 64)...]))
        }
    }
}

/// Fast zero detection, eight words at a time.
enum ZeroScan {
    @inline(__always)
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let n = bytes.count
        var i = 0
        // Most data pages are not zero: look at the first word before scanning.
        if n >= 8 && base.loadUnaligned(as: UInt64.self) != 0 { return false }
        while i + 64 <= n {
            let p = base + i
            let acc = p.loadUnaligned(as: UInt64.self) | p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                | p.loadUnaligned(fromByteOffset: 16, as: UInt64.self) | p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
                | p.loadUnaligned(fromByteOffset: 32, as: UInt64.self) | p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
                | p.loadUnaligned(fromByteOffset: 48, as: UInt64.self) | p.loadUnaligned(fromByteOffset: 56, as: UInt64.self)
            if acc != 0 { return false }
            i += 64
        }
        while i < n {
            if base.load(fromByteOffset: i, as: UInt8.self) != 0 { return false }
            i += 1
        }
        return true
    }
}
