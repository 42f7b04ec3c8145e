#if canImport(Glibc)
import Glibc
#endif

/// The compact in-memory form of the chunk index: fixed 24-byte records (an object's 128-bit keyed tag, a frame
/// ordinal and 32 bits that place the object in the frame, see `Value`) in one flat allocation, sorted by tag and
/// found through a directory of tag-prefix buckets (tags are pseudo-random, so the buckets are even: ~4–8 records
/// each).
///
/// ~24.5 bytes per object in all (28.5 with offset and length as two words, 44.5 with whole 32-byte ids, ~250 for a
/// Swift dictionary of the same entries).
/// The tag (`IndexTag`) is keyed with a secret of this process, so that no one can make two ids share one.
final class IndexTable {
    struct Value: Equatable {
        var frame: UInt32
        /// Where the object is in its frame, as the owner encodes it (ChunkIndex: offset and length in 4 KiB pages,
        /// or a reference to an exact place).
        var place: UInt32
    }

    static let recordBytes = 24

    private(set) var count = 0
    private var capacity = 0
    private var base: UnsafeMutableRawPointer?
    /// `directory[b]` is the first record whose tag's top `bits` bits are ≥ b; it has 2^bits + 1 entries.
    private var directory: [UInt32] = [0, 0]
    private var bits = 0
    /// False while records appended by `append` wait for `finishLoading`.
    private var sorted = true

    deinit { free(base) }

    // MARK: Record access

    @inline(__always) private func record(_ i: Int) -> UnsafeMutableRawPointer { base! + i * Self.recordBytes }

