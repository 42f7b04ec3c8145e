import Foundation
import Testing
@testable import StrataCore

@Suite("restore write-back")
struct RestoreWritebackTests {
    /// Pieces over an image with holes, planned in image order and published in batches, written in a shuffled order
    /// after each batch is published (as workers do): every window that receives bytes is found finished exactly once,
    /// only when all its bytes are written; a window of holes never is.
    @Test("a window is sent to the disk once, when every byte planned for it is written", arguments: [1, 2, 3, 4, 5, 6])
    func windowsFinishOnce(seed: UInt64) throws {
        let dir = TemporaryDirectory()
        let file = try FileHandleFD.open(dir.file("out"), flags: O_RDWR | O_CREAT, mode: 0o600)
        defer { try? file.close() }
        var rng = SeededRandom(seed: seed)
        let window: UInt64 = 64 << 10
        let writeback = RestoreWriteback(out: file, windowBytes: window, dropLag: Int(rng.next() % 3))

        // Pieces of 4–96 KiB, and holes of up to 300 KiB that no window around them may wait for.
        var pieces: [(offset: UInt64, length: UInt64)] = []
        var offset: UInt64 = 0
        while offset < 8 << 20 {
            let length = UInt64(1 + rng.next() % 24) * 4096
            if rng.next() % 5 == 0 { offset += UInt64(rng.next() % 75) * 4096 } else { pieces.append((offset, length)) }
            offset += length
        }
        var planned: [UInt64: UInt64] = [:]
        for p in pieces {
            var o = p.offset
            while o < p.offset + p.length {
                let n = min(p.offset + p.length, (o / window + 1) * window) - o
                planned[o / window, default: 0] += n
                o += n
            }
        }

        let lock = Lock()
        var written: [UInt64: UInt64] = [:]
        var finished: [UInt64] = []
        var early: [UInt64] = []
        writeback.observeFinished = { w in
            lock.lock()
            finished.append(w)
            if written[w, default: 0] != planned[w] { early.append(w) }
            lock.unlock()
        }
        func write(_ p: (offset: UInt64, length: UInt64)) {
            lock.lock()
            var o = p.offset
            while o < p.offset + p.length {
                let n = min(p.offset + p.length, (o / window + 1) * window) - o
                written[o / window, default: 0] += n
                o += n
            }
            lock.unlock()
            writeback.wrote(offset: p.offset, length: p.length)
        }

        var i = 0
        var behind: [(offset: UInt64, length: UInt64)] = []
        while i < pieces.count {
            let batch = pieces[i..<min(pieces.count, i + 1 + Int(rng.next() % 40))]
            for p in batch { writeback.plan(offset: p.offset, length: p.length) }
            i += batch.count
            // How far the walker got (to the next piece, past any hole), or that the walk is over.
            writeback.publish(closingBelow: i < pieces.count ? pieces[i].offset : .max)
            // Some of what is published is written now, from two threads, the rest after the next batch is published
            // (workers lag behind the walker).
            behind += batch
            behind.shuffle(using: &rng)
            let now = Array(behind.prefix(Int(rng.next() % UInt64(behind.count + 1))))
            behind.removeFirst(now.count)
            DispatchQueue.concurrentPerform(iterations: now.count) { write(now[$0]) }
        }
        DispatchQueue.concurrentPerform(iterations: behind.count) { write(behind[$0]) }
        writeback.finish()

        #expect(early.isEmpty, "windows found finished before all their bytes were written: \(early)")
        #expect(finished.sorted() == planned.keys.sorted(), "every window with bytes, once; none without")
        #expect(Set(finished).count == finished.count)
    }
}
