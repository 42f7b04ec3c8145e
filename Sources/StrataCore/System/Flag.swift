/// A yes/no that one thread sets and another reads (under a lock), for a closure that must be `@Sendable`.
final class Flag: @unchecked Sendable {
    private let lock = Lock()
    private var value = false

    func set() { lock.withLock { value = true } }

    var isSet: Bool { lock.withLock { value } }
}