    @inline(__always) private static func tag(at p: UnsafeRawPointer) -> IndexTag {
        IndexTag(hi: p.loadUnaligned(as: UInt64.self), lo: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    @inline(__always) private static func value(at p: UnsafeRawPointer) -> Value {
        Value(frame: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self),
              place: p.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
    }

    @inline(__always) private static func store(_ tag: IndexTag, _ v: Value, at p: UnsafeMutableRawPointer) {
        p.storeBytes(of: tag.hi, as: UInt64.self)
        p.storeBytes(of: tag.lo, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: v.frame, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: v.place, toByteOffset: 20, as: UInt32.self)
    }

    /// Orders records by tag, then by frame (so that of two records for one id, the one loaded first comes first).
    @inline(__always) private static func less(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> Bool {
        for offset in stride(from: 0, to: 16, by: 8) {
            let x = a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let y = b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            if x != y { return x < y }
        }
        return a.loadUnaligned(fromByteOffset: 16, as: UInt32.self) < b.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
    }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity + capacity / 4, 1024)
        guard let grown = realloc(base, newCapacity * Self.recordBytes) else {
            fatalError("out of memory for \(newCapacity) index records")
        }
        base = grown
        capacity = newCapacity
    }

    // MARK: Loading

    /// Appends a record while loading; `finishLoading` sorts them. Duplicated tags keep the first appended.
    func append(_ tag: IndexTag, _ value: Value) {
        reserve(count + 1)
        Self.store(tag, value, at: record(count))
        count += 1
        sorted = false
    }

    /// Drops the records appended after `mark` (an index file that turned out to be damaged half-way).
    func truncate(to mark: Int) {
        precondition(mark <= count)
        count = mark
    }

    /// Sorts what was appended, removes duplicate tags and builds the directory.
    func finishLoading() {
        guard !sorted else { return }
        sorted = true
        guard count > 0 else { rebuildDirectory(); return }
        let temp = UnsafeMutableRawPointer.allocate(byteCount: Self.recordBytes, alignment: 8)
        defer { temp.deallocate() }
        group(0, count, used: 0, bits: Self.directoryBits(for: count), temp: temp)
        // Duplicates are adjacent, the first loaded first: keep it.
        var kept = 1
        for i in 1..<count {
            if Self.tag(at: record(i)) != Self.tag(at: record(kept - 1)) {
                if i != kept { memcpy(record(kept), record(i), Self.recordBytes) }
                kept += 1
            }
        }
        count = kept
        rebuildDirectory()
        // Growth left up to a quarter unused: give it back once the loaded size is known.
        if capacity > count + count / 64 + 1024, let shrunk = realloc(base, count * Self.recordBytes) {
            base = shrunk
            capacity = count
        }
    }

    /// Sorts records `lo..<hi`, which share the top `used` bits of their tags: grouped in place by the next 8 bits
    /// (an American flag sort), each group the same way by the 8 after, until the top `bits` bits are in order; a
    /// group of at most 32 records, or one that shares all `bits`, is then sorted whole (`sortRange`). Eight bits a
    /// pass keep the 256 places being filled in the cache: one pass over all of `bits` (2^17 groups for 530k records)
    /// made every swap a cache miss, and half of a 130 ms index load of 530k chunks was spent here (now 98 ms in all).
    private func group(_ lo: Int, _ hi: Int, used: Int, bits: Int, temp: UnsafeMutableRawPointer) {
        let digit = min(8, bits - used)
        if hi - lo <= 32 || digit <= 0 {
            sortRange(lo, hi, temp: temp)
            return
        }
        let fan = 1 << digit
        let shift = UInt64(64 - digit), skip = UInt64(used)
        @inline(__always) func key(_ i: Int) -> Int {
            Int(truncatingIfNeeded: (record(i).loadUnaligned(as: UInt64.self) << skip) >> shift)
        }
        var next = [Int](repeating: 0, count: fan + 1)
        for i in lo..<hi { next[key(i) + 1] += 1 }
        next[0] = lo
        for b in 0..<fan { next[b + 1] += next[b] }
        let starts = next
        for b in 0..<fan {
            let end = starts[b + 1]
            while next[b] < end {
                let target = key(next[b])
                if target == b { next[b] += 1; continue }
                swap(next[b], next[target], via: temp)
                next[target] += 1
            }
        }
        for b in 0..<fan where starts[b + 1] - starts[b] > 1 {
            group(starts[b], starts[b + 1], used: used + digit, bits: bits, temp: temp)
        }
    }

    @inline(__always) private func bucket(of p: UnsafeRawPointer, bits: Int) -> Int {
        bits == 0 ? 0 : Int(truncatingIfNeeded: p.loadUnaligned(as: UInt64.self) >> UInt64(64 - bits))
    }

    private func swap(_ i: Int, _ j: Int, via temp: UnsafeMutableRawPointer) {
        memcpy(temp, record(i), Self.recordBytes)
        memcpy(record(i), record(j), Self.recordBytes)
        memcpy(record(j), temp, Self.recordBytes)
    }

    /// Sorts records `lo..<hi`: insertion sort for the usual handful, a general sort for a crowded bucket.
    private func sortRange(_ lo: Int, _ hi: Int, temp: UnsafeMutableRawPointer) {
        if hi - lo <= 32 {
            guard hi - lo > 1 else { return }
            for i in (lo + 1)..<hi {
                guard Self.less(record(i), record(i - 1)) else { continue }
                memcpy(temp, record(i), Self.recordBytes)
                var j = i
                while j > lo && Self.less(temp, record(j - 1)) {
                    memcpy(record(j), record(j - 1), Self.recordBytes)
                    j -= 1
                }
                memcpy(record(j), temp, Self.recordBytes)
            }
            return
        }
        var items = (lo..<hi).map { (tag: Self.tag(at: record($0)), value: Self.value(at: record($0))) }
        items.sort { $0.tag != $1.tag ? $0.tag < $1.tag : $0.value.frame < $1.value.frame }
        for (k, item) in items.enumerated() { Self.store(item.tag, item.value, at: record(lo + k)) }
    }

    private static func directoryBits(for count: Int) -> Int {
        // About 4–8 records per bucket.
        var bits = 0
        while bits < 28 && (count >> (bits + 3)) > 0 { bits += 1 }
        return bits
    }

    private func rebuildDirectory() {
        bits = Self.directoryBits(for: count)
        let buckets = 1 << bits
        var dir = [UInt32](repeating: 0, count: buckets + 1)
        var b = 0
        for i in 0..<count {
            let target = bucket(of: record(i), bits: bits)
            while b <= target { dir[b] = UInt32(i); b += 1 }
        }
        while b <= buckets { dir[b] = UInt32(count); b += 1 }
        directory = dir
    }

    // MARK: Lookup and growth

    /// The value of the record at `position` (0..<count, as `find` gives it).
    func value(atPosition position: Int) -> Value {
        precondition(sorted && position >= 0 && position < count)
        return Self.value(at: record(position))
    }

    /// The record for a tag: its position (0..<count, stable until the next merge) and value.
    func find(_ tag: IndexTag) -> (position: Int, value: Value)? {
        precondition(sorted, "index records looked up before loading finished")
        guard count > 0 else { return nil }
        let b = bits == 0 ? 0 : Int(truncatingIfNeeded: tag.hi >> UInt64(64 - bits))
        var lo = Int(directory[b])
        var hi = Int(directory[b + 1])
        while lo < hi {
            let mid = (lo + hi) >> 1
            let p = record(mid)
            let other = Self.tag(at: p)
            if other == tag { return (mid, Self.value(at: p)) }
            if other < tag { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    /// Merges records sorted by tag whose tags are not in the table.
    func merge(sortedNew items: [(tag: IndexTag, value: Value)]) {
        precondition(sorted)
        guard !items.isEmpty else { return }
        let oldCount = count
        reserve(oldCount + items.count)
        // From the back, so that the table's own records move at most once.
        var i = oldCount - 1
        var j = items.count - 1
        var w = oldCount + items.count - 1
        while j >= 0 {
            if i >= 0 && items[j].tag < Self.tag(at: record(i)) {
                memcpy(record(w), record(i), Self.recordBytes)
                i -= 1
            } else {
                Self.store(items[j].tag, items[j].value, at: record(w))
                j -= 1
            }
            w -= 1
        }
        count = oldCount + items.count
        rebuildDirectory()
    }

    /// Every record in tag order (tests).
    func forEach(_ body: (IndexTag, Value) throws -> Void) rethrows {
        precondition(sorted)
        for i in 0..<count {
            let p = record(i)
            try body(Self.tag(at: p), Self.value(at: p))
        }
    }

    /// Bytes held (records and directory), for measurements and tests.
    var memoryBytes: Int { capacity * Self.recordBytes + directory.count * 4 }
}
