import Crypto
import Dispatch
import FoundationEssentials

/// Measures, on this machine, the work Strata's steps are made of — SHA-256 of pages, zero detection, zstd at each
/// level, decompression, sealing — on one core and on all, and from those rates the fastest each step could be for
/// an image: its physical floor here. `strata bench` prints it; docs/BENCHMARKS.md compares measured times with it.
public struct MachineBenchmark: Sendable {
    /// One measured rate.
    public struct Rate: Sendable, Codable {
        public var name: String
        /// Bytes of input per second on one core, and with every core busy.
        public var oneCore: Double
        public var allCores: Double
        /// Compressed size / input size, for compression rows.
        public var ratio: Double?
    }

    /// The least time each step needs on this machine for an image, from the rates.
    public struct Floors: Sendable, Codable {
        /// Bytes that are not holes or zero pages in the sample's proportion, extrapolated to the image.
        public var dataBytes: Int64
        /// Hash every page and compress (at the repository level) every data byte.
        public var firstSnapshot: Double
        /// Hash every data byte (an increment of unchanged data stores nothing).
        public var unchangedSnapshot: Double
        /// Decompress, re-hash and copy out every data byte (not counting the write-back to disk).
        public var restore: Double
        /// Seconds per data byte read and hashed, and per new byte compressed: an increment that stores N new
        /// bytes needs at least dataBytes × hashing + N × storing.
        public var hashingPerByte: Double
        public var storingPerByte: Double
    }

    public struct Result: Sendable, Codable {
        public var cores: Int
        public var sampleBytes: Int
        /// Where the sample came from: the image (its first data) or generated.
        public var sample: String
        public var rates: [Rate]
        public var floors: Floors?
    }

    public let image: String?
    public let sampleLimit: Int
    public let secondsPerMeasure: Double
    public let level: Int

    /// The sample `strata bench` measures on unless told: enough to time each piece of work in a moment.
    public static let defaultSampleLimit = 64 << 20

    /// - Parameters:
    ///   - image: an image to sample (up to `sampleLimit` bytes of its data) and to compute floors for.
    ///   - level: the zstd level the floors assume (the repository default unless told).
    ///   - sampleLimit: at most this many bytes of the image's data are read and measured on; a limit as large as
    ///     the image's data measures on all of it (what a first snapshot compresses), in which case every
    ///     measurement goes through all of it at least once.
    public init(image: String?, level: Int = CompressionParameters.defaultLevel, sampleLimit: Int = defaultSampleLimit,
                secondsPerMeasure: Double = 0.4) {
        self.image = image
        self.level = level
        self.sampleLimit = sampleLimit
        self.secondsPerMeasure = secondsPerMeasure
    }

    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let (sample, origin, dataBytes) = try loadSample()
        defer { sample.deallocate() }
        let bytes = UnsafeRawBufferPointer(sample)
        var rates: [Rate] = []

        /// `makeWork` runs once per thread and returns the work that thread repeats (its contexts made once).
        /// `step`: the bytes handed to the work at a time (a frame, for compression).
        func measure(_ name: String, ratio: Double? = nil, step: Int = 1 << 20, perThread makeWork: @escaping () -> (UnsafeRawBufferPointer) -> Void) {
            progress(name)
            let one = throughput(threads: 1, bytes: bytes, step: step, makeWork)
            let all = cores == 1 ? one : throughput(threads: cores, bytes: bytes, step: step, makeWork)
            rates.append(Rate(name: name, oneCore: one, allCores: all, ratio: ratio))
        }

