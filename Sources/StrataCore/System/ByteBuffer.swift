/// A growable, reusable raw byte buffer for hot paths: no copies, no per-use allocation once warm.
final class ByteBuffer: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 64)
    }

    deinit { base.deallocate() }

    /// Makes room for at least `n` bytes in total (contents are kept).
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        var newCapacity = capacity
        while newCapacity < n { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 64)
        if count > 0 { newBase.copyMemory(from: base, byteCount: count) }
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    func append(_ source: UnsafeRawPointer, count n: Int) {
        reserve(count + n)
        (base + count).copyMemory(from: source, byteCount: n)
        count += n
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: length)
    }
}
