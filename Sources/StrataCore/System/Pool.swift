/// Things worth keeping between uses (buffers, decompression contexts), shared by worker threads: `take` gives the
/// one put back last (the one most likely still in the CPU's cache) or makes a new one.
final class Pool<Item>: @unchecked Sendable {
    private let lock = Lock()
    private var items: [Item] = []

    func take(_ make: () -> Item) -> Item {
        lock.withLock { items.popLast() } ?? make()
    }

    func give(_ item: Item) {
        lock.withLock { items.append(item) }
    }
}