        // The way snapshots, restores and checks hash: two pages at a time with the SHA extensions, else one by one.
        measure("sha256 of 4 KiB pages" + (FastSHA256.usesHardware ? " (SHA-NI, two at a time)" : "")) {
            let digests = ByteBuffer(capacity: 64 * 32)  // each thread its own
            return { data in
                var o = 0
                var digester = ChunkHasher.pageDigester()
                while o < data.count {
                    let n = min(ChunkerParameters.pageSize, data.count - o)
                    digester.add(data.baseAddress! + o, count: n, digest: digests.base + (o / ChunkerParameters.pageSize % 64) * 32)
                    o += n
                }
                digester.finish()
            }
        }
        // A data page usually fails the check at its first bytes; a zero page is read whole: measure that.
        let zeroPages = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { zeroPages.deallocate() }
        zeroPages.initializeMemory(as: UInt8.self, repeating: 0)
        // The count goes to memory the optimizer cannot see through, so the scan is not removed.
        let sink = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { sink.deallocate() }
        sink.initialize(to: 0)
        measure("zero-page check (of zero pages)") { { _ in
            var o = 0
            var zeros = 0
            while o < zeroPages.count {
                if ZeroScan.isZero(UnsafeRawBufferPointer(rebasing: zeroPages[o..<(o + ChunkerParameters.pageSize)])) { zeros += 1 }
                o += ChunkerParameters.pageSize
            }
            sink.pointee &+= zeros
        } }
        let frame = CompressionParameters.defaultFrameSize
        progress("zstd level \(level) frames for decompression")
        let compressed = compressFrames(bytes, level: level, frame: frame, cores: cores)
        func measureCompression(level l: Int, frame: Int, ratio: Double) {
            measure("zstd level \(l), \(frame >> 10) KiB frames", ratio: ratio, step: frame) {
                let compressor = ZstdCompressor(level: l)
                let out = ByteBuffer(capacity: ZstdCompressor.bound(frame))
                return { data in
                    forEachFrame(data, frame) { f in
                        _ = try? compressor.compress(f, into: UnsafeMutableRawBufferPointer(start: out.base, count: out.capacity))
                    }
                }
            }
        }
        // Each level at the default frame size (the first row of `level` is the one the floors use), then `level`
        // at the other frame sizes `init --frame-size` offers.
        for l in Array(Set([1, 3, level, 9])).sorted() {
            progress("zstd level \(l) ratio")
            let ratio = l == level ? compressed.ratio : compressFrames(bytes, level: l, frame: frame, cores: cores, keep: false).ratio
            measureCompression(level: l, frame: frame, ratio: ratio)
        }
        for other in [512 << 10, 1 << 20, 4 << 20] where other != frame {
            progress("zstd level \(level), \(other >> 10) KiB frames ratio")
            measureCompression(level: level, frame: other, ratio: compressFrames(bytes, level: level, frame: other, cores: cores, keep: false).ratio)
        }
        progress("zstd decompression")
        let decompressOne = decompressThroughput(compressed.frames, threads: 1)
        let decompressAll = cores == 1 ? decompressOne : decompressThroughput(compressed.frames, threads: cores)
        rates.append(Rate(name: "zstd decompression (level \(level) frames)", oneCore: decompressOne, allCores: decompressAll, ratio: nil))
        // Writing a restored image costs at least one copy of it into the page cache.
        measure("memory copy (1 MiB blocks)") {
            let target = ByteBuffer(capacity: 1 << 20)
            return { data in
                forEachFrame(data, 1 << 20) { f in target.base.copyMemory(from: f.baseAddress!, byteCount: f.count) }
                sink.pointee &+= Int(target.base.load(as: UInt8.self))
            }
        }
        let key = SymmetricKey(size: .bits256)
        measure("aes-256-gcm seal") { { data in
            forEachFrame(data, frame) { f in _ = try? AES.GCM.seal(f, using: key) }
        } }
        measure("chacha20-poly1305 seal") { { data in
            forEachFrame(data, frame) { f in _ = try? ChaChaPoly.seal(f, using: key) }
        } }

