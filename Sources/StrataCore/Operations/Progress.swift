/// Where long operations report how far they are. The command line draws it; tests count it.
/// Called from the operation's thread, at most a few times per second of work.
public protocol ProgressReporter: AnyObject, Sendable {
    /// `done` of `total` bytes (total nil when unknown); `newBytes` is the new data found so far (snap only).
    func progress(done: Int64, total: Int64?, newBytes: Int64)
}
