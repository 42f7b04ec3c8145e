import FoundationEssentials
import StrataCore
#if canImport(Glibc)
import Glibc
#endif

/// Writing to stdout and stderr through their file descriptors (Glibc's `stderr` global is not concurrency-safe).
enum Terminal {
    static var stderrIsTTY: Bool { isatty(2) == 1 }

    static func writeOut(_ s: String) { write(fd: 1, s) }
    static func writeErr(_ s: String) { write(fd: 2, s) }
    /// One `strata: warning: …` line on stderr (printed even with `-q`: it is about the result, not progress).
    static func warn(_ message: String) { writeErr("strata: warning: \(Labels.printable(message, limit: 300))\n") }

    private static func write(fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; return }
            done += n
        }
        bytes.removeAll()
    }
}

/// A progress reporter the command line shows and then finishes.
protocol ProgressDisplay: ProgressReporter {
    func finish()
    /// Takes a live line off the terminal (before a prompt); the next report draws it again. JSON lines: nothing.
    func clear()
}

/// Progress as JSON lines on stderr for wrappers and GUIs: `{"event":"progress",...}` at most 10 times a second,
/// then `{"event":"end",...}`. An operation of stages (export, import) adds `"stage"` and emits a `stage` event as
/// each begins.
final class JSONProgress: ProgressDisplay, @unchecked Sendable {
    private let verb: String
    private let start = Date()
    private var last = Date.distantPast
    private var latest: (Int64, Int64?, Int64) = (0, nil, 0)
    private var stageName: String?
    private let lock = Lock()

    init(verb: String) { self.verb = verb }

    private func emit(_ event: String, _ done: Int64, _ total: Int64?, _ newBytes: Int64) {
        let elapsed = Date().timeIntervalSince(start)
        var line = "{\"event\":\"\(event)\",\"verb\":\"\(verb)\""
        if let stageName { line += ",\"stage\":\"\(stageName)\"" }
        line += ",\"bytesDone\":\(done)"
        if let total { line += ",\"bytesTotal\":\(total)" }
        line += ",\"newBytes\":\(newBytes),\"seconds\":\(String(cFormat: "%.3f", elapsed))}\n"
        Terminal.writeErr(line)
    }

    func progress(done: Int64, total: Int64?, newBytes: Int64) {
        lock.lock()
        defer { lock.unlock() }
        latest = (done, total, newBytes)
        guard Date().timeIntervalSince(last) >= 0.1 else { return }
        last = Date()
        emit("progress", done, total, newBytes)
    }

    func stage(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        stageName = name
        latest = (0, nil, 0)
        last = Date.distantPast
        emit("stage", 0, nil, 0)
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        emit("end", latest.0, latest.1, latest.2)
    }

    func clear() {}
}

/// A live progress line on stderr: bytes done of total, a bar, throughput, ETA and new data so far.
/// Redrawn at most 10 times a second, in place, and erased by `finish()`.
final class ProgressLine: ProgressDisplay, @unchecked Sendable {
    private var verb: String
    private let command: String
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false
    private let lock = Lock()

    init(verb: String) {
        self.verb = verb
        command = verb
    }

    /// The next stage of the operation: its own line (`import verifying 96 MiB of 485 MiB …`), rate and ETA.
    func stage(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        verb = command + " " + name
        start = Date()
        lastDraw = Date.distantPast
    }

    func progress(done: Int64, total: Int64?, newBytes: Int64) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(done) / elapsed
        var line = "\(verb) \(Format.bytes(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            line += " of \(Format.bytes(total)) [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            line += String(cFormat: " %3.0f%%", fraction * 100)
            if rate > 0 && done < total {
                line += " ETA " + Format.duration(Double(total - done) / rate)
            }
        }
        line += " \(Format.bytes(Int64(rate)))/s"
        if newBytes > 0 { line += ", \(Format.bytes(newBytes)) new" }
        Terminal.writeErr("\r\u{1B}[2K" + line)
        drawn = true
    }

    /// Erases the line.
    func finish() { clear() }

    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { Terminal.writeErr("\r\u{1B}[2K") }
        drawn = false
    }
}
