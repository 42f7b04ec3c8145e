/// Where long operations report how far they are. The command line draws it; tests count it.
/// Called from the operation's thread, at most a few times per second of work.
public protocol ProgressReporter: AnyObject, Sendable {
    /// `done` of `total` bytes (total nil when unknown); `newBytes` is the new data found so far (snap), or the data
    /// moved so far (copy).
    func progress(done: Int64, total: Int64?, newBytes: Int64)
    /// An operation made of stages (`import`: checking, unpacking, verifying, adding) starts the next one; the
    /// counts that follow are the new stage's, from zero.
    func stage(_ name: String)
}

extension ProgressReporter {
    public func stage(_ name: String) {}
}

/// Passes a part's progress on as progress of the whole: `done` shifted by what earlier parts did, against the
/// whole's total (a copy of several snapshots reports each snapshot's bytes as bytes of all of them).
final class PartProgress: ProgressReporter, @unchecked Sendable {
    private let whole: ProgressReporter
    private let before: Int64
    private let total: Int64
    private let newBefore: Int64

    init(_ whole: ProgressReporter, before: Int64, total: Int64, newBefore: Int64) {
        self.whole = whole
        self.before = before
        self.total = total
        self.newBefore = newBefore
    }

    func progress(done: Int64, total _: Int64?, newBytes: Int64) {
        whole.progress(done: before + done, total: max(total, before + done), newBytes: newBefore + newBytes)
    }
}