        var floors: Floors?
        if let dataBytes {
            let rate = { (prefix: String) in rates.first { $0.name.hasPrefix(prefix) }!.allCores }
            let d = Double(dataBytes)
            let sha = rate("sha256"), zstd = rate("zstd level \(level),"), unzstd = rate("zstd decompression")
            let copy = rate("memory copy")
            floors = Floors(dataBytes: dataBytes,
                            firstSnapshot: d / sha + d / zstd,
                            unchangedSnapshot: d / sha,
                            restore: d / unzstd + d / sha + d / copy,
                            hashingPerByte: 1 / sha, storingPerByte: 1 / zstd)
        }
        return Result(cores: cores, sampleBytes: bytes.count, sample: origin, rates: rates, floors: floors)
    }

    // MARK: Sample

    /// The sample: up to `sampleLimit` bytes of the image's data from places spread over it (holes and zero pages
    /// skipped), or generated data
    /// that compresses about as a filesystem of ordinary files does. Also returns the image's data bytes: the
    /// non-hole bytes, scaled by the share of non-zero pages in what was read.
    private func loadSample() throws -> (UnsafeMutableRawBufferPointer, String, Int64?) {
        guard let image else {
            let size = min(sampleLimit, Self.generatedSize)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            _ = Self.generate(into: buffer, size: size)
            return (buffer, "generated (text and random bytes, 2:1)", nil)
        }
        guard image != "-" else {
            throw StrataError(.invalidArgument, "bench needs an image file or a block device, not standard input")
        }
        // Checked before opening: opening a named pipe would wait for a writer.
        guard let found = (try? FileSystem.status(image)) ?? nil else {
            throw StrataError(.notFound, "image '\(image)' does not exist")
        }
        guard found.isRegularFile || found.isBlockDevice else {
            throw StrataError(.invalidArgument, "bench needs an image file or a block device; '\(image)' is neither")
        }
        let source = try ImageSource(path: image)
        // 1 MiB pieces spread evenly over the data ranges, zero pages left out.
        let ranges = try source.dataRanges()
        let dataRangeBytes = ranges.reduce(Int64(0)) { $0 + ($1.end - $1.start) }
        // No more than the data can fill (a limit larger than the image's data measures on all of it), and room
        // for generated data if the image holds too little.
        let capacity = min(sampleLimit, max(Self.generatedSize, Int(min(dataRangeBytes, Int64(Int.max / 2)))))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        do {
            let piece = 1 << 20
            let pieces = max(1, capacity / piece)
            let spacing = max(Int64(piece), dataRangeBytes / Int64(pieces))
            var filled = 0
            var readBytes = 0
            var places = 0
            let page = ChunkerParameters.pageSize
            let scratch = ByteBuffer(capacity: piece)
            var logical: Int64 = 0  // position in the concatenated data ranges
            var next: Int64 = 0     // where the next piece starts, in the same terms
            for range in ranges {
                let length = range.end - range.start
                while next < logical + length && filled < capacity {
                    let offset = range.start + (next - logical)
                    let want = Int(min(Int64(piece), range.end - offset))
                    let n = try source.read(into: scratch.base, count: want, offset: offset)
                    if n == 0 { break }
                    readBytes += n
                    places += 1
                    var p = 0
                    while p < n && filled < capacity {
                        let len = min(page, n - p, capacity - filled)
                        if !ZeroScan.isZero(UnsafeRawBufferPointer(start: scratch.base + p, count: len)) {
                            (buffer.baseAddress! + filled).copyMemory(from: scratch.base + p, byteCount: len)
                            filled += len
                        }
                        p += len
                    }
                    next += spacing
                }
                logical += length
            }
            guard filled > 0 else {
                throw StrataError(.invalidArgument, "image \(image) holds no data to measure")
            }
            // The share of non-zero pages in what was read, applied to all the data ranges.
            let share = Double(filled) / Double(max(readBytes, 1))
            let dataBytes = Int64(Double(dataRangeBytes) * share)
            let mib = String(cFormat: "%.1f MiB", Double(filled) / 1_048_576)
            if filled < 1 << 20 {
                // Too little to time anything on: rates from generated data, floors still for the image's data.
                let size = Self.generate(into: buffer, size: min(capacity, Self.generatedSize))
                return (UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]),
                        "generated (text and random bytes, 2:1): \(image) holds only \(filled) byte\(filled == 1 ? "" : "s") of data", dataBytes)
            }
            return (UnsafeMutableRawBufferPointer(rebasing: buffer[0..<filled]),
                    "\(mib) of data from \(places) place\(places == 1 ? "" : "s") across \(image)", dataBytes)
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    /// How much data is generated when there is no image to sample.
    private static let generatedSize = 16 << 20

    /// Fills `size` bytes with 64 KiB of text-like data, then 32 KiB of random bytes (already-compressed files),
    /// and again; returns `size`.
    private static func generate(into buffer: UnsafeMutableRawBufferPointer, size: Int) -> Int {
        var rng = SystemRandomNumberGenerator()
        let words = ["block ", "inode ", "extent ", "journal ", "superblock ", "snapshot ", "volume ", "chunk ", "\n"]
            .map { Array($0.utf8) }
        var o = 0
        let base = buffer.baseAddress!
        while o < size {
            let textEnd = min(size, o + (64 << 10))
            while o < textEnd {
                let w = words[Int(rng.next() % UInt64(words.count))]
                let n = min(w.count, textEnd - o)
                w.withUnsafeBytes { (base + o).copyMemory(from: $0.baseAddress!, byteCount: n) }
                o += n
            }
            let randomEnd = min(size, o + (32 << 10))
            while o + 8 <= randomEnd { (base + o).storeBytes(of: rng.next(), as: UInt64.self); o += 8 }
            while o < randomEnd { base.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: o, as: UInt8.self); o += 1 }
        }
        return size
    }

    // MARK: Measuring

    /// Bytes per second of `work` over `bytes`, run on `threads` threads at once for about `secondsPerMeasure`.
    private func throughput(threads: Int, bytes: UnsafeRawBufferPointer, step: Int,
                            _ makeWork: @escaping () -> (UnsafeRawBufferPointer) -> Void) -> Double {
        makeWork()(UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, step)]))  // warm up
        return rate(threads: threads, share: bytes.count / threads) { t in
            let work = makeWork()
            // Each thread works through the sample from its own starting point, `step` bytes (a frame) at a time.
            let size = min(bytes.count, step)
            var offset = (bytes.count / threads * t) / size * size
            return {
                let end = min(bytes.count, offset + size)
                work(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                let done = end - offset
                offset = end >= bytes.count ? 0 : end
                return done
            }
        }
    }

    /// Bytes per second on `threads` threads at once: each thread makes its step once (`makeStep(thread)`), then
    /// repeats it for about `secondsPerMeasure` and until it has handled `share` bytes (its part of the sample, so
    /// that the threads together go through all of it at least once); a step returns the bytes it handled.
    private func rate(threads: Int, share: Int, _ makeStep: @escaping (Int) -> () -> Int) -> Double {
        let limit: Swift.Duration = .microseconds(Int(secondsPerMeasure * 1_000_000))
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        defer { counts.deallocate() }
        let started = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let step = makeStep(t)
            var done = 0
            repeat { done += step() } while ContinuousClock.now - started < limit || done < share
            counts[t] = done
        }
        return Double(counts.reduce(0, +)) / started.secondsElapsed
    }

    private func forEachFrame(_ data: UnsafeRawBufferPointer, _ frame: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        var o = 0
        while o < data.count {
            let end = min(data.count, o + frame)
            body(UnsafeRawBufferPointer(rebasing: data[o..<end]))
            o = end
        }
    }

    /// The sample compressed in frames on every core: the compressed share, and the frames themselves if `keep`.
    private func compressFrames(_ data: UnsafeRawBufferPointer, level: Int, frame: Int, cores: Int,
                                keep: Bool = true) -> (frames: [(compressed: [UInt8], rawLength: Int)], ratio: Double) {
        let count = (data.count + frame - 1) / frame
        let frames = UnsafeMutableBufferPointer<(compressed: [UInt8], rawLength: Int)>.allocate(capacity: count)
        frames.initialize(repeating: ([], 0))
        defer { frames.deinitialize().deallocate() }
        let sizes = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        sizes.initialize(repeating: 0)
        defer { sizes.deallocate() }
        DispatchQueue.concurrentPerform(iterations: cores) { t in
            let compressor = ZstdCompressor(level: level)
            let scratch = ByteBuffer(capacity: ZstdCompressor.bound(frame))
            var i = t
            while i < count {
                let start = i * frame
                let f = UnsafeRawBufferPointer(rebasing: data[start..<min(data.count, start + frame)])
                let n = (try? compressor.compress(f, into: UnsafeMutableRawBufferPointer(start: scratch.base, count: scratch.capacity))) ?? 0
                sizes[i] = n
                if keep { frames[i] = (Array(UnsafeRawBufferPointer(start: scratch.base, count: n)), f.count) }
                i += cores
            }
        }
        let ratio = Double(sizes.reduce(0, +)) / Double(max(data.count, 1))
        return (keep ? Array(frames) : [], ratio)
    }

    /// Decompressed bytes per second over the sample's frames, on `threads` threads.
    private func decompressThroughput(_ frames: [(compressed: [UInt8], rawLength: Int)], threads: Int) -> Double {
        guard !frames.isEmpty else { return 0 }
        let total = frames.reduce(0) { $0 + $1.rawLength }
        return rate(threads: threads, share: total / threads) { t in
            let d = ZstdDecompressor()
            let out = ByteBuffer(capacity: CompressionParameters.defaultFrameSize)
            var i = frames.count / threads * t
            return {
                let f = frames[i]
                out.reserve(f.rawLength)
                f.compressed.withUnsafeBytes { c in
                    _ = try? d.decompress(c, into: UnsafeMutableRawBufferPointer(start: out.base, count: f.rawLength), what: "sample frame")
                }
                i = (i + 1) % frames.count
                return f.rawLength
            }
        }
    }
}
