import Dispatch

/// Tells the kernel, while a restore writes, which parts of the output are finished: each window of the image
/// (`windowBytes`) is sent to the disk as soon as every byte the restore will write into it is written, and its pages
/// are dropped from the cache a few windows later, once they are on disk (waiting for that if the disk is behind), so
/// that the pages are reused for the windows that follow and the restored image does not stay in the page cache.
///
/// A restore writes in frame order, not image order: an increment's chunks arrive long after the frames around them,
/// and land in the gaps those left. Starting write-back of whatever happens to be dirty (as restore did, every 8 MiB
/// for the whole file) sends those gapped runs to the disk piece by piece, and ext4 converts its preallocated extents
/// one small piece at a time; a finished window goes out as one run. On the benchmark's scattered-blocks snapshot
/// the kernel's share of the restore fell by a third (BENCHMARKS, "Restore: write-back by finished window").
///
/// The walker thread plans the bytes each window will receive (`plan`) and publishes them before it hands out their
/// writes, with how far it has walked (`publish`); workers report what they wrote (`wrote`). The hints run on a serial queue of their own (both
/// calls can block on the disk, and a worker waiting in one is a core not decompressing).
final class RestoreWriteback: @unchecked Sendable {
    let out: FileHandleFD
    let windowBytes: UInt64
    /// How many finished windows stay cached before their pages are dropped: enough for their write-back to be done.
    let dropLag: Int

    /// Bytes the walker will write, per window, not yet published (the walker's own).
    private var planned: [UInt64: UInt64] = [:]
    private let lock = Lock()
    /// Bytes still to be written, per window (only windows that will receive any).
    private var remaining: [UInt64: UInt64] = [:]
    /// Windows below this index receive nothing more from the walker.
    private var closedBelow: UInt64 = 0
    /// Finished windows in the order their write-back started, waiting for their pages to be dropped.
    private var sent: [UInt64] = []
    private let hints = DispatchQueue(label: "strata.restore.writeback")
    private let group = DispatchGroup()
    /// Tests see each window as it is found finished, on the thread that finished it.
    var observeFinished: ((UInt64) -> Void)?

    init(out: FileHandleFD, windowBytes: UInt64, dropLag: Int) {
        self.out = out
        self.windowBytes = windowBytes
        self.dropLag = dropLag
    }

    /// Called by the walker: `length` bytes at `offset` will be written (known to the workers once published).
    func plan(offset: UInt64, length: UInt64) {
        forEachWindow(offset: offset, length: length) { planned[$0, default: 0] += $1 }
    }

    /// Called by the walker before it hands out the writes it planned: publishes them, and that nothing more will be
    /// planned below `offset` (`UInt64.max` once the walk is over).
    func publish(closingBelow offset: UInt64) {
        let window = offset / windowBytes
        var finished: [UInt64] = []
        lock.lock()
        for (w, n) in planned { remaining[w, default: 0] += n }
        planned.removeAll(keepingCapacity: true)
        if window > closedBelow {
            for (w, left) in remaining where w >= closedBelow && w < window && left == 0 { finished.append(w) }
            for w in finished { remaining[w] = nil }
            closedBelow = window
        }
        lock.unlock()
        send(finished.sorted())
    }

    /// Called by a worker after a write.
    func wrote(offset: UInt64, length: UInt64) {
        var finished: [UInt64] = []
        lock.lock()
        forEachWindow(offset: offset, length: length) { w, n in
            guard let left = remaining[w] else { return }
            let now = left >= n ? left - n : 0
            if now == 0 && w < closedBelow {
                remaining[w] = nil
                finished.append(w)
            } else {
                remaining[w] = now
            }
        }
        lock.unlock()
        send(finished)
    }

    /// Waits for the hints already asked for (before the final fsync, so none runs on a closed descriptor).
    func finish() {
        group.wait()
    }

    private func forEachWindow(offset: UInt64, length: UInt64, _ body: (UInt64, UInt64) -> Void) {
        var o = offset
        let end = offset + length
        while o < end {
            let w = o / windowBytes
            let n = min(end, (w + 1) * windowBytes) - o
            body(w, n)
            o += n
        }
    }

    private func send(_ windows: [UInt64]) {
        guard !windows.isEmpty else { return }
        if let observeFinished { windows.forEach(observeFinished) }
        group.enter()
        hints.async { [self] in
            defer { group.leave() }
            for w in windows {
                out.startWriteback(offset: Int64(w * windowBytes), count: Int(windowBytes))
                sent.append(w)
            }
            while sent.count > dropLag {
                let w = sent.removeFirst()
                // Its write-back started `dropLag` windows ago and has usually finished; when the disk is behind, wait
                // for it here (this queue, not a worker): a page still being written back is not dropped, and the
                // pages left behind would stay cached after the restore (28–219 MB of the benchmark's 4 GiB restore right
                // after its snapshots, against 28 MB with the wait).
                out.waitForWriteback(offset: Int64(w * windowBytes), count: Int(windowBytes))
                out.dropCachedPages(offset: Int64(w * windowBytes), count: Int64(windowBytes))
            }
        }
    }
}
